//! The sync fingerprint and the marker `.venv/.labup.json` that records it.
//!
//! Equal fingerprint and a healthy venv mean there is nothing to do: checking costs a few file
//! reads and hashes, no Python process and no network.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::interpreter::Interpreter;
use super::lockfile::hex;
use super::sources::Sources;
use crate::config::Config;
use crate::fsutil;
use crate::gpu::torch::Backend;

/// The marker's file name inside the venv.
pub(crate) const MARKER: &str = ".labup.json";

/// What a finished sync recorded; written last, atomically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// Version of labup that wrote it.
    pub(crate) labup: String,
    /// The fingerprint the venv was synced to.
    pub(crate) fingerprint: String,
    /// The base interpreter's version.
    pub(crate) python: String,
    /// The base interpreter's path.
    pub(crate) interpreter: PathBuf,
    /// `uv` or `pip`.
    pub(crate) installer: String,
    /// Distributions installed.
    pub(crate) packages: usize,
    /// Modification time of `site-packages`: an install or removal by hand changes it.
    pub(crate) site_packages: Option<(u64, i128)>,
}

/// Hash of every input file, the lock, the interpreter identity, the Python settings,
/// the platform, the torch backend (a driver update that changes it re-syncs) and labup's version.
pub(crate) fn compute(config: &Config, interp: &Interpreter, sources: &Sources, torch: Option<&Backend>) -> String {
    let mut h = Sha256::new();
    h.update(format!("labup {}\n", env!("CARGO_PKG_VERSION")));
    h.update(format!("platform {}-{}\n", std::env::consts::OS, std::env::consts::ARCH));
    h.update(format!(
        "interpreter {} {} {} {}\n",
        interp.path.display(),
        interp.resolved.display(),
        interp.stamp.0,
        interp.stamp.1
    ));
    h.update(format!("python {}\n", serde_json::to_string(&config.python).unwrap_or_default()));
    // Packages services add (jupyterlab) are inputs too: enabling Jupyter must sync.
    h.update(format!("packages {:?}\n", sources.packages));
    if let Some(backend) = torch {
        h.update(format!("torch-backend {backend}\n"));
    }
    for file in sources.files().iter().chain(std::iter::once(&config.python.lock)) {
        match std::fs::read(file) {
            Ok(data) => h.update(format!("file {} {}\n", file.display(), hex(&Sha256::digest(data)))),
            Err(_) => h.update(format!("file {} missing\n", file.display())),
        }
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// Reads the marker; a missing or unreadable one is `None`.
pub(crate) fn read(venv: &Path) -> Option<Marker> {
    serde_json::from_slice(&std::fs::read(venv.join(MARKER)).ok()?).ok()
}

/// Writes the marker atomically.
pub(crate) fn write(venv: &Path, marker: &Marker) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(marker)?;
    json.push(b'\n');
    fsutil::atomic_write(&venv.join(MARKER), &json)
}

/// Removes the marker before the venv is changed, so an interrupted sync is never taken for a good one.
pub(crate) fn clear(venv: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(venv.join(MARKER)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_follows_inputs_interpreter_and_lock() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("requirements.txt"), "alpha\n").unwrap();
        let config = Config::load(d).unwrap();
        let sources = Sources::detect(&config).unwrap();
        let interp = Interpreter { path: "/a/python3".into(), resolved: "/a/python3.11".into(), stamp: (1, 1) };
        let base = compute(&config, &interp, &sources, None);
        assert_eq!(base, compute(&config, &interp, &sources, None));
        let moved = Interpreter { path: "/b/python3".into(), ..interp.clone() };
        assert_ne!(base, compute(&config, &moved, &sources, None));
        std::fs::write(d.join("requirements.lock"), "alpha==1\n").unwrap();
        let locked = compute(&config, &interp, &sources, None);
        assert_ne!(base, locked);
        std::fs::write(d.join("requirements.txt"), "alpha>=1\n").unwrap();
        assert_ne!(locked, compute(&config, &interp, &sources, None));
        let cu124 = compute(&config, &interp, &sources, Some(&Backend::Cuda("cu124".into())));
        assert_ne!(cu124, compute(&config, &interp, &sources, None));
        assert_ne!(cu124, compute(&config, &interp, &sources, Some(&Backend::Cuda("cu128".into()))));
    }

    #[test]
    fn marker_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let m = Marker {
            labup: "0".into(),
            fingerprint: "f".into(),
            python: "3.11.7".into(),
            interpreter: "/x".into(),
            installer: "uv".into(),
            packages: 2,
            site_packages: Some((1, 2)),
        };
        assert_eq!(read(dir.path()), None);
        write(dir.path(), &m).unwrap();
        assert_eq!(read(dir.path()), Some(m));
        clear(dir.path()).unwrap();
        clear(dir.path()).unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
