//! `labup doctor`: run the checks, print them, exit 1 when one fails.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::doctor::{self, render, Context};
use crate::envvars;
use crate::project::Workspace;

/// `labup doctor [--json]`.
pub fn doctor(root: &Path, json: bool) -> Result<ExitCode> {
    let ctx = Context::new(Workspace::load(root)?, super::parent_env());
    let report = doctor::run(&ctx);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let color = std::io::stdout().is_terminal() && envvars::get(envvars::NO_COLOR).is_none();
        print!("{}", render::render(&report, color));
    }
    Ok(if report.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
