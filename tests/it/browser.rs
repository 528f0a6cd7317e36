//! Opening the browser after `labup up`, with a fake `xdg-open` on PATH that records its argument.

use std::os::unix::fs::PermissionsExt;

use crate::support::Project;

const OPENED_SERVICE: &str = r#"
[services.web]
command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
port = "auto"
ready = { http = "/" }
open = true
"#;

/// A project whose PATH starts with a fake `xdg-open` that appends its argument to `opened.log`.
fn project_with_fake_opener() -> Project {
    let mut p = Project::new();
    let log = p.path("opened.log");
    p.file("fake-bin/xdg-open", &format!("#!/bin/sh\necho \"$1\" >> '{}'\n", log.display()));
    std::fs::set_permissions(p.path("fake-bin/xdg-open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", p.path("fake-bin").display(), std::env::var("PATH").unwrap_or_default());
    p.set("PATH", path).set("DISPLAY", ":0").unset("LABUP_NO_BROWSER");
    p.file("labup.toml", OPENED_SERVICE);
    p
}

fn opened(p: &Project) -> Vec<String> {
    // The opener runs detached: give it a moment.
    crate::support::wait_until(2, || p.path("opened.log").exists());
    std::fs::read_to_string(p.path("opened.log")).unwrap_or_default().lines().map(String::from).collect()
}

#[test]
fn fake_opener_gets_the_url_once() {
    let p = project_with_fake_opener();
    let up = p.labup(&["up"]).ok();
    let st = p.labup(&["status", "--json"]).ok().json();
    let url = st["services"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(opened(&p), std::slice::from_ref(&url));
    assert!(up.stdout.contains(&url), "the URL is printed too: {}", up.stdout);
    p.labup(&["up"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(opened(&p), [url], "a second `up` with everything up opens nothing");
}

#[test]
fn fake_opener_is_not_used_without_display_over_ssh_or_when_told_not_to() {
    let mut p = project_with_fake_opener();
    p.labup(&["up", "--no-browser"]).ok();
    p.labup(&["stop"]).ok();
    p.set("LABUP_NO_BROWSER", "1");
    p.labup(&["up"]).ok();
    p.labup(&["stop"]).ok();
    p.unset("LABUP_NO_BROWSER").set("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22");
    p.labup(&["up"]).ok();
    p.labup(&["stop"]).ok();
    p.unset("SSH_CONNECTION").unset("DISPLAY");
    let up = p.labup(&["up"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(opened(&p).is_empty(), "opened: {:?}", opened(&p));
    assert!(up.stdout.contains("http://127.0.0.1:"), "URLs are printed either way: {}", up.stdout);
}
