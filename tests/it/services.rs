//! `labup up/stop/restart/status/logs` with real processes on 127.0.0.1.

use std::process::Stdio;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::support::{group_pids, http_get, wait_until, Project};

const HTTP_SERVICE: &str = r#"
[services.web]
command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
port = "auto"
ready = { http = "/" }
"#;

fn status(p: &Project) -> serde_json::Value {
    p.labup(&["status", "--json"]).ok().json()
}

fn service<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn pid_of(p: &Project, name: &str) -> i64 {
    service(&status(p), name)["pid"].as_i64().unwrap_or_else(|| panic!("{name} has no pid"))
}

#[test]
fn http_service_starts_answers_and_stops_with_its_group() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    let up = p.labup(&["up"]).ok();
    assert!(up.stderr.contains("web is ready"), "{}", up.stderr);
    let st = status(&p);
    assert_eq!(st["supervisor"]["running"], true);
    let run_mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p.path(".labup/run")).unwrap().permissions());
    assert_eq!(run_mode & 0o777, 0o700);
    let web = service(&st, "web");
    assert_eq!(web["state"], "ready");
    assert_eq!(web["kind"], "command");
    assert_eq!(web["restarts"], 0);
    assert_eq!(web["exposed"], serde_json::Value::Null, "bound to 127.0.0.1 only");
    assert_eq!(web["external"], false);
    let url = web["url"].as_str().unwrap();
    assert_eq!(http_get(url), Some(200), "{url}");
    let pid = web["pid"].as_i64().unwrap();
    assert_eq!(group_pids(pid), [pid], "the service leads its own process group");
    assert!(up.stdout.contains("web") && up.stdout.contains(url), "table with the URL: {}", up.stdout);

    let again = p.labup(&["up"]).ok();
    assert!(again.stderr.contains("everything is already up"), "{}", again.stderr);
    assert_eq!(pid_of(&p, "web"), pid, "a no-op up starts nothing");

    let logs = p.labup(&["logs", "web", "-n", "20"]).ok();
    assert!(logs.stdout.contains("labup: starting `python -m http.server"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("Traceback"), "probes must not upset the server: {}", logs.stdout);

    p.labup(&["stop"]).ok().stderr_has("stopped web");
    assert!(group_pids(pid).is_empty(), "a process of the group is left");
    let st = status(&p);
    assert_eq!(st["supervisor"]["running"], false, "stopping everything stops the supervisor");
    assert_eq!(service(&st, "web")["state"], "stopped");
    assert_eq!(http_get(url), None);
}

#[test]
fn failing_service_backs_off_then_gives_up() {
    let p = Project::new();
    p.file(
        "labup.toml",
        "[services.crash]\ncommand = [\"sh\", \"-c\", \"echo boom; exit 3\"]\nrestart = \"on-failure\"\nstart-timeout = 60\nready = { log = \"never printed\" }\n",
    );
    // `up` reports the first failed start at once; the restarts go on in the background.
    let started = std::time::Instant::now();
    let out = p.labup(&["up"]).code(1);
    let took = started.elapsed().as_secs_f64();
    assert!(took < 5.0, "up waited for the restarts: {took:.1}s");
    assert!(out.stderr.contains("exited with status 3"), "{}", out.stderr);
    assert!(out.stderr.contains("boom"), "the error shows the last log lines: {}", out.stderr);
    assert!(out.stderr.contains("restarting it in the background"), "{}", out.stderr);
    // Backoff 1+2+4+8 s, then it gives up, and status says why (exit 1: a service failed).
    let crash = |p: &Project| service(&p.labup(&["status", "--json"]).json(), "crash").clone();
    assert!(wait_until(40, || crash(&p)["state"] == "failed"), "never gave up: {}", crash(&p));
    let gave_up = started.elapsed().as_secs_f64();
    assert!((14.0..40.0).contains(&gave_up), "backoff 1+2+4+8 s before giving up, took {gave_up:.1}s");
    let crash = crash(&p);
    assert!(crash["last_error"].as_str().unwrap().contains("gave up after 5 quick failures"), "{crash}");
    assert_eq!(crash["restarts"], 4);
}

#[test]
fn after_order_waits_for_readiness() {
    let p = Project::new();
    let port = free_port();
    p.file(
        "labup.toml",
        &format!(
            r#"
[services.api]
command = ["python", "-c", "import time, http.server as h; time.sleep(1); h.test(HandlerClass=h.SimpleHTTPRequestHandler, port={port}, bind='127.0.0.1')"]
port = {port}
ready = {{ http = "/" }}

[services.client]
command = ["python", "-c", "import urllib.request, time; urllib.request.urlopen('http://127.0.0.1:{port}/'); print('api answered', flush=True); time.sleep(600)"]
after = ["api"]
restart = "never"
ready = {{ log = "api answered" }}
"#
        ),
    );
    p.labup(&["up"]).ok();
    let st = status(&p);
    assert_eq!(service(&st, "api")["state"], "ready");
    assert_eq!(service(&st, "client")["state"], "ready", "client started only once api answered");
    // Naming one service brings what it starts after.
    p.labup(&["stop"]).ok();
    p.labup(&["up", "client"]).ok();
    assert_eq!(service(&status(&p), "api")["state"], "ready");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_port_held_by_another_process_is_named_and_auto_picks_another() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let p = Project::new();
    p.file(
        "labup.toml",
        &format!("[services.web]\ncommand = [\"python\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"$PORT\"]\nport = {port}\n"),
    );
    let out = p.labup(&["up"]).code(1);
    let me = std::process::id();
    assert!(out.stderr.contains(&format!("port {port} is in use by pid {me}")), "{}", out.stderr);
    let port_re = format!(r"\b{port}\b");
    labup_snapshot!("up_on_a_port_held_by_another_process" => &p, out,
        port_re.as_str() => "[PORT]", r"\(`[^`]*/it-[0-9a-f]{16}[^`]*`\)" => "(`[TEST BINARY]`)");
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let web = service(&status(&p), "web").clone();
    assert_ne!(web["port"].as_u64(), Some(u64::from(port)));
    assert_eq!(http_get(web["url"].as_str().unwrap()), Some(200));
    drop(holder);
}

#[test]
fn a_killed_supervisor_is_reported_and_up_adopts_the_running_service() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let st = status(&p);
    let sup = st["supervisor"]["pid"].as_i64().unwrap();
    let web = service(&st, "web")["pid"].as_i64().unwrap();
    kill(Pid::from_raw(sup as i32), Signal::SIGKILL).unwrap();
    assert!(wait_until(5, || !status(&p)["supervisor"]["running"].as_bool().unwrap_or(true)));
    let text = p.labup(&["status"]).ok();
    assert!(text.stderr.contains("the supervisor is not running"), "{}", text.stderr);
    assert_eq!(pid_of(&p, "web"), web, "the service outlives its supervisor");

    let out = p.labup(&["up"]).ok();
    let st = status(&p);
    assert_eq!(st["supervisor"]["running"], true, "{}", out.stderr);
    assert_ne!(st["supervisor"]["pid"].as_i64(), Some(sup));
    assert_eq!(service(&st, "web")["pid"].as_i64(), Some(web), "adopted, not restarted");
    assert_eq!(service(&st, "web")["state"], "ready");
    p.labup(&["stop"]).ok();
    assert!(group_pids(web).is_empty());
}

#[test]
fn stop_without_a_supervisor_still_stops_verified_services() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let st = status(&p);
    let web = service(&st, "web")["pid"].as_i64().unwrap();
    kill(Pid::from_raw(st["supervisor"]["pid"].as_i64().unwrap() as i32), Signal::SIGKILL).unwrap();
    assert!(wait_until(5, || !status(&p)["supervisor"]["running"].as_bool().unwrap_or(true)));
    p.labup(&["stop"]).ok();
    assert!(group_pids(web).is_empty());
}

#[test]
fn a_state_file_naming_a_foreign_process_is_never_signalled() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    p.labup(&["stop"]).ok();
    // A process labup did not start, in its own group, recorded as if it were the service
    // (a reused pid): same pid, but another start time.
    let mut stranger = std::process::Command::new("sleep");
    stranger.arg("60");
    std::os::unix::process::CommandExt::process_group(&mut stranger, 0);
    let mut stranger = stranger.spawn().unwrap();
    let pid = stranger.id();
    let state_path = p.path(".labup/run/state.json");
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_string();
    state["services"]["web"]["process"] = serde_json::json!({"pid": pid, "start_time": 1, "boot_id": boot});
    state["services"]["web"]["state"] = serde_json::json!("ready");
    std::fs::write(&state_path, serde_json::to_string(&state).unwrap()).unwrap();

    assert_eq!(service(&status(&p), "web")["pid"], serde_json::Value::Null, "not taken for ours");
    p.labup(&["stop"]).ok();
    p.labup(&["up"]).ok();
    p.labup(&["stop", "web"]).ok();
    assert!(stranger.try_wait().unwrap().is_none(), "labup signalled a process it did not start");
    stranger.kill().unwrap();
    let _ = stranger.wait();
}

#[test]
fn two_ups_at_once_start_each_service_once() {
    let p = Project::new();
    let starts = p.path("starts.txt");
    p.file(
        "labup.toml",
        &format!(
            "[services.one]\ncommand = [\"sh\", \"-c\", \"echo one >> '{0}'; exec sleep 600\"]\n[services.two]\ncommand = [\"sh\", \"-c\", \"echo two >> '{0}'; exec sleep 600\"]\n",
            starts.display()
        ),
    );
    let spawn = || p.command(&["up"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut lines: Vec<String> = std::fs::read_to_string(&starts).unwrap().lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["one", "two"]);
}

#[test]
fn foreground_streams_prefixed_logs_and_sigint_stops_everything() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    let mut cmd = p.command(&["up", "--foreground"]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pgid = Pid::from_raw(child.id() as i32);
    assert!(wait_until(30, || p.labup(&["status", "--json"]).json()["services"][0]["state"] == "ready"));
    let web = pid_of(&p, "web");
    let url = service(&status(&p), "web")["url"].as_str().unwrap().to_string();
    assert_eq!(http_get(&url), Some(200));
    killpg(pgid, Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("web | --- labup: starting `python -m http.server"), "prefixed logs: {stdout}");
    assert!(stdout.contains("web | ") && stdout.contains("\"GET / HTTP/1.1\" 200"), "request log: {stdout}");
    assert!(group_pids(web).is_empty(), "Ctrl-C left the service running");
    assert_eq!(status(&p)["supervisor"]["running"], false);
}

#[test]
fn restart_gives_a_new_process() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let before = pid_of(&p, "web");
    p.labup(&["restart", "web"]).ok();
    let after = service(&status(&p), "web").clone();
    assert_eq!(after["state"], "ready");
    assert_ne!(after["pid"].as_i64(), Some(before));
    assert!(group_pids(before).is_empty());
}

#[test]
fn a_changed_command_is_restarted_by_up() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let before = pid_of(&p, "web");
    p.file("labup.toml", &HTTP_SERVICE.replace("\"--bind\"", "\"--directory\", \".\", \"--bind\""));
    p.labup(&["up"]).ok();
    assert_ne!(pid_of(&p, "web"), before);
}

#[test]
fn unknown_service_names_are_usage_errors() {
    let p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    let up = p.labup(&["up", "wbe"]).code(2);
    assert!(!p.path(".venv").exists(), "a misspelt service is refused before the sync writes anything");
    labup_snapshot!("up_an_unknown_service" => &p, up);
    let logs = p.labup(&["logs", "nothing"]).code(2);
    labup_snapshot!("logs_of_an_unknown_service" => &p, logs);
}

#[test]
fn status_table_of_ready_declared_and_disabled_services() {
    let p = Project::new();
    p.file(
        "labup.toml",
        &format!(
            "{HTTP_SERVICE}\n[services.idle]\ncommand = [\"python\", \"-c\", \"import time; time.sleep(600)\"]\n\n\
             [services.off]\ncommand = [\"python\", \"off.py\"]\nenabled = false\n"
        ),
    );
    let before = p.labup(&["status"]).ok();
    labup_snapshot!("status_before_up" => &p, before);
    p.labup(&["up"]).ok();
    let st = status(&p);
    let out = p.labup(&["status"]).ok();
    // The pids and the auto port change from run to run, and with them the columns' widths:
    // runs of spaces are one gap here, so this checks the rows, not the alignment.
    let (web, idle) = (pid_of(&p, "web").to_string(), pid_of(&p, "idle").to_string());
    let port = service(&st, "web")["port"].as_u64().unwrap().to_string();
    let (web_re, idle_re, port_re) = (format!(r"\b{web}\b"), format!(r"\b{idle}\b"), format!(r":{port}/"));
    labup_snapshot!(&p, out,
        web_re.as_str() => "[PID]", idle_re.as_str() => "[PID]", port_re.as_str() => ":[PORT]/", " {2,}" => "  ");
    p.labup(&["stop"]).ok();
}

#[test]
fn pypi_fasthtml_server_py_is_the_default_app() {
    let p = Project::new();
    p.file("requirements.txt", "python-fasthtml\n");
    p.file(
        "server.py",
        "from fasthtml.common import *\n\napp, rt = fast_app()\n\n@rt('/')\ndef get():\n    return P('hello from labup')\n\nserve()\n",
    );
    p.labup(&["up"]).ok();
    let app = service(&status(&p), "app").clone();
    assert_eq!(app["state"], "ready");
    // FastHTML's `serve()` binds every interface: status says so, and how to change it.
    assert_eq!(app["exposed"], "0.0.0.0", "{app}");
    p.labup(&["status"]).ok().stderr_has("`app` listens on all interfaces").stderr_has("serve(host=\"127.0.0.1\")");
    assert_eq!(app["port"], 5001);
    assert_eq!(http_get("http://127.0.0.1:5001/"), Some(200));
    let leader = app["pid"].as_i64().unwrap();
    assert!(group_pids(leader).len() >= 2, "uvicorn's reloader and worker share the group");
    p.labup(&["stop"]).ok();
    assert!(group_pids(leader).is_empty(), "the reload worker must not keep the port");
    assert!(
        std::net::TcpListener::bind("127.0.0.1:5001").is_ok() && std::net::TcpListener::bind("0.0.0.0:5001").is_ok()
    );
}

#[test]
fn up_from_a_terminal_with_another_path_restarts_nothing() {
    let mut p = Project::new();
    p.file("labup.toml", HTTP_SERVICE);
    p.labup(&["up"]).ok();
    let pid = pid_of(&p, "web");
    let path = format!("/opt/some-tool/bin:{}", std::env::var("PATH").unwrap_or_default());
    p.set("PATH", path);
    p.labup(&["up"]).ok().stderr_has("everything is already up");
    assert_eq!(pid_of(&p, "web"), pid, "a different inherited PATH is not a changed service");
    // A change in the config still restarts it.
    p.file(
        "labup.toml",
        &HTTP_SERVICE.replace("ready = { http = \"/\" }", "ready = { http = \"/\" }\nenv = { X = \"1\" }"),
    );
    p.labup(&["up"]).ok();
    assert_ne!(pid_of(&p, "web"), pid, "a changed service restarts");
}
