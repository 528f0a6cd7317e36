//! Reading `labup.toml` and `labup.local.toml`: parse, locate errors, merge, validate.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::conflicts;
use super::location::{pointed, Source};
use super::raw::{self, At, RawFile, RawService, ServiceKind};
use crate::error::Fail;

/// The embedded default service set.
pub(super) const DEFAULT_TOML: &str = include_str!("default.toml");

/// The file names labup reads, in merge order.
pub(crate) const FILE_NAMES: [&str; 2] = ["labup.toml", "labup.local.toml"];

/// Everything the loader produced: the merged file and the sources it came from.
#[derive(Debug)]
pub(super) struct Loaded {
    /// The merged raw configuration, validated.
    pub(crate) raw: RawFile,
    /// The files that exist and were read.
    pub(crate) files: Vec<PathBuf>,
}

/// Reads, merges and validates the configuration of the project at `root`.
pub(super) fn load(root: &Path) -> Result<Loaded, Fail> {
    let mut sources = vec![Source { display: "<embedded default>".into(), text: DEFAULT_TOML.into() }];
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    for name in FILE_NAMES {
        let path = root.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Fail::usage(format!("cannot read {}: {e}", display_path(&path)))),
        };
        let index = sources.len();
        sources.push(Source { display: display_path(&path), text });
        let file = parse(&sources[index], index)?;
        files.push(path);
        parsed.push((name, file));
    }

    let mut base = RawFile::default();
    let mut local = RawFile::default();
    for (name, file) in parsed {
        if name == FILE_NAMES[0] {
            base = file;
        } else {
            local = file;
        }
    }
    if base.services.as_ref().is_none_or(BTreeMap::is_empty) {
        let mut default = parse(&sources[0], 0)?;
        if let Some(services) = default.services.as_mut() {
            if !root.join("server.py").is_file() {
                services.remove("app");
            }
        }
        base.services = default.services;
    }
    let raw = raw::merge(base, local);
    validate(&raw, &sources)?;
    Ok(Loaded { raw, files })
}

/// Parses one source; `index` is recorded on services for later error locations.
pub(super) fn parse(source: &Source, index: usize) -> Result<RawFile, Fail> {
    let mut file: RawFile = toml::from_str(&source.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        located(source, span, e.message())
    })?;
    file.set_file(index);
    Ok(file)
}

/// Checks what single values cannot: required keys per kind, `after` targets and cycles.
fn validate(raw: &RawFile, sources: &[Source]) -> Result<(), Fail> {
    let Some(services) = &raw.services else {
        return Ok(());
    };
    for (name, svc) in services {
        let s = svc.get_ref();
        let at = |msg: String| located(&sources[s.origin], svc.span(), &msg);
        let kind = s.kind_for(name);
        match kind {
            ServiceKind::Command if s.command.as_ref().is_none_or(Vec::is_empty) => {
                return Err(at(format!(
                    "service `{name}` has no `command`: add `command = [\"python\", \"server.py\"]` or set `kind = \"jupyter\"` or `\"ollama\"`"
                )))
            }
            ServiceKind::Jupyter | ServiceKind::Ollama if s.command.is_some() => {
                return Err(at(format!(
                    "service `{name}` of kind `{}` takes no `command`",
                    kind_name(kind)
                )))
            }
            _ => {}
        }
        if s.models.is_some() && kind != ServiceKind::Ollama {
            return Err(at(format!("`models` is only for `kind = \"ollama\"` (service `{name}`)")));
        }
        if s.root.is_some() && kind != ServiceKind::Jupyter {
            return Err(at(format!("`root` is only for `kind = \"jupyter\"` (service `{name}`)")));
        }
        for dep in s.after.iter().flatten() {
            if !services.contains_key(&dep.value) {
                let known: Vec<&str> = services.keys().map(String::as_str).collect();
                let mut fail = located(
                    &sources[dep.file],
                    dep.span.clone(),
                    &format!("service `{name}` starts after `{}`, which is not declared", dep.value),
                );
                fail.hint = Some(match nearest(&dep.value, &known) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("declared services: {}", known.join(", ")),
                });
                return Err(fail);
            }
        }
    }
    if let Some((cycle, closing)) = find_cycle(services) {
        return Err(located(
            &sources[closing.file],
            closing.span.clone(),
            &format!("dependency cycle in `after`: {}", cycle.join(" → ")),
        )
        .hint("remove one of these `after` entries"));
    }
    conflicts::check(raw, sources)
}

/// The first cycle in the `after` graph, as names (first repeated at the end), and the `after`
/// entry that closes it.
fn find_cycle(services: &BTreeMap<String, Spanned<RawService>>) -> Option<(Vec<String>, &At<String>)> {
    fn visit<'a>(
        name: &str,
        services: &'a BTreeMap<String, Spanned<RawService>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<(Vec<String>, &'a At<String>)> {
        if done.contains(name) {
            return None;
        }
        stack.push(name.to_string());
        for dep in services.get(name).and_then(|s| s.get_ref().after.as_ref()).into_iter().flatten() {
            if let Some(pos) = stack.iter().position(|n| *n == dep.value) {
                let mut cycle = stack[pos..].to_vec();
                cycle.push(dep.value.clone());
                return Some((cycle, dep));
            }
            if let Some(found) = visit(&dep.value, services, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(name.to_string());
        None
    }
    let mut done = BTreeSet::new();
    services.keys().find_map(|name| visit(name, services, &mut Vec::new(), &mut done))
}

/// The name of a kind as written in the file.
pub(crate) fn kind_name(kind: ServiceKind) -> &'static str {
    match kind {
        ServiceKind::Command => "command",
        ServiceKind::Jupyter => "jupyter",
        ServiceKind::Ollama => "ollama",
    }
}

/// A configuration error at `span` of `source`: `file:line:col: message`, the source line
/// with a caret, and a hint when serde named the expected keys or values.
fn located(source: &Source, span: Range<usize>, message: &str) -> Fail {
    let section = section_at(&source.text, span.start);
    let (message, hint) = explain(message, section.as_deref());
    let mut fail = pointed(source, span, &message);
    fail.hint = hint;
    fail
}

/// Rewrites serde's wording for TOML readers and derives a hint from the names it lists.
fn explain(message: &str, section: Option<&str>) -> (String, Option<String>) {
    let message = message.trim();
    let names: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let within = section.map(|s| format!(" in [{s}]")).unwrap_or_default();
    if message.starts_with("unknown field ") {
        let key = names.first().copied().unwrap_or_default();
        let known = &names[1.min(names.len())..];
        let hint = match nearest(key, known) {
            Some(n) => Some(format!("did you mean `{n}`?")),
            None if known.is_empty() => Some(format!("[{}] takes no keys", section.unwrap_or("this table"))),
            None => Some(format!("known keys{within}: {}", known.join(", "))),
        };
        return (format!("unknown key `{key}`{within}"), hint);
    }
    if message.starts_with("unknown variant ") {
        let value = names.first().copied().unwrap_or_default();
        let known = &names[1.min(names.len())..];
        let hint = match nearest(value, known) {
            Some(n) => format!("did you mean `{n}`?"),
            None => format!("use one of: {}", known.join(", ")),
        };
        return (format!("unknown value `{value}`{within}"), Some(hint));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return (format!("wrong type{within}: {rest}"), None);
    }
    // Labup's own messages (a value out of range, a cycle) and TOML syntax errors read as
    // sentences; the location and the snippet already say where.
    (message.to_string(), None)
}

/// The closest known name, when it is close enough to be a typo.
pub(crate) fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The table header (`[a.b]`) in force at a byte offset, if any.
fn section_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    text[..line_end]
        .lines()
        .rev()
        .find_map(|l| {
            let l = l.trim();
            let inner = l
                .strip_prefix("[[")
                .and_then(|r| r.split("]]").next())
                .or_else(|| l.strip_prefix('[').and_then(|r| r.split(']').next()))?;
            Some(inner.trim().replace(' ', ""))
        })
        .filter(|_| line_start <= line_end)
}

/// A path as the user would type it: relative to the current directory when inside it.
pub(crate) fn display_path(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source { display: "labup.toml".into(), text: text.into() }
    }

    fn err(text: &str) -> Fail {
        parse(&src(text), 1).and_then(|raw| validate(&raw, &[src(""), src(text)])).unwrap_err()
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let e = err("[services.app]\ncommand = [\"x\"]\nprot = 1\n");
        assert!(e.message.starts_with("labup.toml:3:1: unknown key `prot` in [services.app]"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `port`?"));
    }

    #[test]
    fn unknown_key_far_from_all_lists_known_keys() {
        let e = err("[project]\nzzzzzz = 1\n");
        assert!(e.message.contains("unknown key `zzzzzz` in [project]"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("known keys in [project]: name"));
    }

    #[test]
    fn unknown_section_is_named() {
        let e = err("[pyhton]\nversion = \"3.12\"\n");
        assert!(e.message.starts_with("labup.toml:1:2: unknown key `pyhton`"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `python`?"));
    }

    #[test]
    fn unknown_service_kind() {
        let e = err("[services.nb]\nkind = \"jupiter\"\n");
        assert!(e.message.starts_with("labup.toml:2:8: unknown value `jupiter`"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `jupyter`?"));
    }

    #[test]
    fn wrong_type_names_location() {
        let e = err("[shell]\nautostart = \"yes\"\n");
        assert!(e.message.starts_with("labup.toml:2:13: wrong type in [shell]"), "{}", e.message);
    }

    #[test]
    fn port_out_of_range() {
        let e = err("[services.a]\ncommand = [\"x\"]\nport = 70000\n");
        assert!(e.message.starts_with("labup.toml:3:8: port 70000 is out of range"), "{}", e.message);
        let e = err("[services.a]\ncommand = [\"x\"]\nport = 0\n");
        assert!(e.message.contains("port 0 is out of range"), "{}", e.message);
        let e = err("[services.a]\ncommand = [\"x\"]\nport = \"any\"\n");
        assert!(e.message.contains("invalid port \"any\""), "{}", e.message);
    }

    #[test]
    fn port_auto_and_number_parse() {
        let raw =
            parse(&src("[services.a]\ncommand=[\"x\"]\nport=\"auto\"\n[services.b]\ncommand=[\"y\"]\nport=8000\n"), 1)
                .unwrap();
        let s = raw.services.unwrap();
        assert_eq!(s["a"].get_ref().port.as_ref().map(|p| p.value), Some(raw::Port::Auto));
        assert_eq!(s["b"].get_ref().port.as_ref().map(|p| p.value), Some(raw::Port::Fixed(8000)));
    }

    #[test]
    fn syntax_error_has_location() {
        let e = err("[python]\nversion = 3.12.\n");
        assert!(e.message.starts_with("labup.toml:2:"), "{}", e.message);
    }

    #[test]
    fn after_cycle_is_reported_at_closing_entry() {
        let text = "[services.a]\ncommand=[\"x\"]\nafter=[\"b\"]\n[services.b]\ncommand=[\"y\"]\nafter=[\"a\"]\n";
        let e = err(text);
        assert!(e.message.contains("dependency cycle in `after`: a → b → a"), "{}", e.message);
        assert!(e.message.starts_with("labup.toml:6:8:"), "{}", e.message);
    }

    #[test]
    fn self_cycle() {
        let e = err("[services.a]\ncommand=[\"x\"]\nafter=[\"a\"]\n");
        assert!(e.message.contains("a → a"), "{}", e.message);
    }

    #[test]
    fn after_unknown_service_suggests() {
        let e = err("[services.app]\ncommand=[\"x\"]\nafter=[\"olama\"]\n[services.ollama]\nkind=\"ollama\"\n");
        assert!(e.message.contains("starts after `olama`, which is not declared"), "{}", e.message);
        assert_eq!(e.hint.as_deref(), Some("did you mean `ollama`?"));
    }

    #[test]
    fn command_service_needs_command() {
        let e = err("[services.app]\nport = 5001\n");
        assert!(e.message.contains("service `app` has no `command`"), "{}", e.message);
        assert!(e.message.starts_with("labup.toml:1:"), "{}", e.message);
    }

    #[test]
    fn ready_takes_exactly_one_probe() {
        let e = err("[services.a]\ncommand=[\"x\"]\nready = { http = \"/\", tcp = true }\n");
        assert!(e.message.contains("exactly one of"), "{}", e.message);
        let e = err("[services.a]\ncommand=[\"x\"]\nready = { log = \"(\" }\n");
        assert!(e.message.contains("not a valid regex"), "{}", e.message);
        let e = err("[services.a]\ncommand=[\"x\"]\nready = { http = \"health\" }\n");
        assert!(e.message.contains("starting with `/`"), "{}", e.message);
    }

    #[test]
    fn torch_and_version_values_are_checked() {
        let e = err("[python]\ntorch = \"cuda12\"\n");
        assert!(e.message.contains("invalid torch backend"), "{}", e.message);
        let e = err("[python]\nversion = \"three\"\n");
        assert!(e.message.contains("invalid Python version"), "{}", e.message);
        assert!(parse(&src("[python]\ntorch = \"cu126\"\nversion = \"3.12\"\n"), 1).is_ok());
        assert!(parse(&src("[python]\ntorch = \"pypi\"\ntorch-index = \"https://m.example/whl/\"\n"), 1).is_ok());
        let e = err("[python]\ntorch-index = \"m.example/whl\"\n");
        assert!(e.message.contains("invalid torch-index"), "{}", e.message);
    }

    #[test]
    fn timeouts_are_whole_seconds_in_range() {
        let e = err("[services.a]\ncommand=[\"x\"]\nstop-timeout = 0\n");
        assert!(e.message.contains("0 seconds is out of range"), "{}", e.message);
        assert!(parse(&src("[services.a]\ncommand=[\"x\"]\nstop-timeout = 3\nstart-timeout = 120\n"), 1).is_ok());
    }

    #[test]
    fn gpu_count_is_a_number_in_range() {
        let e = err("[gpu]\ncount = 0\n");
        assert!(e.message.contains("0 GPUs is out of range: use 1-64"), "{}", e.message);
        let e = err("[gpu]\ncount = \"two\"\n");
        assert!(e.message.contains("labup.toml:2"), "{}", e.message);
        assert!(parse(&src("[gpu]\ncuda = \"on\"\ncount = 2\n"), 1).is_ok());
    }

    #[test]
    fn models_only_for_ollama() {
        let e = err("[services.a]\ncommand=[\"x\"]\nmodels=[\"m\"]\n");
        assert!(e.message.contains("`models` is only for"), "{}", e.message);
    }

    #[test]
    fn snippet_points_at_the_key() {
        let e = err("[project]\nnmae = \"x\"\n");
        assert!(e.message.contains("2 | nmae = \"x\"\n  | ^^^^"), "{}", e.message);
    }

    #[test]
    fn nearest_needs_closeness() {
        assert_eq!(nearest("prot", &["port", "kind"]), Some("port"));
        assert_eq!(nearest("xyzzy", &["port", "kind"]), None);
    }
}
