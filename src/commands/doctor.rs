//! `labup doctor`: run the checks, print them, exit 1 when one fails.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::doctor::{self, render, Context};
use crate::project::Workspace;
use crate::ui::{color, Stream};

/// `labup doctor [--json]`.
pub(crate) fn doctor(root: &Path, json: bool) -> Result<ExitCode> {
    let ctx = Context::new(Workspace::load(root)?, super::parent_env());
    let report = doctor::run(&ctx);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render::render(&report, color::enabled(Stream::Stdout)));
    }
    Ok(if report.failed() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
