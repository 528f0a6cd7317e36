//! `labup.toml`: the typed configuration every command works from.

mod conflicts;
mod load;
mod location;
pub(crate) mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(crate) use conflicts::port_var;
pub(crate) use load::{display_path, kind_name, nearest};
pub(crate) use raw::{Cuda, Installer, Port, Ready, Restart, ServiceKind};
use serde::Serialize;

use crate::error::Fail;

/// The whole configuration, merged and validated, with paths made absolute.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Config {
    /// The project folder.
    pub(crate) root: PathBuf,
    /// The configuration files that were read (none: the embedded default).
    pub(crate) files: Vec<PathBuf>,
    /// `[project]`.
    pub(crate) project: Project,
    /// `[python]`.
    pub(crate) python: Python,
    /// `[gpu]`.
    pub(crate) gpu: Gpu,
    /// Declared services in `after` order (dependencies first), disabled ones included.
    pub(crate) services: Vec<Service>,
    /// `[shell]`.
    pub(crate) shell: Shell,
    /// `[nix]`.
    pub(crate) nix: Nix,
}

/// `[project]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Project {
    /// Banner and window title; default: the folder name.
    pub(crate) name: String,
}

/// `[python]`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Python {
    /// Required interpreter version prefix (`3.12`), if any.
    pub(crate) version: Option<String>,
    /// The venv folder.
    pub(crate) venv: PathBuf,
    /// Requirement files named in the config; `None`: auto-detect.
    pub(crate) requirements: Option<Vec<PathBuf>>,
    /// Extra packages always installed.
    pub(crate) packages: Vec<String>,
    /// The lock labup keeps.
    pub(crate) lock: PathBuf,
    /// uv, pip, or whichever is found.
    pub(crate) installer: Installer,
    /// PyTorch wheel index choice.
    pub(crate) torch: String,
    /// `[python] torch-index`: the PyTorch index base to use instead of download.pytorch.org.
    pub(crate) torch_index: Option<String>,
}

/// `[gpu]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Gpu {
    /// Whether to wire the GPU.
    pub(crate) cuda: Cuda,
    /// Extra driver library folders.
    pub(crate) driver_dirs: Vec<PathBuf>,
    /// GPUs to ask an engine for (`labup export`), where the config names a number.
    pub(crate) count: Option<u32>,
}

/// One `[services.NAME]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Service {
    /// The table name.
    pub(crate) name: String,
    /// Built-in kind or a plain command.
    pub(crate) kind: ServiceKind,
    /// Command line for `kind = "command"`.
    pub(crate) command: Vec<String>,
    /// Port, if the service listens.
    pub(crate) port: Option<Port>,
    /// Notebook root for Jupyter.
    pub(crate) root: Option<PathBuf>,
    /// Open in the browser after `labup up`.
    pub(crate) open: bool,
    /// Readiness probe.
    pub(crate) ready: Option<Ready>,
    /// Extra environment.
    pub(crate) env: BTreeMap<String, String>,
    /// Services that must be ready first.
    pub(crate) after: Vec<String>,
    /// Restart policy.
    pub(crate) restart: Restart,
    /// `false` switches the service off.
    pub(crate) enabled: bool,
    /// Ollama models to pull.
    pub(crate) models: Vec<String>,
    /// Grace between SIGTERM and SIGKILL.
    pub(crate) stop_timeout: std::time::Duration,
    /// How long a start may take to become ready.
    pub(crate) start_timeout: std::time::Duration,
}

/// `[shell]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Shell {
    /// Start services on shell entry.
    pub(crate) autostart: bool,
    /// Print the banner.
    pub(crate) banner: bool,
}

/// `[nix]`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Nix {
    /// Extra nixpkgs attributes for the flake.
    pub(crate) packages: Vec<String>,
}

impl Config {
    /// Loads the configuration of the project at `root`.
    pub(crate) fn load(root: &Path) -> Result<Config, Fail> {
        let loaded = load::load(root)?;
        Ok(Config::from_raw(root, loaded.raw, loaded.files))
    }

    /// The enabled services, in `after` order.
    pub(crate) fn enabled_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|s| s.enabled)
    }

    fn from_raw(root: &Path, raw: raw::RawFile, files: Vec<PathBuf>) -> Config {
        let abs = |p: &str| root.join(p);
        let py = raw.python.unwrap_or_default();
        let gpu = raw.gpu.unwrap_or_default();
        let shell = raw.shell.unwrap_or_default();
        let mut services: Vec<Service> = raw
            .services
            .unwrap_or_default()
            .into_iter()
            .map(|(name, svc)| {
                let s = svc.into_inner();
                let kind = s.kind_for(&name);
                let port = s.port.map(|p| p.value).or(kind.default_port());
                Service {
                    kind,
                    command: s.command.unwrap_or_default(),
                    port,
                    root: match kind {
                        ServiceKind::Jupyter => Some(abs(s.root.as_deref().unwrap_or("."))),
                        _ => None,
                    },
                    open: s.open.map_or(kind == ServiceKind::Jupyter, |o| o.value),
                    ready: s.ready.map(|r| r.value),
                    env: s.env.unwrap_or_default().into_iter().map(|(k, v)| (k, v.value)).collect(),
                    after: s.after.unwrap_or_default().into_iter().map(|a| a.value).collect(),
                    restart: s.restart.unwrap_or_default(),
                    enabled: s.enabled.is_none_or(|e| e.value),
                    models: s.models.unwrap_or_default().into_iter().map(|m| m.value).collect(),
                    stop_timeout: std::time::Duration::from_secs(s.stop_timeout.map_or(10, |t| t.0)),
                    start_timeout: std::time::Duration::from_secs(s.start_timeout.map_or(60, |t| t.0)),
                    name,
                }
            })
            .collect();
        services = after_order(services);
        Config {
            root: root.to_path_buf(),
            files,
            project: Project {
                name: raw.project.and_then(|p| p.name).unwrap_or_else(|| {
                    root.file_name().map_or_else(|| "labup".into(), |n| n.to_string_lossy().into_owned())
                }),
            },
            python: Python {
                version: py.version.map(|v| v.0),
                venv: abs(py.venv.as_deref().unwrap_or(".venv")),
                requirements: py.requirements.map(|r| r.iter().map(|p| abs(&p.value)).collect()),
                packages: py.packages.unwrap_or_default(),
                lock: abs(py.lock.as_ref().map_or("requirements.lock", |l| &l.value)),
                installer: py.installer.unwrap_or_default(),
                torch: py.torch.unwrap_or_default().0,
                torch_index: py.torch_index.map(|i| i.0),
            },
            gpu: Gpu {
                cuda: gpu.cuda.unwrap_or_default(),
                driver_dirs: gpu.driver_dirs.unwrap_or_default().iter().map(|p| abs(p)).collect(),
                count: gpu.count.map(|c| c.0),
            },
            services,
            shell: Shell { autostart: shell.autostart.unwrap_or(false), banner: shell.banner.unwrap_or(true) },
            nix: Nix { packages: raw.nix.and_then(|n| n.packages).unwrap_or_default() },
        }
    }
}

/// Dependencies first; ties by name. The loader already refused cycles.
fn after_order(mut services: Vec<Service>) -> Vec<Service> {
    services.sort_by(|a, b| a.name.cmp(&b.name));
    let mut placed = BTreeSet::new();
    let mut out = Vec::with_capacity(services.len());
    while !services.is_empty() {
        let ready = services.iter().position(|s| s.after.iter().all(|d| placed.contains(d))).unwrap_or(0);
        let svc = services.remove(ready);
        placed.insert(svc.name.clone());
        out.push(svc);
    }
    out
}

/// For unit tests elsewhere: `toml` as the `labup.toml` of a new temporary project, loaded.
/// Keep the folder alive as long as the config is used.
#[cfg(test)]
pub(crate) fn for_test(toml: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("labup.toml"), toml).expect("write labup.toml");
    let config = Config::load(dir.path()).expect("a valid labup.toml");
    (dir, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn names(c: &Config) -> Vec<&str> {
        c.services.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn embedded_default_without_server_py_is_jupyter_only() {
        let dir = project(&[]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(names(&c), ["jupyter"]);
        assert_eq!(c.services[0].port, Some(Port::Fixed(8888)));
        assert!(c.services[0].open);
        assert_eq!(c.python.venv, dir.path().join(".venv"));
        assert_eq!(c.python.lock, dir.path().join("requirements.lock"));
        assert!(c.files.is_empty());
    }

    #[test]
    fn embedded_default_with_server_py_adds_app() {
        let dir = project(&[("server.py", "")]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(names(&c), ["app", "jupyter"]);
        let app = &c.services[0];
        assert_eq!(app.command, ["python", "server.py"]);
        assert_eq!(app.port, Some(Port::Fixed(5001)));
        assert_eq!(app.ready, Some(Ready::Http("/".into())));
    }

    #[test]
    fn built_in_names_without_a_command_take_their_kind() {
        let toml = "[services.jupyter]\nport=\"auto\"\n[services.ollama]\n[services.app]\ncommand=[\"x\"]\n";
        let dir = project(&[("labup.toml", toml)]);
        let c = Config::load(dir.path()).unwrap();
        let kind = |n: &str| c.services.iter().find(|s| s.name == n).unwrap().kind;
        assert_eq!(kind("jupyter"), ServiceKind::Jupyter);
        assert_eq!(c.services.iter().find(|s| s.name == "jupyter").unwrap().port, Some(Port::Auto));
        assert_eq!(kind("ollama"), ServiceKind::Ollama);
        assert_eq!(kind("app"), ServiceKind::Command);
        // A command of your own under a built-in name is a plain command.
        let dir = project(&[("labup.toml", "[services.jupyter]\ncommand=[\"my-lab\"]\n")]);
        assert_eq!(Config::load(dir.path()).unwrap().services[0].kind, ServiceKind::Command);
    }

    #[test]
    fn declared_services_replace_the_default_set() {
        let dir = project(&[("server.py", ""), ("labup.toml", "[services.web]\ncommand=[\"x\"]\n")]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(names(&c), ["web"]);
    }

    #[test]
    fn local_file_merges_key_by_key() {
        let dir = project(&[
            (
                "labup.toml",
                "[python]\nversion=\"3.11\"\npackages=[\"a\"]\n[services.web]\ncommand=[\"x\"]\nport=1000\nenv={A=\"1\"}\n",
            ),
            ("labup.local.toml", "[python]\npackages=[\"b\"]\n[services.web]\nport=2000\nenv={B=\"2\"}\n"),
        ]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.python.version.as_deref(), Some("3.11"));
        assert_eq!(c.python.packages, ["b"]);
        let web = &c.services[0];
        assert_eq!(web.command, ["x"]);
        assert_eq!(web.port, Some(Port::Fixed(2000)));
        assert_eq!(web.env.len(), 2);
        assert_eq!(c.files.len(), 2);
    }

    #[test]
    fn local_file_can_disable_a_default_service() {
        let dir = project(&[("labup.local.toml", "[services.jupyter]\nenabled = false\n")]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(names(&c), ["jupyter"]);
        assert_eq!(c.enabled_services().count(), 0);
    }

    #[test]
    fn errors_in_the_local_file_name_it() {
        let dir = project(&[("labup.toml", ""), ("labup.local.toml", "[gpu]\ncuda = \"maybe\"\n")]);
        let e = Config::load(dir.path()).unwrap_err();
        assert!(e.message.contains("labup.local.toml:2:8: unknown value `maybe`"), "{}", e.message);
    }

    #[test]
    fn a_local_service_on_the_default_jupyters_port_is_a_conflict() {
        let dir = project(&[("labup.local.toml", "[services.web]\ncommand = [\"w\"]\nport = 8888\n")]);
        let e = Config::load(dir.path()).unwrap_err();
        assert!(
            e.message.contains("labup.local.toml:3:8: services `jupyter` and `web` both listen on port 8888"),
            "{}",
            e.message
        );
        assert!(
            e.hint.as_deref().unwrap_or_default().starts_with("`jupyter` takes it in labup's embedded default;"),
            "{:?}",
            e.hint
        );
        let off = "[services.web]\ncommand = [\"w\"]\nport = 8888\n[services.jupyter]\nenabled = false\n";
        let dir = project(&[("labup.local.toml", off)]);
        assert!(Config::load(dir.path()).is_ok());
    }

    #[test]
    fn services_come_in_after_order() {
        let dir = project(&[(
            "labup.toml",
            "[services.a]\ncommand=[\"x\"]\nafter=[\"c\"]\n[services.b]\ncommand=[\"x\"]\n[services.c]\ncommand=[\"x\"]\nafter=[\"b\"]\n",
        )]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(names(&c), ["b", "c", "a"]);
    }

    #[test]
    fn full_schema_parses() {
        let dir = project(&[(
            "labup.toml",
            r#"
[project]
name = "demo"
[python]
version = "3.12"
venv = ".venv"
requirements = ["requirements.txt"]
packages = []
lock = "requirements.lock"
installer = "auto"
torch = "auto"
[gpu]
cuda = "auto"
driver-dirs = ["/opt/nvidia"]
[services.jupyter]
kind = "jupyter"
port = 8888
root = "notebooks"
open = true
[services.app]
command = ["python", "server.py"]
port = 5001
ready = { http = "/" }
env = { DEBUG = "1" }
after = ["ollama"]
restart = "on-failure"
open = false
[services.ollama]
kind = "ollama"
port = 11434
models = ["llama3.2:1b"]
[shell]
autostart = false
banner = true
[nix]
packages = ["ffmpeg"]
"#,
        )]);
        let c = Config::load(dir.path()).unwrap();
        assert_eq!(c.project.name, "demo");
        assert_eq!(names(&c), ["jupyter", "ollama", "app"]);
        assert_eq!(c.services[0].root, Some(dir.path().join("notebooks")));
        assert_eq!(c.services[1].models, ["llama3.2:1b"]);
        assert_eq!(c.gpu.driver_dirs, [PathBuf::from("/opt/nvidia")]);
        assert_eq!(c.nix.packages, ["ffmpeg"]);
    }
}
