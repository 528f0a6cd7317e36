//! Bad configuration: exit 2, `file:line:column`, and nothing written.

use crate::support::{Output, Project};

/// Runs `labup ARGS` on a project with this labup.toml (and local file), checks that it exits 2
/// with an error and wrote nothing (no `.venv`, no `.labup`), and returns the run for a snapshot.
#[track_caller]
fn rejected_by(args: &[&str], toml: &str, local: Option<&str>) -> (Project, Output) {
    let p = Project::new();
    p.requirements("alpha\n");
    p.file("labup.toml", toml);
    if let Some(l) = local {
        p.file("labup.local.toml", l);
    }
    let before = p.listing();
    let out = p.labup(args).code(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert_eq!(p.listing(), before, "a bad config changed files");
    assert!(!p.path(".venv").exists() && !p.path(".labup").exists());
    (p, out)
}

#[track_caller]
fn rejected(toml: &str, local: Option<&str>) -> (Project, Output) {
    rejected_by(&["sync"], toml, local)
}

#[test]
fn toml_syntax_error() {
    let (p, out) = rejected("[python]\nversion = \"3.12\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let (p, out) = rejected("[python]\nverison = \"3.12\"\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn wrong_type() {
    let (p, out) = rejected("[python]\npackages = \"numpy\"\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn unknown_service_kind() {
    let (p, out) = rejected("[services.nb]\nkind = \"jupyterlab\"\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn port_out_of_range() {
    let (p, out) = rejected("[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 99999\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn dependency_cycle_in_after() {
    let (p, out) = rejected(
        "[services.a]\ncommand = [\"a\"]\nafter = [\"b\"]\n\n[services.b]\ncommand = [\"b\"]\nafter = [\"a\"]\n",
        None,
    );
    labup_snapshot!(&p, out);
}

#[test]
fn errors_in_the_local_file_name_it() {
    let (p, out) = rejected("[python]\nversion = \"3.11\"\n", Some("[python]\ninstaler = \"pip\"\n"));
    labup_snapshot!(&p, out);
}

const TWO_ON_8000: &str = "[services.api]\ncommand = [\"python\", \"api.py\"]\nport = 8000\n\n\
                           [services.web]\ncommand = [\"python\", \"web.py\"]\nport = 8000\n";

#[test]
fn two_services_on_one_fixed_port() {
    // `up` refuses it before the sync: nothing is written.
    let (p, out) = rejected_by(&["up"], TWO_ON_8000, None);
    assert!(out.stderr.contains("services `api` and `web` both listen on port 8000"), "{}", out.stderr);
    labup_snapshot!(&p, out);
    let (_, dry) = rejected_by(&["up", "--dry-run"], TWO_ON_8000, None);
    assert_eq!(dry.stderr, out.stderr);
}

#[test]
fn a_port_the_local_file_sets_is_located_there() {
    let (p, out) = rejected(
        "[services.jupyter]\n\n[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 5001\n",
        Some("[services.app]\nport = 8888\n"),
    );
    labup_snapshot!(&p, out);
}

#[test]
fn after_a_service_the_local_file_disables() {
    let (p, out) = rejected_by(
        &["up"],
        "[services.ollama]\n\n[services.app]\ncommand = [\"python\", \"server.py\"]\nafter = [\"ollama\"]\n",
        Some("[services.ollama]\nenabled = false\n"),
    );
    labup_snapshot!(&p, out);
}

#[test]
fn names_that_share_a_port_variable() {
    let (p, out) = rejected("[services.my-api]\ncommand = [\"a\"]\n\n[services.my_api]\ncommand = [\"b\"]\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn a_service_name_that_is_a_path() {
    let (p, out) = rejected("[services.\"../web\"]\ncommand = [\"a\"]\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn a_port_probe_without_a_port() {
    let (p, out) = rejected("[services.worker]\ncommand = [\"python\", \"worker.py\"]\nready = { tcp = true }\n", None);
    labup_snapshot!(&p, out);
}

#[test]
fn port_in_env_besides_port() {
    let (p, out) = rejected(
        "[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 5001\nenv = { PORT = \"9000\" }\n",
        None,
    );
    labup_snapshot!(&p, out);
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
