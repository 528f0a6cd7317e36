//! The environment each child gets (services, `labup run`, venv tools), every entry with its
//! reason. The parent's environment is never changed: this is applied to a child command only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::envvars;
use crate::gpu::Wiring;
use crate::project::Workspace;

/// One part of a `:`-separated path variable, with why it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Part {
    /// The folder(s).
    pub(crate) value: String,
    /// Why.
    pub(crate) reason: String,
}

/// One variable labup sets or removes for children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Entry {
    /// Variable name.
    pub(crate) name: String,
    /// New value; `None` removes it.
    pub(crate) value: Option<String>,
    /// Why.
    pub(crate) reason: String,
    /// For path variables, each part and its reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) parts: Vec<Part>,
    /// Something else worth knowing (what was left out and why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// The changes labup makes to the inherited environment for a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ChildEnv {
    /// Set or removed variables, in a stable order.
    pub(crate) entries: Vec<Entry>,
}

impl ChildEnv {
    /// The workspace environment for children, computed from the config, the parent's
    /// environment and the GPU wiring (all passed in, so this is pure).
    pub(crate) fn workspace(ws: &Workspace, parent: &BTreeMap<String, String>, gpu: &Wiring) -> ChildEnv {
        let config = &ws.config;
        let venv = &config.python.venv;
        let mut entries = vec![Entry {
            name: "VIRTUAL_ENV".into(),
            value: Some(venv.display().to_string()),
            reason: "the workspace venv".into(),
            parts: Vec::new(),
            note: None,
        }];
        // What `labup hook` put on the shell's PATH (the venv, its wrappers) is labup's own, not
        // the user's: left out, a service gets the same PATH from a hooked shell as from any
        // other, so a `labup up` there does not see a changed spec and restart everything.
        let ours = [venv.join("bin"), ws.layout.shell_bin()];
        let inherited = parent.get("PATH").map(|p| {
            p.split(':').filter(|e| !ours.iter().any(|o| Path::new(e) == o.as_path())).collect::<Vec<_>>().join(":")
        });
        entries.push(path_entry(
            "PATH",
            vec![Part {
                value: venv.join("bin").display().to_string(),
                reason: "the venv's python and tools first".into(),
            }],
            inherited,
        ));
        let mut libs: Vec<Part> = parent
            .get(envvars::LABUP_LIBRARY_PATH)
            .map(|v| v.split(':').filter(|p| !p.is_empty()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|p| Part {
                value: p.to_string(),
                reason: format!("from {}: native libraries PyPI wheels need under Nix", envvars::LABUP_LIBRARY_PATH),
            })
            .collect();
        if let Some(dir) = &gpu.link_dir {
            libs.push(Part { value: dir.display().to_string(), reason: gpu.reason.clone() });
        }
        entries.extend(library_path(libs, parent));
        if parent.contains_key("PYTHONHOME") {
            entries.push(Entry {
                name: "PYTHONHOME".into(),
                value: None,
                reason: "it would point Python away from the venv".into(),
                parts: Vec::new(),
                note: None,
            });
        }
        ChildEnv { entries }
    }

    /// Applies the changes to a command about to be spawned.
    pub(crate) fn apply(&self, cmd: &mut std::process::Command) {
        for e in &self.entries {
            match &e.value {
                Some(v) => cmd.env(&e.name, v),
                None => cmd.env_remove(&e.name),
            };
        }
    }

    /// `NAME=value` lines for set variables, `unset NAME` for removed ones.
    pub(crate) fn render(&self, explain: bool) -> String {
        let mut out = String::new();
        for e in &self.entries {
            match &e.value {
                Some(v) => out.push_str(&format!("{}={v}\n", e.name)),
                None => out.push_str(&format!("unset {}\n", e.name)),
            }
            if explain {
                if let Some(note) = &e.note {
                    out.push_str(&format!("    # {note}\n"));
                }
                if e.parts.is_empty() {
                    out.push_str(&format!("    # {}\n", e.reason));
                }
                for p in &e.parts {
                    out.push_str(&format!("    {}  # {}\n", p.value, p.reason));
                }
            }
        }
        out
    }
}

/// `LD_LIBRARY_PATH` is exactly labup's parts: the inherited value is not passed on, because
/// what shells and old flakes put there (a CUDA toolkit, `/usr/lib/x86_64-linux-gnu`) makes Nix
/// programs load the host's glibc-linked libraries and pip's torch load a foreign `libnvJitLink`.
fn library_path(parts: Vec<Part>, parent: &BTreeMap<String, String>) -> Option<Entry> {
    let name = "LD_LIBRARY_PATH";
    let inherited = parent.get(name).filter(|v| !v.is_empty());
    let note = inherited.map(|v| {
        format!(
            "your own {name} ({v}) is not passed on: host and CUDA toolkit folders there break Nix programs and \
             pip's torch; set it in a service's `env` if a program needs it"
        )
    });
    if parts.is_empty() {
        return inherited.map(|_| Entry {
            name: name.into(),
            value: None,
            reason: note.clone().unwrap_or_default(),
            parts: Vec::new(),
            note: None,
        });
    }
    let value = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(":");
    Some(Entry { name: name.into(), value: Some(value), reason: format!("{name} for the workspace"), parts, note })
}

/// A path variable: labup's parts first, then what the parent had.
fn path_entry(name: &str, mut parts: Vec<Part>, inherited: Option<String>) -> Entry {
    if let Some(inherited) = inherited.filter(|v| !v.is_empty()) {
        parts.push(Part { value: inherited, reason: "inherited from your environment".into() });
    }
    let value = parts.iter().map(|p| p.value.as_str()).collect::<Vec<_>>().join(":");
    Entry { name: name.into(), value: Some(value), reason: format!("{name} for the workspace"), parts, note: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn config() -> (tempfile::TempDir, Workspace) {
        let dir = tempfile::tempdir().unwrap();
        let c = Workspace::load(dir.path()).unwrap();
        (dir, c)
    }

    fn get<'a>(env: &'a ChildEnv, name: &str) -> Option<&'a Entry> {
        env.entries.iter().find(|e| e.name == name)
    }

    #[test]
    fn what_the_hook_put_on_path_is_not_inherited_twice() {
        let (dir, c) = config();
        let hooked =
            format!("{}:{}:/usr/bin:/bin", c.layout.shell_bin().display(), dir.path().join(".venv/bin").display());
        let plain = ChildEnv::workspace(&c, &parent(&[("PATH", "/usr/bin:/bin")]), &Wiring::default());
        let from_hook = ChildEnv::workspace(&c, &parent(&[("PATH", &hooked)]), &Wiring::default());
        assert_eq!(get(&plain, "PATH"), get(&from_hook, "PATH"));
    }

    #[test]
    fn venv_bin_goes_first_on_path() {
        let (dir, c) = config();
        let env = ChildEnv::workspace(&c, &parent(&[("PATH", "/usr/bin:/bin")]), &Wiring::default());
        let path = get(&env, "PATH").unwrap();
        assert_eq!(path.value.as_deref(), Some(format!("{}/.venv/bin:/usr/bin:/bin", dir.path().display()).as_str()));
        assert_eq!(get(&env, "VIRTUAL_ENV").unwrap().value, Some(format!("{}/.venv", dir.path().display())));
    }

    #[test]
    fn library_path_is_labup_library_path_then_the_driver_folder_and_nothing_inherited() {
        let (_dir, c) = config();
        let gpu = Wiring {
            link_dir: Some("/p/.labup/driver/550.144.03".into()),
            reason: "NVIDIA driver".into(),
            warnings: vec![],
        };
        let env = ChildEnv::workspace(
            &c,
            &parent(&[("LABUP_LIBRARY_PATH", "/nix/a/lib"), ("LD_LIBRARY_PATH", "/usr/lib")]),
            &gpu,
        );
        let ld = get(&env, "LD_LIBRARY_PATH").unwrap();
        assert_eq!(ld.value.as_deref(), Some("/nix/a/lib:/p/.labup/driver/550.144.03"));
        let text = env.render(true);
        assert!(text.contains("your own LD_LIBRARY_PATH (/usr/lib) is not passed on"), "{text}");
        assert!(text.contains("    /p/.labup/driver/550.144.03  # NVIDIA driver\n"), "{text}");
        let bare = ChildEnv::workspace(&c, &parent(&[("LD_LIBRARY_PATH", "/usr/lib")]), &Wiring::default());
        assert_eq!(get(&bare, "LD_LIBRARY_PATH").unwrap().value, None, "the inherited value is removed");
    }

    #[test]
    fn library_path_only_from_labup_library_path() {
        let (_dir, c) = config();
        let env = ChildEnv::workspace(&c, &parent(&[("PATH", "/bin")]), &Wiring::default());
        assert!(get(&env, "LD_LIBRARY_PATH").is_none(), "nothing added without LABUP_LIBRARY_PATH");
        let env = ChildEnv::workspace(
            &c,
            &parent(&[("LABUP_LIBRARY_PATH", "/nix/store/a-gcc-lib/lib:/nix/store/b-zlib/lib")]),
            &Wiring::default(),
        );
        let ld = get(&env, "LD_LIBRARY_PATH").unwrap();
        assert_eq!(ld.value.as_deref(), Some("/nix/store/a-gcc-lib/lib:/nix/store/b-zlib/lib"));
        assert_eq!(ld.parts.len(), 2);
    }

    #[test]
    fn pythonhome_is_removed_and_explained() {
        let (_dir, c) = config();
        let env = ChildEnv::workspace(&c, &parent(&[("PYTHONHOME", "/x")]), &Wiring::default());
        assert_eq!(get(&env, "PYTHONHOME").unwrap().value, None);
        let text = env.render(true);
        assert!(text.contains("unset PYTHONHOME\n    # it would point Python away from the venv\n"), "{text}");
    }
}
