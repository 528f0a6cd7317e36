//! Writing exported files: standard output, a folder, or one file, never over anything that
//! is not labup's.
//!
//! A folder given with `-o` must be missing, empty, or hold only files that labup exported
//! (one of their first lines carries [`super::MARKER`]); one file given with `-o` must be missing or
//! labup's. Everything is checked before anything is written, so a refusal leaves the disk as
//! it was (exit 2).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use super::{Destination, File, MARKER};
use crate::error::{fail, Fail};

/// Writes `files` to `dest`; returns the paths written (empty for stdout).
pub(crate) fn write(files: &[File], dest: &Destination) -> Result<Vec<std::path::PathBuf>> {
    match dest {
        Destination::Stdout => {
            let mut out = std::io::stdout().lock();
            for (i, f) in files.iter().enumerate() {
                if i > 0 && f.name.ends_with(".yaml") {
                    writeln!(out, "---")?;
                }
                out.write_all(f.text.as_bytes())?;
            }
            Ok(Vec::new())
        }
        Destination::Dir(dir) => {
            check_dir(dir)?;
            fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
            let mut written = Vec::new();
            for f in files {
                let path = dir.join(&f.name);
                crate::fsutil::atomic_write(&path, f.text.as_bytes())?;
                written.push(path);
            }
            Ok(written)
        }
        Destination::File(path) => {
            let [f] = files else {
                return fail(Fail::new(format!("this target exports {} files: give `-o` a folder", files.len())));
            };
            check_file(path)?;
            crate::fsutil::atomic_write(path, f.text.as_bytes())?;
            Ok(vec![path.clone()])
        }
    }
}

/// Whether the file at `path` is one labup exported (one of its first three lines names
/// [`MARKER`]: a script's `#!` line comes first).
pub(crate) fn is_ours(path: &Path) -> bool {
    let Ok(text) = fs::read_to_string(path) else { return false };
    text.lines().take(3).any(|l| l.contains(MARKER))
}

/// A folder for `-o`: missing, empty, or only labup's files.
fn check_dir(dir: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(dir) else { return Ok(()) };
    if !meta.is_dir() {
        return fail(
            Fail::usage(format!("`-o {}` is not a folder", dir.display()))
                .hint("give `-o` a new or empty folder, or leave it out to print on stdout"),
        );
    }
    let entries = fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if !path.is_file() || !is_ours(&path) {
            return fail(
                Fail::usage(format!(
                    "`-o {}` holds {}, which labup did not export; nothing was written",
                    dir.display(),
                    path.file_name().unwrap_or_default().to_string_lossy()
                ))
                .hint("give `-o` a new or empty folder"),
            );
        }
    }
    Ok(())
}

/// One file for `-o`: missing, or labup's.
fn check_file(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(meta) if meta.is_file() && is_ours(path) => Ok(()),
        Ok(_) => fail(
            Fail::usage(format!("`-o {}` exists and labup did not export it; nothing was written", path.display()))
                .hint("give `-o` a new file name, or remove that file first"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> File {
        File { name: name.into(), text: format!("# {MARKER}\nkind: x\n") }
    }

    #[test]
    fn writes_into_a_new_folder_and_again_over_its_own_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("k8s");
        let files = [file("a.yaml"), file("b.yaml")];
        let written = write(&files, &Destination::Dir(dir.clone())).unwrap();
        assert_eq!(written.len(), 2);
        assert!(is_ours(&dir.join("a.yaml")));
        write(&files, &Destination::Dir(dir)).unwrap();
    }

    #[test]
    fn refuses_a_folder_with_other_files_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let err = write(&[file("a.yaml")], &Destination::Dir(tmp.path().to_path_buf())).unwrap_err();
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert!(!tmp.path().join("a.yaml").exists());
    }

    #[test]
    fn refuses_a_file_given_as_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, "x").unwrap();
        let err = write(&[file("a.yaml")], &Destination::Dir(path.clone())).unwrap_err();
        assert!(err.to_string().contains("is not a folder"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "x");
    }

    #[test]
    fn one_file_is_replaced_only_when_it_is_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("job.sbatch");
        write(&[file("job.sbatch")], &Destination::File(path.clone())).unwrap();
        write(&[file("job.sbatch")], &Destination::File(path.clone())).unwrap();
        fs::write(&path, "#!/bin/sh\nmine\n").unwrap();
        assert!(write(&[file("job.sbatch")], &Destination::File(path.clone())).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), "#!/bin/sh\nmine\n");
    }
}
