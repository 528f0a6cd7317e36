//! Where a configuration value was written: a file's text kept for messages, and errors that
//! point at a span of it (`file:line:col`, the line, a caret), for the loader and the conflict
//! checks alike.

use std::ops::Range;

use crate::error::Fail;

/// One source of configuration text, kept for error locations.
#[derive(Debug)]
pub(super) struct Source {
    /// The path shown in messages.
    pub(crate) display: String,
    /// The file's text.
    pub(crate) text: String,
}

/// `file:line:col: message` and the source line with a caret under `span`, the message as is.
pub(super) fn pointed(source: &Source, span: Range<usize>, message: &str) -> Fail {
    let (line, col) = line_col(&source.text, span.start);
    let text_line = source.text.lines().nth(line - 1).unwrap_or_default();
    let width = source.text[span].lines().next().map_or(1, |l| l.chars().count().max(1));
    let gutter = " ".repeat(line.to_string().len());
    let snippet = format!(
        "{gutter} |\n{line} | {text_line}\n{gutter} | {}{}",
        " ".repeat(col - 1),
        "^".repeat(width.min(text_line.chars().count().saturating_sub(col - 1).max(1)))
    );
    Fail::usage(format!("{}:{line}:{col}: {message}\n{snippet}", source.display))
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a\nbc\n", 0), (1, 1));
        assert_eq!(line_col("a\nbc\n", 3), (2, 2));
        assert_eq!(line_col("é\nbc", 3), (2, 1), "columns count characters, offsets bytes");
    }

    #[test]
    fn pointed_names_the_place_and_underlines_the_value() {
        let source = Source { display: "labup.toml".into(), text: "[a]\nport = 99999\n".into() };
        let fail = pointed(&source, 11..16, "port out of range");
        assert_eq!(fail.message, "labup.toml:2:8: port out of range\n  |\n2 | port = 99999\n  |        ^^^^^");
    }
}
