//! Checks of the Python side: the interpreter, the venv and its sync state, numpy importing.

use std::time::Duration;

use super::nixpkgs::{self, Provider};
use super::{last_line, output_within, Context, Verdict};
use crate::config::display_path;
use crate::python::sources::Sources;
use crate::python::{fingerprint, interpreter, sync, venv};

/// How long an import may take before it counts as hung.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(60);

/// A verdict from an error: labup's own error in its chain ([`crate::error::labup_error`]) keeps its hint as the fix.
fn from_error(err: &anyhow::Error) -> Verdict {
    match crate::error::labup_error(err) {
        Some(f) => Verdict { message: f.message, fix: f.hint, ..Verdict::fail("") },
        None => Verdict::fail(format!("{err:#}")),
    }
}

/// The base interpreter is there, runs, and matches `[python] version`.
pub(crate) fn interpreter(ctx: &Context) -> Verdict {
    let required = ctx.ws.config.python.version.as_deref();
    let interp = match interpreter::for_venv(required, &ctx.ws.config.python.venv) {
        Ok(i) => i,
        Err(e) => return from_error(&e),
    };
    let info = match interp.query() {
        Ok(i) => i,
        Err(e) => return from_error(&e),
    };
    match interpreter::check_version(&interp, &info, required) {
        Ok(()) => Verdict::ok(format!("Python {} at {}", info.version, interp.path.display())),
        Err(f) => Verdict::from_fail(f),
    }
}

/// The venv exists, its interpreter is still there, and it matches the requirements.
pub(crate) fn venv(ctx: &Context) -> Verdict {
    let config = &ctx.ws.config;
    let dir = &config.python.venv;
    let shown = display_path(dir);
    let cfg = match venv::inspect(dir) {
        venv::State::Missing => return Verdict::fail(format!("there is no venv at {shown} yet")).fix("labup sync"),
        venv::State::Foreign(why) => return Verdict::from_fail(venv::refuse(dir, &why)),
        venv::State::Venv(cfg) => cfg,
    };
    if !cfg.home.is_dir() {
        return Verdict::fail(format!(
            "{shown} was built from {}, which is gone (garbage-collected by Nix?)",
            cfg.home.display()
        ))
        .fix("labup sync (it rebuilds the venv)");
    }
    if std::fs::metadata(interpreter::venv_python(dir)).is_err() {
        return Verdict::fail(format!("{shown}/bin/python is missing or broken"))
            .fix("labup sync (it rebuilds the venv)");
    }
    let Ok(interp) = interpreter::for_venv(config.python.version.as_deref(), &config.python.venv) else {
        return Verdict::warn(format!(
            "{shown} exists, but without an interpreter labup cannot tell whether it is in sync"
        ));
    };
    let sources = match Sources::detect(config) {
        Ok(s) => s,
        Err(e) => return from_error(&e.into()),
    };
    let torch = crate::gpu::torch_for_sync(&ctx.ws, &sources);
    match sync::up_to_date(config, &interp, &sources, torch.as_ref().map(|c| &c.backend)) {
        Some(m) => Verdict::ok(format!(
            "{shown} is in sync ({}, Python {})",
            crate::ui::count(m.packages, "package"),
            m.python
        )),
        None if fingerprint::read(dir).is_none() => {
            Verdict::warn(format!("{shown} was not synced by labup (or a sync was interrupted)")).fix("labup sync")
        }
        None => Verdict::warn(format!(
            "{shown} is out of date: the requirements, the lock or the interpreter changed, or packages were installed by hand"
        ))
        .fix("labup sync"),
    }
}

/// `import numpy` works in the venv with the child environment (the old shell hooks' check).
pub(crate) fn numpy(ctx: &Context) -> Verdict {
    if !venv::installed(&ctx.ws.config.python.venv).contains_key("numpy") {
        return Verdict::skip("numpy is not installed");
    }
    let expr = ctx.venv_python(&["-c", "import numpy; print(numpy.__version__)"]);
    match output_within(&expr, IMPORT_TIMEOUT) {
        Ok(Some(out)) if out.status.success() => {
            Verdict::ok(format!("numpy {} imports", String::from_utf8_lossy(&out.stdout).trim()))
        }
        Ok(Some(out)) => import_failure("numpy", &String::from_utf8_lossy(&out.stderr)),
        Ok(None) => Verdict::fail(format!("`import numpy` did not finish in {}s", IMPORT_TIMEOUT.as_secs()))
            .fix("run `labup run -- python -c 'import numpy'` to see where it hangs"),
        Err(e) => Verdict::fail(format!("failed to run the venv's python: {e}")).fix("labup sync"),
    }
}

/// A failed import explained: a missing library is named with what provides it.
pub(crate) fn import_failure(module: &str, stderr: &str) -> Verdict {
    let line = last_line(stderr);
    let v = Verdict::fail(format!("`import {module}` fails: {line}"));
    match missing_library(stderr) {
        Some(lib) => match nixpkgs::provider(&lib) {
            Some(Provider::Nixpkgs(attr)) => v.fix(format!(
                "{lib} is in nixpkgs `{attr}`: add its `lib` folder to `LABUP_LIBRARY_PATH` (see `labup doctor` wheel linkage)"
            )),
            Some(Provider::HostDriver) => v.fix(format!("{lib} comes from the NVIDIA driver: run `labup gpu`")),
            None => v.fix(format!("install the library that provides {lib}, or reinstall {module} (`labup sync`)")),
        },
        None => v.fix(format!("reinstall {module}: `labup sync`; run `labup run -- python -c 'import {module}'` for the full error")),
    }
}

/// `libz.so.1` out of `ImportError: libz.so.1: cannot open shared object file: No such file or directory`.
pub(crate) fn missing_library(text: &str) -> Option<String> {
    let re = regex::Regex::new(r"([^\s:'\x22]+\.so[^\s:'\x22]*): cannot open shared object file").ok()?;
    re.captures(text).map(|c| c[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn finds_the_missing_library_in_an_import_error() {
        let stub = "Traceback (most recent call last):\n  File \"<string>\", line 1\nImportError: libz.so.1: cannot open shared object file: No such file or directory\n";
        assert_eq!(missing_library(stub).as_deref(), Some("libz.so.1"));
        assert_eq!(missing_library("ModuleNotFoundError: No module named 'numpy'"), None);
        let v = import_failure("numpy", stub);
        assert_eq!(v.status, Status::Fail);
        assert!(
            v.message.ends_with("libz.so.1: cannot open shared object file: No such file or directory"),
            "{}",
            v.message
        );
        assert!(v.fix.unwrap().contains("nixpkgs `zlib`"));
        let v = import_failure("torch", "OSError: libcuda.so.1: cannot open shared object file: No such file");
        assert!(v.fix.unwrap().contains("labup gpu"));
    }
}
