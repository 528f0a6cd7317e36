//! Errors as the user sees them: `error: …`, `Caused by: …` lines, `hint: …`, and the exit code.

use std::fmt;

/// Exit codes: 0 success, 1 failure, 2 usage or configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Something failed.
    Failure = 1,
    /// Bad input: command line or configuration.
    Usage = 2,
}

/// An error labup raised itself, with an exit code and an optional hint.
///
/// It can sit anywhere in an `anyhow` chain; `render` finds it to pick the hint and code.
#[derive(Debug)]
pub(crate) struct Fail {
    /// A lowercase fragment that reads well after "error: ".
    pub(crate) message: String,
    /// What to run or change, shown after `hint: `.
    pub(crate) hint: Option<String>,
    /// The exit code.
    pub(crate) exit: Exit,
}

impl Fail {
    /// A runtime failure (exit 1).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Fail { message: message.into(), hint: None, exit: Exit::Failure }
    }

    /// A usage or configuration error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Fail { message: message.into(), hint: None, exit: Exit::Usage }
    }

    /// Adds a hint.
    #[must_use]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

/// Shorthand for returning a [`Fail`] as an `anyhow::Error`.
pub(crate) fn fail<T>(f: Fail) -> anyhow::Result<T> {
    Err(f.into())
}

/// The failures whose kind drives a decision (which hint to give, what was left untouched):
/// callers match on the variant, never on the text. All of their wording is here, in
/// [`Error::message`] and [`Error::hint`]; [`labup_error`] shows one as a [`Fail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// The lock is missing or out of date and `--locked` forbids resolving.
    LockStale {
        /// The lock file, as shown to the user.
        lock: String,
        /// Whether it is missing (else out of date).
        missing: bool,
        /// The requirement sources, described.
        sources: String,
        /// The torch backend whose lock it is (`None`: no torch, or PyPI's own wheels).
        backend: Option<String>,
    },
    /// A fixed port is held by something else.
    PortInUse {
        /// The port.
        port: u16,
        /// Who holds it (`pid 123 (python)`).
        holder: String,
    },
    /// An installer (uv or pip) failed.
    Installer(InstallerFailure),
}

/// Why an installer failed, read once from its own output where it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstallerCause {
    /// It could not reach an index.
    Network,
    /// No version satisfies the requirements, or a package does not exist.
    Resolution,
    /// Something else: its output says what.
    Other,
}

/// What the installer was doing when it failed, which says what was left as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Resolving the requirements into a lock: nothing was changed.
    Resolution,
    /// Installing into the venv: the venv is not marked as synced.
    Install,
}

/// A failed installer run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstallerFailure {
    /// What it was doing (`resolving the requirements`).
    pub(crate) what: String,
    /// `exit code 1` or `a signal`.
    pub(crate) status: String,
    /// The last lines of its stderr.
    pub(crate) output: String,
    /// Why, as far as its output tells.
    pub(crate) cause: InstallerCause,
    /// The sync stage, with the sources and the lock it was working from; `None`: no hint.
    pub(crate) during: Option<(Stage, String, String)>,
}

impl Error {
    /// A lowercase sentence that reads well after "error: ".
    pub(crate) fn message(&self) -> String {
        match self {
            Error::LockStale { lock, missing, sources, .. } => {
                let (what, why) = match missing {
                    true => ("is missing", "there is none"),
                    false => ("is out of date", "the requirements changed since it was written"),
                };
                format!("{lock} {what} and `--locked` forbids resolving: {why} ({sources})")
            }
            Error::PortInUse { port, holder } => {
                format!("port {port} is in use by {holder}: stop it, or set `port = \"auto\"`")
            }
            Error::Installer(f) => format!("{} failed ({}):\n{}", f.what, f.status, f.output),
        }
    }

    /// What to run or change.
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            // Each torch backend has its own lock: this machine's may never have been made.
            Error::LockStale { lock, backend: Some(b), .. } => Some(format!(
                "run `labup lock` on a machine that picks the `{b}` torch index (or anywhere with \
                 `[python] torch = \"{b}\"` in labup.local.toml) and commit {lock}"
            )),
            Error::LockStale { backend: None, .. } => Some("run `labup lock` and commit the lock file".into()),
            Error::PortInUse { .. } => None,
            Error::Installer(f) => {
                let (stage, sources, lock) = f.during.as_ref()?;
                let kept = match stage {
                    Stage::Resolution => format!("the venv and {lock} were left as they were"),
                    Stage::Install => "the venv is not marked as synced, so the next `labup sync` repairs it".into(),
                };
                Some(match f.cause {
                    InstallerCause::Network => {
                        format!("check the network connection or the index in your requirements; {kept}")
                    }
                    InstallerCause::Resolution => format!("check the package names and versions in {sources}; {kept}"),
                    InstallerCause::Other => format!("run again with `-v` to see the installer's output; {kept}"),
                })
            }
        }
    }

    /// The exit code: all of these are runtime failures.
    pub(crate) fn exit(&self) -> Exit {
        Exit::Failure
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<&Error> for Fail {
    fn from(e: &Error) -> Fail {
        Fail { message: e.message(), hint: e.hint(), exit: e.exit() }
    }
}

/// The labup error in an `anyhow` chain, a [`Fail`] or an [`Error`], as a [`Fail`] (the first
/// one found: its hint and exit code are the ones shown).
pub(crate) fn labup_error(err: &anyhow::Error) -> Option<Fail> {
    err.chain().find_map(|e| match (e.downcast_ref::<Fail>(), e.downcast_ref::<Error>()) {
        (Some(f), _) => Some(Fail { message: f.message.clone(), hint: f.hint.clone(), exit: f.exit }),
        (None, Some(e)) => Some(e.into()),
        (None, None) => None,
    })
}

/// The exit code and the text for stderr.
pub(crate) fn render(err: &anyhow::Error, color: bool) -> (Exit, String) {
    let style = |s: &str, code: &str| crate::ui::paint(s, code, color);
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        if i == 0 {
            out.push_str(&format!("{} {first}\n", style("error:", "1;31")));
        } else {
            out.push_str(&format!("  {} {first}\n", style("Caused by:", "1")));
        }
        for line in lines {
            out.push_str(&format!("    {line}\n"));
        }
    }
    let fail = labup_error(err);
    if let Some(hint) = fail.as_ref().and_then(|f| f.hint.as_deref()) {
        out.push_str(&format!("{} {}\n", style("hint:", "1;36"), hint));
    }
    (fail.map_or(Exit::Failure, |f| f.exit), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn renders_chain_hint_and_code() {
        let e = anyhow::Error::from(Fail::usage("bad key").hint("remove it")).context("failed to load labup.toml");
        let (code, text) = render(&e, false);
        assert_eq!(code, Exit::Usage);
        assert_eq!(text, "error: failed to load labup.toml\n  Caused by: bad key\nhint: remove it\n");
    }

    #[test]
    fn plain_errors_exit_one_without_hint() {
        let e: anyhow::Result<()> = Err(std::io::Error::other("disk full")).context("writing");
        let (code, text) = render(&e.unwrap_err(), false);
        assert_eq!(code, Exit::Failure);
        assert_eq!(text, "error: writing\n  Caused by: disk full\n");
    }

    #[test]
    fn multi_line_causes_are_indented() {
        let e = anyhow::Error::from(Fail::new("uv failed:\nline one\nline two"));
        let (_, text) = render(&e, false);
        assert_eq!(text, "error: uv failed:\n    line one\n    line two\n");
    }

    fn installer(cause: InstallerCause, stage: Option<Stage>) -> Error {
        Error::Installer(InstallerFailure {
            what: "resolving the requirements".into(),
            status: "exit code 1".into(),
            output: "tail".into(),
            cause,
            during: stage.map(|s| (s, "requirements.txt".into(), "requirements.lock".into())),
        })
    }

    #[test]
    fn installer_hints_follow_the_cause_and_the_stage() {
        let hint = |c, s| installer(c, s).hint().unwrap();
        let net = hint(InstallerCause::Network, Some(Stage::Resolution));
        assert_eq!(
            net,
            "check the network connection or the index in your requirements; \
             the venv and requirements.lock were left as they were"
        );
        let res = hint(InstallerCause::Resolution, Some(Stage::Install));
        assert_eq!(
            res,
            "check the package names and versions in requirements.txt; \
             the venv is not marked as synced, so the next `labup sync` repairs it"
        );
        assert!(hint(InstallerCause::Other, Some(Stage::Install)).starts_with("run again with `-v`"));
        assert_eq!(installer(InstallerCause::Network, None).hint(), None, "outside a sync stage: no hint");
        assert_eq!(
            installer(InstallerCause::Other, None).message(),
            "resolving the requirements failed (exit code 1):\ntail"
        );
    }

    #[test]
    fn a_stale_lock_names_the_backend_whose_lock_it_is() {
        let stale = |missing, backend: Option<&str>| Error::LockStale {
            lock: "requirements.cu126.lock".into(),
            missing,
            sources: "requirements.txt".into(),
            backend: backend.map(str::to_string),
        };
        assert_eq!(
            stale(true, None).message(),
            "requirements.cu126.lock is missing and `--locked` forbids resolving: there is none (requirements.txt)"
        );
        assert!(stale(false, None).message().contains("is out of date"));
        assert_eq!(stale(false, None).hint().as_deref(), Some("run `labup lock` and commit the lock file"));
        let hint = stale(false, Some("cu126")).hint().unwrap();
        assert!(
            hint.contains("picks the `cu126` torch index") && hint.ends_with("commit requirements.cu126.lock"),
            "{hint}"
        );
    }

    #[test]
    fn typed_errors_render_with_their_hint_under_context() {
        let e = anyhow::Error::from(installer(InstallerCause::Resolution, Some(Stage::Resolution)))
            .context("failed to sync");
        let (code, text) = render(&e, false);
        assert_eq!(code, Exit::Failure);
        assert!(text.starts_with("error: failed to sync\n  Caused by: resolving the requirements failed"), "{text}");
        assert!(text.ends_with("hint: check the package names and versions in requirements.txt; the venv and requirements.lock were left as they were\n"), "{text}");
        let port = Error::PortInUse { port: 8888, holder: "pid 7 (python)".into() };
        assert_eq!(port.to_string(), "port 8888 is in use by pid 7 (python): stop it, or set `port = \"auto\"`");
        let found = labup_error(&anyhow::Error::from(port).context("x")).unwrap();
        assert_eq!((found.hint, found.exit), (None, Exit::Failure));
    }
}
