//! `labup sync` and `labup lock`: make the venv exactly the lock, doing nothing when nothing changed.
//!
//! The decisions are the [`Plan`](super::plan::Plan) (made once, under the lock); this module
//! executes it. Order matters for safety: resolve into a temporary file first (a failure changes
//! nothing), then build or reuse the venv, clear the marker, sync, commit the lock, write the
//! marker last. All of it runs under an exclusive lock in the state folder, outside the venv.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::engine::{self, Engine};
use super::fingerprint::{self, Marker};
use super::interpreter::{self, Info, Interpreter};
use super::lockfile;
use super::plan::{Changes, LockPlan, Planner, Staleness, VenvPlan, Work};
use super::sources::{self, Sources};
use super::venv;
use crate::config::{display_path, Config};
use crate::error::{Error, Stage};
use crate::fsutil::{self, LockFile};
use crate::gpu::torch;
use crate::project::Workspace;
use crate::ui::{count, Ui};

/// What `labup sync` did, as printed by `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// `noop`, `created` or `synced`.
    pub(crate) action: Done,
    /// Distributions installed (an upgrade counts as one removed and one installed).
    pub(crate) installed: usize,
    /// Distributions removed.
    pub(crate) removed: usize,
    /// The interpreter's version.
    pub(crate) python: String,
    /// The venv folder.
    pub(crate) venv: PathBuf,
    /// Wall time.
    pub(crate) duration_ms: u128,
}

/// What a sync did to the venv.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Done {
    /// Nothing: it matched.
    Noop,
    /// Built it (new, or rebuilt), then synced.
    Created,
    /// Synced the venv that was there.
    Synced,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Done::Noop => "noop",
            Done::Created => "created",
            Done::Synced => "synced",
        })
    }
}

/// What `labup lock` wrote, as printed by `--json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct LockOutcome {
    /// The lock file.
    pub(crate) lock: PathBuf,
    /// Pins in it.
    pub(crate) packages: usize,
    /// Whether its content changed.
    pub(crate) changed: bool,
}

/// The config with `[python] lock` naming this torch backend's lock (`requirements.cu126.lock`;
/// unchanged without torch).
pub(crate) fn for_backend<'a>(config: &'a Config, backend: Option<&torch::Backend>) -> Cow<'a, Config> {
    let lock = lockfile::path_for_backend(&config.python.lock, backend);
    if lock == config.python.lock {
        return Cow::Borrowed(config);
    }
    let mut c = config.clone();
    c.python.lock = lock;
    Cow::Owned(c)
}

/// The fast check: the marker's fingerprint matches and the venv is healthy.
pub(crate) fn up_to_date(
    config: &Config,
    interp: &Interpreter,
    sources: &Sources,
    torch: Option<&torch::Backend>,
) -> Option<Marker> {
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
pub(crate) fn sync(ws: &Workspace, locked: bool, ui: &Ui) -> Result<Outcome> {
    let started = Instant::now();
    let planner = Planner::new(ws)?;
    let noop = |m: Marker| Outcome {
        action: Done::Noop,
        installed: 0,
        removed: 0,
        python: m.python,
        venv: ws.config.python.venv.clone(),
        duration_ms: started.elapsed().as_millis(),
    };
    if let Some(marker) = planner.up_to_date() {
        return Ok(noop(marker));
    }
    let run = Run::new(&planner, ui)?;
    let _guard = run.lock()?;
    // Made under the lock: another labup may have synced while this one waited.
    let plan = planner.plan(Some(ui))?;
    match plan.work {
        Work::Nothing(marker) => Ok(noop(marker)),
        Work::Sync(changes) => run.execute(plan.lock, changes, locked, started),
    }
}

/// Rewrites the lock from the requirement sources (`upgrade`: ignore current pins).
pub(crate) fn lock(ws: &Workspace, upgrade: bool, ui: &Ui) -> Result<LockOutcome> {
    let planner = Planner::new(ws)?;
    let run = Run::new(&planner, ui)?;
    let lock_path = &planner.config.python.lock;
    if planner.sources.is_empty() {
        ui.info("no requirements found (requirements*.txt, pyproject.toml, uv.lock, pylock.toml, [python] packages): nothing to lock");
        return Ok(LockOutcome { lock: lock_path.clone(), packages: 0, changed: false });
    }
    let _guard = run.lock()?;
    let info = planner.check_interpreter(Some(ui))?;
    let engine = Engine::detect(planner.config.python.installer)?;
    let text = run.resolve(&engine, &info, upgrade)?;
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

/// A slow-path run: the planner's facts, the output, and the temporary folder.
struct Run<'a> {
    planner: &'a Planner<'a>,
    config: &'a Config,
    sources: &'a Sources,
    interp: &'a Interpreter,
    ui: &'a Ui,
    tmp: PathBuf,
}

impl<'a> Run<'a> {
    fn new(planner: &'a Planner<'a>, ui: &'a Ui) -> Result<Run<'a>> {
        let config = &*planner.config;
        let tmp = planner.layout.ensure(planner.layout.tmp())?;
        Ok(Run { planner, config, sources: &planner.sources, interp: &planner.interp, ui, tmp })
    }

    /// Takes the exclusive sync lock, saying so when another labup holds it.
    fn lock(&self) -> Result<LockFile> {
        LockFile::acquire(&self.planner.layout.sync_lock(), |pid| {
            let who = pid.map_or("another labup".to_string(), |p| format!("another labup (pid {p})"));
            self.ui.info(format!("waiting for {who} to finish with {}…", display_path(&self.config.python.venv)));
        })
    }

    /// Carries out a plan's changes.
    fn execute(&self, lock: LockPlan, changes: Changes, locked: bool, started: Instant) -> Result<Outcome> {
        let config = self.config;
        let venv_dir = &config.python.venv;
        self.say_torch();
        venv::remove_leftovers(venv_dir);
        // Older labups kept their temporary lock files beside the lock: labup's own names only.
        for old in ["labup-new", "labup-resolve"] {
            let _ = fs::remove_file(fsutil::sibling(&config.python.lock, old));
        }
        let engine = Engine::detect(config.python.installer)?;
        let new_lock = self.lock_text(&engine, &changes.python, lock, locked)?;
        if changes.venv != VenvPlan::Keep {
            self.build_venv(&engine, &changes.venv, &changes.python)?;
        }
        // The installers read a copy in `.labup/tmp` (its relative `--find-links` made absolute),
        // so an interrupted sync leaves nothing in the project; the lock is written only once the
        // sync succeeded.
        let lock_dir = config.python.lock.parent().unwrap_or(&config.root).to_path_buf();
        let sync_from = match (&new_lock, lock) {
            (Some(text), _) => self.write_tmp("lock-pending.txt", &lockfile::relocated(text, &lock_dir))?,
            (None, LockPlan::None) => self.write_tmp("empty.txt", "")?,
            (None, _) => config.python.lock.clone(),
        };
        let (installed, removed) = self.install(&engine, &sync_from)?;
        if let Some(text) = &new_lock {
            fsutil::atomic_write(&config.python.lock, text.as_bytes())?;
        }
        self.mark_synced(&engine, &changes.python)?;
        Ok(Outcome {
            action: if changes.venv == VenvPlan::Keep { Done::Synced } else { Done::Created },
            installed,
            removed,
            python: changes.python.version,
            venv: venv_dir.clone(),
            duration_ms: started.elapsed().as_millis(),
        })
    }

    /// Says where torch comes from, when it is an input.
    fn say_torch(&self) {
        let Some(t) = self.planner.torch() else { return };
        let c = &t.choice;
        self.ui.info(match &t.route {
            torch::Route::Yours(what) => format!("torch from your own index settings ({what})"),
            torch::Route::Pypi => format!("torch from PyPI's own wheels: {}", c.reason),
            route => format!("torch from the `{}` index, {}: {}", c.backend, route.describe(), c.reason),
        });
    }

    /// Creates the venv, or rebuilds it beside the old one and swaps it in.
    fn build_venv(&self, engine: &Engine, plan: &VenvPlan, info: &Info) -> Result<()> {
        let (ui, venv_dir) = (self.ui, &self.config.python.venv);
        let what = if matches!(plan, VenvPlan::Rebuild(_)) { "Rebuilding" } else { "Creating" };
        let step = ui.step(format!("{what} {}", display_path(venv_dir)));
        if let VenvPlan::Rebuild(reason) = plan {
            ui.info(format!("rebuilding {}: {reason}", display_path(venv_dir)));
        }
        let built = venv::build(venv_dir, |dest| {
            engine::run(ui, &engine.create_venv(self.interp, dest), "creating the venv")?;
            interpreter::remember(dest, self.interp)
        });
        match built {
            Ok(()) => {
                let (venv, version, name) = (display_path(venv_dir), &info.version, engine.name());
                step.done(format!("Created {venv} with Python {version} ({name})"));
                Ok(())
            }
            Err(e) => {
                step.abandon();
                Err(e)
            }
        }
    }

    /// After the install: the interpreter remembered, then the marker, written last.
    fn mark_synced(&self, engine: &Engine, info: &Info) -> Result<()> {
        let venv_dir = &self.config.python.venv;
        let packages = venv::installed(venv_dir).len();
        // Venvs built before labup remembered their interpreter learn it here.
        interpreter::remember(venv_dir, self.interp)?;
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
                fingerprint: fingerprint::compute(self.config, self.interp, self.sources, self.planner.backend()),
                python: info.version.clone(),
                interpreter: self.interp.path.clone(),
                installer: engine.name().into(),
                packages,
                site_packages: venv::site_packages(venv_dir).and_then(|p| fsutil::stamp(&p)),
            },
        )
    }

    /// The new lock text when the plan says resolve (`None`: it is current, or there is none).
    fn lock_text(&self, engine: &Engine, info: &Info, lock: LockPlan, locked: bool) -> Result<Option<String>> {
        match lock {
            LockPlan::Current | LockPlan::None => Ok(None),
            LockPlan::Resolve(why) if locked => Err(Error::LockStale {
                lock: display_path(&self.config.python.lock),
                missing: why == Staleness::Missing,
                sources: self.sources.describe(&self.config.root),
                backend: self.planner.backend().filter(|b| b.is_pytorch_index()).map(torch::Backend::to_string),
            }
            .into()),
            LockPlan::Resolve(_) => self.resolve(engine, info, false).map(Some),
        }
    }

    /// Resolves the sources into lock text, in temporary files only.
    fn resolve(&self, engine: &Engine, info: &Info, upgrade: bool) -> Result<String> {
        let described = self.sources.describe(&self.config.root);
        let step = self.ui.step(format!("Resolving {described}"));
        let result = self.compile(engine, info, upgrade).and_then(|raw| self.lock_body(engine, raw));
        match &result {
            Ok(text) => {
                step.done(format!("Resolved {} from {described}", count(lockfile::package_count(text), "package")));
            }
            Err(_) => step.abandon(),
        }
        result
    }

    /// Every requirement source as one requirements file for the resolver.
    fn inputs_file(&self, engine: &Engine) -> Result<PathBuf> {
        let mut inputs = String::new();
        for file in &self.sources.requirement_files {
            inputs.push_str(&format!("-r {}\n", file.display()));
        }
        let mut lines = Vec::new();
        if let Some(p) = &self.sources.pyproject {
            lines.extend(sources::pyproject_dependencies(p)?);
        }
        if let Some(uv_lock) = &self.sources.uv_lock {
            let out = self.tmp.join("uv-lock-export.txt");
            engine::run(self.ui, &engine.export_uv_lock(uv_lock, &out)?, "reading uv.lock (`uv export`)")?;
            lines.push(format!("-r {}", out.display()));
        }
        for p in &self.sources.pylocks {
            lines.extend(sources::pylock_pins(p)?);
        }
        lines.extend(self.sources.packages.iter().cloned());
        for line in lines {
            inputs.push_str(&line);
            inputs.push('\n');
        }
        self.write_tmp("inputs.in", &inputs)
    }

    /// Runs the resolver: uv's lock text, or pip's JSON report.
    fn compile(&self, engine: &Engine, info: &Info, upgrade: bool) -> Result<String> {
        let config = self.config;
        let lock_path = &config.python.lock;
        // Reading uv.lock (`uv export`) is part of the resolution: its failure gets the same hint.
        let inputs_file = self.inputs_file(engine).map_err(|e| self.during(e, Stage::Resolution))?;
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
        let version = config.python.version.as_deref().unwrap_or(&info.version);
        let minor = interpreter::minor_of(version);
        let cmd = engine.compile(self.interp, minor, &inputs_file, &out, upgrade, self.planner.route());
        let compiled = engine::run(self.ui, &self.at_root(cmd), "resolving the requirements")
            .map_err(|e| self.during(e, Stage::Resolution))
            .and_then(|_| fs::read_to_string(&out).with_context(|| format!("failed to read {}", out.display())));
        let _ = fs::remove_file(&out);
        compiled
    }

    /// The lock text from the resolver's output (pip's report converted), headed by the digest.
    fn lock_body(&self, engine: &Engine, raw: String) -> Result<String> {
        let lock_path = &self.config.python.lock;
        let body = match engine {
            Engine::Uv(_) => raw,
            Engine::Pip => {
                let lock = engine::pip_report_to_lock(&raw)?;
                if !lock.unhashed.is_empty() {
                    let names: Vec<&str> = lock.unhashed.iter().map(|(n, _)| n.as_str()).collect();
                    self.ui.info(format!(
                        "not hashed: {} (pip has no single file to hash for a local folder or a VCS \
                         checkout; installed from that source, see the comments in {})",
                        names.join(", "),
                        display_path(lock_path)
                    ));
                }
                lock.body
            }
        };
        let lock_dir = lock_path.parent().unwrap_or(&self.config.root);
        let digest = lockfile::inputs_digest(self.sources, self.config, self.planner.backend());
        Ok(lockfile::render(&digest, &self.sources.carried_options(lock_dir), &body))
    }

    /// Makes the venv exactly `lock`; returns (installed, removed) counts.
    fn install(&self, engine: &Engine, lock: &Path) -> Result<(usize, usize)> {
        let venv_dir = &self.config.python.venv;
        let step = self.ui.step(format!("Syncing {}", display_path(venv_dir)));
        fingerprint::clear(venv_dir)?;
        let before = venv::installed(venv_dir);
        // The pip removal is part of the install: its failure gets the same hint.
        let result = self
            .run_install(engine, lock)
            .and_then(|_| match engine {
                Engine::Pip => self.pip_remove_extras(lock),
                Engine::Uv(_) => Ok(()),
            })
            .map_err(|e| self.during(e, Stage::Install));
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

    /// pip installs; removing what the lock does not name is labup's part. An unreadable lock
    /// is an error, so it never reads as "the lock names nothing" (which would remove everything).
    fn pip_remove_extras(&self, lock: &Path) -> Result<()> {
        let venv_dir = &self.config.python.venv;
        let text = fs::read_to_string(lock).with_context(|| format!("failed to read {}", lock.display()))?;
        let project = self.sources.project_package.as_ref().map(|p| p.name.as_str());
        let installed: Vec<String> = venv::installed(venv_dir).into_keys().collect();
        let extra = extras(&text, &installed, project, || venv::direct_installs(venv_dir));
        if extra.is_empty() {
            return Ok(());
        }
        let cmd = self.at_root(Engine::pip_uninstall(self.interp, venv_dir, &extra));
        engine::run(self.ui, &cmd, "removing packages not in the lock").map(drop)
    }

    /// Runs the installer on `lock`. pip's hash-checking mode wants a hash on every line of a
    /// file or on none, and folders and VCS checkouts have none: pip installs the hashed entries
    /// with their hashes checked, then the others from their sources (both `--no-deps`: the lock
    /// is complete).
    fn run_install(&self, engine: &Engine, lock: &Path) -> Result<()> {
        let venv_dir = &self.config.python.venv;
        let package = self.sources.project_package.as_ref();
        let route = self.planner.route();
        if *engine != Engine::Pip {
            let mut cmd = self.at_root(engine.sync(self.interp, venv_dir, lock, route));
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
            let cmd = self.at_root(engine.sync(self.interp, venv_dir, &file, route));
            engine::run(self.ui, &cmd, "installing into the venv")?;
        }
        if let Some(pkg) = package {
            let cmd = self.at_root(Engine::pip_editable(self.interp, venv_dir, &pkg.dir));
            engine::run(self.ui, &cmd, &format!("installing the project `{}` (editable)", pkg.name))?;
        }
        Ok(())
    }

    /// An installer failure during `stage` learns the sources and the lock, for its hint.
    fn during(&self, err: anyhow::Error, stage: Stage) -> anyhow::Error {
        match err.downcast::<Error>() {
            Ok(Error::Installer(mut f)) => {
                let sources = self.sources.describe(&self.config.root);
                f.during = Some((stage, sources, display_path(&self.config.python.lock)));
                Error::Installer(f).into()
            }
            Ok(other) => other.into(),
            Err(other) => other,
        }
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

/// What pip must remove so the venv is exactly the lock `text`: installed distributions the
/// lock does not name, except the project's own package. A path installed without a name
/// (`-e ./pkg`, from a uv lock) keeps every direct install (`direct`, asked only then).
pub(crate) fn extras(
    text: &str,
    installed: &[String],
    project: Option<&str>,
    direct: impl FnOnce() -> BTreeSet<String>,
) -> Vec<String> {
    let (mut wanted, unnamed) = lockfile::names(text);
    wanted.extend(project.map(str::to_string));
    let direct = if unnamed { direct() } else { BTreeSet::new() };
    installed.iter().filter(|n| !wanted.contains(*n) && !direct.contains(*n)).cloned().collect()
}

/// (installed, removed) between two installed sets; a version change counts once each way.
pub(crate) fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> (usize, usize) {
    let installed = after.iter().filter(|(n, v)| before.get(*n) != Some(*v)).count();
    let removed = before.iter().filter(|(n, v)| after.get(*n) != Some(*v)).count();
    (installed, removed)
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

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pip_removes_only_what_a_readable_lock_leaves_out() {
        let installed = names(&["alpha", "beta", "demo", "local"]);
        let never = || -> BTreeSet<String> { panic!("direct installs are read only for unnamed lines") };
        assert_eq!(extras("alpha==1 \\\n    --hash=sha256:a\n", &installed, Some("demo"), never), ["beta", "local"]);
        // A line without a name (`-e ./pkg`): every direct install stays.
        let direct = || BTreeSet::from(["local".to_string()]);
        assert_eq!(extras("alpha==1\n-e ./pkg\n", &installed, None, direct), ["beta", "demo"]);
        assert!(extras("alpha==1\nbeta==1\ndemo==1\nlocal==1\n", &installed, None, never).is_empty());
    }

    #[test]
    fn an_installer_failure_learns_its_stage_and_other_errors_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("requirements.txt"), "alpha\n").unwrap();
        let ws = Workspace::load(dir.path()).unwrap();
        let planner = Planner::new(&ws).unwrap();
        let ui = Ui::new(true, false);
        let ws = Run::new(&planner, &ui).unwrap();
        let failure = crate::error::InstallerFailure {
            what: "installing into the venv".into(),
            status: "exit code 1".into(),
            output: "Failed to fetch".into(),
            cause: crate::error::InstallerCause::Network,
            during: None,
        };
        let e = ws.during(anyhow::Error::from(Error::Installer(failure)), Stage::Install);
        let Some(Error::Installer(f)) = e.downcast_ref::<Error>() else { panic!("{e:#}") };
        let (stage, sources, lock) = f.during.clone().unwrap();
        assert_eq!(stage, Stage::Install);
        assert!(lock.ends_with("requirements.lock"), "{lock}");
        assert!(sources.starts_with("requirements.txt"), "{sources}");
        let plain = ws.during(anyhow::anyhow!("disk full"), Stage::Install);
        assert_eq!(plain.to_string(), "disk full");
    }
}
