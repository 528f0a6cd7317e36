//! The GPU check: an NVIDIA driver, its user-space libraries, and labup's link folder.
//!
//! The check reads [`GpuFacts`] only. [`detect`] fills them from the cheap sources (sysfs,
//! procfs, `/dev/dxg`, a few folders); the GPU module (`labup gpu`) is meant to replace that
//! one call with its own detection, so both commands always agree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{host_path, Context, Verdict};
use crate::config::display_path;
use crate::envvars;
use crate::project::Workspace;

/// What the GPU checks need to know about the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct GpuFacts {
    /// The running driver's version (`550.144.03`).
    pub(crate) driver_version: Option<String>,
    /// Where the version came from: `sysfs`, `procfs`, `override`, `library`, or `none`.
    pub(crate) source: String,
    /// WSL2's GPU device (`/dev/dxg`) is there.
    pub(crate) wsl: bool,
    /// The folder with the driver's `libcuda.so.1`.
    pub(crate) driver_dir: Option<PathBuf>,
    /// The driver's versions among the `libcuda.so.<version>` files of that folder.
    pub(crate) library_versions: Vec<String>,
    /// `.labup/driver/<version>/`, when it exists.
    pub(crate) link_dir: Option<PathBuf>,
}

impl GpuFacts {
    /// Whether there is an NVIDIA GPU to use.
    pub(crate) fn present(&self) -> bool {
        self.driver_version.is_some() || self.wsl
    }
}

/// The facts from the cheap sources, every host path read under `root`.
pub(crate) fn detect(ws: &Workspace, parent: &BTreeMap<String, String>, root: &Path) -> GpuFacts {
    let config = &ws.config;
    // The same sources, in the same order, as `labup gpu` (override, sysfs, procfs).
    let override_version = parent.get(envvars::LABUP_CUDA_DRIVER_VERSION).map(String::as_str);
    let host = crate::gpu::Host::fake(root);
    let found = crate::gpu::detect::version_from_files(&host, override_version);
    let source = match found.as_ref().map(|(_, s)| *s) {
        Some(crate::gpu::Source::Override) => "override",
        Some(crate::gpu::Source::Sysfs) => "sysfs",
        Some(crate::gpu::Source::Library) => "library",
        Some(_) => "procfs",
        None => "none",
    };
    let driver_version = found.map(|(v, _)| v);
    let wsl = host_path(root, "/dev/dxg").exists();
    let mut facts = GpuFacts { driver_version, source: source.into(), wsl, ..GpuFacts::default() };
    if !facts.present() {
        return facts;
    }
    let mut dirs: Vec<PathBuf> = parent
        .get(envvars::LABUP_DRIVER_DIRS)
        .map(|v| v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect())
        .unwrap_or_default();
    dirs.extend(config.gpu.driver_dirs.iter().cloned());
    dirs.push(host_path(root, "/run/opengl-driver/lib"));
    dirs.push(host_path(root, "/usr/lib/wsl/lib"));
    dirs.extend(super::resolve::host_dirs(root));
    dirs.push(host_path(root, crate::gpu::detect::USR_LOCAL_NVIDIA_LIB));
    facts.driver_dir = dirs.into_iter().find(|d| d.join("libcuda.so.1").exists());
    if let Some(dir) = &facts.driver_dir {
        let mut versions: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("libcuda.so.")?.to_string().into())
            .filter(|v: &String| v.contains('.'))
            .collect();
        versions.sort();
        facts.library_versions = versions;
    }
    if let Some(v) = &facts.driver_version {
        let link = ws.layout.driver(v);
        facts.link_dir = link.is_dir().then_some(link);
    }
    facts
}

/// The check.
pub(crate) fn check(ctx: &Context) -> Verdict {
    verdict(&ctx.gpu)
}

/// The verdict from the facts (pure).
pub(crate) fn verdict(g: &GpuFacts) -> Verdict {
    if !g.present() {
        return Verdict::skip("no NVIDIA GPU");
    }
    let driver = match &g.driver_version {
        Some(v) => format!("NVIDIA driver {v}"),
        None => "the WSL GPU (/dev/dxg)".to_string(),
    };
    let Some(dir) = &g.driver_dir else {
        return Verdict::fail(format!("{driver} is loaded, but its libcuda.so.1 was not found"))
            .fix("set `LABUP_DRIVER_DIRS` (or `[gpu] driver-dirs`) to the folder that holds libcuda.so.1");
    };
    if let Some(v) = &g.driver_version {
        if !g.library_versions.is_empty() && !g.library_versions.contains(v) {
            return Verdict::fail(format!(
                "the kernel runs {driver}, but the libraries in {} are version {}: the driver was updated without a reboot",
                dir.display(),
                g.library_versions.join(", ")
            ))
            .fix("reboot");
        }
    }
    let Some(link) = &g.link_dir else {
        return Verdict::warn(format!(
            "{driver} with libraries in {}; labup has not linked them for the venv yet",
            dir.display()
        ))
        .fix("labup up (or `labup gpu`) links them into .labup/driver/");
    };
    if !link.join("libcuda.so.1").exists() {
        return Verdict::fail(format!("the driver link folder {} has no libcuda.so.1", display_path(link)))
            .fix(format!("rm -r {} && labup up", display_path(link)));
    }
    Verdict::ok(format!("{driver}, libraries in {}, linked in {}", dir.display(), display_path(link)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const PROC: &str = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.144.03  Mon Dec 16 18:59:07 UTC 2024\nGCC version:  gcc version 12.2.0\n";

    #[test]
    fn reads_the_procfs_version() {
        assert_eq!(crate::gpu::detect::parse_procfs(PROC).as_deref(), Some("550.144.03"));
        assert_eq!(crate::gpu::detect::parse_procfs("GCC version: 12"), None);
    }

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, text) in files {
            let path = host_path(d.path(), p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        d
    }

    fn config() -> (tempfile::TempDir, Workspace) {
        let d = tempfile::tempdir().unwrap();
        let c = Workspace::load(d.path()).unwrap();
        (d, c)
    }

    #[test]
    fn no_gpu_is_skipped() {
        let root = root_with(&[("/proc/version", "Linux")]);
        let (_p, c) = config();
        let facts = detect(&c, &BTreeMap::new(), root.path());
        assert!(!facts.present());
        assert_eq!(verdict(&facts).status, Status::Skip);
    }

    #[test]
    fn nixos_driver_found_but_not_linked_warns() {
        let root = root_with(&[
            ("/sys/module/nvidia/version", "550.144.03\n"),
            ("/run/opengl-driver/lib/libcuda.so.1", ""),
            ("/run/opengl-driver/lib/libcuda.so.550.144.03", ""),
        ]);
        let (p, c) = config();
        let facts = detect(&c, &BTreeMap::new(), root.path());
        assert_eq!(facts.driver_version.as_deref(), Some("550.144.03"));
        assert_eq!(facts.source, "sysfs");
        assert_eq!(facts.driver_dir, Some(root.path().join("run/opengl-driver/lib")));
        assert_eq!(verdict(&facts).status, Status::Warn);
        let link = p.path().join(".labup/driver/550.144.03");
        std::fs::create_dir_all(&link).unwrap();
        let facts = detect(&c, &BTreeMap::new(), root.path());
        assert_eq!(facts.link_dir, Some(link.clone()));
        assert_eq!(verdict(&facts).status, Status::Fail, "link folder without libcuda");
        std::fs::write(link.join("libcuda.so.1"), "").unwrap();
        assert_eq!(verdict(&facts).status, Status::Ok);
    }

    #[test]
    fn driver_without_libraries_fails_and_update_without_reboot_says_reboot() {
        let root = root_with(&[("/proc/driver/nvidia/version", PROC)]);
        let (_p, c) = config();
        let facts = detect(&c, &BTreeMap::new(), root.path());
        assert_eq!(facts.source, "procfs");
        let v = verdict(&facts);
        assert_eq!(v.status, Status::Fail);
        assert!(v.fix.unwrap().contains("LABUP_DRIVER_DIRS"));
        let root = root_with(&[
            ("/proc/driver/nvidia/version", PROC),
            ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", ""),
            ("/usr/lib/x86_64-linux-gnu/libcuda.so.560.35.03", ""),
        ]);
        let v = verdict(&detect(&c, &BTreeMap::new(), root.path()));
        assert_eq!(v.fix.as_deref(), Some("reboot"), "{}", v.message);
    }

    #[test]
    fn wsl_and_override() {
        let root = root_with(&[("/dev/dxg", ""), ("/usr/lib/wsl/lib/libcuda.so.1", "")]);
        let (_p, c) = config();
        let parent = BTreeMap::from([(envvars::LABUP_CUDA_DRIVER_VERSION.to_string(), "560.35.03".to_string())]);
        let facts = detect(&c, &parent, root.path());
        assert!(facts.wsl);
        assert_eq!((facts.driver_version.as_deref(), facts.source.as_str()), (Some("560.35.03"), "override"));
        assert_eq!(facts.driver_dir, Some(root.path().join("usr/lib/wsl/lib")));
    }
}
