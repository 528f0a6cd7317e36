//! Services: their specs, the supervisor that runs them, and the state it records.

pub mod client;
pub mod control;
pub mod effects;
pub mod jupyter;
pub mod logs;
pub mod ollama;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod proc;
pub mod reducer;
pub mod spec;
pub mod state;
pub mod supervisor;

/// The address the built-in services (Jupyter, Ollama) listen on: `LABUP_BIND_ADDRESS` when it
/// is an IP address (a pod, where the kubelet and the Service come in on the pod's address),
/// else 127.0.0.1.
pub fn bind_address() -> String {
    crate::envvars::get(crate::envvars::LABUP_BIND_ADDRESS)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .unwrap_or_else(|| "127.0.0.1".into())
}
