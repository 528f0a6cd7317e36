//! `labup export kubernetes`: the workspace as Kubernetes objects, built as pure values.
//!
//! One Deployment whose one container runs `labup up --foreground` in the project folder (labup
//! syncs, starts and supervises the services there, exactly as on a workstation), a Service with
//! a named port per exposed service, a PersistentVolumeClaim that holds the venv, `.labup` and
//! the home folder (uv's cache), and a Secret with a generated Jupyter token that the Deployment
//! refers to (it never holds it).

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::{yaml, File, MARKER};
use crate::config::{Config, Cuda, Port, Ready, ServiceKind};
use crate::error::Fail;

/// The home folder in the container (on the volume: uv's cache lives there).
pub(crate) const HOME: &str = "/home/labup";
/// The uid and gid the workspace runs as (never root).
pub(crate) const UID: u32 = 1000;
/// The volume's size: a CUDA torch alone is several GiB.
pub(crate) const STORAGE: &str = "20Gi";
/// How long the first start may take (a first sync downloads every package): 30 minutes.
pub(crate) const FIRST_START_S: u32 = 1800;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// The image; it holds labup and the project.
    pub(crate) image: String,
    /// The namespace of every object, when given.
    pub(crate) namespace: Option<String>,
    /// The project folder inside the image.
    pub(crate) workdir: String,
    /// The services to put in the Service; empty: every service with a port.
    pub(crate) expose: Vec<String>,
}

/// A service's port in the manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exposed {
    service: String,
    /// The port's name (an IANA service name: 15 characters at most).
    name: String,
    port: u16,
    ready: Option<Value>,
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex {pattern}: {e}")))
}

/// Whether `image` is a valid image reference (`[host[:port]/]path[:tag][@digest]`, the
/// grammar of the distribution project's `reference` package).
pub(crate) fn is_image_reference(image: &str) -> bool {
    static PATH: OnceLock<Regex> = OnceLock::new();
    static DOMAIN: OnceLock<Regex> = OnceLock::new();
    let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let path = format!(
        r"^{component}(?:/{component})*(?::[\w][\w.-]{{0,127}})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}})?$"
    );
    let label = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    let domain = format!(r"^{label}(?:\.{label})*(?::[0-9]+)?$");
    // As docker reads it: the first part is a registry when it has a `.` or a `:`, or is localhost.
    let rest = match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            if !re(&DOMAIN, &domain).is_match(first) {
                return false;
            }
            rest
        }
        _ => image,
    };
    let name_len = image.split('@').next().unwrap_or("").len();
    name_len <= 255 && re(&PATH, &path).is_match(rest)
}

/// Whether `name` is a DNS-1123 label (namespaces, object names).
pub(crate) fn is_dns_label(name: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    name.len() <= 63 && re(&RE, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").is_match(name)
}

/// `name` made a DNS-1123 label of at most `max` characters (`My Project_2` → `my-project-2`).
fn dns_label(name: &str, max: usize) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (out.is_empty() || out.ends_with('-'))) {
            out.push(c);
        }
    }
    out.truncate(max);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "workspace".into()
    } else {
        out
    }
}

/// A port name (IANA service name: lowercase letters, digits and single hyphens, 15 at most,
/// with a letter), or `None` when `service` cannot give one.
fn port_name(service: &str) -> Option<String> {
    let name = dns_label(service, 15);
    (service.chars().any(|c| c.is_ascii_alphanumeric()) && name.chars().any(|c| c.is_ascii_lowercase())).then_some(name)
}

/// The Kubernetes probe for a service's readiness on its port.
fn probe(ready: Option<&Ready>, port_name: &str) -> Value {
    match ready {
        Some(Ready::Http(path)) => json!({ "httpGet": { "path": path, "port": port_name } }),
        // A log line Kubernetes cannot read: the open port is the nearest it can check.
        Some(Ready::Tcp | Ready::Log(_)) | None => json!({ "tcpSocket": { "port": port_name } }),
    }
}

/// The objects for `config`, one file each: `deployment.yaml`, `service.yaml` (when a service is
/// exposed), `pvc.yaml`, `secret.yaml` (when Jupyter runs; it holds `token`, and only it does).
pub(crate) fn manifests(config: &Config, opts: &Options, token: &str) -> Result<Vec<File>, Fail> {
    let (objects, notes) = objects(config, opts, token)?;
    Ok(objects
        .into_iter()
        .map(|(name, value)| {
            let kind = value["kind"].as_str().unwrap_or_default().to_string();
            let mut header = vec![
                format!("{MARKER} kubernetes from {}: {kind}", config.project.name),
                format!("labup up --foreground in {} (image {})", opts.workdir, opts.image),
            ];
            if kind == "Deployment" {
                header.extend(notes.iter().cloned());
            }
            File { name: name.into(), text: yaml::document(&header, &value) }
        })
        .collect())
}

/// Each object with its file name.
type Objects = Vec<(&'static str, Value)>;

/// The objects and the notes for the Deployment's header.
fn objects(config: &Config, opts: &Options, token: &str) -> Result<(Objects, Vec<String>), Fail> {
    if !is_image_reference(&opts.image) {
        return Err(Fail::usage(format!("`{}` is not a valid image reference", opts.image))
            .hint("name the image like `registry.example.com/team/workspace:1.0` (lowercase path, optional tag)"));
    }
    if let Some(ns) = opts.namespace.as_deref().filter(|ns| !is_dns_label(ns)) {
        return Err(Fail::usage(format!("`{ns}` is not a valid namespace"))
            .hint("a namespace is lowercase letters, digits and `-`, 63 at most, starting and ending alphanumeric"));
    }
    if !opts.workdir.starts_with('/') {
        return Err(Fail::usage(format!("`--workdir {}` is not an absolute path", opts.workdir)));
    }
    let services: Vec<_> = config.enabled_services().collect();
    for name in &opts.expose {
        if !services.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            return Err(Fail::usage(format!("`--expose {name}`: no enabled service is called `{name}`"))
                .hint(format!("the services: {}", known.join(", "))));
        }
    }
    let mut notes = Vec::new();
    let mut exposed: Vec<Exposed> = Vec::new();
    for s in &services {
        let asked = opts.expose.contains(&s.name);
        let port = match s.port {
            Some(Port::Fixed(p)) => p,
            Some(Port::Auto) if asked || opts.expose.is_empty() => {
                return Err(Fail::usage(format!(
                    "service `{}` has `port = \"auto\"`: a Kubernetes Service needs to know the port",
                    s.name
                ))
                .hint(format!("give `[services.{}] port` a number in labup.toml", s.name)));
            }
            None if asked => {
                return Err(Fail::usage(format!("`--expose {}`: the service has no port to expose", s.name))
                    .hint(format!("give `[services.{}] port` a number, or do not expose it", s.name)));
            }
            None => {
                if let Some(Ready::Log(_)) = s.ready {
                    notes.push(format!(
                        "`{}` has no probe: no port, and a log line Kubernetes cannot read; labup waits for it",
                        s.name
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if !(asked || opts.expose.is_empty()) {
            continue;
        }
        let name = port_name(&s.name).ok_or_else(|| {
            Fail::usage(format!("service `{}` has no name a Kubernetes port can take", s.name))
                .hint("rename it to letters, digits and `-` (15 at most)")
        })?;
        if let Some(other) = exposed.iter().find(|e| e.name == name || e.port == port) {
            return Err(Fail::usage(format!(
                "services `{}` and `{}` would share the Kubernetes port `{name}` ({port})",
                other.service, s.name
            ))
            .hint("give them distinct names and ports"));
        }
        // The built-in kinds' own readiness, as `labup up` checks it.
        let readiness = s.ready.clone().or(match s.kind {
            ServiceKind::Jupyter => Some(Ready::Http("/api".into())),
            ServiceKind::Ollama => Some(Ready::Http("/".into())),
            ServiceKind::Command => None,
        });
        let ready = Some(probe(readiness.as_ref(), &name));
        exposed.push(Exposed { service: s.name.clone(), name, port, ready });
    }

    let project = dns_label(&config.project.name, 40);
    let base = format!("labup-{project}");
    let secret_name = format!("{base}-jupyter");
    let claim = format!("{base}-data");
    let labels = json!({ "app.kubernetes.io/name": base, "app.kubernetes.io/managed-by": "labup" });
    let metadata = |name: &str| {
        let mut m = json!({ "name": name, "labels": labels });
        if let Some(ns) = &opts.namespace {
            m["namespace"] = json!(ns);
        }
        m
    };
    let jupyter = services.iter().any(|s| s.kind == ServiceKind::Jupyter);

    // The volume: the venv and `.labup` where labup looks for them (mounted over the image's
    // project folder), the home folder (uv's cache) beside them.
    let rel_venv = config.python.venv.strip_prefix(&config.root).ok().map(|p| p.display().to_string());
    let venv_mount = match &rel_venv {
        Some(rel) => format!("{}/{rel}", opts.workdir.trim_end_matches('/')),
        None => config.python.venv.display().to_string(),
    };
    let mounts = json!([
        { "name": "data", "mountPath": venv_mount, "subPath": "venv" },
        { "name": "data", "mountPath": format!("{}/.labup", opts.workdir.trim_end_matches('/')), "subPath": "labup" },
        { "name": "data", "mountPath": HOME, "subPath": "home" },
    ]);
    let mut env = vec![
        json!({ "name": "HOME", "value": HOME }),
        json!({ "name": "LABUP_NO_BROWSER", "value": "1" }),
        json!({ "name": "LABUP_NO_PROGRESS", "value": "1" }),
        // The pod's network is how the Service and the kubelet reach the built-in services.
        json!({ "name": "LABUP_BIND_ADDRESS", "value": "0.0.0.0" }),
    ];
    if jupyter {
        env.push(json!({
            "name": "LABUP_JUPYTER_TOKEN",
            "valueFrom": { "secretKeyRef": { "name": secret_name, "key": "token" } }
        }));
    }
    let grace = services.iter().map(|s| s.stop_timeout.as_secs()).max().unwrap_or(10) + 30;
    let mut container = json!({
        "name": "workspace",
        "image": opts.image,
        "command": ["labup", "up", "--foreground", "--no-browser"],
        "workingDir": opts.workdir,
        "env": env,
        "volumeMounts": mounts,
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] },
            "runAsNonRoot": true,
        },
    });
    if !exposed.is_empty() {
        container["ports"] = Value::Array(
            exposed.iter().map(|e| json!({ "name": e.name, "containerPort": e.port, "protocol": "TCP" })).collect(),
        );
    }
    // The first start syncs the venv (minutes with a CUDA torch): the startup probe gives it
    // FIRST_START_S before the kubelet counts the container as failed.
    let primary = exposed
        .iter()
        .find(|e| services.iter().any(|s| s.name == e.service && s.kind == ServiceKind::Jupyter))
        .or_else(|| exposed.first());
    if let Some(p) = primary {
        container["startupProbe"] = json!({
            "tcpSocket": { "port": p.name },
            "periodSeconds": 10,
            "failureThreshold": FIRST_START_S / 10,
        });
        if let Some(ready) = &p.ready {
            let mut r = ready.clone();
            r["periodSeconds"] = json!(10);
            r["failureThreshold"] = json!(3);
            container["readinessProbe"] = r;
        }
        for e in exposed.iter().filter(|e| e.service != p.service && e.ready.is_some()) {
            notes.push(format!(
                "`{}`'s readiness is not the pod's (one probe per container: `{}`'s); labup waits for both",
                e.service, p.service
            ));
        }
    } else {
        notes.push("no service has a port: no probes, no Service".into());
    }
    let gpus = match (config.gpu.cuda, config.gpu.count) {
        (Cuda::Off, _) => None,
        (Cuda::On, count) => Some(count.unwrap_or(1)),
        (Cuda::Auto, count) => count,
    };
    if let Some(n) = gpus {
        container["resources"] = json!({ "limits": { "nvidia.com/gpu": n } });
    }

    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&base),
        "spec": {
            "replicas": 1,
            // One volume, mounted read-write once: the old pod goes before the new one starts.
            "strategy": { "type": "Recreate" },
            "selector": { "matchLabels": { "app.kubernetes.io/name": base } },
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": UID,
                        "runAsGroup": UID,
                        "fsGroup": UID,
                    },
                    "terminationGracePeriodSeconds": grace,
                    "containers": [container],
                    "volumes": [ { "name": "data", "persistentVolumeClaim": { "claimName": claim } } ],
                },
            },
        },
    });
    let mut files = vec![("deployment.yaml", deployment)];
    if !exposed.is_empty() {
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(&base),
            "spec": {
                "type": "ClusterIP",
                "selector": { "app.kubernetes.io/name": base },
                "ports": exposed
                    .iter()
                    .map(|e| json!({ "name": e.name, "port": e.port, "targetPort": e.name, "protocol": "TCP" }))
                    .collect::<Vec<_>>(),
            },
        });
        files.push(("service.yaml", service));
    }
    let pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(&claim),
        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": STORAGE } } },
    });
    files.push(("pvc.yaml", pvc));
    if jupyter {
        let mut secret = Map::new();
        secret.insert("apiVersion".into(), json!("v1"));
        secret.insert("kind".into(), json!("Secret"));
        secret.insert("metadata".into(), metadata(&secret_name));
        secret.insert("type".into(), json!("Opaque"));
        secret.insert("stringData".into(), json!({ "token": token }));
        files.push(("secret.yaml", Value::Object(secret)));
    }
    Ok((files, notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> (tempfile::TempDir, Config) {
        crate::config::for_test(toml)
    }

    fn opts() -> Options {
        Options {
            image: "registry.example.com/team/ws:1.0".into(),
            namespace: None,
            workdir: "/workspace".into(),
            expose: vec![],
        }
    }

    const FULL: &str = r#"
[project]
name = "My Demo"
[gpu]
cuda = "on"
[services.jupyter]
kind = "jupyter"
[services.app]
command = ["python", "server.py"]
port = 5001
ready = { http = "/health" }
[services.db]
command = ["redis-server"]
port = 6379
ready = { tcp = true }
[services.worker]
command = ["python", "worker.py"]
ready = { log = "started" }
"#;

    /// The objects by file name, and the notes.
    fn build(toml: &str, o: &Options) -> (BTreeMap<&'static str, Value>, Vec<String>) {
        let (_d, c) = config(toml);
        let (objects, notes) = objects(&c, o, "s3cr3t-token").unwrap();
        (objects.into_iter().collect(), notes)
    }

    fn container<'a>(objects: &'a BTreeMap<&'static str, Value>) -> &'a Value {
        &objects["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    }

    use std::collections::BTreeMap;

    #[test]
    fn image_references() {
        for ok in [
            "ws",
            "team/ws:1.0",
            "localhost:5000/a/b",
            "Registry.Example.com/a",
            "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef",
            "a.b-c/d__e:v_1.2-x",
        ] {
            assert!(is_image_reference(ok), "{ok}");
        }
        for bad in
            ["", "Team/ws", "ws:", "ws:-x", "a//b", "ws:tag with space", "-ws", "ws@sha256:abc", "http://x/y", "ws/"]
        {
            assert!(!is_image_reference(bad), "{bad}");
        }
    }

    #[test]
    fn names_become_labels() {
        assert_eq!(dns_label("My Demo_2", 63), "my-demo-2");
        assert_eq!(dns_label("---", 63), "workspace");
        assert_eq!(port_name("jupyter").as_deref(), Some("jupyter"));
        assert_eq!(port_name("a-very-long-service-name").as_deref(), Some("a-very-long-ser"));
        assert_eq!(port_name("123"), None);
        assert!(is_dns_label("team-a") && !is_dns_label("Team") && !is_dns_label("-a"));
    }

    #[test]
    fn the_deployment_runs_labup_with_probes_gpu_and_the_token_by_reference() {
        let (o, notes) = build(FULL, &opts());
        assert_eq!(
            o.keys().copied().collect::<Vec<_>>(),
            ["deployment.yaml", "pvc.yaml", "secret.yaml", "service.yaml"]
        );
        let c = container(&o);
        assert_eq!(c["command"], json!(["labup", "up", "--foreground", "--no-browser"]));
        assert_eq!(c["workingDir"], "/workspace");
        assert_eq!(c["image"], "registry.example.com/team/ws:1.0");
        let pod = &o["deployment.yaml"]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 1000);
        assert_eq!(pod["terminationGracePeriodSeconds"], 40);
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
        // Jupyter is the pod's readiness (its own `/api` probe), by port name; the start may
        // take the first sync's 30 minutes.
        assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/api", "port": "jupyter"}));
        assert_eq!(c["startupProbe"]["tcpSocket"], json!({"port": "jupyter"}));
        assert_eq!(c["startupProbe"]["failureThreshold"], 180);
        let ports: Vec<(String, u64)> = c["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_string(), p["containerPort"].as_u64().unwrap()))
            .collect();
        assert_eq!(ports, [("app".into(), 5001), ("db".into(), 6379), ("jupyter".into(), 8888)]);
        let token_env = c["env"].as_array().unwrap().iter().find(|e| e["name"] == "LABUP_JUPYTER_TOKEN").unwrap();
        assert_eq!(token_env["valueFrom"]["secretKeyRef"], json!({"name": "labup-my-demo-jupyter", "key": "token"}));
        assert_eq!(o["secret.yaml"]["stringData"]["token"], "s3cr3t-token");
        assert!(notes.iter().any(|n| n.starts_with("`worker` has no probe: no port")), "{notes:?}");
        assert!(notes.iter().any(|n| n.starts_with("`app`'s readiness is not the pod's")), "{notes:?}");
        let sp = o["service.yaml"]["spec"]["ports"].as_array().unwrap();
        assert_eq!(sp.len(), 3);
        assert!(sp.iter().all(|p| p["targetPort"] == p["name"]));
        assert_eq!(o["pvc.yaml"]["spec"]["resources"]["requests"]["storage"], "20Gi");

        // In the files: the marker first, the notes in the Deployment's header, the token in
        // the Secret alone.
        let (_d, cfg) = config(FULL);
        let files = manifests(&cfg, &opts(), "s3cr3t-token").unwrap();
        for f in &files {
            assert!(f.text.starts_with(&format!("# {MARKER} kubernetes from My Demo: ")), "{}", f.text);
            assert_eq!(f.text.contains("s3cr3t-token"), f.name == "secret.yaml", "{}", f.name);
        }
        assert!(files[0].text.contains("\n# `worker` has no probe"), "{}", files[0].text);
    }

    #[test]
    fn probes_follow_each_services_readiness() {
        assert_eq!(probe(Some(&Ready::Http("/h".into())), "app"), json!({"httpGet": {"path": "/h", "port": "app"}}));
        assert_eq!(probe(Some(&Ready::Tcp), "db"), json!({"tcpSocket": {"port": "db"}}));
        assert_eq!(probe(None, "db"), json!({"tcpSocket": {"port": "db"}}));
        assert_eq!(probe(Some(&Ready::Log("x".into())), "w"), json!({"tcpSocket": {"port": "w"}}));
        // Without Jupyter, the first exposed service is the pod's readiness; no Secret.
        let (o, _) = build("[services.app]\ncommand = [\"x\"]\nport = 5001\nready = { http = \"/health\" }\n", &opts());
        assert_eq!(container(&o)["readinessProbe"]["httpGet"]["path"], "/health");
        assert!(!o.contains_key("secret.yaml"));
        assert!(!container(&o)["env"].to_string().contains("LABUP_JUPYTER_TOKEN"));
        // No port at all: no probes, no Service.
        let (o, notes) = build("[services.w]\ncommand = [\"x\"]\n", &opts());
        assert!(!o.contains_key("service.yaml"));
        assert!(container(&o).get("readinessProbe").is_none());
        assert!(notes.iter().any(|n| n.contains("no service has a port")), "{notes:?}");
    }

    #[test]
    fn gpu_limits_follow_the_config() {
        let limit = |gpu: &str| {
            let (o, _) = build(&format!("[gpu]\n{gpu}\n[services.app]\ncommand = [\"x\"]\nport = 1\n"), &opts());
            container(&o)["resources"]["limits"]["nvidia.com/gpu"].as_u64()
        };
        assert_eq!(limit("cuda = \"on\""), Some(1));
        assert_eq!(limit("cuda = \"on\"\ncount = 4"), Some(4));
        assert_eq!(limit("cuda = \"auto\"\ncount = 2"), Some(2));
        assert_eq!(limit("cuda = \"auto\""), None);
        assert_eq!(limit("cuda = \"off\"\ncount = 2"), None);
    }

    #[test]
    fn namespace_and_venv_on_the_volume() {
        let o = Options { namespace: Some("team-a".into()), ..opts() };
        let (objects, _) = build("[python]\nvenv = \"env/py\"\n[services.app]\ncommand = [\"x\"]\nport = 1\n", &o);
        for (name, v) in &objects {
            assert_eq!(v["metadata"]["namespace"], "team-a", "{name}");
        }
        let mounts = &container(&objects)["volumeMounts"];
        assert_eq!(mounts[0], json!({"name": "data", "mountPath": "/workspace/env/py", "subPath": "venv"}));
        assert_eq!(mounts[1], json!({"name": "data", "mountPath": "/workspace/.labup", "subPath": "labup"}));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let (_d, c) = config("[services.app]\ncommand = [\"x\"]\nport = \"auto\"\n[services.w]\ncommand = [\"y\"]\n");
        let err = |o: Options| manifests(&c, &o, "t").unwrap_err();
        let e = err(opts());
        assert_eq!(e.exit, crate::error::Exit::Usage);
        assert!(e.message.contains("`app` has `port = \"auto\"`"), "{}", e.message);
        let e = err(Options { image: "Not/Valid".into(), ..opts() });
        assert!(e.message.contains("not a valid image reference"), "{}", e.message);
        let e = err(Options { namespace: Some("Team_A".into()), ..opts() });
        assert!(e.message.contains("not a valid namespace"), "{}", e.message);
        let e = err(Options { expose: vec!["w".into()], ..opts() });
        assert!(e.message.contains("`--expose w`: the service has no port"), "{}", e.message);
        let e = err(Options { expose: vec!["nope".into()], ..opts() });
        assert!(e.message.contains("no enabled service is called `nope`"), "{}", e.message);
        let e = err(Options { workdir: "workspace".into(), ..opts() });
        assert!(e.message.contains("not an absolute path"), "{}", e.message);
        // Exposing only the service without a port problem is fine.
        let (_d, c) =
            config("[services.app]\ncommand = [\"x\"]\nport = 80\n[services.w]\ncommand = [\"y\"]\nport = \"auto\"\n");
        assert!(manifests(&c, &Options { expose: vec!["app".into()], ..opts() }, "t").is_ok());
    }
}
