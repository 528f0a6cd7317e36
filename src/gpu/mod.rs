//! NVIDIA GPUs: which driver runs, where its libraries are, the folder of links to them that
//! children get on `LD_LIBRARY_PATH`, and the PyTorch wheel index that will run.
//!
//! When NVML is loaded: only when the devices are needed and no cached answer matches this
//! boot, driver and library: for `labup gpu`, for the torch backend when the requirements name
//! torch (compute capabilities), and on WSL2 for the driver version (no kernel module files).
//! `labup run`, `up` and a `sync` without torch read files only.

pub(crate) mod detect;
pub(crate) mod driverdir;
pub(crate) mod ldcache;
pub(crate) mod links;
pub(crate) mod nvml;
pub(crate) mod torch;
pub(crate) mod version;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::config::{Config, Cuda};
use crate::envvars;
use crate::error::Fail;
use crate::project::Workspace;
use crate::python::sources::{self, Sources};
pub(crate) use detect::{Platform, Source};
pub(crate) use nvml::Device;

/// The host file system, under `LABUP_FS_ROOT` when that is set (tests build fake hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    root: Option<PathBuf>,
}

impl Host {
    /// The real root, or `LABUP_FS_ROOT`.
    pub(crate) fn from_env() -> Host {
        Host { root: envvars::get(envvars::LABUP_FS_ROOT).map(PathBuf::from) }
    }

    /// A fake host rooted at `root`.
    pub(crate) fn fake(root: &Path) -> Host {
        Host { root: Some(root.to_path_buf()) }
    }

    /// The fake root, if any.
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Where labup reads the host path `p`.
    pub(crate) fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        match &self.root {
            Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        }
    }

    /// Follows symlinks to a regular file, mapping absolute targets under the root.
    pub(crate) fn resolve(&self, p: &Path) -> Option<PathBuf> {
        let mut p = p.to_path_buf();
        for _ in 0..40 {
            match std::fs::read_link(&p) {
                Ok(t) if t.is_absolute() => p = self.path(&t),
                Ok(t) => p = p.parent()?.join(t),
                Err(_) => {
                    return std::fs::metadata(&p).ok().filter(|m| m.is_file()).map(|_| lexical(&p));
                }
            }
        }
        None
    }
}

fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The driver as the files show it (NVML only for WSL2's version).
#[derive(Debug, Clone)]
pub(crate) struct Driver {
    /// The kind of host.
    pub(crate) platform: Platform,
    /// The running driver's version.
    pub(crate) version: Option<String>,
    /// Where the version came from.
    pub(crate) source: Source,
    /// The library folder and how it was found.
    pub(crate) dir: Option<driverdir::Candidate>,
    /// The links to make.
    pub(crate) plan: links::Plan,
    /// Things the user should know (mismatched libraries, NVML failures).
    pub(crate) warnings: Vec<String>,
}

impl Driver {
    /// The `libnvidia-ml` to load NVML from.
    fn nvml_library(&self) -> Option<&Path> {
        self.plan.links.get("libnvidia-ml.so.1").map(PathBuf::as_path)
    }
}

/// Finds the driver, its folder and the links to make.
pub(crate) fn find(ws: &Workspace, host: &Host) -> Driver {
    let config = &ws.config;
    let platform = detect::platform(host);
    let mut d =
        Driver { platform, version: None, source: Source::None, dir: None, plan: Default::default(), warnings: vec![] };
    if platform == Platform::Macos {
        return d;
    }
    let files = detect::version_from_files(host, envvars::get(envvars::LABUP_CUDA_DRIVER_VERSION).as_deref());
    let wsl = platform == Platform::Wsl;
    if let Some((v, s)) = files {
        d.version = Some(v);
        d.source = s;
    } else if !wsl {
        // No driver: the ld cache is not even read.
        return d;
    }
    let env_dirs: Vec<PathBuf> = envvars::get(envvars::LABUP_DRIVER_DIRS)
        .map(|v| v.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    let candidates = driverdir::candidates(host, platform, &env_dirs, &config.gpu.driver_dirs);
    let version = d.version.clone().unwrap_or_default();
    let Some((dir, plan)) = driverdir::choose(host, &candidates, &version, wsl) else {
        if !version.is_empty() {
            let looked: Vec<String> = candidates.iter().map(|c| c.dir.display().to_string()).collect();
            d.warnings.push(format!(
                "NVIDIA driver {version} is loaded but none of its libraries (libcuda.so.1) were found in {}: \
                 set LABUP_DRIVER_DIRS or `[gpu] driver-dirs` to their folder",
                if looked.is_empty() { "the ld cache".to_string() } else { looked.join(", ") }
            ));
        }
        return d;
    };
    if plan.links.is_empty() {
        d.warnings.push(format!(
            "the NVIDIA libraries in {} ({}) are not those of the running driver {version}: the driver was updated \
             without a reboot; reboot to use the GPU (CUDA is not wired until then)",
            dir.dir.display(),
            plan.mismatched.join(", ")
        ));
    }
    d.dir = Some(dir);
    d.plan = plan;
    if wsl && d.version.is_none() {
        // WSL2 has no kernel module files: NVML (or its cached answer) names the version.
        match d.nvml_library().map(|lib| nvml::probe(host, nvml::key(host, None, lib), &ws.layout.nvml_cache())) {
            Some(Ok(p)) => {
                d.version = Some(p.driver_version);
                d.source = Source::Nvml;
            }
            Some(Err(e)) => d.warnings.push(format!("the WSL2 driver version is unknown: {}", e.message)),
            None => {}
        }
    }
    d
}

/// The folder of driver links children get, and why; `None` when there is no usable driver.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wiring {
    /// `.labup/driver/<version>/`.
    pub(crate) link_dir: Option<PathBuf>,
    /// For `labup env --explain`.
    pub(crate) reason: String,
    /// Things the user should know.
    pub(crate) warnings: Vec<String>,
}

/// Builds the link folder (files only, no NVML except WSL2's first run after a boot).
pub(crate) fn wire(ws: &Workspace) -> Result<Wiring> {
    let config = &ws.config;
    if config.gpu.cuda == Cuda::Off {
        return Ok(Wiring::default());
    }
    let driver = find(ws, &Host::from_env());
    wire_driver(ws, &driver)
}

fn wire_driver(ws: &Workspace, driver: &Driver) -> Result<Wiring> {
    let config = &ws.config;
    let mut w = Wiring { warnings: driver.warnings.clone(), ..Wiring::default() };
    if let (Some(dir), false) = (&driver.dir, driver.plan.links.is_empty()) {
        let name = driver.version.clone().unwrap_or_else(|| "wsl".into());
        let root = ws.layout.ensure(ws.layout.drivers())?;
        w.link_dir = Some(links::ensure(&root, &name, &driver.plan.links)?);
        let stems: std::collections::BTreeSet<&str> =
            driver.plan.links.keys().filter_map(|n| n.split(".so").next()).collect();
        w.reason = format!(
            "NVIDIA driver {} libraries ({}) linked from {} ({})",
            driver.version.as_deref().unwrap_or("(WSL2)"),
            stems.into_iter().collect::<Vec<_>>().join(", "),
            dir.dir.display(),
            dir.how
        );
    } else if config.gpu.cuda == Cuda::On {
        let why = driver.warnings.first().cloned().unwrap_or_else(|| match driver.platform {
            Platform::Macos => "macOS has no CUDA".into(),
            _ => "no NVIDIA driver was found (/sys/module/nvidia, /proc/driver/nvidia, /dev/dxg)".into(),
        });
        return Err(Fail::new(format!("`[gpu] cuda = \"on\"` but the GPU cannot be wired: {why}"))
            .hint("run `labup gpu` for details, or set `[gpu] cuda = \"auto\"`")
            .into());
    }
    Ok(w)
}

/// The link folder as it already is, from the driver's files only: no links made, no NVML, no ld
/// cache (for `labup hook`, which must be instant and write nothing, and `labup doctor`).
pub(crate) fn existing_wiring(ws: &Workspace) -> Wiring {
    let config = &ws.config;
    if config.gpu.cuda == Cuda::Off {
        return Wiring::default();
    }
    let host = Host::from_env();
    let version = detect::version_from_files(&host, envvars::get(envvars::LABUP_CUDA_DRIVER_VERSION).as_deref())
        .map(|(v, _)| v)
        .or_else(|| (detect::platform(&host) == Platform::Wsl).then(|| "wsl".to_string()));
    let link_dir = version.map(|v| ws.layout.driver(&v)).filter(|d| d.is_dir());
    Wiring {
        reason: "the NVIDIA driver's libraries, linked by `labup up`, `labup run` and `labup sync`".into(),
        link_dir,
        warnings: Vec::new(),
    }
}

/// The devices: NVML's cached answer, else NVML.
fn devices(ws: &Workspace, host: &Host, driver: &Driver) -> Result<Vec<Device>, Fail> {
    let lib = driver.nvml_library().ok_or_else(|| Fail::new("no libnvidia-ml.so.1 of the running driver was found"))?;
    let files_version = if driver.source == Source::Nvml { None } else { driver.version.as_deref() };
    nvml::probe(host, nvml::key(host, files_version, lib), &ws.layout.nvml_cache()).map(|p| p.devices)
}

fn choose_torch(config: &Config, driver: &Driver, devices: Option<&[Device]>) -> torch::Choice {
    let caps: Option<Vec<(u32, u32)>> = devices.map(|d| d.iter().filter_map(Device::capability).collect());
    torch::select(&torch::Input {
        platform: driver.platform,
        setting: &config.python.torch,
        cuda: config.gpu.cuda,
        driver: driver.version.as_deref(),
        capabilities: caps.as_deref(),
    })
}

/// Whether the requirements name torch, torchvision or torchaudio.
pub(crate) fn torch_requested(sources: &Sources) -> bool {
    let mut lines: Vec<String> = sources.packages.clone();
    for file in sources.files() {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == "pyproject.toml" {
            lines.extend(sources::pyproject_dependencies(&file).unwrap_or_default());
        } else if name.starts_with("pylock.") {
            lines.extend(sources::pylock_pins(&file).unwrap_or_default());
        } else if name.ends_with(".txt") || name.ends_with(".in") {
            lines.extend(sources::logical_lines(&std::fs::read_to_string(&file).unwrap_or_default()));
        }
    }
    lines.iter().any(|l| torch::names_torch(l))
}

/// Where the installer looks for torch with `backend` (see [`torch::route`]).
pub(crate) fn torch_route(config: &Config, sources: &Sources, backend: &torch::Backend) -> torch::Route {
    torch::route(backend, config.python.torch_index.as_deref(), own_index_settings(config, sources))
}

/// Index settings of the user's that decide where packages come from, so labup adds no torch
/// index over them: `--index-url`, `--extra-index-url` or `--no-index` in a requirement file,
/// uv's and pip's index variables, a project `uv.toml` or `[tool.uv]` with an index, and the
/// user's and system's `uv.toml` and `pip.conf`. Files are read, nothing is run.
fn own_index_settings(config: &Config, sources: &Sources) -> Option<String> {
    if let Some(found) = sources.index_settings(&config.root) {
        return Some(found);
    }
    for var in envvars::INDEX_SETTINGS {
        if envvars::get(var).is_some_and(|v| !v.trim().is_empty()) {
            return Some(format!("{var} in the environment"));
        }
    }
    let index_key = |text: &str, toml: bool| {
        text.lines().map(str::trim).any(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            (toml && l.starts_with("[[index]]"))
                || ["index-url", "extra-index-url", "index_url", "extra_index_url", "no-index", "default-index"]
                    .contains(&key)
        })
    };
    let pyproject = config.root.join("pyproject.toml");
    if let Ok(text) = std::fs::read_to_string(&pyproject) {
        let tool_uv =
            text.split("[tool.uv").skip(1).map(|t| t.split("\n[").next().unwrap_or_default()).collect::<String>();
        if text.contains("[[tool.uv.index]]") || index_key(&tool_uv, true) {
            return Some("the index settings in pyproject.toml's [tool.uv]".into());
        }
    }
    let home = envvars::get(envvars::HOME).map(PathBuf::from);
    let xdg =
        envvars::get(envvars::XDG_CONFIG_HOME).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut files: Vec<(PathBuf, bool)> = vec![(config.root.join("uv.toml"), true)];
    files.extend(envvars::get(envvars::UV_CONFIG_FILE).map(|f| (PathBuf::from(f), true)));
    files.extend(xdg.iter().map(|x| (x.join("uv/uv.toml"), true)));
    files.push((PathBuf::from("/etc/uv/uv.toml"), true));
    files.extend(envvars::get(envvars::PIP_CONFIG_FILE).map(|f| (PathBuf::from(f), false)));
    files.extend(xdg.iter().map(|x| (x.join("pip/pip.conf"), false)));
    files.extend(home.iter().map(|h| (h.join(".pip/pip.conf"), false)));
    files.push((PathBuf::from("/etc/pip.conf"), false));
    files.push((PathBuf::from("/etc/xdg/pip/pip.conf"), false));
    for (file, toml) in files {
        if std::fs::read_to_string(&file).is_ok_and(|t| index_key(&t, toml)) {
            return Some(format!("the index settings in {}", file.display()));
        }
    }
    None
}

/// The torch backend for a sync: `None` when the requirements do not name torch and
/// `[python] torch` is `auto` (then nothing about the GPU is read at all).
pub(crate) fn torch_for_sync(ws: &Workspace, sources: &Sources) -> Option<torch::Choice> {
    let config = &ws.config;
    if config.python.torch != "auto" {
        return Some(torch::select(&torch::Input {
            platform: detect::platform(&Host::from_env()),
            setting: &config.python.torch,
            cuda: config.gpu.cuda,
            driver: None,
            capabilities: None,
        }));
    }
    if !torch_requested(sources) {
        return None;
    }
    let host = Host::from_env();
    let driver = find(ws, &host);
    let devices =
        if driver.version.is_some() && config.gpu.cuda != Cuda::Off { devices(ws, &host, &driver).ok() } else { None };
    Some(choose_torch(config, &driver, devices.as_deref()))
}

/// What `labup gpu --json` prints.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// `linux`, `wsl`, `nixos` or `macos`.
    pub(crate) platform: Platform,
    /// The running driver's version.
    pub(crate) driver_version: Option<String>,
    /// The newest CUDA toolkit the driver supports.
    pub(crate) cuda_max: Option<String>,
    /// The host folder of the driver's libraries.
    pub(crate) driver_dir: Option<PathBuf>,
    /// `.labup/driver/<version>/`.
    pub(crate) link_dir: Option<PathBuf>,
    /// The GPUs.
    pub(crate) devices: Vec<Device>,
    /// The PyTorch index labup installs torch from.
    pub(crate) torch_backend: torch::Backend,
    /// Where torch is installed from: the index URL, or the user's own settings that decide.
    pub(crate) torch_index: String,
    /// Why that index.
    pub(crate) reason: String,
    /// Where the driver version came from.
    pub(crate) source: Source,
    /// How the driver's folder was found: `nixos`, `wsl`, `ld-cache`, `container-toolkit`,
    /// `usr-local-nvidia`, `configured`; `None` when no folder was.
    pub(crate) layout: Option<driverdir::Layout>,
    /// `nvidia-smi`, where the driver's layout puts it.
    pub(crate) nvidia_smi: Option<PathBuf>,
}

/// `nvidia-smi` where the layouts put it (`/usr/local/nvidia/bin`, the distribution's, WSL2's).
fn nvidia_smi(host: &Host) -> Option<PathBuf> {
    let dirs = [driverdir::USR_LOCAL_NVIDIA_BIN, "/usr/bin", detect::WSL_LIB];
    dirs.iter().map(|d| host.path(d).join("nvidia-smi")).find(|p| p.is_file())
}

/// Everything `labup gpu` shows, with warnings for stderr.
pub(crate) fn report(ws: &Workspace) -> Result<(Report, Vec<String>)> {
    let config = &ws.config;
    let host = Host::from_env();
    let driver = find(ws, &host);
    let wiring = if config.gpu.cuda == Cuda::Off { Wiring::default() } else { wire_driver(ws, &driver)? };
    let mut warnings = wiring.warnings.clone();
    let devices = match driver.version {
        Some(_) if driver.dir.is_some() => devices(ws, &host, &driver).map_err(|e| {
            warnings.push(match &e.hint {
                Some(h) => format!("{} ({h})", e.message),
                None => e.message.clone(),
            });
        }),
        _ => Err(()),
    };
    let choice = choose_torch(config, &driver, devices.as_ref().ok().map(Vec::as_slice));
    Ok((
        Report {
            platform: driver.platform,
            cuda_max: driver.version.as_deref().and_then(torch::cuda_max).map(str::to_string),
            driver_version: driver.version.clone(),
            driver_dir: driver.dir.as_ref().map(|d| d.dir.clone()),
            link_dir: wiring.link_dir,
            devices: devices.unwrap_or_default(),
            torch_index: torch_route(config, &Sources::detect(config).unwrap_or_default(), &choice.backend).describe(),
            torch_backend: choice.backend,
            reason: choice.reason,
            source: driver.source,
            layout: driver.dir.as_ref().map(|d| d.layout),
            nvidia_smi: nvidia_smi(&host),
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_is_requested_by_requirement_files_and_packages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "numpy\n-r more.txt\n").unwrap();
        std::fs::write(dir.path().join("more.txt"), "pandas\n").unwrap();
        let config = Config::load(dir.path()).unwrap();
        assert!(!torch_requested(&Sources::detect(&config).unwrap()));
        std::fs::write(dir.path().join("more.txt"), "torchvision==0.21\n").unwrap();
        assert!(torch_requested(&Sources::detect(&config).unwrap()), "found through the include");
        let packages = Sources { packages: vec!["torch".into()], ..Sources::default() };
        assert!(torch_requested(&packages));
        assert_eq!(
            torch_for_sync(&Workspace::new(config), &Sources::default()),
            None,
            "no torch, `auto`: nothing is read"
        );
    }

    #[test]
    fn host_paths_and_links_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::fake(dir.path());
        assert_eq!(host.path("/sys/module"), dir.path().join("sys/module"));
        assert_eq!(Host { root: None }.path("/sys"), PathBuf::from("/sys"));
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libcuda.so.550.1.2"), "").unwrap();
        std::os::unix::fs::symlink("/lib/libcuda.so.550.1.2", lib.join("abs")).unwrap();
        std::os::unix::fs::symlink("../lib/abs", lib.join("rel")).unwrap();
        assert_eq!(host.resolve(&lib.join("rel")), Some(lib.join("libcuda.so.550.1.2")));
        std::os::unix::fs::symlink("loop", lib.join("loop")).unwrap();
        assert_eq!(host.resolve(&lib.join("loop")), None);
    }
}
