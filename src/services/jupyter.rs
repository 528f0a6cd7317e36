//! `kind = "jupyter"`: JupyterLab from the venv, secure by default.
//!
//! The flakes labup replaces turn the token, the password and the XSRF check off and bind every
//! interface, so any web page the user visits can run code as them. Here: a random token per
//! workspace (`.labup/jupyter/token`, 0600) passed in `JUPYTER_TOKEN` (the environment, never the
//! command line, so `ps` does not show it), 127.0.0.1 only, XSRF on, `port_retries=0` (a busy port
//! is an error naming its holder, not a silent move to the next port).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Ready, Service};

/// The variable Jupyter reads its token from.
pub const TOKEN_VAR: &str = "JUPYTER_TOKEN";
/// The variable that moves Jupyter's runtime files (server info, kernel connection files).
pub const RUNTIME_VAR: &str = "JUPYTER_RUNTIME_DIR";

/// Where Jupyter's files live in the state folder.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `.labup/jupyter`.
    pub dir: PathBuf,
}

impl Paths {
    /// The Jupyter folder of a project (not created).
    pub fn of(root: &Path) -> Paths {
        Paths { dir: crate::project::state_dir(root).join("jupyter") }
    }

    /// The token file.
    pub fn token(&self) -> PathBuf {
        self.dir.join("token")
    }

    /// Jupyter's runtime folder (`jpserver-<pid>.json`, kernel connection files).
    pub fn runtime(&self) -> PathBuf {
        self.dir.join("runtime")
    }
}

/// The workspace token: read from its file, or created (random, 0600) on first use. It survives
/// restarts so open browser tabs keep working. A file readable by others is made private again.
pub fn token(root: &Path) -> Result<String> {
    let paths = Paths::of(root);
    crate::project::ensure_state_dir(root, "jupyter")?;
    let file = paths.token();
    if let Ok(text) = fs::read_to_string(&file) {
        let token = text.trim().to_string();
        if is_valid_token(&token) {
            let mode = fs::metadata(&file)?.permissions().mode() & 0o777;
            if mode != 0o600 {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("failed to make {} private", file.display()))?;
            }
            return Ok(token);
        }
    }
    let token = random_hex(24)?;
    let tmp = file.with_extension(format!("labup-new-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    out.write_all(format!("{token}\n").as_bytes())?;
    out.sync_all()?;
    fs::rename(&tmp, &file).with_context(|| format!("failed to write {}", file.display()))?;
    Ok(token)
}

/// The workspace token when its file exists (nothing is created).
pub fn existing_token(root: &Path) -> Option<String> {
    let token = fs::read_to_string(Paths::of(root).token()).ok()?.trim().to_string();
    is_valid_token(&token).then_some(token)
}

/// A token labup would have written: 32 to 128 hex digits.
fn is_valid_token(token: &str) -> bool {
    (32..=128).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `bytes` random bytes from the kernel, as hex.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("failed to read random bytes from /dev/urandom")?;
    Ok(crate::python::lockfile::hex(&buf))
}

/// What a Jupyter service runs: argv, extra environment, readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Program and arguments (`$PORT` is filled in by the supervisor).
    pub argv: Vec<String>,
    /// Variables to add.
    pub env: Vec<(String, String)>,
    /// Readiness: `/api` answers (without auth) …
    pub ready: Ready,
    /// … and `jpserver-<pid>.json` in this folder names the port.
    pub runtime_dir: PathBuf,
}

/// The JupyterLab command line for `service` (pure: the token and root-ness are passed in).
pub fn launch(service: &Service, venv: &Path, paths: &Paths, token: &str, as_root: bool) -> Launch {
    let root = service.root.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut argv = vec![
        venv.join("bin/jupyter-lab").display().to_string(),
        "--no-browser".into(),
        "--ServerApp.ip=127.0.0.1".into(),
        "--ServerApp.port=$PORT".into(),
        // A busy port is an error, not a silent move to the next one (the default is 50 retries).
        "--ServerApp.port_retries=0".into(),
        format!("--ServerApp.root_dir={}", root.display()),
        // On, whatever a user config file says: it is what stops other web pages posting to us.
        "--ServerApp.disable_check_xsrf=False".into(),
    ];
    if as_root {
        argv.push("--allow-root".into());
    }
    Launch {
        argv,
        env: vec![(TOKEN_VAR.into(), token.into()), (RUNTIME_VAR.into(), paths.runtime().display().to_string())],
        ready: Ready::Http("/api".into()),
        runtime_dir: paths.runtime(),
    }
}

/// The URL that opens JupyterLab, token included.
pub fn url(port: u16, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("http://127.0.0.1:{port}/lab?token={t}"),
        None => format!("http://127.0.0.1:{port}/lab"),
    }
}

/// Whether `jpserver-<pid>.json` exists in `dir` for one of `pids` and names `port`: the server
/// that answers `/api` is ours and has finished starting.
pub fn runtime_file_names_port(dir: &Path, pids: &[i32], port: u16) -> bool {
    pids.iter().any(|pid| {
        fs::read(dir.join(format!("jpserver-{pid}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("port")?.as_u64())
            == Some(u64::from(port))
    })
}

/// Removes server files left by servers that no longer run (Jupyter leaves them on SIGKILL).
pub fn clean_stale_runtime_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("jpserver-") else { continue };
        let pid = rest.split('.').next().and_then(|p| p.parse::<i32>().ok());
        // kill(pid, 0): "no such process" is the only answer that means dead (EPERM: alive).
        let dead =
            |p: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None) == Err(nix::errno::Errno::ESRCH);
        if pid.is_some_and(dead) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(root: &Path) -> Service {
        let dir = root.to_path_buf();
        fs::write(dir.join("labup.toml"), "[services.nb]\nkind = \"jupyter\"\nroot = \"notebooks\"\n").unwrap();
        let config = crate::config::Config::load(&dir).unwrap();
        config.services[0].clone()
    }

    #[test]
    fn token_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let t1 = token(dir.path()).unwrap();
        assert_eq!(t1.len(), 48);
        let file = Paths::of(dir.path()).token();
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(token(dir.path()).unwrap(), t1, "the token survives");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "made private again");
        fs::write(&file, "short\n").unwrap();
        let t2 = token(dir.path()).unwrap();
        assert_ne!(t2, t1, "a damaged token file is replaced");
    }

    #[test]
    fn launch_is_local_token_in_env_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let paths = Paths::of(dir.path());
        let l = launch(&svc, &dir.path().join(".venv"), &paths, "abc123", false);
        assert!(l.argv[0].ends_with(".venv/bin/jupyter-lab"));
        assert!(l.argv.contains(&"--ServerApp.ip=127.0.0.1".to_string()));
        assert!(l.argv.contains(&"--ServerApp.port_retries=0".to_string()));
        assert!(l.argv.contains(&format!("--ServerApp.root_dir={}", dir.path().join("notebooks").display())));
        assert!(!l.argv.iter().any(|a| a.contains("abc123")), "the token never goes on the command line");
        assert!(!l.argv.contains(&"--allow-root".to_string()));
        assert!(l.env.contains(&(TOKEN_VAR.to_string(), "abc123".to_string())));
        assert_eq!(l.ready, Ready::Http("/api".into()));
        let root = launch(&svc, &dir.path().join(".venv"), &paths, "abc123", true);
        assert_eq!(root.argv.last().map(String::as_str), Some("--allow-root"));
    }

    #[test]
    fn runtime_file_must_be_ours_and_name_the_port() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("jpserver-42.json"), r#"{"port": 8888, "pid": 42}"#).unwrap();
        assert!(runtime_file_names_port(dir.path(), &[7, 42], 8888));
        assert!(!runtime_file_names_port(dir.path(), &[7], 8888), "another pid's file");
        assert!(!runtime_file_names_port(dir.path(), &[42], 8889), "another port");
    }

    #[test]
    fn stale_runtime_files_go() {
        let dir = tempfile::tempdir().unwrap();
        let live = std::process::id();
        for name in [format!("jpserver-{live}.json"), "jpserver-999999999.json".into(), "kernel-x.json".into()] {
            fs::write(dir.path().join(name), "{}").unwrap();
        }
        clean_stale_runtime_files(dir.path());
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [format!("jpserver-{live}.json"), "kernel-x.json".into()]);
    }

    #[test]
    fn url_carries_the_token() {
        assert_eq!(url(8888, Some("t")), "http://127.0.0.1:8888/lab?token=t");
    }
}
