//! Services: their specs, the supervisor that runs them, and the state it records.

pub mod policy;
pub mod ports;
pub mod probe;
pub mod proc;
