//! What kind of host this is and which NVIDIA driver runs, from files only (no NVML).

use serde::Serialize;

use super::version::is_version;
use super::Host;

/// The kind of host, as `labup gpu` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Platform {
    /// A Linux distribution other than NixOS.
    Linux,
    /// Linux under WSL2 (the GPU is `/dev/dxg`, the driver lives on the Windows side).
    Wsl,
    /// NixOS (driver libraries in `/run/opengl-driver/lib`).
    Nixos,
    /// macOS: no CUDA.
    Macos,
}

/// Where the driver version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// `/sys/module/nvidia/version`.
    Sysfs,
    /// `/proc/driver/nvidia/version`.
    Procfs,
    /// NVML (or its cached answer).
    Nvml,
    /// `LABUP_CUDA_DRIVER_VERSION`.
    Override,
    /// The name of `libcuda.so.<version>` in `/usr/local/nvidia/lib64` (a container that sees
    /// no kernel module files).
    Library,
    /// No driver found.
    None,
}

/// WSL2's driver library folder, mapped from the Windows driver store.
pub(crate) const WSL_LIB: &str = "/usr/lib/wsl/lib";
/// NixOS's driver library folder.
pub(crate) const NIXOS_LIB: &str = "/run/opengl-driver/lib";
/// Where GKE-style container runtimes (and the GPU machines some sessions are lent) mount the
/// driver's libraries, without an ld cache entry (they set `LD_LIBRARY_PATH`, which labup does
/// not pass on).
pub(crate) const USR_LOCAL_NVIDIA_LIB: &str = "/usr/local/nvidia/lib64";

/// The kind of host.
pub(crate) fn platform(host: &Host) -> Platform {
    if cfg!(target_os = "macos") {
        Platform::Macos
    } else if host.path("/dev/dxg").exists() && host.path(WSL_LIB).is_dir() {
        Platform::Wsl
    } else if host.path("/etc/NIXOS").exists() {
        Platform::Nixos
    } else {
        Platform::Linux
    }
}

/// The running driver's version from the override, the kernel module's files, or (in a
/// container that sees neither) the one `libcuda.so.<version>` in `/usr/local/nvidia/lib64`.
pub(crate) fn version_from_files(host: &Host, override_version: Option<&str>) -> Option<(String, Source)> {
    if let Some(v) = override_version.map(str::trim).filter(|v| !v.is_empty()) {
        return Some((v.to_string(), Source::Override));
    }
    let read = |p: &str| std::fs::read_to_string(host.path(p)).ok();
    if let Some(v) = read("/sys/module/nvidia/version").map(|t| t.trim().to_string()).filter(|v| is_version(v)) {
        return Some((v, Source::Sysfs));
    }
    if let Some(v) = read("/proc/driver/nvidia/version").as_deref().and_then(parse_procfs) {
        return Some((v, Source::Procfs));
    }
    version_from_mounted_library(host).map(|v| (v, Source::Library))
}

/// The driver version named by the one `libcuda.so.<version>` in `/usr/local/nvidia/lib64`,
/// for a container that sees neither `/sys/module/nvidia` nor `/proc/driver/nvidia`.
pub(crate) fn version_from_mounted_library(host: &Host) -> Option<String> {
    let versions: Vec<String> = std::fs::read_dir(host.path(USR_LOCAL_NVIDIA_LIB))
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("libcuda.so.").map(str::to_string))
        .filter(|v| is_version(v))
        .collect();
    match versions.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// The version in `/proc/driver/nvidia/version`'s `NVRM version:` line.
pub(crate) fn parse_procfs(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    line.split_whitespace().find(|t| is_version(t)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfs_line_gives_the_version() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.144.03  Release Build  \
                    (dvs-builder@U16-I3-B03-4-3)  Tue Dec 10 10:42:37 UTC 2024\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(parse_procfs(text).as_deref(), Some("550.144.03"));
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.16  Release Build  (x)  Date\n";
        assert_eq!(parse_procfs(open).as_deref(), Some("570.86.16"));
        assert_eq!(parse_procfs("GCC version: 12.2.0\n"), None);
    }

    #[test]
    fn sysfs_then_procfs_then_nothing_and_the_override_wins() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::fake(dir.path());
        assert_eq!(version_from_files(&host, None), None);
        let proc = dir.path().join("proc/driver/nvidia");
        std::fs::create_dir_all(&proc).unwrap();
        std::fs::write(proc.join("version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.54.03  x\n").unwrap();
        assert_eq!(version_from_files(&host, None), Some(("535.54.03".into(), Source::Procfs)));
        std::fs::create_dir_all(dir.path().join("sys/module/nvidia")).unwrap();
        std::fs::write(dir.path().join("sys/module/nvidia/version"), "550.144.03\n").unwrap();
        assert_eq!(version_from_files(&host, None), Some(("550.144.03".into(), Source::Sysfs)));
        assert_eq!(version_from_files(&host, Some("560.1.2")), Some(("560.1.2".into(), Source::Override)));
    }

    #[test]
    fn platform_from_marker_files() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::fake(dir.path());
        assert_eq!(platform(&host), Platform::Linux);
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/NIXOS"), "").unwrap();
        assert_eq!(platform(&host), Platform::Nixos);
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(dir.path().join("dev/dxg"), "").unwrap();
        assert_eq!(platform(&host), Platform::Nixos, "/dev/dxg alone is not WSL");
        std::fs::create_dir_all(dir.path().join("usr/lib/wsl/lib")).unwrap();
        assert_eq!(platform(&host), Platform::Wsl);
    }
}
