//! The one colour decision and the one painter: ANSI colour only on a terminal, never with
//! `NO_COLOR` (<https://no-color.org>: set and not empty, whatever its value), decided for the
//! stream being written, since `labup up --foreground > log` still shows a coloured stderr.

use std::io::IsTerminal;

use crate::envvars;

/// The stream a piece of output goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Data, tables, the foreground log.
    Stdout,
    /// Progress, messages, errors.
    Stderr,
}

/// Which of the two streams are terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Terminals {
    /// stdout is a terminal.
    pub(crate) stdout: bool,
    /// stderr is a terminal.
    pub(crate) stderr: bool,
}

impl Terminals {
    /// The streams as they are now.
    pub(crate) fn now() -> Terminals {
        Terminals { stdout: std::io::stdout().is_terminal(), stderr: std::io::stderr().is_terminal() }
    }

    /// Whether `stream` is a terminal.
    pub(crate) fn has(self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

/// The decision, pure: colour on `stream` when that stream is a terminal and `NO_COLOR` is unset
/// or empty. labup has no `CLICOLOR_FORCE`: output that is not a terminal is never coloured.
pub(crate) fn wanted(stream: Stream, terminals: Terminals, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminals.has(stream) && no_color.is_none_or(|v| v.is_empty())
}

/// Whether output written to `stream` is coloured, from the terminal and the environment.
pub(crate) fn enabled(stream: Stream) -> bool {
    // `var_os`: a value that is not UTF-8 still turns colour off.
    wanted(stream, Terminals::now(), std::env::var_os(envvars::NO_COLOR).as_deref())
}

/// `text` in the ANSI style `code` (`"32"`, `"1;31"`) when `on`, else as it is.
pub(crate) fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn decision_table() {
        let no_colors: [(Option<&str>, bool); 5] =
            [(None, true), (Some(""), true), (Some("1"), false), (Some("0"), false), (Some("false"), false)];
        for stdout in [false, true] {
            for stderr in [false, true] {
                let terminals = Terminals { stdout, stderr };
                for (no_color, allows) in no_colors {
                    let no_color = no_color.map(OsStr::new);
                    let case = format!("stdout tty {stdout}, stderr tty {stderr}, NO_COLOR {no_color:?}");
                    assert_eq!(wanted(Stream::Stdout, terminals, no_color), stdout && allows, "stdout: {case}");
                    assert_eq!(wanted(Stream::Stderr, terminals, no_color), stderr && allows, "stderr: {case}");
                }
            }
        }
        // The two cases that matter most, spelled out: a piped log keeps a coloured terminal.
        let piped = Terminals { stdout: false, stderr: true };
        assert!(!wanted(Stream::Stdout, piped, None));
        assert!(wanted(Stream::Stderr, piped, None));
    }

    #[cfg(unix)]
    #[test]
    fn no_color_that_is_not_utf8_still_counts() {
        use std::os::unix::ffi::OsStrExt;
        let both = Terminals { stdout: true, stderr: true };
        assert!(!wanted(Stream::Stderr, both, Some(OsStr::from_bytes(b"\xff"))));
    }

    #[test]
    fn painting_on_and_off() {
        assert_eq!(paint("✓", "32", true), "\x1b[32m✓\x1b[0m");
        assert_eq!(paint("error:", "1;31", true), "\x1b[1;31merror:\x1b[0m");
        assert_eq!(paint("✓", "32", false), "✓");
        assert_eq!(paint("", "2", false), "");
    }
}
