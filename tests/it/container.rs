//! `labup up --foreground` as the entrypoint of a real podman container: a Debian root file
//! system made by debootstrap (`.ci/setup.d/45-containers.sh` imports it as
//! `localhost/labup-ci-deb`), this build's labup and uv copied in with a small project that needs
//! no package (no PyPI in the container), the image read-only, the venv and `.labup` on a volume.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{http_get, wait_until};

const BASE: &str = "localhost/labup-ci-deb";
const CONTAINERS_CONF: &str = "/etc/labup-ci/containers.conf";

fn podman(args: &[&str]) -> (bool, String) {
    let out = Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", CONTAINERS_CONF)
        .output()
        .expect("podman (installed by .ci/setup.d/45-containers.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[track_caller]
fn podman_ok(args: &[&str]) -> String {
    let (ok, text) = podman(args);
    assert!(ok, "podman {args:?}: {text}");
    text
}

/// The real uv binary (not pyenv's shim script), to copy into the image.
fn uv_binary() -> String {
    let out = Command::new(&crate::support::shared().python)
        .args(["-c", "import uv; print(uv.find_uv_bin())"])
        .output()
        .expect("python");
    assert!(out.status.success(), "uv is not importable: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Host processes in the PID namespace `ns`.
fn processes_in(ns: &Path) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|n| n == ns))
        .collect()
}

/// Removes the container and image even when the test fails.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "0", &self.container]);
        let _ = podman(&["rmi", "-f", &self.image]);
    }
}

const PROJECT: &str = r#"[project]
name = "boxed"

[python]
venv = "/state/venv"

[services.jupyter]
kind = "jupyter"
enabled = false

[services.web]
command = ["python3", "-m", "http.server", "--bind", "0.0.0.0", "$PORT"]
port = 8000
ready = { http = "/" }
stop-timeout = 5
"#;

const CONTAINERFILE: &str = r#"FROM localhost/labup-ci-deb
COPY labup uv /usr/local/bin/
COPY project /srv/project
WORKDIR /srv/project
ENV HOME=/state/home LABUP_STATE_DIR=/state/labup LABUP_UV=/usr/local/bin/uv
USER 1000:1000
EXPOSE 8000
ENTRYPOINT ["labup", "up", "--foreground"]
"#;

#[test]
fn engine_podman_runs_the_workspace_and_stops_it_with_exit_0() {
    assert!(podman(&["image", "exists", BASE]).0, "no {BASE}: run .ci/setup.d/45-containers.sh");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_labup"), ctx.path().join("labup")).unwrap();
    std::fs::copy(uv_binary(), ctx.path().join("uv")).unwrap();
    std::fs::create_dir_all(ctx.path().join("project")).unwrap();
    std::fs::write(ctx.path().join("project/labup.toml"), PROJECT).unwrap();
    std::fs::write(ctx.path().join("project/index.html"), "hello from the container\n").unwrap();
    std::fs::write(ctx.path().join("Containerfile"), CONTAINERFILE).unwrap();
    // The volume: owned by the image's user (the image itself is read-only).
    let state = tempfile::tempdir().unwrap();
    nix::unistd::chown(state.path(), Some(1000.into()), Some(1000.into())).unwrap();

    let id = std::process::id();
    let cleanup = Cleanup { container: format!("labup-it-{id}"), image: format!("localhost/labup-it-{id}") };
    podman_ok(&["build", "-q", "-t", &cleanup.image, "-f", "Containerfile", &ctx.path().display().to_string()]);

    let port = free_port();
    let started = Instant::now();
    podman_ok(&[
        "run",
        "-d",
        "--name",
        &cleanup.container,
        "--read-only",
        "-v",
        &format!("{}:/state", state.path().display()),
        "-p",
        &format!("127.0.0.1:{port}:8000"),
        &cleanup.image,
    ]);
    let url = format!("http://127.0.0.1:{port}/index.html");
    let answered = wait_until(60, || http_get(&url) == Some(200));
    let to_answer = started.elapsed();
    let logs = || podman(&["logs", &cleanup.container]).1;
    assert!(answered, "the service did not answer on {url}:\n{}", logs());
    assert!(wait_until(10, || logs().contains("web      ready")), "no ready table:\n{}", logs());
    assert!(logs().contains("web | --- labup: ready"), "{}", logs());
    assert!(state.path().join("venv/bin/python").exists(), "the venv is not on the volume");
    assert!(state.path().join("labup/run/state.json").exists(), "the state is not on the volume");

    let pid = podman_ok(&["inspect", "--format", "{{.State.Pid}}", &cleanup.container]).trim().to_string();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert!(processes_in(&ns).len() >= 2, "labup and the server");

    let stopping = Instant::now();
    // A grace of 20 s: a stop that needed podman's SIGKILL would take that long.
    podman_ok(&["stop", "-t", "20", &cleanup.container]);
    let to_stop = stopping.elapsed();
    let code = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &cleanup.container]);
    assert_eq!(code.trim(), "0", "{}", logs());
    assert!(to_stop < Duration::from_secs(10), "podman stop took {to_stop:?}");
    assert!(logs().contains("labup: SIGTERM: stopping every service"), "{}", logs());
    assert_eq!(processes_in(&ns), Vec::<i32>::new(), "processes of the container are left");
    eprintln!("podman: run → answering {to_answer:?}; stop → exited {to_stop:?}");
    drop(cleanup);
    assert!(!podman(&["container", "exists", &format!("labup-it-{id}")]).0, "the container is left");
}
