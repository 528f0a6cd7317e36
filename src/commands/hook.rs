//! `labup hook bash|zsh|fish` and the hidden `labup __shell enter|start|leave` it calls with
//! `[shell] autostart`.
//!
//! The hook itself must be instant and change nothing: it reads the config, the venv marker and
//! the wrappers' manifest, writes nothing and starts no process (no Python, no NVML, no sync).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{ExitCode, Stdio};

use anyhow::{Context, Result};

use crate::config::{display_path, Config};
use crate::error::Fail;
use crate::project::{Layout, Workspace};
use crate::python::{interpreter, sources::Sources, sync};
use crate::services::proc;
use crate::services::state::RunDir;
use crate::shell::autostart::{self, Registry, StopPlan};
use crate::shell::script::{self, Activation};
use crate::shell::{sh_quote, wrappers, Shell};
use crate::ui::Ui;

/// The hidden `labup __shell` actions the hook's code calls.
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum ShellAction {
    /// Register a shell that just entered and start the services in the background.
    Enter {
        /// The shell's process id.
        #[arg(long)]
        pid: i32,
    },
    /// The background half of `enter`: `labup up`, then record what it started.
    Start,
    /// Forget a shell that exits; the last one stops what entries started.
    Leave {
        /// The shell's process id.
        #[arg(long)]
        pid: i32,
    },
}

/// `labup hook SHELL`: prints the activation code; hints go to stderr.
pub(crate) fn hook(root: &Path, explicit: bool, shell: Shell) -> Result<ExitCode> {
    // The rule every command keeps (`project::is_project`): a hook in `.bashrc` stays silent
    // everywhere else.
    if !explicit && !crate::project::is_project(root) {
        return Ok(ExitCode::SUCCESS);
    }
    let ws = Workspace::load(root)?;
    let config = &ws.config;
    let parent = super::parent_env();
    let wrapper_state = wrappers::state(&ws, &parent);
    let wrappers_dir = ws.layout.shell_bin();
    let autostart = config.shell.autostart.then(labup_program);
    let activation = Activation {
        root: root.to_path_buf(),
        venv: config.python.venv.clone(),
        wrappers: (matches!(wrapper_state, wrappers::State::Current | wrappers::State::Stale)).then_some(wrappers_dir),
        pip: Some(ws.layout.shell_pip()).filter(|d| d.join("pip").is_file()),
        prompt: script::prompt_name(&config.project.name),
        autostart,
    };
    print!("{}", script::render(&activation, shell));
    // A greeting is for a person at a terminal: not in scripts, CI logs or `$(…)` captures.
    if config.shell.banner && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("{}", banner_line(config));
    }
    // With autostart the entry runs `labup up`, which syncs: no hint needed.
    if !config.shell.autostart {
        if let Some(hint) = venv_hint(&ws).or_else(|| wrapper_hint(&wrapper_state)) {
            eprintln!("labup: {hint}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The one-line greeting on shell entry (`[shell] banner`): project, Python, GPU, from files
/// only (the venv's marker, the driver's version file).
fn banner_line(config: &Config) -> String {
    let python = crate::python::fingerprint::read(&config.python.venv)
        .map_or_else(|| "no venv yet".to_string(), |m| format!("Python {}", m.python));
    let host = crate::gpu::Host::from_env();
    let gpu = crate::ui::banner::gpu_line(&host, crate::gpu::detect::platform(&host));
    format!("labup · {} · {python} · {gpu}", config.project.name)
}

/// How the hook's code calls labup: by name when a `labup` is on PATH (under Nix that is the
/// wrapper that sets `LABUP_PYTHON` and friends), else by this executable's path.
fn labup_program() -> String {
    if interpreter::search_path("labup").is_some() {
        return "labup".into();
    }
    std::env::current_exe().map_or_else(|_| "labup".into(), |p| sh_quote(&p.display().to_string()))
}

/// One line when the venv is missing or out of date: the same check as the no-op sync
/// (`sync::up_to_date`: marker, venv health, fingerprint of the inputs), which only stats,
/// reads and hashes a few small files.
fn venv_hint(ws: &Workspace) -> Option<String> {
    let config = &ws.config;
    let venv = &config.python.venv;
    if !interpreter::venv_python(venv).exists() {
        return Some(format!("no {} yet: run `labup up` (or `labup sync`)", display_path(venv)));
    }
    let interp = match interpreter::for_venv(config.python.version.as_deref(), venv) {
        Ok(i) => i,
        // `labup sync` would fail the same way: say what fixes it instead.
        Err(e) => {
            return Some(match e.downcast_ref::<Fail>() {
                Some(Fail { message, hint: Some(hint), .. }) => format!("{message}: {hint}, then `labup sync`"),
                _ => format!("{e:#}"),
            })
        }
    };
    let sources = match Sources::detect(config) {
        Ok(s) => s,
        Err(e) => return Some(format!("{}: run `labup sync` for details", e.message)),
    };
    // With torch and `torch = "auto"` the fingerprint holds the backend, which may need NVML's
    // device list: the hook never loads NVML, so there it only checks that a sync finished.
    if config.python.torch == "auto" && crate::gpu::torch_requested(&sources) {
        return crate::python::fingerprint::read(venv)
            .is_none()
            .then(|| format!("{} was not synced by labup: run `labup sync` (or `labup up`)", display_path(venv)));
    }
    let torch = crate::gpu::torch_for_sync(ws, &sources);
    if sync::up_to_date(config, &interp, &sources, torch.as_ref().map(|c| &c.backend)).is_none() {
        return Some(format!(
            "{} is out of date with the requirements: run `labup sync` (or `labup up`)",
            display_path(venv)
        ));
    }
    None
}

fn wrapper_hint(state: &wrappers::State) -> Option<String> {
    match state {
        wrappers::State::Missing | wrappers::State::Stale => Some(
            "the python wrappers that add the wheels' native libraries are missing or out of date: run `labup sync`"
                .into(),
        ),
        wrappers::State::NotNeeded | wrappers::State::Current => None,
    }
}

/// `labup __shell …`.
pub(crate) fn shell_action(root: &Path, action: &ShellAction, ui: &Ui) -> Result<ExitCode> {
    match action {
        ShellAction::Enter { pid } => enter(root, *pid),
        ShellAction::Start => start(root),
        ShellAction::Leave { pid } => leave(root, *pid, ui),
    }
}

fn enter(root: &Path, pid: i32) -> Result<ExitCode> {
    let shell = proc::identify(pid).with_context(|| format!("no running shell with pid {pid}"))?;
    let registry = Registry::of(&Layout::of(root));
    {
        let _lock = registry.lock()?;
        registry.register(&shell)?;
    }
    let exe = std::env::current_exe().context("cannot find the labup executable")?;
    // Not waited for: the prompt comes at once; `start` prints one line when it is done.
    std::process::Command::new(exe)
        .args(["__shell", "start", "--project"])
        .arg(root)
        .current_dir(root)
        .stdin(Stdio::null())
        .env(crate::envvars::LABUP_NO_PROGRESS, "1")
        .spawn()
        .context("cannot start `labup up` in the background")?;
    eprintln!("labup: starting the services in the background (`labup status` shows them)");
    Ok(ExitCode::SUCCESS)
}

/// Names of services whose process runs now.
fn running(layout: &Layout) -> BTreeSet<String> {
    RunDir::of(layout).read().services.into_iter().filter(|(_, r)| r.running()).map(|(n, _)| n).collect()
}

fn start(root: &Path) -> Result<ExitCode> {
    // A session of its own: Ctrl-C at the new prompt or closing the terminal does not reach it.
    let _ = nix::unistd::setsid();
    let ws = Workspace::load(root)?;
    let layout = &ws.layout;
    let before = running(layout);
    // Only what is not running: `up` restarts a service whose environment changed, and this
    // shell's differs from the one that started the others (by hand, or from another shell).
    let missing: Vec<String> =
        ws.config.enabled_services().map(|s| s.name.clone()).filter(|n| !before.contains(n)).collect();
    let mut args: Vec<&str> = if missing.is_empty() { vec!["sync"] } else { vec!["up", "--json"] };
    args.extend(missing.iter().map(String::as_str));
    let out = labup_here(root, &args)?;
    let after = running(layout);
    let started: BTreeSet<String> = after.difference(&before).cloned().collect();
    layout.ensure(layout.logs())?;
    let log = layout.autostart_log();
    let _ = std::fs::write(&log, &out.stderr);
    let registry = Registry::of(layout);
    {
        let _lock = registry.lock()?;
        registry.add_started(&started)?;
    }
    // The shell may have exited while the services were starting: then nobody is left to stop them.
    stop_if_last(root, &registry, &Ui::new(true, false))?;
    if out.status.success() {
        let status = labup_here(root, &["status", "--json"])?;
        eprintln!("labup: {}", ready_line(&status.stdout));
        Ok(ExitCode::SUCCESS)
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        let first = text.lines().find(|l| l.starts_with("error:")).unwrap_or("`labup up` failed");
        eprintln!("labup: autostart: {first} (see {})", display_path(&log));
        Ok(ExitCode::FAILURE)
    }
}

/// Runs this labup on the project, capturing its output.
fn labup_here(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    let exe = std::env::current_exe().context("cannot find the labup executable")?;
    std::process::Command::new(exe)
        .args(args)
        .arg("--project")
        .arg(root)
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `labup {}`", args.join(" ")))
}

/// `jupyter http://… · app http://…` from `labup up --json`.
fn ready_line(json: &[u8]) -> String {
    let doc: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let items: Vec<String> = doc["services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["state"] == "ready")
        .map(|s| match s["url"].as_str() {
            Some(url) => format!("{} {url}", s["name"].as_str().unwrap_or("?")),
            None => s["name"].as_str().unwrap_or("?").to_string(),
        })
        .collect();
    if items.is_empty() {
        "no services to start".into()
    } else {
        format!("ready: {}", items.join(" · "))
    }
}

fn leave(root: &Path, pid: i32, ui: &Ui) -> Result<ExitCode> {
    // The terminal closing sends SIGHUP to the shell and to us: finish stopping regardless.
    let hangup = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup);
    let registry = Registry::of(&Layout::of(root));
    {
        let _lock = registry.lock()?;
        registry.unregister(pid);
    }
    stop_if_last(root, &registry, ui)?;
    Ok(ExitCode::SUCCESS)
}

/// When no registered shell is left, stops the services entries started that still run.
fn stop_if_last(root: &Path, registry: &Registry, ui: &Ui) -> Result<()> {
    let _lock = registry.lock()?;
    if !registry.live().is_empty() {
        return Ok(());
    }
    match autostart::stop_plan(&registry.started(), &running(&Layout::of(root))) {
        StopPlan::Nothing => {}
        StopPlan::All(names) => {
            ui.info(format!("labup: last shell closed: stopping {}", names.join(", ")));
            super::stop(root, &[], ui)?;
        }
        StopPlan::Only(names) => {
            ui.info(format!("labup: last shell closed: stopping {} (started on entry)", names.join(", ")));
            super::stop(root, &names, ui)?;
        }
    }
    registry.clear_started()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_lists_ready_services_with_their_url() {
        let json = br#"{"services":[{"name":"web","state":"ready","url":"http://127.0.0.1:1/"},
            {"name":"x","state":"failed","url":null},{"name":"job","state":"ready","url":null}]}"#;
        assert_eq!(ready_line(json), "ready: web http://127.0.0.1:1/ · job");
        assert_eq!(ready_line(b"{}"), "no services to start");
    }

    #[test]
    fn banner_line_names_project_python_and_gpu() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labup.toml"), "[project]\nname = \"demo\"\n").unwrap();
        let config = Config::load(dir.path()).unwrap();
        let line = banner_line(&config);
        assert!(line.starts_with("labup · demo · no venv yet · "), "{line}");
    }
}
