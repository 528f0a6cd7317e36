//! `.labup/driver/<version>/`: symlinks to the NVIDIA user-space driver libraries only, so one
//! folder on a child's `LD_LIBRARY_PATH` gives it `libcuda` without the rest of the host's
//! `/usr/lib` (whose glibc-linked libraries break Nix programs).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Host;
use crate::fsutil::LockFile;

/// The driver's own user-space libraries (FACTS.md); nothing else is ever linked.
pub(crate) const LIBS: &[&str] = &[
    "libcuda",
    "libcudadebugger",
    "libnvidia-ml",
    "libnvidia-ptxjitcompiler",
    "libnvidia-nvvm",
    "libnvidia-gpucomp",
    "libnvidia-opencl",
    "libnvidia-allocator",
    "libnvidia-cfg",
];

/// WSL's CUDA needs the DirectX core library beside its `libcuda`.
const WSL_EXTRA: &[&str] = &["libdxcore"];

/// What to link, and which libraries were left out because their version is not the running one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Link name → absolute target.
    pub(crate) links: BTreeMap<String, PathBuf>,
    /// Libraries of another driver version (`libcuda.so.550.127.05`): installed, not running.
    pub(crate) mismatched: Vec<String>,
}

/// `libcuda.so.550.144.03` → (`libcuda`, `550.144.03`); `libcuda.so` → (`libcuda`, ``).
fn split(name: &str) -> Option<(&str, &str)> {
    let (stem, rest) = name.split_once(".so")?;
    if rest.is_empty() {
        Some((stem, ""))
    } else {
        rest.strip_prefix('.').map(|v| (stem, v))
    }
}

/// Plans the links for the libraries in `dir` (a host folder, already under the fs root).
///
/// Elsewhere than WSL a library counts only when the file it resolves to carries the running
/// `version` as its suffix: a driver updated without a reboot leaves libraries that the loaded
/// kernel module refuses. WSL's libraries have no version suffix and are all current.
pub(crate) fn plan(host: &Host, dir: &Path, version: &str, wsl: bool) -> Plan {
    let mut entries: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    let mut out = Plan::default();
    let wanted: Vec<&str> = LIBS.iter().chain(if wsl { WSL_EXTRA } else { &[] }).copied().collect();
    for stem in wanted {
        let mine: Vec<&String> = entries.iter().filter(|n| split(n).is_some_and(|(s, _)| s == stem)).collect();
        let target = if wsl {
            let pick = [format!("{stem}.so.1"), format!("{stem}.so")]
                .into_iter()
                .find(|n| mine.contains(&n))
                .or_else(|| mine.first().map(|m| m.to_string()));
            pick.and_then(|n| host.resolve(&dir.join(n)))
        } else {
            let mut found = None;
            for name in &mine {
                let Some(file) = host.resolve(&dir.join(name)) else {
                    continue;
                };
                let file_name = file.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                match split(&file_name) {
                    Some((s, v)) if s == stem && v == version => found = Some(file),
                    Some((s, v)) if s == stem && v.contains('.') && !out.mismatched.contains(&file_name) => {
                        out.mismatched.push(file_name);
                    }
                    _ => {}
                }
            }
            found
        };
        let Some(target) = target else {
            continue;
        };
        let mut names = vec![format!("{stem}.so"), format!("{stem}.so.1")];
        // Keep the sonames the folder itself uses too (`libnvidia-nvvm.so.4`).
        for n in &mine {
            if split(n).is_some_and(|(_, v)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                && host.resolve(&dir.join(n)).as_ref() == Some(&target)
            {
                names.push(n.to_string());
            }
        }
        for n in names {
            out.links.insert(n, target.clone());
        }
    }
    out.mismatched.sort();
    out
}

/// The links a folder holds now (name → target).
fn current(dir: &Path) -> Option<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir).ok()?.flatten() {
        out.insert(e.file_name().to_string_lossy().into_owned(), fs::read_link(e.path()).ok()?);
    }
    Some(out)
}

/// Makes `<driver_root>/<name>` hold exactly `links`, atomically and under a lock; removes the
/// folders of other driver versions. Nothing is written when it already matches (the fast path).
pub(crate) fn ensure(driver_root: &Path, name: &str, links: &BTreeMap<String, PathBuf>) -> Result<PathBuf> {
    let dest = driver_root.join(name);
    if current(&dest).as_ref() == Some(links) {
        return Ok(dest);
    }
    fs::create_dir_all(driver_root).with_context(|| format!("failed to create {}", driver_root.display()))?;
    let _lock = LockFile::acquire(&driver_root.join(".lock"), |_| {})?;
    if current(&dest).as_ref() != Some(links) {
        let tmp = driver_root.join(format!(".tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
        for (link, target) in links {
            std::os::unix::fs::symlink(target, tmp.join(link))
                .with_context(|| format!("failed to link {} in {}", link, tmp.display()))?;
        }
        swap_into_place(&tmp, &dest)?;
    }
    for e in fs::read_dir(driver_root).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n != name && !n.starts_with('.') && e.path().is_dir() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(dest)
}

/// Puts the built folder `tmp` at `dest`: one atomic exchange where the kernel offers it, so a
/// child starting meanwhile sees the old links or the new ones, never none.
fn swap_into_place(tmp: &Path, dest: &Path) -> Result<()> {
    if !dest.exists() {
        return fs::rename(tmp, dest).with_context(|| format!("failed to create {}", dest.display()));
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        if renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RenameFlags::RENAME_EXCHANGE).is_ok() {
            return fs::remove_dir_all(tmp).with_context(|| format!("failed to remove {}", tmp.display()));
        }
    }
    let old = dest.with_file_name(format!(".old-{}", std::process::id()));
    fs::rename(dest, &old).with_context(|| format!("failed to move {}", dest.display()))?;
    fs::rename(tmp, dest).with_context(|| format!("failed to create {}", dest.display()))?;
    fs::remove_dir_all(&old).with_context(|| format!("failed to remove {}", old.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn touch(dir: &Path, name: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), "").unwrap();
    }

    #[test]
    fn splits_names() {
        assert_eq!(split("libcuda.so.550.144.03"), Some(("libcuda", "550.144.03")));
        assert_eq!(split("libcuda.so"), Some(("libcuda", "")));
        assert_eq!(split("libcudart.solib"), None);
    }

    #[test]
    fn only_matching_versions_with_sonames() {
        let root = tempfile::tempdir().unwrap();
        let host = Host::fake(root.path());
        let lib = root.path().join("usr/lib64");
        touch(&lib, "libcuda.so.550.144.03");
        touch(&lib, "libcuda.so.535.54.03");
        touch(&lib, "libnvidia-nvvm.so.550.144.03");
        touch(&lib, "libcudart.so.12");
        touch(&lib, "libEGL_nvidia.so.550.144.03");
        symlink("libcuda.so.550.144.03", lib.join("libcuda.so.1")).unwrap();
        symlink("libnvidia-nvvm.so.550.144.03", lib.join("libnvidia-nvvm.so.4")).unwrap();
        let p = plan(&host, &lib, "550.144.03", false);
        let names: Vec<&str> = p.links.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["libcuda.so", "libcuda.so.1", "libnvidia-nvvm.so", "libnvidia-nvvm.so.1", "libnvidia-nvvm.so.4"]
        );
        assert_eq!(p.links["libcuda.so"], lib.join("libcuda.so.550.144.03"));
        assert_eq!(p.mismatched, ["libcuda.so.535.54.03"]);
    }

    #[test]
    fn ensure_builds_replaces_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("driver");
        let a: BTreeMap<String, PathBuf> = [("libcuda.so".to_string(), PathBuf::from("/x/libcuda.so.1"))].into();
        let first = ensure(&root, "550.1.2", &a).unwrap();
        assert_eq!(current(&first), Some(a));
        let b: BTreeMap<String, PathBuf> = [("libcuda.so.1".to_string(), PathBuf::from("/y"))].into();
        let again = ensure(&root, "550.1.2", &b).unwrap();
        assert_eq!(current(&again), Some(b.clone()));
        ensure(&root, "560.1.2", &b).unwrap();
        let mut left: Vec<String> =
            fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [".lock", "560.1.2"]);
    }
}
