//! The state registry in `.labup/run/`: the supervisor's identity and each service's record,
//! in `state.json`, written atomically by the supervisor and read by every command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::policy::Phase;
use super::proc::{self, Identity};
use super::spec::Spec;
use crate::fsutil;
use crate::project::Layout;

/// `state.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunState {
    /// The supervisor process.
    pub(crate) supervisor: Option<Identity>,
    /// Services by name.
    pub(crate) services: BTreeMap<String, Record>,
}

/// One service as the supervisor last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// What it runs.
    pub(crate) spec: Spec,
    /// Current phase.
    pub(crate) state: Phase,
    /// The process group leader, while it runs.
    pub(crate) process: Option<Identity>,
    /// The port it was given (`auto` resolved).
    pub(crate) port: Option<u16>,
    /// Restarts so far.
    pub(crate) restarts: u32,
    /// Unix time it was started.
    pub(crate) started_at: Option<u64>,
    /// Last exit status (`None`: signal or unknown).
    pub(crate) last_exit: Option<i32>,
    /// Why it last failed.
    pub(crate) last_error: Option<String>,
}

impl Record {
    /// `http://127.0.0.1:PORT/` for services with a port; Jupyter's carries its token.
    pub(crate) fn url(&self) -> Option<String> {
        let port = self.port?;
        if self.spec.kind == "jupyter" {
            let token = self.spec.env.get(super::jupyter::TOKEN_VAR).cloned().flatten();
            return Some(super::jupyter::url(port, token.as_deref()));
        }
        Some(format!("http://127.0.0.1:{port}/"))
    }

    /// Whether its process is running (identity verified).
    pub(crate) fn running(&self) -> bool {
        self.process.as_ref().is_some_and(proc::is_alive)
    }
}

/// The run folder, as the supervisor and its clients use it: a view of the workspace's [`Layout`].
#[derive(Debug, Clone)]
pub(crate) struct RunDir {
    /// `.labup/logs`.
    pub(crate) logs: PathBuf,
    layout: Layout,
}

impl RunDir {
    /// The run and log folders of a workspace (not created).
    pub(crate) fn of(layout: &Layout) -> RunDir {
        RunDir { logs: layout.logs(), layout: layout.clone() }
    }

    /// Creates them (0700 state and run folders).
    pub(crate) fn create(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let run = self.layout.ensure(self.layout.run_dir())?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
        self.layout.ensure(self.layout.logs())?;
        Ok(())
    }

    /// `state.json`.
    pub(crate) fn state_file(&self) -> PathBuf {
        self.layout.state_file()
    }

    /// The control socket.
    pub(crate) fn socket(&self) -> PathBuf {
        self.layout.socket()
    }

    /// The lock a client holds while it makes sure of a supervisor and sends it a request.
    pub(crate) fn client_lock(&self) -> PathBuf {
        self.layout.client_lock()
    }

    /// The lock the one supervisor holds.
    pub(crate) fn supervisor_lock(&self) -> PathBuf {
        self.layout.supervisor_lock()
    }

    /// The detached supervisor's own output.
    pub(crate) fn supervisor_log(&self) -> PathBuf {
        self.layout.supervisor_log()
    }

    /// Reads `state.json` (empty when missing or unreadable).
    pub(crate) fn read(&self) -> RunState {
        std::fs::read(self.state_file()).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Writes `state.json` atomically.
    pub(crate) fn write(&self, state: &RunState) -> anyhow::Result<()> {
        fsutil::atomic_write(&self.state_file(), &serde_json::to_vec_pretty(state)?)
    }

    /// The supervisor's identity when it is running.
    pub(crate) fn live_supervisor(&self, state: &RunState) -> Option<Identity> {
        state.supervisor.clone().filter(proc::is_alive)
    }
}
