//! The short greeting `labup up` starts with, as the old flakes greeted their users: project,
//! platform, Python, GPU. It costs no Python process and no NVML: every line comes from what
//! labup already knows or from a few small files.

use crate::envvars;
use crate::gpu::detect::{self, Platform};
use crate::gpu::{torch, Host};

/// What the banner shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Banner {
    /// Project name.
    pub(crate) project: String,
    /// `linux x86_64`, `wsl x86_64`, `macos aarch64`.
    pub(crate) platform: String,
    /// The venv's Python version.
    pub(crate) python: String,
    /// `NVIDIA driver 550.144.03` or `no NVIDIA GPU`.
    pub(crate) gpu: String,
}

impl Banner {
    /// The lines, without colour.
    pub(crate) fn lines(&self) -> Vec<String> {
        vec![
            format!("labup · {}", self.project),
            format!("  platform  {}", self.platform),
            format!("  python    {}", self.python),
            format!("  gpu       {}", self.gpu),
        ]
    }
}

/// `linux x86_64`, `nixos x86_64`, `wsl x86_64`, `macos aarch64`.
pub(crate) fn platform_line(platform: Platform) -> String {
    let name = match platform {
        Platform::Linux => "linux",
        Platform::Nixos => "nixos",
        Platform::Wsl => "wsl",
        Platform::Macos => "macos",
    };
    format!("{name} {}", std::env::consts::ARCH)
}

/// The GPU line from the driver's files (no NVML: the banner must stay instant).
pub(crate) fn gpu_line(host: &Host, platform: Platform) -> String {
    let version = detect::version_from_files(host, envvars::get(envvars::LABUP_CUDA_DRIVER_VERSION).as_deref());
    match (version, platform) {
        (Some((v, _)), _) => match torch::cuda_max(&v) {
            Some(cuda) => format!("NVIDIA driver {v} (CUDA up to {cuda})"),
            None => format!("NVIDIA driver {v}"),
        },
        (None, Platform::Wsl) => "NVIDIA GPU through WSL2 (`labup gpu` for details)".into(),
        (None, Platform::Macos) => "no CUDA on macOS (torch and Ollama use Metal/MPS)".into(),
        (None, _) => "no NVIDIA GPU".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_lines() {
        let b = Banner {
            project: "demo".into(),
            platform: "linux x86_64".into(),
            python: "3.11.7 (.venv)".into(),
            gpu: "no NVIDIA GPU".into(),
        };
        assert_eq!(b.lines()[0], "labup · demo");
        assert_eq!(b.lines()[3], "  gpu       no NVIDIA GPU");
        assert_eq!(platform_line(Platform::Wsl), format!("wsl {}", std::env::consts::ARCH));
    }

    #[test]
    fn gpu_line_on_fake_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::fake(dir.path());
        assert_eq!(gpu_line(&host, Platform::Linux), "no NVIDIA GPU");
        std::fs::create_dir_all(dir.path().join("sys/module/nvidia")).unwrap();
        std::fs::write(dir.path().join("sys/module/nvidia/version"), "550.144.03\n").unwrap();
        assert_eq!(gpu_line(&host, Platform::Linux), "NVIDIA driver 550.144.03 (CUDA up to 12.4)");
    }
}
