//! `labup sync --dry-run`: what a sync would do, computed without changing anything. It may
//! start the interpreter once (to see whether the venv needs a rebuild) and `uv pip sync
//! --dry-run` (for the exact packages); it never resolves, downloads or writes.

use std::fs;

use anyhow::Result;
use serde::Serialize;

use super::engine::Engine;
use super::sources::Sources;
use super::{interpreter, lockfile, sync, venv};
use crate::config::Config;
use crate::gpu;

/// What `labup sync` would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `noop` (nothing at all) or `sync`.
    pub action: &'static str,
    /// `keep`, `create` or `rebuild`.
    pub venv: &'static str,
    /// Why the venv is rebuilt.
    pub venv_reason: Option<String>,
    /// `current`, `resolve` (missing or out of date) or `none` (no requirements).
    pub lock: &'static str,
    /// `name==version` to install; `None` when only a resolution (or pip) can tell.
    pub install: Option<Vec<String>>,
    /// `name==version` to remove; `None` when unknown.
    pub remove: Option<Vec<String>>,
    /// The PyTorch backend, when torch is among the requirements.
    pub torch_backend: Option<String>,
    /// The project's own package, installed editable by the sync (`name`, `dir`).
    pub project: Option<PlannedPackage>,
    /// Where torch is installed from: the index URL, or the user's own settings that decide.
    pub torch_index: Option<String>,
}

/// The project's own package in a sync plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPackage {
    /// Its normalized name.
    pub name: String,
    /// Where it is installed from (editable).
    pub dir: std::path::PathBuf,
}

/// Computes the plan.
pub fn plan(ws: &crate::project::Workspace) -> Result<Plan> {
    let config = &ws.config;
    let sources = Sources::detect(config)?;
    let interp = interpreter::for_venv(config.python.version.as_deref(), &config.python.venv)?;
    let torch = gpu::torch_for_sync(ws, &sources).map(|c| c.backend);
    let route = torch.as_deref().map(|b| gpu::torch_route(config, &sources, b));
    let mut plan = Plan {
        action: "noop",
        venv: "keep",
        venv_reason: None,
        lock: if sources.is_empty() { "none" } else { "current" },
        install: Some(Vec::new()),
        remove: Some(Vec::new()),
        torch_backend: torch.clone(),
        project: None,
        torch_index: route.as_ref().map(gpu::torch::Route::describe),
    };
    if sync::up_to_date(config, &interp, &sources, torch.as_deref()).is_some() {
        return Ok(plan);
    }
    plan.action = "sync";
    plan.project =
        sources.project_package.as_ref().map(|p| PlannedPackage { name: p.name.clone(), dir: p.dir.clone() });
    let config = &*sync::for_backend(config, torch.as_deref());
    let venv_dir = &config.python.venv;
    match venv::inspect(venv_dir) {
        venv::State::Foreign(why) => return Err(venv::refuse(venv_dir, &why).into()),
        venv::State::Missing => plan.venv = "create",
        venv::State::Venv(cfg) => {
            let info = interp.query()?;
            interpreter::check_version(&interp, &info, config.python.version.as_deref())?;
            if let Some(why) = venv::rebuild_reason(&cfg, &info.executable, &info.version, venv_dir) {
                plan.venv = "rebuild";
                plan.venv_reason = Some(why);
            }
        }
    }
    if !sources.is_empty() {
        let digest = lockfile::inputs_digest(&sources, config, torch.as_deref());
        let current = fs::read_to_string(&config.python.lock).ok();
        if current.as_deref().and_then(lockfile::digest_of) != Some(digest.as_str()) {
            plan.lock = "resolve";
        }
    }
    let (install, remove) = match (plan.lock, plan.venv) {
        ("resolve", _) => (None, None),
        (_, "keep") => diff_with_uv(config, route.as_ref()).unwrap_or((None, None)),
        // A new venv gets the whole lock (one name may have several marker-guarded pins).
        (lock, _) => {
            let pins = if lock == "none" {
                Vec::new()
            } else {
                lockfile::pins(&fs::read_to_string(&config.python.lock).unwrap_or_default())
                    .into_iter()
                    .map(|p| format!("{}=={}", p.name, p.version))
                    .collect()
            };
            (Some(pins), Some(Vec::new()))
        }
    };
    plan.install = install;
    // The exact sync keeps the project's own package (a dry run against the lock alone lists it).
    let keep = |p: &String| plan.project.as_ref().is_none_or(|pkg| !is_named(p, &pkg.name));
    plan.remove = remove.map(|r| r.into_iter().filter(keep).collect());
    Ok(plan)
}

type Diff = (Option<Vec<String>>, Option<Vec<String>>);

/// `uv pip sync --dry-run` against the current lock: the exact packages (`None` with pip).
fn diff_with_uv(config: &Config, torch: Option<&gpu::torch::Route>) -> Option<Diff> {
    let engine = Engine::detect(config.python.installer).ok()?;
    let lock = if config.python.lock.is_file() { config.python.lock.clone() } else { return None };
    let mut cmd = engine.sync_dry_run(&config.python.venv, &lock, torch)?;
    cmd.cwd = Some(config.root.clone());
    let out = cmd.expression().stdout_capture().stderr_capture().unchecked().run().ok()?;
    if !out.status.success() {
        return None;
    }
    let (install, remove) = parse_dry_run(&String::from_utf8_lossy(&out.stderr));
    Some((Some(install), Some(remove)))
}

/// Whether `name==version` (or `name @ …`) is the distribution `name`.
fn is_named(pin: &str, name: &str) -> bool {
    let n = pin.split(['=', ' ', '@']).next().unwrap_or_default();
    venv::normalize(n) == name
}

/// The ` + name==v` and ` - name==v` lines of uv's dry run.
pub fn parse_dry_run(text: &str) -> (Vec<String>, Vec<String>) {
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
mod tests {
    use super::*;

    #[test]
    fn uv_dry_run_lines() {
        let text =
            "Using Python 3.11.7 environment at: v\nResolved 2 packages in 0.93ms\nWould uninstall 2 packages\n \
                    - alpha==1.0\n + alpha==2.0\n - delta==1.0\n + gamma==1.0\n";
        let (install, remove) = parse_dry_run(text);
        assert_eq!(install, ["alpha==2.0", "gamma==1.0"]);
        assert_eq!(remove, ["alpha==1.0", "delta==1.0"]);
        assert!(is_named("My_Pkg==0.1.0", "my-pkg"));
        assert!(!is_named("alpha==1.0", "alp"));
    }
}
