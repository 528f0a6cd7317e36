//! The installers: uv (preferred) and pip (fallback). Command lines are built as values here
//! and run by [`run`], which turns a failure into an error with the tool's own words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::interpreter::{venv_python, Interpreter};
use crate::config::Installer;
use crate::envvars;
use crate::error::{Error, Fail, InstallerCause, InstallerFailure};
use crate::gpu::torch::{Route, PYTORCH_INDEX};
use crate::ui::Ui;

/// Which tool installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Engine {
    /// uv at this path.
    Uv(PathBuf),
    /// pip, run by the base interpreter against the venv.
    Pip,
}

/// A command line as a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// Program.
    pub(crate) program: PathBuf,
    /// Arguments.
    pub(crate) args: Vec<String>,
    /// Extra environment.
    pub(crate) env: BTreeMap<String, String>,
    /// Working directory.
    pub(crate) cwd: Option<PathBuf>,
}

impl Cmd {
    fn new(program: impl Into<PathBuf>) -> Cmd {
        Cmd { program: program.into(), args: Vec::new(), env: BTreeMap::new(), cwd: None }
    }

    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, a: I) -> Cmd {
        for x in a {
            self = self.arg(x);
        }
        self
    }

    /// The command as a shell-like line, for `-v` and errors.
    pub(crate) fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The command as a duct expression (environment and folder applied).
    pub(crate) fn expression(&self) -> duct::Expression {
        let mut e = duct::cmd(&self.program, &self.args);
        for (k, v) in &self.env {
            e = e.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            e = e.dir(dir);
        }
        e
    }
}

impl Engine {
    /// Picks the installer: `LABUP_UV` or `uv` on PATH, else pip, as `[python] installer` allows.
    pub(crate) fn detect(choice: Installer) -> Result<Engine, Fail> {
        let uv = || {
            envvars::get(envvars::LABUP_UV)
                .map(PathBuf::from)
                .filter(|p| p.is_file())
                .or_else(|| super::interpreter::search_path("uv"))
        };
        match choice {
            Installer::Pip => Ok(Engine::Pip),
            Installer::Auto => Ok(uv().map_or(Engine::Pip, Engine::Uv)),
            Installer::Uv => uv().map(Engine::Uv).ok_or_else(|| {
                Fail::new("`[python] installer = \"uv\"` but uv was not found (LABUP_UV or PATH)")
                    .hint("install uv (`pip install uv`), set `LABUP_UV`, or use `installer = \"auto\"`")
            }),
        }
    }

    /// `uv` or `pip`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Engine::Uv(_) => "uv",
            Engine::Pip => "pip",
        }
    }

    fn uv(path: &Path) -> Cmd {
        let mut c = Cmd::new(path);
        c.env.insert("UV_PYTHON_DOWNLOADS".into(), "never".into());
        c
    }

    /// Creates an empty venv (no pip, no seed packages) at `dest`.
    pub(crate) fn create_venv(&self, interp: &Interpreter, dest: &Path) -> Cmd {
        match self {
            Engine::Uv(uv) => {
                Engine::uv(uv).args(["venv", "--quiet", "--no-project", "--python"]).arg(&interp.path).arg(dest)
            }
            Engine::Pip => Cmd::new(&interp.path).args(["-m", "venv", "--without-pip"]).arg(dest),
        }
    }

    /// Resolves `inputs` into pins with hashes at `out` (uv: universal, keeping pins already in
    /// `out` unless `upgrade`). pip writes a JSON report that [`pip_report_to_lock`] converts.
    pub(crate) fn compile(
        &self,
        interp: &Interpreter,
        python_minor: &str,
        inputs: &Path,
        out: &Path,
        upgrade: bool,
        torch: Option<&Route>,
    ) -> Cmd {
        let c = match self {
            Engine::Uv(uv) => {
                let c = Engine::uv(uv)
                    .args([
                        "pip",
                        "compile",
                        "--quiet",
                        "--universal",
                        "--generate-hashes",
                        "--no-header",
                        "--no-annotate",
                    ])
                    .args(["--python-version", python_minor, "--python"])
                    .arg(&interp.path)
                    .arg("--output-file")
                    .arg(out)
                    .arg(inputs);
                if upgrade {
                    c.arg("--upgrade")
                } else {
                    c
                }
            }
            Engine::Pip => Cmd::new(&interp.path)
                .args(["-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"])
                .args(["--disable-pip-version-check", "--no-input", "--report"])
                .arg(out)
                .arg("-r")
                .arg(inputs),
        };
        c.args(self.torch_args(torch))
    }

    /// Where torch comes from: uv's `--torch-backend` (which sends only the PyTorch packages to
    /// the PyTorch index), pip's index pair (PyTorch's first, PyPI for everything else); a
    /// `[python] torch-index` mirror is uv's `--index` (searched before PyPI) or pip's pair. The
    /// same flags go to resolution and to the sync, so the locked `+cuXYZ` wheels and their
    /// hashes are found again. PyPI's own torch and the user's own index settings: no flags.
    pub(crate) fn torch_args(&self, torch: Option<&Route>) -> Vec<String> {
        let pip_pair =
            |url: String| vec!["--index-url".into(), url, "--extra-index-url".into(), "https://pypi.org/simple".into()];
        match (self, torch) {
            (_, None | Some(Route::Pypi | Route::Yours(_))) => Vec::new(),
            (Engine::Uv(_), Some(Route::Pytorch(b))) => vec!["--torch-backend".into(), b.to_string()],
            (Engine::Uv(_), Some(Route::Index(url))) => vec!["--index".into(), url.clone()],
            (Engine::Pip, Some(Route::Pytorch(b))) => pip_pair(format!("{PYTORCH_INDEX}/{b}")),
            (Engine::Pip, Some(Route::Index(url))) => pip_pair(url.clone()),
        }
    }

    /// Exports a `uv.lock` as exact pins (the project itself left out).
    pub(crate) fn export_uv_lock(&self, uv_lock: &Path, out: &Path) -> Result<Cmd, Fail> {
        let Engine::Uv(uv) = self else {
            return Err(Fail::new("this project has a uv.lock, which only uv can read")
                .hint("install uv (`pip install uv`) or set `LABUP_UV`"));
        };
        let mut c = Engine::uv(uv)
            .args(["export", "--quiet", "--frozen", "--format", "requirements-txt", "--no-header", "--no-hashes"])
            .args(["--no-emit-project", "--no-emit-workspace", "--output-file"])
            .arg(out);
        c.cwd = uv_lock.parent().map(Path::to_path_buf);
        Ok(c)
    }

    /// Makes the venv exactly the lock (uv); pip installs here and removes extras separately.
    pub(crate) fn sync(&self, interp: &Interpreter, venv: &Path, lock: &Path, torch: Option<&Route>) -> Cmd {
        let c = match self {
            Engine::Uv(uv) => Engine::uv(uv)
                .args(["pip", "sync", "--quiet", "--allow-empty-requirements", "--python"])
                .arg(venv_python(venv))
                .arg(lock),
            Engine::Pip => Cmd::new(&interp.path)
                .args(["-m", "pip", "--python"])
                .arg(venv_python(venv))
                .args(["install", "--no-deps", "--quiet", "--disable-pip-version-check", "--no-input", "-r"])
                .arg(lock),
        };
        c.args(self.torch_args(torch))
    }

    /// uv only: what `sync` would install and remove, printed on stderr (`+ name==v`, `- name==v`).
    pub(crate) fn sync_dry_run(&self, venv: &Path, lock: &Path, torch: Option<&Route>) -> Option<Cmd> {
        let Engine::Uv(uv) = self else { return None };
        let c = Engine::uv(uv)
            .args(["pip", "sync", "--dry-run", "--allow-empty-requirements", "--python"])
            .arg(venv_python(venv))
            .arg(lock);
        Some(c.args(self.torch_args(torch)))
    }

    /// The project itself, editable and without its dependencies (the lock has them), as
    /// `uv sync` installs a package project; uv takes it as a second requirements file of the
    /// exact sync ([`Engine::sync`] plus this file), so "exact" never removes it.
    pub(crate) fn editable_requirement(dir: &Path) -> String {
        format!("-e {}\n", dir.display())
    }

    /// pip: installs the project editable, without dependencies (after the lock's packages).
    pub(crate) fn pip_editable(interp: &Interpreter, venv: &Path, dir: &Path) -> Cmd {
        Cmd::new(&interp.path)
            .args(["-m", "pip", "--python"])
            .arg(venv_python(venv))
            .args(["install", "--no-deps", "--quiet", "--disable-pip-version-check", "--no-input", "-e"])
            .arg(dir)
    }

    /// pip: removes distributions that the lock does not name.
    pub(crate) fn pip_uninstall(interp: &Interpreter, venv: &Path, names: &[String]) -> Cmd {
        Cmd::new(&interp.path)
            .args(["-m", "pip", "--python"])
            .arg(venv_python(venv))
            .args(["uninstall", "--yes", "--quiet", "--disable-pip-version-check"])
            .args(names)
    }
}

/// Runs a command, capturing its output; `-v` echoes the line and the output.
pub(crate) fn run(ui: &Ui, cmd: &Cmd, what: &str) -> Result<String> {
    ui.debug(format!("$ {}", cmd.display()));
    let out = cmd
        .expression()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("failed to start `{}`", cmd.program.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !stderr.trim().is_empty() {
        ui.debug(stderr.trim_end());
    }
    if !out.status.success() {
        let code = out.status.code().map_or("a signal".to_string(), |c| format!("exit code {c}"));
        let tail: Vec<&str> = stderr.trim().lines().rev().take(25).collect::<Vec<_>>().into_iter().rev().collect();
        let failure = InstallerFailure {
            what: what.to_string(),
            status: code,
            output: tail.join("\n"),
            cause: classify(&stderr),
            during: None,
        };
        return Err(anyhow::Error::new(Error::Installer(failure)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why an installer failed, from its output: no network or no solution. The one place that
/// reads the installer's words; everything after matches on the [`InstallerCause`].
pub(crate) fn classify(message: &str) -> InstallerCause {
    let m = message.to_lowercase();
    if [
        "failed to fetch",
        "dns error",
        "connection refused",
        "could not connect",
        "network is unreachable",
        "error sending request",
        "connecterror",
        "newconnectionerror",
        "temporary failure in name resolution",
        "max retries exceeded",
    ]
    .iter()
    .any(|s| m.contains(s))
    {
        InstallerCause::Network
    } else if [
        "not found in the package registry",
        "no solution found",
        "no matching distribution",
        "could not find a version",
        "were not found in the provided package locations",
        "not found in the provided package locations",
    ]
    .iter()
    .any(|s| m.contains(s))
    {
        InstallerCause::Resolution
    } else {
        InstallerCause::Other
    }
}

/// pip's resolution as lock text: the body, and what pip could not hash (name, why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PipLock {
    /// Lock lines, sorted by name.
    pub(crate) body: String,
    /// Entries without a `--hash`, with the reason, in body order.
    pub(crate) unhashed: Vec<(String, &'static str)>,
}

/// Converts pip's `--report` JSON into lock lines. Index packages become `name==version`; a
/// requirement pip took from a direct source keeps that source, so the install never falls back
/// to an index that may serve someone else's package of the same name: an editable folder
/// `-e name @ file:///…`, a folder or archive `name @ <url>`, a VCS checkout
/// `name @ git+<url>@<commit>`. Every archive keeps pip's sha256 (`--hash`); folders and
/// checkouts have no single file to hash, and a comment above them in the lock says so.
pub(crate) fn pip_report_to_lock(report: &str) -> Result<PipLock> {
    let json: serde_json::Value = serde_json::from_str(report).context("pip wrote an unreadable --report")?;
    let mut entries = Vec::new();
    for item in json["install"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().context("pip report entry without a name")?;
        let version = item["metadata"]["version"].as_str().context("pip report entry without a version")?;
        let name = super::venv::normalize(name);
        let info = &item["download_info"];
        let url = info["url"].as_str().unwrap_or_default();
        let sha = info["archive_info"]["hashes"]["sha256"].as_str().map(str::to_string).or_else(|| {
            info["archive_info"]["hash"].as_str().and_then(|h| h.strip_prefix("sha256=")).map(str::to_string)
        });
        let subdir = info["subdirectory"].as_str().map(|s| format!("#subdirectory={s}")).unwrap_or_default();
        let direct = item["is_direct"].as_bool().unwrap_or(false);
        let (line, why): (String, Option<&'static str>) = if !direct {
            (format!("{name}=={version}"), sha.is_none().then_some("pip gave no digest for it"))
        } else if info.get("vcs_info").is_some_and(|v| v.is_object()) {
            let vcs = info["vcs_info"]["vcs"].as_str().unwrap_or("git");
            let at = info["vcs_info"]["commit_id"].as_str().map(|c| format!("@{c}")).unwrap_or_default();
            let why = match vcs {
                "git" => "a git checkout: pip has no single file to hash; the commit is pinned",
                _ => "a VCS checkout: pip has no single file to hash; the revision is pinned",
            };
            (format!("{name} @ {vcs}+{url}{at}{subdir}"), Some(why))
        } else if info.get("dir_info").is_some_and(|v| v.is_object()) {
            if info["dir_info"]["editable"].as_bool().unwrap_or(false) {
                (format!("-e {name} @ {url}{subdir}"), Some("an editable local folder: pip has no single file to hash"))
            } else {
                (format!("{name} @ {url}{subdir}"), Some("a local folder: pip has no single file to hash"))
            }
        } else {
            (format!("{name} @ {url}{subdir}"), sha.is_none().then_some("pip gave no digest for this archive"))
        };
        entries.push((name, line, sha.filter(|_| why.is_none()), why));
    }
    entries.sort();
    let mut body = String::new();
    let mut unhashed = Vec::new();
    for (name, line, sha, why) in entries {
        match (sha, why) {
            (Some(sha), _) => body.push_str(&format!("{line} \\\n    --hash=sha256:{sha}\n")),
            (None, why) => {
                let why = why.unwrap_or("pip gave no digest for it");
                body.push_str(&format!("# not hashed: {name} ({why})\n{line}\n"));
                unhashed.push((name, why));
            }
        }
    }
    Ok(PipLock { body, unhashed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interp() -> Interpreter {
        Interpreter { path: "/py/bin/python3".into(), resolved: "/py/bin/python3.11".into(), stamp: (0, 0) }
    }

    #[test]
    fn uv_never_downloads_pythons_and_targets_the_venv() {
        let e = Engine::Uv("/bin/uv".into());
        let c = e.sync(&interp(), Path::new("/p/.venv"), Path::new("/p/requirements.lock"), None);
        assert_eq!(c.env.get("UV_PYTHON_DOWNLOADS").map(String::as_str), Some("never"));
        assert_eq!(
            c.display(),
            "/bin/uv pip sync --quiet --allow-empty-requirements --python /p/.venv/bin/python /p/requirements.lock"
        );
        let v = e.create_venv(&interp(), Path::new("/p/.x"));
        assert_eq!(v.display(), "/bin/uv venv --quiet --no-project --python /py/bin/python3 /p/.x");
    }

    #[test]
    fn uv_compile_is_universal_with_hashes_and_upgrade_on_request() {
        let e = Engine::Uv("/bin/uv".into());
        let c = e.compile(&interp(), "3.11", Path::new("in.txt"), Path::new("out.txt"), false, None);
        for flag in ["--universal", "--generate-hashes", "--python-version", "3.11"] {
            assert!(c.args.iter().any(|a| a == flag), "{flag} in {}", c.display());
        }
        assert!(!c.args.iter().any(|a| a == "--upgrade"));
        let up = e.compile(&interp(), "3.11", Path::new("in.txt"), Path::new("out.txt"), true, None);
        assert!(up.args.iter().any(|a| a == "--upgrade"));
    }

    #[test]
    fn pip_venv_has_no_pip_and_pip_runs_from_outside() {
        let c = Engine::Pip.create_venv(&interp(), Path::new("/p/.x"));
        assert_eq!(c.display(), "/py/bin/python3 -m venv --without-pip /p/.x");
        let s = Engine::Pip.sync(&interp(), Path::new("/p/.venv"), Path::new("/p/l"), None);
        assert!(s.display().starts_with("/py/bin/python3 -m pip --python /p/.venv/bin/python install --no-deps"));
    }

    #[test]
    fn torch_backend_goes_to_resolution_and_sync() {
        let uv = Engine::Uv("/bin/uv".into());
        let r = |b: &str| Route::Pytorch(crate::gpu::torch::Backend::parse(b).unwrap());
        let c = uv.compile(&interp(), "3.11", Path::new("in.txt"), Path::new("out.txt"), false, Some(&r("cu124")));
        assert!(c.display().ends_with(" in.txt --torch-backend cu124"), "{}", c.display());
        let s = uv.sync(&interp(), Path::new("/p/.venv"), Path::new("/p/l"), Some(&r("cpu")));
        assert!(s.display().ends_with(" /p/l --torch-backend cpu"), "{}", s.display());
        assert!(uv.torch_args(Some(&Route::Pypi)).is_empty());
        assert!(Engine::Pip.torch_args(Some(&Route::Yours("x".into()))).is_empty());
        assert_eq!(uv.torch_args(Some(&Route::Index("https://m/whl/cpu".into()))), ["--index", "https://m/whl/cpu"]);
        assert_eq!(
            Engine::Pip.torch_args(Some(&Route::Index("https://m/whl/cpu".into())))[..2],
            ["--index-url", "https://m/whl/cpu"]
        );
        let pip = Engine::Pip.sync(&interp(), Path::new("/p/.venv"), Path::new("/p/l"), Some(&r("cu126")));
        assert!(
            pip.display().ends_with(
                " -r /p/l --index-url https://download.pytorch.org/whl/cu126 --extra-index-url https://pypi.org/simple"
            ),
            "{}",
            pip.display()
        );
        let pc = Engine::Pip.compile(&interp(), "3.11", Path::new("in"), Path::new("o"), false, Some(&r("cpu")));
        assert!(pc.args.contains(&"https://download.pytorch.org/whl/cpu".to_string()));
    }

    #[test]
    fn uv_lock_needs_uv() {
        let e = Engine::Pip.export_uv_lock(Path::new("/p/uv.lock"), Path::new("/t/x")).unwrap_err();
        assert!(e.message.contains("uv.lock"));
    }

    #[test]
    fn a_failed_run_is_a_typed_installer_error() {
        let cmd =
            Cmd::new("/bin/sh").args(["-c", "echo 'ERROR: No matching distribution found for nopkg' >&2; exit 3"]);
        let err = run(&Ui::new(true, false), &cmd, "resolving the requirements").unwrap_err();
        let Some(Error::Installer(f)) = err.downcast_ref::<Error>() else { panic!("{err:#}") };
        assert_eq!((f.cause, f.status.as_str()), (InstallerCause::Resolution, "exit code 3"));
        assert_eq!(f.output, "ERROR: No matching distribution found for nopkg");
        assert_eq!(f.during, None);
        assert!(run(&Ui::new(true, false), &Cmd::new("/bin/true"), "x").is_ok());
    }

    #[test]
    fn classifies_failures() {
        assert_eq!(classify("Because nopkg was not found in the package registry"), InstallerCause::Resolution);
        assert_eq!(classify("ERROR: No matching distribution found for nopkg"), InstallerCause::Resolution);
        assert_eq!(classify("error: Failed to fetch: `https://pypi.org/simple/x/`"), InstallerCause::Network);
        assert_eq!(classify("disk full"), InstallerCause::Other);
    }

    #[test]
    fn pip_report_keeps_direct_sources_and_hashes_archives() {
        let report = r#"{"install": [
            {"metadata": {"name": "Beta", "version": "1.0"}, "download_info": {"url": "https://x/beta.whl", "archive_info": {"hashes": {"sha256": "bb"}}}},
            {"metadata": {"name": "mypkg", "version": "1.0.0"}, "is_direct": true, "download_info": {"url": "file:///p/mypkg", "dir_info": {"editable": true}}},
            {"metadata": {"name": "tool", "version": "2"}, "is_direct": true, "download_info": {"url": "file:///p/tool", "dir_info": {}}},
            {"metadata": {"name": "vcs", "version": "1"}, "is_direct": true, "download_info": {"url": "https://git.example/r", "vcs_info": {"vcs": "git", "commit_id": "abc"}, "subdirectory": "py"}},
            {"metadata": {"name": "wheel", "version": "1"}, "is_direct": true, "download_info": {"url": "file:///d/wheel-1-py3-none-any.whl", "archive_info": {"hash": "sha256=cc"}}}
        ]}"#;
        let lock = pip_report_to_lock(report).unwrap();
        assert_eq!(
            lock.body,
            "beta==1.0 \\\n    --hash=sha256:bb\n\
             # not hashed: mypkg (an editable local folder: pip has no single file to hash)\n-e mypkg @ file:///p/mypkg\n\
             # not hashed: tool (a local folder: pip has no single file to hash)\ntool @ file:///p/tool\n\
             # not hashed: vcs (a git checkout: pip has no single file to hash; the commit is pinned)\n\
             vcs @ git+https://git.example/r@abc#subdirectory=py\n\
             wheel @ file:///d/wheel-1-py3-none-any.whl \\\n    --hash=sha256:cc\n"
        );
        let names: Vec<&str> = lock.unhashed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["mypkg", "tool", "vcs"]);
    }
}
