//! `labup export <target>`: load the workspace, build the target's files, write them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::error::{fail, Fail};
use crate::export::Target;
use crate::ui::Ui;

/// `labup export`.
pub fn export(root: &Path, target: &Target, ui: &Ui) -> Result<ExitCode> {
    let name = match target {
        Target::Kubernetes { image, namespace, workdir, expose, output } => {
            return kubernetes(root, image.as_deref(), namespace.clone(), workdir, expose, output.as_deref(), ui);
        }
        Target::Slurm { .. } => "slurm",
        Target::Systemd { .. } => "systemd",
    };
    fail(Fail::new(format!("`labup export {name}` is not built yet")))
}

/// `labup export kubernetes`: the manifests on stdout, or one file per object in `-o DIR`. The
/// Jupyter token is made here, for the Secret only (never the workstation's own token).
fn kubernetes(
    root: &Path,
    image: Option<&str>,
    namespace: Option<String>,
    workdir: &str,
    expose: &[String],
    output: Option<&Path>,
    ui: &Ui,
) -> Result<ExitCode> {
    use crate::export::{kubernetes, output as out, Destination};
    let config = crate::config::Config::load(root)?;
    let image = match image {
        Some(i) => i.to_string(),
        None => {
            let name: String = config
                .project
                .name
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let image = format!("labup-{}:latest", name.trim_matches('-'));
            ui.info(format!("image: {image} (`--image` names the image that holds labup and the project)"));
            image
        }
    };
    let opts = kubernetes::Options { image, namespace, workdir: workdir.to_string(), expose: expose.to_vec() };
    let token = new_token()?;
    let files = kubernetes::manifests(&config, &opts, &token)?;
    let dest = output.map_or(Destination::Stdout, |d| Destination::Dir(d.to_path_buf()));
    for path in out::write(&files, &dest)? {
        ui.info(format!("wrote {}", path.display()));
    }
    if output.is_some() {
        ui.info("apply with `kubectl apply -f DIR`; the Secret holds a new Jupyter token at every export");
    }
    Ok(ExitCode::SUCCESS)
}

/// 24 random bytes as hex, from the kernel.
fn new_token() -> Result<String> {
    use std::io::Read;
    let mut buf = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Fail::new(format!("failed to read random bytes from /dev/urandom: {e}")))?;
    Ok(crate::python::lockfile::hex(&buf))
}
