//! The project folder and labup's state folder in it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::envvars;
use crate::error::Fail;

/// The project folder: the nearest folder upwards from `start` with a `labup.toml`, else `start`.
pub fn find_root(start: &Path) -> PathBuf {
    start.ancestors().find(|d| d.join("labup.toml").is_file()).unwrap_or(start).to_path_buf()
}

/// What makes a folder a project (besides a `labup.toml` in it or a parent), the one rule every
/// command and the hook keep: a file or folder of these names, any `requirements*.txt`, any
/// `*.ipynb`.
pub const MARKERS: [&str; 5] = ["labup.toml", "pyproject.toml", "server.py", ".venv", "flake.nix"];

/// Whether `root` (as [`find_root`] gave it) is a project: it has a `labup.toml` or one of the
/// [`MARKERS`], a `requirements*.txt` or a notebook, and it is neither `/` nor the home folder
/// itself (where a stray `requirements.txt` must not turn `~` into a venv).
pub fn is_project(root: &Path) -> bool {
    if root.parent().is_none() || home().is_some_and(|h| same_dir(&h, root)) {
        return false;
    }
    if MARKERS.iter().any(|m| root.join(m).exists()) {
        return true;
    }
    fs::read_dir(root).into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        (name.starts_with("requirements") && name.ends_with(".txt")) || name.ends_with(".ipynb")
    })
}

/// Refuses (exit 2, nothing written) a command that would build a workspace in a folder that is
/// not a project.
pub fn require(root: &Path) -> Result<(), Fail> {
    if is_project(root) {
        return Ok(());
    }
    let what = if root.parent().is_none() {
        "the root folder `/` is never a project".to_string()
    } else if home().is_some_and(|h| same_dir(&h, root)) {
        format!("your home folder {} is never a project", root.display())
    } else {
        format!(
            "{} is not a project: it has no labup.toml, requirements*.txt, pyproject.toml, server.py, \
             notebook (*.ipynb), .venv or flake.nix",
            root.display()
        )
    };
    Err(Fail::usage(format!("{what}: nothing written"))
        .hint("make a folder a project with `labup init` (or add a requirements.txt), or pass `--project DIR`"))
}

/// `HOME`, when set.
fn home() -> Option<PathBuf> {
    envvars::get(envvars::HOME).map(PathBuf::from)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// The state folder path (`LABUP_STATE_DIR`, else `<root>/.labup`), not created.
pub fn state_dir(root: &Path) -> PathBuf {
    match envvars::get(envvars::LABUP_STATE_DIR) {
        Some(dir) => root.join(dir),
        None => root.join(".labup"),
    }
}

/// Creates the state folder (0700, with a `.gitignore` of `*`) and the named subfolder in it.
pub fn ensure_state_dir(root: &Path, sub: &str) -> Result<PathBuf> {
    let dir = state_dir(root);
    if !dir.is_dir() {
        fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        fs::write(&ignore, "*\n").with_context(|| format!("failed to write {}", ignore.display()))?;
    }
    let path = dir.join(sub);
    fs::create_dir_all(&path).with_context(|| format!("failed to create {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_nearest_labup_toml_or_start() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_root(&sub), sub);
        fs::write(dir.path().join("a/labup.toml"), "").unwrap();
        assert_eq!(find_root(&sub), dir.path().join("a"));
    }

    #[test]
    fn a_project_has_a_marker_and_is_never_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_project(dir.path()), "an empty folder");
        fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert!(!is_project(dir.path()));
        fs::write(dir.path().join("requirements-dev.txt"), "").unwrap();
        assert!(is_project(dir.path()));
        let nb = tempfile::tempdir().unwrap();
        fs::write(nb.path().join("a.ipynb"), "{}").unwrap();
        assert!(is_project(nb.path()));
        let v = tempfile::tempdir().unwrap();
        fs::create_dir(v.path().join(".venv")).unwrap();
        assert!(is_project(v.path()));
        assert!(!is_project(Path::new("/")));
        assert_eq!(require(Path::new("/")).unwrap_err().exit, crate::error::Exit::Usage);
    }

    #[test]
    fn state_dir_is_private_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = ensure_state_dir(dir.path(), "tmp").unwrap();
        assert!(tmp.is_dir());
        let state = state_dir(dir.path());
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(state.join(".gitignore")).unwrap(), "*\n");
    }
}
