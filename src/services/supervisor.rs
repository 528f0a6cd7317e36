//! The supervisor: one process per project that spawns services in their own process groups,
//! probes them, applies the restart policy and records everything in `state.json`.
//!
//! Services write their logs straight to their files and keep running if the supervisor is
//! killed; a new supervisor adopts the ones whose identity still matches. Requests arrive on the
//! control socket; the loop ticks every 20 ms so readiness is reported within a tick or two.
//!
//! The decisions are the [`Reducer`]'s (pure); the [`Driver`] feeds it events (requests, exits,
//! probe results posted by probe threads, ticks) and carries out its actions through
//! [`Effects`], which tests replace with a fake.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::control::{self, Reply, Request};
use super::effects::{Effects, Os};
use super::logs;
use super::policy::State;
use super::proc::{self, Identity};
use super::reducer::{Action, Event, Reducer};
use super::spec::Spec;
use super::state::{RunDir, RunState};
use crate::error::Fail;
use crate::project::Layout;

const TICK: Duration = Duration::from_millis(20);
/// How often log sizes are checked for rotation.
const ROTATION_EVERY: Duration = Duration::from_secs(5);
/// How long a supervisor that lost the lock race waits for the winner to answer or exit.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Feeds the reducer and carries out its actions.
#[derive(Debug)]
pub(crate) struct Driver<E: Effects> {
    /// The decisions.
    pub(crate) reducer: Reducer,
    /// The world.
    pub(crate) effects: E,
    rotation_checked: Option<Instant>,
}

impl<E: Effects> Driver<E> {
    /// A driver with no services, logs in `logs`.
    pub(crate) fn new(logs: std::path::PathBuf, effects: E) -> Driver<E> {
        Driver { reducer: Reducer::new(logs), effects, rotation_checked: None }
    }

    /// Takes over what a previous supervisor recorded: the groups still alive are adopted.
    pub(crate) fn adopt(&mut self, previous: RunState, now: Instant) {
        for (_, rec) in previous.services {
            let alive = rec.process.as_ref().is_some_and(|id| !self.effects.group_gone(id));
            let log_len = self.effects.log_len(&rec.spec.log_path(&self.reducer.logs));
            let actions = self.reducer.adopt(rec, alive, log_len, now);
            self.carry_out(actions, now);
        }
    }

    /// A client's request; the reply to send back.
    pub(crate) fn request(&mut self, request: Request, now: Instant) -> Reply {
        let new: Vec<String> = match &request {
            Request::Start { specs } | Request::Restart { specs } => {
                specs.iter().filter(|s| !self.reducer.services.contains_key(&s.name)).map(|s| s.name.clone()).collect()
            }
            _ => Vec::new(),
        };
        let reply = self.feed(Event::Request(request), now).unwrap_or_else(Reply::ok);
        // The foreground prints what a new service's log gets from now on.
        for name in new {
            let Some(svc) = self.reducer.services.get_mut(&name) else { continue };
            svc.print_offset = self.effects.log_len(&svc.spec.log_path(&self.reducer.logs));
        }
        reply
    }

    /// Feeds one event and everything its actions lead to; the reply, if a request was answered.
    pub(crate) fn feed(&mut self, event: Event, now: Instant) -> Option<Reply> {
        let mut queue = VecDeque::from([event]);
        let mut reply = None;
        while let Some(event) = queue.pop_front() {
            let actions = self.reducer.on(event, now);
            for action in actions {
                match action {
                    Action::Spawn(job) => queue.push_back(self.effects.spawn(&job, now)),
                    Action::Reply(r) => reply = Some(r),
                    other => self.carry_out(vec![other], now),
                }
            }
        }
        reply
    }

    fn carry_out(&mut self, actions: Vec<Action>, now: Instant) {
        for action in actions {
            match action {
                Action::Spawn(job) => {
                    let event = self.effects.spawn(&job, now);
                    self.feed(event, now);
                }
                Action::SignalGroup { id, signal } => self.effects.signal_group(&id, signal),
                Action::StartProbe(job) => self.effects.start_probe(job),
                Action::Note { log, line } => self.effects.note(&log, &line),
                Action::Log(line) => self.effects.log(&line),
                Action::Reply(_) => {}
            }
        }
    }

    /// One turn of the loop: probe results, exits, emptied groups, log rotation, then time.
    pub(crate) fn tick(&mut self, now: Instant) {
        for probed in self.effects.probe_results() {
            self.feed(Event::Probed(probed), now);
        }
        let mut events = Vec::new();
        for (name, svc) in &self.reducer.services {
            let Some(run) = svc.policy.state.run() else { continue };
            let exit_seen = matches!(svc.policy.state, State::Stopping { exit: Some(_), .. });
            if !exit_seen {
                if let Some(exit) = self.effects.exited(&run.id) {
                    events.push(Event::Exited { name: name.clone(), pid: run.id.pid, exit });
                }
            }
        }
        for event in events {
            self.feed(event, now);
        }
        let gone: Vec<Event> = (self.reducer.services.iter())
            .filter_map(|(name, svc)| match &svc.policy.state {
                State::Stopping { run, exit: Some(_), .. } if self.effects.group_gone(&run.id) => {
                    Some(Event::GroupGone { name: name.clone(), pid: run.id.pid })
                }
                _ => None,
            })
            .collect();
        for event in gone {
            self.feed(event, now);
        }
        if self.rotation_checked.is_none_or(|t| now.duration_since(t) >= ROTATION_EVERY) {
            self.rotation_checked = Some(now);
            self.rotate_logs(now);
        }
        self.feed(Event::Tick, now);
    }

    fn rotate_logs(&mut self, now: Instant) {
        let logs = self.reducer.logs.clone();
        let rotated: Vec<String> = (self.reducer.services.iter())
            .filter(|(_, svc)| self.effects.rotate(&svc.spec.log_path(&logs)))
            .map(|(name, _)| name.clone())
            .collect();
        for name in rotated {
            self.feed(Event::LogRotated { name }, now);
        }
    }
}

/// The running supervisor.
#[derive(Debug)]
struct Supervisor {
    run: RunDir,
    me: Identity,
    driver: Driver<Os>,
    foreground: bool,
    last_written: Vec<u8>,
}

/// How a foreground supervisor ended.
#[derive(Debug, Default)]
pub(crate) struct Ended {
    /// Services that gave up (or could not start), with why: the foreground exits non-zero so a
    /// container's restart policy takes over. Empty after a requested stop.
    pub(crate) failed: Vec<(String, String)>,
    /// The signal that asked for the stop, if one did.
    pub(crate) signal: Option<&'static str>,
}

/// Runs the detached supervisor until it is told to stop everything; it receives its specs on
/// the socket.
pub(crate) fn run(layout: &Layout) -> Result<()> {
    serve(layout, Vec::new(), None).map(|_| ())
}

/// `labup up --foreground`: starts `initial` at once, streams every service's log on stdout,
/// calls `on_ready` once when every one of them is ready, and runs until a signal (SIGTERM,
/// SIGINT, SIGHUP) or `labup stop` asks it to stop, or a service gives up (then every other one
/// is stopped too). As PID 1 of a container (or as the child subreaper it makes itself) it reaps
/// every orphan that is reparented to it, never the status of a child it manages.
pub(crate) fn foreground(layout: &Layout, initial: Vec<Spec>, on_ready: &mut dyn FnMut(&RunState)) -> Result<Ended> {
    reaper::become_subreaper();
    serve(layout, initial, Some(on_ready))
}

/// Takes the supervisor lock. A detached supervisor that loses the race waits until the winner
/// answers (`None`: it serves the project) or exits (then this one takes over), so a client is
/// never left waiting for a supervisor that is shutting down.
fn lock(run: &RunDir, foreground: bool) -> Result<Option<File>> {
    let lock_file = File::create(run.supervisor_lock())?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        if lock_file.try_lock().is_ok() {
            return Ok(Some(lock_file));
        }
        let pid = run.live_supervisor(&run.read()).map(|s| s.pid);
        let named = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        if foreground {
            return Err(Fail::new(format!("a labup supervisor is already running for this project{named}"))
                .hint("stop it first with `labup stop`, or use `labup up` without `--foreground`")
                .into());
        }
        if control::send(&run.socket(), &Request::Ping).is_ok_and(|r| r.ok) {
            return Ok(None);
        }
        if Instant::now() > deadline {
            return Err(Fail::new(format!(
                "another labup supervisor{named} holds {} but neither answers nor exits",
                run.supervisor_lock().display()
            ))
            .hint(match pid {
                Some(p) => format!("it is stuck: end it yourself (`kill {p}`), then run the command again"),
                None => "a process that is not labup's holds the lock: find it with `fuser -v` on that file".into(),
            })
            .into());
        }
        std::thread::sleep(TICK);
    }
}

/// The signals that stop everything, one flag each, so the foreground can say which one asked.
/// As PID 1 a signal without a handler is ignored by the kernel: these handlers are what makes
/// SIGTERM work.
fn stop_signals() -> Result<Vec<(&'static str, Arc<AtomicBool>)>> {
    let signals = [
        ("SIGTERM", signal_hook::consts::SIGTERM),
        ("SIGINT", signal_hook::consts::SIGINT),
        ("SIGHUP", signal_hook::consts::SIGHUP),
    ];
    let flags = signals.into_iter().map(|(name, sig)| {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(sig, Arc::clone(&flag)).map(|_| (name, flag))
    });
    Ok(flags.collect::<std::io::Result<_>>()?)
}

fn serve(layout: &Layout, initial: Vec<Spec>, on_ready: Option<&mut dyn FnMut(&RunState)>) -> Result<Ended> {
    let foreground = on_ready.is_some();
    let run = RunDir::of(layout);
    run.create()?;
    let Some(_lock) = lock(&run, foreground)? else { return Ok(Ended::default()) };
    let me = proc::identify(std::process::id() as i32).context("cannot read our own process identity")?;
    let mut driver = Driver::new(run.logs.clone(), Os::new(foreground));
    driver.adopt(run.read(), Instant::now());
    let mut sup = Supervisor { run, me, driver, foreground, last_written: Vec::new() };

    let socket = sup.run.socket();
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || control::serve(&listener, &tx));
    let signals = stop_signals()?;

    let initial_names: Vec<String> = initial.iter().map(|s| s.name.clone()).collect();
    if !initial.is_empty() {
        sup.driver.request(Request::Start { specs: initial }, Instant::now());
    }
    let ended = sup.serve_loop(&rx, &signals, &initial_names, on_ready);
    // Requests that arrive from now on are answered "exiting" (the loop no longer reads them).
    drop(rx);
    let _ = std::fs::remove_file(&socket);
    let mut state = sup.state();
    state.supervisor = None;
    sup.run.write(&state)?;
    if foreground {
        reaper::reap_orphans(&[]);
    }
    Ok(ended)
}

type Requests = mpsc::Receiver<(Request, mpsc::Sender<Reply>)>;

impl Supervisor {
    fn serve_loop(
        &mut self,
        rx: &Requests,
        signals: &[(&'static str, Arc<AtomicBool>)],
        initial_names: &[String],
        mut on_ready: Option<&mut dyn FnMut(&RunState)>,
    ) -> Ended {
        let mut ended = Ended::default();
        let mut announced = false;
        loop {
            match rx.recv_timeout(TICK) {
                Ok((request, reply)) => {
                    let answer = self.driver.request(request, Instant::now());
                    // The client reads state.json next: it must already show what was asked.
                    self.driver.tick(Instant::now());
                    self.write_state();
                    let _ = reply.send(answer);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            for (name, flag) in signals {
                if flag.swap(false, Ordering::SeqCst) {
                    if self.foreground && ended.signal.is_none() && ended.failed.is_empty() {
                        eprintln!("labup: {name}: stopping every service");
                    }
                    ended.signal = ended.signal.or(Some(name));
                    self.driver.feed(Event::Shutdown { signal: name }, Instant::now());
                }
            }
            self.driver.tick(Instant::now());
            if self.foreground {
                reaper::reap_orphans(&self.driver.effects.managed_pids());
                self.end_when_done(&mut ended);
            }
            self.write_state();
            if self.foreground {
                self.print_logs();
                if !announced && self.driver.reducer.all_ready(initial_names) {
                    announced = true;
                    if let Some(on_ready) = on_ready.as_mut() {
                        on_ready(&self.state());
                    }
                }
            }
            if self.driver.reducer.exit_when_idle && self.driver.reducer.idle() {
                break;
            }
        }
        ended
    }

    /// The foreground's end: a service that gave up (or was refused) stops everything else and
    /// makes the exit non-zero; when nothing is wanted any more (every service exited for good
    /// or was stopped with `labup stop`), the supervisor exits once its groups are gone.
    fn end_when_done(&mut self, ended: &mut Ended) {
        let reducer = &self.driver.reducer;
        if reducer.exit_when_idle {
            return;
        }
        let failed = reducer.failed();
        if !failed.is_empty() && ended.signal.is_none() {
            for (name, why) in &failed {
                eprintln!("labup: `{name}` {why}: stopping every service");
            }
            ended.failed = failed;
            self.driver.feed(Event::Shutdown { signal: "a service gave up" }, Instant::now());
        } else if reducer.nothing_wanted() {
            self.driver.reducer.exit_when_idle = true;
        }
    }

    fn state(&self) -> RunState {
        self.driver.reducer.state(Some(self.me.clone()))
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
            .driver
            .reducer
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use nix::sys::signal::Signal;

    use super::*;
    use crate::services::policy::{Exit, Phase, Run};
    use crate::services::probe::{ProbeJob, Probed};
    use crate::services::reducer::SpawnJob;
    use crate::services::state::Record;

    /// Processes that exist only in memory: spawns get pids from 500, probes answer at once.
    #[derive(Default)]
    struct Fake {
        spawned: Vec<String>,
        signals: Vec<(i32, Signal)>,
        exits: BTreeMap<i32, Exit>,
        live_groups: Vec<i32>,
        probes: Vec<Probed>,
        notes: Vec<String>,
        logs: Vec<String>,
        ready: bool,
    }

    impl Effects for Fake {
        fn spawn(&mut self, job: &SpawnJob, now: Instant) -> Event {
            let pid = 500 + self.spawned.len() as i32;
            self.spawned.push(job.spec.name.clone());
            self.live_groups.push(pid);
            let id = Identity { pid, start_time: 1, boot_id: "b".into() };
            let run = Run { id, port: None, started_at: 1, spawned: now, ready_at: None };
            Event::Spawned { name: job.spec.name.clone(), run, log_len: 0 }
        }
        fn signal_group(&mut self, leader: &Identity, signal: Signal) {
            self.signals.push((leader.pid, signal));
        }
        fn exited(&mut self, leader: &Identity) -> Option<Exit> {
            self.exits.remove(&leader.pid)
        }
        fn group_gone(&mut self, leader: &Identity) -> bool {
            !self.live_groups.contains(&leader.pid)
        }
        fn start_probe(&mut self, job: ProbeJob) {
            let ready = self.ready;
            self.probes.push(Probed {
                name: job.name,
                pid: job.leader.pid,
                ready,
                why_not: String::new(),
                offset: None,
            });
        }
        fn probe_results(&mut self) -> Vec<Probed> {
            std::mem::take(&mut self.probes)
        }
        fn note(&mut self, _log: &Path, line: &str) {
            self.notes.push(line.into());
        }
        fn rotate(&mut self, _log: &Path) -> bool {
            false
        }
        fn log_len(&self, _log: &Path) -> u64 {
            0
        }
        fn log(&mut self, line: &str) {
            self.logs.push(line.into());
        }
    }

    fn spec(name: &str) -> Spec {
        crate::services::reducer::test_spec(name)
    }

    #[test]
    fn the_driver_spawns_probes_restarts_and_stops_through_its_effects() {
        let mut d = Driver::new("/p/.labup/logs".into(), Fake { ready: true, ..Fake::default() });
        let mut t = Instant::now();
        assert_eq!(d.request(Request::Start { specs: vec![spec("web")] }, t), Reply::ok());
        d.tick(t);
        assert_eq!(d.effects.spawned, ["web"]);
        d.tick(t);
        d.tick(t);
        assert_eq!(d.reducer.state(None).services["web"].state, Phase::Ready);
        assert_eq!(d.effects.notes, ["ready"]);
        // The leader dies; the group goes after SIGTERM; the restart comes after its backoff.
        d.effects.exits.insert(500, Exit::Code(3));
        d.tick(t);
        assert_eq!(d.effects.signals, [(500, Signal::SIGTERM)]);
        d.effects.live_groups.clear();
        d.tick(t);
        assert_eq!(d.reducer.state(None).services["web"].state, Phase::Backoff);
        t += Duration::from_secs(1);
        d.tick(t);
        assert_eq!(d.effects.spawned, ["web", "web"]);
        assert_eq!(d.reducer.state(None).services["web"].restarts, 1);
        d.request(Request::Stop { names: Vec::new() }, t);
        assert_eq!(d.effects.signals.last(), Some(&(501, Signal::SIGTERM)));
        d.effects.exits.insert(501, Exit::Signal(15));
        d.effects.live_groups.clear();
        d.tick(t);
        assert!(d.reducer.exit_when_idle && d.reducer.idle());
        assert_eq!(
            d.effects.notes.last().map(String::as_str),
            Some("exited by a signal: labup stopped it (asked to stop)")
        );
    }

    #[test]
    fn the_driver_adopts_only_live_groups() {
        let mut d = Driver::new("/p/.labup/logs".into(), Fake { live_groups: vec![77], ..Fake::default() });
        let rec = |name: &str, pid| Record {
            spec: spec(name),
            state: Phase::Ready,
            process: Some(Identity { pid, start_time: 1, boot_id: "b".into() }),
            port: None,
            restarts: 2,
            started_at: Some(5),
            last_exit: None,
            last_error: None,
        };
        let previous = RunState {
            supervisor: None,
            services: [("web".to_string(), rec("web", 77)), ("old".to_string(), rec("old", 78))].into(),
        };
        d.adopt(previous, Instant::now());
        let state = d.reducer.state(None);
        assert_eq!(state.services["web"].state, Phase::Ready);
        assert_eq!(state.services["old"].state, Phase::Stopped);
        assert_eq!(d.effects.logs, ["adopting `web` (pid 77) from a previous supervisor"]);
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn a_supervisor_that_loses_the_lock_waits_for_the_winner_to_exit() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::of(&Layout::of(dir.path()));
        run.create().unwrap();
        let winner = File::create(run.supervisor_lock()).unwrap();
        winner.try_lock().unwrap();
        let exiting = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(winner);
        });
        let started = Instant::now();
        let lock = lock(&run, false).unwrap();
        assert!(lock.is_some(), "it took over once the winner was gone");
        assert!(started.elapsed() >= Duration::from_millis(250), "it waited for the winner");
        exiting.join().unwrap();
        drop(lock);
        // In the foreground it says so at once.
        let err = lock_foreground_while_held(&run);
        assert!(err.contains("a labup supervisor is already running for this project"), "{err}");
    }

    fn lock_foreground_while_held(run: &RunDir) -> String {
        let held = File::create(run.supervisor_lock()).unwrap();
        held.try_lock().unwrap();
        lock(run, true).unwrap_err().to_string()
    }
}
