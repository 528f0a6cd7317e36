//! `labup up`, `stop`, `restart`, `status`, `logs`: the client side of the supervisor.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::error::Fail;
use crate::fsutil::LockFile;
use crate::project::Layout;
use crate::services::control::{self, Request};
use crate::services::logs;
use crate::services::policy::Phase;
use crate::services::proc;
use crate::services::spec::Spec;
use crate::services::state::{RunDir, RunState};
use crate::services::supervisor;
use crate::ui::Ui;

/// Whether `spec` runs, ready, with exactly this spec.
pub(super) fn is_up(state: &RunState, spec: &Spec) -> bool {
    state.services.get(&spec.name).is_some_and(|r| r.state == Phase::Ready && r.spec.same_service(spec) && r.running())
}

/// Starts the detached supervisor unless one runs, and waits until it answers.
pub(super) fn ensure_supervisor(root: &Path, run: &RunDir) -> Result<()> {
    if run.live_supervisor(&run.read()).is_some() && control::send(&run.socket(), &Request::Ping).is_ok() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the labup executable")?;
    let log = logs::open_append(&run.dir.join("supervisor.log"))?;
    let mut child = std::process::Command::new(exe)
        .arg("__supervise")
        .arg("--project")
        .arg(root)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start the supervisor")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if control::send(&run.socket(), &Request::Ping).is_ok_and(|r| r.ok) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have lost the race to a supervisor another `labup up` started.
            if run.live_supervisor(&run.read()).is_none() && !status.success() {
                let tail = logs::tail(&run.dir.join("supervisor.log"), 10).join("\n");
                return Err(Fail::new(format!("the supervisor exited at once ({status}):\n{tail}")).into());
            }
        }
        if Instant::now() > deadline {
            return Err(Fail::new("the supervisor did not answer within 10 s")
                .hint(format!("look at {}", run.dir.join("supervisor.log").display()))
                .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A flag SIGINT/SIGTERM set from the moment `up` asks the supervisor to start services: the
/// wait then says what keeps running and exits 130. Once the wait is over the next signal has
/// its default effect again. Registered once per process.
pub(super) fn interrupts() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    Arc::clone(FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register_conditional_default(sig, Arc::clone(&flag));
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        flag
    }))
}

/// Set when the wait ends, however it ends: later signals act as if labup never caught them.
struct Interrupt(Arc<AtomicBool>);

impl Drop for Interrupt {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Waits until every spec is ready or has failed, with a spinner per service on a terminal.
pub(super) fn wait_for(run: &RunDir, specs: &[Spec], ui: &Ui) -> Result<RunState> {
    let bars = ui.spinners(specs.iter().map(|s| s.name.as_str()));
    let interrupted = Interrupt(interrupts());
    let limit = specs.iter().map(|s| s.start_timeout_ms).max().unwrap_or(60_000) + 60_000;
    let deadline = Instant::now() + Duration::from_millis(limit);
    let started = Instant::now();
    let mut announced: BTreeMap<String, Phase> = BTreeMap::new();
    loop {
        let state = run.read();
        let mut pending = false;
        for spec in specs {
            let rec = state.services.get(&spec.name);
            let phase = rec.map_or(Phase::Starting, |r| r.state);
            bars.message(
                &spec.name,
                match (phase, rec.and_then(|r| r.last_error.clone())) {
                    (Phase::Backoff, Some(e)) => format!("restarting ({e})"),
                    (p, _) => format!("{p:?}").to_lowercase(),
                },
            );
            if announced.get(&spec.name) != Some(&phase) {
                announced.insert(spec.name.clone(), phase);
                if matches!(phase, Phase::Ready | Phase::Failed | Phase::Backoff) {
                    bars.finish(&spec.name);
                    let took = crate::ui::format_duration(started.elapsed());
                    match phase {
                        Phase::Ready => ui.info(format!("{} {} is ready in {took}", ui.paint("✓", "32"), spec.name)),
                        Phase::Backoff => ui.info(format!(
                            "{} {} failed to start after {took} (restarting in the background)",
                            ui.paint("✗", "31"),
                            spec.name
                        )),
                        _ => ui.info(format!("{} {} failed", ui.paint("✗", "31"), spec.name)),
                    }
                }
            }
            pending |= !settled(&state, spec);
        }
        if !pending {
            return Ok(state);
        }
        if interrupted.0.load(Ordering::SeqCst) {
            bars.clear();
            let waiting: Vec<&str> = specs
                .iter()
                .filter(|s| !state.services.get(&s.name).is_some_and(|r| r.state == Phase::Ready))
                .map(|s| s.name.as_str())
                .collect();
            eprintln!(
                "interrupted: the supervisor keeps running in the background and goes on starting {} \
                 (it does not stop with this terminal)\nhint: `labup status` shows them, `labup stop` stops them",
                waiting.join(", ")
            );
            std::process::exit(130);
        }
        if run.live_supervisor(&state).is_none() && state.supervisor.is_some() {
            return Err(Fail::new("the supervisor stopped while services were starting")
                .hint(format!("look at {}", run.dir.join("supervisor.log").display()))
                .into());
        }
        if Instant::now() > deadline {
            return Ok(state);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `up` stops waiting for `spec`: it is ready, stopped or failed, or its first start
/// failed (a restart in the background is not waited for: `status` shows it), or it waits for
/// an `after` service that did.
fn settled(state: &RunState, spec: &Spec) -> bool {
    let phase = |name: &str| state.services.get(name).map_or(Phase::Starting, |r| r.state);
    match phase(&spec.name) {
        Phase::Ready | Phase::Failed | Phase::Stopped | Phase::Backoff => true,
        Phase::Starting => {
            state.services.get(&spec.name).is_some_and(|r| r.process.is_none())
                && spec.after.iter().any(|d| matches!(phase(d), Phase::Failed | Phase::Backoff))
        }
    }
}

pub(super) fn fail_if_not_ready(run: &RunDir, state: &RunState, specs: &[Spec]) -> Result<ExitCode> {
    let failed: Vec<&Spec> = specs.iter().filter(|s| !is_up(state, s)).collect();
    let Some(first) = failed.first() else { return Ok(ExitCode::SUCCESS) };
    let mut message = String::new();
    for spec in &failed {
        let phase = |n: &str| state.services.get(n).map(|r| r.state);
        let blocked = spec.after.iter().find(|d| matches!(phase(d), Some(Phase::Failed | Phase::Backoff)));
        let why = state
            .services
            .get(&spec.name)
            .and_then(|r| r.last_error.clone())
            .or_else(|| blocked.map(|d| format!("not started: it waits for `{d}`, which did not start")))
            .unwrap_or_else(|| "did not become ready".into());
        message.push_str(&format!("service `{}` is not ready: {why}\n", spec.name));
        if state.services.get(&spec.name).is_some_and(|r| r.state == Phase::Backoff) {
            message.push_str(&format!(
                "labup keeps restarting it in the background (`labup status` shows how it goes, `labup stop {}` stops it)\n",
                spec.name
            ));
        }
        let tail = logs::tail(&spec.log_path(&run.logs), 10);
        if !tail.is_empty() {
            message.push_str(&format!("last lines of its log:\n{}\n", tail.join("\n")));
        }
    }
    Err(Fail::new(message.trim_end().to_string()).hint(format!("see `labup logs {}`", first.name)).into())
}

/// `labup stop [SERVICE…]`.
pub fn stop(root: &Path, names: &[String], ui: &Ui) -> Result<ExitCode> {
    let run = RunDir::of(&Layout::of(root));
    let state = run.read();
    for name in names {
        if !state.services.contains_key(name) {
            let known: Vec<&str> = state.services.keys().map(String::as_str).collect();
            return Err(Fail::usage(format!("no service called `{name}` was started here"))
                .hint(if known.is_empty() {
                    "nothing was started: `labup up`".into()
                } else {
                    format!("known: {}", known.join(", "))
                })
                .into());
        }
    }
    let supervised = run.live_supervisor(&state).is_some();
    // Only what runs (or is starting, or waits to be restarted) is reported as stopped.
    let active: Vec<String> = state
        .services
        .iter()
        .filter(|(n, _)| names.is_empty() || names.contains(n))
        .filter(|(_, r)| {
            r.running() || (supervised && matches!(r.state, Phase::Starting | Phase::Ready | Phase::Backoff))
        })
        .map(|(n, _)| n.clone())
        .collect();
    if active.is_empty() && (!supervised || !names.is_empty()) {
        ui.info(if names.is_empty() {
            "nothing is running".to_string()
        } else {
            format!("{} {} not running", names.join(", "), if names.len() == 1 { "is" } else { "are" })
        });
        return Ok(ExitCode::SUCCESS);
    }
    stop_and_wait(&run, &state, names)?;
    if active.is_empty() {
        ui.info("nothing is running");
    } else {
        ui.info(format!("{} stopped {}", ui.paint("✓", "32"), active.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}

/// Stops `names` (everything, and the supervisor, when empty) and waits until their groups are
/// gone; without a supervisor (it was killed) stops what it left running, identity verified.
pub(super) fn stop_and_wait(run: &RunDir, state: &RunState, names: &[String]) -> Result<()> {
    let targets: Vec<String> = if names.is_empty() { state.services.keys().cloned().collect() } else { names.to_vec() };
    let supervisor = run.live_supervisor(state);
    if supervisor.is_some() && control::send(&run.socket(), &Request::Stop { names: names.to_vec() }).is_ok() {
        let grace =
            targets.iter().filter_map(|n| state.services.get(n)).map(|r| r.spec.stop_timeout_ms).max().unwrap_or(0);
        let deadline = Instant::now() + Duration::from_millis(grace + 10_000);
        loop {
            let now = run.read();
            let running = targets.iter().any(|n| now.services.get(n).is_some_and(|r| r.process.is_some()));
            let sup_alive = names.is_empty() && run.live_supervisor(&now).is_some();
            if (!running && !sup_alive) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    } else {
        let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
        let mut state = run.read();
        for name in &targets {
            if let Some(rec) = state.services.get_mut(name) {
                if let Some(id) = rec.process.take() {
                    proc::stop_group(&id, Duration::from_millis(rec.spec.stop_timeout_ms), || {});
                }
                rec.state = Phase::Stopped;
            }
        }
        state.supervisor = None;
        run.write(&state)?;
    }
    Ok(())
}

/// `labup logs [SERVICE] [-f] [-n N]`.
pub fn show_logs(root: &Path, service: Option<&str>, follow: bool, lines: usize) -> Result<ExitCode> {
    let run = RunDir::of(&Layout::of(root));
    let mut names: Vec<String> = match service {
        Some(s) => vec![s.to_string()],
        None => std::fs::read_dir(&run.logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log").map(str::to_string))
            .collect(),
    };
    names.sort();
    if let Some(s) = service {
        if !run.logs.join(format!("{s}.log")).is_file() {
            return Err(Fail::usage(format!("no log for `{s}` in {}", run.logs.display()))
                .hint("`labup status` lists the services; a service has a log once it started")
                .into());
        }
    }
    let prefix = names.len() > 1;
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let emit = |name: &str, line: &str| {
        if prefix {
            println!("{name:width$} | {line}");
        } else {
            println!("{line}");
        }
    };
    let mut offsets = Vec::new();
    for name in &names {
        let path = run.logs.join(format!("{name}.log"));
        for line in logs::tail(&path, lines) {
            emit(name, &line);
        }
        offsets.push((name.clone(), path.clone(), std::fs::metadata(&path).map_or(0, |m| m.len())));
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        for (name, path, offset) in &mut offsets {
            for line in logs::read_from(path, offset).lines() {
                emit(name, line);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The hidden `labup __supervise`: the detached supervisor.
pub fn supervise(root: &Path) -> Result<ExitCode> {
    // A session of its own: closing the terminal that ran `labup up` does not reach it.
    let _ = nix::unistd::setsid();
    supervisor::run(&Layout::of(root))?;
    Ok(ExitCode::SUCCESS)
}
