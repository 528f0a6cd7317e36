//! The one registry of environment variables labup reads; the README documents each.

/// Interpreter to build the venv from (set by the Nix wrapper).
pub(crate) const LABUP_PYTHON: &str = "LABUP_PYTHON";
/// uv binary (set by the Nix wrapper).
pub(crate) const LABUP_UV: &str = "LABUP_UV";
/// ollama binary (set by the Nix wrapper).
pub(crate) const LABUP_OLLAMA: &str = "LABUP_OLLAMA";
/// Native libraries PyPI wheels need under Nix, `:`-separated store paths.
pub(crate) const LABUP_LIBRARY_PATH: &str = "LABUP_LIBRARY_PATH";
/// Extra driver library directories.
pub(crate) const LABUP_DRIVER_DIRS: &str = "LABUP_DRIVER_DIRS";
/// Overrides the detected NVIDIA driver version.
pub(crate) const LABUP_CUDA_DRIVER_VERSION: &str = "LABUP_CUDA_DRIVER_VERSION";
/// Prefix for every host path GPU detection reads (tests).
pub(crate) const LABUP_FS_ROOT: &str = "LABUP_FS_ROOT";
/// State folder instead of `.labup`.
pub(crate) const LABUP_STATE_DIR: &str = "LABUP_STATE_DIR";
/// The Jupyter token to use instead of the one in `.labup/jupyter/token` (a Kubernetes Secret).
pub(crate) const LABUP_JUPYTER_TOKEN: &str = "LABUP_JUPYTER_TOKEN";
/// The address the built-in services (Jupyter, Ollama) listen on; default 127.0.0.1.
pub(crate) const LABUP_BIND_ADDRESS: &str = "LABUP_BIND_ADDRESS";
/// Never open a browser.
pub(crate) const LABUP_NO_BROWSER: &str = "LABUP_NO_BROWSER";
/// Never draw progress bars.
pub(crate) const LABUP_NO_PROGRESS: &str = "LABUP_NO_PROGRESS";
/// The user's Jupyter config folder: labup's Jupyter ignores its server settings and keeps
/// JupyterLab's user settings and workspaces there.
pub(crate) const JUPYTER_CONFIG_DIR: &str = "JUPYTER_CONFIG_DIR";
/// Extra Jupyter config folders: not passed to labup's Jupyter (named in the ignored notice).
pub(crate) const JUPYTER_CONFIG_PATH: &str = "JUPYTER_CONFIG_PATH";
/// JupyterLab's user settings folder, passed on to labup's Jupyter.
pub(crate) const JUPYTERLAB_SETTINGS_DIR: &str = "JUPYTERLAB_SETTINGS_DIR";
/// JupyterLab's workspaces folder, passed on to labup's Jupyter.
pub(crate) const JUPYTERLAB_WORKSPACES_DIR: &str = "JUPYTERLAB_WORKSPACES_DIR";
/// uv's and pip's own index settings: when one is set, labup adds no torch index over it.
pub(crate) const UV_INDEX_URL: &str = "UV_INDEX_URL";
/// See [`UV_INDEX_URL`].
pub(crate) const UV_DEFAULT_INDEX: &str = "UV_DEFAULT_INDEX";
/// See [`UV_INDEX_URL`].
pub(crate) const UV_INDEX: &str = "UV_INDEX";
/// See [`UV_INDEX_URL`].
pub(crate) const UV_EXTRA_INDEX_URL: &str = "UV_EXTRA_INDEX_URL";
/// See [`UV_INDEX_URL`].
pub(crate) const UV_NO_INDEX: &str = "UV_NO_INDEX";
/// See [`UV_INDEX_URL`].
pub(crate) const PIP_INDEX_URL: &str = "PIP_INDEX_URL";
/// See [`UV_INDEX_URL`].
pub(crate) const PIP_EXTRA_INDEX_URL: &str = "PIP_EXTRA_INDEX_URL";
/// See [`UV_INDEX_URL`].
pub(crate) const PIP_NO_INDEX: &str = "PIP_NO_INDEX";
/// The index variables, in the order they are reported.
pub(crate) const INDEX_SETTINGS: [&str; 8] = [
    UV_INDEX_URL,
    UV_DEFAULT_INDEX,
    UV_INDEX,
    UV_EXTRA_INDEX_URL,
    UV_NO_INDEX,
    PIP_INDEX_URL,
    PIP_EXTRA_INDEX_URL,
    PIP_NO_INDEX,
];
/// uv's config file named by the environment (read for index settings).
pub(crate) const UV_CONFIG_FILE: &str = "UV_CONFIG_FILE";
/// pip's config file named by the environment (read for index settings).
pub(crate) const PIP_CONFIG_FILE: &str = "PIP_CONFIG_FILE";
/// The home folder (never a project; `~/.pip/pip.conf` and, without `XDG_CONFIG_HOME`, `~/.config`).
pub(crate) const HOME: &str = "HOME";
/// Where the user's `uv/uv.toml` and `pip/pip.conf` are.
pub(crate) const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Set by Slurm in a job: `up --foreground` then prints where the services are.
pub(crate) const SLURM_JOB_ID: &str = "SLURM_JOB_ID";
/// Set by Slurm in a job: the compute node's name.
pub(crate) const SLURMD_NODENAME: &str = "SLURMD_NODENAME";
/// Set by Slurm in a job: the host the job was submitted from (the login node).
pub(crate) const SLURM_SUBMIT_HOST: &str = "SLURM_SUBMIT_HOST";
/// Set by JupyterHub's spawner: `jupyterhub-singleuser` runs only with it.
pub(crate) const JUPYTERHUB_API_TOKEN: &str = "JUPYTERHUB_API_TOKEN";
/// Turns colour off (<https://no-color.org>).
pub(crate) const NO_COLOR: &str = "NO_COLOR";

/// Every variable with who sets it and what it means, for docs and `labup env --explain`.
pub const ALL: &[(&str, &str, &str)] = &[
    (LABUP_PYTHON, "Nix wrapper", "interpreter to build the venv from"),
    (LABUP_UV, "Nix wrapper", "uv binary"),
    (LABUP_OLLAMA, "Nix wrapper", "ollama binary"),
    (
        LABUP_LIBRARY_PATH,
        "Nix wrapper",
        "native libraries PyPI wheels need under Nix (libstdc++, zlib, …), store paths only",
    ),
    (LABUP_DRIVER_DIRS, "user", "extra driver library directories"),
    (LABUP_CUDA_DRIVER_VERSION, "user/tests", "override the detected driver version"),
    (LABUP_FS_ROOT, "tests", "prefix for every host path GPU detection reads"),
    (LABUP_STATE_DIR, "user/tests", "state folder instead of `.labup`"),
    (LABUP_JUPYTER_TOKEN, "Kubernetes Secret", "the Jupyter token instead of `.labup/jupyter/token`"),
    (LABUP_BIND_ADDRESS, "Kubernetes export", "address Jupyter and Ollama listen on (default 127.0.0.1)"),
    (LABUP_NO_BROWSER, "user", "never open a browser"),
    (LABUP_NO_PROGRESS, "user", "never draw progress bars"),
    (
        JUPYTER_CONFIG_DIR,
        "user",
        "your Jupyter config folder (default `~/.jupyter`): its server settings are ignored, its JupyterLab settings kept",
    ),
    (JUPYTER_CONFIG_PATH, "user", "extra Jupyter config folders: not passed to labup's Jupyter"),
    (JUPYTERLAB_SETTINGS_DIR, "user", "JupyterLab user settings folder, kept for labup's Jupyter"),
    (JUPYTERLAB_WORKSPACES_DIR, "user", "JupyterLab workspaces folder, kept for labup's Jupyter"),
    (NO_COLOR, "user", "set and not empty: no colour in output"),
    (UV_INDEX_URL, "user", "uv's index (with the others below: labup then adds no torch index)"),
    (UV_DEFAULT_INDEX, "user", "uv's index"),
    (UV_INDEX, "user", "uv's extra indexes"),
    (UV_EXTRA_INDEX_URL, "user", "uv's extra indexes"),
    (UV_NO_INDEX, "user", "uv without an index"),
    (PIP_INDEX_URL, "user", "pip's index"),
    (PIP_EXTRA_INDEX_URL, "user", "pip's extra indexes"),
    (PIP_NO_INDEX, "user", "pip without an index"),
    (UV_CONFIG_FILE, "user", "uv's config file, read for index settings"),
    (PIP_CONFIG_FILE, "user", "pip's config file, read for index settings"),
    (HOME, "system", "the home folder: never a project (`up`/`sync` there exit 2); `~/.pip/pip.conf` and `~/.config`"),
    (XDG_CONFIG_HOME, "system", "where `uv/uv.toml` and `pip/pip.conf` are looked for"),
    (SLURM_JOB_ID, "Slurm", "in a job, `up --foreground` prints where the services are and the tunnel to them"),
    (SLURMD_NODENAME, "Slurm", "the compute node, for that message"),
    (SLURM_SUBMIT_HOST, "Slurm", "the login node the job was submitted from, for the tunnel line"),
    (JUPYTERHUB_API_TOKEN, "JupyterHub", "`labup jupyterhub-singleuser` refuses to start without it"),
];

/// A variable's value when it is set and not empty.
pub(crate) fn get(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
