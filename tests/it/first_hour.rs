//! Issue 15, the services and commands a new user meets in the first hour: a venv changed under
//! running services, `stop` with nothing started, services removed from `labup.toml`, the one
//! project rule, readiness failures, and the smaller ones. Real processes, real HTTP on 127.0.0.1.

use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{group_pids, http_get, wait_until, Project};

const WEB: &str = r#"
[services.web]
command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
port = "auto"
ready = { http = "/" }
"#;

const EXTRA: &str = r#"
[services.extra]
command = ["python", "-c", "import time; print('extra up', flush=True); time.sleep(600)"]
ready = { log = "extra up" }
"#;

fn status(p: &Project) -> serde_json::Value {
    p.labup(&["status", "--json"]).json()
}

fn find<'a>(status: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    status["services"].as_array().unwrap().iter().find(|s| s["name"] == name)
}

fn pid(p: &Project, name: &str) -> i64 {
    let st = status(p);
    find(&st, name).and_then(|s| s["pid"].as_i64()).unwrap_or_else(|| panic!("{name} has no pid: {st}"))
}

#[test]
fn stop_where_nothing_was_started_says_so_and_writes_nothing() {
    let p = Project::new();
    p.file("labup.toml", WEB);
    let before = p.listing();
    p.labup(&["stop"]).ok().stderr_has("nothing is running");
    p.labup(&["down"]).ok().stderr_has("nothing is running");
    assert_eq!(p.listing(), before, "stop wrote something");
}

#[test]
fn stop_reports_only_the_services_that_were_running() {
    let p = Project::new();
    p.file("labup.toml", &format!("{WEB}{EXTRA}"));
    p.labup(&["up"]).ok();
    let web = pid(&p, "web");
    p.labup(&["stop", "extra"]).ok().stderr_has("stopped extra");
    p.labup(&["stop", "extra"]).ok().stderr_has("extra is not running");
    assert_eq!(pid(&p, "web"), web, "stopping a stopped service touches nothing else");
    let out = p.labup(&["stop"]).ok();
    assert!(out.stderr.contains("stopped web"), "{}", out.stderr);
    assert!(!out.stderr.contains("extra"), "extra was already stopped: {}", out.stderr);
    assert!(group_pids(web).is_empty());
    p.labup(&["stop"]).ok().stderr_has("nothing is running");
}

#[test]
fn up_stops_services_no_longer_declared_and_status_forgets_them() {
    let p = Project::new();
    p.file("labup.toml", &format!("{WEB}{EXTRA}"));
    p.labup(&["up"]).ok();
    let extra = pid(&p, "extra");
    let web = pid(&p, "web");
    p.file("labup.toml", WEB);
    // Until `up` runs, status still lists what runs although the config dropped it.
    assert!(find(&status(&p), "extra").is_some_and(|s| s["pid"].as_i64() == Some(extra)));
    let plan = p.labup(&["up", "--dry-run", "--json"]).ok().json();
    let stop = plan["services"].as_array().unwrap().iter().find(|s| s["name"] == "extra").cloned();
    assert_eq!(stop.map(|s| s["action"].clone()), Some("stop".into()), "{plan}");
    let out = p.labup(&["up"]).ok();
    assert!(out.stderr.contains("stopped extra (no longer declared in labup.toml)"), "{}", out.stderr);
    assert!(group_pids(extra).is_empty(), "the removed service still runs");
    assert_eq!(pid(&p, "web"), web, "the declared service is kept");
    let st = status(&p);
    assert!(find(&st, "extra").is_none(), "status lists a removed, stopped service: {st}");
    let table = p.labup(&["status"]).ok();
    assert!(!table.stdout.contains("extra"), "{}", table.stdout);
}

#[test]
fn the_last_declared_service_removed_leaves_a_working_supervisor() {
    // Only the removed service ran: its supervisor leaves, and `up` starts a fresh one.
    let p = Project::new();
    p.file("labup.toml", EXTRA);
    p.labup(&["up"]).ok();
    let extra = pid(&p, "extra");
    p.file("labup.toml", WEB);
    p.labup(&["up"]).ok().stderr_has("stopped extra");
    assert!(group_pids(extra).is_empty());
    let st = status(&p);
    assert_eq!(find(&st, "web").unwrap()["state"], "ready", "{st}");
    assert_eq!(st["supervisor"]["running"], true);
}

#[test]
fn up_and_sync_refuse_a_folder_that_is_not_a_project() {
    let p = Project::new();
    let before = p.listing();
    for args in [&["up"][..], &["sync"], &["up", "--dry-run"], &["sync", "--dry-run"], &["lock"], &[]] {
        let out = p.labup(args).code(2);
        assert!(out.stderr.contains("is not a project"), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("hint:") && out.stderr.contains("labup init"), "{}", out.stderr);
    }
    assert_eq!(p.listing(), before, "a refused command wrote something");
    p.labup(&["--project", "/", "up", "--dry-run"]).code(2).stderr_has("`/` is never a project");
    // The home folder itself is never a project, even with a requirements.txt in it.
    let mut home = Project::new();
    home.requirements("alpha\n");
    let root = home.root().to_path_buf();
    home.set("HOME", &root);
    home.labup(&["sync"]).code(2).stderr_has("home folder");
    assert!(!home.path(".venv").exists());
    // The hook keeps the same rule: a notebook makes a project, for both.
    p.labup(&["hook", "bash"]).ok();
    p.file("analysis.ipynb", "{}");
    assert!(p.labup(&["hook", "bash"]).ok().stdout.contains("VIRTUAL_ENV="), "a notebook folder is a project");
    p.labup(&["up", "--dry-run"]).ok();
}

#[test]
fn project_flag_searches_upwards_for_labup_toml() {
    let p = Project::new();
    p.file("labup.toml", WEB);
    p.file("sub/notes.md", "");
    let plan = p.labup(&["--project", "sub", "up", "--dry-run", "--json"]).ok().json();
    let names: Vec<&str> = plan["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web"], "the project is the folder with labup.toml: {plan}");
}

#[test]
fn a_sync_that_changes_the_venv_restarts_the_services_on_it() {
    let p = Project::new();
    p.requirements("alpha==1.0\n");
    p.file("labup.toml", WEB);
    p.labup(&["up"]).ok();
    let first = pid(&p, "web");
    // A sync that changes nothing keeps the service.
    p.labup(&["sync"]).ok();
    assert_eq!(pid(&p, "web"), first);
    // Packages changed: `labup sync` restarts it on the new venv.
    p.requirements("alpha==2.0\n");
    let out = p.labup(&["sync"]).ok();
    assert!(out.stderr.contains("the venv changed under web: restarting"), "{}", out.stderr);
    let second = pid(&p, "web");
    assert_ne!(second, first, "the service kept running on the old venv");
    assert!(group_pids(first).is_empty());
    let st = status(&p);
    assert_eq!(find(&st, "web").unwrap()["state"], "ready", "{st}");
    assert_eq!(http_get(find(&st, "web").unwrap()["url"].as_str().unwrap()), Some(200));
    p.labup(&["up"]).ok().stderr_has("everything is already up");
    assert_eq!(pid(&p, "web"), second);
    // Through `up`: the venv changed, so it is not "already up".
    p.requirements("alpha==1.0\n");
    let out = p.labup(&["up"]).ok();
    assert!(!out.stderr.contains("everything is already up"), "{}", out.stderr);
    assert_ne!(pid(&p, "web"), second);
    // A rebuilt venv (here: removed and made again) is another venv too.
    let third = pid(&p, "web");
    std::fs::remove_dir_all(p.path(".venv")).unwrap();
    p.labup(&["sync"]).ok().stderr_has("restarting");
    assert_ne!(pid(&p, "web"), third);
}

#[test]
fn run_says_which_services_run_on_the_old_venv() {
    let p = Project::new();
    p.requirements("alpha==1.0\n");
    p.file("labup.toml", WEB);
    p.labup(&["up"]).ok();
    p.requirements("alpha==2.0\n");
    let out = p.labup(&["run", "--", "true"]).ok();
    assert!(out.stderr.contains("web still run on the venv as it was before this sync"), "{}", out.stderr);
    assert!(out.stderr.contains("`labup restart web`"), "{}", out.stderr);
}

#[test]
fn a_start_that_never_gets_ready_fails_after_one_attempt_and_says_why() {
    let p = Project::new();
    p.file(
        "labup.toml",
        "[services.mute]\ncommand = [\"python\", \"-c\", \"import time; time.sleep(600)\"]\nport = \"auto\"\nready = { http = \"/health\" }\nstart-timeout = 3\n\
         [services.app]\ncommand = [\"python\", \"-c\", \"import time; time.sleep(600)\"]\nafter = [\"mute\"]\n",
    );
    let started = Instant::now();
    let out = p.labup(&["up"]).code(1);
    let took = started.elapsed().as_secs_f64();
    assert!(took < 10.0, "start-timeout = 3 took {took:.1}s");
    assert!(took >= 3.0, "{took:.1}s");
    // How far the log got when `up` gave up depends on timing: labup's notes in it are left out
    // here (the log is checked below).
    labup_snapshot!("up_of_a_service_that_never_gets_ready" => &p, out,
        r"127\.0\.0\.1:\d+" => "127.0.0.1:[PORT]", r"\bport \d+" => "port [PORT]",
        r"(?m)^    last lines of its log:\n(    --- labup: .*\n)+" => "    last lines of its log:\n    [LOG]\n");
    // The restarts go on: status shows them.
    assert!(
        wait_until(15, || {
            let st = status(&p);
            find(&st, "mute").is_some_and(|s| s["restarts"].as_u64() >= Some(1))
        }),
        "no restart in the background: {}",
        status(&p)
    );
    let log = p.labup(&["logs", "mute", "-n", "50"]).ok().stdout;
    assert!(log.contains("labup: stopping it (SIGTERM to its process group"), "{log}");
    assert!(log.contains("labup stopped it (did not become ready within 3 s"), "{log}");
    p.labup(&["stop"]).ok();
}

#[test]
fn status_exits_1_when_a_service_failed() {
    let p = Project::new();
    p.file(
        "labup.toml",
        &format!("{WEB}[services.once]\ncommand = [\"sh\", \"-c\", \"exit 3\"]\nrestart = \"never\"\n"),
    );
    p.labup(&["up"]).code(1).stderr_has("exited with status 3");
    let out = p.labup(&["status", "--json"]).code(1);
    assert_eq!(find(&out.json(), "once").unwrap()["state"], "failed");
    p.labup(&["status"]).code(1);
    p.labup(&["stop", "once"]).ok();
    p.file("labup.toml", WEB);
    p.labup(&["up"]).ok();
    p.labup(&["status"]).ok();
}

#[test]
fn services_learn_each_others_ports() {
    let p = Project::new();
    p.file(
        "labup.toml",
        &format!(
            r#"{WEB}
[services.client]
command = ["python", "-c", "import os, sys, urllib.request; assert sys.argv[1] == os.environ['WEB_PORT']; urllib.request.urlopen('http://127.0.0.1:' + os.environ['WEB_PORT'] + '/'); print('web answered on', sys.argv[1], flush=True); import time; time.sleep(600)", "${{WEB_PORT}}"]
after = ["web"]
restart = "never"
ready = {{ log = "web answered" }}
"#
        ),
    );
    p.labup(&["up"]).ok();
    let st = status(&p);
    let port = find(&st, "web").unwrap()["port"].as_u64().unwrap();
    assert_eq!(find(&st, "client").unwrap()["state"], "ready", "{st}");
    let log = p.labup(&["logs", "client"]).ok().stdout;
    assert!(log.contains(&format!("web answered on {port}")), "{log}");
}

#[test]
fn ctrl_c_during_up_says_what_keeps_running() {
    let p = Project::new();
    p.file(
        "labup.toml",
        "[services.slow]\ncommand = [\"python\", \"-c\", \"import time; time.sleep(600)\"]\nready = { log = \"never printed\" }\n",
    );
    let child =
        p.command(&["up"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let state = p.path(".labup/run/state.json");
    assert!(
        wait_until(30, || std::fs::read_to_string(&state)
            .is_ok_and(|s| s.contains("\"starting\"") && s.contains("\"pid\""))),
        "the service never started"
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: the supervisor keeps running in the background"), "{stderr}");
    assert!(stderr.contains("starting slow") && stderr.contains("`labup stop` stops them"), "{stderr}");
    let st = status(&p);
    assert_eq!(find(&st, "slow").unwrap()["state"], "starting", "the service keeps starting: {st}");
    p.labup(&["stop"]).ok().stderr_has("stopped slow");
}

#[test]
fn quiet_up_prints_no_table() {
    let p = Project::new();
    p.file("labup.toml", WEB);
    let out = p.labup(&["-q", "up"]).ok();
    assert_eq!(out.stdout, "", "-q up printed the table");
    assert!(p.labup(&["up"]).ok().stdout.contains("web"), "without -q the table is there");
}

#[test]
fn start_suggests_up() {
    let p = Project::new();
    let out = p.labup(&["start"]).code(2);
    assert!(out.stderr.contains("'up'"), "{}", out.stderr);
}

#[test]
fn a_service_named_jupyter_without_kind_is_jupyter() {
    let p = Project::new();
    p.with_jupyter();
    p.file("labup.toml", "[services.jupyter]\nport = \"auto\"\n");
    let plan = p.labup(&["up", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan["services"][0]["kind"], "jupyter", "{plan}");
    let port = plan["services"][0]["port"].as_str().unwrap();
    assert!(port.parse::<u16>().is_ok(), "dry-run shows the port it would take, not {port}");
    let text = p.labup(&["up", "--dry-run"]).ok().stdout;
    assert!(text.contains("(auto: free now)") && !text.contains("on port auto"), "{text}");
}
