//! Integration tests: the real labup binary against real Python, venvs, uv and pip.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod snapshot;

mod browser;
mod config_errors;
mod container;
mod docs;
mod doctor;
mod dry_run;
mod export_kubernetes;
mod first_hour;
mod foreground;
mod gpu;
mod hook;
mod init;
mod jupyter;
mod jupyterhub;
mod ollama;
mod pip;
mod run_env;
mod safety;
mod services;
mod slurm;
mod sources;
mod support;
mod sync;
mod systemd;
