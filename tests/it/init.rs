//! `labup init`: the files it writes on fixture projects are accepted by labup (and by Nix's
//! parser), nothing is overwritten without `--force`, and `.gitignore` lines are not repeated.

use std::process::Command;

use crate::support::{which, Project};

/// `labup env` and `labup status` load the whole configuration: a rejected file exits 2.
#[track_caller]
fn accepted(p: &Project) {
    p.labup(&["env"]).ok();
    p.labup(&["status"]).ok();
}

fn read(p: &Project, name: &str) -> String {
    std::fs::read_to_string(p.path(name)).unwrap()
}

#[test]
fn init_with_requirements_server_and_notebooks() {
    let p = Project::new();
    p.requirements("alpha\n").file("server.py", "print('hi')\n").file("notebooks/a.ipynb", "{}");
    p.file("requirements-dev.txt", "gamma\n");
    let out = p.labup(&["init"]).ok();
    assert!(out.stderr.contains("wrote labup.toml: services jupyter (notebooks), app (server.py)"), "{}", out.stderr);
    assert!(out.stderr.contains("added .venv/, .labup/, labup.local.toml to .gitignore"), "{}", out.stderr);
    let toml = read(&p, "labup.toml");
    assert!(toml.contains("requirements = [\"requirements-dev.txt\", \"requirements.txt\"]"), "{toml}");
    assert!(toml.contains("[services.app]\ncommand = [\"python\", \"server.py\"]"), "{toml}");
    assert!(toml.contains("root = \"notebooks\""), "{toml}");
    assert_eq!(read(&p, ".gitignore"), ".venv/\n.labup/\nlabup.local.toml\n");
    accepted(&p);
    let env = p.labup(&["env", "--json"]).ok().json();
    assert!(env["entries"][0]["value"].as_str().unwrap().ends_with("/.venv"));
}

#[test]
fn init_with_pyproject_and_python_version() {
    let p = Project::new();
    p.file("pyproject.toml", "[project]\nname = \"x\"\nversion = \"0\"\ndependencies = [\"alpha\"]\n");
    p.file("uv.lock", "version = 1\n").file(".python-version", "3.11.7\n");
    p.labup(&["init"]).ok();
    let toml = read(&p, "labup.toml");
    assert!(toml.contains("requirements = [\"pyproject.toml\"]"), "{toml}");
    assert!(toml.contains("pinned by uv.lock"), "{toml}");
    assert!(toml.contains("version = \"3.11\""), "{toml}");
    assert!(!toml.contains("[services.app]"), "{toml}");
    accepted(&p);
}

#[test]
fn init_in_an_empty_folder_and_with_a_gpu() {
    let mut p = Project::new();
    p.labup(&["init"]).ok().stderr_has("no requirements yet");
    let toml = read(&p, "labup.toml");
    assert!(toml.contains("No NVIDIA GPU was found") && toml.contains("root = \".\""), "{toml}");
    accepted(&p);

    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(host.path().join("sys/module/nvidia")).unwrap();
    std::fs::write(host.path().join("sys/module/nvidia/version"), "550.144.03\n").unwrap();
    p.set("LABUP_FS_ROOT", host.path());
    p.labup(&["init", "--force"]).ok().stderr_has("overwrote labup.toml");
    let toml = read(&p, "labup.toml");
    assert!(toml.contains("an NVIDIA GPU was found (driver 550.144.03)") && toml.contains("\n[gpu]\n"), "{toml}");
    accepted(&p);
}

#[test]
fn init_never_overwrites_without_force() {
    let p = Project::new();
    p.file("labup.toml", "[project]\nname = \"mine\"\n");
    p.file("flake.nix", "{ }\n");
    let out = p.labup(&["init", "--flake"]).code(1);
    assert!(out.stderr.contains("`labup.toml` and `flake.nix` already exist"), "{}", out.stderr);
    assert!(out.stderr.contains("hint: `labup init --force --flake` overwrites"), "{}", out.stderr);
    assert_eq!(read(&p, "labup.toml"), "[project]\nname = \"mine\"\n");
    assert_eq!(read(&p, "flake.nix"), "{ }\n");
    assert!(!p.path(".gitignore").exists(), "nothing is written when every file exists");
    p.labup(&["init"]).code(1).stderr_has("`labup.toml` already exists");

    std::fs::remove_file(p.path("labup.toml")).unwrap();
    p.labup(&["init"]).ok();
    assert_eq!(read(&p, "flake.nix"), "{ }\n", "without --flake, flake.nix is not touched");
}

#[test]
fn init_flake_in_a_project_with_a_labup_toml_adds_only_the_flake() {
    let p = Project::new();
    p.file("labup.toml", "[project]\nname = \"mine\"\n");
    let out = p.labup(&["init", "--flake"]).ok();
    assert_eq!(read(&p, "labup.toml"), "[project]\nname = \"mine\"\n", "the user's config is kept");
    assert_eq!(read(&p, "flake.nix"), labup::testing::FLAKE);
    assert!(out.stderr.contains("kept labup.toml"), "{}", out.stderr);
    assert!(out.stderr.contains("wrote flake.nix"), "{}", out.stderr);
    assert!(
        out.stderr.contains("github:OWNER/labup") && out.stderr.contains("where labup is published"),
        "{}",
        out.stderr
    );
    assert!(read(&p, ".gitignore").contains(".labup/"));
}

#[test]
fn gitignore_lines_are_added_once() {
    let p = Project::new();
    p.file(".gitignore", "target/\n/.venv");
    p.labup(&["init"]).ok().stderr_has("added .labup/, labup.local.toml to .gitignore");
    let first = read(&p, ".gitignore");
    assert_eq!(first, "target/\n/.venv\n# labup\n.labup/\nlabup.local.toml\n");
    let out = p.labup(&["init", "--force"]).ok();
    assert!(!out.stderr.contains("to .gitignore"), "{}", out.stderr);
    assert_eq!(read(&p, ".gitignore"), first);
}

#[test]
fn init_flake_writes_the_template_flake_that_nix_parses() {
    let p = Project::new();
    p.labup(&["init", "--flake"]).ok().stderr_has("wrote flake.nix");
    let flake = read(&p, "flake.nix");
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/default/flake.nix")).unwrap();
    assert_eq!(flake, template);
    assert!(flake.contains("labup.lib.mkFlake { src = ./.; }"));
    accepted(&p);
    let Some(nix) = which("nix-instantiate") else {
        eprintln!("note: `nix-instantiate` is not installed: skipping the parse of flake.nix");
        return;
    };
    let out = Command::new(nix)
        .args(["--store", "dummy://", "--parse"])
        .arg(p.path("flake.nix"))
        .env_remove("NIX_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "flake.nix does not parse: {}", String::from_utf8_lossy(&out.stderr));
}
