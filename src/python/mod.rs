//! The Python workspace: interpreter, venv, requirement sources, lock and sync.

pub mod engine;
pub mod fingerprint;
pub mod interpreter;
pub mod kernelspec;
pub mod lockfile;
pub mod plan;
pub mod sources;
pub mod sync;
pub mod venv;
