//! What the supervisor needs to run one service, computed by the client from the config.
//!
//! The supervisor never reads `labup.toml`: `labup up` sends it these specs, so it keeps running
//! the configuration it was given and a config error can never take it down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{jupyter, ollama};
use crate::config::{kind_name, Config, Port, Ready, Restart, Service, ServiceKind};
use crate::env::ChildEnv;
use crate::error::Fail;
use crate::project::Workspace;

/// What the built-in kinds need beyond the config, found by the caller (effects) so planning
/// stays pure.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// The workspace's Jupyter token, when a Jupyter service is planned.
    pub(crate) jupyter_token: Option<String>,
    /// labup runs as root (Jupyter then needs `--allow-root`).
    pub(crate) as_root: bool,
    /// The user's JupyterLab folders and the variables for Jupyter and its kernels.
    pub(crate) jupyter: jupyter::Extras,
    /// The `ollama` program, when an Ollama service must be started.
    pub(crate) ollama: Option<PathBuf>,
    /// Services that already answer outside labup (an Ollama server the user runs): not
    /// started, and `after` on them is already satisfied.
    pub(crate) external: Vec<String>,
    /// What the synced venv is ([`venv_identity`]): services that run from it carry it, so a
    /// sync that rebuilds or changes the venv makes them a changed service.
    pub(crate) venv: Option<String>,
}

/// The identity of the venv as its last sync left it: the base interpreter and the stamp of
/// `site-packages` the marker recorded (a rebuild or any install or removal changes it; a sync
/// that changes nothing keeps it). `None` without a marker.
pub(crate) fn venv_identity(venv: &Path) -> Option<String> {
    let m = crate::python::fingerprint::read(venv)?;
    let (size, mtime) = m.site_packages?;
    Some(format!("{} site-packages {size} {mtime}", m.interpreter.display()))
}

/// One service, ready to spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Spec {
    /// Name from the config.
    pub(crate) name: String,
    /// `command`, `jupyter`, `ollama`.
    pub(crate) kind: String,
    /// Program and arguments.
    pub(crate) argv: Vec<String>,
    /// Variables to set (`Some`) or remove (`None`) on top of the supervisor's environment.
    pub(crate) env: BTreeMap<String, Option<String>>,
    /// Working directory.
    pub(crate) cwd: PathBuf,
    /// Port: fixed, auto, or none.
    pub(crate) port: Option<Port>,
    /// Readiness probe.
    pub(crate) ready: Option<Ready>,
    /// Restart policy.
    pub(crate) restart: Restart,
    /// Services that must be ready first.
    pub(crate) after: Vec<String>,
    /// SIGTERM → SIGKILL grace, milliseconds.
    pub(crate) stop_timeout_ms: u64,
    /// Start → ready limit, milliseconds.
    pub(crate) start_timeout_ms: u64,
    /// Jupyter: ready also needs `jpserver-<pid>.json` here, naming the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtime_dir: Option<PathBuf>,
    /// Open in the browser once it is started and ready.
    #[serde(default)]
    pub(crate) open: bool,
    /// The venv it runs from ([`venv_identity`]); `None` for what does not use it (Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) venv: Option<String>,
}

impl Spec {
    /// Builds the spec of a configured service.
    pub(crate) fn new(ws: &Workspace, service: &Service, env: &ChildEnv, ctx: &Context) -> Result<Spec, Fail> {
        let config = &ws.config;
        let mut vars: BTreeMap<String, Option<String>> =
            env.entries.iter().map(|e| (e.name.clone(), e.value.clone())).collect();
        let mut argv = service.command.clone();
        let mut ready = service.ready.clone();
        let mut runtime_dir = None;
        match service.kind {
            ServiceKind::Command => {}
            ServiceKind::Jupyter => {
                let token = ctx.jupyter_token.as_deref().ok_or_else(|| Fail::new("no Jupyter token was prepared"))?;
                let launch =
                    jupyter::launch(service, &config.python.venv, &ws.layout, token, ctx.as_root, &ctx.jupyter);
                argv = launch.argv;
                vars.extend(launch.env);
                ready = ready.or(Some(launch.ready));
                runtime_dir = Some(launch.runtime_dir);
            }
            ServiceKind::Ollama => {
                let program = ctx.ollama.as_deref().ok_or_else(|| Fail::new("no `ollama` program was found"))?;
                let (a, e) = ollama::launch(program);
                argv = a;
                vars.extend(e.into_iter().map(|(k, v)| (k, Some(v))));
                ready = ready.or(Some(Ready::Http("/api/version".into())));
            }
        }
        for (k, v) in &service.env {
            vars.insert(k.clone(), Some(v.clone()));
        }
        Ok(Spec {
            name: service.name.clone(),
            kind: kind_name(service.kind).into(),
            argv,
            env: vars,
            cwd: config.root.clone(),
            port: service.port,
            ready,
            restart: service.restart,
            after: service.after.iter().filter(|a| !ctx.external.contains(a)).cloned().collect(),
            stop_timeout_ms: service.stop_timeout.as_millis() as u64,
            start_timeout_ms: service.start_timeout.as_millis() as u64,
            runtime_dir,
            open: service.open,
            venv: if service.kind == ServiceKind::Ollama { None } else { ctx.venv.clone() },
        })
    }

    /// Whether `other` runs the same service: everything equal except the `PATH` inherited from
    /// the shell that ran `labup up`. Terminals differ in PATH (an IDE's, tmux's, `nix develop`'s);
    /// that alone must not restart Jupyter and kill its kernels. A change labup makes (the venv
    /// rebuilt or its packages changed, libraries) or the config makes (command, env, port…)
    /// still counts.
    pub(crate) fn same_service(&self, other: &Spec) -> bool {
        let strip = |s: &Spec| {
            let mut s = s.clone();
            s.env.remove("PATH");
            s
        };
        strip(self) == strip(other) && first_path_entry(self) == first_path_entry(other)
    }

    /// Its log file in `log_dir` (the workspace's `.labup/logs`).
    pub(crate) fn log_path(&self, log_dir: &Path) -> PathBuf {
        crate::project::log_file(log_dir, &self.name)
    }
}

/// The venv's `bin`, which labup puts first on a service's PATH.
fn first_path_entry(spec: &Spec) -> Option<&str> {
    spec.env.get("PATH").and_then(|p| p.as_deref()).and_then(|p| p.split(':').next())
}

/// The services to start for `wanted` names (all enabled when empty), dependencies included, in
/// `after` order.
pub(crate) fn select<'a>(config: &'a Config, wanted: &[String]) -> Result<Vec<&'a Service>, Fail> {
    let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    for name in wanted {
        if !known.contains(&name.as_str()) {
            let hint = match crate::config::nearest(name, &known) {
                Some(n) => format!("did you mean `{n}`?"),
                None => format!("declared services: {}", known.join(", ")),
            };
            return Err(Fail::usage(format!("no service called `{name}`")).hint(hint));
        }
    }
    let mut needed: Vec<String> =
        if wanted.is_empty() { config.enabled_services().map(|s| s.name.clone()).collect() } else { wanted.to_vec() };
    let mut i = 0;
    while i < needed.len() {
        let svc = config.services.iter().find(|s| s.name == needed[i]).map(|s| s.after.clone()).unwrap_or_default();
        for dep in svc {
            if !needed.contains(&dep) {
                needed.push(dep);
            }
        }
        i += 1;
    }
    let mut out = Vec::new();
    for svc in config.services.iter().filter(|s| needed.contains(&s.name)) {
        if !svc.enabled && !wanted.contains(&svc.name) {
            return Err(Fail::usage(format!("a service needs `{}`, which is disabled (`enabled = false`)", svc.name))
                .hint("enable it, or remove it from `after`"));
        }
        out.push(svc);
    }
    Ok(out)
}

/// The specs of `selected` services, leaving out the external ones.
pub(crate) fn plan(ws: &Workspace, selected: &[&Service], env: &ChildEnv, ctx: &Context) -> Result<Vec<Spec>, Fail> {
    selected.iter().filter(|s| !ctx.external.contains(&s.name)).map(|s| Spec::new(ws, s, env, ctx)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> (tempfile::TempDir, Config) {
        crate::config::for_test(toml)
    }

    const TOML: &str = "[services.db]\ncommand=[\"db\"]\n[services.app]\ncommand=[\"python\",\"server.py\"]\nafter=[\"db\"]\nenv={DEBUG=\"1\"}\n[services.off]\ncommand=[\"x\"]\nenabled=false\n";

    fn plan_all(c: &Config, wanted: &[String], ctx: &Context) -> Result<Vec<Spec>, Fail> {
        let selected = select(c, wanted)?;
        plan(&Workspace::new(c.clone()), &selected, &ChildEnv { entries: vec![] }, ctx)
    }

    #[test]
    fn plans_enabled_services_in_order_with_env() {
        let (_d, c) = config(TOML);
        let specs = plan_all(&c, &[], &Context::default()).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "app"]);
        assert_eq!(specs[1].env["DEBUG"], Some("1".into()));
        assert_eq!(specs[1].stop_timeout_ms, 10_000);
    }

    #[test]
    fn named_service_brings_its_dependencies() {
        let (_d, c) = config(TOML);
        let specs = plan_all(&c, &["app".into()], &Context::default()).unwrap();
        assert_eq!(specs.len(), 2);
        let specs = plan_all(&c, &["off".into()], &Context::default()).unwrap();
        assert_eq!(specs[0].name, "off", "naming a disabled service starts it");
    }

    #[test]
    fn a_different_inherited_path_is_the_same_service() {
        let (_d, c) = config(TOML);
        let spec = plan_all(&c, &["db".into()], &Context::default()).unwrap().remove(0);
        let with_path = |p: &str| {
            let mut s = spec.clone();
            s.env.insert("PATH".into(), Some(p.into()));
            s
        };
        let a = with_path("/p/.venv/bin:/usr/bin");
        assert!(a.same_service(&with_path("/p/.venv/bin:/home/me/.cargo/bin:/usr/bin")));
        assert!(!a.same_service(&with_path("/q/.venv/bin:/usr/bin")), "another venv");
        let mut changed = a.clone();
        changed.argv.push("--flag".into());
        assert!(!a.same_service(&changed));
    }

    #[test]
    fn another_venv_identity_is_another_service_except_for_ollama() {
        let (_d, c) = config("[services.db]\ncommand=[\"db\"]\n[services.llm]\nkind=\"ollama\"\n");
        let ctx = |v: &str| Context { venv: Some(v.into()), ollama: Some("/o".into()), ..Context::default() };
        let a = plan_all(&c, &[], &ctx("python3 site-packages 1 1")).unwrap();
        let b = plan_all(&c, &[], &ctx("python3 site-packages 1 2")).unwrap();
        let (db_a, db_b) = (a.iter().find(|s| s.name == "db").unwrap(), b.iter().find(|s| s.name == "db").unwrap());
        assert!(!db_a.same_service(db_b), "packages changed: the service runs on the old venv");
        let (llm_a, llm_b) = (a.iter().find(|s| s.name == "llm").unwrap(), b.iter().find(|s| s.name == "llm").unwrap());
        assert!(llm_a.same_service(llm_b), "Ollama does not run from the venv");
    }

    #[test]
    fn unknown_service_suggests() {
        let (_d, c) = config(TOML);
        let e = plan_all(&c, &["ap".into()], &Context::default()).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `app`?"));
    }

    #[test]
    fn jupyter_gets_its_token_by_environment_and_opens() {
        let (d, c) = config("[services.nb]\nkind=\"jupyter\"\n");
        let ctx = Context { jupyter_token: Some("f00d".into()), ..Context::default() };
        let specs = plan_all(&c, &[], &ctx).unwrap();
        let nb = &specs[0];
        assert_eq!(nb.kind, "jupyter");
        assert_eq!(nb.env["JUPYTER_TOKEN"], Some("f00d".into()));
        assert!(nb.argv[0].ends_with("bin/python"));
        assert_eq!(
            nb.env["JUPYTER_CONFIG_DIR"],
            Some(crate::project::Layout::of(d.path()).jupyter_config().display().to_string())
        );
        assert_eq!(nb.runtime_dir, Some(crate::project::Layout::of(d.path()).jupyter_runtime()));
        assert_eq!(nb.ready, Some(Ready::Http("/api".into())));
        assert!(nb.open);
    }

    #[test]
    fn external_ollama_is_not_started_and_satisfies_after() {
        let (_d, c) = config("[services.llm]\nkind=\"ollama\"\n[services.app]\ncommand=[\"x\"]\nafter=[\"llm\"]\n");
        let ctx = Context { external: vec!["llm".into()], ..Context::default() };
        let specs = plan_all(&c, &[], &ctx).unwrap();
        assert_eq!(specs.len(), 1);
        assert!(specs[0].after.is_empty());
        let ctx = Context { ollama: Some("/opt/ollama".into()), ..Context::default() };
        let specs = plan_all(&c, &[], &ctx).unwrap();
        assert_eq!(specs[0].argv, ["/opt/ollama", "serve"]);
        assert_eq!(specs[0].env["OLLAMA_HOST"], Some("127.0.0.1:$PORT".into()));
        assert_eq!(specs[0].ready, Some(Ready::Http("/api/version".into())));
        assert_eq!(specs[1].after, ["llm"]);
    }
}
