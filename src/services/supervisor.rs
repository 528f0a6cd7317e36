//! The supervisor: one process per project that spawns services in their own process groups,
//! probes them, applies the restart policy and records everything in `state.json`.
//!
//! Services write their logs straight to their files and keep running if the supervisor is
//! killed; a new supervisor adopts the ones whose identity still matches. Requests arrive on the
//! control socket; the loop ticks every 20 ms so readiness is reported within a tick or two.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use super::control::{self, Reply, Request};
use super::logs;
use super::policy::{Action, Event, Phase, Policy};
use super::ports;
use super::probe;
use super::proc::{self, Identity};
use super::spec::Spec;
use super::state::{Record, RunDir, RunState};
use crate::config::{Port, Ready};
use crate::error::Fail;
use crate::project::Layout;

const TICK: Duration = Duration::from_millis(20);
const PROBE_EVERY: Duration = Duration::from_millis(40);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// One service under supervision.
#[derive(Debug)]
struct Managed {
    spec: Spec,
    policy: Policy,
    /// Our child, when this supervisor spawned it.
    child: Option<Child>,
    /// The group leader while its group lives.
    process: Option<Identity>,
    port: Option<u16>,
    started_at: Option<u64>,
    spawned: Option<Instant>,
    last_probe: Option<Instant>,
    probe_offset: u64,
    last_exit: Option<i32>,
    /// The leader exited (or a stop began): waiting for the group to empty.
    stopping: Option<Stopping>,
    /// Start asked for, waiting for `after` services to be ready.
    pending_start: bool,
    restart_after_stop: bool,
    print_offset: u64,
    /// Why labup is stopping it, for the log line that records the exit.
    stop_note: Option<String>,
    /// `<NAME>_PORT` of the other services whose port is known (refreshed every tick).
    peers: BTreeMap<String, u16>,
}

#[derive(Debug, Clone, Copy)]
struct Stopping {
    deadline: Instant,
    killed: bool,
}

impl Managed {
    fn new(spec: Spec) -> Managed {
        let policy = Policy::new(spec.restart);
        Managed {
            spec,
            policy,
            child: None,
            process: None,
            port: None,
            started_at: None,
            spawned: None,
            last_probe: None,
            probe_offset: 0,
            last_exit: None,
            stopping: None,
            pending_start: false,
            restart_after_stop: false,
            print_offset: 0,
            stop_note: None,
            peers: BTreeMap::new(),
        }
    }

    fn record(&self) -> Record {
        let mut state = self.policy.phase();
        if self.pending_start && matches!(state, Phase::Stopped | Phase::Failed) {
            state = Phase::Starting;
        }
        // While its group is being stopped the service is not ready, whatever it was.
        if self.stopping.is_some() && matches!(state, Phase::Ready | Phase::Starting) {
            state = if self.restart_after_stop || self.policy.wanted() { Phase::Starting } else { Phase::Stopped };
        }
        Record {
            spec: self.spec.clone(),
            state,
            process: self.process.clone(),
            port: self.port,
            restarts: self.policy.restarts,
            started_at: self.process.as_ref().and(self.started_at),
            last_exit: self.last_exit,
            last_error: self.policy.last_error.clone(),
        }
    }
}

/// The running supervisor.
#[derive(Debug)]
struct Supervisor {
    run: RunDir,
    me: Identity,
    services: BTreeMap<String, Managed>,
    foreground: bool,
    /// Exit once nothing runs (after `labup stop` of everything, or a signal).
    exit_when_idle: bool,
    /// When log sizes were last checked for rotation.
    rotation_checked: Instant,
    last_written: Vec<u8>,
}

/// How a foreground supervisor ended.
#[derive(Debug, Default)]
pub struct Ended {
    /// Services that gave up (or could not start), with why: the foreground exits non-zero so a
    /// container's restart policy takes over. Empty after a requested stop.
    pub failed: Vec<(String, String)>,
    /// The signal that asked for the stop, if one did.
    pub signal: Option<&'static str>,
}

/// Runs the detached supervisor until it is told to stop everything; it receives its specs on
/// the socket.
pub fn run(layout: &Layout) -> Result<()> {
    serve(layout, Vec::new(), None).map(|_| ())
}

/// `labup up --foreground`: starts `initial` at once, streams every service's log on stdout,
/// calls `on_ready` once when every one of them is ready, and runs until a signal (SIGTERM,
/// SIGINT, SIGHUP) or `labup stop` asks it to stop, or a service gives up (then every other one
/// is stopped too). As PID 1 of a container (or as the child subreaper it makes itself) it reaps
/// every orphan that is reparented to it, never the status of a child it manages.
pub fn foreground(layout: &Layout, initial: Vec<Spec>, on_ready: &mut dyn FnMut(&RunState)) -> Result<Ended> {
    reaper::become_subreaper();
    serve(layout, initial, Some(on_ready))
}

fn serve(layout: &Layout, initial: Vec<Spec>, mut on_ready: Option<&mut dyn FnMut(&RunState)>) -> Result<Ended> {
    let foreground = on_ready.is_some();
    let run = RunDir::of(layout);
    run.create()?;
    let lock_file = File::create(run.supervisor_lock())?;
    if lock_file.try_lock().is_err() {
        if foreground {
            let pid = run.live_supervisor(&run.read()).map(|s| s.pid);
            return Err(Fail::new(format!(
                "a labup supervisor is already running for this project{}",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ))
            .hint("stop it first with `labup stop`, or use `labup up` without `--foreground`")
            .into());
        }
        // Another supervisor won the race: it serves this project.
        return Ok(Ended::default());
    }
    let me = proc::identify(std::process::id() as i32).context("cannot read our own process identity")?;
    let mut sup = Supervisor {
        run,
        me,
        services: BTreeMap::new(),
        foreground,
        exit_when_idle: false,
        rotation_checked: Instant::now(),
        last_written: Vec::new(),
    };
    sup.adopt();

    let socket = sup.run.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || control::serve(&listener, &tx));

    // One flag per signal, so the foreground can say which one asked for the stop. As PID 1 a
    // signal without a handler is ignored by the kernel: these handlers are what makes SIGTERM work.
    let signals: Vec<(&'static str, Arc<AtomicBool>)> = [
        ("SIGTERM", signal_hook::consts::SIGTERM),
        ("SIGINT", signal_hook::consts::SIGINT),
        ("SIGHUP", signal_hook::consts::SIGHUP),
    ]
    .into_iter()
    .map(|(name, sig)| {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(sig, Arc::clone(&flag)).map(|_| (name, flag))
    })
    .collect::<std::io::Result<_>>()?;

    let initial_names: Vec<String> = initial.iter().map(|s| s.name.clone()).collect();
    if !initial.is_empty() {
        sup.handle(Request::Start { specs: initial });
    }
    let mut ended = Ended::default();
    let mut announced = false;
    loop {
        match rx.recv_timeout(TICK) {
            Ok((request, reply)) => {
                let answer = sup.handle(request);
                // The client reads state.json next: it must already show what was asked.
                sup.tick();
                sup.write_state();
                let _ = reply.send(answer);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for (name, flag) in &signals {
            if flag.swap(false, Ordering::SeqCst) {
                if foreground && ended.signal.is_none() && ended.failed.is_empty() {
                    eprintln!("labup: {name}: stopping every service");
                }
                ended.signal = ended.signal.or(Some(name));
                sup.handle(Request::Stop { names: Vec::new() });
            }
        }
        sup.tick();
        if foreground {
            reaper::reap_orphans(&sup.managed_pids());
            sup.end_when_done(&mut ended);
        }
        sup.write_state();
        if foreground {
            sup.print_logs();
            if !announced && sup.all_ready(&initial_names) {
                announced = true;
                if let Some(on_ready) = on_ready.as_mut() {
                    on_ready(&sup.state());
                }
            }
        }
        if sup.exit_when_idle && sup.idle() {
            break;
        }
    }
    let _ = std::fs::remove_file(&socket);
    let mut state = sup.state();
    state.supervisor = None;
    sup.run.write(&state)?;
    if foreground {
        reaper::reap_orphans(&[]);
    }
    Ok(ended)
}

impl Supervisor {
    /// Takes over services a previous supervisor left running (identity verified).
    fn adopt(&mut self) {
        let previous = self.run.read();
        let now = Instant::now();
        for (name, rec) in previous.services {
            let mut m = Managed::new(rec.spec.clone());
            m.last_exit = rec.last_exit;
            m.policy.restarts = rec.restarts;
            if let Some(id) = rec.process.clone().filter(|id| !proc::group_members(id).is_empty()) {
                self.log(&format!("adopting `{name}` (pid {}) from a previous supervisor", id.pid));
                m.policy = Policy::adopted(rec.spec.restart, rec.state, rec.restarts, now);
                m.process = Some(id);
                m.port = rec.port;
                m.started_at = rec.started_at;
                m.spawned = Some(now);
                m.probe_offset = std::fs::metadata(rec.spec.log_path(&self.run.logs)).map_or(0, |md| md.len());
            }
            m.print_offset = std::fs::metadata(m.spec.log_path(&self.run.logs)).map_or(0, |md| md.len());
            self.services.insert(name, m);
        }
    }

    fn log(&self, line: &str) {
        if !self.foreground {
            eprintln!("[{}] {line}", proc::unix_now());
        }
    }

    fn handle(&mut self, request: Request) -> Reply {
        let now = Instant::now();
        match request {
            Request::Ping => {}
            Request::Start { specs } => {
                self.exit_when_idle = false;
                for spec in specs {
                    let logs = self.run.logs.clone();
                    let m = self.services.entry(spec.name.clone()).or_insert_with(|| {
                        let mut m = Managed::new(spec.clone());
                        m.print_offset = std::fs::metadata(spec.log_path(&logs)).map_or(0, |md| md.len());
                        m
                    });
                    let running = m.process.is_some();
                    if !m.spec.same_service(&spec) && running {
                        if !self.foreground {
                            eprintln!("[{}] `{}` changed: restarting it", proc::unix_now(), spec.name);
                        }
                        m.spec = spec;
                        m.restart_after_stop = true;
                        m.stop_note = Some("its configuration or venv changed: restarting it".into());
                        let action = m.policy.on_event(Event::StopRequested, now);
                        Self::act(&self.run, m, action, now);
                    } else {
                        if !m.spec.same_service(&spec) {
                            m.policy = Policy::new(spec.restart);
                        }
                        // A running service keeps the spec it runs with (its inherited PATH).
                        if !running {
                            m.spec = spec;
                        }
                        if !matches!(m.policy.phase(), Phase::Starting | Phase::Ready) || m.stopping.is_some() {
                            m.pending_start = true;
                        }
                    }
                }
            }
            Request::Restart { specs } => {
                self.exit_when_idle = false;
                for spec in specs {
                    let Some(m) = self.services.get_mut(&spec.name) else {
                        self.services.insert(spec.name.clone(), Managed::new(spec.clone()));
                        if let Some(m) = self.services.get_mut(&spec.name) {
                            m.pending_start = true;
                        }
                        continue;
                    };
                    m.spec = spec;
                    if m.process.is_some() {
                        m.restart_after_stop = true;
                        m.stop_note = Some("asked to restart".into());
                        let action = m.policy.on_event(Event::StopRequested, now);
                        Self::act(&self.run, m, action, now);
                    } else {
                        m.policy = Policy::new(m.spec.restart);
                        m.pending_start = true;
                    }
                }
            }
            Request::Stop { names } => {
                let all = names.is_empty();
                for (name, m) in &mut self.services {
                    if all || names.contains(name) {
                        m.pending_start = false;
                        m.restart_after_stop = false;
                        if m.process.is_some() && m.stop_note.is_none() {
                            m.stop_note = Some("asked to stop".into());
                        }
                        let action = m.policy.on_event(Event::StopRequested, now);
                        Self::act(&self.run, m, action, now);
                    }
                }
                if all || self.services.values().all(|m| !m.policy.wanted() && !m.pending_start) {
                    self.exit_when_idle = true;
                }
            }
        }
        Reply { ok: true, message: None }
    }

    /// Pids of the children this supervisor waits on itself (`Child::try_wait`): a reaper must
    /// leave their exit status to that wait.
    fn managed_pids(&self) -> Vec<i32> {
        self.services.values().filter_map(|m| m.child.as_ref().map(|c| c.id() as i32)).collect()
    }

    /// Whether every one of `names` is ready (and there is at least one).
    fn all_ready(&self, names: &[String]) -> bool {
        !names.is_empty()
            && names
                .iter()
                .all(|n| self.services.get(n).is_some_and(|m| m.policy.phase() == Phase::Ready && m.stopping.is_none()))
    }

    /// The foreground's end: a service that gave up (or was refused) stops everything else and
    /// makes the exit non-zero; when nothing is wanted any more (every service exited for good
    /// or was stopped with `labup stop`), the supervisor exits once its groups are gone.
    fn end_when_done(&mut self, ended: &mut Ended) {
        if self.exit_when_idle {
            return;
        }
        let failed: Vec<(String, String)> = self
            .services
            .iter()
            .filter(|(_, m)| m.policy.phase() == Phase::Failed && !m.policy.wanted() && !m.pending_start)
            .map(|(n, m)| (n.clone(), m.policy.last_error.clone().unwrap_or_else(|| "failed".into())))
            .collect();
        if !failed.is_empty() && ended.signal.is_none() {
            for (name, why) in &failed {
                eprintln!("labup: `{name}` {why}: stopping every service");
            }
            ended.failed = failed;
            self.handle(Request::Stop { names: Vec::new() });
        } else if !self.services.is_empty()
            && self.services.values().all(|m| !m.policy.wanted() && !m.pending_start && !m.restart_after_stop)
        {
            self.exit_when_idle = true;
        }
    }

    fn idle(&self) -> bool {
        self.services.values().all(|m| m.process.is_none() && m.stopping.is_none() && !m.pending_start)
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.rotation_checked) >= Duration::from_secs(5) {
            self.rotation_checked = now;
            for m in self.services.values_mut() {
                let log = m.spec.log_path(&self.run.logs);
                if logs::rotate_if_large(&log, logs::ROTATE_AT).unwrap_or(false) {
                    m.print_offset = 0;
                    m.probe_offset = 0;
                }
            }
        }
        // Each service can learn the others' ports: the port a running one got, else a fixed one.
        let ports: BTreeMap<String, u16> = self
            .services
            .iter()
            .filter_map(|(n, m)| {
                let fixed = match m.spec.port {
                    Some(Port::Fixed(p)) => Some(p),
                    _ => None,
                };
                Some((port_var(n), m.port.filter(|_| m.process.is_some()).or(fixed)?))
            })
            .collect();
        for (name, m) in &mut self.services {
            let own = port_var(name);
            m.peers = ports.iter().filter(|(k, _)| **k != own).map(|(k, v)| (k.clone(), *v)).collect();
        }
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            self.start_if_deps_ready(&name, now);
            let Some(m) = self.services.get_mut(&name) else { continue };
            Self::watch_exit(m, now);
            Self::watch_stop(&self.run, m, now);
            Self::watch_ready(&self.run, m, now);
            let action = m.policy.on_event(Event::Tick, now);
            Self::act(&self.run, m, action, now);
        }
    }

    /// A pending start proceeds once every `after` service is ready, and fails when one failed.
    fn start_if_deps_ready(&mut self, name: &str, now: Instant) {
        let Some(m) = self.services.get(name) else { return };
        if !m.pending_start || m.process.is_some() {
            return;
        }
        let mut blocked_by = None;
        for dep in &m.spec.after {
            match self.services.get(dep) {
                Some(d) if d.policy.phase() == Phase::Ready => {}
                Some(d) if d.policy.phase() == Phase::Failed && !d.pending_start => {
                    blocked_by =
                        Some(Err(format!("`{dep}` failed: {}", d.policy.last_error.clone().unwrap_or_default())));
                }
                Some(_) => blocked_by = blocked_by.or(Some(Ok(()))),
                None => blocked_by = Some(Err(format!("`{dep}` is not started by labup"))),
            }
        }
        let Some(m) = self.services.get_mut(name) else { return };
        match blocked_by {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                m.pending_start = false;
                m.policy.on_event(Event::StartRequested, now);
                m.policy.on_event(Event::Refused(format!("cannot start: {why}")), now);
            }
            None => {
                m.pending_start = false;
                let action = m.policy.on_event(Event::StartRequested, now);
                Self::act(&self.run, m, action, now);
            }
        }
    }

    fn act(run: &RunDir, m: &mut Managed, action: Action, now: Instant) {
        match action {
            Action::None => {}
            Action::Spawn => Self::spawn(run, m, now),
            Action::Stop => Self::begin_stop(m, now),
        }
    }

    fn spawn(run: &RunDir, m: &mut Managed, now: Instant) {
        let port = match m.spec.port {
            None => None,
            Some(Port::Auto) => match m.port.filter(|p| ports::is_free(*p)).map(Ok).unwrap_or_else(ports::free_port) {
                Ok(p) => Some(p),
                Err(e) => {
                    m.policy.on_event(Event::SpawnFailed(format!("no free port: {e}")), now);
                    return;
                }
            },
            Some(Port::Fixed(p)) => {
                if !ports::is_free(p) {
                    let in_use = crate::error::Error::PortInUse { port: p, holder: ports::describe_holder(p) };
                    m.policy.on_event(Event::Refused(in_use.to_string()), now);
                    return;
                }
                Some(p)
            }
        };
        let log = m.spec.log_path(&run.logs);
        let _ = logs::rotate_if_large(&log, logs::ROTATE_AT);
        let port_note = port.map(|p| format!(" on port {p}")).unwrap_or_default();
        logs::note(&log, &format!("starting `{}`{port_note}", m.spec.argv.join(" ")));
        let result = (|| -> std::io::Result<Child> {
            let out = logs::open_append(&log)?;
            let err = out.try_clone()?;
            // The others' ports, unless the service's own `env` sets that name.
            let peers: Vec<(String, String)> = m
                .peers
                .iter()
                .filter(|(k, _)| !m.spec.env.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect();
            let expand = |args: &[String]| expand_vars(&expand_port(args, port), &peers);
            let argv = expand(&m.spec.argv);
            let (program, args) = argv.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
            let mut cmd = Command::new(program);
            cmd.args(args).current_dir(&m.spec.cwd).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
            if let Some(dir) = &m.spec.runtime_dir {
                super::jupyter::clean_stale_runtime_files(dir);
            }
            for (k, v) in &m.spec.env {
                match v {
                    Some(v) => cmd.env(k, expand(std::slice::from_ref(v)).remove(0)),
                    None => cmd.env_remove(k),
                };
            }
            for (k, v) in &peers {
                cmd.env(k, v);
            }
            if let Some(p) = port {
                cmd.env("PORT", p.to_string());
            }
            // Python buffers stdout when it is a file: unbuffered, log lines (and log probes) are timely.
            cmd.env("PYTHONUNBUFFERED", "1");
            cmd.spawn()
        })();
        match result {
            Ok(child) => {
                let id = proc::identify(child.id() as i32).unwrap_or(Identity {
                    pid: child.id() as i32,
                    start_time: 0,
                    boot_id: proc::boot_id(),
                });
                m.process = Some(id);
                m.child = Some(child);
                m.port = port;
                m.started_at = Some(proc::unix_now());
                m.spawned = Some(now);
                m.last_probe = None;
                m.probe_offset = std::fs::metadata(&log).map_or(0, |md| md.len());
                m.policy.on_event(Event::Spawned, now);
            }
            Err(e) => {
                logs::note(&log, &format!("could not start: {e}"));
                m.policy.on_event(Event::SpawnFailed(format!("could not start `{}`: {e}", m.spec.argv.join(" "))), now);
            }
        }
    }

    fn begin_stop(m: &mut Managed, now: Instant) {
        if let Some(id) = &m.process {
            proc::signal_group(id, Signal::SIGTERM);
            if m.stopping.is_none() {
                m.stopping =
                    Some(Stopping { deadline: now + Duration::from_millis(m.spec.stop_timeout_ms), killed: false });
            }
        }
    }

    /// Notices the leader's exit; the rest of its group is stopped before the exit counts.
    fn watch_exit(m: &mut Managed, now: Instant) {
        let Some(id) = m.process.clone() else { return };
        let exited = match &mut m.child {
            Some(child) => match child.try_wait() {
                Ok(Some(status)) => Some(status.code().or(status.signal().map(|_| -1))),
                _ => None,
            },
            None if !proc::is_alive(&id) => Some(None),
            None => None,
        };
        if let Some(code) = exited {
            m.child = None;
            m.last_exit = code.filter(|c| *c >= 0);
            if m.stopping.is_none() {
                // No orphan keeps the port: what is left of the group goes too.
                Self::begin_stop(m, now);
                if m.stopping.is_none() {
                    m.stopping = Some(Stopping { deadline: now, killed: false });
                }
            }
        }
    }

    /// Finishes a stop once the group is empty; escalates to SIGKILL after the grace period.
    fn watch_stop(run: &RunDir, m: &mut Managed, now: Instant) {
        let (Some(stopping), Some(id)) = (m.stopping, m.process.clone()) else { return };
        if let Some(child) = &mut m.child {
            if let Ok(Some(status)) = child.try_wait() {
                m.last_exit = status.code();
                m.child = None;
            }
        }
        if proc::group_members(&id).is_empty() && m.child.is_none() {
            m.process = None;
            m.stopping = None;
            let log = m.spec.log_path(&run.logs);
            let how = m.last_exit.map_or("by a signal".to_string(), |c| format!("with status {c}"));
            match m.stop_note.take() {
                Some(why) => logs::note(&log, &format!("exited {how}: labup stopped it ({why})")),
                None => logs::note(&log, &format!("exited {how}")),
            }
            let action = m.policy.on_event(Event::Exited(m.last_exit), now);
            Self::act(run, m, action, now);
            if m.restart_after_stop {
                m.restart_after_stop = false;
                let restarts = m.policy.restarts + 1;
                m.policy = Policy::new(m.spec.restart);
                m.policy.restarts = restarts;
                m.pending_start = true;
            }
            return;
        }
        if now >= stopping.deadline && !stopping.killed {
            proc::signal_group(&id, Signal::SIGKILL);
            m.stopping = Some(Stopping { killed: true, ..stopping });
        }
    }

    /// Probes a starting service; a start that takes too long is stopped and counts as failed.
    fn watch_ready(run: &RunDir, m: &mut Managed, now: Instant) {
        if m.policy.phase() != Phase::Starting || m.process.is_none() || m.stopping.is_some() {
            return;
        }
        if m.last_probe.is_some_and(|t| now.duration_since(t) < PROBE_EVERY) {
            return;
        }
        m.last_probe = Some(now);
        let leader = m.process.as_ref().map_or(0, |p| p.pid);
        let ready = match (&m.spec.ready, m.port) {
            (Some(Ready::Http(path)), Some(port)) => {
                probe::http(port, path, PROBE_TIMEOUT)
                    && ours(port, leader)
                    && m.spec.runtime_dir.as_ref().is_none_or(|dir| {
                        let mut pids = vec![leader];
                        pids.extend(m.process.as_ref().map(proc::group_members).unwrap_or_default());
                        super::jupyter::runtime_file_names_port(dir, &pids, port)
                    })
            }
            (Some(Ready::Tcp), Some(port)) | (None, Some(port)) => {
                probe::tcp(port, PROBE_TIMEOUT) && ours(port, leader)
            }
            (Some(Ready::Log(re)), _) => {
                let text = logs::read_from(&m.spec.log_path(&run.logs), &mut m.probe_offset);
                regex::Regex::new(re).is_ok_and(|re| probe::log_matches(&text, &re))
            }
            (Some(_), None) | (None, None) => true,
        };
        if ready {
            logs::note(&m.spec.log_path(&run.logs), "ready");
            m.policy.on_event(Event::Ready, now);
        } else if m.spawned.is_some_and(|t| now.duration_since(t) >= Duration::from_millis(m.spec.start_timeout_ms)) {
            let why = not_ready_reason(&m.spec, m.port, leader);
            logs::note(
                &m.spec.log_path(&run.logs),
                &format!(
                    "stopping it (SIGTERM to its process group, SIGKILL after {}): {why}",
                    seconds(m.spec.stop_timeout_ms)
                ),
            );
            m.stop_note = Some(why.clone());
            let action = m.policy.on_event(Event::StartTimedOut(why), now);
            Self::act(run, m, action, now);
        }
    }

    fn state(&self) -> RunState {
        RunState {
            supervisor: Some(self.me.clone()),
            services: self.services.iter().map(|(n, m)| (n.clone(), m.record())).collect(),
        }
    }

    fn write_state(&mut self) {
        let state = self.state();
        let Ok(json) = serde_json::to_vec_pretty(&state) else { return };
        if json != self.last_written && self.run.write(&state).is_ok() {
            self.last_written = json;
        }
    }

    /// `--foreground`: every service's new log lines on stdout, prefixed with its name.
    fn print_logs(&mut self) {
        let logs_dir = &self.run.logs;
        let chunks: Vec<(&str, String)> = self
            .services
            .iter_mut()
            .map(|(name, m)| (name.as_str(), logs::read_from(&m.spec.log_path(logs_dir), &mut m.print_offset)))
            .collect();
        crate::ui::LogPrinter::stdout().print(&chunks);
    }
}

/// PID 1's duty: collecting the exit status of every orphan the kernel hands us.
mod reaper {
    /// Makes this process the reaper of its descendants' orphans (Linux), so a service's daemonised
    /// grandchild is collected here and not by an init that may not reap at all. As PID 1 it is
    /// that already.
    pub(super) fn become_subreaper() {
        #[cfg(target_os = "linux")]
        if std::process::id() != 1 {
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
    }

    /// Reaps every exited child that is not in `managed`. It looks first without reaping
    /// (`WNOWAIT`): a managed child's status belongs to its own `try_wait`, which the next tick
    /// makes; until then the other zombies wait one tick.
    #[cfg(target_os = "linux")]
    pub(super) fn reap_orphans(managed: &[i32]) {
        use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag};
        for _ in 0..256 {
            let peek = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            let Some(pid) = waitid(Id::All, peek).ok().and_then(|s| s.pid()) else { return };
            if managed.contains(&pid.as_raw()) {
                return;
            }
            if waitpid(pid, Some(WaitPidFlag::WNOHANG)).is_err() {
                return;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn reap_orphans(_managed: &[i32]) {}
}

/// `$PORT` and `${PORT}` in the arguments (and environment values) become the service's port,
/// for programs that take the port as an argument rather than from `PORT`.
pub fn expand_port(argv: &[String], port: Option<u16>) -> Vec<String> {
    let Some(port) = port else { return argv.to_vec() };
    let p = port.to_string();
    argv.iter().map(|a| a.replace("${PORT}", &p).replace("$PORT", &p)).collect()
}

/// The variable that carries a service's port to the others: `web` → `WEB_PORT`,
/// `my-api` → `MY_API_PORT`.
pub fn port_var(service: &str) -> String {
    let name: String =
        service.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{name}_PORT")
}

/// `$NAME` and `${NAME}` of these variables in the arguments become their values.
fn expand_vars(argv: &[String], vars: &[(String, String)]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                a = a.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
            }
            a
        })
        .collect()
}

/// Why a start did not become ready: the probe, the port and the time waited.
fn not_ready_reason(spec: &Spec, port: Option<u16>, leader: i32) -> String {
    let waited = format!("did not become ready within {}", seconds(spec.start_timeout_ms));
    let what = match (&spec.ready, port) {
        (Some(Ready::Http(path)), Some(port)) => {
            let url = format!("http://127.0.0.1:{port}{path}");
            match probe::http_status(port, path, PROBE_TIMEOUT) {
                None => format!("nothing answered the HTTP probe {url}"),
                Some(code) if !(200..400).contains(&code) => format!("the HTTP probe {url} got status {code}"),
                Some(_) if !ours(port, leader) => format!("{url} is answered by another process, not this service"),
                Some(_) => format!("{url} answers, but Jupyter wrote no runtime file naming port {port}"),
            }
        }
        (Some(Ready::Tcp), Some(port)) | (None, Some(port)) => {
            format!("nothing accepted connections on port {port} (127.0.0.1; the TCP probe)")
        }
        (Some(Ready::Log(re)), _) => format!("no line of its log matched the log probe `{re}`"),
        (Some(_), None) | (None, None) => "no probe could run".to_string(),
    };
    format!("{waited}: {what}; `start-timeout` sets the limit")
}

/// `3 s`, `1.5 s`.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Whether the listener on `port` belongs to the process group led by `leader` (when the
/// listener can be seen at all): a probe must reach our process, not a stranger on the port.
fn ours(port: u16, leader: i32) -> bool {
    let pids = ports::listening_pids(port);
    pids.is_empty() || pids.iter().any(|p| proc::pgrp(*p) == Some(leader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_is_expanded_in_arguments() {
        let argv: Vec<String> = ["python", "-m", "http.server", "$PORT", "--x=${PORT}"].map(String::from).to_vec();
        assert_eq!(expand_port(&argv, Some(8000))[3..], ["8000", "--x=8000"]);
        assert_eq!(expand_port(&argv, None), argv);
    }

    #[test]
    fn other_services_ports_are_variables() {
        assert_eq!(port_var("web"), "WEB_PORT");
        assert_eq!(port_var("my-api.v2"), "MY_API_V2_PORT");
        let vars = [("API_PORT".to_string(), "8000".to_string())];
        let argv: Vec<String> =
            ["--api=http://127.0.0.1:${API_PORT}/", "$API_PORT", "$PORT"].map(String::from).to_vec();
        assert_eq!(expand_vars(&argv, &vars), ["--api=http://127.0.0.1:8000/", "8000", "$PORT"]);
    }
}
