//! The project folder and labup's state folder in it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::envvars;

/// The project folder: the nearest folder upwards from `start` with a `labup.toml`, else `start`.
pub fn find_root(start: &Path) -> PathBuf {
    start.ancestors().find(|d| d.join("labup.toml").is_file()).unwrap_or(start).to_path_buf()
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
    fn state_dir_is_private_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = ensure_state_dir(dir.path(), "tmp").unwrap();
        assert!(tmp.is_dir());
        let state = state_dir(dir.path());
        assert_eq!(fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(state.join(".gitignore")).unwrap(), "*\n");
    }
}
