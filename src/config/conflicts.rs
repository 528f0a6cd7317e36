//! Conflicts no single value shows: two services on one fixed port, `after` naming a disabled
//! service, names that collide, a probe without a port, `PORT` set twice, a lock written over
//! its own input. Each is a configuration error (exit 2) found after merging, before anything
//! is written.
//!
//! An error about two places is located at the later one (a `labup.local.toml` value over a
//! `labup.toml` one: the value that made the conflict), and its hint names the other.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path};

use toml::Spanned;

use super::location::{line_col, pointed, Source};
use super::raw::{At, Port, RawFile, RawPython, RawService, Ready};
use crate::error::Fail;

/// Where something was written: a file (index into the sources) and a byte span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    file: usize,
    span: Range<usize>,
}

impl<T> From<&At<T>> for Place {
    fn from(at: &At<T>) -> Place {
        Place { file: at.file, span: at.span.clone() }
    }
}

/// The `[services.NAME]` table itself.
fn header(svc: &Spanned<RawService>) -> Place {
    Place { file: svc.get_ref().origin, span: svc.span() }
}

/// Checks the merged configuration for conflicts.
pub(super) fn check(raw: &RawFile, sources: &[Source]) -> Result<(), Fail> {
    if let Some(py) = &raw.python {
        lock_over_input(py, sources)?;
    }
    let Some(services) = &raw.services else {
        return Ok(());
    };
    names(services, sources)?;
    for (name, svc) in services {
        own(name, svc.get_ref(), sources)?;
    }
    shared_ports(services, sources)?;
    after_disabled(services, sources)
}

/// Whether `name` is a plain service name: it names a log file, a `<NAME>_PORT` variable, a
/// command-line argument.
pub(super) fn plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The variable that carries a service's port to the others: `web` → `WEB_PORT`,
/// `my-api` → `MY_API_PORT`.
pub(crate) fn port_var(service: &str) -> String {
    let name: String =
        service.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("{name}_PORT")
}

/// Names must be plain, and no two may share a port variable (which also catches names that
/// differ only in case, whose log files are one file on a case-insensitive disk).
fn names(services: &BTreeMap<String, Spanned<RawService>>, sources: &[Source]) -> Result<(), Fail> {
    let mut seen: BTreeMap<String, (&str, Place)> = BTreeMap::new();
    for (name, svc) in services {
        if !plain_name(name) {
            return Err(pointed(
                &sources[svc.get_ref().origin],
                svc.span(),
                &format!("service name `{name}` is not a plain name"),
            )
            .hint("use ASCII letters, digits, `-`, `_` and `.`, starting with a letter or digit: the name is also a log file and a `<NAME>_PORT` variable"));
        }
        let var = port_var(name);
        if let Some((first, place)) = seen.get(&var) {
            return Err(pair(
                sources,
                &format!("services `{first}` and `{name}` would both set `{var}`"),
                (place, &format!("`{first}` is declared")),
                (&header(svc), &format!("`{name}` is declared")),
                "rename one: names that differ only in case or in `-`, `_`, `.` share the port variable (and, on a case-insensitive disk, the log file)",
            ));
        }
        seen.insert(var, (name, header(svc)));
    }
    Ok(())
}

/// What one service's own values contradict: a port probe or `open` without a port, `PORT` in
/// `env` besides `port`, a model listed twice.
fn own(name: &str, s: &RawService, sources: &[Source]) -> Result<(), Fail> {
    let port = s.port.as_ref().map(|p| p.value).or(s.kind_for(name).default_port());
    if let Some(ready) = &s.ready {
        let probe = match ready.value {
            Ready::Http(_) => Some("an HTTP probe (`ready = { http = … }`)"),
            Ready::Tcp => Some("a TCP probe (`ready = { tcp = true }`)"),
            Ready::Log(_) => None,
        };
        if let (Some(probe), None) = (probe, port) {
            return Err(pointed(
                &sources[ready.file],
                ready.span.clone(),
                &format!("service `{name}` has {probe} but no `port` to probe"),
            )
            .hint("add `port = 8000` (or `port = \"auto\"`), or wait for a line of its output with `ready = { log = \"regex\" }`"));
        }
    }
    if let (Some(open), None) = (s.open.as_ref().filter(|o| o.value), port) {
        return Err(pointed(
            &sources[open.file],
            open.span.clone(),
            &format!("service `{name}` has `open = true` but no `port`: there is no URL to open"),
        )
        .hint("add the `port` it listens on (or `port = \"auto\"`), or remove `open`"));
    }
    if let (Some(value), Some(port)) = (s.env.as_ref().and_then(|e| e.get("PORT")), port) {
        let what = match port {
            Port::Fixed(p) => format!("its `port` ({p})"),
            Port::Auto => "the free port it takes (`port = \"auto\"`)".into(),
        };
        let hint = match value.value.parse::<u16>() {
            Ok(p) if p > 0 => format!("set `port = {p}` instead of `PORT` in `env`"),
            _ => "remove `PORT` from `env`: the service gets its port as `PORT` (and `$PORT` in `command`)".into(),
        };
        return Err(pointed(
            &sources[value.file],
            value.span.clone(),
            &format!("service `{name}` sets `PORT` in `env`, but labup sets `PORT` to {what}"),
        )
        .hint(hint));
    }
    let models = s.models.as_deref().unwrap_or_default();
    for (i, model) in models.iter().enumerate() {
        if let Some(first) = models[..i].iter().find(|m| m.value == model.value) {
            return Err(pair(
                sources,
                &format!("service `{name}` lists model `{}` twice", model.value),
                (&first.into(), "it is first listed"),
                (&model.into(), "it is listed again"),
                "remove one of them",
            ));
        }
    }
    Ok(())
}

/// Where an enabled service listens: the port and the place that set it, or `None` for the
/// kind's default port (the place is then the service's table).
fn fixed_port(name: &str, svc: &Spanned<RawService>) -> Option<(u16, Place, bool)> {
    let s = svc.get_ref();
    match (&s.port, s.kind_for(name).default_port()) {
        (Some(At { value: Port::Fixed(p), .. }), _) => Some((*p, s.port.as_ref()?.into(), false)),
        (None, Some(Port::Fixed(p))) => Some((p, header(svc), true)),
        _ => None,
    }
}

fn enabled(svc: &Spanned<RawService>) -> bool {
    svc.get_ref().enabled.as_ref().is_none_or(|e| e.value)
}

/// Two enabled services on the same fixed port: the second could never start.
fn shared_ports(services: &BTreeMap<String, Spanned<RawService>>, sources: &[Source]) -> Result<(), Fail> {
    let mut taken: BTreeMap<u16, (&str, Place, bool)> = BTreeMap::new();
    for (name, svc) in services.iter().filter(|(_, s)| enabled(s)) {
        let Some((port, place, default)) = fixed_port(name, svc) else { continue };
        if let Some((first, first_place, first_default)) = taken.get(&port) {
            let takes = |who: &str, default: bool| {
                if default {
                    format!("`{who}` takes it by default (the port of its kind)")
                } else {
                    format!("`{who}` takes it")
                }
            };
            return Err(pair(
                sources,
                &format!("services `{first}` and `{name}` both listen on port {port}"),
                (first_place, &takes(first, *first_default)),
                (&place, &takes(name, default)),
                "give one of them another `port`, or `port = \"auto\"` for a free one",
            ));
        }
        taken.insert(port, (name, place, default));
    }
    Ok(())
}

/// An enabled service that starts after a disabled one could never start.
fn after_disabled(services: &BTreeMap<String, Spanned<RawService>>, sources: &[Source]) -> Result<(), Fail> {
    for (name, svc) in services.iter().filter(|(_, s)| enabled(s)) {
        for dep in svc.get_ref().after.iter().flatten() {
            let Some(off) = services.get(&dep.value).and_then(|d| d.get_ref().enabled.as_ref()).filter(|e| !e.value)
            else {
                continue;
            };
            let target = &dep.value;
            return Err(pair(
                sources,
                &format!("service `{name}` starts after `{target}`, which is disabled"),
                (&dep.into(), &format!("`{name}` names `{target}` in `after`")),
                (&off.into(), &format!("`{target}` is switched off (`enabled = false`)")),
                &format!("enable `{target}`, switch `{name}` off too, or remove `{target}` from its `after`"),
            ));
        }
    }
    Ok(())
}

/// `[python] lock` naming one of the `requirements`: the lock would be written over its input.
fn lock_over_input(py: &RawPython, sources: &[Source]) -> Result<(), Fail> {
    let Some(lock) = &py.lock else { return Ok(()) };
    let parts = |p: &'_ str| {
        Path::new(p)
            .components()
            .filter(|c| *c != Component::CurDir)
            .map(|c| c.as_os_str().to_owned())
            .collect::<Vec<_>>()
    };
    let same = |a: &str, b: &str| parts(a) == parts(b);
    match py.requirements.iter().flatten().find(|r| same(&r.value, &lock.value)) {
        Some(input) => Err(pair(
            sources,
            &format!("`[python] lock` is `{}`, which is also one of the `requirements`", lock.value),
            (&input.into(), "it is listed in `requirements`"),
            (&lock.into(), "it is the `lock`"),
            "labup would write the lock over its own input: keep the lock in a file of its own, like `lock = \"requirements.lock\"`",
        )),
        None => Ok(()),
    }
}

/// An error about two places, located at the later one; the hint says what the other is and
/// where, then the fix.
fn pair(sources: &[Source], message: &str, a: (&Place, &str), b: (&Place, &str), fix: &str) -> Fail {
    let key = |p: &Place| (p.file, p.span.start);
    let ((here, _), (there, note)) = if key(a.0) >= key(b.0) { (a, b) } else { (b, a) };
    let hint = format!("{note} {}; {fix}", describe(sources, there));
    pointed(&sources[here.file], here.span.clone(), message).hint(hint)
}

/// `at labup.toml:3:8`, or `in labup's embedded default` (file 0, which the user never wrote).
fn describe(sources: &[Source], place: &Place) -> String {
    if place.file == 0 {
        return "in labup's embedded default".into();
    }
    let source = &sources[place.file];
    let (line, col) = line_col(&source.text, place.span.start);
    format!("at {}:{line}:{col}", source.display)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load::parse;

    /// Sources: the embedded default (0), `labup.toml` (1), and `labup.local.toml` (2) when given.
    fn check_files(main: &str, local: Option<&str>) -> Result<(), Fail> {
        let src = |display: &str, text: &str| Source { display: display.into(), text: text.into() };
        let mut sources = vec![src("<embedded default>", ""), src("labup.toml", main)];
        let mut raw = parse(&sources[1], 1)?;
        if let Some(local) = local {
            sources.push(src("labup.local.toml", local));
            raw = crate::config::raw::merge(raw, parse(&sources[2], 2)?);
        }
        check(&raw, &sources)
    }

    fn err(main: &str) -> Fail {
        check_files(main, None).unwrap_err()
    }

    fn ok(main: &str) {
        if let Err(e) = check_files(main, None) {
            panic!("{}\nhint: {:?}", e.message, e.hint);
        }
    }

    #[test]
    fn two_services_on_one_fixed_port() {
        let e = err("[services.api]\ncommand=[\"a\"]\nport=8000\n[services.web]\ncommand=[\"w\"]\nport=8000\n");
        assert!(
            e.message.starts_with("labup.toml:6:6: services `api` and `web` both listen on port 8000"),
            "{}",
            e.message
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("`api` takes it at labup.toml:3:6; give one of them another `port`, or `port = \"auto\"` for a free one")
        );
        assert_eq!(e.exit, crate::error::Exit::Usage);
    }

    #[test]
    fn a_kinds_default_port_counts() {
        let e = err("[services.jupyter]\n[services.web]\ncommand=[\"w\"]\nport=8888\n");
        assert!(e.message.contains("services `jupyter` and `web` both listen on port 8888"), "{}", e.message);
        let hint = e.hint.unwrap();
        assert!(hint.starts_with("`jupyter` takes it by default (the port of its kind) at labup.toml:1:1"), "{hint}");
        let e = err("[services.llm]\nkind=\"ollama\"\n[services.proxy]\ncommand=[\"p\"]\nport=11434\n");
        assert!(e.message.contains("`llm` and `proxy` both listen on port 11434"), "{}", e.message);
    }

    #[test]
    fn auto_ports_disabled_services_and_other_ports_do_not_conflict() {
        ok("[services.a]\ncommand=[\"a\"]\nport=\"auto\"\n[services.b]\ncommand=[\"b\"]\nport=\"auto\"\n");
        ok("[services.a]\ncommand=[\"a\"]\nport=8000\n[services.b]\ncommand=[\"b\"]\nport=8000\nenabled=false\n");
        ok("[services.a]\ncommand=[\"a\"]\nport=8000\n[services.b]\ncommand=[\"b\"]\nport=8001\n");
        ok("[services.jupyter]\n[services.b]\ncommand=[\"b\"]\nport=\"auto\"\n");
    }

    #[test]
    fn a_port_set_in_the_local_file_is_where_the_conflict_is() {
        let main = "[services.api]\ncommand=[\"a\"]\nport=8000\n[services.web]\ncommand=[\"w\"]\nport=9000\n";
        let e = check_files(main, Some("[services.web]\nport = 8000\n")).unwrap_err();
        assert!(e.message.starts_with("labup.local.toml:2:8: services `api` and `web`"), "{}", e.message);
        assert!(e.hint.unwrap().starts_with("`api` takes it at labup.toml:3:6;"));
        // Switching one off in the local file resolves it.
        let local = "[services.web]\nport = 8000\n[services.api]\nenabled = false\n";
        assert!(check_files(main, Some(local)).is_ok());
    }

    #[test]
    fn after_a_disabled_service() {
        let e = err("[services.app]\ncommand=[\"a\"]\nafter=[\"db\"]\n[services.db]\ncommand=[\"d\"]\nenabled=false\n");
        assert!(
            e.message.starts_with("labup.toml:6:9: service `app` starts after `db`, which is disabled"),
            "{}",
            e.message
        );
        assert_eq!(
            e.hint.as_deref(),
            Some("`app` names `db` in `after` at labup.toml:3:8; enable `db`, switch `app` off too, or remove `db` from its `after`")
        );
        // A disabled service may start after a disabled one (`labup up NAME` reports it then).
        ok("[services.app]\ncommand=[\"a\"]\nafter=[\"db\"]\nenabled=false\n[services.db]\ncommand=[\"d\"]\nenabled=false\n");
        ok("[services.app]\ncommand=[\"a\"]\nafter=[\"db\"]\n[services.db]\ncommand=[\"d\"]\nenabled=true\n");
    }

    #[test]
    fn disabled_in_the_local_file_names_that_line() {
        let main = "[services.app]\ncommand=[\"a\"]\nafter=[\"llm\"]\n[services.llm]\nkind=\"ollama\"\n";
        let e = check_files(main, Some("[services.llm]\nenabled = false\n")).unwrap_err();
        assert!(e.message.starts_with("labup.local.toml:2:11: service `app` starts after `llm`"), "{}", e.message);
        assert!(e.hint.unwrap().starts_with("`app` names `llm` in `after` at labup.toml:3:8;"));
    }

    #[test]
    fn names_that_share_a_port_variable() {
        let e = err("[services.my-api]\ncommand=[\"a\"]\n[services.my_api]\ncommand=[\"b\"]\n");
        assert!(
            e.message.starts_with("labup.toml:3:1: services `my-api` and `my_api` would both set `MY_API_PORT`"),
            "{}",
            e.message
        );
        let e = err("[services.Web]\ncommand=[\"a\"]\n[services.web]\ncommand=[\"b\"]\n");
        assert!(e.message.contains("`Web` and `web` would both set `WEB_PORT`"), "{}", e.message);
        assert!(e.hint.unwrap().contains("case-insensitive disk"));
        ok("[services.web]\ncommand=[\"a\"]\n[services.web2]\ncommand=[\"b\"]\n");
    }

    #[test]
    fn names_must_be_plain() {
        for bad in ["\"../x\"", "\"a/b\"", "\"\"", "\"-web\"", "\"my app\"", "\".hidden\"", "\"café\""] {
            let e = err(&format!("[services.{bad}]\ncommand=[\"a\"]\n"));
            assert!(e.message.contains("is not a plain name"), "{bad}: {}", e.message);
        }
        for good in ["web", "my-api", "api_v2", "\"api.v2\"", "2fa"] {
            ok(&format!("[services.{good}]\ncommand=[\"a\"]\n"));
        }
        assert!(plain_name("a.b-c_d9") && !plain_name("") && !plain_name("_x"));
    }

    #[test]
    fn a_port_probe_needs_a_port() {
        let e = err("[services.worker]\ncommand=[\"w\"]\nready = { http = \"/\" }\n");
        assert!(e.message.starts_with("labup.toml:3:9: service `worker` has an HTTP probe"), "{}", e.message);
        assert!(e.message.contains("but no `port` to probe"), "{}", e.message);
        let e = err("[services.worker]\ncommand=[\"w\"]\nready = { tcp = true }\n");
        assert!(e.message.contains("has a TCP probe"), "{}", e.message);
        ok("[services.worker]\ncommand=[\"w\"]\nready = { log = \"up\" }\n");
        ok("[services.worker]\ncommand=[\"w\"]\nport = \"auto\"\nready = { tcp = true }\n");
        ok("[services.jupyter]\nready = { http = \"/lab\" }\n");
    }

    #[test]
    fn open_needs_a_port() {
        let e = err("[services.worker]\ncommand=[\"w\"]\nopen = true\n");
        assert!(
            e.message.starts_with("labup.toml:3:8: service `worker` has `open = true` but no `port`"),
            "{}",
            e.message
        );
        ok("[services.worker]\ncommand=[\"w\"]\nopen = false\n");
        ok("[services.worker]\ncommand=[\"w\"]\nport = 8000\nopen = true\n");
    }

    #[test]
    fn port_in_env_besides_port() {
        let e = err("[services.app]\ncommand=[\"a\"]\nport=5001\nenv={ PORT = \"9000\" }\n");
        assert!(
            e.message.starts_with(
                "labup.toml:4:14: service `app` sets `PORT` in `env`, but labup sets `PORT` to its `port` (5001)"
            ),
            "{}",
            e.message
        );
        assert_eq!(e.hint.as_deref(), Some("set `port = 9000` instead of `PORT` in `env`"));
        let e = err("[services.app]\ncommand=[\"a\"]\nport=\"auto\"\n[services.app.env]\nPORT = \"x\"\n");
        assert!(e.message.contains("the free port it takes"), "{}", e.message);
        assert!(e.hint.unwrap().starts_with("remove `PORT` from `env`"));
        // Without a port of its own, `PORT` is the service's business.
        ok("[services.app]\ncommand=[\"a\"]\nenv={ PORT = \"9000\" }\n");
    }

    #[test]
    fn a_model_listed_twice() {
        let e = err("[services.llm]\nkind=\"ollama\"\nmodels=[\"a\", \"b\", \"a\"]\n");
        assert!(e.message.starts_with("labup.toml:3:19: service `llm` lists model `a` twice"), "{}", e.message);
        assert!(e.hint.unwrap().starts_with("it is first listed at labup.toml:3:9;"));
    }

    #[test]
    fn a_lock_written_over_its_input() {
        let e = err("[python]\nrequirements=[\"requirements.txt\"]\nlock=\"./requirements.txt\"\n");
        assert!(e.message.starts_with("labup.toml:3:6: `[python] lock` is `./requirements.txt`"), "{}", e.message);
        ok("[python]\nrequirements=[\"requirements.txt\"]\nlock=\"requirements.lock\"\n");
    }

    #[test]
    fn the_embedded_default_is_never_named_as_a_place() {
        let sources = [Source { display: "<embedded default>".into(), text: "x".into() }];
        assert_eq!(describe(&sources, &Place { file: 0, span: 0..1 }), "in labup's embedded default");
    }
}
