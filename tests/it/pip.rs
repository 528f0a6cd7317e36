//! The pip fallback (`installer = "pip"`): the same exact results without uv.

use crate::sources::{check_local_sources, has_git, local_sources, sources_are_kept};
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

#[test]
fn pip_keeps_local_editable_wheel_and_git_sources_and_hashes_the_rest() {
    let p = pip_project();
    let lines = local_sources(&p);
    p.requirements(&lines);
    let out = p.labup(&["sync"]).ok();
    let lock = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    // pip's own digests for every archive; what it cannot hash is named, with the reason.
    assert!(lock.contains("alpha==2.0 \\\n    --hash=sha256:"), "{lock}");
    assert!(lock.contains(".whl \\\n    --hash=sha256:"), "the local wheel is hashed: {lock}");
    assert!(lock.contains("# not hashed: mypkg (an editable local folder"), "{lock}");
    if has_git() {
        assert!(lock.contains("# not hashed: vcspkg (a git checkout"), "{lock}");
        assert!(out.stderr.contains("not hashed: mypkg, vcspkg"), "{}", out.stderr);
    } else {
        assert!(out.stderr.contains("not hashed: mypkg"), "{}", out.stderr);
    }
    sources_are_kept(&p, "requirements.lock");
    // The exactness step keeps what came from local sources.
    p.requirements(&(lines + "gamma\n"));
    p.sync();
    check_local_sources(&p);
    assert_eq!(p.installed().get("gamma").map(String::as_str), Some("1.0"));
}

#[test]
fn pip_in_a_hooked_shell_installs_into_the_venv_with_pip() {
    // The shell keeps the test's PATH (labup is found there); installer = "pip" picks pip.
    let mut p = Project::new();
    p.unset("LABUP_UV");
    p.file("labup.toml", "[python]\ninstaller = \"pip\"\n");
    p.requirements("alpha\n");
    p.sync();
    crate::hook::check_pip_in_the_shell(&p);
}
