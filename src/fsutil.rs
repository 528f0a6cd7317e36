//! File-system helpers: atomic writes, an exclusive lock file, safe removal.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `data` to a temporary sibling, syncs it, then renames it over `path`.
pub(crate) fn atomic_write(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = sibling(path, &format!("labup-tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .with_context(|| format!("failed to write {}", path.display()))
}

/// `dir/.name.suffix` next to `path`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{}.{suffix}", name.trim_start_matches('.')))
}

/// Removes a tree, first making read-only folders writable (files copied from the Nix store
/// keep their read-only mode, and a read-only folder's entries cannot be unlinked).
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    fn make_writable(dir: &Path) {
        if let Ok(meta) = fs::symlink_metadata(dir) {
            if meta.is_dir() {
                let mut perm = meta.permissions();
                perm.set_mode(perm.mode() | 0o700);
                let _ = fs::set_permissions(dir, perm);
                for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                    make_writable(&entry.path());
                }
            }
        }
    }
    make_writable(path);
    fs::remove_dir_all(path).with_context(|| format!("failed to remove {}", path.display()))
}

/// An exclusive advisory lock on a file, released when dropped or when the process dies.
#[derive(Debug)]
pub(crate) struct LockFile {
    _file: File,
}

impl LockFile {
    /// Takes the lock; when another process holds it, calls `on_wait` with that process's pid
    /// (as written in the file) and then blocks until it is free.
    pub(crate) fn acquire(path: &Path, on_wait: impl FnOnce(Option<u32>)) -> Result<LockFile> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("failed to open lock file {}", path.display()))?;
        if file.try_lock().is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            on_wait(text.trim().parse().ok());
            file.lock().with_context(|| format!("failed to lock {}", path.display()))?;
        }
        file.set_len(0)?;
        let _ = write!(&file, "{}", std::process::id());
        Ok(LockFile { _file: file })
    }
}

/// Size and modification time: a cheap identity for a file that does not change in place.
pub(crate) fn stamp(path: &Path) -> Option<(u64, i128)> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
    Some((meta.len(), mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn remove_tree_handles_read_only_folders() {
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("v/lib");
        fs::create_dir_all(&ro).unwrap();
        fs::write(ro.join("f"), "x").unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&dir.path().join("v")).unwrap();
        assert!(!dir.path().join("v").exists());
    }

    #[test]
    fn second_lock_reports_holder_and_waits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let held = LockFile::acquire(&p, |_| panic!("first acquire must not wait")).unwrap();
        let p2 = p;
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _l = LockFile::acquire(&p2, |pid| tx.send(pid).unwrap()).unwrap();
        });
        let holder = rx.recv().unwrap();
        assert_eq!(holder, Some(std::process::id()));
        drop(held);
        waiter.join().unwrap();
    }

    #[test]
    fn sibling_names_are_hidden() {
        assert_eq!(sibling(Path::new("/p/.venv"), "x"), Path::new("/p/.venv.x"));
        assert_eq!(sibling(Path::new("/p/req.lock"), "x"), Path::new("/p/.req.lock.x"));
    }
}
