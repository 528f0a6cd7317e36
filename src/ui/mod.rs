//! Output: progress and logs on stderr, data on stdout; colour and spinners only when wanted.
//! The one output layer: [`color`] decides and paints, [`progress`] draws spinners and bars
//! that never outlive their work, [`logprinter`] prints the foreground log.

use std::time::Duration;

use crate::envvars;

pub(crate) mod banner;
pub(crate) mod color;
pub(crate) mod logprinter;
pub(crate) mod progress;

pub(crate) use color::{paint, Stream};
pub(crate) use logprinter::LogPrinter;
pub(crate) use progress::{Spinners, Step};

/// How chatty and how fancy stderr is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    /// `-q`: only errors.
    pub(crate) quiet: bool,
    /// `-v`: the commands labup runs and their output.
    pub(crate) verbose: bool,
    /// ANSI colour on stderr.
    pub(crate) color: bool,
    /// Spinners on stderr.
    pub(crate) progress: bool,
}

impl Ui {
    /// Settles output from the flags, the terminal and the environment.
    pub(crate) fn new(quiet: bool, verbose: bool) -> Ui {
        let color = color::enabled(Stream::Stderr);
        let no_progress = envvars::get(envvars::LABUP_NO_PROGRESS).is_some();
        let progress = progress::wanted(color::Terminals::now().stderr, quiet, verbose, no_progress);
        // indicatif paints its spinners through `console`: the same decision.
        console::set_colors_enabled_stderr(color);
        Ui { quiet, verbose, color, progress }
    }

    /// A step with a spinner (on a TTY); finish it with [`Step::done`]. Dropped unfinished (an
    /// error on the way), it takes its spinner away.
    pub(crate) fn step(&self, message: impl Into<String>) -> Step {
        Step::start(*self, message.into())
    }

    /// One spinner per service (on a TTY), cleared when dropped.
    pub(crate) fn spinners<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Spinners {
        Spinners::new(self, names)
    }

    /// A download bar with `prefix` (on a TTY), cleared when dropped.
    pub(crate) fn bytes_bar(&self, prefix: impl Into<String>) -> indicatif::ProgressBar {
        progress::bytes(self, prefix.into())
    }

    /// A log line (hidden by `-q`). Like every line here, it is printed above a spinner that
    /// is drawn, not through it.
    pub(crate) fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            progress::above(|| eprintln!("{}", message.as_ref()));
        }
    }

    /// A warning (shown even with `-q`).
    pub(crate) fn warn(&self, message: impl AsRef<str>) {
        progress::above(|| eprintln!("{} {}", self.paint("warning:", "1;33"), message.as_ref()));
    }

    /// A line only `-v` shows.
    pub(crate) fn debug(&self, message: impl AsRef<str>) {
        if self.verbose {
            progress::above(|| eprintln!("{}", self.paint(message.as_ref(), "2")));
        }
    }

    /// `text` in an ANSI style when colour is on (for stderr).
    pub(crate) fn paint(&self, text: &str, code: &str) -> String {
        paint(text, code, self.color)
    }
}

/// `1 package`, `3 packages`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `12ms`, `1.4s`, `2m05s`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_well() {
        assert_eq!(count(1, "package"), "1 package");
        assert_eq!(count(0, "package"), "0 packages");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(format_duration(Duration::from_millis(1400)), "1.4s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
