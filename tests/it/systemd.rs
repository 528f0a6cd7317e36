//! `labup export systemd`, checked by systemd's own `systemd-analyze verify` (`engine_systemd_*`:
//! systemd is not in the Nix sandbox), and its refusals.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::Project;

/// `systemd-analyze [--user] verify --recursive-errors=no UNIT`: without that flag an unknown
/// directive is printed but the exit is 0 (ENGINES.md). User units need a runtime folder.
fn verify(unit: &Path, user: bool) -> Output {
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    if user {
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    cmd.args(["verify", "--recursive-errors=no"]).arg(unit);
    cmd.output().expect("systemd-analyze (systemd) is needed")
}

fn check(user: bool) {
    let p = Project::new();
    p.file("labup.toml", "[project]\nname = \"demo ws\"\n[services.web]\ncommand = [\"python3\", \"-m\", \"http.server\", \"$PORT\"]\nport = 8123\nstop-timeout = 25\n");
    let mut args = vec!["export", "systemd", "-o", "units"];
    if user {
        args.insert(2, "--user");
    }
    p.labup(&args).ok();
    let unit = p.path("units/labup-demo-ws.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let labup = Path::new(env!("CARGO_BIN_EXE_labup")).canonicalize().unwrap();
    let root = p.root().canonicalize().unwrap_or(p.root().to_path_buf());
    let want_exec =
        format!("ExecStart={} --project {} up --foreground --no-browser", labup.display(), p.root().display());
    assert!(text.lines().any(|l| l == want_exec) || text.contains(&format!("--project {}", root.display())), "{text}");
    assert!(text.lines().any(|l| l == "TimeoutStopSec=55"), "largest stop-timeout 25 + 30:\n{text}");
    assert!(text.lines().any(|l| l == "KillMode=mixed"), "{text}");
    assert_eq!(text.lines().any(|l| l.starts_with("User=")), !user, "{text}");
    assert!(text.contains(&format!("Environment=\"LABUP_PYTHON={}\"", p.env["LABUP_PYTHON"])), "{text}");
    let out = verify(&unit, user);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{}", String::from_utf8_lossy(&out.stderr));

    // The same check fails on a unit with a misspelled directive: it can fail.
    let bad = p.path("bad/labup-demo-ws.service");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, text.replace("Restart=on-failure", "Restrat=on-failure")).unwrap();
    let out = verify(&bad, user);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a misspelled directive must fail the check:\n{err}");
    assert!(err.contains("Restrat"), "{err}");
}

#[test]
fn engine_systemd_system_unit_passes_systemd_analyze_verify() {
    check(false);
}

#[test]
fn engine_systemd_user_unit_passes_systemd_analyze_verify() {
    check(true);
}

#[test]
fn export_systemd_prints_the_unit_and_never_writes_over_other_files() {
    let p = Project::new();
    p.file("labup.toml", "[project]\nname = \"demo\"\n");
    let out = p.labup(&["export", "systemd", "--user"]).ok();
    assert!(out.stdout.contains("Description=labup workspace demo"), "{}", out.stdout);
    assert!(out.stdout.contains("WantedBy=default.target"), "{}", out.stdout);
    p.file("etc/notes.txt", "mine");
    p.file("unit.txt", "mine");
    let before = p.listing();
    p.labup(&["export", "systemd", "-o", "etc"]).code(2).stderr_has("notes.txt");
    p.labup(&["export", "systemd", "-o", "unit.txt"]).code(2).stderr_has("is not a folder");
    assert_eq!(p.listing(), before);
    // Its own folder is written again.
    p.labup(&["export", "systemd", "-o", "units"]).ok();
    p.labup(&["export", "systemd", "-o", "units"]).ok();
    assert!(p.path("units/labup-demo.service").is_file());
}
