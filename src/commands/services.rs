//! `labup up`, `stop`, `restart`, `status`, `logs`: the client side of the supervisor.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::error::Fail;
use crate::project::Layout;
use crate::services::client;
use crate::services::logs;
use crate::services::policy::Phase;
use crate::services::spec::Spec;
use crate::services::state::{RunDir, RunState};
use crate::services::supervisor;
use crate::ui::{Spinners, Ui};

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
    let started = Instant::now();
    let mut announced: BTreeMap<String, Phase> = BTreeMap::new();
    client::wait_ready(run, specs, |state| {
        for spec in specs {
            show_progress(state, spec, &bars, &mut announced, started, ui);
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
    })
}

/// One service's spinner message, and a line once it is ready or failed.
fn show_progress(
    state: &RunState,
    spec: &Spec,
    bars: &Spinners,
    announced: &mut BTreeMap<String, Phase>,
    started: Instant,
    ui: &Ui,
) {
    let rec = state.services.get(&spec.name);
    let phase = rec.map_or(Phase::Starting, |r| r.state);
    bars.message(
        &spec.name,
        match (phase, rec.and_then(|r| r.last_error.clone())) {
            (Phase::Backoff, Some(e)) => format!("restarting ({e})"),
            (p, _) => format!("{p:?}").to_lowercase(),
        },
    );
    if announced.get(&spec.name) == Some(&phase) {
        return;
    }
    announced.insert(spec.name.clone(), phase);
    if !matches!(phase, Phase::Ready | Phase::Failed | Phase::Backoff) {
        return;
    }
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

/// `labup stop [SERVICE…]`.
pub(crate) fn stop(root: &Path, names: &[String], ui: &Ui) -> Result<ExitCode> {
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
    client::stop_and_wait(&run, &state, names)?;
    if active.is_empty() {
        ui.info("nothing is running");
    } else {
        ui.info(format!("{} stopped {}", ui.paint("✓", "32"), active.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}

/// `labup logs [SERVICE] [-f] [-n N]`.
pub(crate) fn show_logs(root: &Path, service: Option<&str>, follow: bool, lines: usize) -> Result<ExitCode> {
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
        if !crate::project::log_file(&run.logs, s).is_file() {
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
        let path = crate::project::log_file(&run.logs, name);
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
pub(crate) fn supervise(root: &Path) -> Result<ExitCode> {
    // A session of its own: closing the terminal that ran `labup up` does not reach it.
    let _ = nix::unistd::setsid();
    supervisor::run(&Layout::of(root))?;
    Ok(ExitCode::SUCCESS)
}
