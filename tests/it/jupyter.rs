//! `kind = "jupyter"` with the real JupyterLab that `labup sync` installs from PyPI (tests named
//! `pypi_…` need the network; the Nix sandbox check leaves them out).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{group_pids, http_get, wait_until, Project};

const NOTEBOOK: &str = r#"{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#;

fn jupyter_row(p: &Project) -> serde_json::Value {
    let st = p.labup(&["status", "--json"]).ok().json();
    st["services"].as_array().unwrap().iter().find(|s| s["kind"] == "jupyter").cloned().expect("a jupyter row")
}

/// The local addresses (hex, as in /proc/net/tcp*) listening on `port`: read independently of
/// labup's own parser.
fn listening_addresses(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(file).unwrap_or_default().lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if let (Some(local), Some(&"0A")) = (f.get(1), f.get(3)) {
                if let Some((addr, p)) = local.split_once(':') {
                    if u16::from_str_radix(p, 16).ok() == Some(port) {
                        out.push(addr.to_string());
                    }
                }
            }
        }
    }
    out
}

/// Kernel processes whose command line names a connection file of ours.
fn kernel_pids(runtime: &std::path::Path) -> Vec<i64> {
    let out = Command::new("ps").args(["-e", "-o", "pid=,args="]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("ipykernel") && l.contains(&runtime.display().to_string()))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn pypi_jupyter_is_local_token_protected_and_stops_with_its_kernels() {
    let p = Project::new();
    p.with_jupyter();
    p.file("notebooks/hello.ipynb", NOTEBOOK);
    p.file("labup.toml", "[services.lab]\nkind = \"jupyter\"\nport = \"auto\"\nroot = \"notebooks\"\n");
    let up = p.labup(&["up"]).ok();
    assert!(up.stderr.contains("lab is ready"), "{}", up.stderr);
    assert!(up.stderr.contains("labup · "), "the banner: {}", up.stderr);
    if nix::unistd::geteuid().is_root() {
        assert!(up.stderr.contains("--allow-root"), "root is said: {}", up.stderr);
    }

    let lab = jupyter_row(&p);
    assert_eq!(lab["state"], "ready");
    let url = lab["url"].as_str().unwrap().to_string();
    let port = lab["port"].as_u64().unwrap() as u16;
    let token = url.split("token=").nth(1).expect("the URL carries the token").to_string();
    assert!(up.stdout.contains(&url), "the table prints the token URL: {}", up.stdout);
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(http_get(&format!("{base}/api/status?token={token}")), Some(200));
    assert_eq!(http_get(&format!("{base}/api/status")), Some(403), "no token, no entry");
    assert_eq!(http_get(&format!("{base}/api/contents/hello.ipynb?token={token}")), Some(200), "root is notebooks/");

    assert_eq!(listening_addresses(port), ["0100007F"], "bound on 127.0.0.1 only");
    let token_file = p.path(".labup/jupyter/token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap().trim(), token);
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let ps = Command::new("ps").args(["-e", "-o", "args="]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).contains(&token), "the token shows in ps");
    let pid = lab["pid"].as_i64().unwrap();
    let runtime = p.path(".labup/jupyter/runtime");
    assert!(runtime.join(format!("jpserver-{pid}.json")).is_file(), "runtime files live in .labup/jupyter");

    // A kernel, started the way the browser would (token in the header).
    let start_kernel = format!(
        "import json, urllib.request\nr = urllib.request.Request('{base}/api/kernels', data=b'{{}}', method='POST', \
         headers={{'Authorization': 'token {token}', 'Content-Type': 'application/json'}})\n\
         print(json.load(urllib.request.urlopen(r, timeout=30))['id'])"
    );
    let out = Command::new(&crate::support::shared().python).args(["-c", &start_kernel]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(wait_until(30, || !kernel_pids(&runtime).is_empty()), "the kernel did not start");
    let kernels = kernel_pids(&runtime);

    // The token survives a restart; the server is a new process.
    p.labup(&["restart", "lab"]).ok();
    let again = jupyter_row(&p);
    assert_eq!(again["url"].as_str().unwrap().split("token=").nth(1), Some(token.as_str()));
    assert_ne!(again["pid"], lab["pid"]);
    assert!(
        wait_until(10, || kernels.iter().all(|k| !kernel_pids(&runtime).contains(k))),
        "the old server's kernels outlived it"
    );

    let new_pid = again["pid"].as_i64().unwrap();
    p.labup(&["stop"]).ok();
    assert!(group_pids(new_pid).is_empty(), "the server is gone");
    assert!(wait_until(10, || kernel_pids(&runtime).is_empty()), "kernels outlived the server");
}

#[test]
fn pypi_jupyter_port_taken_is_a_clear_error() {
    let p = Project::new();
    p.with_jupyter();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    p.file("labup.toml", &format!("[services.jupyter]\nkind = \"jupyter\"\nport = {port}\n"));
    let out = p.labup(&["up"]).code(1);
    assert!(out.stderr.contains(&format!("port {port} is in use by")), "{}", out.stderr);
    assert!(out.stderr.contains("port = \\\"auto\\\"") || out.stderr.contains("port = \"auto\""), "{}", out.stderr);
    drop(holder);
}
