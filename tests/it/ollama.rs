//! `kind = "ollama"` against a STUB Ollama server (`tests/fixtures/ollama_stub.py`): the real
//! binary cannot be installed on the test machines. labup's code path is the real one: it runs
//! the program named by `LABUP_OLLAMA` (or `ollama` on PATH) with `serve`, and talks HTTP to it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{shared, wait_until, Project};

/// An executable `ollama` that runs the stub, in `dir/bin`.
fn stub_ollama(dir: &Path) -> PathBuf {
    let bin = dir.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("ollama");
    let script = format!(
        "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
        shared().python.display(),
        shared().fixtures.join("ollama_stub.py").display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn events(models: &Path) -> Vec<String> {
    std::fs::read_to_string(models.join("stub-events.log")).unwrap_or_default().lines().map(String::from).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn stub_ollama_is_started_on_loopback_and_models_are_pulled_once() {
    let mut p = Project::new();
    let models = p.path("user-models");
    std::fs::create_dir_all(&models).unwrap();
    let stub = stub_ollama(p.root());
    p.set("LABUP_OLLAMA", &stub).set("OLLAMA_MODELS", &models);
    let port = free_port();
    p.file(
        "labup.toml",
        &format!("[services.llm]\nkind = \"ollama\"\nport = {port}\nmodels = [\"tiny:1b\", \"small\"]\n"),
    );
    let up = p.labup(&["up"]).ok();
    assert!(up.stderr.contains("llm is ready"), "{}", up.stderr);
    assert!(up.stderr.contains("pulled tiny:1b") && up.stderr.contains("pulled small"), "{}", up.stderr);
    assert_eq!(events(&models), [format!("serve 127.0.0.1:{port}"), "pull tiny:1b".into(), "pull small".into()]);

    let st = p.labup(&["status", "--json"]).ok().json();
    let llm = &st["services"][0];
    assert_eq!(llm["state"], "ready");
    assert_eq!(llm["external"], false);
    assert_eq!(llm["models"][0]["name"], "tiny:1b");
    assert_eq!(llm["models"][0]["size_vram"], llm["models"][0]["size"]);
    p.labup(&["status"]).ok().stderr_has("model tiny:1b loaded, 6 MiB, 100% in GPU memory");

    // Present models are not pulled again; a new one is.
    p.file(
        "labup.toml",
        &format!(
            "[services.llm]\nkind = \"ollama\"\nport = {port}\nmodels = [\"tiny:1b\", \"small:latest\", \"more\"]\n"
        ),
    );
    p.labup(&["up"]).ok();
    assert_eq!(events(&models).iter().filter(|e| e.starts_with("pull")).count(), 3, "{:?}", events(&models));
    p.labup(&["stop"]).ok();
    assert!(wait_until(5, || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()), "labup stops its own");
}

#[test]
fn stub_ollama_pull_error_is_clear() {
    let mut p = Project::new();
    let models = p.path("m");
    std::fs::create_dir_all(&models).unwrap();
    let stub = stub_ollama(p.root());
    p.set("LABUP_OLLAMA", &stub).set("OLLAMA_MODELS", &models);
    p.file("labup.toml", "[services.llm]\nkind = \"ollama\"\nport = \"auto\"\nmodels = [\"missing-model\"]\n");
    let out = p.labup(&["up"]).code(1);
    assert!(out.stderr.contains("cannot pull the Ollama model `missing-model`: pull model manifest"), "{}", out.stderr);
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(out.stdout.contains("llm"), "the table is still printed: {}", out.stdout);
}

#[test]
fn a_running_stub_ollama_server_is_reused_never_started_or_stopped() {
    let mut p = Project::new();
    let models = p.path("m");
    std::fs::create_dir_all(&models).unwrap();
    let port = free_port();
    // The user's own server, started outside labup (killed when the test ends, pass or fail).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut theirs = KillOnDrop(
        Command::new(&shared().python)
            .arg(shared().fixtures.join("ollama_stub.py"))
            .arg("serve")
            .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
            .env("OLLAMA_MODELS", &models)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(10, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));
    // A program that must never run: labup may not start a second server.
    let never = p.path("never-run");
    p.file("bin/ollama", &format!("#!/bin/sh\ntouch '{}'\n", never.display()));
    std::fs::set_permissions(p.path("bin/ollama"), std::fs::Permissions::from_mode(0o755)).unwrap();
    p.set("LABUP_OLLAMA", p.path("bin/ollama"));
    p.file(
        "labup.toml",
        &format!(
            "[services.ollama]\nkind = \"ollama\"\nport = {port}\nmodels = [\"tiny\"]\n\
             [services.web]\ncommand = [\"python\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"$PORT\"]\n\
             port = \"auto\"\nafter = [\"ollama\"]\n"
        ),
    );
    let up = p.labup(&["up"]).ok();
    assert!(
        up.stderr.contains(&format!("using the Ollama server already running on 127.0.0.1:{port}")),
        "{}",
        up.stderr
    );
    assert!(up.stderr.contains("web is ready"), "`after` an external server is satisfied: {}", up.stderr);
    assert!(!never.exists(), "labup started ollama");
    assert_eq!(events(&models), [format!("serve 127.0.0.1:{port}"), "pull tiny".into()], "models go to their server");

    let st = p.labup(&["status", "--json"]).ok().json();
    let ollama = st["services"].as_array().unwrap().iter().find(|s| s["name"] == "ollama").unwrap().clone();
    assert_eq!(ollama["external"], true);
    assert_eq!(ollama["pid"], serde_json::Value::Null);
    assert_eq!(ollama["models"][0]["name"], "tiny", "{st}");

    p.labup(&["stop"]).ok();
    assert!(theirs.0.try_wait().unwrap().is_none(), "labup stopped a server it did not start");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

#[test]
fn missing_ollama_binary_is_a_clear_error() {
    let mut p = Project::new();
    p.set("PATH", "/usr/bin:/bin");
    p.file("labup.toml", &format!("[services.llm]\nkind = \"ollama\"\nport = {}\n", free_port()));
    let out = p.labup(&["up"]).code(1);
    assert!(out.stderr.contains("the `ollama` program is not installed"), "{}", out.stderr);
    assert!(out.stderr.contains("nix run .#up-llm"), "{}", out.stderr);
}
