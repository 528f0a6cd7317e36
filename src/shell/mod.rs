//! Shell integration: `labup hook` activation code, the interpreter wrappers it puts on PATH,
//! and the registry of shells that started services on entry (`[shell] autostart`).

pub(crate) mod autostart;
pub(crate) mod script;
pub(crate) mod wrappers;

/// The shells `labup hook` writes code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    /// `eval "$(labup hook bash)"`.
    Bash,
    /// `eval "$(labup hook zsh)"`.
    Zsh,
    /// `labup hook fish | source`.
    Fish,
}

/// `'text'` for sh, bash and zsh: nothing inside single quotes is special but `'` itself.
pub(crate) fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `'text'` for fish, where `\'` and `\\` are the escapes inside single quotes.
pub(crate) fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_backslashes() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(fish_quote(r"it's a\b"), r"'it\'s a\\b'");
    }
}
