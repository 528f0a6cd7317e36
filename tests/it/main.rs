//! Integration tests: the real labup binary against real Python, venvs, uv and pip.

#![allow(clippy::unwrap_used)]

mod config_errors;
mod docs;
mod hook;
mod init;
mod pip;
mod run_env;
mod safety;
mod services;
mod sources;
mod support;
mod sync;
