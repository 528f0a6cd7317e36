//! Interpreter wrappers: how `python` typed in a hooked shell finds the native libraries PyPI
//! wheels need under a Nix Python, without a global `LD_LIBRARY_PATH`.
//!
//! The choice: exporting `LD_LIBRARY_PATH` in the shell would also reach `/usr/bin/git`, `nix`
//! and every host program started there, and Nix's libstdc++ or a driver folder next to the
//! host's glibc breaks them (FACTS: glibc mismatch). Shell functions (`python () { … }`) would
//! cover only what is typed at the prompt, not `#!/usr/bin/env python` scripts or `make`. So
//! `labup sync`/`labup up` write one small `sh` script per executable of `.venv/bin` into
//! `.labup/shell/bin`, and the hook puts that folder first on PATH: each script adds labup's
//! library folders (the child library path of `labup env`, without what the shell inherited)
//! to `LD_LIBRARY_PATH` and `exec`s the real program. Console scripts (`jupyter`, `ipython`)
//! have `.venv/bin/python` in their shebang, which bypasses PATH, hence one wrapper per
//! executable rather than only `python`; their kernels and subprocesses inherit the variable.
//!
//! Limits: programs those processes start inherit the library path too (as for services);
//! a tool installed later by hand (`pip install`) runs unwrapped from `.venv/bin` until the
//! next `labup sync`; running `.venv/bin/python` by its full path bypasses the wrapper.
//! With no library folders to add (no `LABUP_LIBRARY_PATH`, no driver folder) there are no
//! wrappers and the hook uses `.venv/bin` alone.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::sh_quote;
use crate::env::ChildEnv;
use crate::fsutil;
use crate::gpu::Wiring;
use crate::project::Workspace;

/// Written last into the wrappers folder: what the wrappers were made for. Also marks the
/// folder as labup's, so interpreter discovery skips it.
pub(crate) const MANIFEST: &str = ".labup-wrappers";

/// labup's own library folders for children (`LD_LIBRARY_PATH` of `labup env`: the
/// `LABUP_LIBRARY_PATH` entries and the driver link folder), or `None` when there is nothing to add.
pub(crate) fn library_path(ws: &Workspace, parent: &BTreeMap<String, String>, gpu: &Wiring) -> Option<String> {
    let mut own = parent.clone();
    own.remove("LD_LIBRARY_PATH");
    let env = ChildEnv::workspace(ws, &own, gpu);
    env.entries.into_iter().find(|e| e.name == "LD_LIBRARY_PATH").and_then(|e| e.value).filter(|v| !v.is_empty())
}

/// The manifest's first lines: what decides whether existing wrappers still fit this shell.
pub(crate) fn header(libs: &str, venv: &Path) -> String {
    format!("library-path {libs}\nvenv {}\n", venv.display())
}

/// How the wrappers on disk compare with what this environment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// No library folders to add: no wrappers wanted.
    NotNeeded,
    /// Wanted but never written (or for another library path or venv).
    Missing,
    /// Written for another library path or venv.
    Stale,
    /// Written for exactly this library path and venv.
    Current,
}

/// Compares the manifest with the library path this environment needs (a file read, no writes).
pub(crate) fn state(ws: &Workspace, parent: &BTreeMap<String, String>) -> State {
    let config = &ws.config;
    let Some(libs) = library_path(ws, parent, &crate::gpu::existing_wiring(ws)) else {
        return State::NotNeeded;
    };
    match fs::read_to_string(ws.layout.shell_bin().join(MANIFEST)) {
        Err(_) => State::Missing,
        Ok(text) if text.starts_with(&header(&libs, &config.python.venv)) => State::Current,
        Ok(_) => State::Stale,
    }
}

/// The wrapper script for one program of the venv.
pub(crate) fn script(libs: &str, target: &Path) -> String {
    let libs_q = sh_quote(libs);
    format!(
        "#!/bin/sh\n\
         # Written by labup (`labup sync`, `labup up`); `labup hook` puts this folder first on PATH.\n\
         # Runs the venv's program with the libraries PyPI wheels need on LD_LIBRARY_PATH, for it\n\
         # and its children only: the shell and host programs keep their own environment.\n\
         case \":${{LD_LIBRARY_PATH-}}:\" in\n\
         \x20   *:{libs_q}:*) ;;\n\
         \x20   *) LD_LIBRARY_PATH={libs_q}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}; export LD_LIBRARY_PATH ;;\n\
         esac\n\
         exec {} \"$@\"\n",
        sh_quote(&target.display().to_string())
    )
}

/// The venv's programs worth wrapping: executables, not the activate scripts.
fn programs(bin: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(bin)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| fs::metadata(e.path()).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with("activate") && !n.starts_with("Activate") && n != "deactivate")
        .collect();
    names.sort();
    names
}

/// What [`refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// Nothing to wrap, and no wrappers left behind.
    None,
    /// The wrappers already fit.
    Unchanged,
    /// Written (or rewritten) this many.
    Written(usize),
    /// Removed: the environment no longer needs them.
    Removed,
}

/// Makes `.labup/shell/bin` fit the venv and the library path (called after a sync); a read and
/// a compare when nothing changed.
pub(crate) fn refresh(ws: &Workspace, parent: &BTreeMap<String, String>, gpu: &Wiring) -> Result<Refresh> {
    let config = &ws.config;
    let folder = ws.layout.shell_bin();
    let bin = config.python.venv.join("bin");
    let Some(libs) = library_path(ws, parent, gpu).filter(|_| bin.is_dir()) else {
        if folder.join(MANIFEST).is_file() {
            fsutil::remove_tree(&folder)?;
            return Ok(Refresh::Removed);
        }
        return Ok(Refresh::None);
    };
    let names = programs(&bin);
    let manifest = format!("{}programs {}\n", header(&libs, &config.python.venv), names.join(" "));
    if fs::read_to_string(folder.join(MANIFEST)).is_ok_and(|m| m == manifest) {
        return Ok(Refresh::Unchanged);
    }
    ws.layout.ensure(ws.layout.shell_bin())?;
    // The manifest goes first so that an interrupted refresh reads as stale, never as current.
    let _ = fs::remove_file(folder.join(MANIFEST));
    for entry in fs::read_dir(&folder).with_context(|| format!("failed to read {}", folder.display()))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !names.contains(&name) {
            let _ = fs::remove_file(entry.path());
        }
    }
    for name in &names {
        let path = folder.join(name);
        fsutil::atomic_write(&path, script(&libs, &bin.join(name)).as_bytes())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("failed to make {} executable", path.display()))?;
    }
    fsutil::atomic_write(&folder.join(MANIFEST), manifest.as_bytes())?;
    Ok(Refresh::Written(names.len()))
}

/// What the shell's `pip` runs. The hooked shell finds `pip` and `pip3` in `.labup/shell/pip`
/// after `.venv/bin`: the venv has no pip of its own (it holds exactly the lock), so without them
/// `pip install` in a labup shell would reach the base interpreter's pip and install there. A pip
/// the user puts into the venv comes first on PATH and wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipRunner {
    /// uv's pip interface (`uv pip install … --python <venv>`): what installs when uv does.
    Uv(PathBuf),
    /// The base interpreter's pip (`python -m pip --python <venv> …`): the pip installer's way.
    Base(PathBuf),
}

/// The `pip` script: acts on `venv`, and on the first `pip install` says (once: `note` is
/// created) that the venv is exact, so the next `labup sync` removes what the requirements do
/// not list.
pub(crate) fn pip_script(runner: &PipRunner, venv: &Path, shown: &str, note: &Path) -> String {
    let python = sh_quote(&venv.join("bin").join("python").display().to_string());
    let note = sh_quote(&note.display().to_string());
    let message = sh_quote(&format!(
        "labup: pip installs into {shown}, which labup keeps exactly to the lock: the next `labup sync` \
         removes what the requirements do not list (add it there to keep it)"
    ));
    let run = match runner {
        PipRunner::Uv(uv) => {
            let uv = sh_quote(&uv.display().to_string());
            format!(
                "case \"${{1-}}\" in\n\
                 \x20   \"\" | -*) exec {uv} pip \"$@\" ;;\n\
                 \x20   *) sub=$1; shift; UV_PYTHON_DOWNLOADS=never exec {uv} pip \"$sub\" --python {python} \"$@\" ;;\n\
                 esac\n"
            )
        }
        PipRunner::Base(base) => {
            format!("exec {} -m pip --python {python} \"$@\"\n", sh_quote(&base.display().to_string()))
        }
    };
    format!(
        "#!/bin/sh\n\
         # Written by labup (`labup sync`, `labup up`): the venv has no pip of its own, so `pip` in a\n\
         # labup shell acts on the venv, never on the base interpreter.\n\
         if [ \"${{1-}}\" = install ] && [ ! -e {note} ]; then\n\
         \x20   echo {message} >&2\n\
         \x20   : > {note} 2>/dev/null || true\n\
         fi\n\
         {run}"
    )
}

/// Makes `.labup/shell/pip` fit the venv and the runner (a read and a compare when it does);
/// removes it when there is no venv.
pub(crate) fn refresh_pip(ws: &Workspace, runner: &PipRunner) -> Result<()> {
    let config = &ws.config;
    let folder = ws.layout.shell_pip();
    if !config.python.venv.join("bin").is_dir() {
        if folder.is_dir() {
            fsutil::remove_tree(&folder)?;
        }
        return Ok(());
    }
    let note = folder.join(".noted");
    let text = pip_script(runner, &config.python.venv, &crate::config::display_path(&config.python.venv), &note);
    for name in ["pip", "pip3"] {
        let path = folder.join(name);
        if fs::read_to_string(&path).is_ok_and(|t| t == text) {
            continue;
        }
        ws.layout.ensure(ws.layout.shell_pip())?;
        fsutil::atomic_write(&path, text.as_bytes())?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("failed to make {} executable", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(libs: Option<&str>) -> (tempfile::TempDir, Workspace, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join(".venv/bin");
        fs::create_dir_all(&bin).unwrap();
        for name in ["python", "jupyter", "activate", "activate.fish"] {
            fs::write(bin.join(name), "#!/bin/sh\n").unwrap();
            fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(bin.join("not-executable"), "").unwrap();
        let config = Workspace::load(dir.path()).unwrap();
        let mut parent = BTreeMap::from([("LD_LIBRARY_PATH".to_string(), "/inherited".to_string())]);
        if let Some(l) = libs {
            parent.insert("LABUP_LIBRARY_PATH".into(), l.into());
        }
        (dir, config, parent)
    }

    #[test]
    fn library_path_leaves_out_what_the_parent_had() {
        let (_d, config, parent) = setup(Some("/nix/store/a/lib:/nix/store/b/lib"));
        assert_eq!(
            library_path(&config, &parent, &Wiring::default()).as_deref(),
            Some("/nix/store/a/lib:/nix/store/b/lib")
        );
        let (_d, config, parent) = setup(None);
        assert_eq!(library_path(&config, &parent, &Wiring::default()), None);
    }

    #[test]
    fn refresh_writes_one_wrapper_per_program_then_does_nothing() {
        let (d, config, parent) = setup(Some("/nix/store/a/lib"));
        assert_eq!(state(&config, &parent), State::Missing);
        assert_eq!(refresh(&config, &parent, &Wiring::default()).unwrap(), Refresh::Written(2));
        let folder = config.layout.shell_bin();
        let mut names: Vec<String> =
            fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, [MANIFEST, "jupyter", "python"]);
        let text = fs::read_to_string(folder.join("python")).unwrap();
        assert!(text.contains(&format!("exec '{}/.venv/bin/python' \"$@\"", d.path().display())), "{text}");
        assert_eq!(state(&config, &parent), State::Current);
        assert_eq!(refresh(&config, &parent, &Wiring::default()).unwrap(), Refresh::Unchanged);

        let mut other = parent;
        other.insert("LABUP_LIBRARY_PATH".into(), "/nix/store/c/lib".into());
        assert_eq!(state(&config, &other), State::Stale);
        assert_eq!(refresh(&config, &other, &Wiring::default()).unwrap(), Refresh::Written(2));
        assert!(fs::read_to_string(folder.join("python")).unwrap().contains("'/nix/store/c/lib'"));

        other.remove("LABUP_LIBRARY_PATH");
        assert_eq!(state(&config, &other), State::NotNeeded);
        assert_eq!(refresh(&config, &other, &Wiring::default()).unwrap(), Refresh::Removed);
        assert!(!folder.exists());
        assert_eq!(refresh(&config, &other, &Wiring::default()).unwrap(), Refresh::None);
    }

    #[test]
    fn removed_programs_lose_their_wrapper() {
        let (d, config, parent) = setup(Some("/l"));
        refresh(&config, &parent, &Wiring::default()).unwrap();
        fs::remove_file(d.path().join(".venv/bin/jupyter")).unwrap();
        assert_eq!(refresh(&config, &parent, &Wiring::default()).unwrap(), Refresh::Written(1));
        assert!(!config.layout.shell_bin().join("jupyter").exists());
    }

    #[test]
    fn pip_runs_on_the_venv_and_notes_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let log = d.join("args");
        let fake = d.join("fake-uv");
        fs::write(&fake, format!("#!/bin/sh\nprintf '%s|' \"$@\" > '{}'\n", log.display())).unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let shim = d.join("pip");
        let note = d.join("noted");
        fs::write(&shim, pip_script(&PipRunner::Uv(fake), Path::new("/p/.venv"), ".venv", &note)).unwrap();
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(&shim).args(args).output().unwrap();
            (fs::read_to_string(&log).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
        };
        let (args, err) = run(&["install", "x"]);
        assert_eq!(args, "pip|install|--python|/p/.venv/bin/python|x|");
        assert!(err.contains("the next `labup sync` removes"), "{err}");
        let (_, err) = run(&["install", "y"]);
        assert!(err.is_empty(), "said once: {err}");
        assert_eq!(run(&["--help"]).0, "pip|--help|");
        let base = pip_script(&PipRunner::Base("/py/bin/python3".into()), Path::new("/p/.venv"), ".venv", &note);
        assert!(base.contains("exec '/py/bin/python3' -m pip --python '/p/.venv/bin/python' \"$@\""), "{base}");
    }

    #[test]
    fn the_script_adds_the_libraries_once_in_front() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("show");
        fs::write(&target, "#!/bin/sh\necho \"$LD_LIBRARY_PATH\"\n").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = dir.path().join("wrapper");
        fs::write(&wrapper, script("/a:/b", &target)).unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        let run = |ld: Option<&str>| {
            let mut cmd = std::process::Command::new(&wrapper);
            match ld {
                Some(v) => cmd.env("LD_LIBRARY_PATH", v),
                None => cmd.env_remove("LD_LIBRARY_PATH"),
            };
            String::from_utf8(cmd.output().unwrap().stdout).unwrap().trim().to_string()
        };
        assert_eq!(run(None), "/a:/b");
        assert_eq!(run(Some("/x")), "/a:/b:/x");
        assert_eq!(run(Some("/a:/b:/x")), "/a:/b:/x", "a nested python does not add them again");
    }
}
