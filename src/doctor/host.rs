//! Checks of the machine around the project: state folder permissions, service ports, WSL, Ollama.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::{Context, Verdict};
use crate::config::{display_path, Port, ServiceKind};
use crate::services::ports;
use crate::services::state::RunDir;

/// Ollama's default port.
pub(crate) const OLLAMA_PORT: u16 = 11434;

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
}

/// `.labup` is private (0700) and the Jupyter token file is 0600.
pub(crate) fn state(ctx: &Context) -> Verdict {
    let (dir, token) = (ctx.ws.layout.state(), ctx.ws.layout.jupyter_token());
    state_verdict((&display_path(dir), mode(dir)), (&display_path(&token), mode(&token)))
}

/// The verdict from the folder's and the token's modes (pure).
pub(crate) fn state_verdict(dir: (&str, Option<u32>), token: (&str, Option<u32>)) -> Verdict {
    let Some(dir_mode) = dir.1 else {
        return Verdict::ok(format!("{} does not exist yet (labup creates it private)", dir.0));
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if dir_mode & 0o077 != 0 {
        problems.push(format!("{} is {dir_mode:04o}: other users can look inside", dir.0));
        fixes.push(format!("chmod 700 {}", dir.0));
    }
    if let Some(m) = token.1.filter(|m| m & 0o077 != 0) {
        problems.push(format!("{} is {m:04o}: other users can read the Jupyter token", token.0));
        fixes.push(format!("chmod 600 {}", token.0));
    }
    if problems.is_empty() {
        let what = if token.1.is_some() {
            format!("{} and its token are private", dir.0)
        } else {
            format!("{} is private", dir.0)
        };
        return Verdict::ok(what);
    }
    let message = if problems.len() == 1 {
        problems[0].clone()
    } else {
        "the state folder and the token are readable by others".into()
    };
    Verdict::warn(message).fix(fixes.join(" && ")).details(if problems.len() > 1 { problems } else { Vec::new() })
}

/// Who holds a declared port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Nobody: the service can start.
    Free,
    /// One of our services (its name).
    Ours(String),
    /// An Ollama server that answers (its version): labup reuses it.
    Ollama(String),
    /// Another process (its description).
    Foreign(String),
}

/// Each enabled service's fixed port is free or held by our own service.
pub(crate) fn ports(ctx: &Context) -> Verdict {
    let state = RunDir::of(&ctx.ws.layout).read();
    let mut found = Vec::new();
    for svc in ctx.ws.config.enabled_services() {
        let Some(Port::Fixed(port)) = svc.port else { continue };
        let holder = if ports::is_free(port) {
            Holder::Free
        } else if let Some((name, _)) = state.services.iter().find(|(_, r)| r.port == Some(port) && r.running()) {
            Holder::Ours(name.clone())
        } else if let Some(v) = (svc.kind == ServiceKind::Ollama).then(|| ollama_version(port)).flatten() {
            Holder::Ollama(v)
        } else {
            Holder::Foreign(ports::describe_holder(port))
        };
        found.push((svc.name.clone(), port, holder));
    }
    ports_verdict(&found)
}

/// The verdict from each service's port and holder (pure).
pub(crate) fn ports_verdict(found: &[(String, u16, Holder)]) -> Verdict {
    if found.is_empty() {
        return Verdict::skip("no service declares a fixed port");
    }
    let mut details = Vec::new();
    let mut taken = Vec::new();
    for (name, port, holder) in found {
        details.push(match holder {
            Holder::Free => format!("{name}: port {port} is free"),
            Holder::Ours(by) if by == name => format!("{name}: port {port} is held by the running service"),
            Holder::Ours(by) => format!("{name}: port {port} is held by our service {by}"),
            Holder::Ollama(v) => format!("{name}: port {port} has an Ollama {v} server, which labup reuses"),
            Holder::Foreign(who) => {
                taken.push((name, port, who));
                format!("{name}: port {port} is taken by {who}")
            }
        });
    }
    match taken.as_slice() {
        [] => Verdict::ok(format!("{} free or ours", crate::ui::count(found.len(), "port"))).details(details),
        [(name, port, who)] => Verdict::fail(format!("port {port} of service {name} is taken by {who}"))
            .fix(format!("stop that process, or set `port = \"auto\"` (or another port) in `[services.{name}]`"))
            .details(details),
        many => Verdict::fail(format!("{} ports of declared services are taken by other processes", many.len()))
            .fix("stop those processes, or set `port = \"auto\"` for those services in labup.toml")
            .details(details),
    }
}

/// What the WSL check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WslFacts {
    /// `/proc/version`.
    pub(crate) proc_version: String,
    /// `WSL_DISTRO_NAME`.
    pub(crate) distro: Option<String>,
    /// The project folder.
    pub(crate) root: std::path::PathBuf,
    /// `wslview` or `explorer.exe`, whichever is on PATH.
    pub(crate) bridge: Option<String>,
}

/// Under WSL: the project is on the Linux filesystem and a browser bridge exists.
pub(crate) fn wsl(ctx: &Context) -> Verdict {
    let path = ctx.parent.get("PATH").cloned().unwrap_or_default();
    let bridge = ["wslview", "explorer.exe"]
        .into_iter()
        .find(|name| path.split(':').filter(|d| !d.is_empty()).any(|d| Path::new(d).join(name).is_file()))
        .map(str::to_string);
    wsl_verdict(&WslFacts {
        proc_version: std::fs::read_to_string(ctx.host("/proc/version")).unwrap_or_default(),
        distro: ctx.parent.get("WSL_DISTRO_NAME").filter(|v| !v.is_empty()).cloned(),
        root: ctx.ws.config.root.clone(),
        bridge,
    })
}

/// The Windows drive a path is on (`/mnt/c/...` → `c`).
pub(crate) fn windows_drive(path: &Path) -> Option<char> {
    let rest = path.strip_prefix("/mnt").ok()?;
    let first = rest.components().next()?.as_os_str().to_str()?;
    let mut chars = first.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => None,
    }
}

/// The verdict from the WSL facts (pure).
pub(crate) fn wsl_verdict(f: &WslFacts) -> Verdict {
    if !f.proc_version.to_lowercase().contains("microsoft") && f.distro.is_none() {
        return Verdict::skip("not WSL");
    }
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if let Some(drive) = windows_drive(&f.root) {
        problems.push(format!(
            "the project is on the Windows drive /mnt/{drive}, which WSL reaches over a slow 9P filesystem"
        ));
        fixes.push("move the project into your Linux home (`~/…`)".to_string());
    }
    if f.bridge.is_none() {
        problems.push("no browser bridge: neither `wslview` nor `explorer.exe` is on PATH".to_string());
        fixes.push("install wslu (`sudo apt install wslu`) for `wslview`, or enable Windows PATH interop".to_string());
    }
    match problems.len() {
        0 => Verdict::ok(format!(
            "WSL, project on the Linux filesystem, browser through `{}`",
            f.bridge.as_deref().unwrap_or("?")
        )),
        1 => Verdict::warn(problems.remove(0)).fix(fixes.remove(0)),
        _ => Verdict::warn("the project is on a Windows drive and there is no browser bridge")
            .fix(fixes.join("; "))
            .details(problems),
    }
}

/// An Ollama server answers (`GET /api/version`), or is not expected to.
pub(crate) fn ollama(ctx: &Context) -> Verdict {
    let declared = ctx.ws.config.enabled_services().find(|s| s.kind == ServiceKind::Ollama);
    let port = match declared.and_then(|s| s.port) {
        Some(Port::Fixed(p)) => p,
        Some(Port::Auto) => {
            let state = RunDir::of(&ctx.ws.layout).read();
            declared.and_then(|s| state.services.get(&s.name)?.port).unwrap_or(OLLAMA_PORT)
        }
        None => OLLAMA_PORT,
    };
    ollama_verdict(declared.map(|s| s.name.as_str()), port, ollama_version(port).as_deref())
}

/// The verdict from the declared service (its name), the port and the server's answer (pure).
pub(crate) fn ollama_verdict(declared: Option<&str>, port: u16, version: Option<&str>) -> Verdict {
    match (version, declared) {
        (Some(v), _) => Verdict::ok(format!("Ollama {v} answers on 127.0.0.1:{port}")),
        (None, Some(name)) => {
            Verdict::fail(format!("no Ollama server answers on 127.0.0.1:{port}")).fix(format!("labup up {name}"))
        }
        (None, None) => Verdict::skip(format!("no Ollama service declared, and none answers on {port}")),
    }
}

/// The `version` of Ollama's `GET /api/version`, if a server answers on the port.
pub(crate) fn ollama_version(port: u16) -> Option<String> {
    crate::services::ollama::Client::new(port, Some(Duration::from_secs(2))).version()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn state_folder_modes() {
        assert_eq!(state_verdict((".labup", None), (".labup/jupyter/token", None)).status, Status::Ok);
        assert_eq!(state_verdict((".labup", Some(0o700)), (".labup/jupyter/token", Some(0o600))).status, Status::Ok);
        let v = state_verdict((".labup", Some(0o755)), (".labup/jupyter/token", None));
        assert_eq!((v.status, v.fix.as_deref()), (Status::Warn, Some("chmod 700 .labup")));
        let v = state_verdict((".labup", Some(0o700)), (".labup/jupyter/token", Some(0o644)));
        assert_eq!(v.message, ".labup/jupyter/token is 0644: other users can read the Jupyter token");
        assert_eq!(v.fix.as_deref(), Some("chmod 600 .labup/jupyter/token"));
        let v = state_verdict((".labup", Some(0o777)), (".labup/jupyter/token", Some(0o644)));
        assert_eq!(v.fix.as_deref(), Some("chmod 700 .labup && chmod 600 .labup/jupyter/token"));
        assert_eq!(v.details.len(), 2);
    }

    #[test]
    fn state_folder_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join(".labup");
        std::fs::create_dir_all(dir.join("jupyter")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("jupyter/token"), "t").unwrap();
        std::fs::set_permissions(dir.join("jupyter/token"), std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!((mode(&dir), mode(&dir.join("jupyter/token"))), (Some(0o755), Some(0o640)));
    }

    #[test]
    fn ports_free_ours_or_foreign() {
        assert_eq!(ports_verdict(&[]).status, Status::Skip);
        let ok = ports_verdict(&[
            ("jupyter".into(), 8888, Holder::Free),
            ("app".into(), 5001, Holder::Ours("app".into())),
            ("ollama".into(), 11434, Holder::Ollama("0.5.7".into())),
        ]);
        assert_eq!(ok.status, Status::Ok);
        assert_eq!(ok.message, "3 ports free or ours");
        let v = ports_verdict(&[("app".into(), 5001, Holder::Foreign("pid 42 (`python -m http.server 5001`)".into()))]);
        assert_eq!(v.status, Status::Fail);
        assert_eq!(v.message, "port 5001 of service app is taken by pid 42 (`python -m http.server 5001`)");
        assert!(v.fix.unwrap().contains("[services.app]"));
    }

    #[test]
    fn a_real_foreign_listener_is_described() {
        let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!ports::is_free(port));
        assert!(ports::describe_holder(port).starts_with("pid "));
    }

    fn wsl_facts(root: &str, bridge: Option<&str>) -> WslFacts {
        WslFacts {
            proc_version: "Linux version 5.15.167.4-microsoft-standard-WSL2".into(),
            distro: None,
            root: root.into(),
            bridge: bridge.map(str::to_string),
        }
    }

    #[test]
    fn wsl_checks() {
        let not = WslFacts { proc_version: "Linux version 6.1.0-18-amd64".into(), ..wsl_facts("/home/a/p", None) };
        assert_eq!(wsl_verdict(&not).status, Status::Skip);
        assert_eq!(wsl_verdict(&wsl_facts("/home/a/p", Some("wslview"))).status, Status::Ok);
        let v = wsl_verdict(&wsl_facts("/mnt/c/Users/a/p", Some("explorer.exe")));
        assert_eq!(v.status, Status::Warn);
        assert!(v.message.contains("/mnt/c"), "{}", v.message);
        let v = wsl_verdict(&wsl_facts("/home/a/p", None));
        assert!(v.fix.unwrap().contains("wslu"));
        assert_eq!(wsl_verdict(&wsl_facts("/mnt/d/p", None)).details.len(), 2);
        let by_env = WslFacts {
            proc_version: String::new(),
            distro: Some("Ubuntu".into()),
            ..wsl_facts("/mnt/wsl/x", Some("wslview"))
        };
        assert_eq!(wsl_verdict(&by_env).status, Status::Ok, "/mnt/wsl is not a drive");
        assert_eq!(windows_drive(Path::new("/mnt/c")), Some('c'));
        assert_eq!(windows_drive(Path::new("/mnt/data/x")), None);
    }

    #[test]
    fn ollama_verdicts() {
        assert_eq!(ollama_verdict(None, 11434, Some("0.5.7")).message, "Ollama 0.5.7 answers on 127.0.0.1:11434");
        assert_eq!(ollama_verdict(None, 11434, None).status, Status::Skip);
        let v = ollama_verdict(Some("llm"), 11434, None);
        assert_eq!((v.status, v.fix.as_deref()), (Status::Fail, Some("labup up llm")));
    }

    #[test]
    fn reads_an_ollama_version_from_a_stub_server() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"version\":\"0.5.7\"}").unwrap();
        });
        assert_eq!(ollama_version(port).as_deref(), Some("0.5.7"));
        server.join().unwrap();
    }
}
