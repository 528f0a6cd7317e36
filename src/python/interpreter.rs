//! Finding the base interpreter without running it, and asking it about itself when needed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::envvars;
use crate::error::Fail;
use crate::fsutil;

/// An interpreter as found on disk; finding it starts no Python.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Interpreter {
    /// The path as found (a Nix store path, a PATH entry): what the venv's `home` records.
    pub(crate) path: PathBuf,
    /// The file it resolves to.
    pub(crate) resolved: PathBuf,
    /// Size and mtime of the resolved file.
    pub(crate) stamp: (u64, i128),
}

/// What the interpreter says about itself (costs one Python start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Info {
    /// `3.12.4`.
    pub(crate) version: String,
    /// `cpython`.
    pub(crate) implementation: String,
    /// `sys.executable`: through a wrapper or shim, the real interpreter a venv's `home` names.
    pub(crate) executable: PathBuf,
}

/// Where the interpreter choice came from, for messages.
fn wanted(version: Option<&str>) -> (String, &'static str) {
    if let Some(p) = envvars::get(envvars::LABUP_PYTHON) {
        return (p, "LABUP_PYTHON");
    }
    match version {
        Some(v) => (format!("python{}", minor_of(v)), "[python] version"),
        None => ("python3".into(), "default"),
    }
}

/// `3.12` of `3.12.4`.
pub(crate) fn minor_of(version: &str) -> &str {
    match version.match_indices('.').nth(1) {
        Some((i, _)) => &version[..i],
        None => version,
    }
}

/// Finds the interpreter: `LABUP_PYTHON`, else `python<version>`, else `python3` on PATH.
pub(crate) fn find(version: Option<&str>) -> Result<Interpreter> {
    let (name, origin) = wanted(version);
    let path = if name.contains('/') {
        let p = PathBuf::from(&name);
        if p.is_file() {
            Some(std::path::absolute(&p)?)
        } else {
            None
        }
    } else {
        search_base(&name)
    };
    let Some(path) = path else {
        let hint = match origin {
            "LABUP_PYTHON" => format!("`LABUP_PYTHON={name}` does not name an interpreter: fix it or unset it"),
            _ => {
                format!("install {name} or set `LABUP_PYTHON` to an interpreter; with Nix, `nix run .#up` provides one")
            }
        };
        return Err(Fail::new(format!("no Python interpreter found: looked for `{name}` ({origin})"))
            .hint(hint)
            .into());
    };
    let resolved = std::fs::canonicalize(&path).with_context(|| format!("failed to resolve {}", path.display()))?;
    let stamp = fsutil::stamp(&resolved).unwrap_or_default();
    Ok(Interpreter { path, resolved, stamp })
}

/// The file in the venv naming the interpreter it was built from (one path and a newline).
pub(crate) const REMEMBERED: &str = ".labup-python";

/// The interpreter for this venv: `LABUP_PYTHON` when set (an explicit request for another
/// one rebuilds the venv); else the one the venv was built from, as long as it exists and fits
/// `[python] version`; else [`find`]. So a venv built with `LABUP_PYTHON=/opt/py/bin/python3.12`
/// keeps being used by a plain `labup sync` in a shell where `python3.12` is someone else's
/// (a pyenv shim for a version that is not installed).
pub(crate) fn for_venv(version: Option<&str>, venv: &Path) -> Result<Interpreter> {
    if envvars::get(envvars::LABUP_PYTHON).is_none() {
        if let Some(interp) = remembered(venv, version) {
            return Ok(interp);
        }
    }
    find(version)
}

/// The interpreter the venv records, if it is still a file and its version fits.
fn remembered(venv: &Path, version: Option<&str>) -> Option<Interpreter> {
    let text = std::fs::read_to_string(venv.join(REMEMBERED)).ok()?;
    let path = PathBuf::from(text.trim());
    if !path.is_absolute() || !path.is_file() {
        return None;
    }
    if let Some(wanted) = version {
        let super::venv::State::Venv(cfg) = super::venv::inspect(venv) else { return None };
        let built = cfg.version?;
        if built != wanted && !built.starts_with(&format!("{wanted}.")) {
            return None;
        }
    }
    let resolved = std::fs::canonicalize(&path).ok()?;
    let stamp = fsutil::stamp(&resolved).unwrap_or_default();
    Some(Interpreter { path, resolved, stamp })
}

/// Records in the venv the interpreter it was built from (see [`for_venv`]).
pub(crate) fn remember(venv: &Path, interp: &Interpreter) -> Result<()> {
    fsutil::atomic_write(&venv.join(REMEMBERED), format!("{}\n", interp.path.display()).as_bytes())
}

/// The first executable file called `name` on PATH.
pub(crate) fn search_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Like [`search_path`], skipping a venv's `bin` and labup's shell wrappers: in a shell that
/// `labup hook` activated, `python3` on PATH is the venv's, not an interpreter to build from.
fn search_base(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.join("../pyvenv.cfg").is_file() && !d.join(crate::shell::wrappers::MANIFEST).is_file())
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

const PROBE: &str =
    "import sys, platform; print(platform.python_version()); print(sys.implementation.name); print(sys.executable)";

impl Interpreter {
    /// Runs the interpreter once to learn its version.
    pub(crate) fn query(&self) -> Result<Info> {
        let out = duct::cmd(&self.path, ["-I", "-c", PROBE])
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("failed to run {}", self.path.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        match (out.status.success(), lines.next(), lines.next(), lines.next()) {
            (true, Some(version), Some(implementation), Some(executable)) => Ok(Info {
                version: version.trim().into(),
                implementation: implementation.trim().into(),
                executable: executable.trim().into(),
            }),
            _ => Err(Fail::new(format!(
                "{} is not a working Python interpreter: {}",
                self.path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .hint("set `LABUP_PYTHON` to a working interpreter")
            .into()),
        }
    }
}

/// Checks the interpreter's version against `[python] version` (`3.12` matches `3.12.x`).
pub(crate) fn check_version(interp: &Interpreter, info: &Info, required: Option<&str>) -> Result<(), Fail> {
    let Some(required) = required else {
        return Ok(());
    };
    let ok = info.version == required || info.version.starts_with(&format!("{required}."));
    if ok {
        return Ok(());
    }
    Err(Fail::new(format!(
        "Python {} at {} does not match `[python] version = \"{required}\"`",
        info.version,
        interp.path.display()
    ))
    .hint(format!("set `LABUP_PYTHON` to a Python {required} interpreter, or change `[python] version` in labup.toml")))
}

/// The venv's interpreter path.
pub(crate) fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpreter {
        Interpreter { path: "/x/python3".into(), resolved: "/x/python3.12".into(), stamp: (1, 2) }
    }

    fn info(v: &str) -> Info {
        Info { version: v.into(), implementation: "cpython".into(), executable: "/x/python3".into() }
    }

    #[test]
    fn version_prefix_matches_whole_components() {
        assert!(check_version(&interp(), &info("3.12.4"), Some("3.12")).is_ok());
        assert!(check_version(&interp(), &info("3.12.4"), Some("3.12.4")).is_ok());
        assert!(check_version(&interp(), &info("3.12.4"), None).is_ok());
        let e = check_version(&interp(), &info("3.1.2"), Some("3.12")).unwrap_err();
        assert!(e.message.contains("Python 3.1.2 at /x/python3 does not match"), "{}", e.message);
        assert!(check_version(&interp(), &info("3.120.0"), Some("3.12")).is_err());
    }

    #[test]
    fn minor_of_strips_patch() {
        assert_eq!(minor_of("3.12.4"), "3.12");
        assert_eq!(minor_of("3.12"), "3.12");
    }
}
