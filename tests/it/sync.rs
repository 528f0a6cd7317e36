//! `labup sync` with uv: create, no-op, change, exactness, interpreter changes.

use std::os::unix::fs::PermissionsExt;

use crate::support::{counting_wrapper, local_package, pkgs, shared, Project};

#[test]
fn creates_the_venv_and_the_lock_then_is_a_noop() {
    let p = Project::new();
    p.requirements("beta\n");
    let first = p.sync();
    assert_eq!(first["action"], "created");
    assert_eq!(first["installed"], 2);
    assert_eq!(first["removed"], 0);
    assert!(first["python"].as_str().unwrap().starts_with("3."));
    assert_eq!(first["venv"], p.path(".venv").display().to_string());
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0"), ("beta", "1.0")]));
    let lock = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    assert!(lock.contains("alpha==2.0 \\\n    --hash=sha256:"), "{lock}");
    assert!(lock.contains("--no-index\n"), "index options are carried: {lock}");
    let marker: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path(".venv/.labup.json")).unwrap()).unwrap();
    assert_eq!(marker["installer"], "uv");

    let second = p.sync();
    assert_eq!(second["action"], "noop");
    assert_eq!(second["installed"], 0);
}

#[test]
fn noop_starts_no_python_and_no_uv() {
    let mut p = Project::new();
    p.requirements("alpha\n");
    let tools = tempfile::tempdir().unwrap();
    let log = tools.path().join("starts.log");
    let python = counting_wrapper(&tools.path().join("py"), "python3", &shared().python, &log);
    let uv = counting_wrapper(&tools.path().join("uv"), "uv", &shared().uv, &log);
    p.set("LABUP_PYTHON", &python).set("LABUP_UV", &uv);
    assert_eq!(p.sync()["action"], "created");
    let starts = std::fs::read_to_string(&log).unwrap();
    assert!(starts.lines().count() >= 3, "the first sync runs python and uv: {starts}");
    for _ in 0..3 {
        assert_eq!(p.sync()["action"], "noop");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap(), starts, "a no-op started a process");
}

#[test]
fn changed_requirements_resync_with_right_counts() {
    let p = Project::new();
    p.requirements("alpha==1.0\n");
    assert_eq!(p.sync()["installed"], 1);
    p.requirements("alpha==2.0\ngamma\n");
    let out = p.sync();
    assert_eq!(out["action"], "synced");
    assert_eq!((out["installed"].as_u64(), out["removed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0"), ("gamma", "1.0")]));
    p.requirements("gamma\n");
    let out = p.sync();
    assert_eq!((out["installed"].as_u64(), out["removed"].as_u64()), (Some(0), Some(1)));
    assert_eq!(p.installed(), pkgs(&[("gamma", "1.0")]));
}

#[test]
fn a_package_installed_by_hand_is_removed() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.sync();
    p.install_by_hand("gamma");
    assert!(p.installed().contains_key("gamma"));
    let out = p.sync();
    assert_eq!(out["action"], "synced");
    assert_eq!(out["removed"], 1);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0")]));
}

#[test]
fn empty_project_gets_an_empty_venv_and_no_lock() {
    let p = Project::new();
    // A project (its labup.toml) without requirements; a folder with nothing is refused.
    p.file("labup.toml", "");
    let out = p.sync();
    assert_eq!(out["action"], "created");
    assert!(p.installed().is_empty());
    assert!(!p.path("requirements.lock").exists());
    assert_eq!(p.sync()["action"], "noop");
}

#[test]
fn lock_keeps_pins_until_upgrade() {
    let p = Project::new();
    p.requirements("alpha<2\n");
    p.sync();
    p.requirements("alpha\n");
    p.sync();
    assert_eq!(p.installed()["alpha"], "1.0", "resolution prefers the version already locked");
    let out = p.labup(&["lock", "--upgrade", "--json"]).ok().json();
    assert_eq!(out["changed"], true);
    assert_eq!(out["packages"], 1);
    assert!(std::fs::read_to_string(p.path("requirements.lock")).unwrap().contains("alpha==2.0"));
    p.sync();
    assert_eq!(p.installed()["alpha"], "2.0");
    let again = p.labup(&["lock", "--json"]).ok().json();
    assert_eq!(again["changed"], false);
}

#[test]
fn locked_refuses_a_stale_or_missing_lock() {
    let p = Project::new();
    p.requirements("alpha\n");
    let missing = p.labup(&["sync", "--locked"]).code(1);
    labup_snapshot!("sync_locked_without_a_lock" => &p, missing);
    assert!(!p.path(".venv").exists(), "nothing built when the lock is refused");
    p.sync();
    p.requirements("alpha\ngamma\n");
    let before = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    let stale = p.labup(&["sync", "--locked"]).code(1);
    labup_snapshot!("sync_locked_with_a_stale_lock" => &p, stale);
    assert_eq!(std::fs::read_to_string(p.path("requirements.lock")).unwrap(), before);
    p.labup(&["lock"]).ok();
    assert_eq!(p.labup(&["sync", "--locked", "--json"]).ok().json()["installed"], 1);
}

#[test]
fn console_scripts_and_activate_name_the_final_venv() {
    let p = Project::new();
    p.requirements("delta\n");
    p.sync();
    let out = std::process::Command::new(p.path(".venv/bin/delta-hello")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "delta 1.0");
    let activate = std::fs::read_to_string(p.path(".venv/bin/activate")).unwrap();
    assert!(activate.contains(&p.path(".venv").display().to_string()));
    assert!(!activate.contains(".labup-new"), "build folder name left in activate");
}

/// A second interpreter with a different home: Debian's /usr/bin/python3 or a pyenv version.
fn other_python() -> std::path::PathBuf {
    let real = shared().python.canonicalize().unwrap();
    let mut candidates: Vec<std::path::PathBuf> = vec!["/usr/bin/python3".into(), "/usr/local/bin/python3".into()];
    if let Some(home) = std::env::var_os("HOME") {
        let versions = std::path::Path::new(&home).join(".pyenv/versions");
        for e in std::fs::read_dir(versions).into_iter().flatten().flatten() {
            candidates.push(e.path().join("bin/python3"));
        }
    }
    candidates
        .into_iter()
        .filter(|c| c.is_file() && c.canonicalize().ok().as_ref() != Some(&real))
        .find(|c| {
            std::process::Command::new(c)
                .args(["-c", "import sys; assert sys.version_info >= (3, 8)"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("this test needs a second Python 3.8+ (for example `apt-get install python3`)")
}

#[test]
fn interpreter_change_rebuilds_the_venv() {
    let mut p = Project::new();
    p.requirements("alpha\n");
    let first = p.sync();
    let other = other_python();
    p.set("LABUP_PYTHON", &other);
    let out = p.labup(&["sync", "--json"]).ok();
    assert_eq!(out.json()["action"], "created", "{}", out.stderr);
    assert!(out.stderr.contains("rebuilding .venv"), "{}", out.stderr);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0")]));
    let cfg = std::fs::read_to_string(p.path(".venv/pyvenv.cfg")).unwrap();
    let home = std::process::Command::new(&other)
        .args(["-c", "import sys, os; print(os.path.dirname(sys.executable))"])
        .output()
        .unwrap();
    assert!(cfg.contains(String::from_utf8_lossy(&home.stdout).trim()), "{cfg}");
    let _ = first;
}

#[test]
fn garbage_collected_interpreter_and_read_only_files_rebuild() {
    let mut p = Project::new();
    p.requirements("alpha\n");
    let store = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let bin = store.path().join(name).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(&shared().python, bin.join("python3")).unwrap();
        bin.join("python3")
    };
    let first = make("aaa-python3");
    p.set("LABUP_PYTHON", &first);
    p.sync();
    // Files copied from the Nix store are read-only, folders included.
    let status = std::process::Command::new("chmod").args(["-R", "a-w"]).arg(p.path(".venv")).status().unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(store.path().join("aaa-python3")).unwrap();
    let second = make("bbb-python3");
    p.set("LABUP_PYTHON", &second);
    let out = p.labup(&["sync", "--json"]).ok();
    assert_eq!(out.json()["action"], "created");
    assert!(out.stderr.contains("is gone"), "{}", out.stderr);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0")]));
    let mode = std::fs::metadata(p.path(".venv")).unwrap().permissions().mode();
    assert_ne!(mode & 0o200, 0, "the new venv is writable");
}

#[test]
fn python_version_mismatch_is_an_error_with_a_hint() {
    let p = Project::new();
    p.file("labup.toml", "[python]\nversion = \"3.4\"\n");
    p.labup(&["sync"]).code(1).stderr_has("does not match `[python] version = \"3.4\"`").stderr_has("hint:");
    assert!(!p.path(".venv").exists());
}

#[test]
fn finds_python3_on_path_without_labup_python() {
    let mut p = Project::new();
    p.unset("LABUP_PYTHON");
    p.requirements("alpha\n");
    assert_eq!(p.sync()["action"], "created");
    assert_eq!(p.sync()["action"], "noop");
}

#[test]
fn missing_interpreter_says_what_it_looked_for() {
    let mut p = Project::new();
    p.file("labup.toml", "");
    p.set("LABUP_PYTHON", "/nonexistent/python3");
    p.labup(&["sync"]).code(1).stderr_has("looked for `/nonexistent/python3` (LABUP_PYTHON)");
}

#[test]
fn state_dir_is_private() {
    let p = Project::new();
    p.file("labup.toml", "");
    p.sync();
    let mode = std::fs::metadata(p.path(".labup")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert_eq!(std::fs::read_to_string(p.path(".labup/.gitignore")).unwrap(), "*\n");
}

#[test]
fn each_torch_backend_keeps_its_own_lock() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.file("labup.toml", "[python]\ntorch = \"cpu\"\n");
    p.sync();
    assert!(p.path("requirements.cpu.lock").is_file(), "the cpu backend's lock");
    assert!(!p.path("requirements.lock").exists(), "no shared lock to fight over");
    let cpu_lock = std::fs::read_to_string(p.path("requirements.cpu.lock")).unwrap();
    assert!(p.labup(&["sync", "--locked", "--json"]).ok().json()["action"] == "noop");

    // A machine of another kind (here: the setting) has no lock of its own yet.
    p.file("labup.toml", "[python]\ntorch = \"cu126\"\n");
    let out = p.labup(&["sync", "--locked"]).code(1);
    assert!(out.stderr.contains("requirements.cu126.lock is missing"), "{}", out.stderr);
    assert!(out.stderr.contains("`[python] torch = \"cu126\"`"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(p.path("requirements.cpu.lock")).unwrap(), cpu_lock, "left alone");
}

#[test]
fn an_editable_packages_pyproject_is_an_input_of_the_sync_and_the_lock() {
    let p = Project::new();
    local_package(&p.path("mypkg"), "mypkg", "1.0.0", &[], "LOCAL = True\n");
    p.requirements("-e ./mypkg\n");
    assert_eq!(p.sync()["action"], "created");
    assert!(!p.installed().contains_key("gamma"));
    // The package gains a dependency: the sync re-resolves and installs it (no `labup lock` needed).
    local_package(&p.path("mypkg"), "mypkg", "1.0.0", &["gamma"], "LOCAL = True\n");
    let out = p.sync();
    assert_eq!(out["action"], "synced", "{out}");
    assert_eq!(p.installed().get("gamma").map(String::as_str), Some("1.0"));
    let lock = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    assert!(lock.contains("gamma==1.0"), "{lock}");
    assert_eq!(p.sync()["action"], "noop");
    // setup.cfg and setup.py of the package are inputs too.
    p.file("mypkg/setup.cfg", "[metadata]\nname = mypkg\n");
    assert_eq!(p.labup(&["sync", "--dry-run", "--json"]).ok().json()["lock"], "resolve");
}

/// A folder with `python3` and `python3.11` that do not work, as a pyenv shim for a version
/// that is not installed: finding them by name gives "not a working Python interpreter".
fn broken_pythons() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["python3", "python3.11", "python3.12", "python3.13"] {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\necho \"pyenv: $0: command not found\" >&2\nexit 127\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn the_interpreter_a_venv_was_built_from_is_kept_without_labup_python() {
    let mut p = Project::new();
    let minor = shared().python_minor();
    p.file("labup.toml", &format!("[python]\nversion = \"{minor}\"\n"));
    p.requirements("alpha\n");
    assert_eq!(p.sync()["action"], "created", "built with LABUP_PYTHON");
    let broken = broken_pythons();
    p.unset("LABUP_PYTHON");
    p.set("PATH", format!("{}:/usr/bin:/bin", broken.path().display()));
    assert_eq!(p.sync()["action"], "noop", "the next plain sync keeps the interpreter it was built from");
    let out = p.labup(&["run", "--", "python", "-c", "import alpha; print(alpha.__version__)"]).ok();
    assert_eq!(out.stdout.trim(), "2.0");
    let hook = p.labup(&["hook", "bash"]).ok();
    assert!(hook.stderr.is_empty(), "the hook has nothing to say about a current venv: {}", hook.stderr);
    // A config that asks for another version looks for that one again (and says how to get it).
    p.file("labup.toml", "[python]\nversion = \"3.99\"\n");
    p.labup(&["sync"]).code(1).stderr_has("python3.99").stderr_has("LABUP_PYTHON");
    let hook = p.labup(&["hook", "bash"]).ok();
    assert!(
        hook.stderr.contains("LABUP_PYTHON") && !hook.stderr.contains("run `labup sync` for details"),
        "the hint names what to do, not a command that fails the same way: {}",
        hook.stderr
    );
}

#[test]
fn alternating_labup_python_and_none_does_not_rebuild() {
    let mut p = Project::new();
    p.requirements("alpha\n");
    assert_eq!(p.sync()["action"], "created");
    let broken = broken_pythons();
    for round in 0..2 {
        p.unset("LABUP_PYTHON");
        p.set("PATH", format!("{}:/usr/bin:/bin", broken.path().display()));
        assert_eq!(p.sync()["action"], "noop", "round {round}: no LABUP_PYTHON");
        p.set("LABUP_PYTHON", &shared().python);
        assert_eq!(p.sync()["action"], "noop", "round {round}: the same LABUP_PYTHON");
    }
}
