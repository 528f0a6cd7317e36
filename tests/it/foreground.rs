//! `labup up --foreground` as a container entrypoint: the ready table, and PID 1 of its own PID
//! namespace (`unshare --pid --fork --mount-proc`, which needs root: `engine_`) with real
//! processes and signals.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{http_get, wait_until, Project};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running labup whose stdout and stderr are collected line by line as they come.
struct Running {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let collect = |pipe: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Running { child, stdout, stderr }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits up to `secs` for the exit; the exit code (-1 for a signal).
    fn wait(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the readers drain the pipes
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The one child of `pid` (`unshare --fork` runs labup as its child): labup's pid out here.
fn only_child(pid: u32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Children of `pid` that are zombies (exited, not reaped), from `ps`.
fn zombie_children(pid: i32) -> Vec<String> {
    let out = Command::new("ps").args(["-o", "pid=,stat=,comm=", "--ppid", &pid.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1).is_some_and(|s| s.starts_with('Z')))
        .map(String::from)
        .collect()
}

/// A web service (`web.py`) that leaves an orphan behind at its start: a double-forked `sleep 1`
/// in a session of its own (outside the service's group), reparented to labup, that exits a
/// second later and must be reaped. On SIGTERM the service notes it in `term.txt` and exits 0
/// (a graceful stop, not the kernel's SIGKILL at the namespace's end).
fn web_with_orphan(p: &Project, port: u16) {
    p.file(
        "web.py",
        &format!(
            r#"import http.server, signal, subprocess, sys
def term(*_):
    open("term.txt", "w").write("TERM\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
subprocess.run(["sh", "-c", "setsid sleep 1 &"])
http.server.HTTPServer(("127.0.0.1", {port}), http.server.SimpleHTTPRequestHandler).serve_forever()
"#
        ),
    );
    p.file(
        "labup.toml",
        &format!("[services.web]\ncommand = [\"python3\", \"web.py\"]\nport = {port}\nready = {{ http = \"/\" }}\nstop-timeout = 5\n"),
    );
}

#[test]
fn foreground_prints_the_ready_table_with_urls_and_exits_0_on_sigterm() {
    let p = Project::new();
    let port = free_port();
    web_with_orphan(&p, port);
    let mut run = Running::spawn(p.command(&["up", "--foreground"]));
    let url = format!("http://127.0.0.1:{port}/");
    assert!(
        wait_until(30, || run
            .stdout()
            .lines()
            .any(|l| l.starts_with("web ") && l.contains("ready") && l.contains(&url))),
        "no ready table with {url}:\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
    assert!(run.stdout().lines().any(|l| l.starts_with("SERVICE") && l.contains("URL")), "{}", run.stdout());
    assert_eq!(http_get(&url), Some(200));
    // Not PID 1 here: labup made itself the subreaper, so the orphan is its child, and reaped.
    let pid = run.child.id() as i32;
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(zombie_children(pid), Vec::<String>::new(), "an orphan was left a zombie");
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_eq!(run.wait(10), Some(0), "{}", run.stderr());
    assert!(run.stderr().contains("SIGTERM: stopping every service"), "{}", run.stderr());
    assert_eq!(std::fs::read_to_string(p.path("term.txt")).unwrap().trim(), "TERM");
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(), "the port is still held");
}

fn unshare() -> [&'static str; 4] {
    ["unshare", "--pid", "--fork", "--mount-proc"]
}

/// PID 1 of a new PID namespace: serves, reaps the orphan, stops gracefully on SIGTERM (exit 0),
/// and nothing of the namespace is left.
#[test]
fn engine_pid1_reaps_orphans_and_sigterm_stops_every_group_with_exit_0() {
    let p = Project::new();
    let port = free_port();
    web_with_orphan(&p, port);
    let mut run = Running::spawn(p.command_under(&unshare(), &["up", "--foreground"]));
    let url = format!("http://127.0.0.1:{port}/");
    assert!(wait_until(30, || run.stdout().contains(&url)), "not ready:\n{}\n{}", run.stdout(), run.stderr());
    assert_eq!(http_get(&url), Some(200));
    let labup = only_child(run.child.id()).expect("unshare's child");
    let ns = std::fs::read_link(format!("/proc/{labup}/ns/pid")).unwrap();
    assert_ne!(ns, std::fs::read_link("/proc/self/ns/pid").unwrap(), "not in a PID namespace of its own");
    let status = std::fs::read_to_string(format!("/proc/{labup}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap().to_string();
    assert!(nspid.trim_end().ends_with("\t1"), "labup is not PID 1 in its namespace: {nspid}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(zombie_children(labup), Vec::<String>::new(), "PID 1 left an orphan unreaped");
    let members = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
            .count()
    };
    assert!(members() >= 2, "labup and the server");
    let started = Instant::now();
    kill(Pid::from_raw(labup), Signal::SIGTERM).unwrap();
    assert_eq!(run.wait(15), Some(0), "{}\n{}", run.stdout(), run.stderr());
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the stop took {took:?}, beyond the grace period");
    eprintln!("PID 1: SIGTERM to exit in {took:?}");
    assert_eq!(std::fs::read_to_string(p.path("term.txt")).unwrap().trim(), "TERM", "no graceful stop");
    assert_eq!(members(), 0, "processes of the namespace are left");
    assert!(run.stdout().contains("web | --- labup: exited with status 0"), "{}", run.stdout());
}

/// A service that keeps failing gives up: PID 1 exits non-zero (the container's restart policy
/// takes over), with the service's own exit status in the message (the reaper did not take it).
#[test]
fn engine_pid1_exits_non_zero_when_a_service_gives_up() {
    let p = Project::new();
    p.file("labup.toml", "[services.broken]\ncommand = [\"sh\", \"-c\", \"echo failing; exit 3\"]\n");
    let mut run = Running::spawn(p.command_under(&unshare(), &["up", "--foreground"]));
    // Five quick failures with backoff 1 + 2 + 4 + 8 s.
    let code = run.wait(40);
    assert_eq!(code, Some(1), "{}\n{}", run.stdout(), run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains("service `broken` gave up: gave up after 5 quick failures; last: exited with status 3"),
        "{stderr}"
    );
    assert_eq!(run.stdout().matches("broken | failing").count(), 5, "{}", run.stdout());
}

/// A pod's Jupyter: the token from `LABUP_JUPYTER_TOKEN` (a Kubernetes Secret), listening on
/// `LABUP_BIND_ADDRESS`; the foreground's ready table gives the token URL, which opens the lab.
#[test]
fn pypi_foreground_jupyter_uses_the_secrets_token_and_prints_its_url() {
    let mut p = Project::new();
    p.with_jupyter();
    let port = free_port();
    p.file("labup.toml", &format!("[services.jupyter]\nkind = \"jupyter\"\nport = {port}\n"));
    let token = "0123456789abcdef0123456789abcdef0123456789abcdef";
    p.set("LABUP_JUPYTER_TOKEN", token).set("LABUP_BIND_ADDRESS", "0.0.0.0");
    let mut run = Running::spawn(p.command(&["up", "--foreground"]));
    let url = format!("http://127.0.0.1:{port}/lab?token={token}");
    assert!(
        wait_until(300, || run.stdout().lines().any(|l| l.starts_with("jupyter ") && l.contains(&url))),
        "no token URL in the table:\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
    assert_eq!(http_get(&url), Some(200));
    let status = p.labup(&["status", "--json"]).ok().json();
    assert_eq!(status["services"][0]["exposed"], "0.0.0.0", "{status}");
    assert!(!p.path(".labup/jupyter/token").exists(), "the Secret's token was written to disk");
    kill(Pid::from_raw(run.child.id() as i32), Signal::SIGTERM).unwrap();
    assert_eq!(run.wait(30), Some(0), "{}", run.stderr());
}
