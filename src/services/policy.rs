//! One service's life as a pure state machine, owned together with its restart counters.
//!
//! The state holds the child only while it runs ([`State::Starting`], [`State::Ready`],
//! [`State::Stopping`]); what comes after a stop is part of the stopping state ([`Then`]).
//! Nothing here touches a process or the clock: time is passed in.
//!
//! Restarts (`on-failure` by default): the delay before a restart starts at 1 s and doubles
//! with each failure in a row, up to 30 s. A run that stayed up 60 s (ready) resets the delay.
//! A failure is *quick* when the service exited before it was ready or within 10 s of its
//! start; after 5 quick failures in a row the service gives up (a failure that is not quick
//! resets that count, not the delay), with the reason kept for `labup status`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::proc::Identity;
use crate::config::Restart;

/// First backoff delay.
pub(crate) const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest backoff delay.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A ready run this long resets the backoff delay.
pub(crate) const HEALTHY_RESET: Duration = Duration::from_secs(60);
/// A failure sooner than this after the start (or before ready) is quick.
pub(crate) const QUICK_FAILURE: Duration = Duration::from_secs(10);
/// Quick failures in a row before giving up.
pub(crate) const MAX_QUICK_FAILURES: u32 = 5;

/// What a service is doing, as `labup status` shows it (the `state` of `state.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    /// Started, not yet ready.
    Starting,
    /// Readiness probe passed.
    Ready,
    /// Not running (never started, stopped, or exited and not restarted).
    Stopped,
    /// Gave up, or exited with a failure and is not restarted.
    Failed,
    /// Waiting to be restarted.
    Backoff,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Gone, status unknown (a process adopted from a previous supervisor).
    Unknown,
}

impl Exit {
    /// The status for `state.json`'s `last_exit` (none after a signal).
    pub(crate) fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) | Exit::Unknown => None,
        }
    }

    /// `exited with status 3`, `was killed by a signal` (the reason `status` shows).
    pub(crate) fn reason(self) -> String {
        match self {
            Exit::Code(c) => format!("exited with status {c}"),
            Exit::Signal(_) | Exit::Unknown => "was killed by a signal".into(),
        }
    }

    /// `with status 3`, `by a signal` (the log note).
    pub(crate) fn how(self) -> String {
        match self.code() {
            Some(c) => format!("with status {c}"),
            None => "by a signal".into(),
        }
    }
}

/// A process group this supervisor runs (or adopted): plain facts, no handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// The group leader.
    pub(crate) id: Identity,
    /// The port it was given.
    pub(crate) port: Option<u16>,
    /// Unix time of the start.
    pub(crate) started_at: u64,
    /// When it was spawned (or adopted).
    pub(crate) spawned: Instant,
    /// When its readiness probe passed (adopted ready: when adopted).
    pub(crate) ready_at: Option<Instant>,
}

/// What follows a stop, once the group is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    /// Stay stopped (asked to stop).
    Stop,
    /// Start again, as a new start (asked to start while it was stopping).
    Start,
    /// Start again, counted as a restart, with this note (asked to restart, spec changed).
    Restart(String),
    /// It exited by itself or did not become ready in time (`Some(why)`): the restart policy
    /// judges the exit.
    Judge(Option<String>),
}

/// One service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Not running, not wanted.
    Stopped,
    /// Asked to start, waiting for its `after` services to be ready.
    Waiting,
    /// Running, not ready yet.
    Starting(Run),
    /// Running and ready.
    Ready(Run),
    /// SIGTERM sent (or the leader exited): waiting for its group to be gone.
    Stopping {
        /// The group.
        run: Run,
        /// What comes next.
        then: Then,
        /// When SIGKILL follows.
        deadline: Instant,
        /// SIGKILL was sent.
        killed: bool,
        /// The leader's exit, once seen.
        exit: Option<Exit>,
    },
    /// Waiting to be restarted.
    Backoff {
        /// When.
        until: Instant,
    },
    /// Gave up or cannot start.
    Failed {
        /// Why.
        why: String,
    },
}

impl State {
    /// The running group, if any.
    pub(crate) fn run(&self) -> Option<&Run> {
        match self {
            State::Starting(run) | State::Ready(run) | State::Stopping { run, .. } => Some(run),
            _ => None,
        }
    }

    /// Whether the user (or the policy) wants it running.
    pub(crate) fn wanted(&self) -> bool {
        match self {
            State::Waiting | State::Starting(_) | State::Ready(_) | State::Backoff { .. } => true,
            State::Stopping { then, .. } => *then != Then::Stop,
            State::Stopped | State::Failed { .. } => false,
        }
    }

    /// How `status` shows it.
    pub(crate) fn phase(&self) -> Phase {
        match self {
            State::Stopped => Phase::Stopped,
            State::Waiting | State::Starting(_) => Phase::Starting,
            State::Ready(_) => Phase::Ready,
            State::Stopping { .. } if self.wanted() => Phase::Starting,
            State::Stopping { .. } => Phase::Stopped,
            State::Backoff { .. } => Phase::Backoff,
            State::Failed { .. } => Phase::Failed,
        }
    }
}

/// The restart counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Restarts so far (shown by `status`).
    pub(crate) restarts: u32,
    /// Quick failures in a row.
    pub(crate) quick_failures: u32,
    /// The next backoff delay.
    pub(crate) delay: Duration,
}

impl Counters {
    /// Fresh counters that keep `restarts`.
    pub(crate) fn new(restarts: u32) -> Counters {
        Counters { restarts, quick_failures: 0, delay: BACKOFF_START }
    }
}

/// A service's state and counters: the decisions of the restart policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// `restart =` of its spec.
    pub(crate) restart: Restart,
    /// Where it is.
    pub(crate) state: State,
    /// The counters.
    pub(crate) counters: Counters,
    /// Why it last failed, for `status`.
    pub(crate) last_error: Option<String>,
}

impl Policy {
    /// A stopped service with this restart setting.
    pub(crate) fn new(restart: Restart) -> Policy {
        Policy { restart, state: State::Stopped, counters: Counters::new(0), last_error: None }
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Asked to run: a new start resets the quick-failure count and the delay; a pending
    /// backoff is cut short.
    pub(crate) fn start(&mut self) {
        if matches!(self.state, State::Stopped | State::Failed { .. }) {
            self.counters = Counters::new(self.counters.restarts);
        }
        if matches!(self.state, State::Stopped | State::Failed { .. } | State::Backoff { .. }) {
            self.state = State::Waiting;
        }
    }

    /// Cannot start, and retrying will not help (port taken, a dependency failed).
    pub(crate) fn refuse(&mut self, why: String) {
        self.last_error = Some(why.clone());
        self.state = State::Failed { why };
    }

    /// The leader's group is gone after a stop that was to be judged: `exit` is how the leader
    /// ended, `run` the run that ended, `timed_out` why labup stopped it (a start timeout).
    pub(crate) fn judge(&mut self, exit: Exit, run: Option<&Run>, timed_out: Option<String>, now: Instant) {
        let success = exit == Exit::Code(0) && timed_out.is_none();
        let why = timed_out.unwrap_or_else(|| exit.reason());
        let restart = match self.restart {
            Restart::Never => false,
            Restart::OnFailure => !success,
            Restart::Always => true,
        };
        if !restart {
            if success {
                self.state = State::Stopped;
            } else {
                self.refuse(why);
            }
            return;
        }
        self.failed(&why, run, now, !success);
    }

    /// The spawn itself failed: a quick failure, retried.
    pub(crate) fn spawn_failed(&mut self, why: &str, now: Instant) {
        self.failed(why, None, now, true);
    }

    /// An end that is retried unless it keeps happening quickly.
    fn failed(&mut self, why: &str, run: Option<&Run>, now: Instant, is_failure: bool) {
        let ran = run.map(|r| now.saturating_duration_since(r.spawned));
        let was_ready = run.is_some_and(|r| r.ready_at.is_some());
        if was_ready && ran.is_some_and(|d| d >= HEALTHY_RESET) {
            self.counters.delay = BACKOFF_START;
        }
        let quick = !was_ready || ran.is_none_or(|d| d < QUICK_FAILURE);
        self.counters.quick_failures = if quick { self.counters.quick_failures + 1 } else { 0 };
        if is_failure {
            self.last_error = Some(why.to_string());
        }
        if self.counters.quick_failures >= MAX_QUICK_FAILURES {
            let n = self.counters.quick_failures;
            self.refuse(format!("gave up after {n} quick failures; last: {why}"));
            return;
        }
        self.state = State::Backoff { until: now + self.counters.delay };
        self.counters.delay = (self.counters.delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn run_at(spawned: Instant, ready: bool) -> Run {
        let id = Identity { pid: 42, start_time: 1, boot_id: "b".into() };
        Run { id, port: None, started_at: 0, spawned, ready_at: ready.then_some(spawned) }
    }

    /// Runs `ran` (ready or not), fails with `exit`, waits out the backoff; the delay it got.
    fn fail_once(p: &mut Policy, now: &mut Instant, ran: Duration, ready: bool, exit: Exit) -> Option<Duration> {
        let run = run_at(*now, ready);
        *now += ran;
        p.judge(exit, Some(&run), None, *now);
        match p.state {
            State::Backoff { until } => {
                let delay = until - *now;
                *now = until;
                Some(delay)
            }
            _ => None,
        }
    }

    #[test]
    fn backoff_doubles_to_the_thirty_second_cap() {
        let mut p = Policy::new(Restart::OnFailure);
        let mut now = Instant::now();
        // Ready, then a crash after 20 s: not quick, so it never gives up; the delay keeps growing.
        let delays: Vec<_> =
            (0..8).map(|_| fail_once(&mut p, &mut now, secs(20), true, Exit::Code(1)).unwrap()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30].map(secs));
        assert_eq!(p.counters.quick_failures, 0);
    }

    #[test]
    fn five_quick_failures_give_up() {
        let mut p = Policy::new(Restart::OnFailure);
        let mut now = Instant::now();
        let delays: Vec<_> =
            (0..5).map(|_| fail_once(&mut p, &mut now, Duration::from_millis(100), false, Exit::Code(2))).collect();
        assert_eq!(delays, [Some(secs(1)), Some(secs(2)), Some(secs(4)), Some(secs(8)), None]);
        let State::Failed { why } = &p.state else { panic!("{:?}", p.state) };
        assert_eq!(why, "gave up after 5 quick failures; last: exited with status 2");
        assert_eq!(p.last_error.as_deref(), Some(why.as_str()));
        // Asking again starts afresh.
        p.start();
        assert_eq!(p.state, State::Waiting);
        assert_eq!(p.counters, Counters::new(0));
    }

    #[test]
    fn a_failure_is_quick_before_ready_or_within_ten_seconds() {
        let mut now = Instant::now();
        for (ran, ready, quick) in [(secs(20), false, true), (secs(9), true, true), (secs(11), true, false)] {
            let mut p = Policy::new(Restart::OnFailure);
            fail_once(&mut p, &mut now, ran, ready, Exit::Code(1));
            assert_eq!(p.counters.quick_failures, u32::from(quick), "ran {ran:?}, ready {ready}");
        }
    }

    #[test]
    fn a_slow_failure_resets_the_quick_count_but_not_the_delay() {
        let mut p = Policy::new(Restart::OnFailure);
        let mut now = Instant::now();
        let quick = Duration::from_millis(50);
        for _ in 0..4 {
            fail_once(&mut p, &mut now, quick, false, Exit::Code(1));
        }
        assert_eq!(fail_once(&mut p, &mut now, secs(20), true, Exit::Code(1)), Some(secs(16)));
        assert_eq!(p.counters.quick_failures, 0);
        for _ in 0..4 {
            assert!(fail_once(&mut p, &mut now, quick, false, Exit::Code(1)).is_some(), "gave up too early");
        }
        assert_eq!(fail_once(&mut p, &mut now, quick, false, Exit::Code(1)), None, "the fifth quick one in a row");
    }

    #[test]
    fn a_healthy_minute_resets_the_delay() {
        let mut p = Policy::new(Restart::Always);
        let mut now = Instant::now();
        for _ in 0..3 {
            fail_once(&mut p, &mut now, Duration::from_millis(50), false, Exit::Code(1));
        }
        assert_eq!(p.counters.delay, secs(8));
        assert_eq!(fail_once(&mut p, &mut now, secs(61), true, Exit::Code(1)), Some(secs(1)));
        assert_eq!(fail_once(&mut p, &mut now, secs(59), true, Exit::Code(1)), Some(secs(2)), "59 s is not enough");
    }

    #[test]
    fn restart_settings_judge_exits() {
        let now = Instant::now();
        let judged = |restart, exit, timed_out: Option<&str>| {
            let mut p = Policy::new(restart);
            p.judge(exit, Some(&run_at(now, true)), timed_out.map(String::from), now + secs(20));
            (p.phase(), p.last_error)
        };
        assert_eq!(judged(Restart::Never, Exit::Code(3), None), (Phase::Failed, Some("exited with status 3".into())));
        assert_eq!(judged(Restart::Never, Exit::Code(0), None), (Phase::Stopped, None));
        assert_eq!(judged(Restart::OnFailure, Exit::Code(0), None), (Phase::Stopped, None));
        assert_eq!(
            judged(Restart::OnFailure, Exit::Signal(9), None),
            (Phase::Backoff, Some("was killed by a signal".into()))
        );
        assert_eq!(judged(Restart::Always, Exit::Code(0), None), (Phase::Backoff, None), "a clean exit is no error");
        assert_eq!(
            judged(Restart::OnFailure, Exit::Code(0), Some("did not become ready")),
            (Phase::Backoff, Some("did not become ready".into())),
            "a start timeout is a failure whatever the status"
        );
    }

    #[test]
    fn refusal_and_spawn_failure() {
        let now = Instant::now();
        let mut p = Policy::new(Restart::Always);
        p.refuse("port 5001 is in use".into());
        assert_eq!(p.state, State::Failed { why: "port 5001 is in use".into() });
        assert!(!p.state.wanted());
        let mut p = Policy::new(Restart::OnFailure);
        p.spawn_failed("no such file", now);
        assert_eq!(p.state, State::Backoff { until: now + secs(1) });
        assert_eq!(p.counters.quick_failures, 1);
        assert_eq!(p.last_error.as_deref(), Some("no such file"));
    }

    #[test]
    fn a_start_cuts_a_backoff_short_and_keeps_its_counters() {
        let mut p = Policy::new(Restart::OnFailure);
        let mut now = Instant::now();
        fail_once(&mut p, &mut now, Duration::from_millis(50), false, Exit::Code(1));
        p.state = State::Backoff { until: now + secs(2) };
        p.start();
        assert_eq!(p.state, State::Waiting);
        assert_eq!(p.counters.quick_failures, 1);
    }

    #[test]
    fn phases_and_wants() {
        let now = Instant::now();
        let stopping =
            |then| State::Stopping { run: run_at(now, true), then, deadline: now, killed: false, exit: None };
        assert_eq!(stopping(Then::Stop).phase(), Phase::Stopped);
        assert_eq!(stopping(Then::Restart("x".into())).phase(), Phase::Starting);
        assert_eq!(stopping(Then::Judge(None)).phase(), Phase::Starting);
        assert_eq!(State::Waiting.phase(), Phase::Starting);
        assert!(State::Waiting.run().is_none() && stopping(Then::Stop).run().is_some());
        assert_eq!(Exit::Signal(9).code(), None);
        assert_eq!(Exit::Code(3).how(), "with status 3");
    }
}
