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
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(40);

/// Something that happened.
#[derive(Debug, Clone)]
pub(crate) enum Event {
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
pub(crate) enum PortPlan {
    /// No port.
    None,
    /// A free port, the previous one when it is still free.
    Auto { previous: Option<u16> },
    /// This port, refused when another process holds it.
    Fixed(u16),
}

/// What the effects need to spawn a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpawnJob {
    /// The spec.
    pub(crate) spec: Spec,
    /// Its port.
    pub(crate) port: PortPlan,
    /// `<NAME>_PORT` of the other services whose port is known.
    pub(crate) peers: Vec<(String, String)>,
    /// Its log.
    pub(crate) log: PathBuf,
}

/// Something the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
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
pub(crate) struct Service {
    /// What it runs.
    pub(crate) spec: Spec,
    /// Its state and restart counters.
    pub(crate) policy: Policy,
    /// The port it was last given.
    pub(crate) port: Option<u16>,
    /// How its leader last ended.
    pub(crate) last_exit: Option<Exit>,
    /// Where the log probe reads on.
    pub(crate) probe_offset: u64,
    /// Where the foreground log printer reads on.
    pub(crate) print_offset: u64,
    probing: bool,
    last_probe: Option<Instant>,
    /// The `ready = { log = … }` regex, compiled once per spec.
    log_re: Option<Arc<regex::Regex>>,
}

impl Service {
    /// A stopped service; `log_len` is where its log ends now.
    pub(crate) fn new(spec: Spec, log_len: u64) -> Service {
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
    pub(crate) fn record(&self) -> Record {
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
pub(crate) struct Reducer {
    /// The log folder.
    pub(crate) logs: PathBuf,
    /// Services by name.
    pub(crate) services: BTreeMap<String, Service>,
    /// Exit once nothing runs (after a stop of everything).
    pub(crate) exit_when_idle: bool,
    /// Why it is shutting down (a signal): new starts are refused as busy.
    pub(crate) shutting_down: Option<String>,
}

impl Reducer {
    /// No services yet.
    pub(crate) fn new(logs: PathBuf) -> Reducer {
        Reducer { logs, services: BTreeMap::new(), exit_when_idle: false, shutting_down: None }
    }

    /// Takes over a service a previous supervisor recorded; `alive`: its group still has
    /// members (identity verified). Its log ends at `log_len`.
    pub(crate) fn adopt(&mut self, rec: Record, alive: bool, log_len: u64, now: Instant) -> Vec<Action> {
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
    pub(crate) fn on(&mut self, event: Event, now: Instant) -> Vec<Action> {
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
            Request::Start { specs } => self.each(specs, Self::start, now, out),
            Request::Restart { specs } => self.each(specs, Self::restart, now, out),
            Request::Stop { names } => {
                if let Some(unknown) = names.iter().find(|n| !self.services.contains_key(*n)) {
                    return Reply::unknown_service(format!("no service called `{unknown}` is supervised here"));
                }
                self.stop(&names, now, out);
                Reply::ok()
            }
        }
    }

    /// Carries out `what` for every spec, unless one of them makes the request a bad one.
    fn each(
        &mut self,
        specs: Vec<Spec>,
        what: fn(&mut Reducer, Spec, Instant, &mut Vec<Action>),
        now: Instant,
        out: &mut Vec<Action>,
    ) -> Reply {
        if let Some(why) = bad_specs(&specs) {
            return Reply::bad_request(&why);
        }
        self.exit_when_idle = false;
        for spec in specs {
            what(self, spec, now, out);
        }
        Reply::ok()
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
            // Only a service that may spawn now needs its dependencies' states and their ports.
            let may_spawn = self.services.get(&name).is_some_and(|s| match s.policy.state {
                State::Waiting => true,
                State::Backoff { until } => now >= until,
                _ => false,
            });
            let (blocked, peers) =
                if may_spawn { (self.blocked(&name), self.peers(&name)) } else { (None, Vec::new()) };
            let logs = &self.logs;
            let Some(svc) = self.services.get_mut(&name) else { continue };
            match &mut svc.policy.state {
                State::Waiting => match blocked {
                    Some(Ok(())) => {}
                    Some(Err(why)) => svc.policy.refuse(format!("cannot start: {why}")),
                    None => out.push(Action::Spawn(spawn_job(svc, peers, logs))),
                },
                State::Backoff { until } if now >= *until => {
                    svc.policy.counters.restarts += 1;
                    out.push(Action::Spawn(spawn_job(svc, peers, logs)));
                }
                State::Starting(run)
                    if !svc.probing && svc.last_probe.is_none_or(|t| now.duration_since(t) >= PROBE_EVERY) =>
                {
                    let job = probe_job(&name, run, svc.probe_offset, &svc.spec, svc.log_re.clone(), logs);
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
                Some((crate::config::port_var(n), running.or(fixed)?.to_string()))
            })
            .filter(|(k, _)| !me.spec.env.contains_key(k))
            .collect()
    }

    /// `state.json`, with this supervisor's identity.
    pub(crate) fn state(&self, me: Option<Identity>) -> RunState {
        RunState { supervisor: me, services: self.services.iter().map(|(n, s)| (n.clone(), s.record())).collect() }
    }

    /// Whether every one of `names` is ready (and there is at least one).
    pub(crate) fn all_ready(&self, names: &[String]) -> bool {
        !names.is_empty()
            && names.iter().all(|n| self.services.get(n).is_some_and(|s| matches!(s.policy.state, State::Ready(_))))
    }

    /// Services that failed for good, with why.
    pub(crate) fn failed(&self) -> Vec<(String, String)> {
        self.services
            .iter()
            .filter_map(|(n, s)| match &s.policy.state {
                State::Failed { why } => Some((n.clone(), why.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether there are services and none is wanted any more.
    pub(crate) fn nothing_wanted(&self) -> bool {
        !self.services.is_empty() && self.services.values().all(|s| !s.policy.state.wanted())
    }

    /// Whether nothing runs or waits to start.
    pub(crate) fn idle(&self) -> bool {
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

/// `3 s`, `1.5 s`.
pub(crate) fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// A command service for tests: `python app.py`, restarted on failure, 1 s stop and 3 s start
/// timeouts.
#[cfg(test)]
pub(crate) fn test_spec(name: &str) -> Spec {
    Spec {
        name: name.into(),
        kind: "command".into(),
        argv: vec!["python".into(), "app.py".into()],
        env: BTreeMap::from([("PATH".into(), Some("/venv/bin:/usr/bin".into()))]),
        cwd: "/p".into(),
        port: None,
        ready: None,
        restart: crate::config::Restart::OnFailure,
        after: Vec::new(),
        stop_timeout_ms: 1000,
        start_timeout_ms: 3000,
        runtime_dir: None,
        open: false,
        venv: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Restart;
    use crate::services::control::ReplyError;

    fn spec(name: &str) -> Spec {
        test_spec(name)
    }

    fn id(pid: i32) -> Identity {
        Identity { pid, start_time: 7, boot_id: "boot".into() }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    struct World {
        r: Reducer,
        t: Instant,
        next_pid: i32,
    }

    impl World {
        fn new() -> World {
            World { r: Reducer::new("/p/.labup/logs".into()), t: Instant::now(), next_pid: 100 }
        }

        fn on(&mut self, event: Event) -> Vec<Action> {
            self.r.on(event, self.t)
        }

        fn request(&mut self, request: Request) -> Reply {
            match self.on(Event::Request(request)).pop() {
                Some(Action::Reply(r)) => r,
                other => panic!("no reply: {other:?}"),
            }
        }

        fn start(&mut self, specs: Vec<Spec>) {
            assert_eq!(self.request(Request::Start { specs }), Reply::ok());
        }

        /// A tick; every spawn it asks for succeeds (new pids); the other actions.
        fn tick(&mut self) -> Vec<Action> {
            let mut rest = Vec::new();
            for action in self.on(Event::Tick) {
                match action {
                    Action::Spawn(job) => {
                        self.next_pid += 1;
                        let port = match job.port {
                            PortPlan::Fixed(p) => Some(p),
                            PortPlan::Auto { previous } => previous.or(Some(40000)),
                            PortPlan::None => None,
                        };
                        let run = Run { id: id(self.next_pid), port, started_at: 1, spawned: self.t, ready_at: None };
                        rest.extend(self.on(Event::Spawned { name: job.spec.name.clone(), run, log_len: 10 }));
                        rest.push(Action::Spawn(job));
                    }
                    other => rest.push(other),
                }
            }
            rest
        }

        fn state(&self, name: &str) -> &State {
            &self.r.services[name].policy.state
        }

        fn pid(&self, name: &str) -> i32 {
            self.state(name).run().map(|r| r.id.pid).expect("running")
        }

        fn probe(&mut self, name: &str, ready: bool) -> Vec<Action> {
            let pid = self.pid(name);
            let why_not = "nothing accepted connections on port 5001".to_string();
            self.on(Event::Probed(Probed { name: name.into(), pid, ready, why_not, offset: None }))
        }

        /// Started, probed and ready.
        fn ready(&mut self, specs: Vec<Spec>) {
            let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
            self.start(specs);
            for name in names {
                self.tick();
                self.probe(&name, true);
                assert!(matches!(self.state(&name), State::Ready(_)), "{:?}", self.state(&name));
            }
        }

        /// The leader exits with `exit` and its group goes: the notes written.
        fn exit(&mut self, name: &str, exit: Exit) -> Vec<Action> {
            let pid = self.pid(name);
            let mut out = self.on(Event::Exited { name: name.into(), pid, exit });
            out.extend(self.on(Event::GroupGone { name: name.into(), pid }));
            out
        }
    }

    fn spawns(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn(job) => Some(job.spec.name.as_str()),
                _ => None,
            })
            .collect()
    }

    fn signals(actions: &[Action]) -> Vec<(i32, Signal)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::SignalGroup { id, signal } => Some((id.pid, *signal)),
                _ => None,
            })
            .collect()
    }

    fn notes(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Note { line, .. } => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_start_spawns_probes_once_at_a_time_and_becomes_ready() {
        let mut w = World::new();
        w.start(vec![spec("web")]);
        assert_eq!(w.r.services["web"].record().state, Phase::Starting);
        let first = w.tick();
        assert_eq!(spawns(&first), ["web"]);
        assert!(matches!(w.state("web"), State::Starting(_)));
        let probes = |a: &[Action]| a.iter().filter(|a| matches!(a, Action::StartProbe(_))).count();
        assert_eq!(probes(&w.tick()), 1);
        w.t += ms(100);
        assert_eq!(probes(&w.tick()), 0, "one probe in flight at a time");
        assert!(w.probe("web", false).is_empty());
        assert_eq!(probes(&w.tick()), 0, "not again within {PROBE_EVERY:?}");
        w.t += PROBE_EVERY;
        assert_eq!(probes(&w.tick()), 1);
        assert_eq!(notes(&w.probe("web", true)), ["ready"]);
        let rec = w.r.services["web"].record();
        assert_eq!((rec.state, rec.process.map(|p| p.pid), rec.started_at), (Phase::Ready, Some(101), Some(1)));
        assert!(w.tick().is_empty(), "a ready service is left alone");
    }

    #[test]
    fn the_probe_matches_the_spec() {
        let mut w = World::new();
        let mut log = spec("log");
        log.ready = Some(Ready::Log("Uvicorn running".into()));
        let mut http = spec("http");
        http.port = Some(Port::Fixed(5001));
        http.ready = Some(Ready::Http("/health".into()));
        w.start(vec![log, http, spec("plain")]);
        w.tick();
        let checks: Vec<String> = w
            .tick()
            .into_iter()
            .filter_map(|a| match a {
                Action::StartProbe(job) => Some(format!("{} {:?}", job.name, job.check)),
                _ => None,
            })
            .collect();
        assert!(checks[0].starts_with("http Http { port: 5001, path: \"/health\""), "{checks:?}");
        assert!(checks[1].starts_with("log Log") && checks[1].contains("offset: 10") && checks[1].contains("Some("));
        assert_eq!(checks[2], "plain Started");
    }

    #[test]
    fn a_service_waits_for_its_dependencies_and_gets_their_ports() {
        let mut w = World::new();
        let mut api = spec("api");
        api.port = Some(Port::Auto);
        let mut web = spec("web");
        web.after = vec!["api".into()];
        w.start(vec![api, web]);
        assert_eq!(spawns(&w.tick()), ["api"]);
        assert_eq!(spawns(&w.tick()), Vec::<&str>::new(), "web waits for api");
        assert_eq!(w.state("web"), &State::Waiting);
        w.probe("api", true);
        let t = w.on(Event::Tick);
        let Some(Action::Spawn(job)) = t.iter().find(|a| matches!(a, Action::Spawn(_))) else { panic!("{t:?}") };
        assert_eq!(job.peers, [("API_PORT".to_string(), "40000".to_string())]);
    }

    #[test]
    fn a_dependency_that_failed_or_is_unknown_refuses_the_start() {
        let mut w = World::new();
        let mut api = spec("api");
        api.restart = Restart::Never;
        let mut web = spec("web");
        web.after = vec!["api".into()];
        let mut worker = spec("worker");
        worker.after = vec!["db".into()];
        w.start(vec![api, web, worker]);
        w.tick();
        w.exit("api", Exit::Code(2));
        w.tick();
        assert_eq!(w.state("web"), &State::Failed { why: "cannot start: `api` failed: exited with status 2".into() });
        assert_eq!(w.state("worker"), &State::Failed { why: "cannot start: `db` is not started by labup".into() });
        assert_eq!(w.r.failed().len(), 3);
    }

    #[test]
    fn a_stop_sends_sigterm_then_sigkill_after_the_grace_period() {
        let mut w = World::new();
        w.ready(vec![spec("web")]);
        let pid = w.pid("web");
        let stop = w.on(Event::Request(Request::Stop { names: vec!["web".into()] }));
        assert_eq!(signals(&stop), [(pid, Signal::SIGTERM)]);
        assert_eq!(w.r.services["web"].record().state, Phase::Stopped, "not ready while it stops");
        assert!(w.r.exit_when_idle && !w.r.idle());
        w.t += ms(999);
        assert!(signals(&w.tick()).is_empty(), "within the 1 s grace period");
        w.t += ms(1);
        assert_eq!(signals(&w.tick()), [(pid, Signal::SIGKILL)]);
        assert!(signals(&w.tick()).is_empty(), "SIGKILL once");
        let gone = w.exit("web", Exit::Signal(9));
        assert_eq!(notes(&gone), ["exited by a signal: labup stopped it (asked to stop)"]);
        assert_eq!(w.state("web"), &State::Stopped);
        assert!(w.r.idle());
        assert_eq!(w.r.services["web"].record().last_exit, None);
    }

    #[test]
    fn the_exit_counts_only_once_the_group_is_gone() {
        let mut w = World::new();
        w.ready(vec![spec("web")]);
        let pid = w.pid("web");
        let out = w.on(Event::Exited { name: "web".into(), pid, exit: Exit::Code(3) });
        assert_eq!(signals(&out), [(pid, Signal::SIGTERM)], "what is left of its group goes too");
        assert_eq!(w.r.services["web"].record().state, Phase::Starting);
        assert!(w.on(Event::GroupGone { name: "web".into(), pid: pid + 1 }).is_empty(), "another group");
        assert_eq!(notes(&w.on(Event::GroupGone { name: "web".into(), pid })), ["exited with status 3"]);
        assert_eq!(w.state("web"), &State::Backoff { until: w.t + ms(1000) });
        let rec = w.r.services["web"].record();
        assert_eq!((rec.last_exit, rec.last_error.as_deref()), (Some(3), Some("exited with status 3")));
        assert!(spawns(&w.tick()).is_empty());
        w.t += ms(1000);
        assert_eq!(spawns(&w.tick()), ["web"]);
        assert_eq!(w.r.services["web"].record().restarts, 1);
    }

    #[test]
    fn a_start_that_is_not_ready_in_time_is_stopped_and_counts_as_failed() {
        let mut w = World::new();
        w.start(vec![spec("web")]);
        w.tick();
        w.t += ms(2999);
        assert!(w.probe("web", false).is_empty());
        w.t += ms(1);
        let out = w.probe("web", false);
        let why = "did not become ready within 3 s: nothing accepted connections on port 5001; \
                   `start-timeout` sets the limit";
        assert_eq!(notes(&out), [format!("stopping it (SIGTERM to its process group, SIGKILL after 1 s): {why}")]);
        assert_eq!(signals(&out).len(), 1);
        let gone = w.exit("web", Exit::Signal(15));
        assert_eq!(notes(&gone), [format!("exited by a signal: labup stopped it ({why})")]);
        assert!(matches!(w.state("web"), State::Backoff { .. }));
        assert_eq!(w.r.services["web"].policy.last_error.as_deref(), Some(why));
    }

    #[test]
    fn a_result_for_an_earlier_run_is_ignored() {
        let mut w = World::new();
        w.start(vec![spec("web")]);
        w.tick();
        let stale = Probed { name: "web".into(), pid: 1, ready: true, why_not: String::new(), offset: None };
        assert!(w.on(Event::Probed(stale)).is_empty());
        assert!(matches!(w.state("web"), State::Starting(_)));
        assert!(w.on(Event::Exited { name: "web".into(), pid: 1, exit: Exit::Code(1) }).is_empty());
    }

    #[test]
    fn busy_bad_and_unknown_requests_are_refused() {
        let mut w = World::new();
        let mut nameless = spec("");
        let empty = Reply::bad_request("a service has no name");
        assert_eq!(w.request(Request::Start { specs: vec![nameless.clone()] }), empty);
        nameless.name = "x".into();
        nameless.argv.clear();
        let reply = w.request(Request::Restart { specs: vec![nameless] });
        assert_eq!(
            (reply.error, reply.message.as_deref()),
            (Some(ReplyError::BadRequest), Some("bad request: service `x` has no command"))
        );
        let twice = w.request(Request::Start { specs: vec![spec("a"), spec("a")] });
        assert_eq!(twice.message.as_deref(), Some("bad request: service `a` is named twice"));
        assert!(w.r.services.is_empty(), "nothing of a bad request is carried out");
        w.ready(vec![spec("web")]);
        let unknown = w.request(Request::Stop { names: vec!["web".into(), "db".into()] });
        assert_eq!(unknown.error, Some(ReplyError::UnknownService));
        assert!(matches!(w.state("web"), State::Ready(_)), "a refused stop stops nothing");
        let out = w.on(Event::Shutdown { signal: "SIGTERM" });
        assert_eq!(signals(&out).len(), 1);
        for request in [Request::Ping, Request::Start { specs: vec![spec("web")] }] {
            let busy = w.request(request);
            assert!(!busy.ok && busy.error == Some(ReplyError::Busy), "{busy:?}");
            assert!(busy.message.unwrap().contains("stopping every service (SIGTERM)"));
        }
        assert_eq!(w.request(Request::Stop { names: Vec::new() }), Reply::ok(), "a stop is still taken");
        let json = serde_json::to_string(&Reply::busy("x".into())).unwrap();
        assert_eq!(json, r#"{"ok":false,"message":"x","error":"busy"}"#);
    }

    #[test]
    fn log_offsets_restart_after_rotation() {
        let mut w = World::new();
        let mut web = spec("web");
        web.ready = Some(Ready::Log("up".into()));
        w.start(vec![web]);
        w.r.services.get_mut("web").unwrap().print_offset = 500;
        w.tick();
        assert_eq!(w.r.services["web"].probe_offset, 10, "the probe reads from the start note on");
        let pid = w.pid("web");
        let p = Probed { name: "web".into(), pid, ready: false, why_not: String::new(), offset: Some(64) };
        w.on(Event::Probed(p));
        assert_eq!(w.r.services["web"].probe_offset, 64);
        w.on(Event::LogRotated { name: "web".into() });
        let svc = &w.r.services["web"];
        assert_eq!((svc.probe_offset, svc.print_offset), (0, 0));
        w.t += PROBE_EVERY;
        let probe = w.tick().into_iter().find_map(|a| match a {
            Action::StartProbe(ProbeJob { check: Check::Log { offset, .. }, .. }) => Some(offset),
            _ => None,
        });
        assert_eq!(probe, Some(0), "the next probe reads the new file from its start");
    }

    #[test]
    fn a_changed_spec_restarts_a_running_service_and_another_path_does_not() {
        let mut w = World::new();
        w.ready(vec![spec("web")]);
        let pid = w.pid("web");
        let mut other_path = spec("web");
        other_path.env.insert("PATH".into(), Some("/venv/bin:/opt/bin".into()));
        assert_eq!(w.on(Event::Request(Request::Start { specs: vec![other_path] })), [Action::Reply(Reply::ok())]);
        assert!(matches!(w.state("web"), State::Ready(_)));
        let mut changed = spec("web");
        changed.argv.push("--debug".into());
        let out = w.on(Event::Request(Request::Start { specs: vec![changed] }));
        assert_eq!(out[0], Action::Log("`web` changed: restarting it".into()));
        assert_eq!(signals(&out), [(pid, Signal::SIGTERM)]);
        assert_eq!(w.r.services["web"].record().state, Phase::Starting);
        let gone = w.exit("web", Exit::Code(0));
        assert_eq!(
            notes(&gone),
            ["exited with status 0: labup stopped it (its configuration or venv changed: restarting it)"]
        );
        assert_eq!(w.state("web"), &State::Waiting);
        let t = w.tick();
        let Some(Action::Spawn(job)) = t.iter().find(|a| matches!(a, Action::Spawn(_))) else { panic!("{t:?}") };
        assert_eq!(job.spec.argv.last().map(String::as_str), Some("--debug"));
        assert_eq!(w.r.services["web"].record().restarts, 1);
    }

    #[test]
    fn restart_requests() {
        let mut w = World::new();
        w.ready(vec![spec("web")]);
        let out = w.on(Event::Request(Request::Restart { specs: vec![spec("web")] }));
        assert_eq!(signals(&out).len(), 1);
        assert_eq!(notes(&w.exit("web", Exit::Code(0))), ["exited with status 0: labup stopped it (asked to restart)"]);
        assert_eq!(w.state("web"), &State::Waiting);
        // Not running: a fresh start; unknown: started.
        w.on(Event::Request(Request::Stop { names: vec!["web".into()] }));
        assert_eq!(w.state("web"), &State::Stopped);
        w.on(Event::Request(Request::Restart { specs: vec![spec("web"), spec("new")] }));
        assert_eq!((w.state("web"), w.state("new")), (&State::Waiting, &State::Waiting));
        assert_eq!(w.r.services["web"].record().restarts, 0);
        assert!(!w.r.exit_when_idle, "a restart cancels the exit");
    }

    #[test]
    fn stops_while_waiting_in_backoff_or_stopping() {
        let mut w = World::new();
        let mut web = spec("web");
        web.after = vec!["api".into()];
        w.ready(vec![spec("api"), spec("db")]);
        w.start(vec![web]);
        w.request(Request::Stop { names: vec!["web".into()] });
        assert_eq!(w.state("web"), &State::Stopped);
        w.exit("api", Exit::Code(1));
        assert!(matches!(w.state("api"), State::Backoff { .. }));
        w.request(Request::Stop { names: vec!["api".into()] });
        assert_eq!(w.state("api"), &State::Stopped);
        w.t += ms(5000);
        assert!(spawns(&w.tick()).is_empty(), "a stop cancels the backoff");
        // A start while it stops: started again once its group is gone, not as a restart.
        w.request(Request::Stop { names: vec!["db".into()] });
        w.start(vec![spec("db")]);
        w.exit("db", Exit::Signal(15));
        assert_eq!(w.state("db"), &State::Waiting);
        assert_eq!(w.r.services["db"].record().restarts, 0);
    }

    #[test]
    fn spawn_failures_back_off_and_a_taken_port_refuses() {
        let mut w = World::new();
        w.start(vec![spec("a"), spec("b")]);
        w.on(Event::SpawnFailed { name: "a".into(), why: "could not start `x`: no such file".into() });
        assert!(matches!(w.state("a"), State::Backoff { .. }));
        w.on(Event::Refused { name: "b".into(), why: "port 5001 is in use by pid 9".into() });
        assert_eq!(w.state("b"), &State::Failed { why: "port 5001 is in use by pid 9".into() });
    }

    #[test]
    fn adoption_after_a_supervisor_restart() {
        let mut w = World::new();
        let mut web = spec("web");
        web.port = Some(Port::Auto);
        let rec = |name: &str, state, pid| Record {
            spec: Spec { name: name.into(), ..web.clone() },
            state,
            process: Some(id(pid)),
            port: Some(8000),
            restarts: 3,
            started_at: Some(1234),
            last_exit: Some(1),
            last_error: None,
        };
        let out = w.r.adopt(rec("web", Phase::Ready, 77), true, 900, w.t);
        assert_eq!(out, [Action::Log("adopting `web` (pid 77) from a previous supervisor".into())]);
        assert!(w.r.adopt(rec("gone", Phase::Ready, 78), false, 5, w.t).is_empty());
        w.r.adopt(rec("slow", Phase::Starting, 79), true, 5, w.t);
        let web_rec = w.r.services["web"].record();
        assert_eq!((web_rec.state, web_rec.restarts, web_rec.started_at), (Phase::Ready, 3, Some(1234)));
        assert_eq!(w.r.services["web"].print_offset, 900);
        let gone = w.r.services["gone"].record();
        assert_eq!((gone.state, gone.process, gone.last_exit), (Phase::Stopped, None, Some(1)));
        assert!(matches!(w.state("slow"), State::Starting(_)), "an adopted start is probed on");
        // Its exit (status unknown, not our child) is judged like any other.
        assert_eq!(notes(&w.exit("web", Exit::Unknown)), ["exited by a signal"]);
        assert!(matches!(w.state("web"), State::Backoff { .. }));
        w.t += ms(1000);
        let t = w.on(Event::Tick);
        let Some(Action::Spawn(job)) = t.iter().find(|a| matches!(a, Action::Spawn(_))) else { panic!("{t:?}") };
        assert_eq!(job.port, PortPlan::Auto { previous: Some(8000) }, "it gets its port back when free");
    }

    #[test]
    fn the_foreground_sees_readiness_failures_and_the_end() {
        let mut w = World::new();
        let mut api = spec("api");
        api.restart = Restart::Never;
        w.ready(vec![api, spec("web")]);
        assert!(w.r.all_ready(&["api".into(), "web".into()]) && !w.r.all_ready(&[]));
        w.exit("api", Exit::Code(1));
        assert_eq!(w.r.failed(), [("api".to_string(), "exited with status 1".to_string())]);
        assert!(!w.r.nothing_wanted());
        w.request(Request::Stop { names: vec!["web".into()] });
        w.exit("web", Exit::Code(0));
        assert!(w.r.nothing_wanted() && w.r.idle());
    }
}
