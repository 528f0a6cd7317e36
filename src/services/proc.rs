//! Processes labup started: who they are, whether they still run, and signalling their group.
//!
//! A pid alone is not an identity: after a reboot or a long time it names someone else. A
//! process is ours when its pid, its start time (`/proc/<pid>/stat` field 22) and the boot id
//! all match what was recorded when labup started it; labup signals nothing else.
//!
//! Linux answers from `/proc`. Where there is no `/proc` (macOS) the same facts come from `ps`
//! (`pid`, `pgid`, `stat`, `lstart`) and `sysctl kern.boottime`: slower, but the same rules.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// A process as recorded when it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Process id (also its process group id: services lead their own group).
    pub pid: i32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
    /// The boot it was started in.
    pub boot_id: String,
}

/// Where process facts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// `/proc` (Linux).
    Procfs,
    /// `ps` and `sysctl` (macOS, BSDs).
    Ps,
}

fn table() -> Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    *TABLE.get_or_init(|| if fs::metadata("/proc/self/stat").is_ok() { Table::Procfs } else { Table::Ps })
}

/// The current boot's id (`/proc/sys/kernel/random/boot_id`, else `sysctl kern.boottime`; empty
/// where there is none).
pub fn boot_id() -> String {
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| boot_id_in(table())).clone()
}

fn boot_id_in(table: Table) -> String {
    match table {
        Table::Procfs => {
            fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
        }
        Table::Ps => output("sysctl", &["-n", "kern.boottime"]).map(|s| s.trim().to_string()).unwrap_or_default(),
    }
}

/// A command's stdout, in the C locale (`lstart` is then the same text every time).
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program).args(args).env("LC_ALL", "C").output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// (state, pgrp, start time) of a process.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    stat_in(table(), pid)
}

fn stat_in(table: Table, pid: i32) -> Option<(char, i32, u64)> {
    match table {
        Table::Procfs => parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?),
        Table::Ps => parse_ps_line(&output("ps", &["-p", &pid.to_string(), "-o", "stat=,pgid=,lstart="])?),
    }
}

/// `Ss 26293 Sat Nov 21 11:45:27 2026` → (state, pgid, a number standing for the start time).
pub fn parse_ps_line(line: &str) -> Option<(char, i32, u64)> {
    let mut fields = line.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let pgid = fields.next()?.parse().ok()?;
    let start: Vec<&str> = fields.collect();
    if start.is_empty() {
        return None;
    }
    // Only equality matters: a stable hash of the start text (FNV-1a).
    let hash = start
        .join(" ")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Some((state, pgid, hash))
}

/// Live (not zombie) processes in group `pgid`.
fn group_in(table: Table, pgid: i32) -> Vec<i32> {
    match table {
        Table::Procfs => {
            let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| stat_in(table, *pid).is_some_and(|(state, pgrp, _)| state != 'Z' && pgrp == pgid))
                .collect()
        }
        Table::Ps => output("ps", &["-A", "-o", "pid=,pgid=,stat="])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (pid, group, state) = (f.first()?.parse().ok()?, f.get(1)?.parse::<i32>().ok()?, f.get(2)?);
                (group == pgid && !state.starts_with('Z')).then_some(pid)
            })
            .collect(),
    }
}

/// Parses a stat line; the command name may contain spaces and parentheses, so split at the last `)`.
pub fn parse_stat(text: &str) -> Option<(char, i32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); pgrp is field 5; starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, pgrp, start))
}

/// The identity of a running process, now.
pub fn identify(pid: i32) -> Option<Identity> {
    let (state, _, start_time) = stat(pid)?;
    (state != 'Z').then(|| Identity { pid, start_time, boot_id: boot_id() })
}

/// Whether the recorded process still runs (same pid, start time and boot, not a zombie).
pub fn is_alive(id: &Identity) -> bool {
    identify(id.pid).is_some_and(|now| now.start_time == id.start_time && now.boot_id == id.boot_id)
}

/// Live members of the process group that `leader` led.
///
/// Linux never hands out a pid that is still some group's id. So if a process now holds the
/// leader's pid with another start time, our group had emptied before that pid was reused:
/// nothing is ours. If the leader is still there (same start time) or gone altogether, every
/// process in its group descends from it.
pub fn group_members(leader: &Identity) -> Vec<i32> {
    if leader.boot_id != boot_id() {
        return Vec::new();
    }
    if let Some((_, _, start)) = stat(leader.pid) {
        if start != leader.start_time {
            return Vec::new();
        }
    }
    group_in(table(), leader.pid)
}

/// Sends `signal` to the group of `leader` if (and only if) that group still has members that
/// are verifiably ours. Returns whether a signal was sent.
pub fn signal_group(leader: &Identity, signal: Signal) -> bool {
    if group_members(leader).is_empty() {
        return false;
    }
    killpg(Pid::from_raw(leader.pid), signal).is_ok()
}

/// Stops a group: SIGTERM, up to `grace` for it to empty (calling `reap` meanwhile so our own
/// zombie children are collected), then SIGKILL. Returns true when the group is gone.
pub fn stop_group(leader: &Identity, grace: Duration, mut reap: impl FnMut()) -> bool {
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
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The command line of a process, for messages.
pub fn command_line(pid: i32) -> Option<String> {
    if table() == Table::Ps {
        return output("ps", &["-p", &pid.to_string(), "-o", "command="]).map(|s| s.trim().to_string());
    }
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: Vec<String> =
        raw.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    (!text.is_empty()).then(|| text.join(" "))
}

/// The process group of a pid.
pub fn pgrp(pid: i32) -> Option<i32> {
    stat(pid).map(|(_, g, _)| g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(line), Some(('S', 1234, 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn ps_lines_parse() {
        let a = parse_ps_line("Ss   26293 Sat Nov 21 11:45:27 2026\n").unwrap();
        assert_eq!((a.0, a.1), ('S', 26293));
        assert_eq!(parse_ps_line("Ss 26293 Sat Nov 21 11:45:27 2026"), Some(a), "same text, same start");
        assert_ne!(parse_ps_line("Ss 26293 Sat Nov 21 11:45:28 2026").map(|p| p.2), Some(a.2));
        assert_eq!(parse_ps_line("Ss 26293"), None);
    }

    /// The `ps` path (macOS) run here against procps' `ps`, checked against `/proc`.
    #[test]
    fn the_ps_table_agrees_with_procfs() {
        let me = std::process::id() as i32;
        let (state, pgrp, start) = stat_in(Table::Ps, me).expect("ps -p answers for this process");
        assert_eq!(pgrp, stat_in(Table::Procfs, me).unwrap().1);
        assert_ne!(state, 'Z');
        assert_eq!(stat_in(Table::Ps, me).unwrap().2, start, "a stable start");
        assert!(group_in(Table::Ps, pgrp).contains(&me));
        let procfs = group_in(Table::Procfs, pgrp);
        let ps = group_in(Table::Ps, pgrp);
        assert!(procfs.iter().all(|p| ps.contains(p)), "ps {ps:?} lacks some of {procfs:?}");
        // `ps` lists itself (it runs in this group): the only extra, and gone by now.
        assert!(ps.iter().all(|p| procfs.contains(p) || stat_in(Table::Procfs, *p).is_none()), "{ps:?}");
        assert_eq!(stat_in(Table::Ps, i32::MAX), None, "no such process");
    }

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
}
