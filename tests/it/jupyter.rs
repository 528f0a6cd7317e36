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

/// A fake NixOS GPU host (`LABUP_FS_ROOT`): the NVIDIA driver 565.77 in `/run/opengl-driver/lib`,
/// as empty files (no GPU is reachable from the test machines). Returns the root.
fn fake_nixos_gpu_host() -> tempfile::TempDir {
    let root = tempfile::Builder::new().prefix("labup-host-").tempdir().unwrap();
    let put = |rel: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    };
    put("etc/NIXOS");
    std::fs::create_dir_all(root.path().join("sys/module/nvidia")).unwrap();
    std::fs::write(root.path().join("sys/module/nvidia/version"), "565.77\n").unwrap();
    for lib in ["libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler"] {
        put(&format!("run/opengl-driver/lib/{lib}.so.565.77"));
        std::os::unix::fs::symlink(
            format!("{lib}.so.565.77"),
            root.path().join(format!("run/opengl-driver/lib/{lib}.so.1")),
        )
        .unwrap();
    }
    root
}

/// Runs Python code in a kernel started through the server's REST API and its websocket (JSON
/// messages on `/api/kernels/<id>/channels`, as JupyterLab's frontend does), with the venv's
/// tornado as the websocket client. Returns (kernel name, printed output).
fn run_in_server_kernel(venv_python: &std::path::Path, base: &str, token: &str, code: &str) -> (String, String) {
    const CLIENT: &str = r#"
import asyncio, json, sys, urllib.request, uuid
from tornado.websocket import websocket_connect
base, token, code = sys.argv[1:4]
req = urllib.request.Request(base + "/api/kernels", data=b"{}", method="POST",
    headers={"Authorization": "token " + token, "Content-Type": "application/json"})
kernel = json.load(urllib.request.urlopen(req, timeout=60))
async def main():
    ws = await websocket_connect(f"{base.replace('http', 'ws', 1)}/api/kernels/{kernel['id']}/channels?token={token}")
    msg_id = uuid.uuid4().hex
    await ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    out = []
    while True:
        m = await asyncio.wait_for(ws.read_message(), 120)
        if m is None:
            break
        m = json.loads(m)
        if m.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "stream":
            out.append(m["content"]["text"])
        elif m["msg_type"] == "error":
            out.append("ERROR " + m["content"]["ename"] + ": " + m["content"]["evalue"])
        elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            break
    print(json.dumps({"kernel": kernel["name"], "output": "".join(out)}))
asyncio.run(main())
"#;
    let out = Command::new(venv_python).args(["-c", CLIENT, base, token, code]).output().unwrap();
    assert!(out.status.success(), "websocket client: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["kernel"].as_str().unwrap().to_string(), v["output"].as_str().unwrap().to_string())
}

/// What a kernel reports about itself: `[sys.executable, LD_LIBRARY_PATH]` as JSON on one line.
const WHO_AM_I: &str =
    "import json, os, sys; print(json.dumps([sys.executable, os.environ.get('LD_LIBRARY_PATH', '')]))";

fn parse_who(output: &str) -> (String, String) {
    let line = output.lines().find(|l| l.starts_with('[')).unwrap_or_else(|| panic!("kernel said: {output}"));
    let v: Vec<String> = serde_json::from_str(line).unwrap();
    (v[0].clone(), v[1].clone())
}

#[test]
fn pypi_jupyter_project_kernel_serves_every_frontend_and_user_config_cannot_turn_security_off() {
    let host = fake_nixos_gpu_host();
    let mut p = Project::new();
    p.with_jupyter();
    // A user-global config that turns every protection off, and a JupyterLab theme setting.
    let home = p.path("home");
    p.file(
        "home/.jupyter/jupyter_server_config.py",
        "c.IdentityProvider.token = ''\nc.PasswordIdentityProvider.hashed_password = ''\n\
         c.ServerApp.disable_check_xsrf = True\nc.ServerApp.ip = '0.0.0.0'\n",
    );
    p.file(
        "home/.jupyter/lab/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings",
        r#"{"theme": "JupyterLab Dark"}"#,
    );
    p.set("HOME", &home).set("LABUP_FS_ROOT", host.path());
    p.file("labup.toml", "[project]\nname = \"My Lab\"\n\n[services.jupyter]\nkind = \"jupyter\"\nport = \"auto\"\n");

    let up = p.labup(&["up"]).ok();
    assert!(up.stderr.contains("labup's Jupyter ignores the server settings in"), "{}", up.stderr);
    assert!(
        up.stderr.contains("jupyter_server_config.py (sets token, hashed_password, disable_check_xsrf, ip)"),
        "{}",
        up.stderr
    );
    let lab = jupyter_row(&p);
    let port = lab["port"].as_u64().unwrap() as u16;
    let url = lab["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).unwrap().to_string();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(http_get(&format!("{base}/api/status")), Some(403), "~/.jupyter turned the token off");
    assert_eq!(http_get(&format!("{base}/api/status?token={token}")), Some(200));
    assert_eq!(listening_addresses(port), ["0100007F"], "~/.jupyter's ip = '0.0.0.0' was ignored");
    // Server extensions from the venv still load (they enable themselves in its etc/jupyter).
    assert_eq!(http_get(&format!("{base}/api/terminals?token={token}")), Some(200), "jupyter_server_terminals");
    assert_eq!(http_get(&format!("{base}/lsp/status?token={token}")), Some(200), "jupyter_lsp");
    let again = p.labup(&["restart", "jupyter"]).ok();
    assert!(!again.stderr.contains("ignores the server settings"), "said once: {}", again.stderr);

    // The project kernelspec, in the venv, is the server's default.
    let venv_python = p.path(".venv/bin/python");
    let kernel_json = p.path(".venv/share/jupyter/kernels/labup-my-lab/kernel.json");
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&kernel_json).unwrap()).unwrap();
    let minor = p.sync()["python"].as_str().unwrap().rsplit_once('.').unwrap().0.to_string();
    assert_eq!(spec["display_name"], format!("Python {minor} (My Lab)"));
    let link_dir = p.path(".labup/driver/565.77").display().to_string();
    let specs = Command::new(&crate::support::shared().python)
        .args(["-c", &format!(
            "import json, urllib.request; print(urllib.request.urlopen('{base}/api/kernelspecs?token={token}', timeout=30).read().decode())"
        )])
        .output()
        .unwrap();
    let specs: serde_json::Value = serde_json::from_slice(&specs.stdout).unwrap();
    assert_eq!(specs["default"], "labup-my-lab");
    assert_eq!(specs["kernelspecs"]["labup-my-lab"]["spec"]["display_name"], format!("Python {minor} (My Lab)"));

    // The user's JupyterLab settings still apply.
    let theme = Command::new(&crate::support::shared().python)
        .args(["-c", &format!(
            "import urllib.request; print(urllib.request.urlopen('{base}/lab/api/settings/@jupyterlab/apputils-extension:themes?token={token}', timeout=30).read().decode())"
        )])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&theme.stdout).contains("JupyterLab Dark"),
        "{}",
        String::from_utf8_lossy(&theme.stdout)
    );

    // 1. A kernel through the server's websocket, as JupyterLab starts it (default kernel).
    let (name, out) = run_in_server_kernel(&venv_python, &base, &token, WHO_AM_I);
    assert_eq!(name, "labup-my-lab");
    let (exe, ld) = parse_who(&out);
    assert_eq!(exe, venv_python.display().to_string());
    assert!(ld.split(':').any(|d| d == link_dir), "the GPU link folder on LD_LIBRARY_PATH: {ld}");

    // 2. A kernel started outside labup by another client (what VS Code does): its own
    // jupyter_client, a clean environment, the venv's kernels found through JUPYTER_PATH.
    let client = p.path("client-venv");
    let uv = &crate::support::shared().uv;
    let made = Command::new(uv)
        .args(["venv", "--quiet", "--python"])
        .arg(&crate::support::shared().python)
        .arg(&client)
        .status()
        .unwrap();
    assert!(made.success());
    let installed = Command::new(uv)
        .args(["pip", "install", "--quiet", "jupyter_client", "--python"])
        .arg(client.join("bin/python"))
        .env("UV_CACHE_DIR", crate::support::shared().cache.join("uv"))
        .status()
        .unwrap();
    assert!(installed.success(), "jupyter_client from PyPI");
    const VIA_CLIENT: &str = r#"
import json, sys
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import start_new_kernel
names = sorted(KernelSpecManager().find_kernel_specs())
km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
out = []
try:
    kc.execute_interactive(sys.argv[2], timeout=120,
        output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print(json.dumps({"names": names, "output": "".join(out)}))
"#;
    let run = Command::new(client.join("bin/python"))
        .args(["-c", VIA_CLIENT, "labup-my-lab", WHO_AM_I])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("JUPYTER_PATH", p.path(".venv/share/jupyter"))
        .output()
        .unwrap();
    assert!(run.status.success(), "jupyter_client: {}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(v["names"].as_array().unwrap().iter().any(|n| n == "labup-my-lab"), "{v}");
    let (exe, ld) = parse_who(v["output"].as_str().unwrap());
    assert_eq!(exe, venv_python.display().to_string(), "the venv's Python, whatever PATH says");
    assert!(ld.split(':').any(|d| d == link_dir), "the link folder without labup: {ld}");

    // A stable token: `restart` keeps it, `--new-token` replaces it, a damaged file is replaced
    // with a warning.
    assert_eq!(jupyter_row(&p)["url"], url.as_str());
    let fresh = p.labup(&["restart", "jupyter", "--new-token"]).ok();
    assert!(fresh.stderr.contains("made a new Jupyter token"), "{}", fresh.stderr);
    let new_url = jupyter_row(&p)["url"].as_str().unwrap().to_string();
    assert_ne!(new_url, url);
    let new_token = new_url.split("token=").nth(1).unwrap().to_string();
    let port = jupyter_row(&p)["port"].as_u64().unwrap();
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{port}/api/status?token={token}")),
        Some(403),
        "the old token is dead"
    );
    assert_eq!(http_get(&format!("http://127.0.0.1:{port}/api/status?token={new_token}")), Some(200));
    p.labup(&["stop"]).ok();
    p.labup(&["up"]).ok();
    let token_of = |u: &str| u.split("token=").nth(1).map(str::to_string);
    // (`port = "auto"` may pick another port; with a fixed port the whole URL is the same.)
    assert_eq!(
        token_of(jupyter_row(&p)["url"].as_str().unwrap()),
        Some(new_token.clone()),
        "stop and up keep the token"
    );
    p.labup(&["stop"]).ok();
    std::fs::write(p.path(".labup/jupyter/token"), "not a token\n").unwrap();
    let up = p.labup(&["up"]).ok();
    assert!(up.stderr.contains("does not hold a token labup wrote: made a new Jupyter token"), "{}", up.stderr);
    assert_ne!(token_of(jupyter_row(&p)["url"].as_str().unwrap()), Some(new_token));

    // `labup open` without a display: the URL on stdout, the tunnel on stderr.
    let open = p.labup(&["open"]).ok();
    assert_eq!(open.stdout.trim(), jupyter_row(&p)["url"].as_str().unwrap());
    let port = jupyter_row(&p)["port"].as_u64().unwrap();
    assert!(open.stderr.contains(&format!("ssh -N -L {port}:127.0.0.1:{port} ")), "{}", open.stderr);
}

/// `uv` run in the project, with the tests' cache.
fn uv_in(p: &Project, args: &[&str]) {
    let s = crate::support::shared();
    let out = Command::new(&s.uv)
        .args(args)
        .current_dir(p.root())
        .env("UV_CACHE_DIR", s.cache.join("uv"))
        .env("UV_PYTHON", &s.python)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .output()
        .unwrap();
    assert!(out.status.success(), "uv {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn venv_python_says(p: &Project, code: &str) -> Result<String, String> {
    let out = Command::new(p.path(".venv/bin/python")).args(["-c", code]).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn pypi_a_package_project_is_installed_editable_and_kept_by_the_exact_sync() {
    // As a new user does it: `uv init --package`, `uv add numpy`, then labup.
    let p = Project::new();
    uv_in(&p, &["init", "--package", "--name", "mypkg", "--vcs", "none", "--no-readme", "."]);
    uv_in(&p, &["add", "--quiet", "numpy"]);
    assert!(p.path("src/mypkg/__init__.py").is_file());
    let plan = p.labup(&["sync", "--dry-run"]).ok();
    assert!(plan.stdout.contains("project: would install `mypkg` from"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("- mypkg"), "the exact sync would remove it: {}", plan.stdout);

    p.sync();
    assert_eq!(venv_python_says(&p, "import mypkg, numpy; print(mypkg.__name__)"), Ok("mypkg".into()));
    let json = p.labup(&["sync", "--dry-run", "--json"]).ok().json();
    assert_eq!(json["action"], "noop");

    // Editable: a change to its source needs no sync, and the sync stays a no-op.
    p.file("src/mypkg/__init__.py", "VALUE = 42\n\ndef main() -> None:\n    print(VALUE)\n");
    assert_eq!(p.sync()["action"], "noop");
    assert_eq!(venv_python_says(&p, "import mypkg; print(mypkg.VALUE)"), Ok("42".into()));
    // Its pyproject.toml is an input: a new entry point arrives with the next sync.
    let pyproject = std::fs::read_to_string(p.path("pyproject.toml")).unwrap();
    let with_script = pyproject.replace("[project.scripts]\n", "[project.scripts]\nmypkg-value = \"mypkg:main\"\n");
    assert_ne!(with_script, pyproject, "uv init --package writes [project.scripts]");
    p.file("pyproject.toml", &with_script);
    assert_eq!(p.sync()["action"], "synced");
    let value = Command::new(p.path(".venv/bin/mypkg-value")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), "42");

    // From scratch, and with pip (`pip install -e . --no-deps` after the lock; not removed as
    // extraneous). pip cannot read uv.lock, so the pyproject's dependencies are the input there.
    // (pip builds it with hatchling from the index: uv's own build backend is the version of the
    // uv that ran `uv init`, which an index may not have yet.)
    std::fs::remove_file(p.path("uv.lock")).unwrap();
    std::fs::remove_dir_all(p.path(".venv")).unwrap();
    p.file(
        "pyproject.toml",
        "[project]\nname = \"mypkg\"\nversion = \"0.1.0\"\nrequires-python = \">=3.8\"\ndependencies = [\"numpy\"]\n\n\
         [project.scripts]\nmypkg-value = \"mypkg:main\"\n\n\
         [build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n",
    );
    p.file("labup.toml", "[python]\ninstaller = \"pip\"\n");
    let out = p.sync();
    assert_eq!(out["action"], "created");
    assert_eq!(venv_python_says(&p, "import mypkg, numpy; print(mypkg.VALUE)"), Ok("42".into()));
    assert!(p.path(".venv/bin/mypkg-value").is_file());
    assert_eq!(p.sync()["action"], "noop");
}

#[test]
fn pypi_jupyter_ai_magics_reach_labups_ollama_stub() {
    // jupyter-ai-magic-commands (Jupyter AI 3's `%%ai`, through LiteLLM) from PyPI; Ollama is the
    // STUB of tests/fixtures/ollama_stub.py, which answers chat requests with a fixed sentence.
    let mut p = Project::new();
    let models = p.path("models");
    std::fs::create_dir_all(&models).unwrap();
    let stub = p.path("stub-bin/ollama");
    p.file(
        "stub-bin/ollama",
        &format!(
            "#!/bin/sh\nexec '{}' '{}' \"$@\"\n",
            crate::support::shared().python.display(),
            crate::support::shared().fixtures.join("ollama_stub.py").display()
        ),
    );
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.set("LABUP_OLLAMA", &stub).set("OLLAMA_MODELS", &models);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    p.file(
        "labup.toml",
        &format!(
            "[project]\nname = \"ai\"\n\n[python]\npackages = [\"ipykernel\", \"jupyter-ai-magic-commands\"]\n\n\
             [services.llm]\nkind = \"ollama\"\nport = {port}\nmodels = [\"llama3.2:1b\"]\n"
        ),
    );
    p.labup(&["up"]).ok();
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path(".venv/share/jupyter/kernels/labup-ai/kernel.json")).unwrap())
            .unwrap();
    assert_eq!(spec["env"]["OLLAMA_API_BASE"], format!("http://127.0.0.1:{port}"));
    const AI: &str = r#"
import json, sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=180)
out = []
def hook(m):
    c = m["content"]
    if m["msg_type"] in ("execute_result", "display_data"):
        out.append(c["data"].get("text/markdown") or c["data"].get("text/plain", ""))
    elif m["msg_type"] == "stream":
        out.append(c["text"])
    elif m["msg_type"] == "error":
        out.append("ERROR " + c["ename"] + ": " + c["evalue"])
try:
    kc.execute_interactive("%load_ext jupyter_ai_magic_commands", timeout=240, output_hook=hook)
    kc.execute_interactive("%%ai\nSay hello", timeout=240, output_hook=hook)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
print(json.dumps("".join(out)))
"#;
    // A clean environment, as another frontend gives it: the kernelspec carries the address.
    let run = Command::new(p.path(".venv/bin/python"))
        .args(["-c", AI, "labup-ai"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", p.root())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let said: String = serde_json::from_slice(&run.stdout).unwrap();
    assert!(said.contains("Hello from the labup Ollama stub (llama3.2:1b)"), "the kernel got: {said}");
    let events = std::fs::read_to_string(models.join("stub-events.log")).unwrap();
    assert!(events.lines().any(|l| l == "chat llama3.2:1b"), "{events}");
}

/// The DOM headless Chromium (Debian's `chromium`) has rendered for `url` after its scripts ran.
fn chromium_dom(url: &str, profile: &std::path::Path) -> String {
    let chromium = crate::support::which("chromium").expect("Debian's chromium (.ci/setup.d/40-chromium.sh)");
    // The flags known to work on these machines: no sandbox as root, no GPU, and no background
    // networking (the machine's network is closed; only the loopback page is loaded).
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=30000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn engine_chromium_opens_the_printed_token_url_into_jupyterlab_with_the_project_kernel() {
    let p = Project::new();
    p.with_jupyter();
    p.file(
        "labup.toml",
        "[project]\nname = \"Browser Demo\"\n\n[services.jupyter]\nkind = \"jupyter\"\nport = \"auto\"\n",
    );
    let up = p.labup(&["up"]).ok();
    let url = jupyter_row(&p)["url"].as_str().unwrap().to_string();
    assert!(up.stdout.contains(&url), "the printed table has the token URL: {}", up.stdout);
    let minor = p.sync()["python"].as_str().unwrap().rsplit_once('.').unwrap().0.to_string();

    let dom = chromium_dom(&url, &p.path("chromium-profile"));
    assert!(dom.contains("jp-LauncherCard"), "JupyterLab's launcher did not render: {}", &dom[..dom.len().min(2000)]);
    assert!(
        dom.contains(&format!("title=\"Python {minor} (Browser Demo)\"")),
        "the launcher shows the project kernel: {:?}",
        dom.match_indices("jp-LauncherCard-label").map(|(i, _)| &dom[i..(i + 80).min(dom.len())]).collect::<Vec<_>>()
    );
    // The same page without the token is the login page: the check above saw the real thing.
    let bare = url.split('?').next().unwrap();
    let login = chromium_dom(bare, &p.path("chromium-profile-2"));
    assert!(!login.contains("jp-LauncherCard"), "JupyterLab rendered without the token");
    assert!(login.contains("password") || login.contains("token"), "{}", &login[..login.len().min(2000)]);
}

/// The venv's site-packages.
fn site_packages(p: &Project) -> std::path::PathBuf {
    std::fs::read_dir(p.path(".venv/lib"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|d| d.is_dir())
        .unwrap()
}

#[test]
fn kernelspec_follows_every_sync_renames_with_the_project_and_leaves_foreign_ones_alone() {
    // Offline: the fixture wheels, and an `ipykernel` folder put into site-packages by hand (the
    // kernelspec is written only where ipykernel can run it). A fake NixOS GPU host.
    let host = fake_nixos_gpu_host();
    let mut p = Project::new();
    p.set("LABUP_FS_ROOT", host.path());
    p.requirements("alpha==1.0\n");
    p.file("labup.toml", "[project]\nname = \"Data Sci!\"\n");
    p.sync();
    let kernels = p.path(".venv/share/jupyter/kernels");
    assert!(!kernels.join("labup-data-sci").exists(), "no ipykernel, no kernelspec");
    std::fs::create_dir_all(site_packages(&p).join("ipykernel")).unwrap();

    // (site-packages changed by hand: a sync, which finds nothing to install or remove.)
    p.sync();
    let file = kernels.join("labup-data-sci/kernel.json");
    assert!(file.is_file());
    std::fs::remove_dir_all(kernels.join("labup-data-sci")).unwrap();
    let noop = p.sync();
    assert_eq!(noop["action"], "noop");
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("written by a no-op sync")).unwrap();
    let minor = noop["python"].as_str().unwrap().rsplit_once('.').unwrap().0.to_string();
    assert_eq!(spec["display_name"], format!("Python {minor} (Data Sci!)"));
    assert_eq!(spec["argv"][0], p.path(".venv/bin/python").display().to_string());
    assert_eq!(spec["argv"].as_array().unwrap()[1..5], ["-m", "ipykernel_launcher", "-f", "{connection_file}"]);
    assert_eq!(spec["env"]["LD_LIBRARY_PATH"], p.path(".labup/driver/565.77").display().to_string());
    let stamp = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(p.sync()["action"], "noop");
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), stamp, "unchanged content is not rewritten");

    // Another project name: the old kernelspec goes, the new one comes; ipykernel's own stays.
    std::fs::create_dir_all(kernels.join("python3")).unwrap();
    std::fs::write(kernels.join("python3/kernel.json"), "{\"argv\": [\"python\"]}").unwrap();
    p.file("labup.toml", "[project]\nname = \"renamed\"\n");
    p.sync();
    assert!(!kernels.join("labup-data-sci").exists());
    assert!(kernels.join("labup-renamed/kernel.json").is_file());
    assert!(kernels.join("python3/kernel.json").is_file());

    // A folder with our name that labup did not write: a warning, and it is left as it was.
    p.file("labup.toml", "[project]\nname = \"theirs\"\n");
    p.file(".venv/share/jupyter/kernels/labup-theirs/kernel.json", "{\"argv\": [\"/their/python\"]}");
    let out = p.labup(&["sync"]).ok();
    assert!(out.stderr.contains("labup-theirs is not labup's"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(kernels.join("labup-theirs/kernel.json")).unwrap(),
        "{\"argv\": [\"/their/python\"]}"
    );

    // `labup sync --dry-run` writes nothing.
    p.file("labup.toml", "[project]\nname = \"dry\"\n");
    p.labup(&["sync", "--dry-run"]).ok();
    assert!(!kernels.join("labup-dry").exists());
}

const WEB: &str =
    "[services.web]\ncommand = [\"python\", \"-m\", \"http.server\", \"--bind\", \"127.0.0.1\", \"$PORT\"]\n\
                   port = \"auto\"\nready = { http = \"/\" }\n";

#[test]
fn open_opens_a_running_service_again_or_says_how_to_reach_it() {
    let mut p = Project::new();
    p.file("labup.toml", WEB);
    let no_jupyter = p.labup(&["open"]).code(2);
    assert!(no_jupyter.stderr.contains("no Jupyter service is declared"), "{}", no_jupyter.stderr);
    let not_running = p.labup(&["open", "web"]).code(1);
    assert!(not_running.stderr.contains("`web` is not running"), "{}", not_running.stderr);
    assert!(not_running.stderr.contains("labup up web"), "{}", not_running.stderr);
    assert!(p.labup(&["open", "wbe"]).code(2).stderr.contains("did you mean `web`?"));

    p.labup(&["up"]).ok();
    let url = p.labup(&["status", "--json"]).ok().json()["services"][0]["url"].as_str().unwrap().to_string();
    let port = url.trim_end_matches('/').rsplit(':').next().unwrap().to_string();
    // With a display and an opener: the URL goes to it.
    let log = p.path("opened.log");
    p.file("fake-bin/xdg-open", &format!("#!/bin/sh\necho \"$1\" >> '{}'\n", log.display()));
    std::fs::set_permissions(p.path("fake-bin/xdg-open"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", p.path("fake-bin").display(), std::env::var("PATH").unwrap_or_default());
    p.set("PATH", path).set("DISPLAY", ":0").unset("LABUP_NO_BROWSER");
    let opened = p.labup(&["open", "web"]).ok();
    assert_eq!(opened.stdout.trim(), url);
    assert!(wait_until(5, || std::fs::read_to_string(&log).is_ok_and(|t| t.trim() == url)), "the opener got the URL");
    // Over SSH: nothing is opened; the URL and the tunnel are printed.
    p.set("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22");
    let ssh = p.labup(&["open", "web"]).ok();
    assert_eq!(ssh.stdout.trim(), url);
    assert!(ssh.stderr.contains(&format!("ssh -N -L {port}:127.0.0.1:{port} ")), "{}", ssh.stderr);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1, "over SSH nothing was opened");
}
