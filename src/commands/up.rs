//! `labup up` and `labup restart`: config → sync → plan → supervisor → ready → models, browser.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::services::wait_for;
use super::status::{external_rows, print_rows, rows_for};
use crate::browser;
use crate::config::{Config, Port, ServiceKind};
use crate::fsutil::LockFile;
use crate::project::Workspace;
use crate::python::sync;
use crate::services::client::{self, ensure_supervisor, fail_if_not_ready, is_up};
use crate::services::control::Request;
use crate::services::jupyter;
use crate::services::ollama::{self, External, PullEvent, PullProgress};
use crate::services::policy::Phase;
use crate::services::probe;
use crate::services::spec::{self, Context, Spec};
use crate::services::state::{RunDir, RunState};
use crate::services::supervisor;
use crate::ui::banner::{self, Banner};
use crate::ui::Ui;

/// `labup up` flags.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UpOptions {
    /// Stay attached, logs on stdout.
    pub(crate) foreground: bool,
    /// Refuse to re-resolve.
    pub(crate) locked: bool,
    /// Status as JSON on stdout.
    pub(crate) json: bool,
    /// Never open a browser.
    pub(crate) no_browser: bool,
    /// Print the plan, change nothing.
    pub(crate) dry_run: bool,
}

/// One service in `labup up --dry-run`.
#[derive(Debug, Serialize)]
struct PlannedService {
    name: String,
    kind: String,
    /// `start`, `restart` (its spec changed), `keep` (already up), `use` (an external server) or
    /// `stop` (runs, but the config no longer declares it).
    action: &'static str,
    port: Option<String>,
    /// `port = "auto"`: `port` is the one it runs on, or a free one now.
    auto_port: bool,
    command: Vec<String>,
}

/// `labup up --dry-run`: the sync plan and what would happen to each service.
fn dry_run(ws: &Workspace, names: &[String], json: bool, ui: &Ui) -> Result<ExitCode> {
    let sync_plan = crate::python::plan::Planner::new(ws)?.dry_run()?;
    let p = prepare(ws, names, false, true, ui)?;
    let run = RunDir::of(&ws.layout);
    let state = run.read();
    let supervised = run.live_supervisor(&state).is_some();
    let mut services: Vec<PlannedService> = p
        .specs
        .iter()
        .map(|s| {
            let running = state.services.get(&s.name).is_some_and(|r| r.running());
            PlannedService {
                name: s.name.clone(),
                kind: s.kind.clone(),
                action: match (running, supervised && is_up(&state, s)) {
                    (_, true) => "keep",
                    (true, false) => "restart",
                    (false, false) => "start",
                },
                // `auto`: the port it runs on, else the free port a start would take now.
                port: s.port.and_then(|p| match p {
                    Port::Fixed(n) => Some(n.to_string()),
                    Port::Auto => state
                        .services
                        .get(&s.name)
                        .filter(|r| r.running())
                        .and_then(|r| r.port)
                        .or_else(|| crate::services::ports::free_port().ok())
                        .map(|n| n.to_string()),
                }),
                auto_port: s.port == Some(Port::Auto),
                command: s.argv.clone(),
            }
        })
        .collect();
    services.extend(orphans(&run, &state, &ws.config).into_iter().map(|name| PlannedService {
        kind: state.services.get(&name).map_or_else(String::new, |r| r.spec.kind.clone()),
        name,
        action: "stop",
        port: None,
        auto_port: false,
        command: Vec::new(),
    }));
    services.extend(p.external.iter().map(|e| PlannedService {
        name: e.name.clone(),
        kind: "ollama".into(),
        action: "use",
        port: Some(e.port.to_string()),
        auto_port: false,
        command: Vec::new(),
    }));
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "sync": sync_plan, "services": services }))?);
        return Ok(ExitCode::SUCCESS);
    }
    super::print_sync_plan(&sync_plan);
    for s in &services {
        let auto = match (s.auto_port, s.action) {
            (true, "keep") => " (auto)",
            (true, _) => " (auto: free now)",
            _ => "",
        };
        let port = s.port.as_deref().map(|p| format!(" on port {p}{auto}")).unwrap_or_default();
        let what = match s.action {
            "use" => format!("would use the Ollama server already running{port}"),
            "stop" => "would stop: no longer declared in labup.toml".to_string(),
            a => format!("would {a}{port}: {}", s.command.join(" ")),
        };
        println!("{:<10} {what}", s.name);
    }
    Ok(ExitCode::SUCCESS)
}

/// Everything `up` and `restart` work from.
struct Prepared<'a> {
    ws: &'a Workspace,
    python: String,
    specs: Vec<Spec>,
    external: Vec<External>,
    notes: Vec<String>,
}

/// Loads the config, syncs the venv (a no-op when nothing changed), finds what the built-in kinds
/// need and plans the services. `dry_run`: no sync, and nothing is written (no token, no links).
fn prepare<'a>(ws: &'a Workspace, names: &[String], locked: bool, dry_run: bool, ui: &Ui) -> Result<Prepared<'a>> {
    let config = &ws.config;
    // Which services first: a misspelt name is refused (exit 2) before the sync writes anything.
    let selected = spec::select(config, names)?;
    let (python, env) = if dry_run {
        let wiring = crate::gpu::existing_wiring(ws);
        (String::new(), crate::env::ChildEnv::workspace(ws, &super::parent_env(), &wiring))
    } else {
        let outcome = sync::sync(ws, locked, ui)?;
        let gpu = super::wiring(ws, ui)?;
        super::refresh_wrappers(ws, Ok(&gpu), ui);
        (outcome.python, super::child_env(ws, &gpu))
    };
    let state = RunDir::of(&ws.layout).read();
    let mut ctx = Context { venv: spec::venv_identity(&config.python.venv), ..Context::default() };
    let mut notes = Vec::new();
    let mut external = Vec::new();
    if selected.iter().any(|s| s.kind == ServiceKind::Jupyter) {
        ctx.jupyter_token = Some(if dry_run {
            jupyter::existing_token(&ws.layout).unwrap_or_else(|| "(made at the first start)".into())
        } else {
            let token = jupyter::token(&ws.layout)?;
            if let Some(why) = &token.replaced {
                ui.warn(format!("{why}: made a new Jupyter token, so the Jupyter URL changes (reopen it from below)"));
            }
            token.value
        });
        ctx.jupyter = jupyter_extras(ws, dry_run, ui)?;
        ctx.as_root = nix::unistd::geteuid().is_root();
        if ctx.as_root {
            notes.push("running as root: Jupyter gets `--allow-root`, which it needs to start as root".into());
        }
    }
    for svc in selected.iter().filter(|s| s.kind == ServiceKind::Ollama) {
        let ours = state.services.get(&svc.name).is_some_and(|r| r.running());
        if let (false, Some(Port::Fixed(port))) = (ours, svc.port) {
            if let Some(version) = ollama::Client::new(port, Some(Duration::from_millis(500))).version() {
                ctx.external.push(svc.name.clone());
                external.push(External { name: svc.name.clone(), port, version, models: svc.models.clone() });
                continue;
            }
        }
        if ctx.ollama.is_none() {
            ctx.ollama = Some(ollama::binary()?);
        }
    }
    let mut specs = spec::plan(ws, &selected, &env, &ctx)?;
    // An Ollama server labup uses without running it: its port reaches the others as well.
    for spec in &mut specs {
        for e in &external {
            spec.env.entry(crate::config::port_var(&e.name)).or_insert_with(|| Some(e.port.to_string()));
        }
    }
    Ok(Prepared { ws, python, specs, external, notes })
}

/// What labup's Jupyter gets besides its service's config: the user's JupyterLab folders,
/// labup's Ollama for Jupyter AI, and (not in a dry run) `.labup/jupyter/config` written, with a
/// one-time notice about the user-global server config it ignores.
fn jupyter_extras(ws: &Workspace, dry_run: bool, ui: &Ui) -> Result<jupyter::Extras> {
    let config = &ws.config;
    let parent = super::parent_env();
    let user = jupyter::UserDirs::from_env(&parent);
    let ollama = jupyter::Ollama::of(config);
    if !dry_run {
        let kernel = crate::python::kernelspec::kernel_name(&config.project.name);
        let present = crate::python::kernelspec::kernels_dir(&config.python.venv).join(&kernel).is_dir();
        let text = jupyter::server_config(present.then_some(kernel.as_str()), ollama.as_ref());
        jupyter::write_server_config(&ws.layout, &text)?;
        let found = jupyter::ignored_config(&jupyter::foreign_config_dirs(user.as_ref(), &parent));
        if let Some(notice) = jupyter::ignored_notice(&ws.layout, &found) {
            ui.warn(notice);
        }
    }
    Ok(jupyter::Extras { user, env: ollama.map(|o| o.env()).unwrap_or_default() })
}

fn print_banner(p: &Prepared, ui: &Ui) {
    let host = crate::gpu::Host::from_env();
    let platform = crate::gpu::detect::platform(&host);
    let venv = crate::config::display_path(&p.ws.config.python.venv);
    let b = Banner {
        project: p.ws.config.project.name.clone(),
        platform: banner::platform_line(platform),
        python: format!("{} ({venv})", p.python),
        gpu: banner::gpu_line(&host, platform),
    };
    let lines = b.lines();
    if let Some((first, rest)) = lines.split_first() {
        ui.info(ui.paint(first, "1"));
        for l in rest {
            ui.info(l);
        }
    }
}

/// `labup up [SERVICE…]`.
pub(crate) fn up(root: &Path, names: &[String], opts: &UpOptions, ui: &Ui) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    if opts.dry_run {
        return dry_run(&ws, names, opts.json, ui);
    }
    let p = prepare(&ws, names, opts.locked, false, ui)?;
    if !opts.json {
        print_banner(&p, ui);
    }
    for e in &p.external {
        ui.info(format!(
            "using the Ollama server already running on 127.0.0.1:{} (version {}): labup will not start or stop it",
            e.port, e.version
        ));
    }
    if opts.foreground {
        return foreground(&p, opts, ui);
    }
    let run = RunDir::of(&ws.layout);
    stop_orphans(&ws, &run, ui)?;
    let before = run.read();
    let already = run.live_supervisor(&before).is_some() && p.specs.iter().all(|s| is_up(&before, s));
    let state = if already || p.specs.is_empty() {
        if p.specs.is_empty() && p.external.is_empty() {
            ui.info("no services to start");
            return Ok(ExitCode::SUCCESS);
        }
        if !p.specs.is_empty() {
            ui.info("everything is already up");
        }
        before.clone()
    } else {
        for n in &p.notes {
            ui.info(n);
        }
        run.create()?;
        {
            let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
            ensure_supervisor(root, &run)?;
            // From here a Ctrl-C is answered by the wait (what keeps running), not by dying.
            super::services::interrupts();
            client::send(&run, &Request::Start { specs: p.specs.clone() })?;
        }
        wait_for(&run, &p.specs, ui)?
    };
    let newly: Vec<&Spec> = p.specs.iter().filter(|s| !is_up(&before, s) && is_up(&state, s)).collect();
    check_jupyter_auth(&state, &newly, ui);
    let pulled = pull_models(&p, &state, ui);
    finish(&run, &state, &p, opts, !already, ui)?;
    open_browser(&state, &newly, opts.no_browser, ui);
    pulled?;
    fail_if_not_ready(&run, &state, &p.specs).map(|()| ExitCode::SUCCESS)
}

/// Services that run (or are starting, or wait to be restarted) although the config no longer
/// declares them: what `up` stops, like `docker compose up --remove-orphans`.
pub(super) fn orphans(run: &RunDir, state: &RunState, config: &Config) -> Vec<String> {
    let supervised = run.live_supervisor(state).is_some();
    state
        .services
        .iter()
        .filter(|(name, _)| !config.services.iter().any(|s| &s.name == *name))
        .filter(|(_, r)| {
            r.running() || (supervised && matches!(r.state, Phase::Starting | Phase::Ready | Phase::Backoff))
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Stops the [`orphans`] and says so; when nothing else is wanted, the supervisor exits after
/// them, and `up` waits for that so it starts a fresh one instead of talking to one that leaves.
fn stop_orphans(ws: &Workspace, run: &RunDir, ui: &Ui) -> Result<()> {
    let state = run.read();
    let orphans = orphans(run, &state, &ws.config);
    if orphans.is_empty() {
        return Ok(());
    }
    if run.live_supervisor(&state).is_none() {
        // Its supervisor was killed: a new one adopts what runs, then stops it cleanly.
        run.create()?;
        let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
        ensure_supervisor(ws.root(), run)?;
    }
    let state = run.read();
    client::stop_and_wait(run, &state, &orphans)?;
    let others_wanted = state
        .services
        .iter()
        .any(|(n, r)| !orphans.contains(n) && matches!(r.state, Phase::Starting | Phase::Ready | Phase::Backoff));
    if !others_wanted {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while run.live_supervisor(&run.read()).is_some() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    ui.info(format!("{} stopped {} (no longer declared in labup.toml)", ui.paint("✓", "32"), orphans.join(", ")));
    Ok(())
}

/// The running services whose venv is not the synced one: a sync rebuilt the venv or changed
/// its packages under them (Jupyter would serve from a deleted `site-packages`).
pub(super) fn on_old_venv(run: &RunDir, state: &RunState, config: &Config) -> Vec<String> {
    let now = spec::venv_identity(&config.python.venv);
    if run.live_supervisor(state).is_none() {
        return Vec::new();
    }
    state
        .services
        .iter()
        .filter(|(name, r)| {
            r.running()
                && r.spec.venv.is_some()
                && r.spec.venv != now
                && config.services.iter().any(|s| &s.name == *name)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// After a sync that changed the venv: restarts the services that still run on the old one and
/// waits until they are ready again (`labup sync`).
pub(super) fn restart_on_new_venv(ws: &Workspace, ui: &Ui) -> Result<()> {
    let run = RunDir::of(&ws.layout);
    let stale = on_old_venv(&run, &run.read(), &ws.config);
    if stale.is_empty() {
        return Ok(());
    }
    ui.info(format!("the venv changed under {}: restarting them on the new one", stale.join(", ")));
    let mut p = prepare(ws, &stale, false, false, ui)?;
    p.specs.retain(|s| stale.contains(&s.name));
    {
        let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
        ensure_supervisor(ws.root(), &run)?;
        client::send(&run, &Request::Restart { specs: p.specs.clone() })?;
    }
    let state = wait_for(&run, &p.specs, ui)?;
    fail_if_not_ready(&run, &state, &p.specs)
}

/// `labup up --foreground`: the supervisor in this process (a container's entrypoint, a systemd
/// service, a Slurm job), logs on stdout, the ready table once every service is ready. Exit 0
/// after a requested stop (signal or `labup stop`), 1 when a service gave up.
fn foreground(p: &Prepared, opts: &UpOptions, ui: &Ui) -> Result<ExitCode> {
    for n in &p.notes {
        ui.info(n);
    }
    if p.specs.is_empty() {
        ui.info("no services to start");
        return Ok(ExitCode::SUCCESS);
    }
    ui.info("running in the foreground: Ctrl-C (SIGINT) or SIGTERM stops every service");
    let run = RunDir::of(&p.ws.layout);
    let ended =
        supervisor::foreground(&p.ws.layout, p.specs.clone(), &mut |state| announce_ready(&run, state, p, opts, ui))?;
    if ended.failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut message = String::new();
    for (name, why) in &ended.failed {
        message.push_str(&format!("service `{name}` gave up: {why}\n"));
    }
    Err(crate::error::Fail::new(message.trim_end().to_string())
        .hint(format!("see `labup logs {}`", ended.failed[0].0))
        .into())
}

/// The one place the foreground announces that every service is ready: the same table (or JSON)
/// as a detached `up`, with the Jupyter token URL, on stdout between the logs.
fn announce_ready(run: &RunDir, state: &RunState, p: &Prepared, opts: &UpOptions, ui: &Ui) {
    let newly: Vec<&Spec> = p.specs.iter().collect();
    check_jupyter_auth(state, &newly, ui);
    if let Err(e) = finish(run, state, p, opts, true, ui) {
        ui.warn(format!("cannot print the service table: {e}"));
    }
    // Under Slurm: where the services are and the tunnel to them, in the job's output.
    if let Some(block) = crate::export::slurm::reach_now(state) {
        print!("{block}");
    }
}

/// `labup restart [SERVICE…] [--new-token]`.
pub(crate) fn restart(root: &Path, names: &[String], new_token: bool, ui: &Ui) -> Result<ExitCode> {
    let ws = Workspace::load(root)?;
    if new_token {
        let selected = spec::select(&ws.config, names)?;
        if !selected.iter().any(|s| s.kind == ServiceKind::Jupyter) {
            return Err(crate::error::Fail::usage("`--new-token` is for Jupyter, and no Jupyter service is named")
                .hint("name a `kind = \"jupyter\"` service (`labup restart jupyter --new-token`), or none")
                .into());
        }
        jupyter::new_token(&ws.layout)?;
        ui.info("made a new Jupyter token: the old URL no longer works");
    }
    let mut p = prepare(&ws, names, false, false, ui)?;
    if !names.is_empty() {
        p.specs.retain(|s| names.contains(&s.name));
    }
    let run = RunDir::of(&ws.layout);
    run.create()?;
    {
        let _guard = LockFile::acquire(&run.client_lock(), |_| {})?;
        ensure_supervisor(root, &run)?;
        client::send(&run, &Request::Restart { specs: p.specs.clone() })?;
    }
    let state = wait_for(&run, &p.specs, ui)?;
    finish(&run, &state, &p, &UpOptions::default(), true, ui)?;
    fail_if_not_ready(&run, &state, &p.specs).map(|()| ExitCode::SUCCESS)
}

/// Prints the service table (or JSON) with the external servers in it; `probe` also checks
/// sockets and models (not on a no-op `up`, which must stay instant).
fn finish(run: &RunDir, state: &RunState, p: &Prepared, opts: &UpOptions, probe: bool, ui: &Ui) -> Result<()> {
    let mut rows = rows_for(run, state, &p.specs, probe);
    rows.extend(external_rows(&p.external));
    if opts.json {
        println!("{}", serde_json::to_string(&super::status::document(run, state, rows))?);
    } else if !ui.quiet {
        print_rows(&rows, ui);
    }
    Ok(())
}

/// A Jupyter server that answers `/api/status` without the token has had authentication turned
/// off by a config file: say so loudly.
fn check_jupyter_auth(state: &RunState, newly: &[&Spec], ui: &Ui) {
    for spec in newly.iter().filter(|s| s.kind == "jupyter") {
        let Some(port) = state.services.get(&spec.name).and_then(|r| r.port) else { continue };
        if probe::http_status(port, "/api/status", Duration::from_secs(2)) == Some(200) {
            ui.warn(format!(
                "`{}` answers without its token: a Jupyter config file labup's Jupyter reads (the venv's \
                 etc/jupyter, or one added to .labup/jupyter/config) turns authentication off, so any web page \
                 you visit can run code as you; remove its `token = ''`/`password = ''`",
                spec.name
            ));
        }
    }
}

/// Pulls the declared models that are missing into each ready Ollama server.
fn pull_models(p: &Prepared, state: &RunState, ui: &Ui) -> Result<()> {
    let mut targets: Vec<(u16, Vec<String>)> = p.external.iter().map(|e| (e.port, e.models.clone())).collect();
    for spec in p.specs.iter().filter(|s| s.kind == "ollama" && is_up(state, s)) {
        let models = p.ws.config.services.iter().find(|s| s.name == spec.name).map(|s| s.models.clone());
        if let (Some(port), Some(models)) = (state.services.get(&spec.name).and_then(|r| r.port), models) {
            targets.push((port, models));
        }
    }
    for (port, models) in targets.into_iter().filter(|(_, m)| !m.is_empty()) {
        let client = ollama::Client::new(port, None);
        let present = client.tags()?;
        for model in ollama::missing_models(&models, &present) {
            pull_one(&client, &model, ui)?;
        }
    }
    Ok(())
}

fn pull_one(client: &ollama::Client, model: &str, ui: &Ui) -> Result<()> {
    let bar = ui.bytes_bar(format!("pulling {model}"));
    let started = std::time::Instant::now();
    let mut progress = PullProgress::default();
    let mut last_status = String::new();
    ui.info(format!("pulling the Ollama model {model}"));
    let result = client.pull(model, |event| {
        let (done, total) = progress.update(event);
        bar.set_length(total);
        bar.set_position(done);
        let status = match event {
            PullEvent::Status(s) => s.clone(),
            PullEvent::Layer { digest, .. } => format!("downloading {}", digest.trim_start_matches("sha256:")),
            PullEvent::Failed(_) => return,
        };
        if status != last_status {
            bar.set_message(status.clone());
            if !ui.progress {
                ui.debug(format!("{model}: {status}"));
            }
            last_status = status;
        }
    });
    bar.finish_and_clear();
    result?;
    ui.info(format!("{} pulled {model} in {}", ui.paint("✓", "32"), crate::ui::format_duration(started.elapsed())));
    Ok(())
}

/// Opens each service started by this `up` with `open = true`, once.
fn open_browser(state: &RunState, newly: &[&Spec], no_browser: bool, ui: &Ui) {
    for spec in newly.iter().filter(|s| s.open) {
        let Some(url) = state.services.get(&spec.name).and_then(|r| r.url()) else { continue };
        match browser::open_here(&url, no_browser) {
            Ok(program) => ui.info(format!("opened {} in the browser (`{program}`)", spec.name)),
            Err(why) => ui.debug(format!("not opening a browser: {why}")),
        }
    }
}
