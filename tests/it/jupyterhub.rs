//! `labup jupyterhub-singleuser` under a real JupyterHub (`engine_jupyterhub_*`: the hub from
//! PyPI and configurable-http-proxy from npm, installed by `.ci/setup.d/51-jupyterhub.sh`; the
//! workspace's sync needs PyPI too), and its refusals outside a hub or a project.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{wait_until, Project};

/// Where the setup script put the hub's venv and the proxy.
fn hub_home() -> PathBuf {
    let dir = PathBuf::from(std::env::var("LABUP_CI_HUB").unwrap_or_else(|_| "/var/cache/labup-ci/jupyterhub".into()));
    assert!(
        dir.join("venv/bin/jupyterhub").is_file()
            && dir.join("proxy/node_modules/.bin/configurable-http-proxy").is_file(),
        "this test needs JupyterHub and configurable-http-proxy in {}: run .ci/setup.d/51-jupyterhub.sh",
        dir.display()
    );
    dir
}

/// Free ports on 127.0.0.1 (all held at once, so they differ).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

/// The hub process; stopped (SIGTERM, then SIGKILL) when the test ends, passed or not. The hub
/// stops the proxy and the servers it spawned itself.
struct Hub {
    child: Child,
    log: PathBuf,
}

impl Hub {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" 302 GET ")).collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Hub {
    /// labup's own lines in the hub's log (the spawned command's stderr goes there).
    fn labup_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter(|l| l.starts_with("labup: ")).map(str::to_string).collect()
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let stopped = wait_until(20, || matches!(self.child.try_wait(), Ok(Some(_))));
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        // A start waits for the server (the first one syncs the workspace from PyPI).
        .timeout_global(Some(Duration::from_secs(900)))
        .build()
        .into()
}

/// One request; `(status, body)`, status 0 when nothing answered.
fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let agent = agent();
    let auth = token.map(|t| format!("token {t}"));
    let result = match method {
        "GET" => {
            let mut r = agent.get(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        "DELETE" => {
            let mut r = agent.delete(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            match body {
                Some(b) => r.header("Content-Type", "application/json").send(b),
                None => r.send_empty(),
            }
        }
    };
    match result {
        Ok(mut resp) => (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// Processes whose command line names `root` (the single-user server and kernels run the
/// project venv's programs), from /proc.
fn processes_naming(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry.file_name().to_string_lossy().parse::<i32>().is_err() {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&std::fs::read(entry.path().join("cmdline")).unwrap_or_default())
            .replace('\0', " ");
        if cmdline.contains(&root) {
            out.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    out
}

/// Runs `code` in kernel `id` over the kernel's websocket (through the proxy, with the token)
/// and returns what it printed; the client is tornado from the hub's venv.
fn run_in_kernel(hub: &Path, base: &str, token: &str, id: &str, code: &str) -> String {
    let script = r#"
import asyncio, json, sys, uuid
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
url, token, code = sys.argv[1:4]
async def main():
    ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": "token " + token}))
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    while True:
        msg = json.loads(await asyncio.wait_for(ws.read_message(), 60))
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            print(msg["content"]["text"].strip())
            return
        if msg["msg_type"] == "error":
            sys.exit("kernel error: " + msg["content"]["evalue"])
asyncio.run(main())
"#;
    let url = format!("{}/api/kernels/{id}/channels", base.replacen("http://", "ws://", 1));
    let out = Command::new(hub.join("venv/bin/python")).args(["-c", script, &url, token, code]).output().unwrap();
    assert!(out.status.success(), "kernel client: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Variables the single-user side needs from the test's own environment (a TLS proxy's CA for
/// PyPI, an index): LocalProcessSpawner passes only a few variables on, so they go in
/// `Spawner.environment`, as a hub admin would put them.
const PASSED: [&str; 12] = [
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_NATIVE_TLS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "https_proxy",
];

#[test]
fn engine_jupyterhub_serves_the_workspace_with_hub_auth_and_stops_clean() {
    let home = hub_home();
    let mut p = Project::new();
    p.file("labup.toml", "[project]\nname = \"hubws\"\n");
    p.set("PIP_NO_INPUT", "1");
    let hubdir = tempfile::Builder::new().prefix("labup-hub-").tempdir().unwrap();
    let [proxy_port, api_port, hub_port] = free_ports::<3>();
    let token = "7a3f0c5e9b1d4f2a8c6e0b3d5f7a9c1e";
    let mut env: Vec<(String, String)> = p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.extend(PASSED.iter().filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v))));
    let env_py: Vec<String> = env.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
    let config = format!(
        r#"c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.command = [{proxy:?}]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"root"}}
c.Authenticator.admin_users = {{"root"}}
c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cmd = [{labup:?}, "--project", {root:?}, "jupyterhub-singleuser"]
c.Spawner.environment = {{{env}}}
# The first start syncs the workspace from PyPI (JupyterHub, JupyterLab).
c.Spawner.start_timeout = 900
c.Spawner.http_timeout = 300
# The API answers 201 once the server is up (202 "pending" after the default 10 s).
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 600}}
c.JupyterHub.services = [{{"name": "tester", "api_token": "{token}"}}]
c.JupyterHub.load_roles = [{{"name": "tester-role", "services": ["tester"],
    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}}]
"#,
        proxy = home.join("proxy/node_modules/.bin/configurable-http-proxy").display().to_string(),
        labup = env!("CARGO_BIN_EXE_labup"),
        root = p.root().display().to_string(),
        env = env_py.join(", "),
    );
    std::fs::write(hubdir.path().join("jupyterhub_config.py"), config).unwrap();
    let log = hubdir.path().join("hub.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(home.join("venv/bin/jupyterhub"))
        .args(["-f", "jupyterhub_config.py"])
        .current_dir(hubdir.path())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let hub = Hub { child, log };
    let base = format!("http://127.0.0.1:{proxy_port}");
    assert!(wait_until(120, || call("GET", &format!("{base}/hub/api"), None, None).0 == 200), "{}", hub.log_tail());

    let server = format!("{base}/hub/api/users/root/server");
    let status = format!("{base}/user/root/api/status");
    let start = || {
        let asked = Instant::now();
        let (code, body) = call("POST", &server, Some(token), None);
        assert_eq!(code, 201, "POST server: {body}\n{}", hub.log_tail());
        let up = wait_until(900, || call("GET", &status, Some(token), None).0 == 200);
        assert!(up, "the user's server never answered through the proxy:\n{}", hub.log_tail());
        asked.elapsed()
    };
    let stop = || {
        let (code, body) = call("DELETE", &server, Some(token), None);
        assert!([202, 204].contains(&code), "DELETE server: {code} {body}\n{}", hub.log_tail());
        let gone = wait_until(60, || processes_naming(p.root()).is_empty());
        assert!(gone, "left after DELETE: {:?}", processes_naming(p.root()));
    };

    let first = start();
    eprintln!(
        "measured: hub server start through the API to 200, first (syncs the workspace): {} ms",
        first.as_millis()
    );
    let (code, _) = call("GET", &status, None, None);
    assert_ne!(code, 200, "without the hub's auth the server must not answer");
    let (code, _) = call("GET", &status, Some("not-the-token-0000000000000000"), None);
    assert_ne!(code, 200, "a wrong token must not pass");
    assert!(p.path(".venv/bin/jupyterhub-singleuser").is_file(), "the workspace venv has the single-user server");
    assert!(!processes_naming(p.root()).is_empty(), "the server runs from the project venv");

    let (code, body) = call("POST", &format!("{base}/user/root/api/kernels"), Some(token), Some("{}"));
    assert_eq!(code, 201, "start a kernel: {body}\n{}", hub.log_tail());
    let kernel: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = kernel["id"].as_str().unwrap();
    let prefix = run_in_kernel(&home, &format!("{base}/user/root"), token, id, "import sys; print(sys.prefix)");
    assert_eq!(Path::new(&prefix), p.path(".venv"), "the kernel runs the project venv's Python");
    stop();

    let second = start();
    eprintln!("measured: hub server start through the API to 200, again (venv synced): {} ms", second.as_millis());
    let lines = hub.labup_lines();
    eprintln!("{}", lines.join("\n"));
    assert!(
        lines.last().is_some_and(|l| l.contains("(noop)")),
        "the second start finds the venv synced (the first run's bytecode does not count as a change): {lines:?}"
    );
    stop();
    drop(hub);
}

#[test]
fn jupyterhub_singleuser_refuses_outside_a_hub_or_a_project() {
    let mut p = Project::new();
    // Not a project (only labup.local.toml, which is not a marker), inside a "hub".
    p.set("JUPYTERHUB_API_TOKEN", "x").set("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:1/");
    let before = p.listing();
    p.labup(&["jupyterhub-singleuser", "--debug"]).code(2).stderr_has("is not a project");
    assert_eq!(p.listing(), before);
    // A project, outside a hub.
    p.file("requirements.txt", "");
    p.unset("JUPYTERHUB_API_TOKEN").unset("JUPYTERHUB_SERVICE_URL");
    let before = p.listing();
    p.labup(&["jupyterhub-singleuser", "--port=1", "-x"]).code(2).stderr_has("runs under JupyterHub");
    assert_eq!(p.listing(), before, "nothing written, no venv made");
}
