//! labup: bring up a Python data-science workspace in one command.

pub mod browser;
pub mod cli;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod env;
pub mod envvars;
pub mod error;
pub mod export;
pub mod fsutil;
pub mod gpu;
pub mod init;
pub mod project;
pub mod python;
pub mod services;
pub mod shell;
pub mod ui;

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
