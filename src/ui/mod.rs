//! Output: progress and logs on stderr, data on stdout; colour and spinners only when wanted.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::envvars;

pub mod banner;

/// How chatty and how fancy stderr is.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// `-q`: only errors.
    pub quiet: bool,
    /// `-v`: the commands labup runs and their output.
    pub verbose: bool,
    /// ANSI colour on stderr.
    pub color: bool,
    /// Spinners on stderr.
    pub progress: bool,
}

impl Ui {
    /// Settles output from the flags, the terminal and the environment.
    pub fn new(quiet: bool, verbose: bool) -> Ui {
        let tty = std::io::stderr().is_terminal();
        let color = tty && envvars::get(envvars::NO_COLOR).is_none();
        let progress = tty && !quiet && !verbose && envvars::get(envvars::LABUP_NO_PROGRESS).is_none();
        console::set_colors_enabled_stderr(color);
        Ui { quiet, verbose, color, progress }
    }

    /// A step with a spinner (on a TTY); finish it with [`Step::done`].
    pub fn step(&self, message: impl Into<String>) -> Step {
        let message = message.into();
        let bar = if self.progress {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.set_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            self.debug(format!("{message}…"));
            ProgressBar::hidden()
        };
        Step { ui: *self, bar, started: Instant::now() }
    }

    /// A log line (hidden by `-q`).
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A warning (shown even with `-q`).
    pub fn warn(&self, message: impl AsRef<str>) {
        eprintln!("{} {}", self.paint("warning:", "1;33"), message.as_ref());
    }

    /// A line only `-v` shows.
    pub fn debug(&self, message: impl AsRef<str>) {
        if self.verbose {
            eprintln!("{}", self.paint(message.as_ref(), "2"));
        }
    }

    /// `text` in an ANSI style when colour is on.
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// A running step.
#[derive(Debug)]
pub struct Step {
    ui: Ui,
    bar: ProgressBar,
    started: Instant,
}

impl Step {
    /// Ends the step with a summary line and its duration.
    pub fn done(self, message: impl AsRef<str>) {
        self.bar.finish_and_clear();
        let took = format_duration(self.started.elapsed());
        self.ui.info(format!(
            "{} {} {}",
            self.ui.paint("✓", "32"),
            message.as_ref(),
            self.ui.paint(&format!("in {took}"), "2")
        ));
    }

    /// Ends the step without a line (the error says what happened).
    pub fn abandon(self) {
        self.bar.finish_and_clear();
    }
}

/// `1 package`, `3 packages`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `12ms`, `1.4s`, `2m05s`.
pub fn format_duration(d: Duration) -> String {
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
