//! Readiness probes: an HTTP answer, a TCP accept, or a log line, each reaching our process.
//!
//! The supervisor never probes on its loop: [`spawn`] runs a [`ProbeJob`] on a worker thread
//! and posts the [`Probed`] result back, so a slow HTTP server cannot hold up the loop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use super::proc::{self, Identity};
use super::{logs, ports};

/// Connect limit of one network probe (a refused or silent port is answered fast).
pub(crate) const TIMEOUT: Duration = Duration::from_millis(500);
/// How long a probe waits for an HTTP answer once connected: it runs off the loop, so a server
/// that is slow to answer (a busy machine, a first request that imports) is given time.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// One readiness check of a starting service.
#[derive(Debug, Clone)]
pub(crate) struct ProbeJob {
    /// The service.
    pub(crate) name: String,
    /// Its group leader.
    pub(crate) leader: Identity,
    /// What to check.
    pub(crate) check: Check,
}

impl PartialEq for ProbeJob {
    fn eq(&self, other: &ProbeJob) -> bool {
        self.name == other.name && self.leader == other.leader && self.check.kind() == other.check.kind()
    }
}

impl Eq for ProbeJob {}

/// What makes a service ready.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    /// A 2xx/3xx from `http://127.0.0.1:port/path`, answered by our group (and for Jupyter a
    /// runtime file in `runtime_dir` naming the port).
    Http { port: u16, path: String, runtime_dir: Option<PathBuf> },
    /// The port accepts, and the listener is ours.
    Tcp { port: u16 },
    /// A line of the log from `offset` on matches `re` (`None`: `source` does not compile).
    Log { log: PathBuf, offset: u64, re: Option<Arc<regex::Regex>>, source: String },
    /// Nothing to check: ready once started.
    Started,
}

impl Check {
    /// `http`, `tcp`, `log`, `started`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Check::Http { .. } => "http",
            Check::Tcp { .. } => "tcp",
            Check::Log { .. } => "log",
            Check::Started => "started",
        }
    }
}

/// A probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probed {
    /// The service.
    pub(crate) name: String,
    /// The leader it probed (a result for an earlier run is ignored).
    pub(crate) pid: i32,
    /// Ready.
    pub(crate) ready: bool,
    /// Why not, for the error when the start times out.
    pub(crate) why_not: String,
    /// Where the log probe read up to.
    pub(crate) offset: Option<u64>,
}

/// Runs `job` on a worker thread; the result goes to `results`.
pub(crate) fn spawn(job: ProbeJob, results: Sender<Probed>) {
    let spawned = std::thread::Builder::new().name(format!("probe {}", job.name)).spawn(move || {
        let _ = results.send(run(&job));
    });
    if let Err(e) = spawned {
        eprintln!("[{}] cannot start a probe thread: {e}", proc::unix_now());
    }
}

/// Runs one check now (blocking, bounded by [`TIMEOUT`] per network step).
pub(crate) fn run(job: &ProbeJob) -> Probed {
    let leader = job.leader.pid;
    let mut offset = None;
    let outcome: Result<(), String> = match &job.check {
        Check::Http { port, path, runtime_dir } => http_ready(*port, path, leader, &job.leader, runtime_dir.as_ref()),
        Check::Tcp { port } if tcp(*port, TIMEOUT) && ports::is_ours(*port, leader) => Ok(()),
        Check::Tcp { port } => Err(format!("nothing accepted connections on port {port} (127.0.0.1; the TCP probe)")),
        Check::Log { log, offset: from, re, source } => {
            let mut at = *from;
            let text = logs::read_from(log, &mut at);
            offset = Some(at);
            match re {
                Some(re) if log_matches(&text, re) => Ok(()),
                _ => Err(format!("no line of its log matched the log probe `{source}`")),
            }
        }
        Check::Started => Ok(()),
    };
    Probed {
        name: job.name.clone(),
        pid: leader,
        ready: outcome.is_ok(),
        why_not: outcome.err().unwrap_or_default(),
        offset,
    }
}

fn http_ready(port: u16, path: &str, leader: i32, id: &Identity, runtime_dir: Option<&PathBuf>) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    match http_status_within(port, path, TIMEOUT, ANSWER_WITHIN) {
        None => Err(format!("nothing answered the HTTP probe {url}")),
        Some(code) if !(200..400).contains(&code) => Err(format!("the HTTP probe {url} got status {code}")),
        Some(_) if !ports::is_ours(port, leader) => {
            Err(format!("{url} is answered by another process, not this service"))
        }
        Some(_) => {
            let named = runtime_dir.is_none_or(|dir| {
                let mut pids = vec![leader];
                pids.extend(proc::group_members(id));
                super::jupyter::runtime_file_names_port(dir, &pids, port)
            });
            if named {
                Ok(())
            } else {
                Err(format!("{url} answers, but Jupyter wrote no runtime file naming port {port}"))
            }
        }
    }
}

/// GETs `path` from 127.0.0.1:`port`; any 2xx or 3xx status counts as ready (the probe's rule,
/// which `Check::Http` applies to `http_status_within`).
#[cfg(test)]
pub(crate) fn http(port: u16, path: &str, timeout: Duration) -> bool {
    http_status(port, path, timeout).is_some_and(|s| (200..400).contains(&s))
}

/// The status code of a GET, if the server answered HTTP.
pub(crate) fn http_status(port: u16, path: &str, timeout: Duration) -> Option<u16> {
    http_status_within(port, path, timeout, timeout)
}

/// The status code of a GET: connecting within `connect`, the whole answer within `answer`.
pub(crate) fn http_status_within(port: u16, path: &str, connect: Duration, answer: Duration) -> Option<u16> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, connect).ok()?;
    let deadline = std::time::Instant::now() + answer;
    stream.set_write_timeout(Some(answer)).ok()?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: labup\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    // Read to the end (bounded in size and time): closing with unread data resets the
    // connection, and servers log that as an error in the service's log.
    let mut response = Vec::new();
    let mut chunk = [0u8; 8192];
    while response.len() < 1 << 20 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
    }
    parse_status(&String::from_utf8_lossy(&response[..response.len().min(64)]))
}

/// `HTTP/1.1 200 OK` → 200.
pub(crate) fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// Whether 127.0.0.1:`port` accepts a connection.
pub(crate) fn tcp(port: u16, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).is_ok()
}

/// Whether the text appended to a log since `offset` has a line matching `re`.
pub(crate) fn log_matches(text: &str, re: &regex::Regex) -> bool {
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
    fn a_slow_http_server_never_holds_up_the_caller() {
        // Accepts, never answers: the probe waits out its timeout on its worker thread.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let _held = std::thread::spawn(move || {
            let conns: Vec<_> = listener.incoming().take(2).collect();
            std::thread::sleep(Duration::from_secs(3));
            drop(conns);
        });
        let leader = proc::identify(std::process::id() as i32).unwrap();
        let job =
            ProbeJob { name: "web".into(), leader, check: Check::Http { port, path: "/".into(), runtime_dir: None } };
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::time::Instant::now();
        spawn(job, tx);
        assert!(started.elapsed() < Duration::from_millis(100), "spawn waited {:?}", started.elapsed());
        assert!(rx.try_recv().is_err(), "no answer yet");
        let probed = rx.recv_timeout(Duration::from_secs(3)).unwrap();
        assert!(!probed.ready);
        assert_eq!(probed.why_not, format!("nothing answered the HTTP probe http://127.0.0.1:{port}/"));
    }

    #[test]
    fn checks_answer_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "booting\nUvicorn running on x\n").unwrap();
        let leader = proc::identify(std::process::id() as i32).unwrap();
        let job = |check| ProbeJob { name: "app".into(), leader: leader.clone(), check };
        let re = Some(Arc::new(regex::Regex::new("Uvicorn running").unwrap()));
        let source = "Uvicorn running".to_string();
        let found = run(&job(Check::Log { log: log.clone(), offset: 0, re: re.clone(), source: source.clone() }));
        assert_eq!((found.ready, found.offset), (true, Some(29)));
        let later = run(&job(Check::Log { log, offset: 29, re, source }));
        assert!(!later.ready);
        assert_eq!(later.why_not, "no line of its log matched the log probe `Uvicorn running`");
        assert!(run(&job(Check::Started)).ready);
        let closed = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port();
        let tcp = run(&job(Check::Tcp { port: closed }));
        assert!(!tcp.ready && tcp.why_not.contains(&format!("port {closed}")), "{tcp:?}");
    }

    #[test]
    fn log_probe_matches_lines() {
        let re = regex::Regex::new(r"Uvicorn running on").unwrap();
        assert!(log_matches("INFO: Uvicorn running on http://127.0.0.1:5001\n", &re));
        assert!(!log_matches("starting\n", &re));
    }
}
