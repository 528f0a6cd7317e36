//! The pip fallback (`installer = "pip"`): the same exact results without uv.

use crate::support::{pkgs, shared, Project};

fn pip_project() -> Project {
    let mut p = Project::new();
    p.unset("LABUP_UV");
    p.set("PATH", "/usr/bin:/bin");
    p.file("labup.toml", "[python]\ninstaller = \"pip\"\n");
    p
}

#[test]
fn pip_creates_locks_and_syncs_exactly() {
    let p = pip_project();
    p.requirements("beta\n");
    let out = p.sync();
    assert_eq!(out["action"], "created");
    assert_eq!(out["installed"], 2);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0"), ("beta", "1.0")]), "no pip or setuptools in the venv");
    let lock = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    assert!(lock.contains("beta==1.0 \\\n    --hash=sha256:"), "{lock}");
    let marker = std::fs::read_to_string(p.path(".venv/.labup.json")).unwrap();
    assert!(marker.contains("\"installer\": \"pip\""), "{marker}");
    assert_eq!(p.sync()["action"], "noop");

    p.requirements("alpha==1.0\n");
    let out = p.sync();
    assert_eq!((out["installed"].as_u64(), out["removed"].as_u64()), (Some(1), Some(2)));
    assert_eq!(p.installed(), pkgs(&[("alpha", "1.0")]));
}

#[test]
fn pip_removes_what_was_installed_by_hand() {
    let p = pip_project();
    p.requirements("alpha\n");
    p.sync();
    let status = std::process::Command::new(&shared().python)
        .args(["-m", "pip", "--python"])
        .arg(p.path(".venv/bin/python"))
        .args(["install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links"])
        .arg(&shared().wheels)
        .arg("gamma")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(p.sync()["removed"], 1);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0")]));
}

#[test]
fn pip_reports_a_nonexistent_package() {
    let p = pip_project();
    p.requirements("no-such-package-labup-test\n");
    p.labup(&["sync"]).code(1).stderr_has("hint: check the package names");
    assert!(!p.path("requirements.lock").exists());
}

#[test]
fn uv_installer_without_uv_is_a_clear_error() {
    let mut p = pip_project();
    p.file("labup.toml", "[python]\ninstaller = \"uv\"\n");
    p.set("PATH", "/nonexistent");
    p.labup(&["sync"]).code(1).stderr_has("uv was not found").stderr_has("hint: install uv");
}
