//! The commands: thin glue between the command line and the modules that do the work.

mod doctor;
mod export;
mod gpu;
mod hook;
mod init;
mod jupyterhub;
mod open;
mod services;
mod status;
mod up;

pub(crate) use doctor::doctor;
pub(crate) use export::export;
pub(crate) use gpu::gpu;
pub(crate) use hook::{hook, shell_action, ShellAction};
pub(crate) use init::init;
pub(crate) use jupyterhub::jupyterhub_singleuser;
pub(crate) use open::open;
pub(crate) use services::{show_logs, stop, supervise};
pub(crate) use status::status;
pub(crate) use up::{restart, up, UpOptions};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::config::display_path;
use crate::env::ChildEnv;
use crate::error::Fail;
use crate::project::Workspace;
use crate::python::plan::{LockPlan, Plan, Planner, VenvPlan, Work};
use crate::python::sync::{self, Done};
use crate::ui::{format_duration, Ui};

/// `labup sync --dry-run`: the plan on stdout (text or JSON), nothing changed.
pub(crate) fn sync_plan(root: &Path, json: bool) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    let plan = Planner::new(&ws)?.dry_run()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", sync_plan_text(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

/// The sync plan as lines on stdout.
fn print_sync_plan(plan: &Plan) {
    print!("{}", sync_plan_text(plan));
}

/// The lines of a sync plan, as `--dry-run` prints them.
fn sync_plan_text(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let Work::Sync(changes) = &plan.work else {
        return "sync: nothing to do (the venv matches the lock)\n".into();
    };
    let mut line = |text: String| {
        let _ = writeln!(out, "{text}");
    };
    line(match &changes.venv {
        VenvPlan::Rebuild(why) => format!("venv: would rebuild ({why})"),
        VenvPlan::Create => "venv: would create".into(),
        VenvPlan::Keep => "venv: would keep".into(),
    });
    line(match plan.lock {
        LockPlan::Resolve(_) => "lock: would resolve (missing or out of date with the requirements)".into(),
        LockPlan::None => "lock: none (no requirements)".into(),
        LockPlan::Current => "lock: current".into(),
    });
    if let Some(t) = &plan.torch {
        line(format!("torch: {} from {}", t.choice.backend, t.route.describe()));
    }
    if let Some(p) = &changes.project {
        line(format!(
            "project: would install `{}` from {} (editable, as `uv sync` does)",
            p.name,
            display_path(&p.dir)
        ));
    }
    match (&changes.install, &changes.remove) {
        (Some(i), Some(r)) => {
            i.iter().for_each(|p| line(format!("  + {p}")));
            r.iter().for_each(|p| line(format!("  - {p}")));
            if i.is_empty() && r.is_empty() {
                line("packages: no change".into());
            }
        }
        _ => line("packages: known once the lock is resolved".into()),
    }
    out
}

/// `labup sync`.
pub(crate) fn sync(root: &Path, locked: bool, json: bool, ui: &Ui) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    let outcome = sync::sync(&ws, locked, ui)?;
    refresh_wrappers(&ws, crate::gpu::wire(&ws).as_ref(), ui);
    if outcome.action != Done::Noop {
        up::restart_on_new_venv(&ws, ui)?;
    }
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else if outcome.action == Done::Noop {
        ui.info(format!(
            "{} {} is up to date (Python {}) in {}",
            ui.paint("✓", "32"),
            display_path(&outcome.venv),
            outcome.python,
            format_duration(std::time::Duration::from_millis(outcome.duration_ms as u64))
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `labup lock`.
pub(crate) fn lock(root: &Path, upgrade: bool, json: bool, ui: &Ui) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    let outcome = sync::lock(&ws, upgrade, ui)?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `labup run -- CMD…`: replaces labup with the command, in the workspace environment.
pub(crate) fn run(root: &Path, sync_first: bool, command: &[OsString], ui: &Ui) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let ws = Workspace::load(root)?;
    let gpu = if sync_first {
        sync::sync(&ws, false, ui)?;
        warn_old_venv(&ws, ui);
        let gpu = wiring(&ws, ui)?;
        refresh_wrappers(&ws, Ok(&gpu), ui);
        gpu
    } else {
        // Without a sync, a missing or broken venv would let PATH fall through to another
        // Python (the system's), which runs without a word: refuse instead.
        let gpu = wiring(&ws, ui)?;
        check_venv_usable(&ws.config)?;
        gpu
    };
    let (program, args) = command.split_first().context("no command given")?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    child_env(&ws, &gpu).apply(&mut cmd);
    let err = cmd.exec();
    let name = program.to_string_lossy();
    if err.kind() == std::io::ErrorKind::NotFound {
        return Err(Fail::new(format!("command not found: `{name}`"))
            .hint(format!("is it installed in the venv? add it to your requirements, then `labup run -- {name}`"))
            .into());
    }
    Err(anyhow::Error::new(err).context(format!("failed to run `{name}`")))
}

/// For `run --no-sync`: the venv exists and its interpreter resolves.
fn check_venv_usable(config: &crate::config::Config) -> Result<(), Fail> {
    use crate::python::venv;
    let dir = &config.python.venv;
    let hint = "run `labup sync` first (or `labup run` without `--no-sync`, which syncs)";
    match venv::inspect(dir) {
        venv::State::Foreign(why) => Err(venv::refuse(dir, &why)),
        venv::State::Missing => Err(Fail::new(format!(
            "there is no {} yet, so `--no-sync` has no Python to run the command with",
            display_path(dir)
        ))
        .hint(hint)),
        venv::State::Venv(cfg) => {
            let python = crate::python::interpreter::venv_python(dir);
            let why = if std::fs::metadata(&python).is_err() {
                Some(format!("its {} does not resolve", display_path(&python)))
            } else if !cfg.home.is_dir() {
                Some(format!("the interpreter folder it was built from ({}) is gone", cfg.home.display()))
            } else {
                None
            };
            match why {
                Some(why) => Err(Fail::new(format!("{} is broken: {why}", display_path(dir))).hint(hint)),
                None => Ok(()),
            }
        }
    }
}

/// `labup run` does not restart services (the command must start now): it says which run on
/// the old venv, and how to move them.
fn warn_old_venv(ws: &Workspace, ui: &Ui) {
    let run = crate::services::state::RunDir::of(&ws.layout);
    let stale = up::on_old_venv(&run, &run.read(), &ws.config);
    if !stale.is_empty() {
        ui.warn(format!(
            "{} still run on the venv as it was before this sync: `labup restart {}` (or `labup up`) moves them",
            stale.join(", "),
            stale.join(" ")
        ));
    }
}

/// `labup env`.
pub(crate) fn env(root: &Path, explain: bool, json: bool, ui: &Ui) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    let env = child_env(&ws, &wiring(&ws, ui)?);
    if json {
        println!("{}", serde_json::to_string_pretty(&env)?);
    } else {
        print!("{}", env.render(explain));
    }
    Ok(ExitCode::SUCCESS)
}

/// The GPU driver wired for children (links made from the driver's files), warnings to stderr.
fn wiring(ws: &Workspace, ui: &Ui) -> Result<crate::gpu::Wiring> {
    let gpu = crate::gpu::wire(ws)?;
    for w in &gpu.warnings {
        ui.warn(w);
    }
    Ok(gpu)
}

/// The workspace environment for children, with this GPU wiring.
fn child_env(ws: &Workspace, gpu: &crate::gpu::Wiring) -> ChildEnv {
    ChildEnv::workspace(ws, &parent_env(), gpu)
}

/// After a sync: the interpreter wrappers `labup hook` puts on PATH and the project's
/// kernelspec follow the venv and the library path (a compare when nothing changed); a failure
/// only warns.
fn refresh_wrappers(ws: &Workspace, gpu: Result<&crate::gpu::Wiring, &anyhow::Error>, ui: &Ui) {
    let refreshed = gpu
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .and_then(|gpu| crate::shell::wrappers::refresh(ws, &parent_env(), gpu));
    if let Err(e) = refreshed {
        ui.warn(format!("the shell's python wrappers were not updated: {e:#}"));
    }
    if let Err(e) = refresh_pip(ws) {
        ui.warn(format!("the shell's `pip` for the venv was not updated: {e:#}"));
    }
    if let Ok(gpu) = gpu {
        refresh_kernelspec(ws, gpu, ui);
    }
}

/// Writes (or renames, or removes) the project's kernelspec in the venv.
fn refresh_kernelspec(ws: &Workspace, gpu: &crate::gpu::Wiring, ui: &Ui) {
    use crate::python::kernelspec;
    let spec = crate::services::jupyter::kernelspec(ws, &parent_env(), gpu);
    match kernelspec::refresh(&ws.config.python.venv, spec.as_ref()) {
        Ok(r) => {
            for w in &r.warnings {
                ui.warn(w);
            }
            if let (true, Some(s)) = (r.written, &spec) {
                ui.debug(format!("wrote the kernelspec {} ({})", s.name, s.display_name));
            }
            for name in &r.removed {
                ui.debug(format!("removed the old kernelspec {name}"));
            }
        }
        Err(e) => ui.warn(format!("the project's Jupyter kernelspec was not updated: {e:#}")),
    }
}

/// The hooked shell's `pip` (`.labup/shell/pip`): uv's pip when uv installs, else the base
/// interpreter's pip, both aimed at the venv.
fn refresh_pip(ws: &Workspace) -> Result<()> {
    let config = &ws.config;
    use crate::python::{engine::Engine, interpreter};
    use crate::shell::wrappers::{self, PipRunner};
    let runner = match Engine::detect(config.python.installer)? {
        Engine::Uv(uv) => PipRunner::Uv(uv),
        Engine::Pip => {
            PipRunner::Base(interpreter::for_venv(config.python.version.as_deref(), &config.python.venv)?.path)
        }
    };
    wrappers::refresh_pip(ws, &runner)
}

/// The environment labup was started with, for `ChildEnv::workspace`.
fn parent_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::torch;
    use crate::python::interpreter::Info;
    use crate::python::plan::{Changes, PlannedPackage, Staleness, TorchPlan};

    fn sync_plan(venv: VenvPlan, lock: LockPlan, packages: Option<(&[&str], &[&str])>) -> Plan {
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Plan {
            lock,
            torch: None,
            work: Work::Sync(Changes {
                venv,
                install: packages.map(|(i, _)| list(i)),
                remove: packages.map(|(_, r)| list(r)),
                project: None,
                python: Info { version: "3.11.7".into(), implementation: "cpython".into(), executable: "/py".into() },
            }),
        }
    }

    #[test]
    fn the_plan_reads_as_it_always_did() {
        let fresh = sync_plan(VenvPlan::Create, LockPlan::Resolve(Staleness::Missing), None);
        assert_eq!(
            sync_plan_text(&fresh),
            "venv: would create\nlock: would resolve (missing or out of date with the requirements)\n\
             packages: known once the lock is resolved\n"
        );
        let drift = sync_plan(VenvPlan::Keep, LockPlan::Current, Some((&["alpha==2"], &["alpha==1", "gamma==1"])));
        assert_eq!(
            sync_plan_text(&drift),
            "venv: would keep\nlock: current\n  + alpha==2\n  - alpha==1\n  - gamma==1\n"
        );
        let mut rebuild = sync_plan(
            VenvPlan::Rebuild("its bin/python is missing or broken".into()),
            LockPlan::None,
            Some((&[], &[])),
        );
        let cpu = torch::Backend::Cpu;
        rebuild.torch = Some(TorchPlan {
            choice: torch::Choice { backend: cpu.clone(), reason: "r".into() },
            route: torch::Route::Pytorch(cpu),
        });
        if let Work::Sync(c) = &mut rebuild.work {
            c.project = Some(PlannedPackage { name: "demo".into(), dir: "/nowhere/demo".into() });
        }
        assert_eq!(
            sync_plan_text(&rebuild),
            "venv: would rebuild (its bin/python is missing or broken)\nlock: none (no requirements)\n\
             torch: cpu from https://download.pytorch.org/whl/cpu\n\
             project: would install `demo` from /nowhere/demo (editable, as `uv sync` does)\npackages: no change\n"
        );
    }
}
