//! Snapshots of what users read: the exit code, stdout and stderr of one labup run, with what
//! differs between runs (the temporary project folder, the fixture wheels and caches, the
//! interpreter's path, durations, pids, ports where a test asks) replaced by placeholders.
//!
//! `labup_snapshot!(project, output)` compares against `tests/it/snapshots/<module>__<test>.snap`;
//! `labup_snapshot!(project, output, "127.0.0.1:\\d+" => "127.0.0.1:[PORT]")` adds filters.
//! Write new ones with `INSTA_UPDATE=always cargo nextest run …` (or `cargo insta review`) and
//! read every `.snap` before committing it.

use crate::support::{shared, Output, Project};

/// The filters every snapshot gets, most specific first.
pub fn filters(p: &Project) -> Vec<(String, String)> {
    let s = shared();
    let mut paths = vec![
        (s.wheels.display().to_string(), "[WHEELS]"),
        (s.cache.display().to_string(), "[CACHE]"),
        (s.python.display().to_string(), "[PYTHON]"),
        (s.uv.display().to_string(), "[UV]"),
    ];
    for root in [p.root().to_path_buf(), p.root().canonicalize().unwrap_or_else(|_| p.root().to_path_buf())] {
        paths.push((root.display().to_string(), "[PROJECT]"));
    }
    let mut out: Vec<(String, String)> =
        paths.into_iter().map(|(path, name)| (regex::escape(&path), name.to_string())).collect();
    out.extend(
        [
            // `12 ms`, `1.5 s`, `3s`, `250ms`, and `2m 3s` uptimes.
            (r"\b(\d+m )?\d+(\.\d+)? ?(ms|s)\b", "[TIME]"),
            (r"\bpid \d+", "pid [PID]"),
            (r"\bpgid \d+", "pgid [PID]"),
        ]
        .map(|(re, rep)| (re.to_string(), rep.to_string())),
    );
    out
}

/// insta settings with [`filters`] and `extra` ones (regex, replacement).
pub fn settings(p: &Project, extra: &[(&str, &str)]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/snapshots"));
    for (re, rep) in extra.iter().map(|(a, b)| (a.to_string(), b.to_string())).chain(filters(p)) {
        settings.add_filter(&re, rep);
    }
    settings
}

/// The text a snapshot holds: exit code, stdout, stderr.
pub fn render(out: &Output) -> String {
    format!("exit code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}", out.code, out.stdout, out.stderr)
}

/// Asserts the snapshot of a labup run (named after the test, or `name => …`).
macro_rules! labup_snapshot {
    ($project:expr, $output:expr $(, $re:literal => $rep:literal)* $(,)?) => {{
        let text = $crate::snapshot::render(&$output);
        $crate::snapshot::settings($project, &[$(($re, $rep)),*]).bind(|| insta::assert_snapshot!(text));
    }};
    ($name:literal => $project:expr, $output:expr $(, $re:literal => $rep:literal)* $(,)?) => {{
        let text = $crate::snapshot::render(&$output);
        $crate::snapshot::settings($project, &[$(($re, $rep)),*]).bind(|| insta::assert_snapshot!($name, text));
    }};
}
