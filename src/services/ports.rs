//! Ports: is one free, pick a free one, and who holds one (from `/proc/net/tcp*`).

use std::fs;
use std::net::{Ipv4Addr, TcpListener};

/// Whether nothing listens on `port` on the loopback or all interfaces.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() && listeners(port).is_empty()
}

/// A free port chosen by the kernel.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A listening socket on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Local address as text: `127.0.0.1`, `0.0.0.0`, `::`, `::1`.
    pub address: String,
    /// Socket inode, to find the owning process.
    pub inode: u64,
}

/// Listening TCP sockets on `port` (Linux; empty elsewhere).
pub fn listeners(port: u16) -> Vec<Listener> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        if let Ok(text) = fs::read_to_string(file) {
            out.extend(parse_listeners(&text, v6, port));
        }
    }
    out
}

/// Parses `/proc/net/tcp`-format text for LISTEN (state 0A) sockets on `port`.
pub fn parse_listeners(text: &str, v6: bool, port: u16) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, hex_port) = f.get(1)?.split_once(':')?;
            if f.get(3)? != &"0A" || u16::from_str_radix(hex_port, 16).ok()? != port {
                return None;
            }
            Some(Listener { address: decode_address(addr, v6)?, inode: f.get(9)?.parse().ok()? })
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

/// Pids that have a socket with this inode open (needs permission to read their fds).
pub fn pids_with_inode(inode: u64) -> Vec<i32> {
    let target = format!("socket:[{inode}]");
    let Ok(procs) = fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
        })
        .collect()
}

/// Pids listening on `port`.
pub fn listening_pids(port: u16) -> Vec<i32> {
    let mut pids: Vec<i32> = listeners(port).iter().flat_map(|l| pids_with_inode(l.inode)).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// "pid 123 (python -m http.server 8000)" or "another process" when it cannot be seen.
pub fn describe_holder(port: u16) -> String {
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
}
