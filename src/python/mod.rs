//! The Python workspace: interpreter, venv, requirement sources, lock and sync.

pub(crate) mod engine;
pub(crate) mod fingerprint;
pub(crate) mod interpreter;
pub(crate) mod kernelspec;
pub(crate) mod lockfile;
pub(crate) mod plan;
pub(crate) mod sources;
pub(crate) mod sync;
pub(crate) mod venv;
