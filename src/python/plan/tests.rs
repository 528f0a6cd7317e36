//! The planner on temporary projects: no network, at most one interpreter start per plan.

use std::fs;
use std::path::Path;

use super::*;
use crate::python::fingerprint;

/// A project with these files and no services (so no JupyterLab among the requirements).
fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("labup.toml"), "[services.jupyter]\nenabled = false\n").unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    let ws = Workspace::load(dir.path()).unwrap();
    (dir, ws)
}

fn changes(plan: &Plan) -> &Changes {
    match &plan.work {
        Work::Sync(c) => c,
        Work::Nothing(_) => panic!("a no-op plan: {plan:?}"),
    }
}

/// A lock written for the project's requirements as they are now.
fn write_current_lock(planner: &Planner, body: &str) {
    let digest = lockfile::inputs_digest(&planner.sources, &planner.config, planner.backend());
    fs::write(&planner.config.python.lock, lockfile::render(&digest, &[], body)).unwrap();
}

/// A real venv (no pip, no network) built from the planner's interpreter.
fn make_venv(planner: &Planner) {
    let venv = &planner.config.python.venv;
    let ok = std::process::Command::new(&planner.interp.path)
        .args(["-m", "venv", "--without-pip"])
        .arg(venv)
        .status()
        .unwrap()
        .success();
    assert!(ok, "python -m venv");
}

#[test]
fn lock_decisions() {
    let current = lockfile::render("sha256:1", &[], "alpha==1\n");
    assert_eq!(LockPlan::decide(None, Some(&current)), LockPlan::None, "no requirements, no lock");
    assert_eq!(LockPlan::decide(Some("sha256:1"), None), LockPlan::Resolve(Staleness::Missing));
    assert_eq!(LockPlan::decide(Some("sha256:1"), Some(&current)), LockPlan::Current);
    assert_eq!(LockPlan::decide(Some("sha256:2"), Some(&current)), LockPlan::Resolve(Staleness::OutOfDate));
    assert_eq!(LockPlan::decide(Some("sha256:1"), Some("alpha==1\n")), LockPlan::Resolve(Staleness::OutOfDate));
}

#[test]
fn a_fresh_project_creates_the_venv_and_resolves() {
    let (_dir, ws) = project(&[("requirements.txt", "alpha\n")]);
    let plan = Planner::new(&ws).unwrap().plan(None).unwrap();
    assert_eq!(plan.action(), Action::Sync);
    assert_eq!(plan.lock, LockPlan::Resolve(Staleness::Missing));
    let c = changes(&plan);
    assert_eq!(c.venv, VenvPlan::Create);
    assert_eq!((&c.install, &c.remove), (&None, &None), "unknown before resolving");
    assert!(!c.python.version.is_empty());
}

#[test]
fn no_requirements_means_no_lock_and_an_empty_venv() {
    let (_dir, ws) = project(&[]);
    let plan = Planner::new(&ws).unwrap().plan(None).unwrap();
    assert_eq!(plan.lock, LockPlan::None);
    let c = changes(&plan);
    assert_eq!(c.venv, VenvPlan::Create);
    assert_eq!((c.install.as_deref(), c.remove.as_deref()), (Some(&[][..]), Some(&[][..])));
}

#[test]
fn a_new_venv_gets_the_whole_current_lock() {
    let (_dir, ws) = project(&[("requirements.txt", "alpha\nbeta\n")]);
    let planner = Planner::new(&ws).unwrap();
    write_current_lock(&planner, "alpha==1.0 \\\n    --hash=sha256:aa\nbeta==2.0\n");
    let plan = planner.plan(None).unwrap();
    assert_eq!(plan.lock, LockPlan::Current);
    let c = changes(&plan);
    assert_eq!(c.install.as_deref(), Some(&["alpha==1.0".to_string(), "beta==2.0".to_string()][..]));
    assert_eq!(c.remove.as_deref(), Some(&[][..]));

    fs::write(ws.config.root.join("requirements.txt"), "alpha\nbeta\ngamma\n").unwrap();
    let plan = Planner::new(&ws).unwrap().plan(None).unwrap();
    assert_eq!(plan.lock, LockPlan::Resolve(Staleness::OutOfDate), "the requirements changed");
    assert_eq!(changes(&plan).install, None);
}

#[test]
fn an_unreadable_lock_is_an_error_not_a_missing_one() {
    let (_dir, ws) = project(&[("requirements.txt", "alpha\n")]);
    fs::create_dir(&ws.config.python.lock).unwrap();
    let err = Planner::new(&ws).unwrap().plan(None).unwrap_err();
    assert!(format!("{err:#}").contains("failed to read"), "{err:#}");
    assert!(read_lock(&ws.config.root.join("nothing.lock")).unwrap().is_none());
}

#[test]
fn a_folder_that_is_not_a_venv_is_refused() {
    let (_dir, ws) = project(&[]);
    fs::create_dir(&ws.config.python.venv).unwrap();
    fs::write(ws.config.python.venv.join("notes.txt"), "mine").unwrap();
    let err = Planner::new(&ws).unwrap().plan(None).unwrap_err();
    assert!(err.to_string().contains("is not a virtual environment"), "{err}");
}

#[test]
fn a_venv_whose_interpreter_is_gone_is_rebuilt() {
    let (dir, ws) = project(&[]);
    let venv = &ws.config.python.venv;
    fs::create_dir_all(venv.join("bin")).unwrap();
    let gone = dir.path().join("gone/bin");
    fs::write(venv.join("pyvenv.cfg"), format!("home = {}\nversion = 3.11.0\n", gone.display())).unwrap();
    let plan = Planner::new(&ws).unwrap().plan(None).unwrap();
    match &changes(&plan).venv {
        VenvPlan::Rebuild(why) => assert!(why.contains("is gone"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_healthy_venv_is_kept_and_a_synced_one_is_a_noop() {
    let (_dir, ws) = project(&[]);
    let planner = Planner::new(&ws).unwrap();
    make_venv(&planner);
    let plan = planner.plan(None).unwrap();
    let c = changes(&plan);
    assert_eq!(c.venv, VenvPlan::Keep);
    assert_eq!((&c.install, &c.remove), (&None, &None), "a kept venv's changes come from the installer");

    let marker = mark_synced(&planner, &c.python);
    let plan = planner.plan(None).unwrap();
    assert_eq!(plan.work, Work::Nothing(marker));
    assert_eq!(plan.action(), Action::Noop);
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["action"], "noop");
    assert_eq!(json["lock"], "none");
    assert_eq!(json["install"], serde_json::json!([]));
}

/// The marker a finished sync writes (as `sync` computes it).
fn mark_synced(planner: &Planner, python: &Info) -> Marker {
    let venv = &planner.config.python.venv;
    let marker = Marker {
        labup: env!("CARGO_PKG_VERSION").into(),
        fingerprint: fingerprint::compute(&planner.config, &planner.interp, &planner.sources, planner.backend()),
        python: python.version.clone(),
        interpreter: planner.interp.path.clone(),
        installer: "pip".into(),
        packages: 0,
        site_packages: venv::site_packages(venv).and_then(|p| crate::fsutil::stamp(&p)),
    };
    fingerprint::write(venv, &marker).unwrap();
    marker
}

#[test]
fn a_torch_backend_plans_against_its_own_lock_and_is_a_noop_once_synced() {
    let (_dir, ws) = project(&[("requirements.txt", "alpha\n")]);
    fs::write(ws.root().join("labup.toml"), "[services.jupyter]\nenabled = false\n[python]\ntorch = \"cpu\"\n")
        .unwrap();
    let ws = Workspace::load(ws.root()).unwrap();
    let config = &ws.config;
    let planner = Planner::new(&ws).unwrap();
    assert_eq!(planner.backend(), Some(&torch::Backend::Cpu));
    assert_eq!(planner.config.python.lock, config.root.join("requirements.cpu.lock"));
    write_current_lock(&planner, "alpha==1.0\n");
    fs::write(&config.python.lock, "stale shared lock\n").unwrap();
    make_venv(&planner);
    let plan = planner.plan(None).unwrap();
    assert_eq!(plan.lock, LockPlan::Current, "the cpu lock, not requirements.lock");
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["torch_backend"], "cpu");
    assert_eq!(json["torch_index"].as_str(), Some(planner.route().unwrap().describe().as_str()));
    let marker = mark_synced(&planner, &changes(&plan).python);
    assert_eq!(planner.plan(None).unwrap().work, Work::Nothing(marker), "synced: nothing to do");
}

fn info() -> Info {
    Info { version: "3.11.7".into(), implementation: "cpython".into(), executable: "/py/bin/python3".into() }
}

#[test]
fn json_keeps_the_fields_users_read() {
    let plan = Plan {
        lock: LockPlan::Resolve(Staleness::OutOfDate),
        torch: Some(TorchPlan {
            choice: torch::Choice { backend: torch::Backend::Cuda("cu126".into()), reason: "r".into() },
            route: torch::Route::Pytorch(torch::Backend::Cuda("cu126".into())),
        }),
        work: Work::Sync(Changes {
            venv: VenvPlan::Rebuild("it has Python 3.10 and the interpreter is 3.11.7".into()),
            install: None,
            remove: None,
            project: Some(PlannedPackage { name: "demo".into(), dir: "/p".into() }),
            python: info(),
        }),
    };
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "action": "sync",
            "venv": "rebuild",
            "venv_reason": "it has Python 3.10 and the interpreter is 3.11.7",
            "lock": "resolve",
            "install": null,
            "remove": null,
            "torch_backend": "cu126",
            "project": {"name": "demo", "dir": "/p"},
            "torch_index": "https://download.pytorch.org/whl/cu126",
        })
    );
    let keys: Vec<String> = serde_json::to_string(&plan)
        .unwrap()
        .split(['{', ','])
        .filter_map(|k| k.strip_prefix('"').and_then(|k| k.split('"').next()).map(str::to_string))
        .filter(|k| !["name", "dir"].contains(&k.as_str()))
        .collect();
    assert_eq!(
        keys,
        ["action", "venv", "venv_reason", "lock", "install", "remove", "torch_backend", "project", "torch_index"],
        "the order users saw"
    );
}

#[test]
fn uv_dry_run_lines() {
    let text = "Using Python 3.11.7 environment at: v\nResolved 2 packages in 0.93ms\nWould uninstall 2 packages\n \
                - alpha==1.0\n + alpha==2.0\n - delta==1.0\n + gamma==1.0\n";
    let (install, remove) = parse_dry_run(text);
    assert_eq!(install, ["alpha==2.0", "gamma==1.0"]);
    assert_eq!(remove, ["alpha==1.0", "delta==1.0"]);
    assert!(is_named("My_Pkg==0.1.0", "my-pkg"));
    assert!(!is_named("alpha==1.0", "alp"));
}

#[test]
fn planning_writes_nothing() {
    let (dir, ws) = project(&[("requirements.txt", "alpha\n")]);
    let listing = |p: &Path| {
        let mut names: Vec<_> = walk(p);
        names.sort();
        names
    };
    let before = listing(dir.path());
    Planner::new(&ws).unwrap().dry_run().unwrap();
    assert_eq!(listing(dir.path()), before);
}

fn walk(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(p).unwrap().flatten() {
        out.push(e.path().display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
