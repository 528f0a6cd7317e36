//! Services: their specs, the supervisor that runs them, and the state it records.

pub mod control;
pub mod jupyter;
pub mod logs;
pub mod ollama;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod proc;
pub mod spec;
pub mod state;
pub mod supervisor;
