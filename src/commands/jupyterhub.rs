//! `labup jupyterhub-singleuser [ARGS…]`: the command a JupyterHub spawner runs for each user
//! (`c.Spawner.cmd = ["labup", "--project", "/srv/ws/{username}", "jupyterhub-singleuser"]`).
//!
//! It syncs the workspace with `jupyterhub` (and JupyterLab, the server's interface) added to
//! what the venv needs, then replaces itself with the venv's `jupyterhub-singleuser`, given the
//! spawner's arguments and the workspace environment (library path, GPU link folder). The hub's
//! variables (`JUPYTERHUB_API_TOKEN`, `JUPYTERHUB_SERVICE_URL`, …) pass through untouched:
//! the hub authenticates, proxies and culls; labup's own Jupyter token is not used.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::envvars;
use crate::error::{fail, Fail};
use crate::project::Workspace;
use crate::ui::Ui;

/// What the venv needs to serve a hub's user: the single-user server and its interface.
pub(crate) const HUB_PACKAGES: [&str; 2] = ["jupyterhub", "jupyterlab"];

/// `labup jupyterhub-singleuser`.
pub(crate) fn jupyterhub_singleuser(root: &Path, args: &[OsString], ui: &Ui) -> Result<ExitCode> {
    // Refusals come first: outside a hub or a project nothing is written or started.
    if envvars::get(envvars::JUPYTERHUB_API_TOKEN).is_none() {
        return fail(
            Fail::usage(format!(
                "`labup jupyterhub-singleuser` runs under JupyterHub, and {} is not set: nothing was started",
                envvars::JUPYTERHUB_API_TOKEN
            ))
            .hint(
                "set `c.Spawner.cmd = [\"labup\", \"--project\", \"/srv/ws/{username}\", \"jupyterhub-singleuser\"]` \
                 in jupyterhub_config.py; to run the workspace yourself, use `labup up`",
            ),
        );
    }
    crate::project::require(root)?;
    let ws = Workspace::new(with_hub_packages(Config::load(root)?));
    let config = &ws.config;
    let synced = crate::python::sync::sync(&ws, false, ui)?;
    let gpu = super::wiring(&ws, ui)?;
    super::refresh_wrappers(&ws, Ok(&gpu), ui);
    let program = config.python.venv.join("bin").join("jupyterhub-singleuser");
    let mut cmd = std::process::Command::new(&program);
    cmd.args(server_args(args, nix::unistd::geteuid().is_root())).current_dir(&config.root);
    super::child_env(&ws, &gpu).apply(&mut cmd);
    ui.info(format!(
        "labup: {} synced in {} ({}); starting jupyterhub-singleuser",
        crate::config::display_path(&config.python.venv),
        crate::ui::format_duration(std::time::Duration::from_millis(synced.duration_ms as u64)),
        synced.action
    ));
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("failed to run {}", program.display())))
}

/// The config with [`HUB_PACKAGES`] in `[python] packages` (each once: a project that lists
/// them already keeps its own pins). The packages are sync inputs, in the lock and the
/// fingerprint, as JupyterLab is for a `jupyter` service.
pub(crate) fn with_hub_packages(mut config: Config) -> Config {
    for pkg in HUB_PACKAGES {
        if !config.python.packages.iter().any(|p| requirement_name(p) == pkg) {
            config.python.packages.push(pkg.to_string());
        }
    }
    config
}

/// The spawner's arguments, with `--allow-root` added when the server runs as root (as labup's
/// own Jupyter does): Jupyter refuses to start as root without it, and a hub that spawns as
/// root (LocalProcessSpawner for `root`, a container image running as root) has decided that.
pub(crate) fn server_args(args: &[OsString], as_root: bool) -> Vec<OsString> {
    let mut out = args.to_vec();
    if as_root && !args.iter().any(|a| a == "--allow-root" || a.to_string_lossy().starts_with("--ServerApp.allow_root"))
    {
        out.push("--allow-root".into());
    }
    out
}

/// `JupyterHub>=5` → `jupyterhub`.
fn requirement_name(req: &str) -> String {
    let end = req.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(req.len());
    req[..end].to_ascii_lowercase().replace(['_', '.'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        crate::config::for_test(toml).1
    }

    #[test]
    fn hub_packages_are_added_once() {
        let c = with_hub_packages(config(""));
        assert_eq!(c.python.packages, ["jupyterhub", "jupyterlab"]);
        let c = with_hub_packages(config("[python]\npackages = [\"JupyterHub==5.2.1\", \"numpy\"]\n"));
        assert_eq!(c.python.packages, ["JupyterHub==5.2.1", "numpy", "jupyterlab"]);
    }

    #[test]
    fn hub_packages_change_the_sync_inputs() {
        let base = config("");
        let hub = with_hub_packages(base.clone());
        let a = crate::python::sources::Sources::detect(&base).unwrap();
        let b = crate::python::sources::Sources::detect(&hub).unwrap();
        assert!(!a.packages.contains(&"jupyterhub".to_string()));
        assert!(b.packages.contains(&"jupyterhub".to_string()), "{:?}", b.packages);
    }

    #[test]
    fn allow_root_only_as_root_and_once() {
        let args: Vec<OsString> = vec!["--debug".into()];
        assert_eq!(server_args(&args, false), args);
        assert_eq!(server_args(&args, true), [OsString::from("--debug"), "--allow-root".into()]);
        let given: Vec<OsString> = vec!["--allow-root".into()];
        assert_eq!(server_args(&given, true), given);
    }
}
