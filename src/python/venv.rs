//! The virtual environment folder: what is there, building a new one, and what is installed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::display_path;
use crate::error::Fail;
use crate::fsutil;

/// What the venv folder holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Nothing there (or an empty folder).
    Missing,
    /// A virtual environment with this `pyvenv.cfg`.
    Venv(Cfg),
    /// Something that is not a venv; never deleted.
    Foreign(String),
}

/// The keys of `pyvenv.cfg` labup uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Cfg {
    /// Folder of the base interpreter.
    pub(crate) home: PathBuf,
    /// Its version (`version` or `version_info`).
    pub(crate) version: Option<String>,
}

/// Looks at the folder without changing it.
pub(crate) fn inspect(venv: &Path) -> State {
    let Ok(meta) = fs::symlink_metadata(venv) else {
        return State::Missing;
    };
    if !meta.is_dir() {
        return State::Foreign("it is a file, not a folder".into());
    }
    match fs::read_to_string(venv.join("pyvenv.cfg")) {
        Ok(text) => State::Venv(parse_cfg(&text)),
        Err(_) if fs::read_dir(venv).is_ok_and(|mut d| d.next().is_none()) => State::Missing,
        Err(_) => State::Foreign("it has no pyvenv.cfg".into()),
    }
}

/// Parses `key = value` lines.
pub(crate) fn parse_cfg(text: &str) -> Cfg {
    let mut cfg = Cfg::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "home" => cfg.home = PathBuf::from(v),
            "version" | "version_info" => cfg.version = Some(v.to_string()),
            _ => {}
        }
    }
    cfg
}

/// Why an existing venv must be rebuilt, if it must.
pub(crate) fn rebuild_reason(cfg: &Cfg, interpreter: &Path, version: &str, venv: &Path) -> Option<String> {
    if !cfg.home.is_dir() {
        return Some(format!("its interpreter folder {} is gone", cfg.home.display()));
    }
    let wanted_home = interpreter.parent().unwrap_or(Path::new(""));
    if cfg.home != wanted_home {
        return Some(format!(
            "it was built from {} and the interpreter is now {}",
            cfg.home.display(),
            interpreter.display()
        ));
    }
    if let Some(v) = &cfg.version {
        if v != version {
            return Some(format!("it has Python {v} and the interpreter is {version}"));
        }
    }
    if fs::metadata(venv.join("bin/python")).is_err() {
        return Some("its bin/python is missing or broken".into());
    }
    None
}

/// The error for a folder labup will not touch.
pub(crate) fn refuse(venv: &Path, why: &str) -> Fail {
    Fail::new(format!("`{}` exists but is not a virtual environment: {why}", display_path(venv))).hint(format!(
        "labup never deletes a folder it did not make: move it away (`mv {0} {0}.old`) or set `[python] venv` to another path",
        display_path(venv)
    ))
}

/// Prefix of the temporary folders a build uses next to the venv.
fn temp_prefix(venv: &Path) -> String {
    let name = venv.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    format!(".{}.labup-", name.trim_start_matches('.'))
}

/// Removes temporary folders left by an interrupted build (only labup's own names).
pub(crate) fn remove_leftovers(venv: &Path) {
    let (Some(parent), prefix) = (venv.parent(), temp_prefix(venv)) else {
        return;
    };
    for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.strip_prefix(&prefix).is_some_and(|rest| rest.starts_with("new-") || rest.starts_with("old-"));
        if ours && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fsutil::remove_tree(&entry.path());
        }
    }
}

/// Builds a venv with `create` into a fresh folder, then swaps it in place of the old one.
///
/// Building beside and renaming means read-only files copied from the Nix store into the
/// old venv never block the rebuild, and an interruption leaves either the old or the new.
pub(crate) fn build(venv: &Path, create: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = venv.parent().context("venv path has no parent folder")?;
    fs::create_dir_all(parent)?;
    let pid = std::process::id();
    let had_old = match inspect(venv) {
        State::Foreign(why) => return Err(refuse(venv, &why).into()),
        State::Venv(_) => true,
        State::Missing => false,
    };
    let fresh = parent.join(format!("{}new-{pid}", temp_prefix(venv)));
    if fresh.exists() {
        fsutil::remove_tree(&fresh)?;
    }
    create(&fresh).inspect_err(|_| {
        let _ = fsutil::remove_tree(&fresh);
    })?;
    let old = parent.join(format!("{}old-{pid}", temp_prefix(venv)));
    if had_old {
        fs::rename(venv, &old).with_context(|| format!("failed to move {} aside", venv.display()))?;
    }
    if !had_old && venv.is_dir() {
        fs::remove_dir(venv)?;
    }
    fs::rename(&fresh, venv).with_context(|| format!("failed to move the new venv to {}", venv.display()))?;
    relocate_scripts(venv, &fresh, venv)?;
    if had_old {
        fsutil::remove_tree(&old)?;
    }
    Ok(())
}

/// Rewrites the build folder's path to the final one in the activation scripts and
/// `pyvenv.cfg`, which are the only files a fresh venv has that name its own folder.
fn relocate_scripts(venv: &Path, from: &Path, to: &Path) -> Result<()> {
    let (from, to) = (from.to_string_lossy().into_owned(), to.to_string_lossy().into_owned());
    let mut files: Vec<PathBuf> = fs::read_dir(venv.join("bin"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().to_lowercase().starts_with("activate")))
        .collect();
    files.push(venv.join("pyvenv.cfg"));
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if text.contains(&from) {
            fs::write(&file, text.replace(&from, &to))
                .with_context(|| format!("failed to update {}", file.display()))?;
        }
    }
    Ok(())
}

/// The venv's `site-packages` folder.
pub(crate) fn site_packages(venv: &Path) -> Option<PathBuf> {
    fs::read_dir(venv.join("lib")).ok()?.flatten().map(|e| e.path().join("site-packages")).find(|p| p.is_dir())
}

/// Installed distributions, by normalized name, read from `*.dist-info` folders.
pub(crate) fn installed(venv: &Path) -> BTreeMap<String, String> {
    let Some(site) = site_packages(venv) else {
        return BTreeMap::new();
    };
    fs::read_dir(site)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".dist-info")?;
            let (dist, version) = stem.split_once('-')?;
            Some((normalize(dist), version.to_string()))
        })
        .collect()
}

/// Distributions installed from a direct source (their `dist-info` has PEP 610's `direct_url.json`).
pub(crate) fn direct_installs(venv: &Path) -> std::collections::BTreeSet<String> {
    let Some(site) = site_packages(venv) else {
        return Default::default();
    };
    fs::read_dir(site)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("direct_url.json").is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (dist, _) = name.strip_suffix(".dist-info")?.split_once('-')?;
            Some(normalize(dist))
        })
        .collect()
}

/// PEP 503 name normalization: lowercase, runs of `-_.` become `-`.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize("Jupyter_Server.Terminals"), "jupyter-server-terminals");
        assert_eq!(normalize("a--b"), "a-b");
    }

    #[test]
    fn parses_both_cfg_styles() {
        let uv = parse_cfg("home = /usr/bin\nimplementation = CPython\nversion_info = 3.11.7\n");
        assert_eq!(uv, Cfg { home: "/usr/bin".into(), version: Some("3.11.7".into()) });
        let venv = parse_cfg("home = /x/bin\ninclude-system-site-packages = false\nversion = 3.12.1\n");
        assert_eq!(venv.version.as_deref(), Some("3.12.1"));
    }

    #[test]
    fn inspect_tells_missing_venv_and_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join(".venv");
        assert_eq!(inspect(&v), State::Missing);
        fs::create_dir(&v).unwrap();
        assert_eq!(inspect(&v), State::Missing);
        fs::write(v.join("notes.txt"), "mine").unwrap();
        assert!(matches!(inspect(&v), State::Foreign(_)));
        fs::write(v.join("pyvenv.cfg"), "home = /nowhere\n").unwrap();
        assert!(matches!(inspect(&v), State::Venv(_)));
        let f = dir.path().join("file");
        fs::write(&f, "").unwrap();
        assert!(matches!(inspect(&f), State::Foreign(_)));
    }

    #[test]
    fn rebuild_when_home_gone_or_interpreter_moved() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("py/bin");
        fs::create_dir_all(&bin).unwrap();
        let interp = bin.join("python3");
        let cfg = Cfg { home: bin, version: Some("3.11.7".into()) };
        let venv = dir.path().join(".venv");
        fs::create_dir_all(venv.join("bin")).unwrap();
        fs::write(venv.join("bin/python"), "").unwrap();
        assert_eq!(rebuild_reason(&cfg, &interp, "3.11.7", &venv), None);
        assert!(rebuild_reason(&cfg, &interp, "3.12.0", &venv).unwrap().contains("Python 3.11.7"));
        assert!(rebuild_reason(&cfg, Path::new("/other/python3"), "3.11.7", &venv).unwrap().contains("built from"));
        let gone = Cfg { home: dir.path().join("gc/bin"), version: None };
        assert!(rebuild_reason(&gone, &interp, "3.11.7", &venv).unwrap().contains("is gone"));
    }

    #[test]
    fn build_swaps_and_relocates_and_refuses_foreign() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join(".venv");
        let fake = |p: &Path| -> Result<()> {
            fs::create_dir_all(p.join("bin"))?;
            fs::write(p.join("pyvenv.cfg"), "home = /usr/bin\n")?;
            fs::write(p.join("bin/activate"), format!("VIRTUAL_ENV='{}'\n", p.display()))?;
            Ok(())
        };
        build(&v, fake).unwrap();
        build(&v, fake).unwrap();
        let activate = fs::read_to_string(v.join("bin/activate")).unwrap();
        assert_eq!(activate, format!("VIRTUAL_ENV='{}'\n", v.display()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary folders left");
        fs::remove_file(v.join("pyvenv.cfg")).unwrap();
        let err = build(&v, fake).unwrap_err();
        assert!(err.to_string().contains("is not a virtual environment"), "{err}");
        assert!(v.join("bin/activate").exists(), "foreign folder untouched");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "nothing was built beside it");
    }

    #[test]
    fn leftovers_are_removed_but_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join(".venv");
        fs::create_dir_all(dir.path().join(".venv.labup-new-123/bin")).unwrap();
        fs::create_dir_all(dir.path().join(".venv.labup-old-9")).unwrap();
        fs::create_dir_all(dir.path().join(".venv.mine")).unwrap();
        remove_leftovers(&v);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, [std::ffi::OsString::from(".venv.mine")]);
    }
}
