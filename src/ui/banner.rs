//! The short greeting `labup up` starts with, as the old flakes greeted their users: project,
//! platform, Python, GPU. It costs no Python process and no NVML: every line comes from what
//! labup already knows or from a few small files.

use crate::browser::Platform;

/// What the banner shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    /// Project name.
    pub project: String,
    /// `linux x86_64`, `wsl x86_64`, `macos aarch64`.
    pub platform: String,
    /// The venv's Python version.
    pub python: String,
    /// `NVIDIA driver 550.144.03` or `no NVIDIA GPU`.
    pub gpu: String,
}

impl Banner {
    /// The lines, without colour.
    pub fn lines(&self) -> Vec<String> {
        vec![
            format!("labup · {}", self.project),
            format!("  platform  {}", self.platform),
            format!("  python    {}", self.python),
            format!("  gpu       {}", self.gpu),
        ]
    }
}

/// `linux x86_64`, `wsl x86_64`, `macos aarch64`.
pub fn platform_line(platform: Platform) -> String {
    let name = match platform {
        Platform::Linux => "linux",
        Platform::Wsl => "wsl",
        Platform::MacOs => "macos",
    };
    format!("{name} {}", std::env::consts::ARCH)
}

/// The GPU line from the driver's version file (no NVML: the banner must stay instant).
pub fn gpu_line(platform: Platform) -> String {
    let root = crate::envvars::get(crate::envvars::LABUP_FS_ROOT).unwrap_or_default();
    let read = |p: &str| std::fs::read_to_string(format!("{root}{p}")).ok();
    if let Some(v) = crate::envvars::get(crate::envvars::LABUP_CUDA_DRIVER_VERSION) {
        return format!("NVIDIA driver {v} (from {})", crate::envvars::LABUP_CUDA_DRIVER_VERSION);
    }
    if let Some(v) = read("/sys/module/nvidia/version") {
        return format!("NVIDIA driver {}", v.trim());
    }
    match platform {
        Platform::MacOs => "no CUDA on macOS (torch and Ollama use Metal/MPS)".into(),
        Platform::Wsl if std::path::Path::new(&format!("{root}/dev/dxg")).exists() => {
            "NVIDIA GPU through WSL (see `labup gpu`)".into()
        }
        _ => "no NVIDIA GPU".into(),
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
}
