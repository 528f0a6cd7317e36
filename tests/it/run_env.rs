//! `labup run` and `labup env`: the workspace environment for a child only.

use crate::support::Project;

#[test]
fn run_uses_the_venv_and_passes_the_exit_code() {
    let p = Project::new();
    p.requirements("alpha\n");
    let out = p
        .labup(&[
            "run",
            "--",
            "python",
            "-c",
            "import alpha, os, sys; print(alpha.__version__, os.environ['VIRTUAL_ENV'] == sys.prefix)",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "2.0 True");
    let out = p.labup(&["run", "--", "python", "-c", "import sys; sys.exit(7)"]);
    assert_eq!(out.code, 7);
}

#[test]
fn run_sets_the_library_path_for_the_child_only() {
    let mut p = Project::new();
    p.file("labup.toml", "");
    p.set("LABUP_LIBRARY_PATH", "/nix/store/fake-gcc-lib/lib").set("LD_LIBRARY_PATH", "/inherited");
    let out = p.labup(&["run", "--", "sh", "-c", "echo $LD_LIBRARY_PATH"]).ok();
    assert_eq!(out.stdout.trim(), "/nix/store/fake-gcc-lib/lib", "ours only: the inherited value is not passed on");
    let env = p.labup(&["env", "--json"]).ok().json();
    let ld = env["entries"].as_array().unwrap().iter().find(|e| e["name"] == "LD_LIBRARY_PATH").unwrap();
    assert_eq!(ld["value"], "/nix/store/fake-gcc-lib/lib");
    assert!(ld["note"].as_str().unwrap().contains("your own LD_LIBRARY_PATH (/inherited) is not passed on"));
}

#[test]
fn run_reports_a_missing_command() {
    let p = Project::new();
    p.labup(&["run", "--no-sync", "--", "no-such-command-xyz"])
        .code(1)
        .stderr_has("command not found: `no-such-command-xyz`");
}

#[test]
fn env_prints_the_workspace_variables() {
    let p = Project::new();
    let out = p.labup(&["env"]).ok();
    assert!(out.stdout.contains(&format!("VIRTUAL_ENV={}\n", p.path(".venv").display())), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("PATH={}:", p.path(".venv/bin").display())), "{}", out.stdout);
    let explained = p.labup(&["env", "--explain"]).ok();
    assert!(explained.stdout.contains("# the venv's python and tools first"), "{}", explained.stdout);
    assert!(!p.path(".venv").exists(), "env changes nothing");
}
