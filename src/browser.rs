//! Opening a URL in the user's browser: WSL through `wslview` or `explorer.exe`, macOS `open`,
//! else `xdg-open`; never without a display, over SSH, or when told not to.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::envvars;

/// Where labup runs, as far as opening a browser goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    /// Linux with a desktop (or not).
    Linux,
    /// Linux under WSL: the browser is on the Windows side.
    Wsl,
    /// macOS.
    MacOs,
}

impl Platform {
    /// The platform of this process.
    pub(crate) fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if is_wsl(&std::fs::read_to_string("/proc/version").unwrap_or_default(), &vars()) {
            Platform::Wsl
        } else {
            Platform::Linux
        }
    }
}

/// WSL by its kernel (`/proc/version` names Microsoft) or the variables WSL sets.
pub(crate) fn is_wsl(proc_version: &str, vars: &BTreeMap<String, String>) -> bool {
    proc_version.to_lowercase().contains("microsoft")
        || vars.contains_key("WSL_DISTRO_NAME")
        || vars.contains_key("WSL_INTEROP")
}

fn vars() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// The program that opens a URL here, or why none is used (pure: environment and PATH lookups
/// are passed in).
pub(crate) fn opener(
    platform: Platform,
    vars: &BTreeMap<String, String>,
    no_browser: bool,
    on_path: impl Fn(&str) -> bool,
) -> Result<&'static str, String> {
    let set = |k: &str| vars.get(k).is_some_and(|v| !v.is_empty());
    if no_browser {
        return Err("--no-browser".into());
    }
    if vars.get(envvars::LABUP_NO_BROWSER).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(format!("{} is set", envvars::LABUP_NO_BROWSER));
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") || set("SSH_CLIENT") {
        return Err("this is an SSH session: open the URL on your machine (forward the port with `ssh -L`)".into());
    }
    match platform {
        Platform::MacOs => Ok("open"),
        Platform::Wsl => ["wslview", "explorer.exe"]
            .into_iter()
            .find(|p| on_path(p))
            .ok_or_else(|| "neither `wslview` (package wslu) nor `explorer.exe` is on PATH".into()),
        Platform::Linux => {
            if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
                return Err("there is no display (DISPLAY and WAYLAND_DISPLAY are unset)".into());
            }
            if on_path("xdg-open") {
                Ok("xdg-open")
            } else {
                Err("`xdg-open` is not installed".into())
            }
        }
    }
}

/// Whether `program` is on PATH (an executable file).
pub(crate) fn on_path(program: &str) -> bool {
    crate::python::interpreter::search_path(program).is_some()
}

/// Opens `url` with `program`, detached: labup does not wait for the browser.
pub(crate) fn open(program: &str, url: &str) -> std::io::Result<()> {
    Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// Opens `url` here unless a rule says not to; returns what happened, for the user.
pub(crate) fn open_here(url: &str, no_browser: bool) -> Result<&'static str, String> {
    let program = opener(Platform::current(), &vars(), no_browser, on_path)?;
    open(program, url).map_err(|e| format!("`{program}` failed: {e}"))?;
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn linux_needs_a_display_and_xdg_open() {
        let all = |_: &str| true;
        assert_eq!(opener(Platform::Linux, &env(&[("DISPLAY", ":0")]), false, all), Ok("xdg-open"));
        assert_eq!(opener(Platform::Linux, &env(&[("WAYLAND_DISPLAY", "wayland-0")]), false, all), Ok("xdg-open"));
        assert!(opener(Platform::Linux, &env(&[]), false, all).unwrap_err().contains("no display"));
        assert!(opener(Platform::Linux, &env(&[("DISPLAY", ":0")]), false, |_| false)
            .unwrap_err()
            .contains("xdg-open"));
    }

    #[test]
    fn wsl_prefers_wslview_then_explorer() {
        let v = env(&[]);
        assert_eq!(opener(Platform::Wsl, &v, false, |_| true), Ok("wslview"));
        assert_eq!(opener(Platform::Wsl, &v, false, |p| p == "explorer.exe"), Ok("explorer.exe"));
        assert!(opener(Platform::Wsl, &v, false, |_| false).is_err());
    }

    #[test]
    fn macos_opens() {
        assert_eq!(opener(Platform::MacOs, &env(&[]), false, |_| false), Ok("open"));
    }

    #[test]
    fn never_over_ssh_or_when_told_not_to() {
        let d = ("DISPLAY", ":0");
        assert!(opener(Platform::Linux, &env(&[d, ("SSH_CONNECTION", "1 2 3 4")]), false, |_| true).is_err());
        assert!(opener(Platform::MacOs, &env(&[("SSH_TTY", "/dev/pts/1")]), false, |_| true).is_err());
        assert!(opener(Platform::Linux, &env(&[d, ("LABUP_NO_BROWSER", "1")]), false, |_| true).is_err());
        assert_eq!(opener(Platform::Linux, &env(&[d, ("LABUP_NO_BROWSER", "0")]), false, |_| true), Ok("xdg-open"));
        assert!(opener(Platform::Linux, &env(&[d]), true, |_| true).unwrap_err().contains("--no-browser"));
    }

    #[test]
    fn wsl_is_detected_from_the_kernel_or_variables() {
        assert!(is_wsl("Linux version 5.15.153.1-microsoft-standard-WSL2", &env(&[])));
        assert!(is_wsl("Linux version 6.1", &env(&[("WSL_DISTRO_NAME", "Ubuntu")])));
        assert!(!is_wsl("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", &env(&[])));
    }
}
