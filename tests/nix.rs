//! The Nix side, checked without nixpkgs: every `.nix` file parses, is formatted and has no
//! dead code; the pure functions in `nix/config.nix` give the expected results under real
//! Nix; `flake.lock` agrees with `flake.nix` and the verified pins; the template works.
//!
//! Needs `nix-instantiate` (Debian's `nix-bin`), `nixfmt` and `deadnix`:
//! `.ci/setup.d/20-nix-tools.sh` installs all three. A missing tool fails the test with that hint.
//! Inside the Nix sandbox there is no Nix, so `nix/checks.nix` leaves this binary out.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const INSTALL_HINT: &str = "run `.ci/setup.d/20-nix-tools.sh` as root (Debian: `apt-get install nix-bin`, \
                            then `cargo install --locked nixfmt_rs deadnix`)";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The tool on PATH, or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {INSTALL_HINT}"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `nix-instantiate` against a store that is never written: evaluation needs none, and
/// this works for users who cannot write /nix (and without Debian's missing nixbld group).
fn nix_instantiate() -> Command {
    let mut cmd = Command::new(tool("nix-instantiate"));
    cmd.args(["--store", "dummy://"]).env_remove("NIX_PATH").current_dir(root());
    cmd
}

/// Evaluates `expr` (a function of `{ config, ... }` plus the string `args`) strictly to JSON;
/// `config` is `nix/config.nix` imported. Err is Nix's stderr.
fn eval(expr: &str, args: &[(&str, &str)]) -> Result<Value, String> {
    let config = root().join("nix/config.nix");
    let mut cmd = nix_instantiate();
    cmd.args(["--eval", "--strict", "--json", "--expr"])
        .arg(format!("{{ configFile, ... }}@args: let config = import configFile; in ({expr}) args"))
        .arg("--argstr")
        .arg("configFile")
        .arg(&config);
    for (name, value) in args {
        cmd.args(["--argstr", name, value]);
    }
    let out = run(&mut cmd);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout))))
    } else {
        Err(text(&out.stderr))
    }
}

#[track_caller]
fn eval_ok(expr: &str, args: &[(&str, &str)]) -> Value {
    eval(expr, args).unwrap_or_else(|e| panic!("evaluation failed:\n{e}"))
}

#[track_caller]
fn eval_err(expr: &str, args: &[(&str, &str)]) -> String {
    match eval(expr, args) {
        Ok(v) => panic!("evaluation succeeded with {v}, expected an error"),
        Err(e) => e,
    }
}

fn parse_config(toml: &str) -> Result<Value, String> {
    eval("{ toml, ... }: config.parseConfig toml", &[("toml", toml)])
}

/// Every `.nix` file in the repository, outside `target/` and hidden folders (`.git`,
/// `.venv`), as deadnix sees them.
fn nix_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && !path.is_symlink() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "nix") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root(), &mut files);
    files.sort();
    files
}

#[test]
fn the_nix_files_are_all_there() {
    let files: Vec<String> =
        nix_files().iter().map(|p| p.strip_prefix(root()).unwrap().display().to_string()).collect();
    for expected in [
        "flake.nix",
        "nix/apps.nix",
        "nix/checks.nix",
        "nix/config.nix",
        "nix/image.nix",
        "nix/lib.nix",
        "nix/module.nix",
        "nix/package.nix",
        "nix/shell.nix",
        "templates/default/flake.nix",
        "tests/nix-eval/nixos-systemd.nix",
        "tests/nix-eval/nixpkgs/default.nix",
        "tests/nix-eval/nixpkgs/flake.nix",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected} is missing from {files:?}");
    }
}

#[test]
fn every_nix_file_parses() {
    let failures: Vec<String> = nix_files()
        .iter()
        .filter_map(|file| {
            let out = run(nix_instantiate().arg("--parse").arg(file));
            (!out.status.success()).then(|| format!("{}:\n{}", file.display(), text(&out.stderr)))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// nixfmt (RFC 166), the style nixpkgs uses and the flake's formatter (nixfmt-tree) and
/// `nix-lint` check apply. Here it is nixfmt_rs from crates.io, a Rust port of nixfmt that
/// gives byte-identical output on nixpkgs' lib and crane (checked when it was chosen).
#[test]
fn every_nix_file_is_formatted_with_nixfmt() {
    let files = nix_files();
    let out = run(Command::new(tool("nixfmt")).arg("--check").args(&files));
    assert!(
        out.status.success(),
        "not formatted (fix: `nixfmt {}`, or `nix fmt`):\n{}{}",
        files.iter().map(|f| f.strip_prefix(root()).unwrap().display().to_string()).collect::<Vec<_>>().join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn no_nix_file_has_dead_code() {
    let out = run(Command::new(tool("deadnix")).arg("--fail").args(nix_files()));
    assert!(out.status.success(), "deadnix found unused code:\n{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn an_empty_labup_toml_gives_the_defaults() {
    let expected = json!({
        "name": "labup", "pythonVersion": "3.12", "pythonAttr": "python312", "nixPackages": [], "services": {}
    });
    assert_eq!(parse_config("").unwrap(), expected);
}

#[test]
fn labup_toml_picks_the_python_and_the_extra_tools() {
    let toml = r#"
[project]
name = "vision"

[python]
version = "3.13.1"
requirements = ["requirements.txt"]

[services.app]
command = ["python", "server.py"]
port = 5001

[nix]
packages = ["ffmpeg", "python313Packages.black"]
"#;
    let expected = json!({
        "name": "vision",
        "pythonVersion": "3.13.1",
        "pythonAttr": "python313",
        "nixPackages": ["ffmpeg", "python313Packages.black"],
        "services": { "app": { "command": ["python", "server.py"], "port": 5001 } },
    });
    assert_eq!(parse_config(toml).unwrap(), expected);
}

#[test]
fn python_versions_map_to_nixpkgs_attributes() {
    for (version, attr) in [("3.12", "python312"), ("3.12.4", "python312"), ("3.9", "python39"), ("3.14", "python314")]
    {
        assert_eq!(eval_ok("{ v, ... }: config.pythonAttr v", &[("v", version)]), json!(attr), "{version}");
    }
    let err = eval_err("{ v, ... }: config.pythonAttr v", &[("v", "3")]);
    assert!(err.contains("\"3\" is not a Python version"), "{err}");
}

#[test]
fn a_malformed_labup_toml_is_a_readable_error() {
    let err = parse_config("[python\nversion = \"3.12\"\n").unwrap_err();
    assert!(err.contains("while parsing a TOML string"), "{err}");
    assert!(err.contains("[python"), "the wrong line is shown: {err}");
    assert!(err.contains("labup.toml"), "the file is named: {err}");
}

#[test]
fn wrong_values_in_labup_toml_are_named() {
    let cases = [
        ("[python]\nversion = 3.12\n", "labup.toml: [python] version must be a string like \"3.12\", not a number"),
        ("[python]\nversion = \"three\"\n", "labup.toml: [python] version \"three\" is not a version"),
        ("python = 3\n", "labup.toml: `python` must be a table (`[python]`), not an integer"),
        ("[nix]\npackages = \"ffmpeg\"\n", "labup.toml: [nix] packages must be a list like [\"ffmpeg\"], not a string"),
        (
            "[nix]\npackages = [\"ff mpeg\"]\n",
            "labup.toml: [nix] packages: \"ff mpeg\" is not a nixpkgs attribute name",
        ),
        ("[nix]\npackages = [1]\n", "labup.toml: [nix] packages: each entry is a nixpkgs attribute name"),
        ("[project]\nname = true\n", "labup.toml: [project] name must be a string, not a boolean"),
        ("services = 1\n", "labup.toml: `services` must be a table (`[services]`), not an integer"),
        ("[services]\napp = \"x\"\n", "labup.toml: [services.app] must be a table (`[services.app]`), not a string"),
    ];
    for (toml, message) in cases {
        let err = parse_config(toml).unwrap_err();
        assert!(err.contains(message), "for {toml:?} expected {message:?} in:\n{err}");
    }
}

#[test]
fn read_config_uses_the_defaults_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let got = eval_ok("{ dir, ... }: config.readConfig dir", &[("dir", &dir.path().display().to_string())]);
    assert_eq!(got["pythonAttr"], "python312");
}

#[test]
fn python_for_names_the_missing_attribute() {
    let settings = "(config.parseConfig ''[python]\nversion = \"3.9\"'')";
    let found = eval_ok(&format!("_: config.pythonFor {{ python39 = \"the 3.9\"; }} {settings}"), &[]);
    assert_eq!(found, json!("the 3.9"));
    let err = eval_err(&format!("_: config.pythonFor {{ python312 = 1; }} {settings}"), &[]);
    assert!(err.contains("labup.toml: [python] version \"3.9\" needs nixpkgs' `python39`"), "{err}");
}

#[test]
fn tools_for_resolves_attribute_paths() {
    let pkgs = "{ ffmpeg = { type = \"derivation\"; n = \"F\"; }; python313Packages = { black = { type = \"derivation\"; n = \"B\"; }; }; }";
    let ok = format!(
        "_: map (p: p.n) (config.toolsFor {pkgs} {{ nixPackages = [ \"ffmpeg\" \"python313Packages.black\" ]; }})"
    );
    assert_eq!(eval_ok(&ok, &[]), json!(["F", "B"]));
    for missing in ["ffmpg", "python313Packages.blak", "ffmpeg.bin"] {
        let err = eval_err(&format!("_: config.toolsFor {pkgs} {{ nixPackages = [ \"{missing}\" ]; }}"), &[]);
        assert!(err.contains(&format!("labup.toml: [nix] packages: nixpkgs has no package `{missing}`")), "{err}");
    }
    let err = eval_err(&format!("_: config.toolsFor {pkgs} {{ nixPackages = [ \"python313Packages\" ]; }}"), &[]);
    assert!(
        err.contains("labup.toml: [nix] packages: `python313Packages` is a set of packages in nixpkgs, not a package"),
        "{err}"
    );
    let err =
        eval_err("_: config.toolsFor { lib = { version = \"1\"; }; } { nixPackages = [ \"lib.version\" ]; }", &[]);
    assert!(err.contains("`lib.version` is a string in nixpkgs, not a package"), "{err}");
}

#[test]
fn the_other_python_is_never_the_default() {
    for (version, other) in
        [("3.12", "python313"), ("3.13", "python312"), ("3.14", "python313"), ("3.11.2", "python313")]
    {
        let expr = format!("_: config.otherPythonAttr (config.parseConfig ''[python]\nversion = \"{version}\"'')");
        assert_eq!(eval_ok(&expr, &[]), json!(other), "{version}");
    }
}

#[test]
fn the_image_exposes_the_fixed_ports_of_the_services() {
    let defaults = root().join("src/config/default.toml").display().to_string();
    let ports = |toml: &str, server: bool| {
        let expr = format!(
            "{{ defaults, toml, ... }}: config.exposedPorts {{ settings = config.parseConfig toml; \
             defaults = builtins.fromTOML (builtins.readFile defaults); hasServerPy = {server}; }}"
        );
        eval_ok(&expr, &[("defaults", &defaults), ("toml", toml)])
    };
    assert_eq!(ports("", true), json!([5001, 8888]), "the embedded default: Jupyter and server.py");
    assert_eq!(ports("", false), json!([8888]), "no server.py, no app");
    let declared =
        "[services.web]\ncommand = [\"x\"]\nport = 9000\n[services.auto]\ncommand = [\"y\"]\nport = \"auto\"\n";
    assert_eq!(ports(declared, true), json!([9000]), "declared services replace the defaults");
}

#[test]
fn the_app_set_runs_each_verb_with_a_description() {
    let apps = eval_ok("_: config.mkApps { program = verb: \"/bin/labup-${verb}\"; }", &[]);
    let names: Vec<&String> = apps.as_object().unwrap().keys().collect();
    assert_eq!(names, ["default", "doctor", "status", "stop", "up"]);
    for (name, app) in apps.as_object().unwrap() {
        let verb = if name == "default" { "up" } else { name };
        assert_eq!(app["type"], "app", "{name}");
        assert_eq!(app["program"], format!("/bin/labup-{verb}"), "{name}");
        assert!(app["meta"]["description"].as_str().is_some_and(|d| d.len() > 10), "{name}: {app}");
    }

    let with_llm = eval_ok("_: config.mkApps { program = v: \"/a/${v}\"; llmProgram = v: \"/llm/${v}\"; }", &[]);
    assert_eq!(with_llm["up-llm"]["program"], "/llm/up");
    assert!(with_llm["up-llm"]["meta"]["description"].as_str().unwrap().contains("Ollama"));
    assert_eq!(with_llm["up"]["program"], "/a/up", "the default closure has no Ollama");
}

#[test]
fn only_the_cuda_eula_is_accepted_as_unfree() {
    let cases = [
        ("{ meta.license = { free = false; shortName = \"CUDA EULA\"; }; }", true),
        ("{ meta.license = [ { free = true; shortName = \"mit\"; } { free = false; shortName = \"CUDA EULA\"; } ]; }", true),
        ("{ meta.license = { free = false; shortName = \"cuDNN EULA\"; }; }", false),
        ("{ meta.license = { free = false; shortName = \"unfree\"; }; }", false),
        ("{ meta = { }; }", false),
    ];
    for (pkg, allowed) in cases {
        assert_eq!(eval_ok(&format!("_: config.allowCudaUnfree {pkg}"), &[]), json!(allowed), "{pkg}");
    }
}

#[test]
fn the_flake_serves_the_four_systems() {
    let systems = eval_ok("_: config.systems", &[]);
    assert_eq!(systems, json!(["x86_64-linux", "aarch64-linux", "aarch64-darwin", "x86_64-darwin"]));
}

/// The pins from ../shared/FACTS.md ("Pins for flake.lock"), copied here because the Nix
/// sandbox and a plain checkout do not have that file.
fn expected_lock_nodes() -> Value {
    json!({
        "nixpkgs": {
            "locked": {
                "lastModified": 1785734586,
                "narHash": "sha256-ODZkEK9Gy50yg6h98u7KkitZ3oc/uuTFK00bh1CRdNA=",
                "owner": "NixOS",
                "repo": "nixpkgs",
                "rev": "531670d871c0e29724a02f3cbcac170adc65b58c",
                "type": "github",
            },
            "original": { "owner": "NixOS", "ref": "nixos-26.05", "repo": "nixpkgs", "type": "github" },
        },
        "crane": {
            "locked": {
                "lastModified": 1785631643,
                "narHash": "sha256-H++/2dMt+5+tErKU+t5z6c4Xedvj9w+UPQYrpygwIPw=",
                "owner": "ipetkov",
                "repo": "crane",
                "rev": "b8d87f76ea4e4b6f30f2e6eaf3fbb60ff7d87167",
                "type": "github",
            },
            "original": { "owner": "ipetkov", "repo": "crane", "type": "github" },
        },
        "root": { "inputs": { "crane": "crane", "nixpkgs": "nixpkgs" } },
    })
}

/// `github:OWNER/REPO[/REF]` as a flake.lock `original`.
fn original_of(url: &str) -> Value {
    let rest = url.strip_prefix("github:").unwrap_or_else(|| panic!("not a github: input: {url}"));
    let parts: Vec<&str> = rest.split('/').collect();
    let mut original = json!({ "owner": parts[0], "repo": parts[1], "type": "github" });
    if let Some(reference) = parts.get(2) {
        original["ref"] = json!(reference);
    }
    original
}

fn keys_are_sorted(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().collect();
            keys.windows(2).all(|w| w[0] < w[1]) && map.values().all(keys_are_sorted)
        }
        Value::Array(items) => items.iter().all(keys_are_sorted),
        _ => true,
    }
}

#[test]
fn flake_lock_matches_the_inputs_and_the_verified_pins() {
    let lock_text = std::fs::read_to_string(root().join("flake.lock")).unwrap();
    let lock: Value = serde_json::from_str(&lock_text).unwrap();
    assert_eq!(lock["version"], 7);
    assert_eq!(lock["root"], "root");
    assert_eq!(lock["nodes"], expected_lock_nodes());

    let flake = root().join("flake.nix").display().to_string();
    let inputs = eval_ok("{ flake, ... }: builtins.mapAttrs (_: i: i.url) (import flake).inputs", &[("flake", &flake)]);
    let inputs = inputs.as_object().unwrap();
    let root_inputs: Vec<&String> = lock["nodes"]["root"]["inputs"].as_object().unwrap().keys().collect();
    assert_eq!(inputs.keys().collect::<Vec<_>>(), root_inputs, "flake.nix inputs vs flake.lock root");
    for (name, url) in inputs {
        assert_eq!(lock["nodes"][name]["original"], original_of(url.as_str().unwrap()), "{name}");
    }
    let formals = eval_ok("{ flake, ... }: builtins.functionArgs (import flake).outputs", &[("flake", &flake)]);
    assert_eq!(formals, json!({ "self": false, "nixpkgs": false, "crane": false }));

    // As `nix flake lock` writes it: sorted keys, two-space indent, a final newline.
    assert!(keys_are_sorted(&lock), "flake.lock keys are not sorted");
    assert_eq!(lock_text, serde_json::to_string_pretty(&lock).unwrap() + "\n");
}

fn copy_template() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["flake.nix", "labup.toml", ".gitignore"] {
        std::fs::copy(root().join("templates/default").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn the_template_labup_toml_is_accepted_by_labup() {
    let dir = copy_template();
    let out = run(Command::new(env!("CARGO_BIN_EXE_labup"))
        .args(["env", "--project"])
        .arg(dir.path())
        .env("NO_COLOR", "1")
        .current_dir(dir.path()));
    assert!(out.status.success(), "labup rejected the template's labup.toml:\n{}", text(&out.stderr));

    let settings = eval_ok("{ dir, ... }: config.readConfig dir", &[("dir", &dir.path().display().to_string())]);
    assert_eq!(settings["pythonAttr"], "python312");
    assert_eq!(settings["nixPackages"], json!([]));
}

#[test]
fn the_template_flake_calls_mk_flake_with_its_folder() {
    let dir = copy_template();
    let flake = dir.path().join("flake.nix").display().to_string();
    let expr = "{ flake, ... }: let f = import flake; in {
        url = f.inputs.labup.url;
        out = f.outputs { self = { }; labup.lib.mkFlake = args: {
          keys = builtins.attrNames args;
          srcHasToml = builtins.pathExists (args.src + \"/labup.toml\");
        }; };
      }";
    let got = eval_ok(expr, &[("flake", &flake)]);
    assert_eq!(got, json!({ "url": "github:OWNER/labup", "out": { "keys": ["src"], "srcHasToml": true } }));

    let ignore = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    for entry in [".venv/", ".labup/", "labup.local.toml"] {
        assert!(ignore.lines().any(|l| l == entry), "template .gitignore lacks {entry}");
    }
}

#[test]
fn the_sandbox_filter_names_this_test_binary() {
    // nix/checks.nix excludes this binary from `nix flake check` by name; renaming this
    // file without updating the filter would make nextest fail on an unknown binary.
    let checks = std::fs::read_to_string(root().join("nix/checks.nix")).unwrap();
    let this = Path::new(file!()).file_stem().unwrap().to_str().unwrap();
    assert!(checks.contains(&format!("binary_id(labup::{this})")), "nix/checks.nix does not exclude {this}");
}

#[test]
fn the_sandbox_leaves_out_every_nix_eval_test() {
    // tests/nix_eval.rs needs Nix and the evaluation inputs, which a Nix build lacks; the
    // sandbox filter leaves out `engine_` tests, so each of them must carry the prefix.
    let checks = std::fs::read_to_string(root().join("nix/checks.nix")).unwrap();
    assert!(checks.contains("test(/engine_/)"), "nix/checks.nix does not exclude engine_ tests");
    let source = std::fs::read_to_string(root().join("tests/nix_eval.rs")).unwrap();
    let names: Vec<&str> = source.split("#[test]\nfn ").skip(1).map(|rest| rest.split('(').next().unwrap()).collect();
    assert!(names.len() >= 10, "{names:?}");
    let unprefixed: Vec<&&str> = names.iter().filter(|n| !n.starts_with("engine_")).collect();
    assert!(unprefixed.is_empty(), "tests/nix_eval.rs tests without the engine_ prefix: {unprefixed:?}");
}
