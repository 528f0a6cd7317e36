//! `labup export systemd`: one service unit that keeps the workspace up on a shared server.
//!
//! The unit runs `labup up --foreground` in the project (`Type=exec`). `KillMode=mixed` sends
//! the stop signal to labup alone, which stops its services' process groups gracefully, each
//! within its `stop-timeout`; `TimeoutStopSec` is above the largest of those, and only after it
//! does systemd SIGKILL what is left. The NixOS module in the flake writes the same unit.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::{File, MARKER};
use crate::envvars;

/// What the unit is made from.
#[derive(Debug, Clone)]
pub(crate) struct Unit<'a> {
    /// The project name (`[project] name`).
    pub(crate) project: &'a str,
    /// The project folder (absolute).
    pub(crate) root: &'a Path,
    /// The labup binary (absolute).
    pub(crate) labup: &'a Path,
    /// `Some(user)` for a system unit (`User=`), `None` for the user's own manager.
    pub(crate) user: Option<&'a str>,
    /// The largest `stop-timeout` of the enabled services.
    pub(crate) stop_timeout: Duration,
    /// `LABUP_*` variables to carry (the Nix wrapper's store paths, the state folder).
    pub(crate) env: BTreeMap<String, String>,
}

/// The `LABUP_*` variables a unit carries from the exporting environment when they are set:
/// the store paths the Nix wrapper passes, the driver folders and the state folder.
pub(crate) const CARRIED: [&str; 6] = [
    envvars::LABUP_PYTHON,
    envvars::LABUP_UV,
    envvars::LABUP_OLLAMA,
    envvars::LABUP_LIBRARY_PATH,
    envvars::LABUP_DRIVER_DIRS,
    envvars::LABUP_STATE_DIR,
];

/// Grace systemd adds on top of the services' own stop timeouts before it kills.
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// `labup-<project>.service`, the project name reduced to what unit names allow.
pub(crate) fn unit_name(project: &str) -> String {
    let name: String =
        project.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    format!("labup-{name}.service")
}

/// `%` starts a specifier in unit files: doubled, it is a plain `%`.
fn specifiers_off(text: &str) -> String {
    text.replace('%', "%%")
}

/// One word of `ExecStart=`: specifiers and `$` expansion off, double-quoted when needed.
fn exec_word(text: &str) -> String {
    let t = specifiers_off(text).replace('$', "$$");
    if t.is_empty() || t.contains(|c: char| c.is_whitespace() || "\"'\\;".contains(c)) {
        format!("\"{}\"", t.replace('\\', r"\\").replace('"', "\\\""))
    } else {
        t
    }
}

/// One `Environment=` assignment, quoted.
fn env_assignment(key: &str, value: &str) -> String {
    let v = specifiers_off(value).replace('\\', r"\\").replace('"', "\\\"");
    format!("Environment=\"{key}={v}\"")
}

/// The unit file.
pub(crate) fn unit(u: &Unit) -> File {
    let root = u.root.display().to_string();
    let labup = u.labup.display().to_string();
    let mut s = format!("# {MARKER} for the project `{}`.\n", u.project);
    s.push_str(if u.user.is_some() {
        "# Install: copy it to /etc/systemd/system/, then `systemctl daemon-reload && systemctl enable --now <name>`.\n"
    } else {
        "# Install: copy it to ~/.config/systemd/user/, then `systemctl --user daemon-reload && systemctl --user enable --now <name>`.\n"
    });
    s.push_str("[Unit]\n");
    s.push_str(&format!("Description=labup workspace {}\n", specifiers_off(u.project)));
    s.push_str("After=network-online.target\nWants=network-online.target\n\n");
    s.push_str("[Service]\nType=exec\n");
    if let Some(user) = u.user {
        s.push_str(&format!("User={user}\n"));
    }
    s.push_str(&format!("WorkingDirectory={}\n", specifiers_off(&root)));
    s.push_str(&format!(
        "ExecStart={} --project {} up --foreground --no-browser\n",
        exec_word(&labup),
        exec_word(&root)
    ));
    s.push_str("Restart=on-failure\nRestartSec=5\n");
    s.push_str("# SIGTERM to labup only: it stops its services' process groups itself; SIGKILL to the rest\n");
    s.push_str("# after TimeoutStopSec (the largest service stop-timeout + 30 s).\n");
    s.push_str("KillMode=mixed\n");
    s.push_str(&format!("TimeoutStopSec={}\n", (u.stop_timeout + STOP_MARGIN).as_secs()));
    s.push_str(&env_assignment(envvars::LABUP_NO_BROWSER, "1"));
    s.push('\n');
    for (k, v) in &u.env {
        s.push_str(&env_assignment(k, v));
        s.push('\n');
    }
    s.push_str("\n[Install]\n");
    s.push_str(if u.user.is_some() { "WantedBy=multi-user.target\n" } else { "WantedBy=default.target\n" });
    File { name: unit_name(u.project), text: s.replace("<name>", &unit_name(u.project)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(user: Option<&str>) -> String {
        let env: BTreeMap<String, String> =
            [("LABUP_PYTHON".to_string(), "/nix/store/abc-python3/bin/python3".to_string())].into();
        let u = Unit {
            project: "demo",
            root: Path::new("/srv/ws/ana"),
            labup: Path::new("/usr/local/bin/labup"),
            user,
            stop_timeout: Duration::from_secs(10),
            env,
        };
        let f = unit(&u);
        assert_eq!(f.name, "labup-demo.service");
        f.text
    }

    #[test]
    fn system_unit_follows_the_contract() {
        let text = sample(Some("ana"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains(MARKER), "{text}");
        for want in [
            "[Unit]",
            "Description=labup workspace demo",
            "After=network-online.target",
            "Wants=network-online.target",
            "[Service]",
            "Type=exec",
            "User=ana",
            "WorkingDirectory=/srv/ws/ana",
            "ExecStart=/usr/local/bin/labup --project /srv/ws/ana up --foreground --no-browser",
            "Restart=on-failure",
            "RestartSec=5",
            "KillMode=mixed",
            "TimeoutStopSec=40",
            "Environment=\"LABUP_NO_BROWSER=1\"",
            "Environment=\"LABUP_PYTHON=/nix/store/abc-python3/bin/python3\"",
            "[Install]",
            "WantedBy=multi-user.target",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{text}");
        }
        assert!(text.contains("systemctl enable --now labup-demo.service"), "{text}");
    }

    #[test]
    fn user_unit_has_no_user_and_wants_default_target() {
        let text = sample(None);
        assert!(!text.contains("User="), "{text}");
        assert!(text.lines().any(|l| l == "WantedBy=default.target"), "{text}");
        assert!(text.contains("systemctl --user enable --now labup-demo.service"), "{text}");
    }

    #[test]
    fn odd_paths_and_names_are_escaped() {
        assert_eq!(unit_name("my demo/ü"), "labup-my-demo--.service");
        assert_eq!(exec_word("/a b/labup"), "\"/a b/labup\"");
        assert_eq!(exec_word("/a/$HOME/100%"), "/a/$$HOME/100%%");
        assert_eq!(env_assignment("K", "a \"b\" 5%"), "Environment=\"K=a \\\"b\\\" 5%%\"");
    }
}
