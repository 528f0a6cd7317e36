//! Which host folder holds the running driver's libraries.

use std::path::PathBuf;

use super::detect::{Platform, NIXOS_LIB, WSL_LIB};
use super::{ldcache, links, Host};

/// A candidate folder and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The folder as labup reads it (under the fs root).
    pub dir: PathBuf,
    /// Where it came from, for `labup env --explain`.
    pub how: String,
}

/// The folders to look in, in order: the platform's own, the ld cache's, then
/// `LABUP_DRIVER_DIRS` and `[gpu] driver-dirs` (used as given: the user named them).
pub fn candidates(host: &Host, platform: Platform, env_dirs: &[PathBuf], config_dirs: &[PathBuf]) -> Vec<Candidate> {
    let mut out = Vec::new();
    match platform {
        Platform::Wsl => out.push(Candidate { dir: host.path(WSL_LIB), how: format!("WSL2's {WSL_LIB}") }),
        Platform::Macos => return out,
        Platform::Nixos | Platform::Linux => {
            // Also present on other distributions set up with nix-system-graphics.
            let nixos = host.path(NIXOS_LIB);
            if nixos.is_dir() {
                out.push(Candidate { dir: nixos, how: NIXOS_LIB.to_string() });
            }
            if platform == Platform::Linux {
                let cache = host.path("/etc/ld.so.cache");
                for dir in ldcache::dirs_of(&ldcache::read(host.root(), &cache), "libcuda.so.1") {
                    out.push(Candidate { dir: host.path(&dir), how: "found in /etc/ld.so.cache".into() });
                }
            }
        }
    }
    for d in env_dirs {
        out.push(Candidate { dir: d.clone(), how: "from LABUP_DRIVER_DIRS".into() });
    }
    for d in config_dirs {
        out.push(Candidate { dir: d.clone(), how: "from `[gpu] driver-dirs`".into() });
    }
    out
}

/// The first candidate with libraries of the running version; else the first with any
/// `libcuda` at all (its plan then names the mismatched libraries); else none.
pub fn choose(host: &Host, candidates: &[Candidate], version: &str, wsl: bool) -> Option<(Candidate, links::Plan)> {
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
