//! `labup init`: what a project folder has (requirement files, `server.py`, notebooks, a GPU),
//! and the commented `labup.toml`, `flake.nix` and `.gitignore` lines written from it.
//! Detection only reads the folder and two host paths; rendering is pure.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::envvars;
use crate::python::interpreter::minor_of;

/// The flake `labup init --flake` writes: the template's, so both stay one file.
pub const FLAKE: &str = include_str!("../templates/default/flake.nix");

/// Lines `labup init` makes sure `.gitignore` has.
pub(crate) const IGNORED: [&str; 3] = [".venv/", ".labup/", "labup.local.toml"];

/// What the folder has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Detected {
    /// `[project] name`: the folder's name.
    pub(crate) name: String,
    /// `requirements*.txt` files, sorted.
    pub(crate) requirement_files: Vec<String>,
    /// A `pyproject.toml`.
    pub(crate) pyproject: bool,
    /// A `uv.lock` beside it.
    pub(crate) uv_lock: bool,
    /// A `server.py` (the web app the old flakes started).
    pub(crate) server_py: bool,
    /// The notebooks folder, relative (`.` when notebooks sit at the top).
    pub(crate) notebooks: Option<String>,
    /// `3.12` from `.python-version`.
    pub(crate) python: Option<String>,
    /// An NVIDIA GPU seen by the host.
    pub(crate) gpu: Option<GpuSeen>,
}

/// How the GPU showed itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GpuSeen {
    /// `/sys/module/nvidia/version`.
    Driver(String),
    /// `/dev/dxg`: WSL2's GPU bridge.
    Wsl,
}

/// Looks at the folder (first level only) and, for the GPU, at `/sys` and `/dev` under `LABUP_FS_ROOT`.
pub(crate) fn detect(root: &Path) -> Detected {
    let mut d = Detected {
        name: root.file_name().map_or_else(|| "my-lab".into(), |n| n.to_string_lossy().into_owned()),
        ..Detected::default()
    };
    let mut subdirs = Vec::new();
    let mut top_notebooks = false;
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if !name.starts_with('.') {
                subdirs.push(name);
            }
            continue;
        }
        match name.as_str() {
            "pyproject.toml" => d.pyproject = true,
            "uv.lock" => d.uv_lock = true,
            "server.py" => d.server_py = true,
            ".python-version" => {
                let text = fs::read_to_string(&path).unwrap_or_default();
                d.python = text
                    .lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("3."))
                    .map(|v| minor_of(v).to_string())
                    .filter(|v| v.len() > 2 && v[2..].chars().all(|c| c.is_ascii_digit()));
            }
            n if n.starts_with("requirements") && n.ends_with(".txt") => d.requirement_files.push(name),
            n if n.ends_with(".ipynb") => top_notebooks = true,
            _ => {}
        }
    }
    d.requirement_files.sort();
    subdirs.sort();
    d.notebooks = ["notebooks", "notebook", "nbs"]
        .iter()
        .find(|n| subdirs.iter().any(|s| s == *n))
        .map(|n| n.to_string())
        .or_else(|| top_notebooks.then(|| ".".to_string()))
        .or_else(|| subdirs.iter().find(|s| has_notebooks(&root.join(s))).cloned());
    d.gpu = detect_gpu();
    d
}

fn has_notebooks(dir: &Path) -> bool {
    fs::read_dir(dir).into_iter().flatten().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".ipynb"))
}

/// The cheap part of GPU detection: two paths, no NVML, no driver library loaded.
fn detect_gpu() -> Option<GpuSeen> {
    let fs_root = envvars::get(envvars::LABUP_FS_ROOT).unwrap_or_default();
    let host = |p: &str| format!("{}{p}", fs_root.trim_end_matches('/'));
    if let Ok(v) = fs::read_to_string(host("/sys/module/nvidia/version")) {
        return Some(GpuSeen::Driver(v.trim().to_string()));
    }
    Path::new(&host("/dev/dxg")).exists().then_some(GpuSeen::Wsl)
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The commented `labup.toml` for what was found.
pub(crate) fn render(d: &Detected) -> String {
    let mut s = String::new();
    s.push_str("# labup's settings for this project, written by `labup init`. Every key is optional;\n");
    s.push_str("# the README lists them all. `labup.local.toml` (git-ignored) overrides keys on one machine.\n\n");
    let _ = writeln!(s, "[project]\nname = {}\n", toml_str(&d.name));

    s.push_str("[python]\n");
    s.push_str("# The flake picks nixpkgs' Python from this; labup checks the venv's interpreter against it.\n");
    match &d.python {
        Some(v) => {
            let _ = writeln!(s, "version = {}  # from .python-version", toml_str(v));
        }
        None => s.push_str("# version = \"3.12\"\n"),
    }
    let mut inputs: Vec<String> = d.requirement_files.clone();
    if d.pyproject {
        inputs.push("pyproject.toml".into());
    }
    if inputs.is_empty() {
        s.push_str("# No requirements.txt or pyproject.toml yet: add one, or list packages here.\n");
        s.push_str("# requirements = [\"requirements.txt\"]\n");
    } else {
        s.push_str("# labup makes .venv exactly these (through requirements.lock); without this line it\n");
        s.push_str("# finds requirements*.txt and pyproject.toml by itself.");
        if d.uv_lock {
            s.push_str(" pyproject.toml is installed as pinned by uv.lock.");
        }
        s.push('\n');
        let list: Vec<String> = inputs.iter().map(|i| toml_str(i)).collect();
        let _ = writeln!(s, "requirements = [{}]", list.join(", "));
    }
    s.push_str("# Extra packages always installed, e.g. [\"ipywidgets\"].\npackages = []\n");
    s.push_str("# PyTorch wheels: \"auto\" picks the newest CUDA build the driver and GPU can run, else CPU.\n");
    s.push_str("torch = \"auto\"\n\n");

    match &d.gpu {
        Some(seen) => {
            let what = match seen {
                GpuSeen::Driver(v) => format!("an NVIDIA GPU was found (driver {v})"),
                GpuSeen::Wsl => "a WSL2 GPU bridge (/dev/dxg) was found".into(),
            };
            let _ = writeln!(s, "[gpu]\n# When this was written, {what}: labup links the driver's libraries");
            s.push_str("# into .labup/driver/ for the services and `labup run`; `labup gpu` shows the choice.\n");
            s.push_str("cuda = \"auto\"\n\n");
        }
        None => {
            s.push_str("# No NVIDIA GPU was found when this was written; with one, `[gpu] cuda = \"auto\"` (the\n");
            s.push_str(
                "# default) wires the driver and `torch = \"auto\"` picks CUDA wheels. `labup gpu` shows why.\n\n",
            );
        }
    }

    s.push_str("# Declaring any service replaces the default set, so JupyterLab is listed too.\n");
    s.push_str("[services.jupyter]\nkind = \"jupyter\"\nport = 8888\n");
    match &d.notebooks {
        Some(dir) => {
            let _ = writeln!(s, "root = {}  # the notebooks folder", toml_str(dir));
        }
        None => s.push_str("root = \".\"\n"),
    }
    s.push_str("open = true\n\n");
    if d.server_py {
        s.push_str("# server.py, run with the venv's python; PORT is set for it (FastHTML's serve() reads it).\n");
        s.push_str("[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 5001\n");
        s.push_str("ready = { http = \"/\" }\nrestart = \"on-failure\"\nopen = false\n\n");
    }
    s.push_str("# A local LLM server: uncomment, then `nix run .#up-llm` (or set LABUP_OLLAMA).\n");
    s.push_str("# [services.ollama]\n# kind = \"ollama\"\n# models = [\"llama3.2:1b\"]\n\n");

    s.push_str("[shell]\n# `nix develop` (or `eval \"$(labup hook bash)\"`): start the services on entry and stop\n");
    s.push_str("# them when the last such shell exits.\nautostart = false\n\n");
    s.push_str("[nix]\n# Extra nixpkgs tools on PATH in `nix develop` and for the services, e.g. [\"ffmpeg\"].\n");
    s.push_str("packages = []\n");
    s
}

/// `.gitignore` with the [`IGNORED`] lines it lacks appended (`None`: nothing to add).
/// `/.venv`, `.venv` and `.venv/` all count as present.
pub(crate) fn gitignore(existing: Option<&str>) -> Option<(String, Vec<&'static str>)> {
    let text = existing.unwrap_or("");
    let has = |entry: &str| {
        let bare = entry.trim_end_matches('/');
        text.lines().map(str::trim).any(|l| l.trim_start_matches('/').trim_end_matches('/') == bare)
    };
    let missing: Vec<&'static str> = IGNORED.iter().copied().filter(|e| !has(e)).collect();
    if missing.is_empty() {
        return None;
    }
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() {
        out.push_str("# labup\n");
    }
    for m in &missing {
        out.push_str(m);
        out.push('\n');
    }
    Some((out, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_appends_only_missing_lines() {
        let (text, added) = gitignore(None).unwrap();
        assert_eq!(text, ".venv/\n.labup/\nlabup.local.toml\n");
        assert_eq!(added.len(), 3);
        let (text, added) = gitignore(Some("target\n/.venv")).unwrap();
        assert_eq!(text, "target\n/.venv\n# labup\n.labup/\nlabup.local.toml\n");
        assert_eq!(added, [".labup/", "labup.local.toml"]);
        assert_eq!(gitignore(Some(&text)), None);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_str(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn render_mentions_what_was_found() {
        let d = Detected {
            name: "demo".into(),
            requirement_files: vec!["requirements.txt".into()],
            server_py: true,
            notebooks: Some("notebooks".into()),
            gpu: Some(GpuSeen::Driver("550.144.03".into())),
            ..Detected::default()
        };
        let text = render(&d);
        assert!(text.contains("requirements = [\"requirements.txt\"]\n"), "{text}");
        assert!(text.contains("[services.app]\ncommand = [\"python\", \"server.py\"]"), "{text}");
        assert!(text.contains("root = \"notebooks\""), "{text}");
        assert!(text.contains("driver 550.144.03"), "{text}");
        let bare = render(&Detected { name: "x".into(), ..Detected::default() });
        assert!(!bare.contains("[services.app]") && !bare.contains("\n[gpu]\n"), "{bare}");
        assert!(bare.contains("# requirements = [\"requirements.txt\"]"), "{bare}");
    }
}
