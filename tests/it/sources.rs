//! Requirement sources other than requirements.txt: pyproject.toml, pylock.toml, uv.lock,
//! `[python] packages`.

use crate::support::{pkgs, shared, Project};

#[test]
fn pyproject_dependencies_and_packages() {
    let p = Project::new();
    p.file("pyproject.toml", "[project]\nname = \"demo\"\nversion = \"0\"\ndependencies = [\"beta\"]\n");
    p.file("requirements.txt", &format!("--no-index\n--find-links {}\n", shared().wheels.display()));
    p.file("labup.toml", "[python]\npackages = [\"gamma\"]\n");
    p.sync();
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0"), ("beta", "1.0"), ("gamma", "1.0")]));
}

#[test]
fn pylock_pins_are_installed_exactly() {
    let p = Project::new();
    p.file("requirements.txt", &format!("--no-index\n--find-links {}\n", shared().wheels.display()));
    p.file(
        "pylock.toml",
        "lock-version = \"1.0\"\ncreated-by = \"test\"\n[[packages]]\nname = \"alpha\"\nversion = \"1.0\"\n[[packages]]\nname = \"gamma\"\nversion = \"1.0\"\nmarker = \"sys_platform == 'win32'\"\n",
    );
    p.sync();
    assert_eq!(p.installed(), pkgs(&[("alpha", "1.0")]));
}

#[test]
fn uv_lock_is_exported_and_followed() {
    let p = Project::new();
    let wheels = shared().wheels.display().to_string();
    p.file(
        "pyproject.toml",
        &format!("[project]\nname = \"demo\"\nversion = \"0\"\nrequires-python = \">=3.8\"\ndependencies = [\"alpha<2\"]\n\n[tool.uv]\nno-index = true\nfind-links = [\"{wheels}\"]\n"),
    );
    let status = std::process::Command::new(&shared().uv)
        .args(["lock", "--quiet", "--python"])
        .arg(&shared().python)
        .current_dir(p.root())
        .env("UV_CACHE_DIR", shared().cache.join("uv"))
        .status()
        .unwrap();
    assert!(status.success());
    p.file("requirements.txt", &format!("--no-index\n--find-links {wheels}\n"));
    p.sync();
    assert_eq!(p.installed(), pkgs(&[("alpha", "1.0")]));
    assert_eq!(p.sync()["action"], "noop");
}
