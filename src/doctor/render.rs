//! The human form of a report: one aligned line per check, details and fix indented under it.

use super::{Report, Status};
use crate::ui::paint;

/// The mark and its colour.
fn mark(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Ok => ("✓", "32"),
        Status::Warn => ("!", "33"),
        Status::Fail => ("✗", "31"),
        Status::Skip => ("-", "2"),
    }
}

/// The report as text for a terminal (`color`: ANSI colours).
pub(crate) fn render(report: &Report, color: bool) -> String {
    let width = report.checks.iter().map(|c| c.title.chars().count()).max().unwrap_or(0);
    let indent = " ".repeat(width + 4);
    let mut out = String::new();
    for c in &report.checks {
        let (m, code) = mark(c.status);
        let title = format!("{:width$}", c.title);
        let message = if c.status == Status::Skip { paint(&c.message, "2", color) } else { c.message.clone() };
        out.push_str(&format!("{} {}  {message}\n", paint(m, code, color), paint(&title, "1", color)));
        for d in &c.details {
            out.push_str(&format!("{indent}  {d}\n"));
        }
        if let Some(fix) = &c.fix {
            out.push_str(&format!("{indent}{} {fix}\n", paint("fix:", "36", color)));
        }
    }
    let s = report.summary;
    let mut parts = vec![format!("{} ok", s.ok)];
    if s.warn > 0 {
        parts.push(crate::ui::count(s.warn, "warning"));
    }
    parts.push(format!("{} failed", s.fail));
    if s.skip > 0 {
        parts.push(format!("{} skipped", s.skip));
    }
    out.push_str(&format!("\n{}\n", parts.join(", ")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Check;

    fn check(title: &'static str, status: Status, message: &str, fix: Option<&str>, details: &[&str]) -> Check {
        Check {
            id: "x",
            title,
            status,
            message: message.into(),
            fix: fix.map(str::to_string),
            details: details.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn aligned_with_fix_and_details() {
        let report = Report::new(vec![
            check("Python interpreter", Status::Ok, "Python 3.11.7 at /usr/bin/python3", None, &[]),
            check(
                "wheel linkage",
                Status::Fail,
                "a library not found: libz.so.1",
                Some("add zlib"),
                &["p: p/x.so needs libz.so.1"],
            ),
            check("WSL", Status::Skip, "not WSL", None, &[]),
        ]);
        let text = render(&report, false);
        assert_eq!(
            text,
            "✓ Python interpreter  Python 3.11.7 at /usr/bin/python3\n\
             ✗ wheel linkage       a library not found: libz.so.1\n\
             \x20                       p: p/x.so needs libz.so.1\n\
             \x20                     fix: add zlib\n\
             - WSL                 not WSL\n\
             \n1 ok, 1 failed, 1 skipped\n"
        );
        assert!(render(&report, true).contains("\x1b[31m✗\x1b[0m"));
    }
}
