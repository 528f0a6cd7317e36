//! `requirements.lock`: exact pins with hashes, headed by a digest of the inputs it came from.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sources::{logical_lines, Sources};
use crate::config::Config;

const DIGEST_MARK: &str = "# labup-inputs: ";

/// One pinned distribution in the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Normalized name.
    pub name: String,
    /// Exact version.
    pub version: String,
}

/// The text of a lock: header, carried index options, then the resolved pins.
pub fn render(digest: &str, options: &[String], body: &str) -> String {
    let mut out = String::from(
        "# Written by labup from the project's requirements (`labup lock` rewrites it).\n\
         # Commit this file; do not edit it by hand.\n",
    );
    out.push_str(&format!("{DIGEST_MARK}{digest}\n"));
    for opt in options {
        out.push_str(opt);
        out.push('\n');
    }
    let body = body.trim();
    if !body.is_empty() {
        out.push_str(body);
        out.push('\n');
    }
    out
}

/// The inputs digest a lock was written for.
pub fn digest_of(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix(DIGEST_MARK)).map(str::trim)
}

/// The pins of a lock (options, hashes and markers ignored).
pub fn pins(text: &str) -> Vec<Pin> {
    logical_lines(text)
        .iter()
        .filter(|l| !l.starts_with('-'))
        .filter_map(|l| {
            let req = l.split([';', ' ']).next()?;
            let (name, version) = req.split_once("==")?;
            Some(Pin { name: super::venv::normalize(name.trim()), version: version.trim().to_string() })
        })
        .collect()
}

/// Distinct packages in a lock (a universal lock may pin one name per marker).
pub fn package_count(text: &str) -> usize {
    pins(text).into_iter().map(|p| p.name).collect::<std::collections::BTreeSet<_>>().len()
}

/// A digest of everything resolution depends on: input files, packages, the configured Python
/// version and torch backend (the configured one and, when torch is an input, the chosen one:
/// its `+cuXYZ` pins differ). Not the platform otherwise: a uv lock is universal.
pub fn inputs_digest(sources: &Sources, config: &Config, torch: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"labup-lock-v1\n");
    for file in sources.files() {
        let rel = file.strip_prefix(&config.root).unwrap_or(&file);
        h.update(format!("file {}\n", rel.display()));
        h.update(std::fs::read(&file).unwrap_or_default());
        h.update(b"\n");
    }
    for p in &sources.packages {
        h.update(format!("package {p}\n"));
    }
    h.update(format!("python {:?}\ntorch {}\n", config.python.version, config.python.torch));
    if let Some(backend) = torch {
        h.update(format!("torch-backend {backend}\n"));
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// The lock for a torch backend: the configured file without torch (or with PyPI's `default`
/// wheels), `<stem>.<backend>.<ext>` otherwise (`requirements.cu126.lock`). Torch wheels differ per
/// backend, so a GPU box, a laptop and CI each keep their own committed lock instead of
/// re-resolving (and rewriting) one shared file every time a machine of another kind syncs.
pub fn path_for_backend(lock: &Path, backend: Option<&str>) -> PathBuf {
    let Some(backend) = backend.filter(|b| *b != "default") else { return lock.to_path_buf() };
    let name = lock.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let renamed = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{backend}.{ext}"),
        _ => format!("{name}.{backend}"),
    };
    lock.with_file_name(renamed)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_torch_backend_has_its_own_lock() {
        let lock = Path::new("/p/requirements.lock");
        assert_eq!(path_for_backend(lock, None), lock);
        assert_eq!(path_for_backend(lock, Some("default")), lock);
        assert_eq!(path_for_backend(lock, Some("cu126")), Path::new("/p/requirements.cu126.lock"));
        assert_eq!(path_for_backend(lock, Some("cpu")), Path::new("/p/requirements.cpu.lock"));
        assert_eq!(path_for_backend(Path::new("/p/deps"), Some("cpu")), Path::new("/p/deps.cpu"));
    }

    #[test]
    fn render_then_read_digest_and_pins() {
        let body =
            "alpha==2.0 \\\n    --hash=sha256:aa\nBeta_Pkg==1.0 ; python_version >= '3.8' \\\n    --hash=sha256:bb\n";
        let text = render("sha256:1", &["--no-index".into(), "--find-links ./w".into()], body);
        assert_eq!(digest_of(&text), Some("sha256:1"));
        assert_eq!(
            pins(&text),
            [
                Pin { name: "alpha".into(), version: "2.0".into() },
                Pin { name: "beta-pkg".into(), version: "1.0".into() }
            ]
        );
        assert!(text.contains("--find-links ./w\nalpha==2.0"));
        let universal = "numpy==2.4 ; python_version < '3.12'\nnumpy==2.5 ; python_version >= '3.12'\n";
        assert_eq!(package_count(universal), 1);
    }

    #[test]
    fn digest_changes_with_inputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "alpha\n").unwrap();
        let config = Config::load(dir.path()).unwrap();
        let sources = Sources::detect(&config).unwrap();
        let a = inputs_digest(&sources, &config, None);
        assert_eq!(a, inputs_digest(&sources, &config, None));
        assert_ne!(a, inputs_digest(&sources, &config, Some("cu124")), "the torch backend is an input");
        std::fs::write(dir.path().join("requirements.txt"), "alpha\nbeta\n").unwrap();
        assert_ne!(a, inputs_digest(&sources, &config, None));
    }
}
