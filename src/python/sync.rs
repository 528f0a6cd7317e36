//! `labup sync` and `labup lock`: make the venv exactly the lock, doing nothing when nothing changed.
//!
//! Order matters for safety: resolve into a temporary file first (a failure changes nothing),
//! then build or reuse the venv, clear the marker, sync, commit the lock, write the marker last.
//! All of it runs under an exclusive lock in the state folder, outside the venv.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::engine::{self, Engine};
use super::fingerprint::{self, Marker};
use super::interpreter::{self, Info, Interpreter};
use super::lockfile;
use super::sources::{self, Sources};
use super::venv;
use crate::config::{display_path, Config};
use crate::error::Fail;
use crate::fsutil::{self, LockFile};
use crate::gpu::{self, torch};
use crate::project::{self, Layout};
use crate::ui::{count, Ui};

/// What `labup sync` did, as printed by `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Outcome {
    /// `noop`, `created` or `synced`.
    pub action: &'static str,
    /// Distributions installed (an upgrade counts as one removed and one installed).
    pub installed: usize,
    /// Distributions removed.
    pub removed: usize,
    /// The interpreter's version.
    pub python: String,
    /// The venv folder.
    pub venv: PathBuf,
    /// Wall time.
    pub duration_ms: u128,
}

/// What `labup lock` wrote, as printed by `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LockOutcome {
    /// The lock file.
    pub lock: PathBuf,
    /// Pins in it.
    pub packages: usize,
    /// Whether its content changed.
    pub changed: bool,
}

/// Everything a slow-path run needs, found once.
struct Workspace<'a> {
    config: &'a Config,
    layout: &'a Layout,
    ui: &'a Ui,
    sources: Sources,
    interp: Interpreter,
    tmp: PathBuf,
    /// The PyTorch index, when torch is an input or `[python] torch` is set.
    torch: Option<torch::Choice>,
    /// Where the installer looks for torch (with `torch`).
    route: Option<torch::Route>,
}

/// The config with `[python] lock` naming this torch backend's lock (`requirements.cu126.lock`;
/// unchanged without torch).
pub fn for_backend<'a>(config: &'a Config, backend: Option<&str>) -> Cow<'a, Config> {
    let lock = lockfile::path_for_backend(&config.python.lock, backend);
    if lock == config.python.lock {
        return Cow::Borrowed(config);
    }
    let mut c = config.clone();
    c.python.lock = lock;
    Cow::Owned(c)
}

/// The fast check: the marker's fingerprint matches and the venv is healthy.
pub fn up_to_date(config: &Config, interp: &Interpreter, sources: &Sources, torch: Option<&str>) -> Option<Marker> {
    let config = &*for_backend(config, torch);
    let venv = &config.python.venv;
    let marker = fingerprint::read(venv)?;
    let venv::State::Venv(cfg) = venv::inspect(venv) else {
        return None;
    };
    if !cfg.home.is_dir() || fs::metadata(venv.join("bin/python")).is_err() {
        return None;
    }
    if venv::site_packages(venv).and_then(|p| fsutil::stamp(&p)) != marker.site_packages {
        return None;
    }
    (fingerprint::compute(config, interp, sources, torch) == marker.fingerprint).then_some(marker)
}

/// Syncs the venv; `locked` refuses to re-resolve a stale lock.
pub fn sync(workspace: &project::Workspace, locked: bool, ui: &Ui) -> Result<Outcome> {
    let started = Instant::now();
    let config = &workspace.config;
    let sources = Sources::detect(config)?;
    let interp = interpreter::for_venv(config.python.version.as_deref(), &config.python.venv)?;
    let torch = gpu::torch_for_sync(workspace, &sources);
    let backend = torch.as_ref().map(|c| c.backend.clone());
    let noop = |m: Marker| Outcome {
        action: "noop",
        installed: 0,
        removed: 0,
        python: m.python,
        venv: config.python.venv.clone(),
        duration_ms: started.elapsed().as_millis(),
    };
    if let Some(marker) = up_to_date(config, &interp, &sources, backend.as_deref()) {
        return Ok(noop(marker));
    }
    let base = config;
    let config = &*for_backend(base, backend.as_deref());
    let ws = Workspace::new(config, &workspace.layout, ui, sources, interp, torch)?;
    let _guard = ws.lock()?;
    if let Some(marker) = up_to_date(base, &ws.interp, &ws.sources, backend.as_deref()) {
        return Ok(noop(marker));
    }
    if let (Some(c), Some(route)) = (&ws.torch, &ws.route) {
        ui.info(match route {
            torch::Route::Yours(what) => format!("torch from your own index settings ({what})"),
            torch::Route::Pypi => format!("torch from PyPI's own wheels: {}", c.reason),
            _ => format!("torch from the `{}` index, {}: {}", c.backend, route.describe(), c.reason),
        });
    }
    ws.sync(locked, started)
}

/// Rewrites the lock from the requirement sources (`upgrade`: ignore current pins).
pub fn lock(workspace: &project::Workspace, upgrade: bool, ui: &Ui) -> Result<LockOutcome> {
    let config = &workspace.config;
    let sources = Sources::detect(config)?;
    let interp = interpreter::for_venv(config.python.version.as_deref(), &config.python.venv)?;
    let torch = gpu::torch_for_sync(workspace, &sources);
    let config = &*for_backend(config, torch.as_ref().map(|c| c.backend.as_str()));
    let ws = Workspace::new(config, &workspace.layout, ui, sources, interp, torch)?;
    let lock_path = &config.python.lock;
    if ws.sources.is_empty() {
        ui.info("no requirements found (requirements*.txt, pyproject.toml, uv.lock, pylock.toml, [python] packages): nothing to lock");
        return Ok(LockOutcome { lock: lock_path.clone(), packages: 0, changed: false });
    }
    let _guard = ws.lock()?;
    let info = ws.query_interpreter()?;
    let engine = Engine::detect(config.python.installer)?;
    let text = ws.resolve(&engine, &info, upgrade)?;
    let old = fs::read_to_string(lock_path).ok();
    let changed = old.as_deref() != Some(text.as_str());
    if changed {
        fsutil::atomic_write(lock_path, text.as_bytes())?;
    }
    let packages = lockfile::package_count(&text);
    ui.info(format!(
        "{} {} {} ({})",
        ui.paint("✓", "32"),
        if changed { "Wrote" } else { "Unchanged:" },
        display_path(lock_path),
        count(packages, "package")
    ));
    Ok(LockOutcome { lock: lock_path.clone(), packages, changed })
}

impl<'a> Workspace<'a> {
    fn new(
        config: &'a Config,
        layout: &'a Layout,
        ui: &'a Ui,
        sources: Sources,
        interp: Interpreter,
        torch: Option<torch::Choice>,
    ) -> Result<Workspace<'a>> {
        let tmp = layout.ensure(layout.tmp())?;
        let route = torch.as_ref().map(|c| gpu::torch_route(config, &sources, &c.backend));
        Ok(Workspace { config, layout, ui, sources, interp, tmp, torch, route })
    }

    /// The torch backend to pass to the installer.
    fn backend(&self) -> Option<&str> {
        self.torch.as_ref().map(|c| c.backend.as_str())
    }

    /// Takes the exclusive sync lock, saying so when another labup holds it.
    fn lock(&self) -> Result<LockFile> {
        LockFile::acquire(&self.layout.sync_lock(), |pid| {
            let who = pid.map_or("another labup".to_string(), |p| format!("another labup (pid {p})"));
            self.ui.info(format!("waiting for {who} to finish with {}…", display_path(&self.config.python.venv)));
        })
    }

    fn query_interpreter(&self) -> Result<Info> {
        let step = self.ui.step(format!("Checking {}", self.interp.path.display()));
        let info = self.interp.query();
        step.abandon();
        let info = info?;
        interpreter::check_version(&self.interp, &info, self.config.python.version.as_deref())?;
        Ok(info)
    }

    fn sync(&self, locked: bool, started: Instant) -> Result<Outcome> {
        let (config, ui) = (self.config, self.ui);
        let venv_dir = &config.python.venv;
        venv::remove_leftovers(venv_dir);
        // Older labups kept their temporary lock files beside the lock: labup's own names only.
        for old in ["labup-new", "labup-resolve"] {
            let _ = fs::remove_file(fsutil::sibling(&config.python.lock, old));
        }
        let info = self.query_interpreter()?;
        let engine = Engine::detect(config.python.installer)?;

        let rebuild = match venv::inspect(venv_dir) {
            venv::State::Foreign(why) => return Err(venv::refuse(venv_dir, &why).into()),
            venv::State::Missing => Some(None),
            venv::State::Venv(cfg) => venv::rebuild_reason(&cfg, &info.executable, &info.version, venv_dir).map(Some),
        };

        let new_lock = self.lock_text(&engine, &info, locked)?;

        if let Some(reason) = &rebuild {
            let what = if reason.is_some() { "Rebuilding" } else { "Creating" };
            let step = ui.step(format!("{what} {}", display_path(venv_dir)));
            if let Some(reason) = reason {
                ui.info(format!("rebuilding {}: {reason}", display_path(venv_dir)));
            }
            let built = venv::build(venv_dir, |dest| {
                engine::run(ui, &engine.create_venv(&self.interp, dest), "creating the venv")?;
                interpreter::remember(dest, &self.interp)
            });
            match built {
                Ok(()) => step.done(format!(
                    "Created {} with Python {} ({})",
                    display_path(venv_dir),
                    info.version,
                    engine.name()
                )),
                Err(e) => {
                    step.abandon();
                    return Err(e);
                }
            }
        }

        // The installers read a copy in `.labup/tmp` (its relative `--find-links` made absolute),
        // so an interrupted sync leaves nothing in the project; the lock is written only once the
        // sync succeeded.
        let lock_dir = config.python.lock.parent().unwrap_or(&config.root).to_path_buf();
        let sync_from = match (&new_lock, self.sources.is_empty()) {
            (Some(text), _) => self.write_tmp("lock-pending.txt", &lockfile::relocated(text, &lock_dir))?,
            (None, true) => self.write_tmp("empty.txt", "")?,
            (None, false) => config.python.lock.clone(),
        };
        let (installed, removed) = self.install(&engine, &sync_from)?;
        if let Some(text) = &new_lock {
            fsutil::atomic_write(&config.python.lock, text.as_bytes())?;
        }
        let packages = venv::installed(venv_dir).len();
        // Venvs built before labup remembered their interpreter learn it here.
        interpreter::remember(venv_dir, &self.interp)?;
        // The first import of a top-level module (six.py, typing_extensions.py) makes
        // site-packages/__pycache__, which changes the folder's stamp: made now, a server's first
        // run does not turn the next sync into a re-sync.
        if let Some(site) = venv::site_packages(venv_dir) {
            let _ = fs::create_dir_all(site.join("__pycache__"));
        }
        fingerprint::write(
            venv_dir,
            &Marker {
                labup: env!("CARGO_PKG_VERSION").into(),
                fingerprint: fingerprint::compute(config, &self.interp, &self.sources, self.backend()),
                python: info.version.clone(),
                interpreter: self.interp.path.clone(),
                installer: engine.name().into(),
                packages,
                site_packages: venv::site_packages(venv_dir).and_then(|p| fsutil::stamp(&p)),
            },
        )?;
        Ok(Outcome {
            action: if rebuild.is_some() { "created" } else { "synced" },
            installed,
            removed,
            python: info.version,
            venv: venv_dir.clone(),
            duration_ms: started.elapsed().as_millis(),
        })
    }

    /// The new lock text when the current one is missing or stale (`None`: it is current).
    fn lock_text(&self, engine: &Engine, info: &Info, locked: bool) -> Result<Option<String>> {
        if self.sources.is_empty() {
            return Ok(None);
        }
        let lock_path = &self.config.python.lock;
        let digest = lockfile::inputs_digest(&self.sources, self.config, self.backend());
        let current = fs::read_to_string(lock_path).ok();
        if current.as_deref().and_then(lockfile::digest_of) == Some(digest.as_str()) {
            return Ok(None);
        }
        if locked {
            let (what, why) = match current {
                None => ("is missing", "there is none"),
                Some(_) => ("is out of date", "the requirements changed since it was written"),
            };
            return Err(Fail::new(format!(
                "{} {what} and `--locked` forbids resolving: {why} ({})",
                display_path(lock_path),
                self.sources.describe(&self.config.root)
            ))
            .hint(match self.backend().filter(|b| *b != "pypi") {
                // Each torch backend has its own lock: this machine's may never have been made.
                Some(b) => format!(
                    "run `labup lock` on a machine that picks the `{b}` torch index (or anywhere with \
                     `[python] torch = \"{b}\"` in labup.local.toml) and commit {}",
                    display_path(lock_path)
                ),
                None => "run `labup lock` and commit the lock file".into(),
            })
            .into());
        }
        self.resolve(engine, info, false).map(Some)
    }

    /// Resolves the sources into lock text, in temporary files only.
    fn resolve(&self, engine: &Engine, info: &Info, upgrade: bool) -> Result<String> {
        let (config, ui) = (self.config, self.ui);
        let lock_path = &config.python.lock;
        let described = self.sources.describe(&config.root);
        let step = ui.step(format!("Resolving {described}"));
        let result = (|| -> Result<String> {
            let mut inputs = String::new();
            for file in &self.sources.requirement_files {
                inputs.push_str(&format!("-r {}\n", file.display()));
            }
            if let Some(p) = &self.sources.pyproject {
                for dep in sources::pyproject_dependencies(p)? {
                    inputs.push_str(&dep);
                    inputs.push('\n');
                }
            }
            if let Some(uv_lock) = &self.sources.uv_lock {
                let out = self.tmp.join("uv-lock-export.txt");
                engine::run(ui, &engine.export_uv_lock(uv_lock, &out)?, "reading uv.lock (`uv export`)")?;
                inputs.push_str(&format!("-r {}\n", out.display()));
            }
            for p in &self.sources.pylocks {
                for pin in sources::pylock_pins(p)? {
                    inputs.push_str(&pin);
                    inputs.push('\n');
                }
            }
            for p in &self.sources.packages {
                inputs.push_str(p);
                inputs.push('\n');
            }
            let inputs_file = self.write_tmp("inputs.in", &inputs)?;
            // In `.labup/tmp`: an interrupted resolution leaves nothing in the project.
            let out = self.tmp.join("lock-resolve.txt");
            let _ = fs::remove_file(&out);
            let lock_dir = lock_path.parent().unwrap_or(&config.root);
            if !upgrade && matches!(engine, Engine::Uv(_)) {
                // uv keeps the versions already in the output file unless told to upgrade.
                if let Ok(current) = fs::read_to_string(lock_path) {
                    fs::write(&out, lockfile::relocated(&current, lock_dir))?;
                }
            }
            let minor = match &config.python.version {
                Some(v) => interpreter::minor_of(v).to_string(),
                None => interpreter::minor_of(&info.version).to_string(),
            };
            let compiled = engine::run(
                ui,
                &self.at_root(engine.compile(&self.interp, &minor, &inputs_file, &out, upgrade, self.route.as_ref())),
                "resolving the requirements",
            )
            .map_err(|e| with_hint(e, &described, lock_path, "resolution"))
            .and_then(|_| fs::read_to_string(&out).with_context(|| format!("failed to read {}", out.display())));
            let _ = fs::remove_file(&out);
            let raw = compiled?;
            let body = match engine {
                Engine::Uv(_) => raw,
                Engine::Pip => {
                    let lock = engine::pip_report_to_lock(&raw)?;
                    if !lock.unhashed.is_empty() {
                        let names: Vec<&str> = lock.unhashed.iter().map(|(n, _)| n.as_str()).collect();
                        ui.info(format!(
                            "not hashed: {} (pip has no single file to hash for a local folder or a VCS \
                             checkout; installed from that source, see the comments in {})",
                            names.join(", "),
                            display_path(lock_path)
                        ));
                    }
                    lock.body
                }
            };
            let digest = lockfile::inputs_digest(&self.sources, config, self.backend());
            Ok(lockfile::render(&digest, &self.sources.carried_options(lock_dir), &body))
        })();
        match &result {
            Ok(text) => {
                step.done(format!("Resolved {} from {described}", count(lockfile::package_count(text), "package")));
            }
            Err(_) => step.abandon(),
        }
        result
    }

    /// Makes the venv exactly `lock`; returns (installed, removed) counts.
    fn install(&self, engine: &Engine, lock: &Path) -> Result<(usize, usize)> {
        let (config, ui) = (self.config, self.ui);
        let venv_dir = &config.python.venv;
        let step = ui.step(format!("Syncing {}", display_path(venv_dir)));
        fingerprint::clear(venv_dir)?;
        let before = venv::installed(venv_dir);
        let described = self.sources.describe(&config.root);
        let package = self.sources.project_package.as_ref();
        let result = self
            .run_install(engine, lock)
            .map_err(|e| with_hint(e, &described, &config.python.lock, "install"))
            .and_then(|_| {
                if *engine != Engine::Pip {
                    return Ok(());
                }
                // pip installs; removing what the lock does not name is labup's part. A path
                // installed without a name (`-e ./pkg`, from a uv lock) keeps every direct install;
                // the project's own package is kept too. An unreadable lock removes nothing.
                let text = fs::read_to_string(lock).with_context(|| format!("failed to read {}", lock.display()))?;
                let (mut wanted, unnamed) = lockfile::names(&text);
                wanted.extend(package.map(|p| p.name.clone()));
                let direct = if unnamed { venv::direct_installs(venv_dir) } else { Default::default() };
                let extra: Vec<String> = venv::installed(venv_dir)
                    .into_keys()
                    .filter(|n| !wanted.contains(n) && !direct.contains(n))
                    .collect();
                if extra.is_empty() {
                    return Ok(());
                }
                engine::run(
                    ui,
                    &self.at_root(Engine::pip_uninstall(&self.interp, venv_dir, &extra)),
                    "removing packages not in the lock",
                )
                .map(drop)
            });
        if let Err(e) = result {
            step.abandon();
            return Err(e);
        }
        let after = venv::installed(venv_dir);
        let (installed, removed) = diff(&before, &after);
        if installed + removed == 0 {
            step.done(format!("{} matches the lock ({})", display_path(venv_dir), count(after.len(), "package")));
        } else {
            step.done(format!(
                "Installed {installed}, removed {removed} ({} in the venv)",
                count(after.len(), "package")
            ));
        }
        Ok((installed, removed))
    }

    /// Runs the installer on `lock`. pip's hash-checking mode wants a hash on every line of a
    /// file or on none, and folders and VCS checkouts have none: pip installs the hashed entries
    /// with their hashes checked, then the others from their sources (both `--no-deps`: the lock
    /// is complete).
    fn run_install(&self, engine: &Engine, lock: &Path) -> Result<()> {
        let venv_dir = &self.config.python.venv;
        let package = self.sources.project_package.as_ref();
        if *engine != Engine::Pip {
            let mut cmd = self.at_root(engine.sync(&self.interp, venv_dir, lock, self.route.as_ref()));
            if let Some(pkg) = package {
                // The project itself, editable, in the same exact sync: uv keeps it.
                let file = self.write_tmp("project-editable.txt", &Engine::editable_requirement(&pkg.dir))?;
                cmd.args.push(file.display().to_string());
            }
            return engine::run(self.ui, &cmd, "installing into the venv").map(drop);
        }
        let text = fs::read_to_string(lock).with_context(|| format!("failed to read {}", lock.display()))?;
        let lock_dir = self.config.python.lock.parent().unwrap_or(&self.config.root);
        let (hashed, plain, n_hashed, n_plain) = lockfile::split_for_pip(&text, lock_dir);
        for (name, part, n) in [("pip-hashed.txt", hashed, n_hashed), ("pip-sources.txt", plain, n_plain)] {
            if n == 0 {
                continue;
            }
            let file = self.write_tmp(name, &part)?;
            let cmd = self.at_root(engine.sync(&self.interp, venv_dir, &file, self.route.as_ref()));
            engine::run(self.ui, &cmd, "installing into the venv")?;
        }
        if let Some(pkg) = package {
            let cmd = self.at_root(Engine::pip_editable(&self.interp, venv_dir, &pkg.dir));
            engine::run(self.ui, &cmd, &format!("installing the project `{}` (editable)", pkg.name))?;
        }
        Ok(())
    }

    /// Installers run in the project folder: relative paths in requirement files and in the
    /// lock (`-e ./pkg`, as uv writes them) are relative to it, wherever labup was started.
    fn at_root(&self, mut cmd: engine::Cmd) -> engine::Cmd {
        cmd.cwd = Some(self.config.root.clone());
        cmd
    }

    fn write_tmp(&self, name: &str, text: &str) -> Result<PathBuf> {
        let path = self.tmp.join(name);
        fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
        Ok(path)
    }
}

/// (installed, removed) between two installed sets; a version change counts once each way.
pub fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> (usize, usize) {
    let installed = after.iter().filter(|(n, v)| before.get(*n) != Some(*v)).count();
    let removed = before.iter().filter(|(n, v)| after.get(*n) != Some(*v)).count();
    (installed, removed)
}

/// Adds the hint that fits an installer failure, saying what was left untouched.
fn with_hint(err: anyhow::Error, sources: &str, lock: &Path, stage: &str) -> anyhow::Error {
    let text = format!("{err:#}");
    let kept = match stage {
        "resolution" => format!("the venv and {} were left as they were", display_path(lock)),
        _ => "the venv is not marked as synced, so the next `labup sync` repairs it".to_string(),
    };
    let hint = match engine::classify(&text) {
        Some("network") => {
            format!("check the network connection or the index in your requirements; {kept}")
        }
        Some(_) => format!("check the package names and versions in {sources}; {kept}"),
        None => format!("run again with `-v` to see the installer's output; {kept}"),
    };
    match err.downcast::<Fail>() {
        Ok(fail) => fail.hint(hint).into(),
        Err(other) => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&str, &str)]) -> BTreeMap<String, String> {
        items.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn diff_counts_upgrades_both_ways() {
        let before = set(&[("alpha", "1.0"), ("beta", "1.0"), ("gone", "1")]);
        let after = set(&[("alpha", "2.0"), ("beta", "1.0"), ("new", "1")]);
        assert_eq!(diff(&before, &after), (2, 2));
        assert_eq!(diff(&after, &after), (0, 0));
        assert_eq!(diff(&BTreeMap::new(), &after), (3, 0));
    }
}
