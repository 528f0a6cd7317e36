//! The restart policy as a pure state machine: events in, actions out, time passed in.
//!
//! Backoff starts at 1 s and doubles to 30 s; 60 s of healthy running resets it; five quick
//! failures in a row (each before 60 s of health) make the service give up, with the reason kept
//! for `labup status`. The supervisor feeds it events and carries out its actions.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::Restart;

/// First backoff delay.
pub const BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest backoff delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Healthy running time after which failures are forgotten.
pub const HEALTHY_RESET: Duration = Duration::from_secs(60);
/// Quick failures in a row before giving up.
pub const MAX_QUICK_FAILURES: u32 = 5;

/// What a service is doing, as `labup status` shows it.
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

/// Something that happened to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The user asked for it to run.
    StartRequested,
    /// The process was spawned.
    Spawned,
    /// The readiness probe passed.
    Ready,
    /// The readiness probe did not pass in time: why (the probe, the port, the time waited).
    StartTimedOut(String),
    /// The process exited: `Some(0)` success, `Some(n)` failure, `None` killed by a signal or unknown.
    Exited(Option<i32>),
    /// The spawn itself failed.
    SpawnFailed(String),
    /// It cannot start and retrying will not help (port taken, a dependency failed).
    Refused(String),
    /// The user asked for it to stop.
    StopRequested,
    /// Time passed (checks backoff deadlines and health).
    Tick,
}

/// What the supervisor must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Spawn the process now.
    Spawn,
    /// Stop the process (group): SIGTERM, grace, SIGKILL.
    Stop,
}

/// The policy state of one service.
#[derive(Debug, Clone)]
pub struct Policy {
    restart: Restart,
    phase: Phase,
    wanted: bool,
    quick_failures: u32,
    backoff: Duration,
    retry_at: Option<Instant>,
    healthy_since: Option<Instant>,
    /// Restarts so far.
    pub restarts: u32,
    /// Why it last failed, for `status`.
    pub last_error: Option<String>,
    /// Why labup itself is stopping it (a start timeout), to report instead of the signal.
    stop_reason: Option<String>,
}

impl Policy {
    /// A stopped service with this restart setting.
    pub fn new(restart: Restart) -> Policy {
        Policy {
            restart,
            phase: Phase::Stopped,
            wanted: false,
            quick_failures: 0,
            backoff: BACKOFF_START,
            retry_at: None,
            healthy_since: None,
            restarts: 0,
            last_error: None,
            stop_reason: None,
        }
    }

    /// A process a previous supervisor started and that still runs: wanted, in `phase`.
    pub fn adopted(restart: Restart, phase: Phase, restarts: u32, now: Instant) -> Policy {
        let phase = if phase == Phase::Ready { Phase::Ready } else { Phase::Starting };
        Policy { wanted: true, phase, healthy_since: Some(now), restarts, ..Policy::new(restart) }
    }

    /// Whether the user wants it running.
    pub fn wanted(&self) -> bool {
        self.wanted
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When a backoff ends, if waiting.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Feeds one event at time `now`.
    pub fn on_event(&mut self, event: Event, now: Instant) -> Action {
        match event {
            Event::StartRequested => {
                self.wanted = true;
                match self.phase {
                    Phase::Stopped | Phase::Failed => {
                        self.quick_failures = 0;
                        self.backoff = BACKOFF_START;
                        self.retry_at = None;
                        Action::Spawn
                    }
                    Phase::Backoff => {
                        self.retry_at = None;
                        Action::Spawn
                    }
                    Phase::Starting | Phase::Ready => Action::None,
                }
            }
            Event::Spawned => {
                self.phase = Phase::Starting;
                self.healthy_since = Some(now);
                Action::None
            }
            Event::Ready => {
                if self.phase == Phase::Starting {
                    self.phase = Phase::Ready;
                    self.last_error = None;
                }
                Action::None
            }
            Event::StartTimedOut(why) => {
                self.stop_reason = Some(why);
                Action::Stop
            }
            Event::SpawnFailed(why) => self.failed(&why, now, true),
            Event::Refused(why) => {
                self.wanted = false;
                self.phase = Phase::Failed;
                self.retry_at = None;
                self.last_error = Some(why);
                Action::None
            }
            Event::Exited(code) => {
                if !self.wanted {
                    self.phase = Phase::Stopped;
                    self.healthy_since = None;
                    return Action::None;
                }
                let timed_out = self.stop_reason.take();
                let success = code == Some(0) && timed_out.is_none();
                let why = match (timed_out, code) {
                    (Some(reason), _) => reason,
                    (None, Some(0)) => "exited with status 0".to_string(),
                    (None, Some(c)) => format!("exited with status {c}"),
                    (None, None) => "was killed by a signal".to_string(),
                };
                let restart = match self.restart {
                    Restart::Never => false,
                    Restart::OnFailure => !success,
                    Restart::Always => true,
                };
                if !restart {
                    self.wanted = false;
                    self.phase = if success { Phase::Stopped } else { Phase::Failed };
                    self.healthy_since = None;
                    if !success {
                        self.last_error = Some(why);
                    }
                    return Action::None;
                }
                self.failed(&why, now, !success)
            }
            Event::StopRequested => {
                self.wanted = false;
                self.stop_reason = None;
                self.retry_at = None;
                match self.phase {
                    Phase::Starting | Phase::Ready => Action::Stop,
                    Phase::Backoff => {
                        self.phase = Phase::Stopped;
                        Action::None
                    }
                    Phase::Stopped | Phase::Failed => Action::None,
                }
            }
            Event::Tick => {
                if let Some(since) = self.healthy_since {
                    if self.phase == Phase::Ready && now.duration_since(since) >= HEALTHY_RESET {
                        self.quick_failures = 0;
                        self.backoff = BACKOFF_START;
                    }
                }
                match self.retry_at {
                    Some(at) if self.phase == Phase::Backoff && now >= at => {
                        self.retry_at = None;
                        self.restarts += 1;
                        Action::Spawn
                    }
                    _ => Action::None,
                }
            }
        }
    }

    /// An exit (or failed spawn) that should be retried unless it keeps happening quickly.
    fn failed(&mut self, why: &str, now: Instant, is_failure: bool) -> Action {
        let quick = self.healthy_since.is_none_or(|since| now.duration_since(since) < HEALTHY_RESET);
        self.healthy_since = None;
        if is_failure {
            self.last_error = Some(why.to_string());
        }
        if quick {
            self.quick_failures += 1;
        } else {
            self.quick_failures = 1;
            self.backoff = BACKOFF_START;
        }
        if self.quick_failures >= MAX_QUICK_FAILURES {
            self.wanted = false;
            self.phase = Phase::Failed;
            self.last_error = Some(format!("gave up after {} quick failures; last: {why}", self.quick_failures));
            return Action::None;
        }
        self.phase = Phase::Backoff;
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(restart: Restart, now: Instant) -> Policy {
        let mut p = Policy::new(restart);
        assert_eq!(p.on_event(Event::StartRequested, now), Action::Spawn);
        p.on_event(Event::Spawned, now);
        p
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn starts_then_becomes_ready() {
        let t = Instant::now();
        let mut p = started(Restart::OnFailure, t);
        assert_eq!(p.phase(), Phase::Starting);
        p.on_event(Event::Ready, t + secs(1));
        assert_eq!(p.phase(), Phase::Ready);
    }

    #[test]
    fn start_while_running_does_nothing() {
        let t = Instant::now();
        let mut p = started(Restart::OnFailure, t);
        assert_eq!(p.on_event(Event::StartRequested, t), Action::None);
    }

    #[test]
    fn never_does_not_restart() {
        let t = Instant::now();
        let mut p = started(Restart::Never, t);
        assert_eq!(p.on_event(Event::Exited(Some(3)), t + secs(1)), Action::None);
        assert_eq!(p.phase(), Phase::Failed);
        assert_eq!(p.last_error.as_deref(), Some("exited with status 3"));
        assert_eq!(p.on_event(Event::Tick, t + secs(100)), Action::None);
        let mut ok = started(Restart::Never, t);
        ok.on_event(Event::Exited(Some(0)), t);
        assert_eq!(ok.phase(), Phase::Stopped);
        assert_eq!(ok.last_error, None);
    }

    #[test]
    fn on_failure_restarts_failures_only() {
        let t = Instant::now();
        let mut p = started(Restart::OnFailure, t);
        p.on_event(Event::Exited(Some(0)), t + secs(1));
        assert_eq!(p.phase(), Phase::Stopped);
        let mut p = started(Restart::OnFailure, t);
        p.on_event(Event::Exited(None), t + secs(1));
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.last_error.as_deref(), Some("was killed by a signal"));
    }

    #[test]
    fn always_restarts_after_success_too() {
        let t = Instant::now();
        let mut p = started(Restart::Always, t);
        p.on_event(Event::Exited(Some(0)), t + secs(1));
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.last_error, None, "a clean exit is not an error");
    }

    #[test]
    fn backoff_doubles_to_thirty_seconds() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::Always);
        p.on_event(Event::StartRequested, t);
        let mut now = t;
        let mut delays = Vec::new();
        for _ in 0..8 {
            p.on_event(Event::Spawned, now);
            p.on_event(Event::Ready, now);
            // Healthy long enough that the failure is not quick: backoff resets each time.
            now += secs(61);
            p.on_event(Event::Exited(Some(1)), now);
            delays.push(p.retry_at().unwrap() - now);
            now = p.retry_at().unwrap();
            assert_eq!(p.on_event(Event::Tick, now), Action::Spawn);
        }
        assert!(delays.iter().all(|d| *d == secs(1)), "{delays:?}");

        let mut p = Policy::new(Restart::Always);
        p.on_event(Event::StartRequested, t);
        let mut now = t;
        let mut delays = Vec::new();
        // Quick failures, but no more than 4 in a row before health resets: see the pattern.
        for _ in 0..4 {
            p.on_event(Event::Spawned, now);
            now += Duration::from_millis(100);
            p.on_event(Event::Exited(Some(1)), now);
            delays.push(p.retry_at().unwrap() - now);
            now = p.retry_at().unwrap();
            p.on_event(Event::Tick, now);
        }
        assert_eq!(delays, [secs(1), secs(2), secs(4), secs(8)]);
    }

    #[test]
    fn backoff_is_capped() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::Always);
        p.on_event(Event::StartRequested, t);
        let mut now = t;
        let mut last = Duration::ZERO;
        for i in 0..12 {
            p.on_event(Event::Spawned, now);
            // Alternate: four quick failures, then a long healthy run that forgets them but
            // not the backoff within the run of quick ones.
            now += if i % 4 == 3 { secs(30) } else { Duration::from_millis(10) };
            p.on_event(Event::Exited(Some(1)), now);
            if let Some(at) = p.retry_at() {
                last = at - now;
                assert!(last <= BACKOFF_MAX);
                now = at;
                p.on_event(Event::Tick, now);
            }
        }
        assert!(last <= BACKOFF_MAX);
    }

    #[test]
    fn gives_up_after_five_quick_failures() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::OnFailure);
        p.on_event(Event::StartRequested, t);
        let mut now = t;
        for attempt in 1..=5 {
            p.on_event(Event::Spawned, now);
            now += Duration::from_millis(200);
            p.on_event(Event::Exited(Some(2)), now);
            if attempt < 5 {
                assert_eq!(p.phase(), Phase::Backoff, "attempt {attempt}");
                now = p.retry_at().unwrap();
                assert_eq!(p.on_event(Event::Tick, now), Action::Spawn);
            }
        }
        assert_eq!(p.phase(), Phase::Failed);
        assert_eq!(p.restarts, 4);
        let why = p.last_error.clone().unwrap();
        assert!(why.contains("gave up after 5 quick failures") && why.contains("status 2"), "{why}");
        assert_eq!(p.on_event(Event::Tick, now + secs(100)), Action::None);
        // Asking again starts afresh.
        assert_eq!(p.on_event(Event::StartRequested, now), Action::Spawn);
    }

    #[test]
    fn healthy_minute_resets_the_count() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::OnFailure);
        p.on_event(Event::StartRequested, t);
        let mut now = t;
        for _ in 0..4 {
            p.on_event(Event::Spawned, now);
            now += secs(1);
            p.on_event(Event::Exited(Some(1)), now);
            now = p.retry_at().unwrap();
            p.on_event(Event::Tick, now);
        }
        p.on_event(Event::Spawned, now);
        p.on_event(Event::Ready, now);
        now += secs(61);
        p.on_event(Event::Tick, now);
        p.on_event(Event::Exited(Some(1)), now);
        assert_eq!(p.phase(), Phase::Backoff, "the count restarted after a healthy minute");
        assert_eq!(p.retry_at().unwrap() - now, secs(1));
    }

    #[test]
    fn stop_cancels_backoff_and_exit_after_stop_is_stopped() {
        let t = Instant::now();
        let mut p = started(Restart::Always, t);
        assert_eq!(p.on_event(Event::StopRequested, t), Action::Stop);
        p.on_event(Event::Exited(None), t);
        assert_eq!(p.phase(), Phase::Stopped);
        assert_eq!(p.last_error, None);
        let mut p = started(Restart::Always, t);
        p.on_event(Event::Exited(Some(1)), t);
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.on_event(Event::StopRequested, t), Action::None);
        assert_eq!(p.phase(), Phase::Stopped);
        assert_eq!(p.on_event(Event::Tick, t + secs(60)), Action::None);
    }

    #[test]
    fn start_timeout_stops_and_counts_as_failure() {
        let t = Instant::now();
        let mut p = started(Restart::OnFailure, t);
        assert_eq!(
            p.on_event(Event::StartTimedOut("no answer on port 1 within 60 s".into()), t + secs(60)),
            Action::Stop
        );
        p.on_event(Event::Exited(None), t + secs(61));
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.last_error.as_deref(), Some("no answer on port 1 within 60 s"));
    }

    #[test]
    fn refusal_fails_without_retry() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::Always);
        p.on_event(Event::StartRequested, t);
        p.on_event(Event::Refused("port 5001 is in use".into()), t);
        assert_eq!(p.phase(), Phase::Failed);
        assert!(!p.wanted());
        assert_eq!(p.on_event(Event::Tick, t + secs(60)), Action::None);
    }

    #[test]
    fn adopted_process_keeps_running_and_restarts_on_exit() {
        let t = Instant::now();
        let mut p = Policy::adopted(Restart::OnFailure, Phase::Ready, 2, t);
        assert_eq!(p.phase(), Phase::Ready);
        assert_eq!(p.on_event(Event::StartRequested, t), Action::None);
        p.on_event(Event::Exited(None), t + secs(1));
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.restarts, 2);
    }

    #[test]
    fn spawn_failure_backs_off() {
        let t = Instant::now();
        let mut p = Policy::new(Restart::OnFailure);
        p.on_event(Event::StartRequested, t);
        p.on_event(Event::SpawnFailed("no such file".into()), t);
        assert_eq!(p.phase(), Phase::Backoff);
        assert_eq!(p.last_error.as_deref(), Some("no such file"));
    }
}
