//! `labup init [--flake] [--force]`: writes `labup.toml` (and `flake.nix`) for the current folder.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::error::Fail;
use crate::fsutil;
use crate::init;
use crate::ui::Ui;

/// `labup init`: writes what is missing and keeps every file that exists (the user's config is
/// never overwritten without `force`); when everything asked for exists it writes nothing.
pub(crate) fn init(root: &Path, flake: bool, force: bool, ui: &Ui) -> Result<ExitCode> {
    let detected = init::detect(root);
    let mut files = vec![("labup.toml", init::render(&detected))];
    if flake {
        files.push(("flake.nix", init::FLAKE.to_string()));
    }
    let existing: Vec<&str> = files.iter().map(|(n, _)| *n).filter(|n| root.join(n).exists()).collect();
    if !force && existing.len() == files.len() {
        let what = existing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and ");
        let verb = if existing.len() == 1 { "exists" } else { "exist" };
        return Err(Fail::new(format!("{what} already {verb} in {}: nothing written", root.display()))
            .hint(format!("`labup init --force{}` overwrites {what}", if flake { " --flake" } else { "" }))
            .into());
    }
    for (name, text) in &files {
        if !force && existing.contains(name) {
            ui.info(format!("kept {name}: it exists (`--force` overwrites it)"));
            continue;
        }
        fsutil::atomic_write(&root.join(name), text.as_bytes())?;
        let verb = if existing.contains(name) { "overwrote" } else { "wrote" };
        ui.info(format!("{} {verb} {name}{}", ui.paint("✓", "32"), summary(name, &detected)));
        if *name == "flake.nix" {
            ui.info(
                "note: flake.nix takes labup from `inputs.labup.url = \"github:OWNER/labup\"`: replace OWNER/labup \
                 with where labup is published (or a local `path:`) before `nix run .#up`",
            );
        }
    }
    let ignore = root.join(".gitignore");
    let old = match fs::read_to_string(&ignore) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", ignore.display())),
    };
    if let Some((text, added)) = init::gitignore(old.as_deref()) {
        fsutil::atomic_write(&ignore, text.as_bytes())?;
        ui.info(format!("{} added {} to .gitignore", ui.paint("✓", "32"), added.join(", ")));
    }
    ui.info(if flake {
        "next: `nix run .#up` (or `labup up`); commit labup.toml, flake.nix and .gitignore"
    } else {
        "next: `labup up`; commit labup.toml and .gitignore"
    });
    Ok(ExitCode::SUCCESS)
}

/// `: services jupyter (notebooks/), app (server.py); requirements.txt`.
fn summary(name: &str, d: &init::Detected) -> String {
    if name == "flake.nix" {
        return ": `labup.lib.mkFlake { src = ./.; }`".into();
    }
    let mut services = vec![match &d.notebooks {
        Some(dir) => format!("jupyter ({dir})"),
        None => "jupyter".into(),
    }];
    if d.server_py {
        services.push("app (server.py)".into());
    }
    let mut inputs = d.requirement_files.clone();
    if d.pyproject {
        inputs.push("pyproject.toml".into());
    }
    let inputs = if inputs.is_empty() { "no requirements yet".into() } else { inputs.join(", ") };
    let gpu = if d.gpu.is_some() { "; NVIDIA GPU" } else { "" };
    format!(": services {}; {inputs}{gpu}", services.join(", "))
}
