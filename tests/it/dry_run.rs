//! `labup sync --dry-run` and `labup up --dry-run`: the plan, with nothing changed on disk.

use crate::support::Project;

fn plan(p: &Project, args: &[&str]) -> serde_json::Value {
    let before = p.listing();
    let out = p.labup(args).ok();
    assert_eq!(p.listing(), before, "`labup {}` wrote something", args.join(" "));
    out.json()
}

#[test]
fn sync_dry_run_says_what_would_happen_and_changes_nothing() {
    let p = Project::new();
    p.requirements("alpha\n");
    let fresh = plan(&p, &["sync", "--dry-run", "--json"]);
    assert_eq!(
        (fresh["action"].as_str(), fresh["venv"].as_str(), fresh["lock"].as_str()),
        (Some("sync"), Some("create"), Some("resolve"))
    );
    assert_eq!(fresh["install"], serde_json::Value::Null, "unknown before resolving");

    p.sync();
    assert_eq!(plan(&p, &["sync", "--dry-run", "--json"])["action"], "noop");

    // A package installed by hand: the lock is current, uv's own dry run names the change.
    p.install_by_hand("gamma");
    let drift = plan(&p, &["sync", "--dry-run", "--json"]);
    assert_eq!((drift["venv"].as_str(), drift["lock"].as_str()), (Some("keep"), Some("current")));
    assert_eq!(drift["install"], serde_json::json!([]));
    assert_eq!(drift["remove"], serde_json::json!(["gamma==1.0"]));
    let before = p.listing();
    let text = p.labup(&["sync", "--dry-run"]).ok();
    assert_eq!(p.listing(), before);
    labup_snapshot!("sync_dry_run_after_a_package_installed_by_hand" => &p, text);
}

#[test]
fn sync_dry_run_of_a_new_project() {
    let p = Project::new();
    p.requirements("alpha\n");
    let before = p.listing();
    let out = p.labup(&["sync", "--dry-run"]).ok();
    assert_eq!(p.listing(), before);
    labup_snapshot!(&p, out);
}

#[test]
fn up_dry_run_plan_as_text() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.file(
        "labup.toml",
        "[services.web]\ncommand = [\"python\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"$PORT\"]\nport = \"auto\"\n\n\
         [services.api]\ncommand = [\"python\", \"api.py\"]\nport = 8123\nafter = [\"web\"]\n\n\
         [services.off]\ncommand = [\"python\", \"off.py\"]\nenabled = false\n",
    );
    let before = p.listing();
    let out = p.labup(&["up", "--dry-run"]).ok();
    assert_eq!(p.listing(), before);
    // The auto port is whichever is free now.
    labup_snapshot!(&p, out, r"on port \d+ \(auto" => "on port [PORT] (auto");
}

#[test]
fn up_dry_run_lists_what_would_start_then_what_is_kept() {
    let p = Project::new();
    p.file(
        "labup.toml",
        "[services.web]\ncommand = [\"python\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"$PORT\"]\nport = \"auto\"\n",
    );
    let first = plan(&p, &["up", "--dry-run", "--json"]);
    assert_eq!(first["sync"]["venv"], "create");
    assert_eq!(first["services"][0]["action"], "start");
    // `port = "auto"`: the free port a start would take now, not the word.
    assert!(first["services"][0]["port"].as_str().unwrap().parse::<u16>().is_ok(), "{first}");
    assert_eq!(first["services"][0]["auto_port"], true);
    p.labup(&["up"]).ok();
    let again = plan(&p, &["up", "--dry-run", "--json"]);
    assert_eq!(again["sync"]["action"], "noop");
    assert_eq!(again["services"][0]["action"], "keep");
    let port = again["services"][0]["port"].as_str().unwrap().to_string();
    let text = p.labup(&["up", "--dry-run"]).ok();
    labup_snapshot!("up_dry_run_with_everything_up" => &p, text, port.as_str() => "[PORT]");
    p.labup(&["stop"]).ok();
}
