//! The supervisor's decisions for every service at once: [`Event`]s in, [`Action`]s out, time
//! passed in. Pure: the supervisor loop gathers the events (requests, exits, probe results,
//! ticks) and carries out the actions through its effects; unit tests drive it directly.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::control::{Reply, Request};
use super::policy::{Counters, Exit, Phase, Policy, Run, State, Then};
use super::probe::{Check, ProbeJob, Probed};
use super::proc::Identity;
use super::spec::Spec;
use super::state::{Record, RunState};
use crate::config::{Port, Ready};

/// How often a starting service is probed (at most one probe in flight each).
pub const PROBE_EVERY: Duration = Duration::from_millis(40);

/// Something that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A client's request.
    Request(Request),
    /// The spawn of `name` succeeded; its log was `log_len` bytes long after the start note.
    Spawned { name: String, run: Run, log_len: u64 },
    /// The spawn failed (retried).
    SpawnFailed { name: String, why: String },
    /// It cannot start and retrying will not help (its fixed port is taken).
    Refused { name: String, why: String },
    /// The group leader `pid` exited.
    Exited { name: String, pid: i32, exit: Exit },
    /// Every process of the group led by `pid` is gone.
    GroupGone { name: String, pid: i32 },
    /// A readiness probe finished.
    Probed(Probed),
    /// The log of `name` was rotated (truncated): offsets restart at 0.
    LogRotated { name: String },
    /// A signal asked the supervisor to stop everything.
    Shutdown { signal: &'static str },
    /// Time passed.
    Tick,
}

/// Where a spawned service's port comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortPlan {
    /// No port.
    None,
    /// A free port, the previous one when it is still free.
    Auto { previous: Option<u16> },
    /// This port, refused when another process holds it.
    Fixed(u16),
}

/// What the effects need to spawn a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnJob {
    /// The spec.
    pub spec: Spec,
    /// Its port.
    pub port: PortPlan,
    /// `<NAME>_PORT` of the other services whose port is known.
    pub peers: Vec<(String, String)>,
    /// Its log.
    pub log: PathBuf,
}

/// Something the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Spawn a service; the effects answer with `Spawned`, `SpawnFailed` or `Refused`.
    Spawn(SpawnJob),
    /// Signal a process group.
    SignalGroup { id: Identity, signal: Signal },
    /// Run a readiness probe off the loop; it answers with `Probed`.
    StartProbe(ProbeJob),
    /// Append a labup line to a service's log.
    Note { log: PathBuf, line: String },
    /// A line for the supervisor's own log.
    Log(String),
    /// Answer the request.
    Reply(Reply),
}

/// One supervised service.
#[derive(Debug, Clone)]
pub struct Service {
    /// What it runs.
    pub spec: Spec,
    /// Its state and restart counters.
    pub policy: Policy,
    /// The port it was last given.
    pub port: Option<u16>,
    /// How its leader last ended.
    pub last_exit: Option<Exit>,
    /// Where the log probe reads on.
    pub probe_offset: u64,
    /// Where the foreground log printer reads on.
    pub print_offset: u64,
    probing: bool,
    last_probe: Option<Instant>,
    /// The `ready = { log = … }` regex, compiled once per spec.
    log_re: Option<Arc<regex::Regex>>,
}

impl Service {
    /// A stopped service; `log_len` is where its log ends now.
    pub fn new(spec: Spec, log_len: u64) -> Service {
        let mut s = Service {
            policy: Policy::new(spec.restart),
            spec: spec.clone(),
            port: None,
            last_exit: None,
            probe_offset: 0,
            print_offset: log_len,
            probing: false,
            last_probe: None,
            log_re: None,
        };
        s.set_spec(spec);
        s
    }

    fn set_spec(&mut self, spec: Spec) {
        self.log_re = match &spec.ready {
            Some(Ready::Log(re)) => regex::Regex::new(re).ok().map(Arc::new),
            _ => None,
        };
        self.policy.restart = spec.restart;
        self.spec = spec;
    }

    /// What `state.json` records.
    pub fn record(&self) -> Record {
        let run = self.policy.state.run();
        Record {
            spec: self.spec.clone(),
            state: self.policy.phase(),
            process: run.map(|r| r.id.clone()),
            port: self.port,
            restarts: self.policy.counters.restarts,
            started_at: run.map(|r| r.started_at),
            last_exit: self.last_exit.and_then(Exit::code),
            last_error: self.policy.last_error.clone(),
        }
    }
}

/// Every service and what the supervisor as a whole is doing.
#[derive(Debug, Clone)]
pub struct Reducer {
    /// The log folder.
    pub logs: PathBuf,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Exit once nothing runs (after a stop of everything).
    pub exit_when_idle: bool,
    /// Why it is shutting down (a signal): new starts are refused as busy.
    pub shutting_down: Option<String>,
}

impl Reducer {
    /// No services yet.
    pub fn new(logs: PathBuf) -> Reducer {
        Reducer { logs, services: BTreeMap::new(), exit_when_idle: false, shutting_down: None }
    }

    /// Takes over a service a previous supervisor recorded; `alive`: its group still has
    /// members (identity verified). Its log ends at `log_len`.
    pub fn adopt(&mut self, rec: Record, alive: bool, log_len: u64, now: Instant) -> Vec<Action> {
        let mut svc = Service::new(rec.spec.clone(), log_len);
        svc.last_exit = rec.last_exit.map(Exit::Code);
        svc.policy.counters = Counters::new(rec.restarts);
        let mut out = Vec::new();
        let name = rec.spec.name;
        if let Some(id) = rec.process.filter(|_| alive) {
            out.push(Action::Log(format!("adopting `{}` (pid {}) from a previous supervisor", name, id.pid)));
            let ready = rec.state == Phase::Ready;
            let started_at = rec.started_at.unwrap_or_default();
            let run = Run { id, port: rec.port, started_at, spawned: now, ready_at: ready.then_some(now) };
            svc.policy.state = if ready { State::Ready(run) } else { State::Starting(run) };
            svc.port = rec.port;
            svc.probe_offset = log_len;
        }
        self.services.insert(name, svc);
        out
    }

    /// Feeds one event at time `now`.
    pub fn on(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Request(request) => {
                let reply = self.request(request, now, &mut out);
                out.push(Action::Reply(reply));
            }
            Event::Spawned { name, run, log_len } => self.with(&name, |s| spawned(s, run, log_len)),
            Event::SpawnFailed { name, why } => self.with(&name, |s| s.policy.spawn_failed(&why, now)),
            Event::Refused { name, why } => self.with(&name, |s| s.policy.refuse(why)),
            Event::Exited { name, pid, exit } => self.with(&name, |s| exited(s, pid, exit, now, &mut out)),
            Event::GroupGone { name, pid } => {
                let logs = self.logs.clone();
                self.with(&name, |s| group_gone(s, pid, &logs, now, &mut out));
            }
            Event::Probed(p) => {
                let logs = self.logs.clone();
                self.with(&p.name, |s| probed(s, &p, &logs, now, &mut out));
            }
            Event::LogRotated { name } => self.with(&name, |s| {
                s.probe_offset = 0;
                s.print_offset = 0;
            }),
            Event::Shutdown { signal } => {
                self.shutting_down = Some(signal.to_string());
                self.stop(&[], now, &mut out);
            }
            Event::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn with(&mut self, name: &str, f: impl FnOnce(&mut Service)) {
        if let Some(s) = self.services.get_mut(name) {
            f(s);
        }
    }

    fn request(&mut self, request: Request, now: Instant, out: &mut Vec<Action>) -> Reply {
        if let Some(why) = &self.shutting_down {
            if !matches!(request, Request::Stop { .. }) {
                return Reply::busy(format!("the supervisor is stopping every service ({why}) and then exits"));
            }
        }
        match request {
            Request::Ping => Reply::ok(),
            Request::Start { specs } => match bad_specs(&specs) {
                Some(why) => Reply::bad_request(&why),
                None => {
                    self.exit_when_idle = false;
                    specs.into_iter().for_each(|spec| self.start(spec, now, out));
                    Reply::ok()
                }
            },
            Request::Restart { specs } => match bad_specs(&specs) {
                Some(why) => Reply::bad_request(&why),
                None => {
                    self.exit_when_idle = false;
                    specs.into_iter().for_each(|spec| self.restart(spec, now, out));
                    Reply::ok()
                }
            },
            Request::Stop { names } => {
                if let Some(unknown) = names.iter().find(|n| !self.services.contains_key(*n)) {
                    return Reply::unknown_service(format!("no service called `{unknown}` is supervised here"));
                }
                self.stop(&names, now, out);
                Reply::ok()
            }
        }
    }

    /// Start (keep running) `spec`; a changed spec restarts a running service.
    fn start(&mut self, spec: Spec, now: Instant, out: &mut Vec<Action>) {
        let svc = self.services.entry(spec.name.clone()).or_insert_with(|| Service::new(spec.clone(), 0));
        let running = matches!(svc.policy.state, State::Starting(_) | State::Ready(_));
        let changed = !svc.spec.same_service(&spec);
        if changed && svc.policy.state.run().is_some() {
            out.push(Action::Log(format!("`{}` changed: restarting it", spec.name)));
            svc.set_spec(spec);
            begin_stop(svc, Then::Restart("its configuration or venv changed: restarting it".into()), now, out);
            return;
        }
        if changed {
            svc.policy = Policy::new(spec.restart);
        }
        // A running service keeps the spec it runs with (its inherited PATH).
        if !running {
            svc.set_spec(spec);
        }
        match &mut svc.policy.state {
            State::Stopping { then, .. } if !matches!(then, Then::Restart(_)) => *then = Then::Start,
            _ => svc.policy.start(),
        }
    }

    /// Stop then start `spec` (start it when it does not run).
    fn restart(&mut self, spec: Spec, now: Instant, out: &mut Vec<Action>) {
        let name = spec.name.clone();
        let Some(svc) = self.services.get_mut(&name) else {
            let mut svc = Service::new(spec, 0);
            svc.policy.start();
            self.services.insert(name, svc);
            return;
        };
        svc.set_spec(spec);
        if svc.policy.state.run().is_some() {
            begin_stop(svc, Then::Restart("asked to restart".into()), now, out);
        } else {
            svc.policy = Policy::new(svc.spec.restart);
            svc.policy.start();
        }
    }

    /// Stops `names` (everything when empty).
    fn stop(&mut self, names: &[String], now: Instant, out: &mut Vec<Action>) {
        let all = names.is_empty();
        for (name, svc) in &mut self.services {
            if all || names.contains(name) {
                match svc.policy.state {
                    State::Waiting | State::Backoff { .. } => svc.policy.state = State::Stopped,
                    _ => begin_stop(svc, Then::Stop, now, out),
                }
            }
        }
        if all || self.services.values().all(|s| !s.policy.state.wanted()) {
            self.exit_when_idle = true;
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            let blocked = self.blocked(&name);
            let peers = self.peers(&name);
            let logs = self.logs.clone();
            let Some(svc) = self.services.get_mut(&name) else { continue };
            match &mut svc.policy.state {
                State::Waiting => match blocked {
                    Some(Ok(())) => {}
                    Some(Err(why)) => svc.policy.refuse(format!("cannot start: {why}")),
                    None => out.push(Action::Spawn(spawn_job(svc, peers, &logs))),
                },
                State::Backoff { until } if now >= *until => {
                    svc.policy.counters.restarts += 1;
                    out.push(Action::Spawn(spawn_job(svc, peers, &logs)));
                }
                State::Starting(run)
                    if !svc.probing && svc.last_probe.is_none_or(|t| now.duration_since(t) >= PROBE_EVERY) =>
                {
                    let job = probe_job(&name, run, svc.probe_offset, &svc.spec, svc.log_re.clone(), &logs);
                    svc.probing = true;
                    out.push(Action::StartProbe(job));
                }
                State::Stopping { run, deadline, killed, .. } if now >= *deadline && !*killed => {
                    *killed = true;
                    out.push(Action::SignalGroup { id: run.id.clone(), signal: Signal::SIGKILL });
                }
                _ => {}
            }
        }
    }

    /// Whether a waiting service must wait on (`Ok`) or cannot start (`Err`) for its `after`
    /// services; `None` when they are all ready.
    fn blocked(&self, name: &str) -> Option<Result<(), String>> {
        let svc = self.services.get(name)?;
        let mut blocked = None;
        for dep in &svc.spec.after {
            match self.services.get(dep).map(|d| &d.policy.state) {
                Some(State::Ready(_)) => {}
                Some(State::Failed { why }) => blocked = Some(Err(format!("`{dep}` failed: {why}"))),
                Some(_) => blocked = blocked.or(Some(Ok(()))),
                None => blocked = Some(Err(format!("`{dep}` is not started by labup"))),
            }
        }
        blocked
    }

    /// The other services' ports, as `<NAME>_PORT`: the port a running one got, else a fixed one.
    fn peers(&self, name: &str) -> Vec<(String, String)> {
        let Some(me) = self.services.get(name) else { return Vec::new() };
        self.services
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .filter_map(|(n, s)| {
                let fixed = match s.spec.port {
                    Some(Port::Fixed(p)) => Some(p),
                    _ => None,
                };
                let running = s.policy.state.run().and_then(|r| r.port);
                Some((port_var(n), running.or(fixed)?.to_string()))
            })
            .filter(|(k, _)| !me.spec.env.contains_key(k))
            .collect()
    }

    /// `state.json`, with this supervisor's identity.
    pub fn state(&self, me: Option<Identity>) -> RunState {
        RunState { supervisor: me, services: self.services.iter().map(|(n, s)| (n.clone(), s.record())).collect() }
    }

    /// Whether every one of `names` is ready (and there is at least one).
    pub fn all_ready(&self, names: &[String]) -> bool {
        !names.is_empty()
            && names.iter().all(|n| self.services.get(n).is_some_and(|s| matches!(s.policy.state, State::Ready(_))))
    }

    /// Services that failed for good, with why.
    pub fn failed(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .filter_map(|(n, s)| match &s.policy.state {
                State::Failed { why } => Some((n.clone(), why.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether there are services and none is wanted any more.
    pub fn nothing_wanted(&self) -> bool {
        !self.services.is_empty() && self.services.values().all(|s| !s.policy.state.wanted())
    }

    /// Whether nothing runs or waits to start.
    pub fn idle(&self) -> bool {
        self.services.values().all(|s| s.policy.state.run().is_none() && s.policy.state != State::Waiting)
    }
}

/// Why a start or restart request cannot be carried out, if it cannot.
fn bad_specs(specs: &[Spec]) -> Option<String> {
    for (i, spec) in specs.iter().enumerate() {
        if spec.name.is_empty() {
            return Some("a service has no name".into());
        }
        if spec.argv.first().is_none_or(|p| p.is_empty()) {
            return Some(format!("service `{}` has no command", spec.name));
        }
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Some(format!("service `{}` is named twice", spec.name));
        }
    }
    None
}

fn spawned(svc: &mut Service, run: Run, log_len: u64) {
    svc.port = run.port;
    svc.probe_offset = log_len;
    svc.probing = false;
    svc.last_probe = None;
    svc.policy.state = State::Starting(run);
}

/// SIGTERM to the group (unless it is stopping already); `then` says what comes next.
fn begin_stop(svc: &mut Service, then: Then, now: Instant, out: &mut Vec<Action>) {
    match std::mem::replace(&mut svc.policy.state, State::Stopped) {
        State::Starting(run) | State::Ready(run) => {
            out.push(Action::SignalGroup { id: run.id.clone(), signal: Signal::SIGTERM });
            let deadline = now + Duration::from_millis(svc.spec.stop_timeout_ms);
            svc.policy.state = State::Stopping { run, then, deadline, killed: false, exit: None };
        }
        State::Stopping { run, deadline, killed, exit, .. } => {
            svc.policy.state = State::Stopping { run, then, deadline, killed, exit };
        }
        other => svc.policy.state = other,
    }
}

/// The leader exited: what is left of its group goes too (no orphan keeps the port), then the
/// exit counts.
fn exited(svc: &mut Service, pid: i32, exit: Exit, now: Instant, out: &mut Vec<Action>) {
    if svc.policy.state.run().is_none_or(|r| r.id.pid != pid) {
        return;
    }
    svc.last_exit = Some(exit);
    if !matches!(svc.policy.state, State::Stopping { .. }) {
        begin_stop(svc, Then::Judge(None), now, out);
    }
    if let State::Stopping { exit: seen, .. } = &mut svc.policy.state {
        *seen = Some(exit);
    }
}

/// The group is gone: the log says how it ended and what follows happens.
fn group_gone(svc: &mut Service, pid: i32, logs: &std::path::Path, now: Instant, out: &mut Vec<Action>) {
    let State::Stopping { run, then, exit: Some(exit), .. } = svc.policy.state.clone() else { return };
    if run.id.pid != pid {
        return;
    }
    let how = exit.how();
    let why = match &then {
        Then::Stop | Then::Start => Some("asked to stop".to_string()),
        Then::Restart(why) => Some(why.clone()),
        Then::Judge(why) => why.clone(),
    };
    let line = match why {
        Some(why) => format!("exited {how}: labup stopped it ({why})"),
        None => format!("exited {how}"),
    };
    out.push(Action::Note { log: svc.spec.log_path(logs), line });
    svc.policy.state = State::Stopped;
    match then {
        Then::Stop => {}
        Then::Start => svc.policy.start(),
        Then::Restart(_) => {
            let restarts = svc.policy.counters.restarts + 1;
            svc.policy = Policy::new(svc.spec.restart);
            svc.policy.counters.restarts = restarts;
            svc.policy.state = State::Waiting;
        }
        Then::Judge(timed_out) => svc.policy.judge(exit, Some(&run), timed_out, now),
    }
}

/// A probe answered: ready, or stopped when the start took too long.
fn probed(svc: &mut Service, p: &Probed, logs: &std::path::Path, now: Instant, out: &mut Vec<Action>) {
    svc.probing = false;
    svc.last_probe = Some(now);
    if let Some(offset) = p.offset {
        svc.probe_offset = offset;
    }
    let State::Starting(run) = &mut svc.policy.state else { return };
    if run.id.pid != p.pid {
        return;
    }
    let log = svc.spec.log_path(logs);
    if p.ready {
        run.ready_at = Some(now);
        svc.policy.state = State::Ready(run.clone());
        svc.policy.last_error = None;
        out.push(Action::Note { log, line: "ready".into() });
        return;
    }
    if now.duration_since(run.spawned) < Duration::from_millis(svc.spec.start_timeout_ms) {
        return;
    }
    let waited = format!("did not become ready within {}", seconds(svc.spec.start_timeout_ms));
    let why = format!("{waited}: {}; `start-timeout` sets the limit", p.why_not);
    let kill_after = seconds(svc.spec.stop_timeout_ms);
    let line = format!("stopping it (SIGTERM to its process group, SIGKILL after {kill_after}): {why}");
    out.push(Action::Note { log, line });
    begin_stop(svc, Then::Judge(Some(why)), now, out);
}

fn spawn_job(svc: &Service, peers: Vec<(String, String)>, logs: &std::path::Path) -> SpawnJob {
    let port = match svc.spec.port {
        None => PortPlan::None,
        Some(Port::Auto) => PortPlan::Auto { previous: svc.port },
        Some(Port::Fixed(p)) => PortPlan::Fixed(p),
    };
    SpawnJob { spec: svc.spec.clone(), port, peers, log: svc.spec.log_path(logs) }
}

fn probe_job(
    name: &str,
    run: &Run,
    offset: u64,
    spec: &Spec,
    log_re: Option<Arc<regex::Regex>>,
    logs: &std::path::Path,
) -> ProbeJob {
    let check = match (&spec.ready, run.port) {
        (Some(Ready::Http(path)), Some(port)) => {
            Check::Http { port, path: path.clone(), runtime_dir: spec.runtime_dir.clone() }
        }
        (Some(Ready::Tcp), Some(port)) | (None, Some(port)) => Check::Tcp { port },
        (Some(Ready::Log(re)), _) => Check::Log { log: spec.log_path(logs), offset, re: log_re, source: re.clone() },
        (Some(_), None) | (None, None) => Check::Started,
    };
    ProbeJob { name: name.to_string(), leader: run.id.clone(), check }
}

/// The variable that carries a service's port to the others: `web` → `WEB_PORT`,
/// `my-api` → `MY_API_PORT`.
pub fn port_var(service: &str) -> String {
    let name: String =
        service.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{name}_PORT")
}

/// `3 s`, `1.5 s`.
pub fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}
