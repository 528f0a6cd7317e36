//! Processes labup started: who they are, whether they still run, and signalling their group.
//!
//! A pid alone is not an identity: after a reboot or a long time it names someone else. A
//! process is ours when its pid, its start time and the boot all match what was recorded when
//! labup started it; labup signals nothing else.
//!
//! Linux answers from `/proc` (`stat` field 22 is the start time, `boot_id` the boot). macOS
//! answers from `proc_pidinfo` (libproc: pgid, status, start time) and `kern.boottime`
//! (sysctl), with no process spawned: the same rules, the same speed.

#[cfg(any(test, target_os = "macos"))]
mod darwin;
#[cfg(not(target_os = "macos"))]
pub(crate) mod procfs;

use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process as recorded when it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Identity {
    /// Process id (also its process group id: services lead their own group).
    pub(crate) pid: i32,
    /// Start time: clock ticks since boot (Linux), microseconds since the epoch (macOS).
    pub(crate) start_time: u64,
    /// The boot it was started in.
    pub(crate) boot_id: String,
}

/// Whether a process still runs or has exited and waits to be reaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Life {
    /// Running, sleeping, stopped: anything but dead.
    Live,
    /// Exited; only its table entry is left until its parent reaps it.
    Zombie,
}

/// What the process table says about one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// Live or a zombie.
    pub(crate) life: Life,
    /// Its process group.
    pub(crate) pgrp: i32,
    /// When it started (the unit depends on the platform; only equality matters).
    pub(crate) start_time: u64,
}

/// The host's process table.
#[cfg(not(target_os = "macos"))]
fn table() -> &'static procfs::Procfs {
    static TABLE: std::sync::OnceLock<procfs::Procfs> = std::sync::OnceLock::new();
    TABLE.get_or_init(procfs::Procfs::host)
}

#[cfg(target_os = "macos")]
fn table() -> &'static darwin::Darwin {
    &darwin::Darwin
}

/// The current boot's id (`/proc/sys/kernel/random/boot_id`, `kern.boottime` on macOS; empty
/// where there is none).
pub(crate) fn boot_id() -> String {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| table().boot_id()).clone()
}

/// State, group and start time of a process, zombies included.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    table().stat(pid)
}

/// Live (not zombie) processes in group `pgid`.
fn group_in(pgid: i32) -> Vec<i32> {
    table().group(pgid)
}

/// The identity of a process, now: a zombie too (it has exited but its entry, start time
/// included, stays until it is reaped), so a service whose command daemonises and exits at
/// once is still identified, and the grandchild left in its group is found by its group.
pub(crate) fn identify(pid: i32) -> Option<Identity> {
    let stat = stat(pid)?;
    Some(Identity { pid, start_time: stat.start_time, boot_id: boot_id() })
}

/// Whether the recorded process still runs (same pid, start time and boot, not a zombie).
pub(crate) fn is_alive(id: &Identity) -> bool {
    id.boot_id == boot_id() && stat(id.pid).is_some_and(|now| now.life == Life::Live && now.start_time == id.start_time)
}

/// Live members of the process group that `leader` led.
///
/// Linux never hands out a pid that is still some group's id. So if a process now holds the
/// leader's pid with another start time, our group had emptied before that pid was reused:
/// nothing is ours. If the leader is still there (same start time) or gone altogether, every
/// process in its group descends from it.
pub(crate) fn group_members(leader: &Identity) -> Vec<i32> {
    if leader.boot_id != boot_id() {
        return Vec::new();
    }
    if stat(leader.pid).is_some_and(|s| s.start_time != leader.start_time) {
        return Vec::new();
    }
    group_in(leader.pid)
}

/// Sends `signal` to the group of `leader` if (and only if) that group still has members that
/// are verifiably ours. Returns whether a signal was sent.
pub(crate) fn signal_group(leader: &Identity, signal: Signal) -> bool {
    if group_members(leader).is_empty() {
        return false;
    }
    killpg(Pid::from_raw(leader.pid), signal).is_ok()
}

/// Stops a group: SIGTERM, up to `grace` for it to empty (calling `reap` meanwhile so our own
/// zombie children are collected), then SIGKILL. Returns true when the group is gone.
pub(crate) fn stop_group(leader: &Identity, grace: Duration, mut reap: impl FnMut()) -> bool {
    signal_group(leader, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        reap();
        if group_members(leader).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    signal_group(leader, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        reap();
        if group_members(leader).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The command line of a process, for messages.
pub(crate) fn command_line(pid: i32) -> Option<String> {
    table().command_line(pid)
}

/// The process group of a pid.
#[cfg(test)]
pub(crate) fn pgrp(pid: i32) -> Option<i32> {
    stat(pid).map(|s| s.pgrp)
}

/// The socket inodes that live members of group `pgid` hold open: only the group's own fds
/// are read (empty where the platform has no such table).
pub(crate) fn group_sockets(pgid: i32) -> Vec<u64> {
    group_in(pgid).into_iter().flat_map(|pid| table().socket_inodes(pid)).collect()
}

/// Every pid on the host holding a socket with one of these inodes: reads every process's fds,
/// so only for messages and for a port whose holder is not in the group asked about.
pub(crate) fn socket_holders(inodes: &[u64]) -> Vec<i32> {
    table().holders(inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = identify(std::process::id() as i32).expect("our own /proc entry");
        assert!(is_alive(&me));
        assert!(!is_alive(&Identity { start_time: me.start_time + 1, ..me.clone() }));
        assert!(!is_alive(&Identity { boot_id: "another-boot".into(), ..me }));
    }

    #[test]
    fn a_foreign_group_is_never_signalled() {
        // A record naming pid 1 with another start time: a reused pid, whether the recorded
        // start is earlier or later than the real one.
        let real = identify(1).map_or(0, |i| i.start_time);
        for start_time in [real.wrapping_add(1), real.saturating_sub(1).max(1), u64::MAX] {
            let fake = Identity { pid: 1, start_time, boot_id: boot_id() };
            if start_time == real {
                continue;
            }
            assert!(group_members(&fake).is_empty(), "start {start_time}");
            assert!(!signal_group(&fake, Signal::SIGTERM));
        }
        let other_boot = Identity { pid: 1, start_time: 0, boot_id: "not-this-boot".into() };
        assert!(!signal_group(&other_boot, Signal::SIGTERM));
    }

    #[test]
    fn stops_a_real_group_with_a_child_that_ignores_sigterm() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let id = identify(child.id() as i32).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(group_members(&id).len() >= 2, "shell and sleep");
        let gone = stop_group(&id, Duration::from_millis(300), || {
            let _ = child.try_wait();
        });
        assert!(gone);
        assert!(group_members(&id).is_empty());
    }

    /// A command that daemonises: it starts a grandchild and exits at once. Its zombie is
    /// still identified, so the grandchild it leaves in the group is found and stopped.
    #[test]
    fn a_zombie_leader_is_identified_and_its_grandchild_kept() {
        use std::os::unix::process::CommandExt;
        let mut child =
            std::process::Command::new("sh").args(["-c", "sleep 30 & exit 0"]).process_group(0).spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while stat(pid).is_some_and(|s| s.life == Life::Live) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(stat(pid).map(|s| s.life), Some(Life::Zombie), "the leader exited and is not reaped yet");
        let id = identify(pid).expect("a zombie is identified");
        assert!(!is_alive(&id), "a zombie does not run");
        let members = group_members(&id);
        assert_eq!(members.len(), 1, "the sleep, not the zombie: {members:?}");
        let _ = child.wait();
        assert_eq!(group_members(&id), members, "reaping the leader loses nothing");
        assert!(stop_group(&id, Duration::from_secs(2), || {}));
    }
}
