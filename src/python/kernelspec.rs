//! The project's Jupyter kernelspec: `<venv>/share/jupyter/kernels/labup-<project>/kernel.json`.
//!
//! Kernels started by anything other than labup's own Jupyter (VS Code, PyCharm, nbclient, a
//! JupyterHub) do not inherit labup's child environment: they get what their `kernel.json`
//! says. So every sync writes one kernelspec per project into the venv, where every frontend
//! finds it through the venv's `sys.prefix` (`share/jupyter/kernels`), named per project so it
//! never overwrites another project's (ipykernel #1132) and living and dying with the venv it
//! points to (jupyter_client #269). Its `argv` is the venv's own Python (absolute, so a frontend
//! with another PATH still runs it) and its `env` carries the workspace's library path (the
//! `LABUP_LIBRARY_PATH` folders and the GPU driver link folder) and, when the workspace declares
//! Ollama, the address of labup's Ollama for Jupyter AI.
//!
//! `env` values are used as written: jupyter_client substitutes `${VAR}` from the frontend's
//! environment, other frontends do not, so no value refers to another variable. The library
//! path is labup's parts only, as for every child labup starts.
//!
//! labup's kernelspecs carry `metadata.labup`; a folder named like ours without it is the
//! user's and is never changed or removed. Writing happens only when the content differs, so
//! a no-op sync stays a few file reads.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::config::Config;
use crate::fsutil;

/// Every labup kernelspec's name starts with this.
pub(crate) const PREFIX: &str = "labup-";

/// The kernel name of a project: `labup-` and the project name made a valid kernel name
/// (jupyter_client accepts `[a-z0-9._-]`, and lower-cases names when it looks them up).
pub(crate) fn kernel_name(project: &str) -> String {
    let mut out = String::new();
    for c in project.chars().flat_map(char::to_lowercase) {
        let ok = c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
        let c = if ok { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let body = if trimmed.is_empty() { "project" } else { trimmed };
    format!("{PREFIX}{body}")
}

/// `Python 3.12 (demo)`: the display name frontends show.
pub(crate) fn display_name(python_version: &str, project: &str) -> String {
    format!("Python {} ({project})", super::interpreter::minor_of(python_version))
}

/// The kernels folder of a venv.
pub(crate) fn kernels_dir(venv: &Path) -> PathBuf {
    venv.join("share").join("jupyter").join("kernels")
}

/// What the kernelspec holds, before it is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// `labup-<project>`.
    pub(crate) name: String,
    /// `Python 3.x (<project>)`.
    pub(crate) display_name: String,
    /// The venv's Python.
    pub(crate) python: PathBuf,
    /// Arguments after ipykernel's own (IPython config such as Jupyter AI's default model).
    pub(crate) args: Vec<String>,
    /// Variables the kernel gets, in order.
    pub(crate) env: Vec<(String, String)>,
    /// Other files of the kernelspec folder (name, content), such as an IPython config file.
    pub(crate) files: Vec<(String, String)>,
    /// The project folder (recorded for the user and for ownership).
    pub(crate) root: PathBuf,
    /// The venv (recorded).
    pub(crate) venv: PathBuf,
}

impl Spec {
    /// The kernelspec of this config (pure).
    pub(crate) fn new(config: &Config, python_version: &str, args: Vec<String>, env: Vec<(String, String)>) -> Spec {
        let venv = config.python.venv.clone();
        Spec {
            name: kernel_name(&config.project.name),
            display_name: display_name(python_version, &config.project.name),
            python: super::interpreter::venv_python(&venv),
            args,
            env,
            files: Vec::new(),
            root: config.root.clone(),
            venv,
        }
    }

    /// `kernel.json`, as ipykernel writes its own (`-m ipykernel_launcher -f {connection_file}`),
    /// with `env` and labup's metadata.
    pub(crate) fn render(&self) -> String {
        let env: serde_json::Map<String, Value> =
            self.env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let mut argv: Vec<String> = vec![self.python.display().to_string()];
        argv.extend(["-m", "ipykernel_launcher", "-f", "{connection_file}"].map(String::from));
        argv.extend(self.args.iter().cloned());
        let doc = json!({
            "argv": argv,
            "display_name": self.display_name,
            "language": "python",
            "env": env,
            "metadata": {
                "debugger": true,
                "labup": {
                    "project": self.root.display().to_string(),
                    "venv": self.venv.display().to_string(),
                    "note": "written by `labup sync`; rewritten on every sync, removed with the venv",
                },
            },
        });
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Whether `dir` holds a kernelspec labup wrote.
pub(crate) fn is_ours(dir: &Path) -> bool {
    fs::read(dir.join("kernel.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|v| v["metadata"]["labup"].is_object())
}

/// What [`refresh`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Refresh {
    /// The kernelspec was (re)written.
    pub(crate) written: bool,
    /// labup kernelspecs of other names removed (the project was renamed).
    pub(crate) removed: Vec<String>,
    /// Things to tell the user (a folder that is not labup's, left alone).
    pub(crate) warnings: Vec<String>,
}

/// Makes the venv's kernels folder hold exactly `spec` among labup's kernelspecs (`None`: no
/// kernel can run, e.g. ipykernel is not installed, so none of labup's is left). Folders that
/// are not labup's are never touched.
pub(crate) fn refresh(venv: &Path, spec: Option<&Spec>) -> Result<Refresh> {
    let dir = kernels_dir(venv);
    let mut out = Refresh::default();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(PREFIX) || spec.is_some_and(|s| s.name == name) {
                continue;
            }
            if is_ours(&e.path()) {
                fsutil::remove_tree(&e.path())?;
                out.removed.push(name);
            }
        }
    }
    let Some(spec) = spec else { return Ok(out) };
    let target = dir.join(&spec.name);
    let file = target.join("kernel.json");
    let text = spec.render();
    let current = fs::read_to_string(&file).ok();
    let files_current =
        spec.files.iter().all(|(name, body)| fs::read_to_string(target.join(name)).ok().as_deref() == Some(body));
    if current.as_deref() == Some(text.as_str()) && files_current {
        return Ok(out);
    }
    let occupied = current.is_some() || fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some());
    if occupied && !is_ours(&target) {
        out.warnings.push(format!(
            "{} is not labup's (no kernel.json with `metadata.labup`): left alone, so frontends outside \
             labup do not get the workspace environment from it; rename or remove it, then run `labup sync`",
            target.display()
        ));
        return Ok(out);
    }
    fs::create_dir_all(&target).with_context(|| format!("failed to create {}", target.display()))?;
    for (name, body) in &spec.files {
        fsutil::atomic_write(&target.join(name), body.as_bytes())?;
    }
    // kernel.json last: a folder with labup's kernel.json is complete.
    fsutil::atomic_write(&file, text.as_bytes())?;
    out.written = true;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(venv: &Path, name: &str) -> Spec {
        Spec {
            name: kernel_name(name),
            display_name: display_name("3.12.4", name),
            python: venv.join("bin/python"),
            args: Vec::new(),
            files: Vec::new(),
            env: vec![("LD_LIBRARY_PATH".into(), "/p/.labup/driver/550.1".into())],
            root: "/p".into(),
            venv: venv.to_path_buf(),
        }
    }

    #[test]
    fn names_are_sanitised_not_refused() {
        assert_eq!(kernel_name("demo"), "labup-demo");
        assert_eq!(kernel_name("My Project (v2)"), "labup-my-project-v2");
        assert_eq!(kernel_name("data_sci.ence"), "labup-data_sci.ence");
        assert_eq!(kernel_name("Ünïcode"), "labup-n-code");
        assert_eq!(kernel_name("日本"), "labup-project");
        assert_eq!(kernel_name("---"), "labup-project");
        assert_eq!(display_name("3.12.4", "demo"), "Python 3.12 (demo)");
        let pat = |n: &str| n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        for n in ["a b", "A/B\\C", "x:y", "🙂"] {
            assert!(pat(&kernel_name(n)), "{}", kernel_name(n));
        }
    }

    #[test]
    fn kernel_json_runs_the_venv_python_with_the_workspace_env() {
        let v: Value = serde_json::from_str(&spec(Path::new("/p/.venv"), "demo").render()).unwrap();
        assert_eq!(v["argv"], json!(["/p/.venv/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"]));
        assert_eq!(v["display_name"], "Python 3.12 (demo)");
        assert_eq!(v["language"], "python");
        assert_eq!(v["env"]["LD_LIBRARY_PATH"], "/p/.labup/driver/550.1");
        assert!(v["metadata"]["labup"].is_object());
    }

    #[test]
    fn written_once_renamed_with_the_project_and_foreign_ones_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let venv = d.path().join(".venv");
        let kernels = kernels_dir(&venv);
        fs::create_dir_all(kernels.join("python3")).unwrap();
        fs::write(kernels.join("python3/kernel.json"), "{}").unwrap();
        let a = spec(&venv, "alpha");
        assert!(refresh(&venv, Some(&a)).unwrap().written);
        let file = kernels.join("labup-alpha/kernel.json");
        let stamp = fsutil::stamp(&file);
        assert_eq!(refresh(&venv, Some(&a)).unwrap(), Refresh::default(), "unchanged: nothing written");
        assert_eq!(fsutil::stamp(&file), stamp);

        let b = spec(&venv, "beta");
        let r = refresh(&venv, Some(&b)).unwrap();
        assert!(r.written);
        assert_eq!(r.removed, ["labup-alpha"]);
        assert!(!kernels.join("labup-alpha").exists());
        assert!(kernels.join("python3/kernel.json").is_file(), "ipykernel's own is kept");

        // Someone else's folder named like ours: a warning, nothing changed.
        fs::create_dir_all(kernels.join("labup-gamma")).unwrap();
        fs::write(kernels.join("labup-gamma/kernel.json"), r#"{"argv": ["x"]}"#).unwrap();
        let r = refresh(&venv, Some(&spec(&venv, "gamma"))).unwrap();
        assert!(!r.written);
        assert!(r.warnings[0].contains("not labup's"), "{:?}", r.warnings);
        assert_eq!(fs::read_to_string(kernels.join("labup-gamma/kernel.json")).unwrap(), r#"{"argv": ["x"]}"#);
        assert_eq!(r.removed, ["labup-beta"], "the renamed project's old one still goes");

        // No kernel possible: labup's go, the others stay.
        assert!(refresh(&venv, Some(&spec(&venv, "delta"))).unwrap().written);
        let r = refresh(&venv, None).unwrap();
        assert_eq!(r.removed, ["labup-delta"]);
        assert!(kernels.join("labup-gamma").exists() && kernels.join("python3").exists());
    }
}
