//! Readiness probes: an HTTP answer, a TCP accept, or a log line, each reaching our process.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// GETs `path` from 127.0.0.1:`port`; any 2xx or 3xx status counts as ready.
pub fn http(port: u16, path: &str, timeout: Duration) -> bool {
    http_status(port, path, timeout).is_some_and(|s| (200..400).contains(&s))
}

/// The status code of a GET, if the server answered HTTP.
pub fn http_status(port: u16, path: &str, timeout: Duration) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: labup\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    // Read to the end (bounded): closing with unread data resets the connection, and servers
    // log that as an error in the service's log.
    let mut response = Vec::new();
    let _ = (&mut stream).take(1 << 20).read_to_end(&mut response);
    parse_status(&String::from_utf8_lossy(&response[..response.len().min(64)]))
}

/// `HTTP/1.1 200 OK` → 200.
pub fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Whether 127.0.0.1:`port` accepts a connection.
pub fn tcp(port: u16, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).is_ok()
}

/// Whether the text appended to a log since `offset` has a line matching `re`.
pub fn log_matches(text: &str, re: &regex::Regex) -> bool {
    text.lines().any(|l| re.is_match(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(parse_status("HTTP/1.1 302 Found"), Some(302));
        assert_eq!(parse_status("SSH-2.0-OpenSSH"), None);
    }

    #[test]
    fn probes_a_real_server() {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for code in ["204 No Content", "404 Not Found"] {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes());
            }
        });
        assert!(http(port, "/", Duration::from_secs(2)));
        assert!(!http(port, "/missing", Duration::from_secs(2)));
        server.join().unwrap();
        assert!(!tcp(port, Duration::from_millis(200)), "nothing listens any more");
    }

    #[test]
    fn log_probe_matches_lines() {
        let re = regex::Regex::new(r"Uvicorn running on").unwrap();
        assert!(log_matches("INFO: Uvicorn running on http://127.0.0.1:5001\n", &re));
        assert!(!log_matches("starting\n", &re));
    }
}
