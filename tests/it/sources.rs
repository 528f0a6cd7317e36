//! Requirement sources other than requirements.txt: pyproject.toml, pylock.toml, uv.lock,
//! `[python] packages`.

use crate::support::{build_wheel, git_commit_all, local_package, pkgs, shared, which, Project};

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

/// A project whose requirements name local sources (an editable folder, a wheel file, a git
/// repository) next to a find-links folder where a stranger published packages of the same names
/// and versions, as on PyPI (dependency confusion). Returns the requirement lines.
pub(crate) fn local_sources(p: &Project) -> String {
    let root = p.root();
    local_package(&root.join("mypkg"), "mypkg", "1.0.0", &["alpha"], "LOCAL = True\n");
    local_package(&root.join("src-wheelpkg"), "wheelpkg", "1.0", &[], "LOCAL = True\n");
    let wheel = build_wheel(&root.join("src-wheelpkg"), &root.join("dist"));
    local_package(&root.join("vcsrepo"), "vcspkg", "1.0", &[], "LOCAL = True\n");
    if has_git() {
        git_commit_all(&root.join("vcsrepo"));
    }
    let stranger = tempfile::tempdir().unwrap();
    for (name, version) in [("mypkg", "1.0.0"), ("wheelpkg", "1.0"), ("vcspkg", "1.0")] {
        let src = stranger.path().join(name);
        local_package(&src, name, version, &[], "STRANGER = True\n");
        build_wheel(&src, &root.join("stranger"));
    }
    let mut lines = format!("--find-links ./stranger\n-e ./mypkg\nwheelpkg @ file://{}\n", wheel.display());
    if has_git() {
        lines.push_str(&format!("vcspkg @ git+file://localhost{}\n", root.join("vcsrepo").display()));
    }
    lines
}

/// Whether git is here for the VCS requirement (the Nix build sandbox has none: that part is
/// then left out, with a note).
pub(crate) fn has_git() -> bool {
    let found = which("git").is_some();
    if !found {
        eprintln!("note: no git on PATH: the VCS requirement is left out of this test");
    }
    found
}

/// What the venv's code is: each module's marker and how each was installed (PEP 610).
pub(crate) fn check_local_sources(p: &Project) {
    let git = which("git").is_some();
    let code = format!(
        "import json, importlib.metadata as m, mypkg, wheelpkg\n\
         mods = [mypkg, wheelpkg]\n\
         if {git}:\n\
         \x20   import vcspkg; mods.append(vcspkg)\n\
         for mod in mods:\n\
         \x20   print(mod.__name__, getattr(mod, 'LOCAL', False), getattr(mod, 'STRANGER', False))\n\
         d = json.loads(m.distribution('mypkg').read_text('direct_url.json'))\n\
         print('editable', d.get('dir_info', {{}}).get('editable', False))\n\
         if {git}:\n\
         \x20   print('vcs', 'vcs_info' in json.loads(m.distribution('vcspkg').read_text('direct_url.json')))",
        git = if git { "True" } else { "False" }
    );
    let vcs = if git { "vcspkg True False\n" } else { "" };
    let expected =
        format!("mypkg True False\nwheelpkg True False\n{vcs}editable True{}", if git { "\nvcs True" } else { "" });
    assert_eq!(p.venv_python(&code), expected, "the venv holds the local code, not the stranger's");
}

pub(crate) fn sources_are_kept(p: &Project, lock: &str) {
    let lock_text = std::fs::read_to_string(p.path(lock)).unwrap();
    for name in ["mypkg", "wheelpkg", "vcspkg"] {
        assert!(
            !lock_text.lines().any(|l| l.trim_start().starts_with(&format!("{name}=="))),
            "{name} is pinned from an index: {lock_text}"
        );
    }
    assert!(lock_text.contains("mypkg") && lock_text.contains("-e "), "the editable is kept: {lock_text}");
    assert!(lock_text.contains("wheelpkg @ file://"), "{lock_text}");
    if which("git").is_some() {
        assert!(lock_text.contains("vcspkg @ git+file://localhost"), "{lock_text}");
    }
    check_local_sources(p);
    // Editable stays editable: a change to the source is seen without a sync.
    std::fs::write(p.path("mypkg/mypkg/__init__.py"), "LOCAL = True\nEDITED = 1\n").unwrap();
    assert_eq!(p.venv_python("import mypkg; print(mypkg.EDITED)"), "1");
    assert_eq!(p.sync()["action"], "noop");
}

#[test]
fn local_editable_wheel_and_git_sources_are_kept_with_uv() {
    let p = Project::new();
    let lines = local_sources(&p);
    p.requirements(&lines);
    p.sync();
    sources_are_kept(&p, "requirements.lock");
    assert!(p.installed().contains_key("alpha"), "the editable's dependency is installed");
}
