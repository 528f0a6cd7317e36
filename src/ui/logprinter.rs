//! The foreground log: every service's output on stdout, each line after its service's name
//! padded to the longest name and a `|`, the prefix in the service's colour on a terminal
//! (`web     | GET / 200`), the way `docker compose up` and foreman print theirs.

use std::io::{self, Write};

use super::color::{self, Stream};

/// The prefix colours, given out in the order of the services.
const PALETTE: [&str; 6] = ["36", "35", "33", "32", "34", "31"];

/// Prints the new output of a set of services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogPrinter {
    color: bool,
}

impl LogPrinter {
    /// A printer that colours its prefixes when `color`.
    pub(crate) fn new(color: bool) -> LogPrinter {
        LogPrinter { color }
    }

    /// A printer for stdout, coloured when stdout is a terminal and `NO_COLOR` allows it.
    pub(crate) fn stdout() -> LogPrinter {
        LogPrinter::new(color::enabled(Stream::Stdout))
    }

    /// Writes `chunks`, one `(service, new text)` for every service in a fixed order (quiet ones
    /// with empty text): the names set the width and each position its colour, so neither shifts
    /// when a service falls silent. A last line without its newline is printed as a line.
    pub(crate) fn write<N: AsRef<str>, T: AsRef<str>>(
        &self,
        out: &mut impl Write,
        chunks: &[(N, T)],
    ) -> io::Result<()> {
        let width = chunks.iter().map(|(name, _)| name.as_ref().chars().count()).max().unwrap_or(0);
        for (i, (name, text)) in chunks.iter().enumerate() {
            let prefix = format!("{:width$} |", name.as_ref());
            let prefix = color::paint(&prefix, PALETTE[i % PALETTE.len()], self.color);
            for line in text.as_ref().lines() {
                writeln!(out, "{prefix} {line}")?;
            }
        }
        out.flush()
    }

    /// [`LogPrinter::write`] to stdout. A closed or full stdout loses the lines, never the
    /// supervisor (which `println!` would panic).
    pub(crate) fn print<N: AsRef<str>, T: AsRef<str>>(&self, chunks: &[(N, T)]) {
        let _ = self.write(&mut io::stdout().lock(), chunks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(printer: LogPrinter, chunks: &[(&str, &str)]) -> String {
        let mut out = Vec::new();
        printer.write(&mut out, chunks).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn prefixes_pad_to_the_longest_name() {
        let text = written(
            LogPrinter::new(false),
            &[("jupyter", "[I] serving\n[I] kernel started\n"), ("web", "GET / 200\n"), ("ollama", "")],
        );
        assert_eq!(text, "jupyter | [I] serving\njupyter | [I] kernel started\nweb     | GET / 200\n");
    }

    #[test]
    fn a_quiet_service_still_sets_the_width() {
        let text = written(LogPrinter::new(false), &[("web", "up\n"), ("a-long-name", "")]);
        assert_eq!(text, "web         | up\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let text = written(LogPrinter::new(false), &[("wéb", "é\n"), ("api", "ok\n")]);
        assert_eq!(text, "wéb | é\napi | ok\n");
    }

    #[test]
    fn colours_by_position_and_cycle() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let chunks: Vec<(&str, &str)> = names.iter().map(|n| (*n, "x\n")).collect();
        let text = written(LogPrinter::new(true), &chunks);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "\x1b[36ma |\x1b[0m x");
        assert_eq!(lines[1], "\x1b[35mb |\x1b[0m x");
        assert_eq!(lines[5], "\x1b[31mf |\x1b[0m x");
        assert_eq!(lines[6], "\x1b[36mg |\x1b[0m x", "the seventh takes the first colour again");
    }

    #[test]
    fn a_silent_service_keeps_its_colour_slot() {
        let text = written(LogPrinter::new(true), &[("a", ""), ("b", "x\n")]);
        assert_eq!(text, "\x1b[35mb |\x1b[0m x\n");
    }

    #[test]
    fn no_colour_no_escape() {
        let text = written(LogPrinter::new(false), &[("a", "x\n"), ("b", "y\n")]);
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn line_endings_and_a_partial_last_line() {
        let text = written(LogPrinter::new(false), &[("w", "one\r\ntwo")]);
        assert_eq!(text, "w | one\nw | two\n");
    }

    #[test]
    fn nothing_new_writes_nothing() {
        assert_eq!(written(LogPrinter::new(true), &[("a", ""), ("b", "")]), "");
        assert_eq!(written(LogPrinter::new(true), &[]), "");
    }
}
