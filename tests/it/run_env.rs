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
    p.file("labup.toml", "");
    p.labup(&["run", "--", "no-such-command-xyz"]).code(1).stderr_has("command not found: `no-such-command-xyz`");
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

#[test]
fn run_no_sync_refuses_a_missing_or_broken_venv() {
    let p = Project::new();
    p.requirements("alpha\n");
    let code = "import sys; print('ran ' + sys.prefix)";
    let out = p.labup(&["run", "--no-sync", "--", "python", "-c", code]).code(1);
    assert!(!out.stdout.contains("ran"), "another Python ran: {}", out.stdout);
    assert!(out.stderr.contains("hint:") && out.stderr.contains("labup sync"), "{}", out.stderr);
    p.sync();
    let ok = p.labup(&["run", "--no-sync", "--", "python", "-c", code]).ok();
    assert_eq!(ok.stdout.trim(), format!("ran {}", p.path(".venv").display()));
    // The interpreter the venv points at is gone (a garbage-collected store path).
    let python = p.path(".venv/bin/python");
    std::fs::remove_file(&python).unwrap();
    std::os::unix::fs::symlink("/nonexistent/labup-test/python3", &python).unwrap();
    let out = p.labup(&["run", "--no-sync", "--", "python", "-c", code]).code(1);
    assert!(!out.stdout.contains("ran"), "the system Python ran: {}", out.stdout);
    assert!(out.stderr.contains("is broken") && out.stderr.contains("labup sync"), "{}", out.stderr);
    // Without --no-sync the sync repairs it.
    let out = p.labup(&["run", "--", "python", "-c", code]).ok();
    assert_eq!(out.stdout.trim(), format!("ran {}", p.path(".venv").display()));
}
