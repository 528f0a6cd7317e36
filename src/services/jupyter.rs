//! `kind = "jupyter"`: JupyterLab from the venv, secure by default.
//!
//! The flakes labup replaces turn the token, the password and the XSRF check off and bind every
//! interface, so any web page the user visits can run code as them. Here: a random token per
//! workspace (`.labup/jupyter/token`, 0600) passed in `JUPYTER_TOKEN` (the environment, never the
//! command line, so `ps` does not show it), 127.0.0.1 only, XSRF on, `port_retries=0` (a busy port
//! is an error naming its holder, not a silent move to the next port).
//!
//! Settings that cannot switch security off: a config file outranks `JUPYTER_TOKEN` (the token
//! trait's default reads the variable only when no file sets it), so a user-global
//! `c.IdentityProvider.token = ''` used to serve without authentication. jupyter_core searches
//! `JUPYTER_CONFIG_PATH`, then `JUPYTER_CONFIG_DIR` (else `~/.jupyter`), the user site's
//! `etc/jupyter`, `sys.prefix/etc/jupyter` and the system folders (`/usr/local/etc/jupyter`,
//! `/etc/jupyter`, the module list `SYSTEM_CONFIG_PATH`); `JUPYTER_NO_CONFIG` would drop the
//! venv's folder too, where extensions enable themselves (`jupyter_server_config.d`). So labup
//! runs JupyterLab's own entry point (`jupyterlab.labapp:main`) from the venv's Python after
//! emptying `SYSTEM_CONFIG_PATH` and the user site, with `JUPYTER_CONFIG_DIR` set to
//! `.labup/jupyter/config` and `JUPYTER_CONFIG_PATH` removed: the server reads labup's folder and
//! the venv's, nothing else, and the security flags are on the command line, which outranks
//! every file. JupyterLab's user settings and workspaces stay where the user keeps them
//! (`JUPYTERLAB_SETTINGS_DIR`, `JUPYTERLAB_WORKSPACES_DIR`, else `~/.jupyter/lab/…`).

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Config, Port, Ready, Service, ServiceKind};
use crate::project::{Layout, Workspace};

/// The variable Jupyter reads its token from.
pub(crate) const TOKEN_VAR: &str = "JUPYTER_TOKEN";
/// The variable that moves Jupyter's runtime files (server info, kernel connection files).
pub(crate) const RUNTIME_VAR: &str = "JUPYTER_RUNTIME_DIR";
/// The variable that names Jupyter's (user) config folder.
pub(crate) const CONFIG_DIR_VAR: &str = crate::envvars::JUPYTER_CONFIG_DIR;
/// Extra config folders searched before every other: removed for labup's Jupyter.
pub(crate) const CONFIG_PATH_VAR: &str = crate::envvars::JUPYTER_CONFIG_PATH;
/// JupyterLab's user settings folder.
pub(crate) const SETTINGS_DIR_VAR: &str = crate::envvars::JUPYTERLAB_SETTINGS_DIR;
/// JupyterLab's workspaces folder.
pub(crate) const WORKSPACES_DIR_VAR: &str = crate::envvars::JUPYTERLAB_WORKSPACES_DIR;

/// Runs JupyterLab's entry point with the system and user-site config folders left out (see the
/// module comment). The first statement drops the current folder `-c` puts on `sys.path`, so a
/// project file named like a module (`site.py`, `jupyterlab.py`) cannot replace Jupyter's.
pub(crate) const LAUNCHER: &str =
    "import sys;sys.path[:1]==[''] and sys.path.pop(0);import site,jupyter_core.paths as p;\
p.SYSTEM_CONFIG_PATH[:]=[];site.ENABLE_USER_SITE=False;sys.argv[0]='jupyter-lab';\
from jupyterlab.labapp import main;sys.exit(main())";

/// The workspace token and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The token.
    pub(crate) value: String,
    /// Set when the file was unreadable or damaged and a new token replaced it.
    pub(crate) replaced: Option<String>,
}

/// The workspace token: read from its file, or created (random, 0600) on first use. It survives
/// restarts so open browser tabs keep working. A file readable by others is made private again;
/// a damaged one is replaced, and [`Token::replaced`] says so. `LABUP_JUPYTER_TOKEN` (a
/// Kubernetes Secret) wins, and is never written.
pub(crate) fn token(layout: &Layout) -> Result<Token> {
    if let Some(token) = crate::envvars::get(crate::envvars::LABUP_JUPYTER_TOKEN) {
        if !is_valid_token(&token) {
            return Err(crate::error::Fail::usage("`LABUP_JUPYTER_TOKEN` is not a valid token")
                .hint("a token is 32 to 128 hexadecimal digits")
                .into());
        }
        return Ok(Token { value: token, replaced: None });
    }
    layout.ensure(layout.jupyter())?;
    let file = layout.jupyter_token();
    let replaced = match fs::read(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("{} could not be read ({e})", file.display())),
        Ok(bytes) => {
            let token = String::from_utf8_lossy(&bytes).trim().to_string();
            if is_valid_token(&token) {
                let mode = fs::metadata(&file)?.permissions().mode() & 0o777;
                if mode != 0o600 {
                    fs::set_permissions(&file, fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("failed to make {} private", file.display()))?;
                }
                return Ok(Token { value: token, replaced: None });
            }
            Some(format!("{} does not hold a token labup wrote", file.display()))
        }
    };
    let value = write_new_token(&file)?;
    Ok(Token { value, replaced })
}

/// Replaces the workspace token with a new random one (`labup restart --new-token`).
pub(crate) fn new_token(layout: &Layout) -> Result<String> {
    layout.ensure(layout.jupyter())?;
    write_new_token(&layout.jupyter_token())
}

fn write_new_token(file: &Path) -> Result<String> {
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
    fs::rename(&tmp, file).with_context(|| format!("failed to write {}", file.display()))?;
    Ok(token)
}

/// The workspace token when its file exists (nothing is created).
pub(crate) fn existing_token(layout: &Layout) -> Option<String> {
    if let Some(token) = crate::envvars::get(crate::envvars::LABUP_JUPYTER_TOKEN) {
        return is_valid_token(&token).then_some(token);
    }
    let token = fs::read_to_string(layout.jupyter_token()).ok()?.trim().to_string();
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

/// The user's own Jupyter folders, which labup's Jupyter keeps using for JupyterLab settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserDirs {
    /// The user's config folder (`$JUPYTER_CONFIG_DIR`, else `~/.jupyter`): ignored for the server.
    pub(crate) config: PathBuf,
    /// JupyterLab user settings (theme, shortcuts).
    pub(crate) settings: PathBuf,
    /// JupyterLab workspaces (layouts).
    pub(crate) workspaces: PathBuf,
}

impl UserDirs {
    /// From the environment labup was started with (pure). `None` without a home folder.
    pub(crate) fn from_env(parent: &BTreeMap<String, String>) -> Option<UserDirs> {
        let get = |k: &str| parent.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let config = get(CONFIG_DIR_VAR).or_else(|| get("HOME").map(|h| h.join(".jupyter")))?;
        Some(UserDirs {
            settings: get(SETTINGS_DIR_VAR).unwrap_or_else(|| config.join("lab").join("user-settings")),
            workspaces: get(WORKSPACES_DIR_VAR).unwrap_or_else(|| config.join("lab").join("workspaces")),
            config,
        })
    }
}

/// What labup's Jupyter gets beyond its service's config, found by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Extras {
    /// The user's folders for JupyterLab settings and workspaces.
    pub(crate) user: Option<UserDirs>,
    /// Variables for Jupyter and its kernels (Jupyter AI → labup's Ollama).
    pub(crate) env: Vec<(String, String)>,
}

/// What a Jupyter service runs: argv, extra environment, readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Program and arguments (`$PORT` is filled in by the supervisor).
    pub(crate) argv: Vec<String>,
    /// Variables to set (`Some`) or remove (`None`).
    pub(crate) env: Vec<(String, Option<String>)>,
    /// Readiness: `/api` answers (without auth) …
    pub(crate) ready: Ready,
    /// … and `jpserver-<pid>.json` in this folder names the port.
    pub(crate) runtime_dir: PathBuf,
}

/// The JupyterLab command line for `service` (pure: the token and root-ness are passed in).
pub(crate) fn launch(
    service: &Service,
    venv: &Path,
    layout: &Layout,
    token: &str,
    as_root: bool,
    extras: &Extras,
) -> Launch {
    let root = service.root.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut argv = vec![
        crate::python::interpreter::venv_python(venv).display().to_string(),
        "-c".into(),
        LAUNCHER.into(),
        "--no-browser".into(),
        format!("--ServerApp.ip={}", super::bind_address()),
        "--ServerApp.port=$PORT".into(),
        // A busy port is an error, not a silent move to the next one (the default is 50 retries).
        "--ServerApp.port_retries=0".into(),
        format!("--ServerApp.root_dir={}", root.display()),
        // On, whatever a config file says: it is what stops other web pages posting to us.
        "--ServerApp.disable_check_xsrf=False".into(),
    ];
    if as_root {
        argv.push("--allow-root".into());
    }
    let mut env: Vec<(String, Option<String>)> = vec![
        (TOKEN_VAR.into(), Some(token.into())),
        (RUNTIME_VAR.into(), Some(layout.jupyter_runtime().display().to_string())),
        (CONFIG_DIR_VAR.into(), Some(layout.jupyter_config().display().to_string())),
        (CONFIG_PATH_VAR.into(), None),
        ("JUPYTER_NO_CONFIG".into(), None),
    ];
    if let Some(user) = &extras.user {
        env.push((SETTINGS_DIR_VAR.into(), Some(user.settings.display().to_string())));
        env.push((WORKSPACES_DIR_VAR.into(), Some(user.workspaces.display().to_string())));
    }
    env.extend(extras.env.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
    Launch { argv, env, ready: Ready::Http("/api".into()), runtime_dir: layout.jupyter_runtime() }
}

/// labup's Ollama, as Jupyter AI should reach it: the first enabled `kind = "ollama"` service
/// with a fixed port, and its first model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ollama {
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
    /// The first declared model.
    pub(crate) model: Option<String>,
}

impl Ollama {
    /// From the config (an `auto` port is only known once it runs: then nothing is set).
    pub(crate) fn of(config: &Config) -> Option<Ollama> {
        let svc = config.enabled_services().find(|s| s.kind == ServiceKind::Ollama)?;
        let port = match svc.port {
            Some(Port::Fixed(p)) => p,
            Some(Port::Auto) | None => return None,
        };
        Some(Ollama { port, model: svc.models.first().cloned() })
    }

    /// The variables Jupyter AI's model layer reads: LiteLLM takes Ollama's address from
    /// `OLLAMA_API_BASE` (its default is localhost:11434), the `ollama` client and CLI from
    /// `OLLAMA_HOST`; `LITELLM_LOCAL_MODEL_COST_MAP` keeps LiteLLM from fetching its price list
    /// from the internet when it is imported.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OLLAMA_HOST".into(), format!("127.0.0.1:{}", self.port)),
            ("OLLAMA_API_BASE".into(), format!("http://127.0.0.1:{}", self.port)),
            ("LITELLM_LOCAL_MODEL_COST_MAP".into(), "True".into()),
        ]
    }

    /// IPython config for jupyter-ai-magic-commands' `AiMagics`: each declared model as an alias
    /// of its name (`%%ai llama3.2:1b`) for LiteLLM's `ollama_chat/<model>` at labup's Ollama, and
    /// the first one the default (`%%ai` alone). Its `%%ai` accepts only LiteLLM's known model ids
    /// or aliases, and a local model is not a known id: hence the aliases. `None` without models.
    pub(crate) fn ipython_config(&self, config: &Config) -> Option<String> {
        let first = self.model.clone()?;
        let svc = config.enabled_services().find(|s| s.kind == ServiceKind::Ollama)?;
        let aliases: serde_json::Map<String, serde_json::Value> = svc
            .models
            .iter()
            .map(|m| {
                let target = serde_json::json!({
                    "target": format!("ollama_chat/{m}"),
                    "api_base": format!("http://127.0.0.1:{}", self.port),
                    "api_key_name": null,
                });
                (m.clone(), target)
            })
            .collect();
        let doc = serde_json::json!({ "AiMagics": { "initial_language_model": first, "initial_aliases": aliases } });
        let mut text = serde_json::to_string_pretty(&doc).ok()?;
        text.push('\n');
        Some(text)
    }

    /// The LiteLLM model id of the first model (`ollama_chat/llama3.2:1b`: Ollama's chat API).
    pub(crate) fn model_id(&self) -> Option<String> {
        self.model.as_ref().map(|m| format!("ollama_chat/{m}"))
    }
}

/// `.labup/jupyter/config/jupyter_server_config.json`: the project kernel as the default, the
/// news prompt and the update check off, Jupyternaut's first model (pure).
pub(crate) fn server_config(kernel: Option<&str>, ollama: Option<&Ollama>) -> String {
    let mut doc = serde_json::json!({
        "LabApp": {
            // No news feed: JupyterLab then never asks whether to fetch it.
            "news_url": null,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        },
    });
    if let Some(k) = kernel {
        doc["MappingKernelManager"] = serde_json::json!({ "default_kernel_name": k });
    }
    if let Some(model) = ollama.and_then(Ollama::model_id) {
        doc["JupyternautExtension"] = serde_json::json!({ "initial_language_model": model });
    }
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes labup's server config folder when its content differs.
pub(crate) fn write_server_config(layout: &Layout, text: &str) -> Result<()> {
    layout.ensure(layout.jupyter_config())?;
    let file = layout.jupyter_server_config();
    if fs::read_to_string(&file).ok().as_deref() != Some(text) {
        crate::fsutil::atomic_write(&file, text.as_bytes())?;
    }
    Ok(())
}

/// The project's kernelspec for this venv and environment, or `None` when no kernel can run
/// there (no synced venv, or no ipykernel in it). Its environment: the venv, labup's library
/// folders (as `labup env` gives them, nothing inherited) and labup's Ollama for Jupyter AI.
pub(crate) fn kernelspec(
    ws: &Workspace,
    parent: &BTreeMap<String, String>,
    gpu: &crate::gpu::Wiring,
) -> Option<crate::python::kernelspec::Spec> {
    let config = &ws.config;
    let venv = &config.python.venv;
    let marker = crate::python::fingerprint::read(venv)?;
    crate::python::venv::site_packages(venv).filter(|sp| sp.join("ipykernel").is_dir())?;
    let mut env = vec![("VIRTUAL_ENV".to_string(), venv.display().to_string())];
    if let Some(libs) = crate::shell::wrappers::library_path(ws, parent, gpu) {
        env.push(("LD_LIBRARY_PATH".into(), libs));
    }
    let ollama = Ollama::of(config);
    let mut args = Vec::new();
    let mut files = Vec::new();
    if let Some(o) = &ollama {
        env.extend(o.env());
        if let Some(text) = o.ipython_config(config) {
            let dir = crate::python::kernelspec::kernels_dir(venv)
                .join(crate::python::kernelspec::kernel_name(&config.project.name));
            // IPython's `--config` loads one more config file (`BaseIPythonApplication.extra_config_file`).
            args.push(format!("--config={}", dir.join(AI_CONFIG).display()));
            files.push((AI_CONFIG.to_string(), text));
        }
    }
    let mut spec = crate::python::kernelspec::Spec::new(config, &marker.python, args, env);
    spec.files = files;
    Some(spec)
}

/// The IPython config file in the project kernelspec that gives `%%ai` its models.
pub(crate) const AI_CONFIG: &str = "labup_ai_config.json";

/// Config file names Jupyter servers read.
const CONFIG_FILES: &[&str] = &[
    "jupyter_config.py",
    "jupyter_config.json",
    "jupyter_server_config.py",
    "jupyter_server_config.json",
    "jupyter_lab_config.py",
    "jupyter_lab_config.json",
    "jupyter_notebook_config.py",
    "jupyter_notebook_config.json",
];

/// Settings that change who can reach the server, looked for in ignored files to name them.
const SECURITY_KEYS: &[&str] = &[
    "token",
    "password",
    "hashed_password",
    "disable_check_xsrf",
    "ip",
    "allow_origin",
    "allow_remote_access",
    "allow_root",
];

/// Server config files outside labup's folder that a plain `jupyter lab` would read and labup's
/// does not, each with the security settings it mentions.
pub(crate) fn ignored_config(dirs: &[PathBuf]) -> Vec<(PathBuf, Vec<&'static str>)> {
    let mut out = Vec::new();
    for dir in dirs {
        for name in CONFIG_FILES {
            let file = dir.join(name);
            let Ok(text) = fs::read_to_string(&file) else { continue };
            let keys = SECURITY_KEYS.iter().copied().filter(|k| mentions(&text, k)).collect();
            out.push((file, keys));
        }
    }
    out
}

/// Whether `text` sets `key` (`.key =` in Python, `"key":` in JSON).
fn mentions(text: &str, key: &str) -> bool {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).any(|l| {
        let py = l.find(&format!(".{key}")).is_some_and(|i| l[i + key.len() + 1..].trim_start().starts_with('='));
        py || l.contains(&format!("\"{key}\":")) || l.contains(&format!("\"{key}\" :"))
    })
}

/// The folders a plain `jupyter lab` reads server config from that labup's does not.
pub(crate) fn foreign_config_dirs(user: Option<&UserDirs>, parent: &BTreeMap<String, String>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = parent
        .get(CONFIG_PATH_VAR)
        .map(|v| v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    if let Some(u) = user {
        dirs.push(u.config.clone());
    }
    if let Some(home) = parent.get("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(home).join(".local/etc/jupyter"));
    }
    dirs.push("/usr/local/etc/jupyter".into());
    dirs.push("/etc/jupyter".into());
    dirs
}

/// The one-time notice about ignored config: `Some(text)` the first time these files (and their
/// modification times) are seen for this workspace, `None` after that.
pub(crate) fn ignored_notice(layout: &Layout, found: &[(PathBuf, Vec<&'static str>)]) -> Option<String> {
    if found.is_empty() {
        return None;
    }
    let stamp: String = found.iter().map(|(f, _)| format!("{} {:?}\n", f.display(), crate::fsutil::stamp(f))).collect();
    let notice = layout.jupyter_ignored_notice();
    if fs::read_to_string(&notice).ok().as_deref() == Some(stamp.as_str()) {
        return None;
    }
    let _ = crate::fsutil::atomic_write(&notice, stamp.as_bytes());
    let files: Vec<String> = found
        .iter()
        .map(|(f, keys)| {
            if keys.is_empty() {
                f.display().to_string()
            } else {
                format!("{} (sets {})", f.display(), keys.join(", "))
            }
        })
        .collect();
    Some(format!(
        "labup's Jupyter ignores the server settings in {}: it reads only .labup/jupyter/config and the venv's, \
         so no file can turn its token or XSRF check off; your JupyterLab settings and workspaces still apply",
        files.join(", ")
    ))
}

/// The URL that opens JupyterLab, token included.
pub(crate) fn url(port: u16, token: Option<&str>) -> String {
    match token {
        Some(t) => format!("http://127.0.0.1:{port}/lab?token={t}"),
        None => format!("http://127.0.0.1:{port}/lab"),
    }
}

/// Whether `jpserver-<pid>.json` exists in `dir` for one of `pids` and names `port`: the server
/// that answers `/api` is ours and has finished starting.
pub(crate) fn runtime_file_names_port(dir: &Path, pids: &[i32], port: u16) -> bool {
    pids.iter().any(|pid| {
        fs::read(dir.join(format!("jpserver-{pid}.json")))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v.get("port")?.as_u64())
            == Some(u64::from(port))
    })
}

/// Removes server files left by servers that no longer run (Jupyter leaves them on SIGKILL).
pub(crate) fn clean_stale_runtime_files(dir: &Path) {
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
        let config = Config::load(&dir).unwrap();
        config.services[0].clone()
    }

    #[test]
    fn token_is_created_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::of(dir.path());
        let t1 = token(&layout).unwrap();
        assert_eq!(t1.replaced, None, "a first token is no news");
        let t1 = t1.value;
        assert_eq!(t1.len(), 48);
        let file = layout.jupyter_token();
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(token(&layout).unwrap().value, t1, "the token survives");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "made private again");
        fs::write(&file, "short\n").unwrap();
        let t2 = token(&layout).unwrap();
        assert_ne!(t2.value, t1, "a damaged token file is replaced");
        assert!(t2.replaced.unwrap().contains("does not hold a token"));
        assert_eq!(existing_token(&layout).as_deref(), Some(t2.value.as_str()));
        let t3 = new_token(&layout).unwrap();
        assert_ne!(t3, t2.value);
        assert_eq!(token(&layout).unwrap(), Token { value: t3, replaced: None });
    }

    #[test]
    fn launch_is_local_token_in_env_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let layout = Layout::of(dir.path());
        let user = UserDirs::from_env(&[("HOME".to_string(), "/home/u".to_string())].into());
        let extras = Extras { user, env: vec![("OLLAMA_API_BASE".into(), "http://127.0.0.1:1".into())] };
        let l = launch(&svc, &dir.path().join(".venv"), &layout, "abc123", false, &extras);
        assert!(l.argv[0].ends_with(".venv/bin/python"));
        assert_eq!(l.argv[1..3], ["-c".to_string(), LAUNCHER.to_string()]);
        assert!(l.argv.contains(&"--ServerApp.ip=127.0.0.1".to_string()));
        assert!(l.argv.contains(&"--ServerApp.port_retries=0".to_string()));
        assert!(l.argv.contains(&format!("--ServerApp.root_dir={}", dir.path().join("notebooks").display())));
        assert!(!l.argv.iter().any(|a| a.contains("abc123")), "the token never goes on the command line");
        assert!(!l.argv.contains(&"--allow-root".to_string()));
        let env: BTreeMap<String, Option<String>> = l.env.iter().cloned().collect();
        assert_eq!(env[TOKEN_VAR].as_deref(), Some("abc123"));
        assert_eq!(
            env[CONFIG_DIR_VAR],
            Some(layout.jupyter_config().display().to_string()),
            "only labup's config folder"
        );
        assert_eq!(env[CONFIG_PATH_VAR], None, "the user's extra config folders are removed");
        assert_eq!(env[SETTINGS_DIR_VAR].as_deref(), Some("/home/u/.jupyter/lab/user-settings"));
        assert_eq!(env[WORKSPACES_DIR_VAR].as_deref(), Some("/home/u/.jupyter/lab/workspaces"));
        assert_eq!(env["OLLAMA_API_BASE"].as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(l.ready, Ready::Http("/api".into()));
        let root = launch(&svc, &dir.path().join(".venv"), &layout, "abc123", true, &Extras::default());
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
    fn user_dirs_follow_the_users_own_variables() {
        let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(UserDirs::from_env(&env(&[])), None);
        let u =
            UserDirs::from_env(&env(&[("HOME", "/h"), (CONFIG_DIR_VAR, "/cfg"), (SETTINGS_DIR_VAR, "/s")])).unwrap();
        assert_eq!(
            u,
            UserDirs { config: "/cfg".into(), settings: "/s".into(), workspaces: "/cfg/lab/workspaces".into() }
        );
        let dirs = foreign_config_dirs(Some(&u), &env(&[("HOME", "/h"), (CONFIG_PATH_VAR, "/x:/y")]));
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        assert_eq!(dirs, ["/x", "/y", "/cfg", "/h/.local/etc/jupyter", "/usr/local/etc/jupyter", "/etc/jupyter"]);
    }

    #[test]
    fn ignored_config_is_named_with_its_security_settings_once() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home/.jupyter");
        fs::create_dir_all(&home).unwrap();
        fs::write(
            home.join("jupyter_server_config.py"),
            "c.IdentityProvider.token = ''\nc.ServerApp.ip='0.0.0.0'\n# c.ServerApp.password = ''\nc.ServerApp.iopub_data_rate_limit = 1\n",
        )
        .unwrap();
        fs::write(home.join("jupyter_lab_config.json"), r#"{"ServerApp": {"disable_check_xsrf": true}}"#).unwrap();
        let found = ignored_config(&[home, d.path().join("nowhere")]);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, ["token", "ip"], "commented lines and other keys do not count");
        assert_eq!(found[1].1, ["disable_check_xsrf"]);
        let root = d.path().join("proj");
        fs::create_dir_all(&root).unwrap();
        let layout = Layout::of(&root);
        layout.ensure(layout.jupyter()).unwrap();
        let text = ignored_notice(&layout, &found).expect("said the first time");
        assert!(text.contains("jupyter_server_config.py (sets token, ip)"), "{text}");
        assert_eq!(ignored_notice(&layout, &found), None, "said once");
        assert_eq!(ignored_notice(&layout, &[]), None);
    }

    #[test]
    fn server_config_sets_the_default_kernel_news_off_and_the_first_model() {
        let v: serde_json::Value = serde_json::from_str(&server_config(None, None)).unwrap();
        assert_eq!(v["LabApp"]["news_url"], serde_json::Value::Null);
        assert!(v.get("MappingKernelManager").is_none());
        let o = Ollama { port: 11500, model: Some("llama3.2:1b".into()) };
        let v: serde_json::Value = serde_json::from_str(&server_config(Some("labup-demo"), Some(&o))).unwrap();
        assert_eq!(v["MappingKernelManager"]["default_kernel_name"], "labup-demo");
        assert_eq!(v["JupyternautExtension"]["initial_language_model"], "ollama_chat/llama3.2:1b");
        assert!(o.env().contains(&("OLLAMA_API_BASE".into(), "http://127.0.0.1:11500".into())));
        assert!(o.env().contains(&("OLLAMA_HOST".into(), "127.0.0.1:11500".into())));
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("labup.toml"),
            "[services.llm]\nkind = \"ollama\"\nport = 11500\nmodels = [\"llama3.2:1b\", \"qwen\"]\n",
        )
        .unwrap();
        let config = Config::load(d.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&o.ipython_config(&config).unwrap()).unwrap();
        assert_eq!(v["AiMagics"]["initial_language_model"], "llama3.2:1b");
        assert_eq!(v["AiMagics"]["initial_aliases"]["qwen"]["target"], "ollama_chat/qwen");
        assert_eq!(v["AiMagics"]["initial_aliases"]["qwen"]["api_base"], "http://127.0.0.1:11500");
    }

    #[test]
    fn ollama_for_jupyter_ai_needs_a_fixed_port() {
        let d = tempfile::tempdir().unwrap();
        let load = |toml: &str| {
            fs::write(d.path().join("labup.toml"), toml).unwrap();
            Ollama::of(&Config::load(d.path()).unwrap())
        };
        assert_eq!(load("[services.nb]\nkind = \"jupyter\"\n"), None);
        assert_eq!(
            load("[services.llm]\nkind = \"ollama\"\nmodels = [\"a:1b\", \"b\"]\n"),
            Some(Ollama { port: 11434, model: Some("a:1b".into()) })
        );
        assert_eq!(load("[services.llm]\nkind = \"ollama\"\nport = \"auto\"\n"), None);
    }

    #[test]
    fn url_carries_the_token() {
        assert_eq!(url(8888, Some("t")), "http://127.0.0.1:8888/lab?token=t");
    }
}
