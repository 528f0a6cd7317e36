//! `requirements.lock`: exact pins with hashes, headed by a digest of the inputs it came from.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::sources::{logical_lines, Sources};
use crate::config::Config;
use crate::gpu::torch::Backend;

const DIGEST_MARK: &str = "# labup-inputs: ";

/// One pinned distribution in the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pin {
    /// Normalized name.
    pub(crate) name: String,
    /// Exact version.
    pub(crate) version: String,
}

/// The text of a lock: header, carried index options, then the resolved pins.
pub(crate) fn render(digest: &str, options: &[String], body: &str) -> String {
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
pub(crate) fn digest_of(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix(DIGEST_MARK)).map(str::trim)
}

/// The pins of a lock (options, hashes and markers ignored).
pub(crate) fn pins(text: &str) -> Vec<Pin> {
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

/// Whether a logical lock line is an install option (`--find-links`, `--no-index`) rather than
/// something to install (`-e` installs).
fn is_option(line: &str) -> bool {
    line.starts_with('-') && !line.starts_with("-e ") && !line.starts_with("-e\t") && !line.starts_with("--editable")
}

/// The names a lock installs: pins and named direct references (`name @ url`, `-e name @ url`);
/// the flag is true when a line installs a path or URL without naming it (`-e ./pkg`, as uv writes).
pub(crate) fn names(text: &str) -> (BTreeSet<String>, bool) {
    let mut names = BTreeSet::new();
    let mut unnamed = false;
    for line in logical_lines(text).iter().filter(|l| !is_option(l)) {
        let req = line.strip_prefix("--editable").or_else(|| line.strip_prefix("-e")).unwrap_or(line).trim_start();
        let end = req.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(req.len());
        let rest = req[end..].trim_start();
        let named = end > 0
            && !req.starts_with('.')
            && (rest.is_empty()
                || rest.starts_with("==")
                || rest.starts_with('@')
                || rest.starts_with([';', '[', ' ']));
        if named && !req[..end].contains("://") && !rest.starts_with("://") {
            names.insert(super::venv::normalize(&req[..end]));
        } else {
            unnamed = true;
        }
    }
    (names, unnamed)
}

/// The lock as two requirement files for pip, whose hash-checking mode wants a hash on every
/// line of a file or on none: (hashed entries, entries pip cannot hash), each with the lock's
/// options, relative `--find-links` made absolute against `lock_dir` (the files live in
/// `.labup/tmp`). Either may have no entries.
pub(crate) fn split_for_pip(text: &str, lock_dir: &Path) -> (String, String, usize, usize) {
    let (mut options, mut hashed, mut plain) = (String::new(), String::new(), String::new());
    let (mut n_hashed, mut n_plain) = (0, 0);
    for line in logical_lines(text) {
        if is_option(&line) {
            options.push_str(&absolute_find_links(&line, lock_dir));
            options.push('\n');
        } else if line.contains("--hash") {
            hashed.push_str(&line);
            hashed.push('\n');
            n_hashed += 1;
        } else {
            plain.push_str(&line);
            plain.push('\n');
            n_plain += 1;
        }
    }
    (format!("{options}{hashed}"), format!("{options}{plain}"), n_hashed, n_plain)
}

/// A lock text for a copy in another folder: relative `--find-links` become absolute against
/// `lock_dir` (paths to install, `-e ./pkg`, are relative to the project folder, where the
/// installers run, and stay as they are).
pub(crate) fn relocated(text: &str, lock_dir: &Path) -> String {
    text.lines().map(|l| absolute_find_links(l, lock_dir) + "\n").collect()
}

fn absolute_find_links(line: &str, lock_dir: &Path) -> String {
    let value = line.strip_prefix("--find-links").or_else(|| line.strip_prefix("-f"));
    let Some(value) = value.filter(|v| v.starts_with([' ', '=', '\t'])) else {
        return line.to_string();
    };
    let value = value[1..].trim();
    if value.contains("://") || Path::new(value).is_absolute() {
        return line.to_string();
    }
    format!("--find-links {}", lock_dir.join(value).display())
}

/// Distinct packages in a lock (a universal lock may pin one name per marker).
pub(crate) fn package_count(text: &str) -> usize {
    pins(text).into_iter().map(|p| p.name).collect::<BTreeSet<_>>().len()
}

/// A digest of everything resolution depends on: input files, packages, the configured Python
/// version and torch backend (the configured one and, when torch is an input, the chosen one:
/// its `+cuXYZ` pins differ). Not the platform otherwise: a uv lock is universal.
pub(crate) fn inputs_digest(sources: &Sources, config: &Config, torch: Option<&Backend>) -> String {
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
    if let Some(index) = &config.python.torch_index {
        h.update(format!("torch-index {index}\n"));
    }
    if let Some(backend) = torch {
        h.update(format!("torch-backend {backend}\n"));
    }
    format!("sha256:{}", hex(&h.finalize()))
}

/// The lock for a torch backend: the configured file without torch (or with PyPI's `default`
/// wheels), `<stem>.<backend>.<ext>` otherwise (`requirements.cu126.lock`). Torch wheels differ per
/// backend, so a GPU box, a laptop and CI each keep their own committed lock instead of
/// re-resolving (and rewriting) one shared file every time a machine of another kind syncs.
pub(crate) fn path_for_backend(lock: &Path, backend: Option<&Backend>) -> PathBuf {
    let Some(backend) = backend.filter(|b| b.is_pytorch_index()) else { return lock.to_path_buf() };
    let name = lock.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let renamed = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{backend}.{ext}"),
        _ => format!("{name}.{backend}"),
    };
    lock.with_file_name(renamed)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_torch_backend_has_its_own_lock() {
        let lock = Path::new("/p/requirements.lock");
        let cu126 = Backend::Cuda("cu126".into());
        assert_eq!(path_for_backend(lock, None), lock);
        assert_eq!(path_for_backend(lock, Some(&Backend::Pypi)), lock);
        assert_eq!(path_for_backend(lock, Some(&cu126)), Path::new("/p/requirements.cu126.lock"));
        assert_eq!(path_for_backend(lock, Some(&Backend::Cpu)), Path::new("/p/requirements.cpu.lock"));
        assert_eq!(path_for_backend(Path::new("/p/deps"), Some(&Backend::Cpu)), Path::new("/p/deps.cpu"));
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
    fn names_of_pins_and_direct_references() {
        let text = "--no-index\n--find-links ./w\nalpha==1 \\\n    --hash=sha256:a\n-e mypkg @ file:///p/mypkg\n\
                    Tool @ file:///p/tool\nvcs @ git+https://x/r@abc\n";
        let (names, unnamed) = names(text);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["alpha", "mypkg", "tool", "vcs"]);
        assert!(!unnamed);
        assert!(names_unnamed("-e ./mypkg\n"));
        assert!(names_unnamed("./dist/x.whl\n"));
        assert!(names_unnamed("https://x/y.whl\n"));
    }

    fn names_unnamed(text: &str) -> bool {
        let (n, unnamed) = names(text);
        n.is_empty() && unnamed
    }

    #[test]
    fn pip_gets_hashed_and_unhashed_files_with_absolute_find_links() {
        let text = "# c\n--no-index\n--find-links ./w\n-f /abs\nalpha==1 \\\n    --hash=sha256:a\n\
                    # not hashed: mypkg (why)\n-e mypkg @ file:///p/mypkg\n";
        let (hashed, plain, h, p) = split_for_pip(text, Path::new("/proj"));
        assert_eq!((h, p), (1, 1));
        assert_eq!(hashed, "--no-index\n--find-links /proj/./w\n-f /abs\nalpha==1      --hash=sha256:a\n");
        assert_eq!(plain, "--no-index\n--find-links /proj/./w\n-f /abs\n-e mypkg @ file:///p/mypkg\n");
        assert_eq!(relocated("--find-links=w\nalpha\n", Path::new("/proj")), "--find-links /proj/w\nalpha\n");
    }

    #[test]
    fn digest_changes_with_inputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "alpha\n").unwrap();
        let config = Config::load(dir.path()).unwrap();
        let sources = Sources::detect(&config).unwrap();
        let a = inputs_digest(&sources, &config, None);
        assert_eq!(a, inputs_digest(&sources, &config, None));
        assert_ne!(
            a,
            inputs_digest(&sources, &config, Some(&Backend::Cuda("cu124".into()))),
            "the torch backend is an input"
        );
        std::fs::write(dir.path().join("requirements.txt"), "alpha\nbeta\n").unwrap();
        assert_ne!(a, inputs_digest(&sources, &config, None));
    }
}
