//! Test harness: a project in a temp folder, the labup binary run in it, and checks made
//! with the real Python of the venv.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Things every test shares: the fixture wheels, the real interpreter, uv, a cache.
pub(crate) struct Shared {
    /// Folder of fixture wheels (alpha 1.0/2.0, beta → alpha, gamma, delta with a script).
    pub wheels: PathBuf,
    /// The real interpreter (`sys.executable` of `python3`).
    pub python: PathBuf,
    /// The real uv.
    pub uv: PathBuf,
    /// uv/pip cache shared by the tests.
    pub cache: PathBuf,
    /// `tests/fixtures`.
    pub fixtures: PathBuf,
}

/// Builds the shared fixtures once per test run.
pub(crate) fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("labup-it");
        let wheels = base.join(format!("wheels-{}", std::process::id()));
        let status = Command::new("python3")
            .arg(fixtures.join("make_wheels.py"))
            .arg(&wheels)
            .status()
            .expect("python3 is needed to build the fixture wheels");
        assert!(status.success(), "make_wheels.py failed");
        let python = output("python3", &["-c", "import sys; print(sys.executable)"]);
        let uv = which("uv").expect("the tests need uv on PATH (`pip install uv`)");
        Shared { wheels, python: PathBuf::from(python), uv, cache: base.join("cache"), fixtures }
    })
}

impl Shared {
    /// `3.11` for the real interpreter.
    pub(crate) fn python_minor(&self) -> String {
        let p = self.python.display().to_string();
        output(&p, &["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    }
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The first `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// `labup.local.toml` that switches the embedded default's Jupyter off.
pub(crate) const JUPYTER_OFF: &str = "[services.jupyter]\nkind = \"jupyter\"\nenabled = false\n";

/// A project folder and the environment labup runs with in it.
pub(crate) struct Project {
    dir: tempfile::TempDir,
    /// Variables set for every labup run.
    pub env: BTreeMap<String, String>,
}

/// The result of one labup run.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// Asserts exit 0 and returns self.
    #[track_caller]
    pub(crate) fn ok(self) -> Output {
        assert_eq!(self.code, 0, "labup failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Asserts this exit code.
    #[track_caller]
    pub(crate) fn code(self, code: i32) -> Output {
        assert_eq!(self.code, code, "unexpected exit code:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    /// Asserts stderr contains `text`.
    #[track_caller]
    pub(crate) fn stderr_has(self, text: &str) -> Output {
        assert!(self.stderr.contains(text), "stderr lacks {text:?}:\n{}", self.stderr);
        self
    }
}

impl Project {
    /// An empty project using the real interpreter and uv.
    pub(crate) fn new() -> Project {
        let s = shared();
        let dir = tempfile::Builder::new().prefix("labup-it-").tempdir().expect("temp dir");
        let mut env = BTreeMap::new();
        env.insert("LABUP_PYTHON".into(), s.python.display().to_string());
        env.insert("LABUP_UV".into(), s.uv.display().to_string());
        env.insert("UV_CACHE_DIR".into(), s.cache.join("uv").display().to_string());
        env.insert("PIP_CACHE_DIR".into(), s.cache.join("pip").display().to_string());
        env.insert("NO_COLOR".into(), "1".into());
        // A test never opens a real browser; the browser tests put a recording opener on PATH.
        env.insert("LABUP_NO_BROWSER".into(), "1".into());
        let p = Project { dir, env };
        // The embedded default runs Jupyter, whose sync needs PyPI: tests that want it call
        // `with_jupyter`, the others work offline from the fixture wheels.
        p.file("labup.local.toml", JUPYTER_OFF);
        p
    }

    /// Keeps the embedded default's Jupyter on (it installs JupyterLab from PyPI).
    pub(crate) fn with_jupyter(&self) -> &Project {
        let _ = std::fs::remove_file(self.path("labup.local.toml"));
        self
    }

    /// The project folder.
    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the project.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating folders).
    pub(crate) fn file(&self, rel: &str, text: &str) -> &Project {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
        self
    }

    /// Writes `requirements.txt` that installs from the fixture wheels only.
    pub(crate) fn requirements(&self, lines: &str) -> &Project {
        let head = format!("--no-index\n--find-links {}\n", shared().wheels.display());
        self.file("requirements.txt", &(head + lines))
    }

    /// Sets a variable for later runs.
    pub(crate) fn set(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Project {
        self.env.insert(key.into(), value.as_ref().to_string_lossy().into_owned());
        self
    }

    /// Removes a variable for later runs.
    pub(crate) fn unset(&mut self, key: &str) -> &mut Project {
        self.env.remove(key);
        self
    }

    /// A labup command ready to spawn, in the project folder.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_under(&[], args)
    }

    /// `wrapper… labup args…` (e.g. `unshare --pid --fork --mount-proc`), with labup's
    /// environment, in the project folder.
    pub(crate) fn command_under(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let labup = env!("CARGO_BIN_EXE_labup");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(labup);
                c
            }
            None => Command::new(labup),
        };
        cmd.args(args).current_dir(self.root()).stdin(Stdio::null());
        // What the developer's own session has (SSH, a display) must not change what a test sees.
        let inherited_off = |k: &str| {
            k.starts_with("LABUP_")
                || k.starts_with("SSH_")
                || ["VIRTUAL_ENV", "DISPLAY", "WAYLAND_DISPLAY"].contains(&k)
        };
        for (k, _) in std::env::vars().filter(|(k, _)| inherited_off(k)) {
            cmd.env_remove(k);
        }
        cmd.envs(&self.env);
        cmd
    }

    /// Runs labup to completion.
    pub(crate) fn labup(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run labup");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `labup sync --json` that must succeed; returns the JSON.
    #[track_caller]
    pub(crate) fn sync(&self) -> serde_json::Value {
        self.labup(&["sync", "--json"]).ok().json()
    }

    /// What the venv's own Python says is installed (name → version).
    pub(crate) fn installed(&self) -> BTreeMap<String, String> {
        let script = "import importlib.metadata as m, json; \
                      print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))";
        let out = Command::new(self.path(".venv/bin/python")).args(["-c", script]).output().expect("venv python");
        assert!(out.status.success(), "venv python failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    /// Installs a fixture package into the venv behind labup's back (with uv), as a user would.
    pub(crate) fn install_by_hand(&self, package: &str) {
        let status = Command::new(&shared().uv)
            .args(["pip", "install", "--quiet", "--no-index", "--find-links"])
            .arg(&shared().wheels)
            .args([package, "--python"])
            .arg(self.path(".venv/bin/python"))
            .env("UV_CACHE_DIR", shared().cache.join("uv"))
            .status()
            .expect("uv");
        assert!(status.success(), "uv pip install {package} failed");
    }

    /// Every path under the project (relative), to check that nothing was written.
    pub(crate) fn listing(&self) -> Vec<String> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
                if p.is_dir() && !p.is_symlink() {
                    walk(&p, root, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.root(), self.root(), &mut out);
        out.sort();
        out
    }
}

impl Drop for Project {
    /// Services a test started are stopped even when the test fails.
    fn drop(&mut self) {
        if self.path(".labup/run/state.json").exists() {
            let _ = self.command(&["stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Process ids in process group `pgid`, from `ps` (independent of labup's own /proc code).
pub(crate) fn group_pids(pgid: i64) -> Vec<i64> {
    let out = Command::new("ps").args(["-e", "-o", "pid=,pgid=,stat="]).output().expect("ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (pid, group, stat) = (f.first()?.parse().ok()?, f.get(1)?.parse::<i64>().ok()?, f.get(2)?);
            (group == pgid && !stat.starts_with('Z')).then_some(pid)
        })
        .collect()
}

/// Polls `cond` every 20 ms for up to `secs` seconds.
pub(crate) fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    cond()
}

/// GET a URL on 127.0.0.1 and return the status code (a test client independent of labup's probe).
pub(crate) fn http_get(url: &str) -> Option<u16> {
    let script = format!(
        "import urllib.request, urllib.error\ntry:\n    print(urllib.request.urlopen({url:?}, timeout=5).status)\nexcept urllib.error.HTTPError as e:\n    print(e.code)"
    );
    let out = Command::new(&shared().python).args(["-c", &script]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// `{"alpha": "1.0", …}` from pairs.
pub(crate) fn pkgs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// Wraps a program in a script that appends one line to `log` per start, then runs it:
/// a test stub that counts how often labup starts Python or uv.
pub(crate) fn counting_wrapper(dir: &Path, name: &str, real: &Path, log: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let path = bin.join(name);
    let script = format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.display());
    std::fs::write(&path, script).expect("write wrapper");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Writes a local package at `rel` (pyproject.toml with the tests' own PEP 517/660 backend,
/// `tests/fixtures/local_backend.py`, and `<name>/__init__.py` = `body`): real pip and real uv
/// build it, offline.
pub(crate) fn local_package(dir: &Path, name: &str, version: &str, deps: &[&str], body: &str) {
    let deps: Vec<String> = deps.iter().map(|d| format!("{d:?}")).collect();
    std::fs::create_dir_all(dir.join(name)).expect("mkdir");
    std::fs::write(
        dir.join("pyproject.toml"),
        format!(
            "[build-system]\nrequires = []\nbuild-backend = \"labup_backend\"\nbackend-path = [\".\"]\n\n\
             [project]\nname = \"{name}\"\nversion = \"{version}\"\ndependencies = [{}]\n",
            deps.join(", ")
        ),
    )
    .expect("write pyproject");
    std::fs::copy(shared().fixtures.join("local_backend.py"), dir.join("labup_backend.py")).expect("copy backend");
    std::fs::write(dir.join(name).join("__init__.py"), body).expect("write module");
}

/// Builds the wheel of the local package in `pkg` into `out` with its backend; returns its path.
pub(crate) fn build_wheel(pkg: &Path, out: &Path) -> PathBuf {
    std::fs::create_dir_all(out).expect("mkdir");
    let script = format!("import labup_backend as b; print(b.build_wheel({:?}))", out.display().to_string());
    let out_name = Command::new(&shared().python).args(["-c", &script]).current_dir(pkg).output().expect("python");
    assert!(out_name.status.success(), "build_wheel: {}", String::from_utf8_lossy(&out_name.stderr));
    out.join(String::from_utf8_lossy(&out_name.stdout).trim())
}

/// Makes `dir` a git repository with one commit of everything in it.
pub(crate) fn git_commit_all(dir: &Path) {
    for args in [&["init", "-q"][..], &["add", "-A"], &["commit", "-q", "-m", "fixture"]] {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
}

impl Project {
    /// Runs Python code with the venv's interpreter; returns its stdout (trimmed).
    #[track_caller]
    pub(crate) fn venv_python(&self, code: &str) -> String {
        let out = Command::new(self.path(".venv/bin/python")).args(["-c", code]).output().expect("venv python");
        assert!(out.status.success(), "venv python failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}
