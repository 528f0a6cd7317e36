//! labup: bring up a Python data-science workspace in one command.

pub(crate) mod browser;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod doctor;
pub(crate) mod env;
pub(crate) mod envvars;
pub(crate) mod error;
pub(crate) mod export;
pub(crate) mod fsutil;
pub(crate) mod gpu;
pub(crate) mod init;
pub(crate) mod project;
pub(crate) mod python;
pub(crate) mod services;
pub(crate) mod shell;
pub(crate) mod ui;

/// What the integration tests under `tests/` use of the library; everything else is
/// `pub(crate)` (the `unreachable_pub` lint keeps it so).
#[doc(hidden)]
pub mod testing {
    pub use crate::envvars::ALL as ENV_VARS;
    pub use crate::gpu::ldcache::build as ld_cache;
    pub use crate::init::FLAKE;
}

use clap::Parser as _;

/// Entry point for the binary: parse, run, render errors, pick the exit code.
pub fn main() -> std::process::ExitCode {
    let cli = cli::Cli::try_parse().unwrap_or_else(|e| cli::suggest_commands(e).exit());
    let ui = ui::Ui::new(cli.quiet, cli.verbose);
    match cli::run(cli, &ui) {
        Ok(code) => code,
        Err(err) => {
            let (exit, text) = error::render(&err, ui.color);
            eprint!("{text}");
            std::process::ExitCode::from(exit as u8)
        }
    }
}
