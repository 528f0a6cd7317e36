//! Snapshots of what users read: the exit code, stdout and stderr of one labup run, with what
//! differs between runs (the temporary project folder, the fixture wheels and caches, the
//! interpreter's path, durations, pids, ports where a test asks) replaced by placeholders.
//!
//! `labup_snapshot!(project, output)` compares against `tests/it/snapshots/<module>__<test>.snap`;
//! `labup_snapshot!(project, output, r"127\.0\.0\.1:\d+" => "127.0.0.1:[PORT]")` adds filters
//! (any `&str` expressions), and `labup_snapshot!("name" => project, output)` names it.
//! Write new ones with `INSTA_UPDATE=always cargo nextest run …` (or `cargo insta review`) and
//! read every `.snap` before committing it.

use crate::support::{shared, Output, Project};

/// The filters every snapshot gets, most specific first.
pub(crate) fn filters(p: &Project) -> Vec<(String, String)> {
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
            // Measured durations and uptimes (`12ms`, `1.4s`, `2m05s`, `2h03m`); a configured
            // one (`within 3 s`, with a space) stays.
            (r"\b\d+h\d{2}m\b|\b\d+m\d{2}s\b|\b\d+(\.\d+)?(ms|s)\b", "[TIME]"),
            (r"\bpid \d+", "pid [PID]"),
            // The project's default name is its temporary folder's.
            (r"\blabup-it-[A-Za-z0-9]{6}\b", "[PROJECT NAME]"),
            // What the machine is: the interpreter's version, the platform, the GPU.
            (r"\bPython \d+\.\d+\.\d+", "Python [VERSION]"),
            (r"(?m)^  python    \d+\.\d+\.\d+", "  python    [VERSION]"),
            (r"(?m)^  platform  .*$", "  platform  [PLATFORM]"),
            (r"(?m)^  gpu       .*$", "  gpu       [GPU]"),
            // The test binary itself, when it holds a port (`pid 1234 (it-0123abcd…)`).
            (r"\bit-[0-9a-f]{16}\b", "it-[HASH]"),
        ]
        .map(|(re, rep)| (re.to_string(), rep.to_string())),
    );
    out
}

/// insta settings with `extra` filters (regex, replacement; applied first) and [`filters`].
pub(crate) fn settings(p: &Project, extra: &[(&str, &str)]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_omit_expression(true);
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/snapshots"));
    for (re, rep) in extra.iter().map(|(a, b)| (a.to_string(), b.to_string())).chain(filters(p)) {
        settings.add_filter(&re, rep);
    }
    settings
}

/// The text a snapshot holds: exit code, stdout, stderr.
pub(crate) fn render(out: &Output) -> String {
    format!("exit code: {}\n----- stdout -----\n{}\n----- stderr -----\n{}", out.code, out.stdout, out.stderr)
}

/// Asserts the snapshot of a labup run (named after the test, or `name => …`).
macro_rules! labup_snapshot {
    ($name:literal => $project:expr, $output:expr $(, $re:expr => $rep:expr)* $(,)?) => {{
        let text = $crate::snapshot::render(&$output);
        $crate::snapshot::settings($project, &[$(($re, $rep)),*]).bind(|| insta::assert_snapshot!($name, text));
    }};
    ($project:expr, $output:expr $(, $re:expr => $rep:expr)* $(,)?) => {{
        let text = $crate::snapshot::render(&$output);
        $crate::snapshot::settings($project, &[$(($re, $rep)),*]).bind(|| insta::assert_snapshot!(text));
    }};
}
