//! Which host folder holds the running driver's libraries.

use std::path::PathBuf;

use serde::Serialize;

use super::detect::{Platform, NIXOS_LIB, USR_LOCAL_NVIDIA_LIB, WSL_LIB};
use super::{ldcache, links, Host};

/// … and its tools (`nvidia-smi`), beside the libraries in `detect::USR_LOCAL_NVIDIA_LIB`.
pub(crate) const USR_LOCAL_NVIDIA_BIN: &str = "/usr/local/nvidia/bin";

/// How the driver's folder is laid out on this host, as `labup gpu` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Layout {
    /// NixOS's `/run/opengl-driver/lib` (or nix-system-graphics elsewhere).
    Nixos,
    /// WSL2's `/usr/lib/wsl/lib`.
    Wsl,
    /// A distribution's driver package, found through the ld cache.
    LdCache,
    /// Injected into a container by NVIDIA's container toolkit or CDI, which refresh the
    /// container's ld cache.
    ContainerToolkit,
    /// Mounted at `/usr/local/nvidia/lib64` (GKE and similar), with no ld cache entry.
    UsrLocalNvidia,
    /// A folder the user named (`LABUP_DRIVER_DIRS`, `[gpu] driver-dirs`).
    Configured,
}

/// A candidate folder and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The folder as labup reads it (under the fs root).
    pub(crate) dir: PathBuf,
    /// Where it came from, for `labup env --explain`.
    pub(crate) how: String,
    /// The layout it stands for.
    pub(crate) layout: Layout,
}

/// Whether this is a container (docker's, podman's markers, or a Kubernetes service account).
pub(crate) fn in_container(host: &Host) -> bool {
    ["/.dockerenv", "/run/.containerenv", "/var/run/secrets/kubernetes.io"].iter().any(|p| host.path(p).exists())
}

/// The folders to look in, in order: the platform's own, the ld cache's (a distribution's
/// package, or what the container toolkit or CDI injected), `/usr/local/nvidia/lib64`, then
/// `LABUP_DRIVER_DIRS` and `[gpu] driver-dirs` (used as given: the user named them).
pub(crate) fn candidates(
    host: &Host,
    platform: Platform,
    env_dirs: &[PathBuf],
    config_dirs: &[PathBuf],
) -> Vec<Candidate> {
    let mut out = Vec::new();
    match platform {
        Platform::Wsl => {
            out.push(Candidate { dir: host.path(WSL_LIB), how: format!("WSL2's {WSL_LIB}"), layout: Layout::Wsl });
        }
        Platform::Macos => return out,
        Platform::Nixos | Platform::Linux => {
            // Also present on other distributions set up with nix-system-graphics.
            let nixos = host.path(NIXOS_LIB);
            if nixos.is_dir() {
                out.push(Candidate { dir: nixos, how: NIXOS_LIB.to_string(), layout: Layout::Nixos });
            }
            if platform == Platform::Linux {
                let cache = host.path("/etc/ld.so.cache");
                let (layout, how) = if in_container(host) {
                    (Layout::ContainerToolkit, "found in /etc/ld.so.cache (NVIDIA container toolkit or CDI)")
                } else {
                    (Layout::LdCache, "found in /etc/ld.so.cache")
                };
                for dir in ldcache::dirs_of(&ldcache::read(host.root(), &cache), "libcuda.so.1") {
                    out.push(Candidate { dir: host.path(&dir), how: how.into(), layout });
                }
                let mounted = host.path(USR_LOCAL_NVIDIA_LIB);
                if mounted.is_dir() && !out.iter().any(|c| c.dir == mounted) {
                    out.push(Candidate {
                        dir: mounted,
                        how: format!("{USR_LOCAL_NVIDIA_LIB}, mounted by the container runtime"),
                        layout: Layout::UsrLocalNvidia,
                    });
                }
            }
        }
    }
    for d in env_dirs {
        out.push(Candidate { dir: d.clone(), how: "from LABUP_DRIVER_DIRS".into(), layout: Layout::Configured });
    }
    for d in config_dirs {
        out.push(Candidate { dir: d.clone(), how: "from `[gpu] driver-dirs`".into(), layout: Layout::Configured });
    }
    out
}

/// The first candidate with libraries of the running version; else the first with any
/// `libcuda` at all (its plan then names the mismatched libraries); else none.
pub(crate) fn choose(
    host: &Host,
    candidates: &[Candidate],
    version: &str,
    wsl: bool,
) -> Option<(Candidate, links::Plan)> {
    let mut fallback = None;
    for c in candidates {
        let plan = links::plan(host, &c.dir, version, wsl);
        if plan.links.contains_key("libcuda.so.1") {
            return Some((c.clone(), plan));
        }
        if fallback.is_none() && !plan.mismatched.is_empty() {
            fallback = Some((c.clone(), plan));
        }
    }
    fallback
}
