//! Where the Python requirements come from: requirement files, `pyproject.toml`, `uv.lock`,
//! `pylock.toml` and `[python] packages`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{display_path, Config};
use crate::error::Fail;

/// The requirement inputs of a project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sources {
    /// `requirements*.txt` files (absolute).
    pub(crate) requirement_files: Vec<PathBuf>,
    /// `pyproject.toml` whose `[project] dependencies` are inputs (when it has no `uv.lock`).
    pub(crate) pyproject: Option<PathBuf>,
    /// `uv.lock`, exported as exact pins.
    pub(crate) uv_lock: Option<PathBuf>,
    /// `pylock.toml` files (PEP 751), taken as exact pins.
    pub(crate) pylocks: Vec<PathBuf>,
    /// `[python] packages`.
    pub(crate) packages: Vec<String>,
    /// The project itself, when its `pyproject.toml` makes it a package: installed editable.
    pub(crate) project_package: Option<Package>,
    /// The project folder, against which relative local package paths resolve.
    pub(crate) root: Option<PathBuf>,
}

/// The project as a package of its own (`uv init --package`): what `uv sync` installs editable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    /// Its normalized name (`[project] name`).
    pub(crate) name: String,
    /// The folder holding its `pyproject.toml`.
    pub(crate) dir: PathBuf,
}

impl Package {
    /// Its `pyproject.toml`.
    pub(crate) fn pyproject(&self) -> PathBuf {
        self.dir.join("pyproject.toml")
    }
}

/// Index and link options in requirement files, which the lock must carry to install.
const CARRIED_OPTIONS: [&str; 7] =
    ["--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--no-index", "--trusted-host"];

impl Sources {
    /// Finds the inputs: `[python] requirements` when set, else what the project folder has.
    pub(crate) fn detect(config: &Config) -> Result<Sources, Fail> {
        let root = &config.root;
        let mut sources =
            Sources { packages: config.python.packages.clone(), root: Some(config.root.clone()), ..Sources::default() };
        // What enabled services need from the venv: JupyterLab for `kind = "jupyter"`.
        if config.enabled_services().any(|s| s.kind == crate::config::ServiceKind::Jupyter)
            && !sources.packages.iter().any(|p| requirement_name(p) == "jupyterlab")
        {
            sources.packages.push("jupyterlab".into());
        }
        let listed = match &config.python.requirements {
            Some(list) => {
                for path in list {
                    if !path.is_file() {
                        return Err(Fail::usage(format!(
                            "`[python] requirements` names {}, which does not exist",
                            display_path(path)
                        ))
                        .hint("fix the path in labup.toml, or remove `requirements` to auto-detect"));
                    }
                }
                list.clone()
            }
            None => auto_detect(root),
        };
        for path in listed {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name == "uv.lock" {
                sources.uv_lock = Some(path);
            } else if name == "pyproject.toml" {
                if sources.project_package.is_none() {
                    sources.project_package = project_package(&path)?;
                }
                let lock = path.with_file_name("uv.lock");
                if lock.is_file() {
                    sources.uv_lock = Some(lock);
                } else if !pyproject_dependencies(&path)?.is_empty() {
                    sources.pyproject = Some(path);
                }
            } else if name.starts_with("pylock.") && name.ends_with(".toml") {
                sources.pylocks.push(path);
            } else {
                sources.requirement_files.push(path);
            }
        }
        Ok(sources)
    }

    /// Whether no requirement is asked for (the project's own package needs no lock).
    pub(crate) fn is_empty(&self) -> bool {
        self.requirement_files.is_empty()
            && self.pyproject.is_none()
            && self.uv_lock.is_none()
            && self.pylocks.is_empty()
            && self.packages.is_empty()
    }

    /// Every file whose content is an input, with the files requirement files include.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        let mut out = self.requirement_texts();
        let mut seen: BTreeSet<PathBuf> = out.iter().cloned().collect();
        for f in self.pyproject.iter().chain(&self.uv_lock).chain(&self.pylocks) {
            if seen.insert(f.clone()) {
                out.push(f.clone());
            }
        }
        if let Some(lock) = &self.uv_lock {
            let pyproject = lock.with_file_name("pyproject.toml");
            if seen.insert(pyproject.clone()) {
                out.push(pyproject);
            }
        }
        // The package's own pyproject.toml decides how it is built (not its sources: editable).
        if let Some(pyproject) = self.project_package.as_ref().map(Package::pyproject) {
            if seen.insert(pyproject.clone()) {
                out.push(pyproject);
            }
        }
        // A local package's own dependencies live in its build files: a change there must
        // re-resolve and re-sync, as a change to requirements.txt does.
        for file in self.local_package_files() {
            if seen.insert(file.clone()) {
                out.push(file);
            }
        }
        out
    }

    /// The build files (`pyproject.toml`, `setup.cfg`, `setup.py`, present or not) of every
    /// local package folder the requirements name: `-e ./pkg`, `./pkg`, `name @ file:///…/pkg`.
    /// Relative paths are relative to the project folder, where the installers run.
    pub(crate) fn local_package_files(&self) -> Vec<PathBuf> {
        let Some(root) = self.root.as_deref() else {
            return Vec::new();
        };
        let mut lines: Vec<String> = self.packages.clone();
        for file in self.requirement_texts() {
            lines.extend(logical_lines(&fs::read_to_string(&file).unwrap_or_default()));
        }
        if let Some(p) = &self.pyproject {
            lines.extend(pyproject_dependencies(p).unwrap_or_default());
        }
        let mut out = Vec::new();
        for line in lines {
            let Some(dir) = local_folder(&line, root) else { continue };
            for name in ["pyproject.toml", "setup.cfg", "setup.py"] {
                let file = dir.join(name);
                if !out.contains(&file) {
                    out.push(file);
                }
            }
        }
        out
    }

    /// The requirement files and every file they include with `-r` or `-c`.
    fn requirement_texts(&self) -> Vec<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for f in &self.requirement_files {
            collect_includes(f, &mut seen, &mut out);
        }
        out
    }

    /// Short description for progress lines: `requirements.txt, pyproject.toml`.
    pub(crate) fn describe(&self, root: &Path) -> String {
        let mut parts: Vec<String> = self
            .requirement_files
            .iter()
            .chain(&self.pyproject)
            .chain(&self.uv_lock)
            .chain(&self.pylocks)
            .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
            .collect();
        match self.packages.len() {
            0 => {}
            1..=3 => parts.extend(self.packages.iter().cloned()),
            _ => parts.push("[python] packages".into()),
        }
        parts.join(", ")
    }

    /// The first option in the requirement files that chooses the index (`--index-url`,
    /// `--extra-index-url`, `--no-index`) and the file it is in, for messages.
    pub(crate) fn index_settings(&self, root: &Path) -> Option<String> {
        for file in self.requirement_texts() {
            let text = fs::read_to_string(&file).unwrap_or_default();
            for line in logical_lines(&text) {
                let Some((opt, _)) = split_option(&line) else { continue };
                if ["--index-url", "-i", "--extra-index-url", "--no-index"].contains(&opt.as_str()) {
                    let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
                    return Some(format!("`{line}` in {shown}"));
                }
            }
        }
        None
    }

    /// Index options from the requirement files, with relative paths rebased onto `lock_dir`.
    pub(crate) fn carried_options(&self, lock_dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for file in self.requirement_texts() {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            let dir = file.parent().unwrap_or(Path::new("."));
            for line in logical_lines(&text) {
                let Some((opt, value)) = split_option(&line) else {
                    continue;
                };
                if !CARRIED_OPTIONS.contains(&opt.as_str()) {
                    continue;
                }
                let long = match opt.as_str() {
                    "-i" => "--index-url",
                    "-f" => "--find-links",
                    o => o,
                };
                let rendered = match value {
                    None => long.to_string(),
                    Some(v) if long == "--find-links" && !v.contains("://") => {
                        let abs = lexical(&dir.join(&v));
                        let rel = abs.strip_prefix(lock_dir).map(Path::to_path_buf);
                        format!("{long} {}", rel.map_or(abs.display().to_string(), |r| format!("./{}", r.display())))
                    }
                    Some(v) => format!("{long} {v}"),
                };
                if !out.contains(&rendered) {
                    out.push(rendered);
                }
            }
        }
        out
    }
}

/// The local folder a requirement line installs from, if it names one that exists.
fn local_folder(line: &str, root: &Path) -> Option<PathBuf> {
    let line = line.split(" ;").next().unwrap_or(line);
    let spec = match line.strip_prefix("--editable").or_else(|| line.strip_prefix("-e")) {
        Some(v) => v.trim_start_matches(['=', ' ', '\t']).trim(),
        None if line.starts_with('-') => return None,
        None => line.trim(),
    };
    // `name @ url` → the url
    let spec = match spec.split_once('@') {
        Some((name, url)) if !name.trim().is_empty() && !name.starts_with('.') && !name.contains(['/', ':']) => {
            url.trim()
        }
        _ => spec,
    };
    let path = if let Some(rest) = spec.strip_prefix("file://") {
        rest.strip_prefix("localhost").unwrap_or(rest)
    } else if spec.starts_with('.') || spec.starts_with('/') {
        spec
    } else {
        return None;
    };
    let path = path.split(['#', '[']).next().unwrap_or_default().trim();
    let dir = lexical(&root.join(path));
    dir.is_dir().then_some(dir)
}

/// The normalized project name a requirement line starts with (`JupyterLab>=4` → `jupyterlab`).
fn requirement_name(req: &str) -> String {
    let end = req.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(req.len());
    req[..end].to_ascii_lowercase().replace(['_', '.'], "-")
}

/// Removes `.` and `..` components without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn auto_detect(root: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (name.starts_with("requirements") && name.ends_with(".txt"))
                || name == "pyproject.toml"
                || (name.starts_with("pylock.") && name.ends_with(".toml"))
        })
        .collect();
    found.sort();
    found
}

/// The project as a package, as uv decides it: `[tool.uv] package = true`, or a `[build-system]`
/// table and `package` not `false`; it needs a `[project] name`.
pub(crate) fn project_package(path: &Path) -> Result<Option<Package>, Fail> {
    let text = fs::read_to_string(path).map_err(|e| Fail::usage(format!("cannot read {}: {e}", display_path(path))))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Fail::usage(format!("{} is not valid TOML: {}", display_path(path), e.message())))?;
    let flag = table.get("tool").and_then(|t| t.get("uv")).and_then(|u| u.get("package"));
    let package = match flag {
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => {
            return Err(Fail::usage(format!("`[tool.uv] package` in {} must be true or false", display_path(path))))
        }
        None => table.get("build-system").is_some_and(toml::Value::is_table),
    };
    let name = table.get("project").and_then(|p| p.get("name")).and_then(toml::Value::as_str);
    match (package, name) {
        (false, _) => Ok(None),
        (true, Some(n)) => Ok(Some(Package {
            name: super::venv::normalize(n),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        })),
        (true, None) => Err(Fail::usage(format!(
            "{} declares a package (`[build-system]`) but no `[project] name`",
            display_path(path)
        ))
        .hint("add `name = \"…\"` under `[project]`, or `[tool.uv] package = false` if it is not a package")),
    }
}

/// `[project] dependencies` of a `pyproject.toml`.
pub(crate) fn pyproject_dependencies(path: &Path) -> Result<Vec<String>, Fail> {
    let text = fs::read_to_string(path).map_err(|e| Fail::usage(format!("cannot read {}: {e}", display_path(path))))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Fail::usage(format!("{} is not valid TOML: {}", display_path(path), e.message())))?;
    let deps = table.get("project").and_then(|p| p.get("dependencies"));
    let Some(deps) = deps else {
        return Ok(Vec::new());
    };
    let Some(list) = deps.as_array() else {
        return Err(Fail::usage(format!(
            "`[project] dependencies` in {} must be a list of strings",
            display_path(path)
        )));
    };
    list.iter()
        .map(|d| {
            d.as_str().map(str::to_string).ok_or_else(|| {
                Fail::usage(format!("`[project] dependencies` in {} must be a list of strings", display_path(path)))
            })
        })
        .collect()
}

/// Exact pins (`name==version ; marker`) from a PEP 751 `pylock.toml`.
pub(crate) fn pylock_pins(path: &Path) -> Result<Vec<String>, Fail> {
    let text = fs::read_to_string(path).map_err(|e| Fail::usage(format!("cannot read {}: {e}", display_path(path))))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Fail::usage(format!("{} is not valid TOML: {}", display_path(path), e.message())))?;
    let packages = table.get("packages").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    let mut pins = Vec::new();
    for pkg in packages {
        let name = pkg.get("name").and_then(toml::Value::as_str);
        let version = pkg.get("version").and_then(toml::Value::as_str);
        let (Some(name), Some(version)) = (name, version) else {
            return Err(Fail::usage(format!(
                "{}: every [[packages]] entry needs `name` and `version` for labup to install it",
                display_path(path)
            )));
        };
        let marker = pkg.get("marker").and_then(toml::Value::as_str);
        pins.push(match marker {
            Some(m) => format!("{name}=={version} ; {m}"),
            None => format!("{name}=={version}"),
        });
    }
    Ok(pins)
}

/// Joins backslash continuations and drops comments and blank lines.
pub(crate) fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = match raw.find(" #").or_else(|| raw.trim_start().starts_with('#').then_some(0)) {
            Some(i) => &raw[..i],
            None => raw,
        };
        if let Some(stripped) = line.trim_end().strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let done = current.trim().to_string();
        if !done.is_empty() {
            out.push(done);
        }
        current.clear();
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// `--opt value`, `--opt=value`, `-r value` → (opt, value).
fn split_option(line: &str) -> Option<(String, Option<String>)> {
    if !line.starts_with('-') {
        return None;
    }
    Some(match line.find(['=', ' ', '\t']) {
        Some(i) => (line[..i].to_string(), Some(line[i + 1..].trim().to_string()).filter(|v| !v.is_empty())),
        None => (line.to_string(), None),
    })
}

fn collect_includes(file: &Path, seen: &mut BTreeSet<PathBuf>, out: &mut Vec<PathBuf>) {
    if !seen.insert(file.to_path_buf()) {
        return;
    }
    out.push(file.to_path_buf());
    let Ok(text) = fs::read_to_string(file) else {
        return;
    };
    let dir = file.parent().unwrap_or(Path::new("."));
    for line in logical_lines(&text) {
        if let Some((opt, Some(value))) = split_option(&line) {
            if matches!(opt.as_str(), "-r" | "--requirement" | "-c" | "--constraint") {
                collect_includes(&dir.join(value), seen, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        Config::load(dir).unwrap()
    }

    #[test]
    fn auto_detects_requirement_files_and_pyproject() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("requirements.txt"), "a\n").unwrap();
        fs::write(d.join("requirements-dev.txt"), "b\n").unwrap();
        fs::write(d.join("pyproject.toml"), "[project]\nname='x'\ndependencies=['c>=1']\n").unwrap();
        fs::write(d.join("notes.txt"), "").unwrap();
        let s = Sources::detect(&config(d)).unwrap();
        assert_eq!(s.requirement_files, [d.join("requirements-dev.txt"), d.join("requirements.txt")]);
        assert_eq!(s.pyproject, Some(d.join("pyproject.toml")));
        assert_eq!(s.describe(d), "requirements-dev.txt, requirements.txt, pyproject.toml, jupyterlab");
    }

    #[test]
    fn a_pyproject_with_a_build_system_is_a_package_unless_uv_says_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pkg = |toml: &str| {
            fs::write(d.join("pyproject.toml"), toml).unwrap();
            project_package(&d.join("pyproject.toml"))
        };
        let bs = "[build-system]\nrequires=['hatchling']\nbuild-backend='hatchling.build'\n";
        let got = pkg(&format!("[project]\nname='My_Pkg'\n{bs}")).unwrap().unwrap();
        assert_eq!(got, Package { name: "my-pkg".into(), dir: d.to_path_buf() });
        assert_eq!(pkg("[project]\nname='app'\ndependencies=[]\n").unwrap(), None, "uv init's app: no build system");
        assert_eq!(pkg(&format!("[project]\nname='x'\n{bs}[tool.uv]\npackage=false\n")).unwrap(), None);
        assert!(pkg("[project]\nname='x'\n[tool.uv]\npackage=true\n").unwrap().is_some());
        let e = pkg(&format!("[project]\nversion='1'\n{bs}")).unwrap_err();
        assert!(e.message.contains("no `[project] name`"), "{}", e.message);
        assert!(matches!(e.exit, crate::error::Exit::Usage));

        // Detected with the pyproject, even without dependencies, and its file is an input.
        fs::write(d.join("pyproject.toml"), format!("[project]\nname='x'\n{bs}")).unwrap();
        let s = Sources::detect(&config(d)).unwrap();
        assert_eq!(s.pyproject, None);
        assert_eq!(s.project_package.as_ref().map(|p| p.name.as_str()), Some("x"));
        assert!(s.files().contains(&d.join("pyproject.toml")));
    }

    #[test]
    fn jupyter_brings_jupyterlab_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(Sources::detect(&config(d)).unwrap().packages, ["jupyterlab"], "the default runs Jupyter");
        fs::write(d.join("labup.toml"), "[python]\npackages=['JupyterLab>=4.2']\n").unwrap();
        assert_eq!(Sources::detect(&config(d)).unwrap().packages, ["JupyterLab>=4.2"]);
        fs::write(d.join("labup.toml"), "[services.web]\ncommand=['x']\n").unwrap();
        assert!(Sources::detect(&config(d)).unwrap().packages.is_empty(), "no Jupyter declared");
        fs::write(d.join("labup.toml"), "[services.nb]\nkind='jupyter'\nenabled=false\n").unwrap();
        assert!(Sources::detect(&config(d)).unwrap().packages.is_empty(), "Jupyter switched off");
    }

    #[test]
    fn uv_lock_takes_over_pyproject() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("pyproject.toml"), "[project]\nname='x'\ndependencies=['c']\n").unwrap();
        fs::write(d.join("uv.lock"), "version = 1\n").unwrap();
        let s = Sources::detect(&config(d)).unwrap();
        assert_eq!(s.pyproject, None);
        assert_eq!(s.uv_lock, Some(d.join("uv.lock")));
        assert_eq!(s.files(), [d.join("uv.lock"), d.join("pyproject.toml")]);
    }

    #[test]
    fn pyproject_without_dependencies_is_not_an_input() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("pyproject.toml"), "[tool.black]\nline-length = 90\n").unwrap();
        fs::write(dir.path().join("labup.toml"), "[services.web]\ncommand=['x']\n").unwrap();
        assert!(Sources::detect(&config(dir.path())).unwrap().is_empty());
    }

    #[test]
    fn listed_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("labup.toml"), "[python]\nrequirements=['reqs/base.txt']\n").unwrap();
        let e = Sources::detect(&config(dir.path())).unwrap_err();
        assert!(e.message.contains("reqs/base.txt"), "{}", e.message);
    }

    #[test]
    fn includes_are_followed_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("reqs")).unwrap();
        fs::write(d.join("requirements.txt"), "-r reqs/base.txt\n--constraint=reqs/c.txt\n").unwrap();
        fs::write(d.join("reqs/base.txt"), "-r base.txt\nnumpy\n").unwrap();
        fs::write(d.join("reqs/c.txt"), "numpy<3\n").unwrap();
        let s = Sources { requirement_files: vec![d.join("requirements.txt")], ..Sources::default() };
        assert_eq!(s.files(), [d.join("requirements.txt"), d.join("reqs/base.txt"), d.join("reqs/c.txt")]);
    }

    #[test]
    fn index_options_are_carried_and_rebased() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir(d.join("reqs")).unwrap();
        fs::write(d.join("requirements.txt"), "--no-index\n-f ./wheels  # local\n-r reqs/more.txt\nalpha\n").unwrap();
        fs::write(
            d.join("reqs/more.txt"),
            "--find-links=../wheels\n--extra-index-url https://example.org/simple\nbeta\n",
        )
        .unwrap();
        let s = Sources { requirement_files: vec![d.join("requirements.txt")], ..Sources::default() };
        assert_eq!(
            s.carried_options(d),
            ["--no-index", "--find-links ./wheels", "--extra-index-url https://example.org/simple"]
        );
    }

    #[test]
    fn local_package_build_files_are_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for pkg in ["mypkg", "other", "third", "wheels"] {
            fs::create_dir(d.join(pkg)).unwrap();
        }
        fs::write(
            d.join("requirements.txt"),
            format!(
                "-e ./mypkg\n./other[extra] ; python_version > '3'\nthird @ file://{}/third\n--find-links ./wheels\nalpha\n-e ./missing\n",
                d.display()
            ),
        )
        .unwrap();
        let s = Sources::detect(&config(d)).unwrap();
        let files = s.files();
        for pkg in ["mypkg", "other", "third"] {
            for f in ["pyproject.toml", "setup.cfg", "setup.py"] {
                assert!(files.contains(&d.join(pkg).join(f)), "{pkg}/{f} in {files:?}");
            }
        }
        assert!(
            !files.iter().any(|f| f.starts_with(d.join("wheels")) || f.starts_with(d.join("missing"))),
            "{files:?}"
        );
        assert_eq!(local_folder("-e mypkg @ file:///nonexistent/x", d), None);
        assert_eq!(local_folder(&format!("-e mypkg @ file://{}/mypkg", d.display()), d), Some(d.join("mypkg")));
    }

    #[test]
    fn logical_lines_join_continuations_and_drop_comments() {
        let text = "# top\nalpha==1 \\\n    --hash=sha256:x\n\nbeta  # why\n";
        assert_eq!(logical_lines(text), ["alpha==1      --hash=sha256:x", "beta"]);
    }

    #[test]
    fn pylock_pins_keep_markers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pylock.toml");
        fs::write(
            &p,
            "lock-version = '1.0'\n[[packages]]\nname='alpha'\nversion='1.0'\n[[packages]]\nname='colorama'\nversion='0.4.6'\nmarker=\"sys_platform == 'win32'\"\n",
        )
        .unwrap();
        assert_eq!(pylock_pins(&p).unwrap(), ["alpha==1.0", "colorama==0.4.6 ; sys_platform == 'win32'"]);
    }
}
