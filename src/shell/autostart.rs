//! `[shell] autostart`: which shells are open on a project, which services their entry started,
//! and what the last one to exit stops.
//!
//! `.labup/shells/<pid>.json` holds each open shell's identity (pid, start time, boot id: a
//! reused pid is not mistaken for the shell); entries of shells that died without their exit
//! hook running are pruned whenever the registry is read. `started.json` lists the services an
//! entry found stopped and started; services the user started by hand before are never in it,
//! so the last shell's exit never stops them. Every change happens under `shells/lock`.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::fsutil::{self, LockFile};
use crate::project::Layout;
use crate::services::proc::{self, Identity};

/// The registry folder of a project.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    /// `.labup/shells`.
    pub(crate) dir: PathBuf,
    layout: Layout,
}

const STARTED: &str = "started.json";

impl Registry {
    /// The registry of a workspace (not created).
    pub(crate) fn of(layout: &Layout) -> Registry {
        Registry { dir: layout.shells(), layout: layout.clone() }
    }

    /// Creates the folder and takes the registry lock.
    pub(crate) fn lock(&self) -> Result<LockFile> {
        self.layout.ensure(self.dir.clone())?;
        LockFile::acquire(&self.layout.shells_lock(), |_| {})
    }

    fn entry(&self, pid: i32) -> PathBuf {
        self.dir.join(format!("{pid}.json"))
    }

    /// Records an open shell.
    pub(crate) fn register(&self, shell: &Identity) -> Result<()> {
        fsutil::atomic_write(&self.entry(shell.pid), &serde_json::to_vec(shell)?)
    }

    /// Forgets a shell.
    pub(crate) fn unregister(&self, pid: i32) {
        let _ = fs::remove_file(self.entry(pid));
    }

    /// The shells still open, removing the entries of those that are gone.
    pub(crate) fn live(&self) -> Vec<Identity> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_shell = path.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.parse::<i32>().is_ok());
            if !is_shell || path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Identity>(&b).ok()) {
                Some(id) if proc::is_alive(&id) => out.push(id),
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        out.sort_by_key(|id| id.pid);
        out
    }

    /// The services shell entries started.
    pub(crate) fn started(&self) -> BTreeSet<String> {
        fs::read(self.dir.join(STARTED)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Adds services an entry started.
    pub(crate) fn add_started(&self, names: &BTreeSet<String>) -> Result<()> {
        let mut all = self.started();
        all.extend(names.iter().cloned());
        fsutil::atomic_write(&self.dir.join(STARTED), &serde_json::to_vec(&all)?)
    }

    /// Forgets the started services (they were stopped).
    pub(crate) fn clear_started(&self) -> Result<()> {
        match fs::remove_file(self.dir.join(STARTED)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("failed to remove {}", self.dir.join(STARTED).display()))
            }
            _ => Ok(()),
        }
    }
}

/// What the last shell's exit stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopPlan {
    /// Nothing that autostart started still runs.
    Nothing,
    /// Everything running was started by autostart: stop it all, supervisor included.
    All(Vec<String>),
    /// Only these; services started by hand keep running.
    Only(Vec<String>),
}

/// Services that shells started and that still run; `All` when nothing else runs.
pub(crate) fn stop_plan(started: &BTreeSet<String>, running: &BTreeSet<String>) -> StopPlan {
    let ours: Vec<String> = running.intersection(started).cloned().collect();
    if ours.is_empty() {
        StopPlan::Nothing
    } else if running.is_subset(started) {
        StopPlan::All(ours)
    } else {
        StopPlan::Only(ours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_last_exit_stops_only_what_entries_started() {
        assert_eq!(stop_plan(&set(&[]), &set(&["web"])), StopPlan::Nothing);
        assert_eq!(stop_plan(&set(&["web"]), &set(&[])), StopPlan::Nothing);
        assert_eq!(
            stop_plan(&set(&["web", "app"]), &set(&["app", "web"])),
            StopPlan::All(vec!["app".into(), "web".into()])
        );
        assert_eq!(stop_plan(&set(&["web", "gone"]), &set(&["web"])), StopPlan::All(vec!["web".into()]));
        assert_eq!(stop_plan(&set(&["web"]), &set(&["web", "byhand"])), StopPlan::Only(vec!["web".into()]));
    }

    #[test]
    fn registry_prunes_dead_shells() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::of(&Layout::of(dir.path()));
        let _lock = reg.lock().unwrap();
        let me = proc::identify(std::process::id() as i32).unwrap();
        reg.register(&me).unwrap();
        let dead = Identity { pid: me.pid, start_time: me.start_time + 1, boot_id: me.boot_id.clone() };
        let other = Identity { pid: 999_999_999, ..dead };
        reg.register(&other).unwrap();
        assert_eq!(reg.live(), std::slice::from_ref(&me));
        assert!(!reg.dir.join("999999999.json").exists(), "the dead entry is removed");
        reg.unregister(me.pid);
        assert!(reg.live().is_empty());
    }

    #[test]
    fn started_services_accumulate_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::of(&Layout::of(dir.path()));
        let _lock = reg.lock().unwrap();
        assert!(reg.started().is_empty());
        reg.add_started(&set(&["web"])).unwrap();
        reg.add_started(&set(&["app"])).unwrap();
        assert_eq!(reg.started(), set(&["app", "web"]));
        reg.clear_started().unwrap();
        reg.clear_started().unwrap();
        assert!(reg.started().is_empty());
    }
}
