//! What a sync will do, decided once (uv's `Planner`/`Plan`): [`Planner::new`] finds the facts
//! (requirement sources, interpreter, torch backend and its route, the backend's lock),
//! [`Planner::plan`] looks at the marker, the venv and the lock and returns a [`Plan`]. `labup
//! sync` executes that value, and `labup sync --dry-run` prints it.
//!
//! Planning changes nothing. It may start the interpreter once; only [`Planner::dry_run`] runs
//! `uv pip sync --dry-run` (for the exact packages); nothing resolves, downloads or writes.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Serialize, Serializer};

use super::engine::Engine;
use super::fingerprint::Marker;
use super::interpreter::{self, Info, Interpreter};
use super::sources::Sources;
use super::{lockfile, sync, venv};
use crate::config::Config;
use crate::gpu::{self, torch};
use crate::project::{Layout, Workspace};
use crate::ui::Ui;

/// The facts a plan is made from, found once per command.
#[derive(Debug)]
pub(crate) struct Planner<'a> {
    /// The config as loaded (what [`sync::up_to_date`] takes).
    base: &'a Config,
    /// Every path under `.labup/`.
    pub(crate) layout: &'a Layout,
    /// The config, its `[python] lock` naming the torch backend's lock.
    pub(crate) config: Cow<'a, Config>,
    /// The requirement sources.
    pub(crate) sources: Sources,
    /// The base interpreter (found, not started).
    pub(crate) interp: Interpreter,
    /// The torch backend, when torch is an input or set.
    choice: Option<torch::Choice>,
    /// … and where the installer finds it: found on first use, so the no-op check never reads
    /// the index settings (requirement files, uv.toml, pip.conf) it does not need.
    torch: OnceCell<Option<TorchPlan>>,
}

/// The PyTorch wheels a sync installs: the backend, why, and the index they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TorchPlan {
    /// The chosen backend and why.
    pub(crate) choice: torch::Choice,
    /// Where the installer looks for it.
    pub(crate) route: torch::Route,
}

/// What `labup sync` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The lock: current, to be resolved, or none (no requirements).
    pub(crate) lock: LockPlan,
    /// The torch backend, when torch is among the requirements or `[python] torch` is set.
    pub(crate) torch: Option<TorchPlan>,
    /// Nothing, or the changes.
    pub(crate) work: Work,
}

/// Whether there is anything to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Work {
    /// The venv matches its inputs (the marker of the sync that made it so).
    Nothing(Marker),
    /// A sync.
    Sync(Changes),
}

/// The changes a sync makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Keep, create or rebuild the venv.
    pub(crate) venv: VenvPlan,
    /// `name==version` to install; `None` when only a resolution (or the installer) can tell.
    pub(crate) install: Option<Vec<String>>,
    /// `name==version` to remove; `None` when unknown.
    pub(crate) remove: Option<Vec<String>>,
    /// The project's own package, installed editable by the sync.
    pub(crate) project: Option<PlannedPackage>,
    /// What the interpreter said about itself (it was started once, and checked).
    pub(crate) python: Info,
}

/// The venv folder in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VenvPlan {
    /// Sync into the venv there.
    Keep,
    /// There is none: build one.
    Create,
    /// Build a new one in place of the old, for this reason.
    Rebuild(String),
}

/// The lock in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockPlan {
    /// Its digest matches the requirements.
    Current,
    /// It must be resolved first.
    Resolve(Staleness),
    /// There are no requirements, so no lock.
    None,
}

/// Why a lock must be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Staleness {
    /// There is no lock file.
    Missing,
    /// It was written for other requirements.
    OutOfDate,
}

/// `noop` or `sync`, as `--dry-run --json` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// Nothing at all.
    Noop,
    /// A sync.
    Sync,
}

/// The project's own package in a sync plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PlannedPackage {
    /// Its normalized name.
    pub(crate) name: String,
    /// Where it is installed from (editable).
    pub(crate) dir: PathBuf,
}

impl VenvPlan {
    /// `keep`, `create` or `rebuild`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            VenvPlan::Keep => "keep",
            VenvPlan::Create => "create",
            VenvPlan::Rebuild(_) => "rebuild",
        }
    }
}

impl LockPlan {
    /// `current`, `resolve` or `none`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            LockPlan::Current => "current",
            LockPlan::Resolve(_) => "resolve",
            LockPlan::None => "none",
        }
    }

    /// From the digest the requirements want (`None`: there are none) and the lock's text.
    pub(crate) fn decide(wanted: Option<&str>, lock: Option<&str>) -> LockPlan {
        match (wanted, lock) {
            (None, _) => LockPlan::None,
            (Some(_), None) => LockPlan::Resolve(Staleness::Missing),
            (Some(w), Some(text)) if lockfile::digest_of(text) == Some(w) => LockPlan::Current,
            (Some(_), Some(_)) => LockPlan::Resolve(Staleness::OutOfDate),
        }
    }
}

impl Plan {
    /// `noop` or `sync`.
    pub(crate) fn action(&self) -> Action {
        match self.work {
            Work::Nothing(_) => Action::Noop,
            Work::Sync(_) => Action::Sync,
        }
    }
}

/// The JSON of `labup sync --dry-run --json` (the field names and values it always had).
#[derive(Serialize)]
struct PlanJson<'a> {
    action: Action,
    venv: &'static str,
    venv_reason: Option<&'a str>,
    lock: &'static str,
    install: Option<&'a [String]>,
    remove: Option<&'a [String]>,
    torch_backend: Option<&'a torch::Backend>,
    project: Option<&'a PlannedPackage>,
    torch_index: Option<String>,
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let none: &[String] = &[];
        let (venv, install, remove, project) = match &self.work {
            Work::Nothing(_) => (&VenvPlan::Keep, Some(none), Some(none), None),
            Work::Sync(c) => (&c.venv, c.install.as_deref(), c.remove.as_deref(), c.project.as_ref()),
        };
        PlanJson {
            action: self.action(),
            venv: venv.as_str(),
            venv_reason: match venv {
                VenvPlan::Rebuild(why) => Some(why),
                _ => None,
            },
            lock: self.lock.as_str(),
            install,
            remove,
            torch_backend: self.torch.as_ref().map(|t| &t.choice.backend),
            project,
            torch_index: self.torch.as_ref().map(|t| t.route.describe()),
        }
        .serialize(s)
    }
}

impl<'a> Planner<'a> {
    /// Finds the sources, the interpreter and the torch backend; starts nothing.
    pub(crate) fn new(ws: &'a Workspace) -> Result<Planner<'a>> {
        let config = &ws.config;
        let sources = Sources::detect(config)?;
        let interp = interpreter::for_venv(config.python.version.as_deref(), &config.python.venv)?;
        let choice = gpu::torch_for_sync(ws, &sources);
        let base = config;
        let config = sync::for_backend(config, choice.as_ref().map(|c| &c.backend));
        Ok(Planner { base, layout: &ws.layout, config, sources, interp, choice, torch: OnceCell::new() })
    }

    /// The torch backend, as the installer, the lock's name and the fingerprints take it.
    pub(crate) fn backend(&self) -> Option<&torch::Backend> {
        self.choice.as_ref().map(|c| &c.backend)
    }

    /// The torch backend and where the installer finds it.
    pub(crate) fn torch(&self) -> Option<&TorchPlan> {
        self.torch
            .get_or_init(|| {
                let choice = self.choice.clone()?;
                let route = gpu::torch_route(self.base, &self.sources, &choice.backend);
                Some(TorchPlan { choice, route })
            })
            .as_ref()
    }

    /// Where the installer looks for torch.
    pub(crate) fn route(&self) -> Option<&torch::Route> {
        self.torch().map(|t| &t.route)
    }

    /// The fast check (no Python started): the marker matches and the venv is healthy.
    pub(crate) fn up_to_date(&self) -> Option<Marker> {
        sync::up_to_date(self.base, &self.interp, &self.sources, self.backend())
    }

    /// The plan. `ui`: show the interpreter check as a step.
    pub(crate) fn plan(&self, ui: Option<&Ui>) -> Result<Plan> {
        let torch = self.torch().cloned();
        if let Some(marker) = self.up_to_date() {
            // The marker's fingerprint covers the lock's text and the requirements.
            let lock = if self.sources.is_empty() { LockPlan::None } else { LockPlan::Current };
            return Ok(Plan { lock, torch, work: Work::Nothing(marker) });
        }
        let (lock, lock_text) = self.lock_plan()?;
        let python = self.check_interpreter(ui)?;
        let venv = self.venv_plan(&python)?;
        let (install, remove) = match (lock, &venv) {
            (LockPlan::Resolve(_), _) => (None, None),
            (_, VenvPlan::Keep) => (None, None),
            // A new venv gets the whole lock (one name may have several marker-guarded pins).
            (LockPlan::None, _) => (Some(Vec::new()), Some(Vec::new())),
            (LockPlan::Current, _) => (Some(pins(lock_text.as_deref().unwrap_or_default())), Some(Vec::new())),
        };
        let project =
            self.sources.project_package.as_ref().map(|p| PlannedPackage { name: p.name.clone(), dir: p.dir.clone() });
        Ok(Plan { lock, torch, work: Work::Sync(Changes { venv, install, remove, project, python }) })
    }

    /// [`Planner::plan`], with the packages a kept venv would gain and lose from uv's own dry
    /// run against the current lock (unknown with pip, or when uv cannot tell).
    pub(crate) fn dry_run(&self) -> Result<Plan> {
        let mut plan = self.plan(None)?;
        let lock = plan.lock;
        if let Work::Sync(c) = &mut plan.work {
            if c.venv == VenvPlan::Keep && !matches!(lock, LockPlan::Resolve(_)) {
                if let Some((install, remove)) = self.diff_with_uv() {
                    (c.install, c.remove) = (Some(install), Some(remove));
                }
            }
            // The exact sync keeps the project's own package (a dry run against the lock alone lists it).
            if let (Some(remove), Some(pkg)) = (&mut c.remove, &c.project) {
                remove.retain(|p| !is_named(p, &pkg.name));
            }
        }
        Ok(plan)
    }

    /// The lock against the requirements, and its text; a lock that is there but cannot be read
    /// is an error.
    fn lock_plan(&self) -> Result<(LockPlan, Option<String>)> {
        if self.sources.is_empty() {
            return Ok((LockPlan::None, None));
        }
        let wanted = lockfile::inputs_digest(&self.sources, &self.config, self.backend());
        let text = read_lock(&self.config.python.lock)?;
        Ok((LockPlan::decide(Some(&wanted), text.as_deref()), text))
    }

    /// Starts the interpreter once and checks it against `[python] version`.
    pub(crate) fn check_interpreter(&self, ui: Option<&Ui>) -> Result<Info> {
        let step = ui.map(|ui| ui.step(format!("Checking {}", self.interp.path.display())));
        let info = self.interp.query();
        if let Some(step) = step {
            step.abandon();
        }
        let info = info?;
        interpreter::check_version(&self.interp, &info, self.config.python.version.as_deref())?;
        Ok(info)
    }

    /// Keep, create or rebuild; a folder that is not a venv is refused.
    fn venv_plan(&self, python: &Info) -> Result<VenvPlan> {
        let dir = &self.config.python.venv;
        Ok(match venv::inspect(dir) {
            venv::State::Foreign(why) => return Err(venv::refuse(dir, &why).into()),
            venv::State::Missing => VenvPlan::Create,
            venv::State::Venv(cfg) => match venv::rebuild_reason(&cfg, &python.executable, &python.version, dir) {
                Some(why) => VenvPlan::Rebuild(why),
                None => VenvPlan::Keep,
            },
        })
    }

    /// `uv pip sync --dry-run` against the current lock: the exact packages (`None` with pip).
    fn diff_with_uv(&self) -> Option<(Vec<String>, Vec<String>)> {
        let config = &*self.config;
        let engine = Engine::detect(config.python.installer).ok()?;
        let lock = Some(config.python.lock.clone()).filter(|l| l.is_file())?;
        let mut cmd = engine.sync_dry_run(&config.python.venv, &lock, self.route())?;
        cmd.cwd = Some(config.root.clone());
        let out = cmd.expression().stdout_capture().stderr_capture().unchecked().run().ok()?;
        if !out.status.success() {
            return None;
        }
        Some(parse_dry_run(&String::from_utf8_lossy(&out.stderr)))
    }
}

/// A lock file's text: `None` when there is none; an error when it is there but unreadable.
pub(crate) fn read_lock(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))),
    }
}

/// A lock's pins as `name==version`.
fn pins(lock: &str) -> Vec<String> {
    lockfile::pins(lock).into_iter().map(|p| format!("{}=={}", p.name, p.version)).collect()
}

/// Whether `name==version` (or `name @ …`) is the distribution `name`.
fn is_named(pin: &str, name: &str) -> bool {
    let n = pin.split(['=', ' ', '@']).next().unwrap_or_default();
    venv::normalize(n) == name
}

/// The ` + name==v` and ` - name==v` lines of uv's dry run.
pub(crate) fn parse_dry_run(text: &str) -> (Vec<String>, Vec<String>) {
    let mut install = Vec::new();
    let mut remove = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("+ ") {
            install.push(p.trim().to_string());
        } else if let Some(p) = line.strip_prefix("- ") {
            remove.push(p.trim().to_string());
        }
    }
    (install, remove)
}

#[cfg(test)]
mod tests;
