//! Process facts from a `/proc`-style tree (Linux): one process's stat, a group's members, the
//! sockets a process holds. Rooted at a path so tests can hand it a fake tree.

use std::fs;
use std::path::PathBuf;

use super::{Life, Stat};

/// A `/proc`-style tree.
#[derive(Debug, Clone)]
pub(crate) struct Procfs {
    root: PathBuf,
}

impl Procfs {
    /// The tree at `root` (`/proc` on Linux, a temporary folder in tests).
    pub(crate) fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The host's `/proc`.
    pub(crate) fn host() -> Self {
        Self::at("/proc")
    }

    /// A process's state, group and start time (zombies included: their stat is still there).
    pub(crate) fn stat(&self, pid: i32) -> Option<Stat> {
        parse_stat(&fs::read_to_string(self.root.join(pid.to_string()).join("stat")).ok()?)
    }

    /// Every pid in the tree.
    fn pids(&self) -> impl Iterator<Item = i32> {
        fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    }

    /// Live (not zombie) processes in group `pgid`: one stat read per process on the host,
    /// which is the only way to find a daemonised grandchild that left its parent but kept the
    /// group.
    pub(crate) fn group(&self, pgid: i32) -> Vec<i32> {
        self.pids().filter(|pid| self.stat(*pid).is_some_and(|s| s.life == Life::Live && s.pgrp == pgid)).collect()
    }

    /// The socket inodes among `pid`'s open files (empty when they cannot be read).
    pub(crate) fn socket_inodes(&self, pid: i32) -> Vec<u64> {
        fs::read_dir(self.root.join(pid.to_string()).join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| socket_inode(fs::read_link(fd.path()).ok()?.to_str()?))
            .collect()
    }

    /// Pids on the whole host holding a socket with one of these inodes (reads every process's
    /// fds: for messages and the rare case where a port's holder is outside the group).
    pub(crate) fn holders(&self, inodes: &[u64]) -> Vec<i32> {
        self.pids().filter(|pid| self.socket_inodes(*pid).iter().any(|i| inodes.contains(i))).collect()
    }

    /// The current boot's id (empty where there is none).
    pub(crate) fn boot_id(&self) -> String {
        fs::read_to_string(self.root.join("sys/kernel/random/boot_id"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    /// A process's command line, its arguments joined by spaces.
    pub(crate) fn command_line(&self, pid: i32) -> Option<String> {
        let raw = fs::read(self.root.join(pid.to_string()).join("cmdline")).ok()?;
        let text: Vec<String> =
            raw.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        (!text.is_empty()).then(|| text.join(" "))
    }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Parses a stat line; the command name may contain spaces and parentheses, so split at the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); pgrp is field 5; starttime is field 22.
    let life = match fields.first()?.chars().next()? {
        'Z' | 'X' | 'x' => Life::Zombie,
        _ => Life::Live,
    };
    let pgrp = fields.get(2)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(Stat { life, pgrp, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    fn stat_line(pid: i32, state: char, pgrp: i32, start: u64) -> String {
        format!("{pid} (cmd) {state} 1 {pgrp} {pgrp} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 0 0\n")
    }

    /// A fake tree: each process as (pid, state, pgrp, start, socket inodes).
    fn fake(procs: &[(i32, char, i32, u64, &[u64])]) -> (tempfile::TempDir, Procfs) {
        let dir = tempfile::tempdir().unwrap();
        for (pid, state, pgrp, start, sockets) in procs {
            let p = dir.path().join(pid.to_string());
            fs::create_dir_all(p.join("fd")).unwrap();
            fs::write(p.join("stat"), stat_line(*pid, *state, *pgrp, *start)).unwrap();
            symlink("/dev/null", p.join("fd/0")).unwrap();
            for (n, inode) in sockets.iter().enumerate() {
                symlink(format!("socket:[{inode}]"), p.join(format!("fd/{}", n + 3))).unwrap();
            }
        }
        fs::create_dir_all(dir.path().join("sys/kernel/random")).unwrap();
        fs::write(dir.path().join("sys/kernel/random/boot_id"), "b00t\n").unwrap();
        let fs = Procfs::at(dir.path());
        (dir, fs)
    }

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        assert_eq!(parse_stat(line), Some(Stat { life: Life::Live, pgrp: 1234, start_time: 987654 }));
        assert_eq!(parse_stat(&stat_line(5, 'Z', 5, 9)).map(|s| s.life), Some(Life::Zombie));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_group_is_its_live_members_wherever_their_parents_went() {
        let (_d, fs) = fake(&[
            (100, 'Z', 100, 10, &[]), // the leader, exited, not yet reaped
            (101, 'S', 100, 11, &[]), // its daemonised child, reparented but still in the group
            (102, 'Z', 100, 12, &[]), // a dead member
            (200, 'S', 200, 20, &[]), // a stranger
            (201, 'R', 100, 21, &[]), // a running member
        ]);
        let mut group = fs.group(100);
        group.sort_unstable();
        assert_eq!(group, [101, 201]);
        assert_eq!(
            fs.stat(100),
            Some(Stat { life: Life::Zombie, pgrp: 100, start_time: 10 }),
            "a zombie still has a stat"
        );
        assert_eq!(fs.stat(999), None);
        assert_eq!(fs.boot_id(), "b00t");
        assert!(Procfs::at(Path::new("/nonexistent")).group(100).is_empty());
    }

    #[test]
    fn sockets_are_read_from_fd_links() {
        let (_d, fs) = fake(&[(100, 'S', 100, 1, &[777, 888]), (200, 'S', 200, 2, &[999])]);
        assert_eq!(fs.socket_inodes(100), [777, 888]);
        assert!(fs.socket_inodes(300).is_empty());
        assert_eq!(fs.holders(&[999]), [200]);
        assert!(fs.holders(&[1]).is_empty());
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
    }

    #[test]
    fn command_lines_join_arguments() {
        let (d, fs) = fake(&[(100, 'S', 100, 1, &[])]);
        fs::write(d.path().join("100/cmdline"), b"python\0-m\0http.server\0").unwrap();
        assert_eq!(fs.command_line(100).as_deref(), Some("python -m http.server"));
        assert_eq!(fs.command_line(200), None);
    }
}
