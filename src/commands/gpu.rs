//! `labup gpu`: the driver, the GPUs and the torch backend, with the reason for each choice.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::display_path;
use crate::gpu::{self, Report};
use crate::project::Workspace;
use crate::ui::Ui;

/// `labup gpu [--json]`.
pub(crate) fn gpu(root: &Path, json: bool, ui: &Ui) -> Result<ExitCode> {
    let (report, warnings) = gpu::report(&Workspace::load(root)?)?;
    for w in &warnings {
        ui.warn(w);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// The short human-readable block.
fn render(r: &Report) -> String {
    let or_none = |p: &Option<std::path::PathBuf>| p.as_deref().map_or("none".to_string(), display_path);
    let platform =
        serde_json::to_value(r.platform).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let source = serde_json::to_value(r.source).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut out = format!("platform       {platform}\n");
    match &r.driver_version {
        Some(v) => out.push_str(&format!(
            "driver         {v} (from {source}), CUDA ≤ {}\n",
            r.cuda_max.as_deref().unwrap_or("none")
        )),
        None => out.push_str("driver         none\n"),
    }
    let layout = r.layout.and_then(|l| serde_json::to_value(l).ok()).and_then(|v| v.as_str().map(str::to_string));
    out.push_str(&format!(
        "driver libs    {}{}\n",
        or_none(&r.driver_dir),
        layout.map(|l| format!(" (layout {l})")).unwrap_or_default()
    ));
    out.push_str(&format!("linked in      {}\n", or_none(&r.link_dir)));
    if r.devices.is_empty() {
        out.push_str("GPUs           none found\n");
    }
    for d in &r.devices {
        out.push_str(&format!(
            "GPU {:<10} {} · {} MiB · compute {} · {}\n",
            d.index, d.name, d.memory_mib, d.compute_capability, d.uuid
        ));
    }
    out.push_str(&format!("torch          {}: {}\n", r.torch_backend, r.reason));
    out.push_str(&format!("torch index    {}\n", r.torch_index));
    out
}
