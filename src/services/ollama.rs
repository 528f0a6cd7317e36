//! `kind = "ollama"`: reuse a server that already answers, else run `ollama serve` on
//! 127.0.0.1; pull the declared models with a progress bar; report where loaded models sit.
//!
//! Only the HTTP endpoints below are used: `/api/version`, `/api/tags`, streaming `/api/pull`,
//! `/api/ps`. The models folder is left where the user has it (`OLLAMA_MODELS` is inherited).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::envvars;
use crate::error::Fail;

/// The `ollama` program: `LABUP_OLLAMA`, else the first on PATH.
pub(crate) fn binary() -> Result<PathBuf, Fail> {
    if let Some(p) = envvars::get(envvars::LABUP_OLLAMA) {
        let path = PathBuf::from(&p);
        if path.is_file() {
            return Ok(path);
        }
        return Err(Fail::new(format!("{} is set to {p}, which does not exist", envvars::LABUP_OLLAMA))
            .hint(format!("fix or unset {}", envvars::LABUP_OLLAMA)));
    }
    crate::python::interpreter::search_path("ollama").ok_or_else(|| {
        Fail::new("a service of kind `ollama` is declared, but the `ollama` program is not installed").hint(format!(
            "install it (https://ollama.com/download), set {} to it, or run `nix run .#up-llm`, which provides it",
            envvars::LABUP_OLLAMA
        ))
    })
}

/// The `ollama serve` command line and environment for a port (`$PORT` is filled in later).
pub(crate) fn launch(binary: &std::path::Path) -> (Vec<String>, Vec<(String, String)>) {
    (
        vec![binary.display().to_string(), "serve".into()],
        // Loopback only: Ollama's API has no authentication.
        vec![("OLLAMA_HOST".into(), format!("{}:$PORT", super::bind_address()))],
    )
}

/// A client for one Ollama server on the loopback.
#[derive(Debug)]
pub(crate) struct Client {
    base: String,
    agent: ureq::Agent,
}

/// `/api/version`.
#[derive(Debug, Deserialize)]
struct Version {
    version: String,
}

/// `/api/tags` and `/api/ps` entries.
#[derive(Debug, Clone, Deserialize)]
struct ModelList {
    #[serde(default)]
    models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct ModelEntry {
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    size_vram: u64,
}

/// A model loaded in memory (`/api/ps`), for `labup status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Loaded {
    /// Model name.
    pub(crate) name: String,
    /// Bytes in memory.
    pub(crate) size: u64,
    /// Bytes of it in GPU memory.
    pub(crate) size_vram: u64,
}

impl Loaded {
    /// `100% GPU`, `CPU`, `40% GPU / 60% CPU`.
    pub(crate) fn placement(&self) -> String {
        if self.size_vram == 0 {
            return "CPU (not in GPU memory)".into();
        }
        let pct = (self.size_vram as f64 * 100.0 / self.size.max(1) as f64).round().min(100.0) as u64;
        if pct >= 100 {
            "100% in GPU memory".into()
        } else {
            format!("{pct}% GPU / {}% CPU", 100 - pct)
        }
    }
}

impl Client {
    /// A client for 127.0.0.1:`port`.
    pub(crate) fn new(port: u16, timeout: Option<Duration>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(timeout).build().into();
        Client { base: format!("http://127.0.0.1:{port}"), agent }
    }

    /// The server's version, when an Ollama server answers.
    pub(crate) fn version(&self) -> Option<String> {
        let mut resp = self.agent.get(format!("{}/api/version", self.base)).call().ok()?;
        resp.body_mut().read_json::<Version>().ok().map(|v| v.version)
    }

    /// Models present locally.
    pub(crate) fn tags(&self) -> Result<Vec<String>> {
        let mut resp = self.agent.get(format!("{}/api/tags", self.base)).call()?;
        Ok(resp.body_mut().read_json::<ModelList>()?.models.into_iter().map(|m| m.name).collect())
    }

    /// Models loaded in memory.
    pub(crate) fn loaded(&self) -> Result<Vec<Loaded>> {
        let mut resp = self.agent.get(format!("{}/api/ps", self.base)).call()?;
        Ok(resp
            .body_mut()
            .read_json::<ModelList>()?
            .models
            .into_iter()
            .map(|m| Loaded { name: m.name, size: m.size, size_vram: m.size_vram })
            .collect())
    }

    /// Pulls `model`, calling `progress` for every line of the stream.
    pub(crate) fn pull(&self, model: &str, mut progress: impl FnMut(&PullEvent)) -> Result<(), Fail> {
        let failed = |e: String| {
            Fail::new(format!("cannot pull the Ollama model `{model}`: {e}"))
                .hint("check the name at https://ollama.com/library and the network, then run `labup up` again")
        };
        let mut resp = self
            .agent
            .post(format!("{}/api/pull", self.base))
            .send_json(serde_json::json!({ "model": model, "stream": true }))
            .map_err(|e| failed(e.to_string()))?;
        let reader = std::io::BufReader::new(resp.body_mut().as_reader());
        let mut succeeded = false;
        for line in reader.lines() {
            let line = line.map_err(|e| failed(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let event = PullEvent::parse(&line).map_err(failed)?;
            progress(&event);
            match event {
                PullEvent::Failed(e) => return Err(failed(e)),
                PullEvent::Status(s) if s == "success" => succeeded = true,
                _ => {}
            }
        }
        if succeeded {
            Ok(())
        } else {
            Err(failed("the server ended the download without saying `success`".into()))
        }
    }
}

/// One line of the `/api/pull` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullEvent {
    /// A status without byte counts (`pulling manifest`, `verifying sha256 digest`, `success`).
    Status(String),
    /// Bytes of one layer.
    Layer {
        /// The layer's digest.
        digest: String,
        /// Its size.
        total: u64,
        /// Bytes so far.
        completed: u64,
    },
    /// `{"error": "…"}`.
    Failed(String),
}

impl PullEvent {
    /// Parses one JSON line.
    pub(crate) fn parse(line: &str) -> Result<PullEvent, String> {
        #[derive(Deserialize)]
        struct Line {
            status: Option<String>,
            digest: Option<String>,
            total: Option<u64>,
            completed: Option<u64>,
            error: Option<String>,
        }
        let l: Line =
            serde_json::from_str(line).map_err(|e| format!("unexpected answer from the server ({e}): {line}"))?;
        if let Some(e) = l.error {
            return Ok(PullEvent::Failed(e));
        }
        match (l.digest, l.total) {
            (Some(digest), Some(total)) => Ok(PullEvent::Layer { digest, total, completed: l.completed.unwrap_or(0) }),
            _ => Ok(PullEvent::Status(l.status.unwrap_or_default())),
        }
    }
}

/// Byte totals over every layer seen so far, for one progress bar per model.
#[derive(Debug, Default)]
pub(crate) struct PullProgress {
    layers: Vec<(String, u64, u64)>,
}

impl PullProgress {
    /// Takes one event; returns (done, total) bytes over all layers.
    pub(crate) fn update(&mut self, event: &PullEvent) -> (u64, u64) {
        if let PullEvent::Layer { digest, total, completed } = event {
            match self.layers.iter_mut().find(|l| &l.0 == digest) {
                Some(l) => {
                    l.1 = *total;
                    l.2 = (*completed).max(l.2);
                }
                None => self.layers.push((digest.clone(), *total, *completed)),
            }
        }
        self.layers.iter().fold((0, 0), |(d, t), l| (d + l.2.min(l.1), t + l.1))
    }
}

/// Models in `wanted` that are not in `present`; a name without a tag means `:latest`.
pub(crate) fn missing_models(wanted: &[String], present: &[String]) -> Vec<String> {
    let norm = |m: &str| if m.contains(':') { m.to_string() } else { format!("{m}:latest") };
    let have: Vec<String> = present.iter().map(|m| norm(m)).collect();
    wanted.iter().filter(|w| !have.contains(&norm(w))).cloned().collect()
}

/// An Ollama server labup found answering and uses without owning it.
#[derive(Debug, Clone)]
pub(crate) struct External {
    /// The service's name in the config.
    pub(crate) name: String,
    /// Its port.
    pub(crate) port: u16,
    /// The server's version.
    pub(crate) version: String,
    /// Models to pull into it.
    pub(crate) models: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_lines_parse() {
        assert_eq!(
            PullEvent::parse(r#"{"status":"pulling manifest"}"#),
            Ok(PullEvent::Status("pulling manifest".into()))
        );
        assert_eq!(
            PullEvent::parse(r#"{"status":"pulling abc","digest":"sha256:abc","total":100,"completed":40}"#),
            Ok(PullEvent::Layer { digest: "sha256:abc".into(), total: 100, completed: 40 })
        );
        assert_eq!(
            PullEvent::parse(r#"{"status":"pulling abc","digest":"sha256:abc","total":100}"#),
            Ok(PullEvent::Layer { digest: "sha256:abc".into(), total: 100, completed: 0 })
        );
        assert_eq!(
            PullEvent::parse(r#"{"error":"pull model manifest: file does not exist"}"#),
            Ok(PullEvent::Failed("pull model manifest: file does not exist".into()))
        );
        assert!(PullEvent::parse("<html>").is_err());
    }

    #[test]
    fn progress_sums_layers_and_never_goes_back() {
        let mut p = PullProgress::default();
        let layer = |d: &str, t, c| PullEvent::Layer { digest: d.into(), total: t, completed: c };
        assert_eq!(p.update(&layer("a", 100, 10)), (10, 100));
        assert_eq!(p.update(&layer("b", 50, 0)), (10, 150));
        assert_eq!(p.update(&layer("a", 100, 100)), (100, 150));
        assert_eq!(p.update(&layer("a", 100, 90)), (100, 150), "a late line does not move it back");
        assert_eq!(p.update(&PullEvent::Status("success".into())), (100, 150));
    }

    #[test]
    fn missing_models_understand_latest() {
        let present = vec!["llama3.2:1b".to_string(), "qwen:latest".to_string()];
        let wanted: Vec<String> = ["llama3.2:1b", "qwen", "llama3.2", "phi3:mini"].map(String::from).to_vec();
        assert_eq!(missing_models(&wanted, &present), ["llama3.2", "phi3:mini"]);
    }

    #[test]
    fn placement_reads_well() {
        let l = |size, size_vram| Loaded { name: "m".into(), size, size_vram };
        assert_eq!(l(100, 100).placement(), "100% in GPU memory");
        assert_eq!(l(100, 0).placement(), "CPU (not in GPU memory)");
        assert_eq!(l(100, 40).placement(), "40% GPU / 60% CPU");
    }

    #[test]
    fn launch_binds_loopback() {
        let (argv, env) = launch(std::path::Path::new("/bin/ollama"));
        assert_eq!(argv, ["/bin/ollama", "serve"]);
        assert_eq!(env, [("OLLAMA_HOST".to_string(), "127.0.0.1:$PORT".to_string())]);
    }
}
