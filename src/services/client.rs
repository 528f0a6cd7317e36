//! The supervisor's client: start it when none runs, send it requests (and show its refusals),
//! wait until services are ready, stop them. `commands/` calls these.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::control::{self, Reply, ReplyError, Request};
use super::logs;
use super::policy::Phase;
use super::proc;
use super::spec::Spec;
use super::state::{RunDir, RunState};
use crate::error::Fail;
use crate::fsutil::LockFile;

/// How long a new supervisor may take to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How long to wait for a supervisor that is shutting down (then a new one takes over).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(75);

/// Whether `spec` runs, ready, with exactly this spec.
pub(crate) fn is_up(state: &RunState, spec: &Spec) -> bool {
    state.services.get(&spec.name).is_some_and(|r| r.state == Phase::Ready && r.spec.same_service(spec) && r.running())
}

/// Sends `request`; a refusal (busy, bad request, unknown service) is an error that says why.
pub(crate) fn send(run: &RunDir, request: &Request) -> Result<()> {
    refusal(control::send(&run.socket(), request)?).map_err(Into::into)
}

/// `Ok` for an accepted reply, else the error to show.
pub(crate) fn refusal(reply: Reply) -> Result<(), Fail> {
    if reply.ok {
        return Ok(());
    }
    let message = reply.message.unwrap_or_else(|| "no reason given".into());
    let fail = Fail::new(format!("the supervisor refused the request: {message}"));
    Err(match reply.error {
        Some(ReplyError::Busy) => fail.hint("wait until it is done, then run the command again"),
        Some(ReplyError::UnknownService) => fail.hint("`labup status` lists the services it runs"),
        Some(ReplyError::BadRequest) | None => {
            fail.hint("this labup and the running supervisor may differ: `labup stop`, then try again")
        }
    })
}

/// Starts the detached supervisor unless one runs and answers, and waits until one answers. A
/// supervisor that is shutting down is waited for: the new one takes over once it has exited.
pub(crate) fn ensure_supervisor(root: &Path, run: &RunDir) -> Result<()> {
    let ping = || control::send(&run.socket(), &Request::Ping);
    if run.live_supervisor(&run.read()).is_some() && ping().is_ok_and(|r| r.ok) {
        return Ok(());
    }
    let exe = std::env::current_exe().context("cannot find the labup executable")?;
    let log_path = run.supervisor_log();
    let log = logs::open_append(&log_path)?;
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
    let started = Instant::now();
    let mut deadline = started + ANSWER_WITHIN;
    let mut busy = None;
    loop {
        match ping() {
            Ok(r) if r.ok => return Ok(()),
            Ok(r) => {
                // Shutting down: the new supervisor waits for the lock; so do we.
                deadline = (Instant::now() + ANSWER_WITHIN).min(started + SHUTDOWN_WAIT);
                busy = r.message;
            }
            Err(_) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            // It may have lost the race to a supervisor another `labup up` started.
            if run.live_supervisor(&run.read()).is_none() && !status.success() {
                let tail = logs::tail(&log_path, 10).join("\n");
                return Err(Fail::new(format!("the supervisor exited at once ({status}):\n{tail}")).into());
            }
        }
        if Instant::now() > deadline {
            let what = match &busy {
                Some(why) => format!("the running supervisor is still shutting down ({why})"),
                None => format!("the supervisor did not answer within {} s", ANSWER_WITHIN.as_secs()),
            };
            return Err(Fail::new(what).hint(format!("look at {}", log_path.display())).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `state.json` until every spec is settled (ready, stopped or failed, or its first start
/// failed) or the time is up (the longest start timeout plus a minute).
/// `observe` sees each state read (a spinner, an interrupt).
pub(crate) fn wait_ready(run: &RunDir, specs: &[Spec], mut observe: impl FnMut(&RunState)) -> Result<RunState> {
    let limit = specs.iter().map(|s| s.start_timeout_ms).max().unwrap_or(60_000) + 60_000;
    let deadline = Instant::now() + Duration::from_millis(limit);
    loop {
        let state = run.read();
        observe(&state);
        if specs.iter().all(|s| settled(&state, s)) {
            return Ok(state);
        }
        if run.live_supervisor(&state).is_none() && state.supervisor.is_some() {
            return Err(Fail::new("the supervisor stopped while services were starting")
                .hint(format!("look at {}", run.supervisor_log().display()))
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
pub(crate) fn settled(state: &RunState, spec: &Spec) -> bool {
    let phase = |name: &str| state.services.get(name).map_or(Phase::Starting, |r| r.state);
    match phase(&spec.name) {
        Phase::Ready | Phase::Failed | Phase::Stopped | Phase::Backoff => true,
        Phase::Starting => {
            state.services.get(&spec.name).is_some_and(|r| r.process.is_none())
                && spec.after.iter().any(|d| matches!(phase(d), Phase::Failed | Phase::Backoff))
        }
    }
}

/// The error for the specs that are not up: why each is not, and the end of its log.
pub(crate) fn fail_if_not_ready(run: &RunDir, state: &RunState, specs: &[Spec]) -> Result<()> {
    let failed: Vec<&Spec> = specs.iter().filter(|s| !is_up(state, s)).collect();
    let Some(first) = failed.first() else { return Ok(()) };
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

/// Stops `names` (everything, and the supervisor, when empty) and waits until their groups are
/// gone; without a supervisor (it was killed) stops what it left running, identity verified.
pub(crate) fn stop_and_wait(run: &RunDir, state: &RunState, names: &[String]) -> Result<()> {
    let targets: Vec<String> = if names.is_empty() { state.services.keys().cloned().collect() } else { names.to_vec() };
    let reply = match run.live_supervisor(state) {
        Some(_) => control::send(&run.socket(), &Request::Stop { names: names.to_vec() }).ok(),
        None => None,
    };
    let Some(reply) = reply else { return stop_unsupervised(run, &targets) };
    refusal(reply)?;
    let grace = targets.iter().filter_map(|n| state.services.get(n)).map(|r| r.spec.stop_timeout_ms).max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(grace + 10_000);
    loop {
        let now = run.read();
        let running = targets.iter().any(|n| now.services.get(n).is_some_and(|r| r.process.is_some()));
        let sup_alive = names.is_empty() && run.live_supervisor(&now).is_some();
        if (!running && !sup_alive) || Instant::now() > deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No supervisor: stop the groups it left running ourselves, identity verified.
fn stop_unsupervised(run: &RunDir, targets: &[String]) -> Result<()> {
    let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
    let mut state = run.read();
    for name in targets {
        if let Some(rec) = state.services.get_mut(name) {
            if let Some(id) = rec.process.take() {
                proc::stop_group(&id, Duration::from_millis(rec.spec.stop_timeout_ms), || {});
            }
            rec.state = Phase::Stopped;
        }
    }
    state.supervisor = None;
    run.write(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_errors_with_their_reason_and_a_hint() {
        assert!(refusal(Reply::ok()).is_ok());
        let busy = refusal(Reply::busy("the supervisor is stopping every service (SIGTERM)".into())).unwrap_err();
        assert_eq!(
            busy.to_string(),
            "the supervisor refused the request: the supervisor is stopping every service (SIGTERM)"
        );
        assert_eq!(busy.hint.as_deref(), Some("wait until it is done, then run the command again"));
        let unknown = refusal(Reply::unknown_service("no service called `db` is supervised here".into())).unwrap_err();
        assert_eq!(unknown.hint.as_deref(), Some("`labup status` lists the services it runs"));
        let bad = refusal(Reply::bad_request("service `x` has no command")).unwrap_err();
        assert!(bad.to_string().ends_with("bad request: service `x` has no command"), "{bad}");
    }
}
