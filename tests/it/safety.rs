//! Crash safety: foreign folders, concurrent runs, kills at every stage, failed resolution.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{pkgs, shared, Project};

#[test]
fn a_folder_that_is_not_a_venv_is_never_deleted() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.file(".venv/notes.txt", "precious");
    p.labup(&["sync"])
        .code(1)
        .stderr_has("`.venv` exists but is not a virtual environment: it has no pyvenv.cfg")
        .stderr_has("hint: labup never deletes a folder it did not make");
    assert_eq!(std::fs::read_to_string(p.path(".venv/notes.txt")).unwrap(), "precious");
    assert!(!p.path("requirements.lock").exists());
}

#[test]
fn two_syncs_at_once_give_one_sync_and_one_wait() {
    let p = Project::new();
    p.requirements("beta\ndelta\n");
    let spawn = || {
        p.command(&["sync", "--json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut actions: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            json["action"].as_str().unwrap().to_string()
        })
        .collect();
    actions.sort();
    assert_eq!(actions, ["created", "noop"]);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0"), ("beta", "1.0"), ("delta", "1.0")]));
    assert_eq!(p.sync()["action"], "noop");
}

/// Starts `labup sync` through the stalling uv stub, waits until it stalls at `stage`, then
/// sends `signal` to its whole process group (as a terminal's Ctrl-C or a kill would).
fn interrupt_at(p: &mut Project, stage: &str, when: &str, signal: nix::sys::signal::Signal) {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("stalled");
    p.set("LABUP_UV", shared().fixtures.join("stall-uv.sh"))
        .set("REAL_UV", &shared().uv)
        .set("STALL_AT", stage)
        .set("STALL_WHEN", when)
        .set("STALL_FILE", &flag);
    let mut cmd = p.command(&["sync"]);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    while !flag.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "labup never reached {stage}");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("labup exited ({status}) before reaching {stage}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let group = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::killpg(group, signal).unwrap();
    let _ = child.wait();
    for k in ["STALL_AT", "STALL_WHEN", "STALL_FILE", "REAL_UV"] {
        p.unset(k);
    }
    p.set("LABUP_UV", &shared().uv);
}

fn assert_not_believed_good(p: &Project) {
    assert!(!p.path(".venv/.labup.json").exists(), "an interrupted sync left a marker");
}

#[test]
fn killed_at_any_stage_the_next_sync_repairs() {
    use nix::sys::signal::Signal::{SIGINT, SIGKILL};
    for (stage, when, signal) in [
        ("venv", "before", SIGKILL),
        ("compile", "before", SIGKILL),
        ("sync", "before", SIGKILL),
        ("sync", "after", SIGKILL),
        ("sync", "after", SIGINT),
    ] {
        let mut p = Project::new();
        p.requirements("alpha==1.0\n");
        p.sync();
        p.requirements("beta\n");
        if stage == "venv" {
            std::fs::remove_dir_all(p.path(".venv")).unwrap();
        }
        interrupt_at(&mut p, stage, when, signal);
        if stage == "sync" {
            // The venv is being changed: its marker must be gone. (Killed earlier, the venv
            // is untouched and its marker is simply stale, as the repair below shows.)
            assert_not_believed_good(&p);
        }
        let out = p.labup(&["sync", "--json"]).ok();
        assert_ne!(out.json()["action"], "noop", "{stage}/{when}: the repair must not be a no-op");
        // uv keeps the already-locked alpha 1.0 while resolving the new requirement.
        assert_eq!(p.installed(), pkgs(&[("alpha", "1.0"), ("beta", "1.0")]), "{stage}/{when}/{signal}");
        let leftovers: Vec<String> = p
            .listing()
            .into_iter()
            .filter(|f| f.contains("labup-new") || f.contains("labup-old") || f.contains("labup-resolve"))
            .collect();
        assert!(leftovers.is_empty(), "{stage}/{when}: {leftovers:?}");
        assert_eq!(p.sync()["action"], "noop");
    }
}

#[test]
fn a_nonexistent_package_leaves_venv_and_lock_as_they_were() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.sync();
    let lock = std::fs::read_to_string(p.path("requirements.lock")).unwrap();
    let marker = std::fs::read_to_string(p.path(".venv/.labup.json")).unwrap();
    p.requirements("alpha\nno-such-package-labup-test\n");
    p.labup(&["sync"])
        .code(1)
        .stderr_has("error: resolving the requirements failed")
        .stderr_has("no-such-package-labup-test")
        .stderr_has("hint: check the package names and versions in requirements.txt; the venv and requirements.lock were left as they were");
    assert_eq!(std::fs::read_to_string(p.path("requirements.lock")).unwrap(), lock);
    assert_eq!(std::fs::read_to_string(p.path(".venv/.labup.json")).unwrap(), marker);
    assert_eq!(p.installed(), pkgs(&[("alpha", "2.0")]));
    // Put the requirement back: the old venv is still the good one.
    p.requirements("alpha\n");
    assert_eq!(p.sync()["action"], "noop");
}

#[test]
fn an_unreachable_index_is_reported_as_a_network_problem() {
    let p = Project::new();
    p.file("requirements.txt", "--index-url http://127.0.0.1:9/simple\nalpha\n");
    let mut p = p;
    p.set("UV_HTTP_TIMEOUT", "5");
    p.labup(&["sync"]).code(1).stderr_has("hint: check the network connection");
    assert!(!p.path("requirements.lock").exists());
    assert!(!p.path(".venv").exists(), "nothing was built");
}

#[test]
fn leftover_build_folders_are_cleaned_and_nothing_else() {
    let p = Project::new();
    p.file("labup.toml", "");
    p.file(".venv.labup-new-99999/bin/python", "");
    p.file(".venv.keep/file", "");
    p.sync();
    assert!(!Path::new(&p.path(".venv.labup-new-99999")).exists());
    assert!(p.path(".venv.keep/file").exists());
}

#[test]
fn an_interrupted_sync_leaves_no_temporary_file_in_the_project() {
    use nix::sys::signal::Signal::SIGKILL;
    for stage in ["compile", "sync"] {
        let mut p = Project::new();
        p.requirements("alpha==1.0\n");
        p.sync();
        p.requirements("beta\n");
        interrupt_at(&mut p, stage, "before", SIGKILL);
        let leftovers: Vec<String> = p
            .listing()
            .into_iter()
            .filter(|f| !f.starts_with(".labup") && !f.starts_with(".venv/"))
            .filter(|f| f.contains("labup-"))
            .collect();
        assert!(leftovers.is_empty(), "{stage}: temporary files in the project: {leftovers:?}");
        let tmp: Vec<String> = p.listing().into_iter().filter(|f| f.starts_with(".labup/tmp/")).collect();
        assert!(!tmp.is_empty(), "{stage}: the temporary files are under .labup/tmp");
    }
}
