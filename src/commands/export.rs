//! `labup export <target>`: load the workspace, build the target's files, write them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::error::{fail, Fail};
use crate::export::Target;
use crate::ui::Ui;

/// `labup export`.
pub fn export(_root: &Path, target: &Target, _ui: &Ui) -> Result<ExitCode> {
    let name = match target {
        Target::Kubernetes { .. } => "kubernetes",
        Target::Slurm { .. } => "slurm",
        Target::Systemd { .. } => "systemd",
    };
    fail(Fail::new(format!("`labup export {name}` is not built yet")))
}
