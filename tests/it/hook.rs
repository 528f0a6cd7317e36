//! `labup hook`: its output sourced in real bash, zsh and fish; the library-path wrappers;
//! hints; and `[shell] autostart` with real services and real shells entering and exiting.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{shared, wait_until, which, Output, Project};

const LABUP: &str = env!("CARGO_BIN_EXE_labup");

/// The shell's path, or `None` with a note (zsh and fish are optional: `.ci/run` installs them).
fn shell_or_skip(name: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        eprintln!("note: `{name}` is not installed: skipping its part of this test");
    }
    found
}

/// bash from PATH (the Nix sandbox has no /bin/bash).
fn bash() -> PathBuf {
    which("bash").expect("bash on PATH")
}

/// `/usr/bin/git --version` as the host program that must keep working; where there is no
/// such git (the Nix sandbox) `true` stands in, with a note.
fn host_program() -> &'static str {
    if Path::new("/usr/bin/git").exists() {
        "/usr/bin/git --version"
    } else {
        eprintln!("note: no /usr/bin/git here: `true` stands in for the host program");
        "true"
    }
}

/// A shell running `script` in the project folder with the project's environment; `labup` is on PATH.
fn shell_command(p: &Project, shell: &Path, script: &str) -> Command {
    let mut cmd = Command::new(shell);
    if shell.ends_with("zsh") {
        cmd.arg("-f");
    }
    cmd.arg("-c").arg(script).current_dir(p.root()).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LABUP_") || k.starts_with("VIRTUAL_ENV")) {
        cmd.env_remove(k);
    }
    cmd.env_remove("LD_LIBRARY_PATH").env_remove("PYTHONHOME");
    let bin = Path::new(LABUP).parent().unwrap();
    cmd.env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    cmd.envs(&p.env);
    cmd
}

fn in_shell(p: &Project, shell: &Path, script: &str) -> Output {
    let out = shell_command(p, shell, script).output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `key=value` lines printed by a test script.
fn field<'a>(out: &'a Output, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in:\n{}\nstderr:\n{}", out.stdout, out.stderr))
}

const POSIX_CHECK: &str = r#"
P0="$PATH"
eval "$(labup hook SHELL)"
echo "path=$PATH"
echo "venv=$VIRTUAL_ENV"
echo "python=$(command -v python)"
echo "prompt=$PS1"
python -c 'import alpha, sys; print("alpha=" + alpha.__version__); print("prefix=" + sys.prefix)'
HOST >/dev/null && echo "git=ok"
deactivate
[ "$PATH" = "$P0" ] && echo "restored=yes"
echo "venv_after=${VIRTUAL_ENV-unset}"
echo "prompt_after=$PS1"
"#;

const FISH_CHECK: &str = r#"
set P0 (string join : $PATH)
labup hook fish | source
echo "path="(string join : $PATH)
echo "venv=$VIRTUAL_ENV"
echo "python="(command -v python)
python -c 'import alpha, sys; print("alpha=" + alpha.__version__); print("prefix=" + sys.prefix)'
HOST >/dev/null; and echo "git=ok"
deactivate
test "$P0" = (string join : $PATH); and echo "restored=yes"
set -q VIRTUAL_ENV; and echo "venv_after=$VIRTUAL_ENV"; or echo "venv_after=unset"
"#;

fn check_activation(p: &Project, shell_name: &str) {
    let Some(shell) = shell_or_skip(shell_name) else { return };
    let script = if shell_name == "fish" {
        FISH_CHECK.to_string()
    } else {
        format!("PS1='custom> '\n{}", POSIX_CHECK.replace("SHELL", shell_name))
    }
    .replace("HOST", host_program());
    let out = in_shell(p, &shell, &script);
    let venv = p.path(".venv").display().to_string();
    assert!(field(&out, "path").starts_with(&format!("{venv}/bin:")), "{shell_name}: {}", out.stdout);
    assert_eq!(field(&out, "venv"), venv, "{shell_name}");
    assert_eq!(field(&out, "python"), format!("{venv}/bin/python"), "{shell_name}");
    assert_eq!(field(&out, "alpha"), "2.0", "{shell_name}");
    assert_eq!(field(&out, "prefix"), venv, "{shell_name}");
    assert_eq!(field(&out, "git"), "ok", "{shell_name}");
    assert_eq!(field(&out, "restored"), "yes", "{shell_name}: deactivate restores PATH exactly");
    assert_eq!(field(&out, "venv_after"), "unset", "{shell_name}");
    if shell_name != "fish" {
        let name = p.root().file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(field(&out, "prompt"), format!("({name}) custom> "), "{shell_name}: the marker prefixes the prompt");
        assert_eq!(field(&out, "prompt_after"), "custom> ", "{shell_name}");
    }
    assert!(out.stderr.is_empty(), "{shell_name}: no hint for a synced venv: {}", out.stderr);
}

#[test]
fn hook_activates_the_venv_and_deactivate_restores_in_each_shell() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.sync();
    for shell in ["bash", "zsh", "fish"] {
        check_activation(&p, shell);
    }
}

#[test]
fn the_prompt_marker_respects_virtual_env_disable_prompt() {
    let mut p = Project::new();
    p.file("labup.toml", "");
    p.set("VIRTUAL_ENV_DISABLE_PROMPT", "1");
    let out = in_shell(&p, &bash(), "PS1='mine> '; eval \"$(labup hook bash)\" 2>/dev/null; echo \"prompt=$PS1\"");
    assert_eq!(field(&out, "prompt"), "mine> ");
}

#[test]
fn hook_hints_at_a_missing_or_stale_venv_and_writes_nothing() {
    let p = Project::new();
    p.requirements("alpha\n");
    let before = p.listing();
    let out = p.labup(&["hook", "bash"]).ok();
    assert!(out.stderr.contains("no .venv yet: run `labup up` (or `labup sync`)"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(out.stdout.contains("VIRTUAL_ENV="), "it still activates: {}", out.stdout);
    assert_eq!(p.listing(), before, "hook wrote something");

    p.sync();
    assert!(p.labup(&["hook", "zsh"]).ok().stderr.is_empty());
    p.requirements("alpha\ngamma\n");
    let synced = p.listing();
    let out = p.labup(&["hook", "fish"]).ok();
    assert!(out.stderr.contains(".venv is out of date with the requirements: run `labup sync`"), "{}", out.stderr);
    assert_eq!(p.listing(), synced, "hook wrote something");
}

#[test]
fn hook_is_silent_outside_a_project() {
    let p = Project::new();
    let out = p.labup(&["hook", "bash"]).ok();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = p.labup(&["hook", "bash", "--project", "."]).ok();
    assert!(out.stdout.contains("VIRTUAL_ENV="), "an explicit --project always activates");
}

#[test]
fn sync_inside_a_hooked_shell_builds_from_the_base_interpreter() {
    // Without LABUP_PYTHON labup looks for python3 on PATH, where the venv's own is now first.
    let mut p = Project::new();
    p.unset("LABUP_PYTHON");
    p.requirements("alpha\n");
    p.sync();
    let out = in_shell(&p, &bash(), "eval \"$(labup hook bash)\"; labup sync --json");
    let json: serde_json::Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["action"], "noop", "{}\n{}", out.stdout, out.stderr);
}

/// `pip` typed in a hooked shell acts on the venv (which has no pip of its own), not on the base
/// interpreter, and says once that the venv is exact. `PIP_REQUIRE_VIRTUALENV=1` makes a pip
/// that would install into the base interpreter refuse, so the test never changes it.
pub(crate) fn check_pip_in_the_shell(p: &Project) {
    let wheels = shared().wheels.display().to_string();
    let script = format!(
        r#"
export PIP_REQUIRE_VIRTUALENV=1 PIP_DISABLE_PIP_VERSION_CHECK=1
eval "$(labup hook bash)"
echo "pip=$(command -v pip)"
pip install --no-index --find-links {wheels} gamma 2>first.err >/dev/null; echo "first=$?"
pip install --no-index --find-links {wheels} delta 2>second.err >/dev/null; echo "second=$?"
python -c 'import gamma; print("gamma=" + gamma.__version__)'
"#
    );
    let out = in_shell(p, &bash(), &script);
    assert!(field(&out, "pip").starts_with(&p.path(".labup/shell").display().to_string()), "{}", out.stdout);
    let first = std::fs::read_to_string(p.path("first.err")).unwrap();
    assert_eq!(field(&out, "first"), "0", "{first}");
    assert_eq!(field(&out, "second"), "0");
    assert_eq!(field(&out, "gamma"), "1.0", "{}", out.stderr);
    assert!(first.contains("the next `labup sync` removes"), "the note: {first}");
    let second = std::fs::read_to_string(p.path("second.err")).unwrap();
    assert!(!second.contains("labup sync"), "said once: {second}");
    let base = Command::new(&shared().python).args(["-c", "import gamma"]).output().unwrap();
    assert!(!base.status.success(), "gamma went into the base interpreter");
    // As it said: the venv is exact again after the next sync.
    assert_eq!(p.sync()["removed"], 2);
    assert!(!p.installed().contains_key("gamma"));
}

#[test]
fn pip_in_a_hooked_shell_installs_into_the_venv_with_uv() {
    let p = Project::new();
    p.requirements("alpha\n");
    p.sync();
    check_pip_in_the_shell(&p);
}

/// A folder holding a copy of the libz the test Python loads, under a name nothing else has.
fn fake_library_dir(p: &Project) -> PathBuf {
    let dir = p.path("fake-store/lib");
    std::fs::create_dir_all(&dir).unwrap();
    let find = "import zlib; print([l.split()[-1] for l in open('/proc/self/maps') if '/libz.so' in l][0])";
    let out = Command::new(&shared().python).args(["-c", find]).output().unwrap();
    let libz = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success() && !libz.is_empty(), "no libz: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::copy(libz, dir.join("liblabupfake.so")).unwrap();
    dir
}

#[test]
fn python_in_the_shell_gets_the_library_path_and_host_programs_do_not() {
    let mut p = Project::new();
    let libs = fake_library_dir(&p);
    p.set("LABUP_LIBRARY_PATH", &libs);
    p.requirements("delta\n");
    p.sync();
    let wrappers = p.path(".labup/shell/bin");
    for name in ["python", "python3", "delta-hello"] {
        assert!(wrappers.join(name).is_file(), "no wrapper for {name}");
    }
    let script = r#"
eval "$(labup hook bash)"
echo "python=$(command -v python)"
echo "tool=$(command -v delta-hello)"
python -c 'import ctypes, os; ctypes.CDLL("liblabupfake.so"); print("loaded=yes"); print("ld=" + os.environ["LD_LIBRARY_PATH"])'
echo "shell_ld=${LD_LIBRARY_PATH-unset}"
echo "env_ld=$(env | grep -c '^LD_LIBRARY_PATH=')"
HOST >/dev/null && echo "git=ok"
"#;
    let out = in_shell(&p, &bash(), &script.replace("HOST", host_program()));
    assert_eq!(field(&out, "python"), wrappers.join("python").display().to_string());
    assert_eq!(field(&out, "tool"), wrappers.join("delta-hello").display().to_string());
    assert_eq!(field(&out, "loaded"), "yes", "{}", out.stderr);
    assert_eq!(field(&out, "ld"), libs.display().to_string());
    assert_eq!(field(&out, "shell_ld"), "unset", "no global LD_LIBRARY_PATH");
    assert_eq!(field(&out, "env_ld"), "0", "host programs do not get it");
    assert_eq!(field(&out, "git"), "ok");
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // Without library folders there is nothing to wrap: the next sync removes the wrappers.
    p.unset("LABUP_LIBRARY_PATH");
    p.sync();
    assert!(!wrappers.exists());
    let out = in_shell(&p, &bash(), "eval \"$(labup hook bash)\"; echo \"python=$(command -v python)\"");
    assert_eq!(field(&out, "python"), p.path(".venv/bin/python").display().to_string());
}

#[test]
fn hook_hints_when_the_wrappers_do_not_fit_the_library_path() {
    let mut p = Project::new();
    p.file("labup.toml", "");
    p.sync();
    p.set("LABUP_LIBRARY_PATH", "/nix/store/other/lib");
    p.labup(&["hook", "bash"]).ok().stderr_has("run `labup sync`");
    p.sync();
    assert!(p.labup(&["hook", "bash"]).ok().stderr.is_empty());
}

const AUTOSTART: &str = r#"
[services.web]
command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
port = "auto"
ready = { http = "/" }

[services.byhand]
command = ["python", "-m", "http.server", "--bind", "127.0.0.1", "$PORT"]
port = "auto"
ready = { http = "/" }

[shell]
autostart = true
"#;

fn service_state(p: &Project, name: &str) -> (String, Option<i64>) {
    let st = p.labup(&["status", "--json"]).ok().json();
    let svc = st["services"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned();
    svc.map_or(("absent".into(), None), |s| (s["state"].as_str().unwrap().to_string(), s["pid"].as_i64()))
}

/// A shell that enters, waits for a line on stdin, then exits; its output goes to `log`.
struct OpenShell {
    child: std::process::Child,
    log: PathBuf,
}

impl OpenShell {
    fn enter(p: &Project, shell: &Path, name: &str) -> OpenShell {
        let log = p.path(&format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let script = if shell.ends_with("fish") {
            "labup hook fish | source; read line; true".to_string()
        } else {
            format!("eval \"$(labup hook {})\"; read line || true", shell.file_name().unwrap().to_string_lossy())
        };
        let child = shell_command(p, shell, &script)
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        OpenShell { child, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the background `labup up` to report.
    fn wait_ready(&self) {
        assert!(wait_until(60, || self.text().contains("labup: ready:")), "autostart did not finish:\n{}", self.text());
    }

    fn exit(mut self) -> String {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "shell failed: {}", self.text());
        self.text()
    }
}

#[test]
fn autostart_starts_on_entry_and_the_last_shell_stops_only_what_it_started() {
    let p = Project::new();
    p.file("labup.toml", AUTOSTART);
    p.labup(&["up", "byhand"]).ok();
    let (state, byhand_pid) = service_state(&p, "byhand");
    assert_eq!(state, "ready");

    let first = OpenShell::enter(&p, &bash(), "first");
    first.wait_ready();
    assert!(first.text().contains("starting the services in the background"), "{}", first.text());
    let (state, web_pid) = service_state(&p, "web");
    assert_eq!(state, "ready", "{}", first.text());
    let second = OpenShell::enter(&p, &bash(), "second");
    second.wait_ready();
    assert_eq!(service_state(&p, "web").1, web_pid, "the second entry starts nothing new");
    let shells = std::fs::read_dir(p.path(".labup/shells"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && n != "started.json")
        .count();
    assert_eq!(shells, 2, "one registry entry per open shell");

    first.exit();
    assert_eq!(service_state(&p, "web"), ("ready".to_string(), web_pid), "another shell is still open");

    let text = second.exit();
    assert!(text.contains("last shell closed: stopping web (started on entry)"), "{text}");
    assert_eq!(service_state(&p, "web").0, "stopped", "{text}");
    assert_eq!(service_state(&p, "byhand"), ("ready".to_string(), byhand_pid), "started by hand: left running");
}

#[test]
fn autostart_works_from_zsh_and_fish_and_prunes_dead_shells() {
    let p = Project::new();
    p.file("labup.toml", AUTOSTART);
    // A shell that died without its exit hook leaves an entry; it must not keep services up.
    std::fs::create_dir_all(p.path(".labup/shells")).unwrap();
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start: u64 = me[me.rfind(')').unwrap() + 2..].split_whitespace().nth(19).unwrap().parse().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let stale = serde_json::json!({ "pid": std::process::id(), "start_time": start + 1, "boot_id": boot.trim() });
    std::fs::write(p.path(&format!(".labup/shells/{}.json", std::process::id())), stale.to_string()).unwrap();
    for name in ["zsh", "fish"] {
        let Some(shell) = shell_or_skip(name) else { continue };
        let open = OpenShell::enter(&p, &shell, name);
        open.wait_ready();
        assert_eq!(service_state(&p, "web").0, "ready", "{name}: {}", open.text());
        let text = open.exit();
        assert!(text.contains("last shell closed"), "{name}: {text}");
        assert_eq!(service_state(&p, "web").0, "stopped", "{name}: {text}");
    }
}
