//! `labup status`: the service table or its JSON, with what the supervisor does not know itself:
//! an Ollama server running outside labup, services exposed on every interface, and where
//! Ollama's loaded models sit.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::config::{Config, Port, ServiceKind};
use crate::project::Layout;
use crate::services::ollama::{self, External, Loaded};
use crate::services::policy::Phase;
use crate::services::ports;
use crate::services::proc;
use crate::services::spec::Spec;
use crate::services::state::{Record, RunDir, RunState};
use crate::ui::Ui;

/// One service in `labup status --json`.
#[derive(Debug, Serialize)]
pub(super) struct ServiceStatus {
    name: String,
    kind: String,
    state: Phase,
    pid: Option<i32>,
    port: Option<u16>,
    url: Option<String>,
    restarts: u32,
    uptime_s: Option<u64>,
    last_error: Option<String>,
    /// A server labup found running and uses, but did not start and will not stop.
    external: bool,
    /// The all-interfaces address it listens on (`0.0.0.0`, `::`), when it does.
    exposed: Option<String>,
    /// Ollama: the models loaded in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<Vec<Loaded>>,
}

/// The status document.
#[derive(Debug, Serialize)]
pub(super) struct Status {
    supervisor: SupervisorStatus,
    services: Vec<ServiceStatus>,
}

#[derive(Debug, Serialize)]
struct SupervisorStatus {
    pid: Option<i32>,
    running: bool,
}

/// A row from a record; `listening` (the host's listening sockets, read once for every row)
/// also shows exposure and Ollama's loaded models (skipped by a no-op `labup up`).
fn service_status(rec: &Record, supervised: bool, listening: Option<&ports::Listening>) -> ServiceStatus {
    let alive = rec.running();
    let state = match rec.state {
        Phase::Ready | Phase::Starting if !alive => {
            if supervised {
                rec.state
            } else {
                Phase::Stopped
            }
        }
        s => s,
    };
    let now = proc::unix_now();
    let port = rec.port.filter(|_| alive && listening.is_some());
    ServiceStatus {
        name: rec.spec.name.clone(),
        kind: rec.spec.kind.clone(),
        state,
        pid: rec.process.as_ref().filter(|_| alive).map(|p| p.pid),
        port: rec.port,
        url: rec.url(),
        restarts: rec.restarts,
        uptime_s: rec.started_at.filter(|_| alive).map(|t| now.saturating_sub(t)),
        last_error: rec.last_error.clone(),
        external: false,
        exposed: port.zip(listening).and_then(|(p, l)| l.exposed(p)),
        models: port.filter(|_| rec.spec.kind == "ollama" && state == Phase::Ready).and_then(loaded_models),
    }
}

fn loaded_models(port: u16) -> Option<Vec<Loaded>> {
    ollama::Client::new(port, Some(Duration::from_secs(2))).loaded().ok()
}

/// Rows for Ollama servers labup uses without owning them.
pub(super) fn external_rows(external: &[External]) -> Vec<ServiceStatus> {
    if external.is_empty() {
        return Vec::new();
    }
    let listening = ports::Listening::now();
    external
        .iter()
        .map(|e| ServiceStatus {
            name: e.name.clone(),
            kind: "ollama".into(),
            state: Phase::Ready,
            pid: None,
            port: Some(e.port),
            url: Some(format!("http://127.0.0.1:{}/", e.port)),
            restarts: 0,
            uptime_s: None,
            last_error: None,
            external: true,
            exposed: listening.exposed(e.port),
            models: loaded_models(e.port),
        })
        .collect()
}

/// Rows for `specs` as the state shows them.
pub(super) fn rows_for(run: &RunDir, state: &RunState, specs: &[Spec], probe: bool) -> Vec<ServiceStatus> {
    let supervised = run.live_supervisor(state).is_some();
    let listening = probe.then(ports::Listening::now);
    specs
        .iter()
        .filter_map(|s| state.services.get(&s.name))
        .map(|r| service_status(r, supervised, listening.as_ref()))
        .collect()
}

/// The status document for `rows`.
pub(super) fn document(run: &RunDir, state: &RunState, rows: Vec<ServiceStatus>) -> Status {
    let sup = run.live_supervisor(state);
    Status { supervisor: SupervisorStatus { pid: sup.as_ref().map(|s| s.pid), running: sup.is_some() }, services: rows }
}

/// Ollama servers answering outside labup: for each declared Ollama service labup does not run,
/// and on the default port when none is declared (so `status` mentions a server that is there).
fn external_servers(config: Option<&Config>, state: &RunState) -> Vec<External> {
    let mut candidates: Vec<(String, u16, Vec<String>)> = Vec::new();
    let declared: Vec<_> =
        config.iter().flat_map(|c| c.services.iter()).filter(|s| s.kind == ServiceKind::Ollama).collect();
    for svc in &declared {
        if let Some(Port::Fixed(port)) = svc.port {
            candidates.push((svc.name.clone(), port, svc.models.clone()));
        }
    }
    if declared.is_empty() {
        candidates.push(("ollama".into(), 11434, Vec::new()));
    }
    candidates
        .into_iter()
        .filter(|(name, port, _)| {
            !state.services.get(name).is_some_and(Record::running)
                && !state.services.values().any(|r| r.running() && r.port == Some(*port))
        })
        .filter_map(|(name, port, models)| {
            let version = ollama::Client::new(port, Some(Duration::from_millis(300))).version()?;
            Some(External { name, port, version, models })
        })
        .collect()
}

/// `labup status`.
pub(crate) fn status(root: &Path, json: bool, ui: &Ui) -> Result<ExitCode> {
    let run = RunDir::of(&Layout::of(root));
    let state = run.read();
    let supervised = run.live_supervisor(&state).is_some();
    // What the config declares, plus what still runs (a service removed from the config that a
    // `labup up` has not stopped yet); stale records of removed services are not shown.
    let config = Config::load(root).ok();
    let shown = |name: &str, r: &Record| {
        config.as_ref().is_none_or(|c| c.services.iter().any(|s| s.name == name)) || r.running()
    };
    let listening = ports::Listening::now();
    let mut rows: Vec<ServiceStatus> = state
        .services
        .iter()
        .filter(|(n, r)| shown(n, r))
        .map(|(_, r)| service_status(r, supervised, Some(&listening)))
        .collect();
    rows.extend(external_rows(&external_servers(config.as_ref(), &state)));
    let doc = document(&run, &state, rows);
    // A failed service is a failure to report to scripts (and `watch`/CI): exit 1.
    let code =
        if doc.services.iter().any(|s| s.state == Phase::Failed) { ExitCode::FAILURE } else { ExitCode::SUCCESS };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(code);
    }
    match (doc.supervisor.running, state.supervisor.is_some()) {
        (true, _) => {}
        (false, true) => {
            ui.warn("the supervisor is not running (it was killed?): `labup up` recovers, adopting what still runs");
        }
        (false, false) if doc.services.is_empty() => {
            println!("nothing is running: start with `labup up`");
            return Ok(ExitCode::SUCCESS);
        }
        (false, false) => {}
    }
    print_rows(&doc.services, ui);
    Ok(code)
}

/// The table on stdout; then, on stderr, exposure warnings and where models sit.
pub(super) fn print_rows(rows: &[ServiceStatus], ui: &Ui) {
    let mut table =
        vec![["SERVICE", "STATE", "PID", "URL", "UPTIME", "RESTARTS", "LAST ERROR"].map(String::from).to_vec()];
    for r in rows {
        let state = format!("{:?}", r.state).to_lowercase();
        table.push(vec![
            r.name.clone(),
            if r.external { format!("{state} (external)") } else { state },
            r.pid.map_or("-".into(), |p| p.to_string()),
            r.url.clone().unwrap_or_else(|| "-".into()),
            r.uptime_s.map_or("-".into(), format_uptime),
            r.restarts.to_string(),
            r.last_error.clone().unwrap_or_default(),
        ]);
    }
    let widths: Vec<usize> =
        (0..7).map(|i| table.iter().map(|row| row[i].chars().count()).max().unwrap_or(0)).collect();
    for row in table {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    for r in rows {
        if let (Some(addr), Some(port)) = (&r.exposed, r.port) {
            ui.warn(format!(
                "`{}` listens on all interfaces ({addr} port {port}): other machines on the network can reach it\n\
                 hint: bind 127.0.0.1 instead: FastHTML `serve(host=\"127.0.0.1\")`, uvicorn `--host 127.0.0.1`, \
                 Flask `app.run(host=\"127.0.0.1\")`",
                r.name
            ));
        }
        for m in r.models.iter().flatten() {
            ui.info(format!("{}: model {} loaded, {}, {}", r.name, m.name, format_bytes(m.size), m.placement()));
        }
    }
}

/// `1.3 GiB`, `512 MiB`.
fn format_bytes(b: u64) -> String {
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    if b as f64 >= GIB {
        format!("{:.1} GiB", b as f64 / GIB)
    } else {
        format!("{} MiB", b / (1024 * 1024))
    }
}

/// `42s`, `3m05s`, `2h03m`.
fn format_uptime(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_and_sizes_read_well() {
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(125), "2m05s");
        assert_eq!(format_uptime(7380), "2h03m");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(format_bytes(512 * 1024 * 1024), "512 MiB");
    }
}
