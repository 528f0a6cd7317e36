//! `labup open [SERVICE]`: a running service's URL in the browser again (Jupyter by default);
//! where no browser can be opened here (SSH, no display, `LABUP_NO_BROWSER`), the URL and the
//! `ssh -L` line that reaches it from the user's own machine.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::browser;
use crate::config::Config;
use crate::error::Fail;
use crate::project::Layout;
use crate::services::state::RunDir;
use crate::ui::Ui;

/// `labup open [SERVICE]`.
pub(crate) fn open(root: &Path, service: Option<&str>, ui: &Ui) -> Result<ExitCode> {
    let config = Config::load(root)?;
    let name = match service {
        Some(n) => {
            crate::services::spec::select(&config, &[n.to_string()])?;
            n.to_string()
        }
        None => config
            .services
            .iter()
            .find(|s| s.kind == crate::config::ServiceKind::Jupyter && s.enabled)
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                Fail::usage("no Jupyter service is declared, so `labup open` needs a service name")
                    .hint("`labup open <service>`; `labup status` lists them")
            })?,
    };
    let state = RunDir::of(&Layout::of(root)).read();
    let record = state.services.get(&name).filter(|r| r.running());
    let Some(record) = record else {
        return Err(Fail::new(format!("`{name}` is not running"))
            .hint(format!("start it with `labup up {name}`"))
            .into());
    };
    let Some(url) = record.url() else {
        return Err(Fail::usage(format!("`{name}` has no port, so there is no URL to open")).into());
    };
    println!("{url}");
    match browser::open_here(&url, false) {
        Ok(program) => ui.info(format!("opened {name} in the browser (`{program}`)")),
        Err(why) => {
            ui.info(format!("not opening a browser: {why}"));
            if let Some(port) = record.port {
                ui.info(format!("from your own machine: {}, then open the URL above", tunnel_hint(port)));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ssh -N -L PORT:127.0.0.1:PORT user@host`: the tunnel that makes a loopback-only service of
/// this machine reachable at the same URL from another one.
pub(super) fn tunnel_hint(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "THIS-HOST".into());
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
    let target = user.map_or(host.clone(), |u| format!("{u}@{host}"));
    format!("ssh -N -L {port}:127.0.0.1:{port} {target}")
}
