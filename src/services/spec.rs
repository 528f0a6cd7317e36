//! What the supervisor needs to run one service, computed by the client from the config.
//!
//! The supervisor never reads `labup.toml`: `labup up` sends it these specs, so it keeps running
//! the configuration it was given and a config error can never take it down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{kind_name, Config, Port, Ready, Restart, Service, ServiceKind};
use crate::env::ChildEnv;
use crate::error::Fail;

/// One service, ready to spawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// Name from the config.
    pub name: String,
    /// `command`, `jupyter`, `ollama`.
    pub kind: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Variables to set (`Some`) or remove (`None`) on top of the supervisor's environment.
    pub env: BTreeMap<String, Option<String>>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Port: fixed, auto, or none.
    pub port: Option<Port>,
    /// Readiness probe.
    pub ready: Option<Ready>,
    /// Restart policy.
    pub restart: Restart,
    /// Services that must be ready first.
    pub after: Vec<String>,
    /// SIGTERM → SIGKILL grace, milliseconds.
    pub stop_timeout_ms: u64,
    /// Start → ready limit, milliseconds.
    pub start_timeout_ms: u64,
}

impl Spec {
    /// Builds the spec of a configured service.
    pub fn new(config: &Config, service: &Service, env: &ChildEnv) -> Spec {
        let mut vars: BTreeMap<String, Option<String>> =
            env.entries.iter().map(|e| (e.name.clone(), e.value.clone())).collect();
        for (k, v) in &service.env {
            vars.insert(k.clone(), Some(v.clone()));
        }
        Spec {
            name: service.name.clone(),
            kind: kind_name(service.kind).into(),
            argv: service.command.clone(),
            env: vars,
            cwd: config.root.clone(),
            port: service.port,
            ready: service.ready.clone(),
            restart: service.restart,
            after: service.after.clone(),
            stop_timeout_ms: service.stop_timeout.as_millis() as u64,
            start_timeout_ms: service.start_timeout.as_millis() as u64,
        }
    }

    /// Its log file.
    pub fn log_path(&self, log_dir: &Path) -> PathBuf {
        log_dir.join(format!("{}.log", self.name))
    }
}

/// The specs to start for `wanted` names (all enabled when empty), dependencies included, in
/// `after` order. Kinds not yet runnable are skipped with a note in the second list.
pub fn plan(config: &Config, wanted: &[String], env: &ChildEnv) -> Result<(Vec<Spec>, Vec<String>), Fail> {
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
    let mut specs = Vec::new();
    let mut skipped = Vec::new();
    for svc in config.services.iter().filter(|s| needed.contains(&s.name)) {
        if !svc.enabled && !wanted.contains(&svc.name) {
            return Err(Fail::usage(format!("a service needs `{}`, which is disabled (`enabled = false`)", svc.name))
                .hint("enable it, or remove it from `after`"));
        }
        if svc.kind != ServiceKind::Command {
            skipped.push(format!("{} (kind {})", svc.name, kind_name(svc.kind)));
            continue;
        }
        specs.push(Spec::new(config, svc, env));
    }
    Ok((specs, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labup.toml"), toml).unwrap();
        let c = Config::load(dir.path()).unwrap();
        (dir, c)
    }

    const TOML: &str = "[services.db]\ncommand=[\"db\"]\n[services.app]\ncommand=[\"python\",\"server.py\"]\nafter=[\"db\"]\nenv={DEBUG=\"1\"}\n[services.off]\ncommand=[\"x\"]\nenabled=false\n";

    #[test]
    fn plans_enabled_services_in_order_with_env() {
        let (_d, c) = config(TOML);
        let env = ChildEnv { entries: vec![] };
        let (specs, skipped) = plan(&c, &[], &env).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "app"]);
        assert!(skipped.is_empty());
        assert_eq!(specs[1].env["DEBUG"], Some("1".into()));
        assert_eq!(specs[1].stop_timeout_ms, 10_000);
    }

    #[test]
    fn named_service_brings_its_dependencies() {
        let (_d, c) = config(TOML);
        let (specs, _) = plan(&c, &["app".into()], &ChildEnv { entries: vec![] }).unwrap();
        assert_eq!(specs.len(), 2);
        let (specs, _) = plan(&c, &["off".into()], &ChildEnv { entries: vec![] }).unwrap();
        assert_eq!(specs[0].name, "off", "naming a disabled service starts it");
    }

    #[test]
    fn unknown_service_suggests() {
        let (_d, c) = config(TOML);
        let e = plan(&c, &["ap".into()], &ChildEnv { entries: vec![] }).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `app`?"));
    }

    #[test]
    fn builtin_kinds_are_reported_as_skipped_for_now() {
        let (_d, c) = config("[services.nb]\nkind=\"jupyter\"\n[services.web]\ncommand=[\"x\"]\n");
        let (specs, skipped) = plan(&c, &[], &ChildEnv { entries: vec![] }).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(skipped, ["nb (kind jupyter)"]);
    }
}
