//! Bad configuration: exit 2, `file:line:column`, and nothing written.

use crate::support::Project;

/// Runs `labup sync` on a project with this labup.toml (and local file) and checks the error.
#[track_caller]
fn rejects(toml: &str, local: Option<&str>, expect: &[&str]) {
    let p = Project::new();
    p.requirements("alpha\n");
    p.file("labup.toml", toml);
    if let Some(l) = local {
        p.file("labup.local.toml", l);
    }
    let before = p.listing();
    let out = p.labup(&["sync"]).code(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    for e in expect {
        assert!(out.stderr.contains(e), "stderr lacks {e:?}:\n{}", out.stderr);
    }
    assert_eq!(p.listing(), before, "a bad config changed files");
}

#[test]
fn toml_syntax_error() {
    rejects("[python]\nversion = \"3.12\n", None, &["labup.toml:2:"]);
}

#[test]
fn unknown_key_suggests_the_nearest() {
    rejects(
        "[python]\nverison = \"3.12\"\n",
        None,
        &["labup.toml:2:1: unknown key `verison` in [python]", "hint: did you mean `version`?"],
    );
}

#[test]
fn wrong_type() {
    rejects("[python]\npackages = \"numpy\"\n", None, &["labup.toml:2:12: wrong type in [python]"]);
}

#[test]
fn unknown_service_kind() {
    rejects("[services.nb]\nkind = \"jupyterlab\"\n", None, &["labup.toml:2:8: unknown value `jupyterlab`", "hint:"]);
}

#[test]
fn port_out_of_range() {
    rejects(
        "[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 99999\n",
        None,
        &["labup.toml:3:8: port 99999 is out of range"],
    );
}

#[test]
fn dependency_cycle_in_after() {
    rejects(
        "[services.a]\ncommand = [\"a\"]\nafter = [\"b\"]\n\n[services.b]\ncommand = [\"b\"]\nafter = [\"a\"]\n",
        None,
        &["labup.toml:7:10: dependency cycle in `after`: a → b → a"],
    );
}

#[test]
fn errors_in_the_local_file_name_it() {
    rejects(
        "[python]\nversion = \"3.11\"\n",
        Some("[python]\ninstaler = \"pip\"\n"),
        &["labup.local.toml:2:1: unknown key `instaler`", "did you mean `installer`?"],
    );
}

#[test]
fn usage_errors_exit_two() {
    let p = Project::new();
    let out = p.labup(&["sync", "--frobnicate"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let out = p.labup(&["frobnicate"]);
    assert_eq!(out.code, 2, "an unknown command: {}", out.stderr);
    assert!(out.stderr.contains("Usage:"));
    // Bare `labup` is `labup up` (here with the default Jupyter switched off: nothing to start),
    // in a project (a folder with a labup.toml; an empty one is refused, see first_hour.rs).
    p.file("labup.toml", "");
    let out = p.labup(&[]).ok();
    assert!(out.stderr.contains("no services to start"), "{}", out.stderr);
}

#[test]
fn completions_and_man_page_come_from_the_command_line() {
    let p = Project::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = p.labup(&["completions", shell]).ok();
        assert!(out.stdout.contains("sync") && out.stdout.contains("restart"), "{shell}: {}", out.stdout);
    }
    let man = p.labup(&["__man"]).ok();
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH labup"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    p.labup(&["completions", "tcsh"]).code(2);
}

#[test]
fn help_lists_only_working_commands() {
    let p = Project::new();
    let out = p.labup(&["--help"]).ok();
    for cmd in [
        "up",
        "stop",
        "restart",
        "status",
        "logs",
        "sync",
        "lock",
        "run",
        "env",
        "gpu",
        "doctor",
        "completions",
        "hook",
        "init",
    ] {
        assert!(out.stdout.contains(&format!("  {cmd} ")), "{cmd} missing:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("__supervise"), "the supervisor entry point is hidden");
    assert!(!out.stdout.contains("__shell"), "the hook's entry and exit calls are hidden");
}
