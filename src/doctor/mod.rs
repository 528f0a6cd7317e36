//! `labup doctor`: independent checks, each with a verdict, one sentence and a fix.
//!
//! Every check reads what it needs from a [`Context`] built once, returns a [`Verdict`] and
//! never stops the others: they run on their own threads, and a panic becomes a failed check.
//! The deciding logic is in pure functions next to each check, unit-tested on stub inputs.

pub(crate) mod elf;
pub(crate) mod gpu;
pub(crate) mod host;
pub(crate) mod linkage;
pub(crate) mod nixpkgs;
pub(crate) mod python;
pub(crate) mod render;
pub(crate) mod resolve;
pub(crate) mod torch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::env::ChildEnv;
use crate::envvars;
use crate::project::Workspace;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Fine.
    Ok,
    /// Works, but something will bite later.
    Warn,
    /// Broken: `labup doctor` exits 1.
    Fail,
    /// Not applicable here (no GPU, not WSL, nothing installed to check).
    Skip,
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// The verdict.
    pub(crate) status: Status,
    /// One sentence.
    pub(crate) message: String,
    /// A command or action that fixes it.
    pub(crate) fix: Option<String>,
    /// Supporting lines (one per unresolved library, port, …).
    pub(crate) details: Vec<String>,
}

impl Verdict {
    fn new(status: Status, message: impl Into<String>) -> Verdict {
        Verdict { status, message: message.into(), fix: None, details: Vec::new() }
    }

    /// An ok verdict.
    pub(crate) fn ok(message: impl Into<String>) -> Verdict {
        Verdict::new(Status::Ok, message)
    }

    /// A warning.
    pub(crate) fn warn(message: impl Into<String>) -> Verdict {
        Verdict::new(Status::Warn, message)
    }

    /// A failure.
    pub(crate) fn fail(message: impl Into<String>) -> Verdict {
        Verdict::new(Status::Fail, message)
    }

    /// Not applicable.
    pub(crate) fn skip(message: impl Into<String>) -> Verdict {
        Verdict::new(Status::Skip, message)
    }

    /// Adds the fix.
    #[must_use]
    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Verdict {
        self.fix = Some(fix.into());
        self
    }

    /// A failure from an error labup raises elsewhere: its message, and its hint as the fix.
    pub(crate) fn from_fail(f: crate::error::Fail) -> Verdict {
        Verdict { status: Status::Fail, message: f.message, fix: f.hint, details: Vec::new() }
    }

    /// Adds detail lines.
    #[must_use]
    pub(crate) fn details(mut self, details: Vec<String>) -> Verdict {
        self.details = details;
        self
    }
}

/// One check's result as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// Stable identifier (`linkage`, `ports`, …).
    pub(crate) id: &'static str,
    /// What is checked.
    pub(crate) title: &'static str,
    /// The verdict.
    pub(crate) status: Status,
    /// One sentence.
    pub(crate) message: String,
    /// What to run or change.
    pub(crate) fix: Option<String>,
    /// Supporting lines.
    pub(crate) details: Vec<String>,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Summary {
    /// Checks that passed.
    pub(crate) ok: usize,
    /// Warnings.
    pub(crate) warn: usize,
    /// Failures.
    pub(crate) fail: usize,
    /// Not applicable.
    pub(crate) skip: usize,
}

/// Everything `labup doctor` found, as `--json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    /// In a fixed order.
    pub(crate) checks: Vec<Check>,
    /// Counts.
    pub(crate) summary: Summary,
}

impl Report {
    /// Builds the summary from the checks.
    pub(crate) fn new(checks: Vec<Check>) -> Report {
        let mut summary = Summary::default();
        for c in &checks {
            match c.status {
                Status::Ok => summary.ok += 1,
                Status::Warn => summary.warn += 1,
                Status::Fail => summary.fail += 1,
                Status::Skip => summary.skip += 1,
            }
        }
        Report { checks, summary }
    }

    /// Whether any check failed (exit 1).
    pub(crate) fn failed(&self) -> bool {
        self.summary.fail > 0
    }
}

/// What every check may read, gathered once (cheap: no Python process, no network).
#[derive(Debug)]
pub(crate) struct Context {
    /// The workspace.
    pub(crate) ws: Workspace,
    /// labup's own environment.
    pub(crate) parent: BTreeMap<String, String>,
    /// The environment children get.
    pub(crate) child: ChildEnv,
    /// `LABUP_FS_ROOT` or `/`: prefix of the host paths read.
    pub(crate) fs_root: PathBuf,
    /// The GPU facts the GPU checks use.
    pub(crate) gpu: gpu::GpuFacts,
}

impl Context {
    /// The context for a project, from its config and labup's environment.
    pub(crate) fn new(ws: Workspace, parent: BTreeMap<String, String>) -> Context {
        let fs_root = parent
            .get(envvars::LABUP_FS_ROOT)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("/"), PathBuf::from);
        let gpu = gpu::detect(&ws, &parent, &fs_root);
        // The link folder as it is: the doctor reports a missing one rather than creating it.
        let child = ChildEnv::workspace(&ws, &parent, &crate::gpu::existing_wiring(&ws));
        Context { ws, parent, child, fs_root, gpu }
    }

    /// A host path under the fs root.
    pub(crate) fn host(&self, path: &str) -> PathBuf {
        host_path(&self.fs_root, path)
    }

    /// A variable as a child sees it: labup's change if it makes one, else inherited.
    pub(crate) fn child_var(&self, name: &str) -> Option<String> {
        match self.child.entries.iter().find(|e| e.name == name) {
            Some(e) => e.value.clone(),
            None => self.parent.get(name).cloned(),
        }
    }

    /// The venv's python as a command with the child environment.
    pub(crate) fn venv_python(&self, args: &[&str]) -> duct::Expression {
        let python = crate::python::interpreter::venv_python(&self.ws.config.python.venv);
        let mut expr = duct::cmd(python, args).dir(self.ws.root());
        for e in &self.child.entries {
            expr = match &e.value {
                Some(v) => expr.env(&e.name, v),
                None => expr.env_remove(&e.name),
            };
        }
        expr
    }
}

/// `path` under `root` (`/` keeps it as it is).
pub(crate) fn host_path(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

type CheckFn = fn(&Context) -> Verdict;

/// Every check in the order they are printed.
const CHECKS: &[(&str, &str, CheckFn)] = &[
    ("interpreter", "Python interpreter", python::interpreter),
    ("venv", "virtual environment", python::venv),
    ("linkage", "wheel linkage", linkage::check),
    ("numpy", "numpy import", python::numpy),
    ("gpu", "NVIDIA driver", gpu::check),
    ("torch", "PyTorch CUDA", torch::check),
    ("state", "state folder", host::state),
    ("ports", "service ports", host::ports),
    ("wsl", "WSL", host::wsl),
    ("ollama", "Ollama", host::ollama),
];

/// Runs every check, concurrently; a check that panics is reported as failed.
pub(crate) fn run(ctx: &Context) -> Report {
    let checks = std::thread::scope(|scope| {
        let running: Vec<_> = CHECKS.iter().map(|(id, title, f)| (*id, *title, scope.spawn(move || f(ctx)))).collect();
        running
            .into_iter()
            .map(|(id, title, handle)| {
                let v = handle.join().unwrap_or_else(|_| {
                    Verdict::fail("the check crashed: this is a bug in labup").fix("report it with `labup doctor -v`")
                });
                Check { id, title, status: v.status, message: v.message, fix: v.fix, details: v.details }
            })
            .collect()
    });
    Report::new(checks)
}

/// Runs a command to completion, or kills it after `timeout` (`Ok(None)`).
pub(crate) fn output_within(
    expr: &duct::Expression,
    timeout: Duration,
) -> std::io::Result<Option<std::process::Output>> {
    let handle = expr.stdout_capture().stderr_capture().stdin_null().unchecked().start()?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(out) = handle.try_wait()? {
            return Ok(Some(out.clone()));
        }
        if Instant::now() >= deadline {
            let _ = handle.kill();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last non-empty line of a process's stderr (where Python puts the exception).
pub(crate) fn last_line(text: &str) -> &str {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_and_failure() {
        let c = |status| Check { id: "x", title: "x", status, message: String::new(), fix: None, details: vec![] };
        let r = Report::new(vec![c(Status::Ok), c(Status::Warn), c(Status::Skip), c(Status::Ok)]);
        assert_eq!(r.summary, Summary { ok: 2, warn: 1, fail: 0, skip: 1 });
        assert!(!r.failed());
        assert!(Report::new(vec![c(Status::Fail)]).failed());
    }

    #[test]
    fn json_shape() {
        let v = Verdict::fail("libz.so.1 is missing").fix("add zlib").details(vec!["a".into()]);
        let check = Check {
            id: "linkage",
            title: "wheel linkage",
            status: v.status,
            message: v.message,
            fix: v.fix,
            details: v.details,
        };
        let json = serde_json::to_value(Report::new(vec![check])).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "checks": [{"id": "linkage", "title": "wheel linkage", "status": "fail",
                            "message": "libz.so.1 is missing", "fix": "add zlib", "details": ["a"]}],
                "summary": {"ok": 0, "warn": 0, "fail": 1, "skip": 0}
            })
        );
    }

    #[test]
    fn slow_commands_are_killed() {
        let out = output_within(&duct::cmd("sleep", ["5"]), Duration::from_millis(100)).unwrap();
        assert!(out.is_none());
        let out = output_within(&duct::cmd("echo", ["hi"]), Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(out.stdout, b"hi\n");
    }

    #[test]
    fn host_paths_under_a_root() {
        assert_eq!(host_path(Path::new("/"), "/proc/version"), PathBuf::from("/proc/version"));
        assert_eq!(host_path(Path::new("/tmp/r"), "/proc/version"), PathBuf::from("/tmp/r/proc/version"));
    }
}
