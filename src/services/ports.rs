//! Ports: is one free, pick a free one, and who holds one (from `/proc/net/tcp*`).
//!
//! "Is this listener ours" reads the port's socket inodes once and then only the fds of the
//! service's own group; every process's fds are read only when the holder is someone else
//! (to tell a stranger it can see from one it cannot), and for messages.

#[cfg(target_os = "linux")]
mod sock_diag;

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};

/// Whether nothing listens on `port` on the loopback or all interfaces.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() && listeners(port).is_empty()
}

/// A free port chosen by the kernel.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A listening socket on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Local address as text: `127.0.0.1`, `0.0.0.0`, `::`, `::1`.
    pub(crate) address: String,
    /// Socket inode, to find the owning process.
    pub(crate) inode: u64,
}

/// Every listening TCP socket on the host, read once: from the kernel's sock_diag netlink
/// interface (LISTEN sockets only: microseconds), else from `/proc/net/tcp` and `tcp6` (which
/// list every connection: milliseconds on a busy host). Ask once, then look ports up in it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listening {
    sockets: Vec<(u16, Listener)>,
}

impl Listening {
    /// The host's listening sockets now (Linux; none elsewhere).
    pub(crate) fn now() -> Self {
        #[cfg(target_os = "linux")]
        if let Some(sockets) = sock_diag::listening() {
            return Self { sockets };
        }
        Self::from_proc()
    }

    /// From `/proc/net/tcp*`, read with one large buffer (each read of these files walks the
    /// kernel's tables again, so small reads cost).
    fn from_proc() -> Self {
        let mut sockets = Vec::new();
        for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            let mut text = String::with_capacity(1 << 20);
            if std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text)).is_ok() {
                sockets.extend(parse_all_listeners(&text, v6));
            }
        }
        Self { sockets }
    }

    /// The listeners on `port`.
    pub(crate) fn on(&self, port: u16) -> impl Iterator<Item = &Listener> {
        self.sockets.iter().filter(move |(p, _)| *p == port).map(|(_, l)| l)
    }

    /// The all-interfaces address something listens on at `port` (`0.0.0.0`, `::`), if any.
    pub(crate) fn exposed(&self, port: u16) -> Option<String> {
        self.on(port).map(|l| l.address.clone()).find(|a| a == "0.0.0.0" || a == "::")
    }
}

/// Listening TCP sockets on `port` (Linux; empty elsewhere).
pub(crate) fn listeners(port: u16) -> Vec<Listener> {
    Listening::now().on(port).cloned().collect()
}

/// Parses `/proc/net/tcp`-format text for LISTEN (state 0A) sockets on `port` (what the tests
/// compare the kernel's answers with).
#[cfg(test)]
pub(crate) fn parse_listeners(text: &str, v6: bool, port: u16) -> Vec<Listener> {
    parse_all_listeners(text, v6).into_iter().filter(|(p, _)| *p == port).map(|(_, l)| l).collect()
}

/// Parses `/proc/net/tcp`-format text for every LISTEN (state 0A) socket, with its port.
fn parse_all_listeners(text: &str, v6: bool) -> Vec<(u16, Listener)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, hex_port) = f.get(1)?.split_once(':')?;
            if f.get(3)? != &"0A" {
                return None;
            }
            let port = u16::from_str_radix(hex_port, 16).ok()?;
            Some((port, Listener { address: decode_address(addr, v6)?, inode: f.get(9)?.parse().ok()? }))
        })
        .collect()
}

fn decode_address(hex: &str, v6: bool) -> Option<String> {
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect::<Option<_>>()?;
    // The kernel prints each 32-bit word in host (little-endian) order.
    let fixed: Vec<u8> = bytes.chunks(4).flat_map(|w| w.iter().rev().copied()).collect();
    if v6 {
        let arr: [u8; 16] = fixed.try_into().ok()?;
        Some(std::net::Ipv6Addr::from(arr).to_string())
    } else {
        let arr: [u8; 4] = fixed.try_into().ok()?;
        Some(Ipv4Addr::from(arr).to_string())
    }
}

/// Pids listening on `port`.
pub(crate) fn listening_pids(port: u16) -> Vec<i32> {
    let inodes: Vec<u64> = listeners(port).iter().map(|l| l.inode).collect();
    let mut pids = if inodes.is_empty() { Vec::new() } else { super::proc::socket_holders(&inodes) };
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Who holds the listening sockets on a port, asked about one process group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// No listening socket on the port can be seen.
    Nobody,
    /// A member of the group holds one.
    Group,
    /// Others hold them: these pids, none in the group.
    Others(Vec<i32>),
    /// Sockets listen, but no process that labup may read holds them (another user's).
    Unseen,
}

impl Holder {
    /// Whether a probe answered on the port may count as the group's: a stranger that can be
    /// seen is the only "no" (what cannot be seen gets the benefit of the doubt).
    pub(crate) fn is_ours(&self) -> bool {
        !matches!(self, Self::Others(_))
    }
}

/// Who holds `port`'s listeners, for the group `pgid` (a group the caller has identified):
/// reads `/proc/net/tcp*` once and the fds of the group's live members; every process's fds
/// only when none of them holds it.
fn holder(port: u16, pgid: i32) -> Holder {
    let inodes: Vec<u64> = listeners(port).iter().map(|l| l.inode).collect();
    decide(&inodes, || super::proc::group_sockets(pgid), super::proc::socket_holders)
}

/// Whether the listener on `port` belongs to the process group `pgid` (when the listener can
/// be seen at all): a probe must reach the service's process, not a stranger on the port.
pub(crate) fn is_ours(port: u16, pgid: i32) -> bool {
    holder(port, pgid).is_ours()
}

/// The decision, given the port's socket inodes, the group's socket inodes and who on the
/// host holds a socket (each asked only when needed).
fn decide(
    inodes: &[u64],
    group_sockets: impl FnOnce() -> Vec<u64>,
    holders: impl FnOnce(&[u64]) -> Vec<i32>,
) -> Holder {
    if inodes.is_empty() {
        return Holder::Nobody;
    }
    if group_sockets().iter().any(|i| inodes.contains(i)) {
        return Holder::Group;
    }
    match holders(inodes) {
        pids if pids.is_empty() => Holder::Unseen,
        pids => Holder::Others(pids),
    }
}

/// "pid 123 (python -m http.server 8000)" or "another process" when it cannot be seen.
pub(crate) fn describe_holder(port: u16) -> String {
    match listening_pids(port).first() {
        Some(pid) => match super::proc::command_line(*pid) {
            Some(cmd) => format!("pid {pid} (`{cmd}`)"),
            None => format!("pid {pid}"),
        },
        None => "another process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 00000000:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 34567 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn parses_listeners_and_addresses() {
        assert_eq!(parse_listeners(TCP, false, 8080), [Listener { address: "127.0.0.1".into(), inode: 12345 }]);
        assert_eq!(parse_listeners(TCP, false, 5001), [Listener { address: "0.0.0.0".into(), inode: 23456 }]);
        assert!(parse_listeners(TCP, false, 9).is_empty());
        let v6 = "h\n   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 777 1\n";
        assert_eq!(parse_listeners(v6, true, 8080), [Listener { address: "::1".into(), inode: 777 }]);
    }

    #[test]
    fn finds_our_own_listener() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free(port));
        assert_eq!(listening_pids(port), [std::process::id() as i32]);
        assert!(describe_holder(port).starts_with(&format!("pid {}", std::process::id())));
        drop(l);
        assert!(is_free(port));
    }

    /// The netlink answer and `/proc` agree (the kernel's own two views of the same table).
    #[test]
    fn both_sources_list_a_real_listener() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let (now, proc) = (Listening::now(), Listening::from_proc());
        assert_eq!(now.on(port).collect::<Vec<_>>(), proc.on(port).collect::<Vec<_>>());
        assert_eq!(proc.on(port).count(), 1);
    }

    #[test]
    fn one_read_lists_every_port() {
        let text = format!("{TCP}   3: 00000000:1F90 00000000:0000 0A 0:0 0:0 0 0 0 45678 1\n");
        let all = Listening { sockets: parse_all_listeners(&text, false) };
        assert_eq!(all.on(8080).map(|l| l.inode).collect::<Vec<_>>(), [12345, 45678]);
        assert_eq!(all.exposed(8080).as_deref(), Some("0.0.0.0"));
        assert_eq!(all.exposed(5001).as_deref(), Some("0.0.0.0"));
        let local = Listening { sockets: parse_all_listeners(TCP, false) };
        assert_eq!(local.exposed(8080), None, "loopback only");
        assert_eq!(local.on(9).count(), 0);
    }

    #[test]
    fn the_group_is_read_first_and_the_host_only_when_the_group_lacks_the_socket() {
        let no_host = |_: &[u64]| -> Vec<i32> { panic!("the host's fds are not read when the group holds the socket") };
        assert_eq!(decide(&[7, 8], || vec![1, 8], no_host), Holder::Group);
        assert_eq!(decide(&[], || panic!("no listener, nothing to read"), no_host), Holder::Nobody);
        assert_eq!(decide(&[7], || vec![1, 2], |_| vec![42]), Holder::Others(vec![42]));
        assert_eq!(decide(&[7], Vec::new, |_| Vec::new()), Holder::Unseen);
        assert!(Holder::Unseen.is_ours() && Holder::Group.is_ours() && Holder::Nobody.is_ours());
        assert!(!Holder::Others(vec![42]).is_ours());
    }

    /// A real listener in this test's process group, asked about this group and another.
    #[test]
    fn a_real_listener_is_ours_only_for_its_own_group() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        let group = super::super::proc::pgrp(me).unwrap();
        assert_eq!(holder(port, group), Holder::Group);
        let stranger = OwnGroup::spawn("sleep", &["30"]);
        let other = stranger.0.id() as i32;
        assert_eq!(holder(port, other), Holder::Others(vec![me]));
        assert!(!is_ours(port, other));
        drop(l);
        assert_eq!(holder(port, other), Holder::Nobody);
        drop(stranger);
    }

    /// A child in a group of its own, killed and reaped on drop.
    struct OwnGroup(std::process::Child);

    impl OwnGroup {
        fn spawn(program: &str, args: &[&str]) -> Self {
            use std::os::unix::process::CommandExt;
            Self(std::process::Command::new(program).args(args).process_group(0).spawn().unwrap())
        }
    }

    impl Drop for OwnGroup {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
