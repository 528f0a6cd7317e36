//! The host's listening TCP sockets from the kernel's socket-diagnostics netlink interface
//! (`sock_diag(7)`): asked for LISTEN sockets only, the kernel walks its listening table and
//! nothing else, where reading `/proc/net/tcp` walks every connection (milliseconds on a big
//! host). One request per address family; the answer is the same facts (port, address, inode).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

use super::Listener;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const TCP_LISTEN: u32 = 10;
/// `struct nlmsghdr`.
const HEADER: usize = 16;
/// `struct inet_diag_msg`.
const DIAG_MSG: usize = 72;

/// Every listening TCP socket, IPv4 and IPv6, with its port; `None` when the kernel does not
/// answer (no netlink, a sandbox), so the caller can read `/proc/net/tcp*` instead.
pub(super) fn listening() -> Option<Vec<(u16, Listener)>> {
    let mut out = Vec::new();
    for family in [AF_INET, AF_INET6] {
        out.extend(dump(family)?);
    }
    Some(out)
}

fn dump(family: u8) -> Option<Vec<(u16, Listener)>> {
    let fd =
        socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkSockDiag).ok()?;
    let req = request(family);
    if sendto(fd.as_raw_fd(), &req, &NetlinkAddr::new(0, 0), MsgFlags::empty()).ok()? != req.len() {
        return None;
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
        match parse(buf.get(..n)?) {
            Reply::More(found) => out.extend(found),
            Reply::Done(found) => {
                out.extend(found);
                return Some(out);
            }
            Reply::Failed => return None,
        }
    }
}

/// A dump request for the LISTEN TCP sockets of one family.
fn request(family: u8) -> Vec<u8> {
    let len = HEADER + 56;
    let mut m = Vec::with_capacity(len);
    m.extend((len as u32).to_ne_bytes());
    m.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend(1u32.to_ne_bytes()); // sequence
    m.extend(0u32.to_ne_bytes()); // port id: the kernel
                                  // struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed socket id.
    m.extend([family, IPPROTO_TCP, 0, 0]);
    m.extend((1u32 << TCP_LISTEN).to_ne_bytes());
    m.resize(len, 0);
    m
}

/// One datagram of the answer.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// Sockets, more to come.
    More(Vec<(u16, Listener)>),
    /// The last sockets.
    Done(Vec<(u16, Listener)>),
    /// An error message, or bytes that are not netlink.
    Failed,
}

fn parse(mut buf: &[u8]) -> Reply {
    let mut found = Vec::new();
    while buf.len() >= HEADER {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < HEADER || len > buf.len() {
            return Reply::Failed;
        }
        match kind {
            NLMSG_DONE => return Reply::Done(found),
            NLMSG_ERROR => return Reply::Failed,
            SOCK_DIAG_BY_FAMILY => found.extend(socket_of(&buf[HEADER..len])),
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    Reply::More(found)
}

/// A `struct inet_diag_msg`: family, state, ..., id { sport (big-endian), dport, src[16], ... },
/// ..., inode at offset 68.
fn socket_of(m: &[u8]) -> Option<(u16, Listener)> {
    if m.len() < DIAG_MSG || u32::from(m[1]) != TCP_LISTEN {
        return None;
    }
    let port = u16::from_be_bytes([m[4], m[5]]);
    let src: [u8; 16] = m[8..24].try_into().ok()?;
    let address = match m[0] {
        AF_INET => Ipv4Addr::new(src[0], src[1], src[2], src[3]).to_string(),
        AF_INET6 => Ipv6Addr::from(src).to_string(),
        _ => return None,
    };
    let inode = u64::from(u32::from_ne_bytes(m[68..72].try_into().ok()?));
    Some((port, Listener { address, inode }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let len = HEADER + body.len();
        let mut m = (len as u32).to_ne_bytes().to_vec();
        m.extend(kind.to_ne_bytes());
        m.extend([0; 10]);
        m.extend(body);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    fn diag(family: u8, state: u8, port: u16, src: &[u8], inode: u32) -> Vec<u8> {
        let mut m = vec![family, state, 0, 0];
        m.extend(port.to_be_bytes());
        m.extend([0, 0]);
        let mut addr = src.to_vec();
        addr.resize(16, 0);
        m.extend(addr);
        m.resize(68, 0);
        m.extend(inode.to_ne_bytes());
        m
    }

    #[test]
    fn answers_parse_into_listeners() {
        let mut buf = message(SOCK_DIAG_BY_FAMILY, &diag(AF_INET, 10, 8080, &[127, 0, 0, 1], 12345));
        buf.extend(message(SOCK_DIAG_BY_FAMILY, &diag(AF_INET, 1, 8081, &[127, 0, 0, 1], 1)));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        buf.extend(message(SOCK_DIAG_BY_FAMILY, &diag(AF_INET6, 10, 5001, &v6, 777)));
        let want = vec![
            (8080, Listener { address: "127.0.0.1".into(), inode: 12345 }),
            (5001, Listener { address: "::1".into(), inode: 777 }),
        ];
        assert_eq!(parse(&buf), Reply::More(want.clone()), "an established socket is left out");
        buf.extend(message(NLMSG_DONE, &[0; 4]));
        assert_eq!(parse(&buf), Reply::Done(want));
        assert_eq!(parse(&message(NLMSG_ERROR, &[0; 20])), Reply::Failed);
        assert_eq!(parse(&[200, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Reply::Failed, "a length past the end");
    }

    #[test]
    fn the_request_asks_for_tcp_listeners_of_one_family() {
        let r = request(AF_INET6);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(&r[16..18], &[AF_INET6, IPPROTO_TCP]);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 1 << 10);
    }

    /// The kernel's answer agrees with `/proc/net/tcp` about a real listener.
    #[test]
    fn the_kernel_lists_a_real_listener_like_proc_does() {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let from_proc = super::super::parse_listeners(&std::fs::read_to_string("/proc/net/tcp").unwrap(), false, port);
        let got: Vec<Listener> =
            listening().expect("sock_diag answers").into_iter().filter(|(p, _)| *p == port).map(|(_, l)| l).collect();
        assert_eq!(got, from_proc);
        assert_eq!(got.len(), 1);
    }
}
