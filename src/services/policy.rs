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
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest backoff delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A ready run this long resets the backoff delay.
pub const HEALTHY_RESET: Duration = Duration::from_secs(60);
/// A failure sooner than this after the start (or before ready) is quick.
pub const QUICK_FAILURE: Duration = Duration::from_secs(10);
/// Quick failures in a row before giving up.
pub const MAX_QUICK_FAILURES: u32 = 5;

/// What a service is doing, as `labup status` shows it (the `state` of `state.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
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
pub enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
    /// Gone, status unknown (a process adopted from a previous supervisor).
    Unknown,
}

impl Exit {
    /// The status for `state.json`'s `last_exit` (none after a signal).
    pub fn code(self) -> Option<i32> {
        match self {
            Exit::Code(c) => Some(c),
            Exit::Signal(_) | Exit::Unknown => None,
        }
    }

    /// `exited with status 3`, `was killed by a signal` (the reason `status` shows).
    pub fn reason(self) -> String {
        match self {
            Exit::Code(c) => format!("exited with status {c}"),
            Exit::Signal(_) | Exit::Unknown => "was killed by a signal".into(),
        }
    }

    /// `with status 3`, `by a signal` (the log note).
    pub fn how(self) -> String {
        match self.code() {
            Some(c) => format!("with status {c}"),
            None => "by a signal".into(),
        }
    }
}

/// A process group this supervisor runs (or adopted): plain facts, no handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The group leader.
    pub id: Identity,
    /// The port it was given.
    pub port: Option<u16>,
    /// Unix time of the start.
    pub started_at: u64,
    /// When it was spawned (or adopted).
    pub spawned: Instant,
    /// When its readiness probe passed (adopted ready: when adopted).
    pub ready_at: Option<Instant>,
}

/// What follows a stop, once the group is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
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
pub enum State {
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
    pub fn run(&self) -> Option<&Run> {
        match self {
            State::Starting(run) | State::Ready(run) | State::Stopping { run, .. } => Some(run),
            _ => None,
        }
    }

    /// Whether the user (or the policy) wants it running.
    pub fn wanted(&self) -> bool {
        match self {
            State::Waiting | State::Starting(_) | State::Ready(_) | State::Backoff { .. } => true,
            State::Stopping { then, .. } => *then != Then::Stop,
            State::Stopped | State::Failed { .. } => false,
        }
    }

    /// How `status` shows it.
    pub fn phase(&self) -> Phase {
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
pub struct Counters {
    /// Restarts so far (shown by `status`).
    pub restarts: u32,
    /// Quick failures in a row.
    pub quick_failures: u32,
    /// The next backoff delay.
    pub delay: Duration,
}

impl Counters {
    /// Fresh counters that keep `restarts`.
    pub fn new(restarts: u32) -> Counters {
        Counters { restarts, quick_failures: 0, delay: BACKOFF_START }
    }
}

/// A service's state and counters: the decisions of the restart policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `restart =` of its spec.
    pub restart: Restart,
    /// Where it is.
    pub state: State,
    /// The counters.
    pub counters: Counters,
    /// Why it last failed, for `status`.
    pub last_error: Option<String>,
}

impl Policy {
    /// A stopped service with this restart setting.
    pub fn new(restart: Restart) -> Policy {
        Policy { restart, state: State::Stopped, counters: Counters::new(0), last_error: None }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// Asked to run: a new start resets the quick-failure count and the delay; a pending
    /// backoff is cut short.
    pub fn start(&mut self) {
        if matches!(self.state, State::Stopped | State::Failed { .. }) {
            self.counters = Counters::new(self.counters.restarts);
        }
        if matches!(self.state, State::Stopped | State::Failed { .. } | State::Backoff { .. }) {
            self.state = State::Waiting;
        }
    }

    /// Cannot start, and retrying will not help (port taken, a dependency failed).
    pub fn refuse(&mut self, why: String) {
        self.last_error = Some(why.clone());
        self.state = State::Failed { why };
    }

    /// The leader's group is gone after a stop that was to be judged: `exit` is how the leader
    /// ended, `run` the run that ended, `timed_out` why labup stopped it (a start timeout).
    pub fn judge(&mut self, exit: Exit, run: Option<&Run>, timed_out: Option<String>, now: Instant) {
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
    pub fn spawn_failed(&mut self, why: &str, now: Instant) {
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
