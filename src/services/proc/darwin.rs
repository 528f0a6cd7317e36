//! Process facts on macOS from the kernel's own tables, with no process spawned:
//! `proc_pidinfo(PROC_PIDTBSDINFO)` (libproc) for a process's status, group and start time
//! (it answers for zombies too), `proc_listpids(PROC_PGRP_ONLY)` for a group's members, and the
//! `kern.boottime` sysctl for the boot.
//!
//! The decoding is plain functions, compiled and tested on every platform; the calls into the
//! kernel are macOS only.

use super::{Life, Stat};

/// `SZOMB` in `<sys/proc.h>`: exited, waiting to be reaped.
const SZOMB: u32 = 5;

/// A `proc_bsdinfo`'s status, group and start (seconds and microseconds since the epoch).
pub(crate) fn stat_of(status: u32, pgid: u32, start_sec: u64, start_usec: u64) -> Option<Stat> {
    Some(Stat {
        life: if status == SZOMB { Life::Zombie } else { Life::Live },
        pgrp: i32::try_from(pgid).ok()?,
        start_time: start_sec.checked_mul(1_000_000)?.checked_add(start_usec)?,
    })
}

/// `kern.boottime` (a `struct timeval`: 64-bit seconds, 32-bit microseconds, little-endian on
/// every Mac) as the boot's id: `1732180000.123456`.
pub(crate) fn boot_id_of(timeval: &[u8]) -> Option<String> {
    let sec = i64::from_le_bytes(timeval.get(0..8)?.try_into().ok()?);
    let usec = i32::from_le_bytes(timeval.get(8..12)?.try_into().ok()?);
    Some(format!("{sec}.{usec:06}"))
}

/// The macOS process table.
#[cfg(target_os = "macos")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Darwin;

#[cfg(target_os = "macos")]
impl Darwin {
    /// A process's status, group and start time, zombies included.
    pub(crate) fn stat(&self, pid: i32) -> Option<Stat> {
        use libproc::bsd_info::BSDInfo;
        let info = libproc::proc_pid::pidinfo::<BSDInfo>(pid, 0).ok()?;
        stat_of(info.pbi_status, info.pbi_pgid, info.pbi_start_tvsec, info.pbi_start_tvusec)
    }

    /// Live (not zombie) processes in group `pgid`, as the kernel lists them.
    pub(crate) fn group(&self, pgid: i32) -> Vec<i32> {
        use libproc::processes::{pids_by_type, ProcFilter};
        let Ok(pgrpid) = u32::try_from(pgid) else { return Vec::new() };
        pids_by_type(ProcFilter::ByProgramGroup { pgrpid })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| i32::try_from(pid).ok().filter(|p| *p > 0))
            .filter(|pid| self.stat(*pid).is_some_and(|s| s.life == Life::Live && s.pgrp == pgid))
            .collect()
    }

    /// Socket inodes a process holds: macOS has no `/proc/net/tcp` to match them against, so
    /// labup does not look (a listener is then never known to be a stranger's).
    pub(crate) fn socket_inodes(&self, _pid: i32) -> Vec<u64> {
        Vec::new()
    }

    /// Who holds these sockets: unknown on macOS (see `socket_inodes`).
    pub(crate) fn holders(&self, _inodes: &[u64]) -> Vec<i32> {
        Vec::new()
    }

    /// The boot's id from `kern.boottime` (empty when it cannot be read).
    pub(crate) fn boot_id(&self) -> String {
        use sysctl::{Ctl, CtlValue, Sysctl};
        match Ctl::new("kern.boottime").and_then(|c| c.value()) {
            Ok(CtlValue::Struct(bytes) | CtlValue::Node(bytes)) => boot_id_of(&bytes).unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// A process's command line, for messages only: `ps -o command=` (the kernel's argument
    /// block needs a parser of its own; one spawn when a message names a port's holder).
    pub(crate) fn command_line(&self, pid: i32) -> Option<String> {
        let out = std::process::Command::new("ps")
            .args(["-p", &pid.to_string(), "-o", "command="])
            .env("LC_ALL", "C")
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsd_info_decodes_to_a_stat() {
        assert_eq!(
            stat_of(2, 4321, 1_732_180_000, 5),
            Some(Stat { life: Life::Live, pgrp: 4321, start_time: 1_732_180_000_000_005 })
        );
        assert_eq!(stat_of(SZOMB, 4321, 1, 0).map(|s| s.life), Some(Life::Zombie));
        assert_eq!(stat_of(3, u32::MAX, 1, 0), None, "no such group id");
        assert_ne!(stat_of(2, 1, 1, 0), stat_of(2, 1, 0, 1_000_001), "a start is not ambiguous");
    }

    #[test]
    fn boottime_decodes_to_an_id() {
        let mut tv = 1_732_180_000_i64.to_le_bytes().to_vec();
        tv.extend(42_i32.to_le_bytes());
        tv.extend([0; 4]);
        assert_eq!(boot_id_of(&tv).as_deref(), Some("1732180000.000042"));
        assert_eq!(boot_id_of(&tv[..10]), None);
    }
}
