//! The project folder, the workspace value every command builds once, and the layout of
//! labup's state folder in it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::envvars;
use crate::error::Fail;

/// The project folder: the nearest folder upwards from `start` with a `labup.toml`, else `start`.
pub(crate) fn find_root(start: &Path) -> PathBuf {
    start.ancestors().find(|d| d.join("labup.toml").is_file()).unwrap_or(start).to_path_buf()
}

/// What makes a folder a project (besides a `labup.toml` in it or a parent), the one rule every
/// command and the hook keep: a file or folder of these names, any `requirements*.txt`, any
/// `*.ipynb`.
pub(crate) const MARKERS: [&str; 5] = ["labup.toml", "pyproject.toml", "server.py", ".venv", "flake.nix"];

/// Whether `root` (as [`find_root`] gave it) is a project: it has a `labup.toml` or one of the
/// [`MARKERS`], a `requirements*.txt` or a notebook, and it is neither `/` nor the home folder
/// itself (where a stray `requirements.txt` must not turn `~` into a venv).
pub(crate) fn is_project(root: &Path) -> bool {
    if root.parent().is_none() || home().is_some_and(|h| same_dir(&h, root)) {
        return false;
    }
    if MARKERS.iter().any(|m| root.join(m).exists()) {
        return true;
    }
    fs::read_dir(root).into_iter().flatten().flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        (name.starts_with("requirements") && name.ends_with(".txt")) || name.ends_with(".ipynb")
    })
}

/// Refuses (exit 2, nothing written) a command that would build a workspace in a folder that is
/// not a project.
pub(crate) fn require(root: &Path) -> Result<(), Fail> {
    if is_project(root) {
        return Ok(());
    }
    let what = if root.parent().is_none() {
        "the root folder `/` is never a project".to_string()
    } else if home().is_some_and(|h| same_dir(&h, root)) {
        format!("your home folder {} is never a project", root.display())
    } else {
        format!(
            "{} is not a project: it has no labup.toml, requirements*.txt, pyproject.toml, server.py, \
             notebook (*.ipynb), .venv or flake.nix",
            root.display()
        )
    };
    Err(Fail::usage(format!("{what}: nothing written"))
        .hint("make a folder a project with `labup init` (or add a requirements.txt), or pass `--project DIR`"))
}

/// `HOME`, when set.
fn home() -> Option<PathBuf> {
    envvars::get(envvars::HOME).map(PathBuf::from)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// One command's workspace: the project folder, its loaded configuration and the layout of its
/// state folder. Built once per command (in `commands`) and passed down; nothing below rebuilds it.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// `labup.toml` (+ `labup.local.toml`), or the embedded default.
    pub(crate) config: Config,
    /// Every path under `.labup/`.
    pub(crate) layout: Layout,
}

impl Workspace {
    /// Loads the configuration of the project at `root`.
    pub(crate) fn load(root: &Path) -> Result<Workspace> {
        Ok(Workspace::new(Config::load(root)?))
    }

    /// The project folder (the configuration's).
    pub(crate) fn root(&self) -> &Path {
        &self.config.root
    }

    /// The workspace of an already loaded configuration.
    pub(crate) fn new(config: Config) -> Workspace {
        Workspace { layout: Layout::of(&config.root), config }
    }
}

/// A service's log file in a log folder (the [`Layout::logs`] of a workspace, or the one a
/// supervisor was given): `<service>.log`.
pub(crate) fn log_file(logs: &Path, service: &str) -> PathBuf {
    logs.join(format!("{service}.log"))
}

/// The state folder (`LABUP_STATE_DIR`, else `<root>/.labup`) and every path in it: the one place
/// that joins a `.labup` path. Nothing is created until a `create_*`/`ensure` method is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    state: PathBuf,
}

impl Layout {
    /// The layout of the project at `root` (`LABUP_STATE_DIR` is relative to it).
    pub(crate) fn of(root: &Path) -> Layout {
        let state = match envvars::get(envvars::LABUP_STATE_DIR) {
            Some(dir) => root.join(dir),
            None => root.join(".labup"),
        };
        Layout { state }
    }

    /// The state folder itself.
    pub(crate) fn state(&self) -> &Path {
        &self.state
    }

    /// `run/`: the supervisor's state, socket and lock.
    pub(crate) fn run_dir(&self) -> PathBuf {
        self.state.join("run")
    }

    /// `run/state.json`.
    pub(crate) fn state_file(&self) -> PathBuf {
        self.run_dir().join("state.json")
    }

    /// `run/control.sock`.
    pub(crate) fn socket(&self) -> PathBuf {
        self.run_dir().join("control.sock")
    }

    /// `run/supervisor.lock`: held by the one supervisor of the project.
    pub(crate) fn supervisor_lock(&self) -> PathBuf {
        self.run_dir().join("supervisor.lock")
    }

    /// `run/client.lock`: held by a client while it starts a supervisor and sends it a request.
    pub(crate) fn client_lock(&self) -> PathBuf {
        self.run_dir().join("client.lock")
    }

    /// `run/supervisor.log`: the detached supervisor's own output.
    pub(crate) fn supervisor_log(&self) -> PathBuf {
        self.run_dir().join("supervisor.log")
    }

    /// `logs/`.
    pub(crate) fn logs(&self) -> PathBuf {
        self.state.join("logs")
    }

    /// `logs/autostart.log`: what the shell hook's background `up` printed.
    pub(crate) fn autostart_log(&self) -> PathBuf {
        self.logs().join("autostart.log")
    }

    /// `logs/slurm-%j.out`: a Slurm job's output (`sbatch --output`, `%j` the job id).
    pub(crate) fn slurm_output(&self) -> PathBuf {
        self.logs().join("slurm-%j.out")
    }

    /// `jupyter/`.
    pub(crate) fn jupyter(&self) -> PathBuf {
        self.state.join("jupyter")
    }

    /// `jupyter/token`.
    pub(crate) fn jupyter_token(&self) -> PathBuf {
        self.jupyter().join("token")
    }

    /// `jupyter/runtime`: `jpserver-<pid>.json` and kernel connection files.
    pub(crate) fn jupyter_runtime(&self) -> PathBuf {
        self.jupyter().join("runtime")
    }

    /// `jupyter/config`: the only Jupyter configuration folder labup's Jupyter reads.
    pub(crate) fn jupyter_config(&self) -> PathBuf {
        self.jupyter().join("config")
    }

    /// `jupyter/config/jupyter_server_config.json`: what labup sets for its Jupyter.
    pub(crate) fn jupyter_server_config(&self) -> PathBuf {
        self.jupyter_config().join("jupyter_server_config.json")
    }

    /// `jupyter/ignored-config`: the user configuration already named once.
    pub(crate) fn jupyter_ignored_notice(&self) -> PathBuf {
        self.jupyter().join("ignored-config")
    }

    /// `driver/`: links to the host's NVIDIA user-space libraries, one folder per version.
    pub(crate) fn drivers(&self) -> PathBuf {
        self.state.join("driver")
    }

    /// `driver/<version>`.
    pub(crate) fn driver(&self, version: &str) -> PathBuf {
        self.drivers().join(version)
    }

    /// `gpu/nvml.json`: the cached NVML probe.
    pub(crate) fn nvml_cache(&self) -> PathBuf {
        self.state.join("gpu").join("nvml.json")
    }

    /// `shell/bin`: the wrappers the hooked shell puts on PATH.
    pub(crate) fn shell_bin(&self) -> PathBuf {
        self.state.join("shell").join("bin")
    }

    /// `shell/pip`: the hooked shell's `pip`, after the venv's `bin`.
    pub(crate) fn shell_pip(&self) -> PathBuf {
        self.state.join("shell").join("pip")
    }

    /// `shells/`: the registry of hooked shells.
    pub(crate) fn shells(&self) -> PathBuf {
        self.state.join("shells")
    }

    /// `shells/lock`: taken while the registry changes.
    pub(crate) fn shells_lock(&self) -> PathBuf {
        self.shells().join("lock")
    }

    /// `tmp/`: the sync's scratch files.
    pub(crate) fn tmp(&self) -> PathBuf {
        self.state.join("tmp")
    }

    /// `sync.lock`: one sync at a time.
    pub(crate) fn sync_lock(&self) -> PathBuf {
        self.state.join("sync.lock")
    }

    /// Creates `path` (one of this layout's folders) and the state folder above it: 0700, with a
    /// `.gitignore` of `*`. Returns `path`.
    pub(crate) fn ensure(&self, path: PathBuf) -> Result<PathBuf> {
        debug_assert!(path.starts_with(&self.state), "{} is not under {}", path.display(), self.state.display());
        if !self.state.is_dir() {
            fs::create_dir_all(&self.state).with_context(|| format!("failed to create {}", self.state.display()))?;
            fs::set_permissions(&self.state, fs::Permissions::from_mode(0o700))?;
        }
        let ignore = self.state.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "*\n").with_context(|| format!("failed to write {}", ignore.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("failed to create {}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_nearest_labup_toml_or_start() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_root(&sub), sub);
        fs::write(dir.path().join("a/labup.toml"), "").unwrap();
        assert_eq!(find_root(&sub), dir.path().join("a"));
    }

    #[test]
    fn a_project_has_a_marker_and_is_never_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_project(dir.path()), "an empty folder");
        fs::write(dir.path().join("notes.txt"), "").unwrap();
        assert!(!is_project(dir.path()));
        fs::write(dir.path().join("requirements-dev.txt"), "").unwrap();
        assert!(is_project(dir.path()));
        let nb = tempfile::tempdir().unwrap();
        fs::write(nb.path().join("a.ipynb"), "{}").unwrap();
        assert!(is_project(nb.path()));
        let v = tempfile::tempdir().unwrap();
        fs::create_dir(v.path().join(".venv")).unwrap();
        assert!(is_project(v.path()));
        assert!(!is_project(Path::new("/")));
        assert_eq!(require(Path::new("/")).unwrap_err().exit, crate::error::Exit::Usage);
    }

    #[test]
    fn every_path_is_under_the_state_folder() {
        let l = Layout::of(Path::new("/p"));
        assert_eq!(l.state(), Path::new("/p/.labup"));
        let paths = [
            l.run_dir(),
            l.state_file(),
            l.socket(),
            l.client_lock(),
            l.supervisor_lock(),
            l.supervisor_log(),
            log_file(&l.logs(), "app"),
            l.autostart_log(),
            l.slurm_output(),
            l.jupyter_token(),
            l.jupyter_runtime(),
            l.jupyter_config(),
            l.jupyter_server_config(),
            l.jupyter_ignored_notice(),
            l.driver("550.1"),
            l.nvml_cache(),
            l.shell_bin(),
            l.shell_pip(),
            l.shells_lock(),
            l.tmp(),
            l.sync_lock(),
        ];
        for p in &paths {
            assert!(p.starts_with("/p/.labup/"), "{}", p.display());
        }
        let unique: std::collections::BTreeSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len(), "no two of them are the same path");
        assert_eq!(log_file(&l.logs(), "app"), Path::new("/p/.labup/logs/app.log"));
        assert_eq!(l.socket(), Path::new("/p/.labup/run/control.sock"));
    }

    #[test]
    fn state_dir_is_private_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::of(dir.path());
        let tmp = layout.ensure(layout.tmp()).unwrap();
        assert!(tmp.is_dir());
        let state = layout.state();
        assert_eq!(fs::metadata(state).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(state.join(".gitignore")).unwrap(), "*\n");
    }
}
