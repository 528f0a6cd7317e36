//! The shape of one `labup.toml` file as written: every key optional, unknown keys refused.
//!
//! Values are validated while they are deserialized, so a bad value's error carries the
//! span of that value; `load` turns spans into file:line:column.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// One parsed file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) project: Option<RawProject>,
    pub(crate) python: Option<RawPython>,
    pub(crate) gpu: Option<RawGpu>,
    pub(crate) services: Option<BTreeMap<String, Spanned<RawService>>>,
    pub(crate) shell: Option<RawShell>,
    pub(crate) nix: Option<RawNix>,
}

/// `[project]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProject {
    pub(crate) name: Option<String>,
}

/// `[python]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPython {
    pub(crate) version: Option<PythonVersion>,
    pub(crate) venv: Option<String>,
    pub(crate) requirements: Option<Vec<At<String>>>,
    pub(crate) packages: Option<Vec<String>>,
    pub(crate) lock: Option<At<String>>,
    pub(crate) installer: Option<Installer>,
    pub(crate) torch: Option<TorchBackend>,
    #[serde(rename = "torch-index")]
    pub(crate) torch_index: Option<IndexBase>,
}

/// `[gpu]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawGpu {
    pub(crate) cuda: Option<Cuda>,
    pub(crate) driver_dirs: Option<Vec<String>>,
    /// GPUs the workspace asks an engine for (`labup export`): 1 to 64.
    pub(crate) count: Option<GpuCount>,
}

/// `[services.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawService {
    pub(crate) kind: Option<ServiceKind>,
    pub(crate) command: Option<Vec<String>>,
    pub(crate) port: Option<At<Port>>,
    pub(crate) root: Option<String>,
    pub(crate) open: Option<At<bool>>,
    pub(crate) ready: Option<At<Ready>>,
    pub(crate) env: Option<BTreeMap<String, At<String>>>,
    pub(crate) after: Option<Vec<At<String>>>,
    pub(crate) restart: Option<Restart>,
    pub(crate) enabled: Option<At<bool>>,
    pub(crate) models: Option<Vec<At<String>>>,
    /// Seconds between SIGTERM and SIGKILL when stopping.
    pub(crate) stop_timeout: Option<Seconds>,
    /// Seconds a start may take before it counts as failed.
    pub(crate) start_timeout: Option<Seconds>,
    /// Index of the file that declared the service (set by the loader, for error locations).
    #[serde(skip)]
    pub(crate) origin: usize,
}

/// A value with where it was written: its byte span and the index of the file (set by the
/// loader, [`RawFile::set_file`]). Merging keeps each value's own origin, so an error about a
/// value `labup.local.toml` set names that file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct At<T> {
    /// The value.
    pub(crate) value: T,
    /// Its bytes in the file's text.
    pub(crate) span: Range<usize>,
    /// Index of the file it came from.
    pub(crate) file: usize,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        Ok(At { span: s.span(), value: s.into_inner(), file: 0 })
    }
}

impl RawFile {
    /// Records `index` as the file of every located value (services and what they hold).
    pub(crate) fn set_file(&mut self, index: usize) {
        if let Some(py) = self.python.as_mut() {
            py.requirements.iter_mut().flatten().for_each(|r| r.file = index);
            py.lock.iter_mut().for_each(|l| l.file = index);
        }
        for svc in self.services.iter_mut().flat_map(|s| s.values_mut()) {
            let s = svc.get_mut();
            s.origin = index;
            s.port.iter_mut().for_each(|p| p.file = index);
            s.ready.iter_mut().for_each(|r| r.file = index);
            s.open.iter_mut().for_each(|o| o.file = index);
            s.enabled.iter_mut().for_each(|e| e.file = index);
            s.env.iter_mut().flat_map(|e| e.values_mut()).for_each(|v| v.file = index);
            s.after.iter_mut().flatten().for_each(|a| a.file = index);
            s.models.iter_mut().flatten().for_each(|m| m.file = index);
        }
    }
}

/// `[shell]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShell {
    pub(crate) autostart: Option<bool>,
    pub(crate) banner: Option<bool>,
}

/// `[nix]`: read by the flake, kept here so a typo in it is still caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNix {
    pub(crate) packages: Option<Vec<String>>,
}

/// Which installer drives the venv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Installer {
    /// uv when it can be found, else pip.
    #[default]
    Auto,
    /// uv, an error when missing.
    Uv,
    /// pip run from the interpreter.
    Pip,
}

/// `[gpu] cuda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Cuda {
    /// Use the GPU when one is found.
    #[default]
    Auto,
    /// Require a GPU.
    On,
    /// Never wire the GPU.
    Off,
}

/// A service's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ServiceKind {
    /// Any command the user declares (the default).
    #[default]
    Command,
    /// JupyterLab from the venv.
    Jupyter,
    /// An Ollama server.
    Ollama,
}

impl RawService {
    /// Its kind: as written, else the built-in kind its name is (`[services.jupyter]`,
    /// `[services.ollama]`) when it has no `command`, else `command`.
    pub(crate) fn kind_for(&self, name: &str) -> ServiceKind {
        self.kind.unwrap_or(match name {
            "jupyter" if self.command.is_none() => ServiceKind::Jupyter,
            "ollama" if self.command.is_none() => ServiceKind::Ollama,
            _ => ServiceKind::Command,
        })
    }
}

impl ServiceKind {
    /// The port a service of this kind takes when it names none.
    pub(crate) fn default_port(self) -> Option<Port> {
        match self {
            ServiceKind::Jupyter => Some(Port::Fixed(8888)),
            ServiceKind::Ollama => Some(Port::Fixed(11434)),
            ServiceKind::Command => None,
        }
    }
}

/// Restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Restart {
    /// Never restart.
    Never,
    /// Restart after a non-zero exit or a signal.
    #[default]
    OnFailure,
    /// Restart whenever it exits.
    Always,
}

/// A service port: a number in 1..=65535 or `"auto"` for a free one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    /// A fixed port.
    Fixed(u16),
    /// Any free port, chosen at start.
    Auto,
}

impl serde::Serialize for Port {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Fixed(p) => s.serialize_u16(*p),
            Port::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl Visitor<'_> for PortVisitor {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (1-65535) or \"auto\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                match u16::try_from(v) {
                    Ok(p) if p > 0 => Ok(Port::Fixed(p)),
                    _ => Err(E::custom(format!("port {v} is out of range: use 1-65535, or \"auto\" for a free port"))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                if v == "auto" {
                    Ok(Port::Auto)
                } else {
                    Err(E::custom(format!("invalid port \"{v}\": use a number (1-65535) or \"auto\"")))
                }
            }
        }
        d.deserialize_any(PortVisitor)
    }
}

/// A readiness probe: exactly one of `http`, `tcp`, `log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ready {
    /// GET this path on 127.0.0.1:port; any 2xx/3xx is ready.
    Http(String),
    /// The port accepts a TCP connection.
    Tcp,
    /// A log line matches this regex.
    Log(String),
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
}

impl serde::Serialize for Ready {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = match self {
            Ready::Http(p) => RawReady { http: Some(p.clone()), tcp: None, log: None },
            Ready::Tcp => RawReady { http: None, tcp: Some(true), log: None },
            Ready::Log(r) => RawReady { http: None, tcp: None, log: Some(r.clone()) },
        };
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ready {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawReady::deserialize(d)?;
        let probe = match (raw.http, raw.tcp, raw.log) {
            (Some(path), None, None) if path.starts_with('/') => Ready::Http(path),
            (Some(path), None, None) => {
                return Err(de::Error::custom(format!("`http` must be a path starting with `/`, got \"{path}\"")))
            }
            (None, Some(true), None) => Ready::Tcp,
            (None, Some(false), None) => {
                return Err(de::Error::custom("`tcp = false` is not a probe: remove `ready` to use the default"))
            }
            (None, None, Some(re)) => {
                regex::Regex::new(&re).map_err(|e| de::Error::custom(format!("`log` is not a valid regex: {e}")))?;
                Ready::Log(re)
            }
            _ => {
                return Err(de::Error::custom(
                    "`ready` takes exactly one of `http = \"/path\"`, `tcp = true`, `log = \"regex\"`",
                ))
            }
        };
        Ok(probe)
    }
}

/// A whole number of seconds, 1 to 3600.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u64::try_from(n) {
            Ok(s) if (1..=3600).contains(&s) => Ok(Seconds(s)),
            _ => Err(de::Error::custom(format!("{n} seconds is out of range: use 1-3600"))),
        }
    }
}

/// `[gpu] count`: a whole number of GPUs, 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct GpuCount(pub u32);

impl<'de> Deserialize<'de> for GpuCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        match u32::try_from(n) {
            Ok(c) if (1..=64).contains(&c) => Ok(GpuCount(c)),
            _ => Err(de::Error::custom(format!("{n} GPUs is out of range: use 1-64"))),
        }
    }
}

/// `[python] version`: `3.12` or `3.12.4`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct PythonVersion(pub String);

impl<'de> Deserialize<'de> for PythonVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let parts: Vec<&str> = s.split('.').collect();
        let numeric = parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !(2..=3).contains(&parts.len()) || !numeric {
            return Err(de::Error::custom(format!(
                "invalid Python version \"{s}\": write it like \"3.12\" or \"3.12.4\""
            )));
        }
        Ok(PythonVersion(s))
    }
}

/// `[python] torch`: `auto`, `cpu`, `cuXYZ`, `rocmX.Y`, `xpu`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct TorchBackend(pub String);

impl Default for TorchBackend {
    fn default() -> Self {
        TorchBackend("auto".into())
    }
}

impl<'de> Deserialize<'de> for TorchBackend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        // The names `gpu::torch::Backend` reads, and `auto`: one rule for both.
        if s != "auto" && crate::gpu::torch::Backend::parse(&s).is_none() {
            return Err(de::Error::custom(format!(
                "invalid torch backend \"{s}\": use \"auto\", \"cpu\", a CUDA index like \"cu126\", \"rocm6.3\", or \"pypi\" (PyPI's own wheels)"
            )));
        }
        Ok(TorchBackend(s))
    }
}

/// `[python] torch-index`: the base URL of a PyTorch wheel index (a mirror of
/// `https://download.pytorch.org/whl`); the backend's name is appended (`<base>/cu126`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct IndexBase(pub String);

impl<'de> Deserialize<'de> for IndexBase {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let rest = ["https://", "http://", "file://"].iter().find_map(|p| s.strip_prefix(p));
        if rest.is_none_or(|r| r.trim_matches('/').is_empty()) || s.contains(char::is_whitespace) {
            return Err(de::Error::custom(format!(
                "invalid torch-index \"{s}\": use the URL of a PyTorch wheel index without the backend, \
                 like \"https://download.pytorch.org/whl\" or a mirror of it (https://, http:// or file://)"
            )));
        }
        Ok(IndexBase(s.trim_end_matches('/').to_string()))
    }
}

/// Later files win, key by key; services merge by name.
pub(crate) fn merge(base: RawFile, over: RawFile) -> RawFile {
    RawFile {
        project: merge_opt(base.project, over.project, |b, o| RawProject { name: o.name.or(b.name) }),
        python: merge_opt(base.python, over.python, |b, o| RawPython {
            version: o.version.or(b.version),
            venv: o.venv.or(b.venv),
            requirements: o.requirements.or(b.requirements),
            packages: o.packages.or(b.packages),
            lock: o.lock.or(b.lock),
            installer: o.installer.or(b.installer),
            torch: o.torch.or(b.torch),
            torch_index: o.torch_index.or(b.torch_index),
        }),
        gpu: merge_opt(base.gpu, over.gpu, |b, o| RawGpu {
            cuda: o.cuda.or(b.cuda),
            driver_dirs: o.driver_dirs.or(b.driver_dirs),
            count: o.count.or(b.count),
        }),
        services: merge_opt(base.services, over.services, |mut b, o| {
            for (name, svc) in o {
                let merged = match b.remove(&name) {
                    Some(old) => {
                        let span = old.span();
                        Spanned::new(span, merge_service(old.into_inner(), svc.into_inner()))
                    }
                    None => svc,
                };
                b.insert(name, merged);
            }
            b
        }),
        shell: merge_opt(base.shell, over.shell, |b, o| RawShell {
            autostart: o.autostart.or(b.autostart),
            banner: o.banner.or(b.banner),
        }),
        nix: merge_opt(base.nix, over.nix, |b, o| RawNix { packages: o.packages.or(b.packages) }),
    }
}

fn merge_service(b: RawService, o: RawService) -> RawService {
    RawService {
        kind: o.kind.or(b.kind),
        command: o.command.or(b.command),
        port: o.port.or(b.port),
        root: o.root.or(b.root),
        open: o.open.or(b.open),
        ready: o.ready.or(b.ready),
        env: match (b.env, o.env) {
            (Some(mut b), Some(o)) => {
                b.extend(o);
                Some(b)
            }
            (b, o) => o.or(b),
        },
        after: o.after.or(b.after),
        restart: o.restart.or(b.restart),
        enabled: o.enabled.or(b.enabled),
        models: o.models.or(b.models),
        stop_timeout: o.stop_timeout.or(b.stop_timeout),
        start_timeout: o.start_timeout.or(b.start_timeout),
        origin: b.origin,
    }
}

fn merge_opt<T>(base: Option<T>, over: Option<T>, f: impl FnOnce(T, T) -> T) -> Option<T> {
    match (base, over) {
        (Some(b), Some(o)) => Some(f(b, o)),
        (b, o) => o.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_ready_round_trip_through_json() {
        for port in [Port::Fixed(8080), Port::Auto] {
            let json = serde_json::to_string(&port).unwrap();
            assert_eq!(serde_json::from_str::<Port>(&json).unwrap(), port);
        }
        for ready in [Ready::Http("/x".into()), Ready::Tcp, Ready::Log("up".into())] {
            let json = serde_json::to_string(&ready).unwrap();
            assert_eq!(serde_json::from_str::<Ready>(&json).unwrap(), ready, "{json}");
        }
        assert_eq!(serde_json::to_string(&Ready::Tcp).unwrap(), r#"{"tcp":true}"#);
    }
}
