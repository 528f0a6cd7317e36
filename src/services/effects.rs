//! What the supervisor does to the world, behind [`Effects`]: spawning a service, signalling
//! its group, noticing exits, probing, writing log notes. [`Os`] does it for real; the
//! supervisor's tests put a fake in its place.

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use nix::sys::signal::Signal;

use super::logs;
use super::policy::{Exit, Run};
use super::ports;
use super::probe::{self, ProbeJob, Probed};
use super::proc::{self, Identity};
use super::reducer::{Event, PortPlan, SpawnJob};

/// The supervisor's effects.
pub(crate) trait Effects {
    /// Spawns a service: `Spawned`, `SpawnFailed` or `Refused`.
    fn spawn(&mut self, job: &SpawnJob, now: Instant) -> Event;
    /// Signals the group led by `leader`.
    fn signal_group(&mut self, leader: &Identity, signal: Signal);
    /// How the leader ended, once it has (`None` while it runs).
    fn exited(&mut self, leader: &Identity) -> Option<Exit>;
    /// Whether no process of the group is left.
    fn group_gone(&mut self, leader: &Identity) -> bool;
    /// Starts a probe; its result comes from [`Effects::probe_results`].
    fn start_probe(&mut self, job: ProbeJob);
    /// The probe results that arrived.
    fn probe_results(&mut self) -> Vec<Probed>;
    /// Appends a labup line to a log.
    fn note(&mut self, log: &Path, line: &str);
    /// Rotates a log that grew too large; whether it did.
    fn rotate(&mut self, log: &Path) -> bool;
    /// A log's length.
    fn log_len(&self, log: &Path) -> u64;
    /// A line for the supervisor's own log.
    fn log(&mut self, line: &str);
}

/// The real effects: processes, signals, probe threads, files.
#[derive(Debug)]
pub(crate) struct Os {
    /// Our children by pid, for their exit status.
    children: BTreeMap<i32, Child>,
    results: Sender<Probed>,
    arrived: Receiver<Probed>,
    /// In the foreground the supervisor's own lines are not printed (the logs are).
    quiet: bool,
}

impl Os {
    /// Effects for a supervisor (`quiet` in the foreground).
    pub(crate) fn new(quiet: bool) -> Os {
        let (results, arrived) = mpsc::channel();
        Os { children: BTreeMap::new(), results, arrived, quiet }
    }

    /// Pids of the children this supervisor waits on itself (`Child::try_wait`): a reaper must
    /// leave their exit status to that wait.
    pub(crate) fn managed_pids(&self) -> Vec<i32> {
        self.children.keys().copied().collect()
    }
}

impl Effects for Os {
    fn spawn(&mut self, job: &SpawnJob, now: Instant) -> Event {
        let name = job.spec.name.clone();
        let port = match resolve_port(&job.port) {
            Ok(port) => port,
            Err(Resolve::Failed(why)) => return Event::SpawnFailed { name, why },
            Err(Resolve::Refused(why)) => return Event::Refused { name, why },
        };
        let _ = logs::rotate_if_large(&job.log, logs::ROTATE_AT);
        let port_note = port.map(|p| format!(" on port {p}")).unwrap_or_default();
        logs::note(&job.log, &format!("starting `{}`{port_note}", job.spec.argv.join(" ")));
        match command(job, port).and_then(|mut cmd| cmd.spawn()) {
            Ok(child) => {
                let pid = child.id() as i32;
                let id = proc::identify(pid).unwrap_or(Identity { pid, start_time: 0, boot_id: proc::boot_id() });
                self.children.insert(pid, child);
                let run = Run { id, port, started_at: proc::unix_now(), spawned: now, ready_at: None };
                Event::Spawned { name, run, log_len: self.log_len(&job.log) }
            }
            Err(e) => {
                logs::note(&job.log, &format!("could not start: {e}"));
                Event::SpawnFailed { name, why: format!("could not start `{}`: {e}", job.spec.argv.join(" ")) }
            }
        }
    }

    fn signal_group(&mut self, leader: &Identity, signal: Signal) {
        proc::signal_group(leader, signal);
    }

    fn exited(&mut self, leader: &Identity) -> Option<Exit> {
        let Some(child) = self.children.get_mut(&leader.pid) else {
            return (!proc::is_alive(leader)).then_some(Exit::Unknown);
        };
        let status = child.try_wait().ok()??;
        self.children.remove(&leader.pid);
        Some(match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Unknown,
        })
    }

    fn group_gone(&mut self, leader: &Identity) -> bool {
        !self.children.contains_key(&leader.pid) && proc::group_members(leader).is_empty()
    }

    fn start_probe(&mut self, job: ProbeJob) {
        probe::spawn(job, self.results.clone());
    }

    fn probe_results(&mut self) -> Vec<Probed> {
        self.arrived.try_iter().collect()
    }

    fn note(&mut self, log: &Path, line: &str) {
        logs::note(log, line);
    }

    fn rotate(&mut self, log: &Path) -> bool {
        logs::rotate_if_large(log, logs::ROTATE_AT).unwrap_or(false)
    }

    fn log_len(&self, log: &Path) -> u64 {
        std::fs::metadata(log).map_or(0, |m| m.len())
    }

    fn log(&mut self, line: &str) {
        if !self.quiet {
            eprintln!("[{}] {line}", proc::unix_now());
        }
    }
}

enum Resolve {
    Failed(String),
    Refused(String),
}

fn resolve_port(plan: &PortPlan) -> Result<Option<u16>, Resolve> {
    match plan {
        PortPlan::None => Ok(None),
        PortPlan::Auto { previous } => {
            match previous.filter(|p| ports::is_free(*p)).map(Ok).unwrap_or_else(ports::free_port) {
                Ok(p) => Ok(Some(p)),
                Err(e) => Err(Resolve::Failed(format!("no free port: {e}"))),
            }
        }
        PortPlan::Fixed(p) if !ports::is_free(*p) => {
            let in_use = crate::error::Error::PortInUse { port: *p, holder: ports::describe_holder(*p) };
            Err(Resolve::Refused(in_use.to_string()))
        }
        PortPlan::Fixed(p) => Ok(Some(*p)),
    }
}

/// The service's command: its own process group, output to its log, its environment with the
/// others' ports and its own.
fn command(job: &SpawnJob, port: Option<u16>) -> std::io::Result<Command> {
    let spec = &job.spec;
    let out = logs::open_append(&job.log)?;
    let err = out.try_clone()?;
    let expand = |args: &[String]| expand_vars(&expand_port(args, port), &job.peers);
    let argv = expand(&spec.argv);
    let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(&spec.cwd).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
    if let Some(dir) = &spec.runtime_dir {
        super::jupyter::clean_stale_runtime_files(dir);
    }
    for (k, v) in &spec.env {
        match v {
            Some(v) => cmd.env(k, expand(std::slice::from_ref(v)).remove(0)),
            None => cmd.env_remove(k),
        };
    }
    for (k, v) in &job.peers {
        cmd.env(k, v);
    }
    if let Some(p) = port {
        cmd.env("PORT", p.to_string());
    }
    // Python buffers stdout when it is a file: unbuffered, log lines (and log probes) are timely.
    cmd.env("PYTHONUNBUFFERED", "1");
    Ok(cmd)
}

/// `$PORT` and `${PORT}` in the arguments (and environment values) become the service's port,
/// for programs that take the port as an argument rather than from `PORT`.
pub(crate) fn expand_port(argv: &[String], port: Option<u16>) -> Vec<String> {
    let Some(port) = port else { return argv.to_vec() };
    let p = port.to_string();
    argv.iter().map(|a| a.replace("${PORT}", &p).replace("$PORT", &p)).collect()
}

/// `$NAME` and `${NAME}` of these variables in the arguments become their values.
fn expand_vars(argv: &[String], vars: &[(String, String)]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::port_var;

    #[test]
    fn port_is_expanded_in_arguments() {
        let argv: Vec<String> = ["python", "-m", "http.server", "$PORT", "--x=${PORT}"].map(String::from).to_vec();
        assert_eq!(expand_port(&argv, Some(8000))[3..], ["8000", "--x=8000"]);
        assert_eq!(expand_port(&argv, None), argv);
    }

    #[test]
    fn other_services_ports_are_variables() {
        assert_eq!(port_var("web"), "WEB_PORT");
        assert_eq!(port_var("my-api.v2"), "MY_API_V2_PORT");
        let vars = [("API_PORT".to_string(), "8000".to_string())];
        let argv: Vec<String> =
            ["--api=http://127.0.0.1:${API_PORT}/", "$API_PORT", "$PORT"].map(String::from).to_vec();
        assert_eq!(expand_vars(&argv, &vars), ["--api=http://127.0.0.1:8000/", "8000", "$PORT"]);
    }
}
