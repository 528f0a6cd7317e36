//! Errors as the user sees them: `error: …`, `Caused by: …` lines, `hint: …`, and the exit code.

use std::fmt;

/// Exit codes: 0 success, 1 failure, 2 usage or configuration error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Something failed.
    Failure = 1,
    /// Bad input: command line or configuration.
    Usage = 2,
}

/// An error labup raised itself, with an exit code and an optional hint.
///
/// It can sit anywhere in an `anyhow` chain; `render` finds it to pick the hint and code.
#[derive(Debug)]
pub struct Fail {
    /// A lowercase fragment that reads well after "error: ".
    pub message: String,
    /// What to run or change, shown after `hint: `.
    pub hint: Option<String>,
    /// The exit code.
    pub exit: Exit,
}

impl Fail {
    /// A runtime failure (exit 1).
    pub fn new(message: impl Into<String>) -> Self {
        Fail { message: message.into(), hint: None, exit: Exit::Failure }
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Fail { message: message.into(), hint: None, exit: Exit::Usage }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
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
pub fn fail<T>(f: Fail) -> anyhow::Result<T> {
    Err(f.into())
}

/// The exit code and the text for stderr.
pub fn render(err: &anyhow::Error, color: bool) -> (Exit, String) {
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
    let fail = err.chain().find_map(|e| e.downcast_ref::<Fail>());
    if let Some(hint) = fail.and_then(|f| f.hint.as_deref()) {
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
}
