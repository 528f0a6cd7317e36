//! Services: their specs, the supervisor that runs them, and the state it records.

pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod effects;
pub(crate) mod jupyter;
pub(crate) mod logs;
pub(crate) mod ollama;
pub(crate) mod policy;
pub(crate) mod ports;
pub(crate) mod probe;
pub(crate) mod proc;
pub(crate) mod reducer;
pub(crate) mod spec;
pub(crate) mod state;
pub(crate) mod supervisor;

/// The address the built-in services (Jupyter, Ollama) listen on: `LABUP_BIND_ADDRESS` when it
/// is an IP address (a pod, where the kubelet and the Service come in on the pod's address),
/// else 127.0.0.1.
pub(crate) fn bind_address() -> String {
    crate::envvars::get(crate::envvars::LABUP_BIND_ADDRESS)
        .filter(|a| a.parse::<std::net::IpAddr>().is_ok())
        .unwrap_or_else(|| "127.0.0.1".into())
}
