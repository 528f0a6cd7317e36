//! The flake evaluated for real, as far as anything can be without nixpkgs' 4 GiB of packages:
//! real Nix (Debian trixie's 2.26, installed privately by `.ci/setup.d/30-nix-eval.sh`), real
//! crane at the revision `flake.lock` pins and nixpkgs' real `lib`, both from
//! `LABUP_NIX_INPUTS` (default `../shared/nix-inputs` beside the repository), and for the
//! packages a stub written for these tests (`tests/nix-eval/nixpkgs`, each model named with
//! the nixpkgs file it stands for). Every derivation the stub makes is a real `derivation`
//! whose builder fails, so `nix flake check --no-build` evaluates everything (every output,
//! all four systems, `drvPath`s included) and nothing can be built by accident.
//!
//! Each test works on a copy of the repository's files (what `git ls-files` lists, tracked or
//! not ignored, as a fresh clone has them) in a private store with no substituters and no
//! network. The `harness_fails_…` tests plant a defect in such a copy and expect failure.
//! Without Nix or the inputs every test fails with a hint saying where to get them.
//! All names start with `engine_`: the Nix sandbox has no Nix, and `nix/checks.nix` skips them.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SYSTEMS: [&str; 4] = ["x86_64-linux", "aarch64-linux", "aarch64-darwin", "x86_64-darwin"];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `crane/` and `nixpkgs-lib/` from LABUP_NIX_INPUTS, or a failure that says where they are.
fn inputs() -> PathBuf {
    inputs_at(
        std::env::var_os("LABUP_NIX_INPUTS").map(PathBuf::from).unwrap_or_else(|| repo().join("../shared/nix-inputs")),
    )
}

fn inputs_at(dir: PathBuf) -> PathBuf {
    for sub in ["crane/lib/default.nix", "nixpkgs-lib/lib/default.nix"] {
        assert!(
            dir.join(sub).is_file(),
            "the Nix evaluation inputs are missing: no {} in {}. They are `shared/nix-inputs` (crane at \
             the revision flake.lock pins and nixpkgs' lib; its README says where they come from), \
             which CI lays beside the clone; elsewhere set LABUP_NIX_INPUTS to such a folder",
            sub,
            dir.display()
        );
    }
    dir
}

/// Nix ≥ 2.26 (lib.fileset needs builtins.readFileType): the private install, else `nix` on PATH.
fn nix_binary() -> PathBuf {
    let root = std::env::var_os("LABUP_NIX_ROOT").map(PathBuf::from).unwrap_or_else(|| "/opt/labup-nix".into());
    nix_binary_from(&root, &std::env::var_os("PATH").unwrap_or_default())
}

fn nix_binary_from(root: &Path, path: &std::ffi::OsStr) -> PathBuf {
    let candidates = std::iter::once(root.join("bin/nix")).chain(std::env::split_paths(path).map(|d| d.join("nix")));
    for nix in candidates.filter(|p| p.is_file()) {
        let Ok(out) = Command::new(&nix).arg("--version").output() else { continue };
        let version = text(&out.stdout);
        let numbers: Vec<u32> =
            version.split_whitespace().last().unwrap_or("").split('.').take(2).filter_map(|n| n.parse().ok()).collect();
        if numbers.len() == 2 && (numbers[0], numbers[1]) >= (2, 26) {
            return nix;
        }
    }
    panic!(
        "no Nix 2.26 or newer (looked at {} and PATH): run `.ci/setup.d/30-nix-eval.sh` as root, which \
         unpacks Debian trixie's nix-bin into /opt/labup-nix without installing anything system-wide",
        root.join("bin/nix").display()
    );
}

/// Copies the files of `from` that git lists (tracked, or untracked and not ignored).
fn copy_listed(from: &Path, to: &Path) {
    let out = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(from)
        .output()
        .expect("git lists the repository's files");
    assert!(out.status.success(), "git ls-files: {}", text(&out.stderr));
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let source = from.join(name);
        if !source.is_file() {
            continue; // deleted in the work tree
        }
        let target = to.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// One evaluation sandbox: a copy of the repository, the stub nixpkgs with the real lib, a
/// private store and Nix settings that reach nothing outside.
struct Eval {
    dir: tempfile::TempDir,
    nix: PathBuf,
    crane: PathBuf,
}

impl Eval {
    fn new() -> Self {
        let inputs = inputs();
        let nix = nix_binary();
        let dir = tempfile::tempdir().unwrap();
        let eval = Eval { dir, nix, crane: inputs.join("crane") };
        copy_listed(repo(), &eval.repo());
        copy_tree(&repo().join("tests/nix-eval/nixpkgs"), &eval.nixpkgs());
        copy_tree(&inputs.join("nixpkgs-lib/lib"), &eval.nixpkgs().join("lib"));
        std::fs::create_dir_all(eval.path("conf")).unwrap();
        std::fs::write(
            eval.path("conf/nix.conf"),
            "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\n\
             substituters =\nflake-registry =\nwarn-dirty = false\neval-cache = false\nsandbox-paths =\n",
        )
        .unwrap();
        eval
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn repo(&self) -> PathBuf {
        self.path("repo")
    }
    fn nixpkgs(&self) -> PathBuf {
        self.path("nixpkgs")
    }
    fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// A file of the stored copy of a store path (evaluation adds sources to the store).
    fn in_store(&self, store_path: &str) -> PathBuf {
        self.store().join(store_path.trim_start_matches('/'))
    }

    fn nix(&self) -> Command {
        let mut cmd = Command::new(&self.nix);
        cmd.arg("--store")
            .arg(self.store())
            .env("NIX_CONF_DIR", self.path("conf"))
            .env("NIX_USER_CONF_FILES", "")
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("XDG_CONFIG_HOME", self.path("home/.config"))
            .env("XDG_DATA_HOME", self.path("home/.local/share"))
            .env_remove("NIX_PATH")
            .env_remove("NIX_CONFIG")
            .env_remove("NIX_REMOTE")
            .current_dir(self.dir.path());
        cmd
    }

    /// The overrides that point `prefix` (a flake with labup's inputs) at the stub and crane.
    fn overrides(&self, prefix: &str) -> Vec<String> {
        vec![
            "--no-write-lock-file".into(),
            "--override-input".into(),
            format!("{prefix}nixpkgs"),
            format!("path:{}", self.nixpkgs().display()),
            "--override-input".into(),
            format!("{prefix}crane"),
            format!("path:{}", self.crane.display()),
        ]
    }

    /// Runs nix with the arguments; Ok(stdout) or Err(stderr), stderr always kept for asserts.
    fn run(&self, args: &[String]) -> (bool, String, String) {
        let out: Output = self.nix().args(args).output().unwrap_or_else(|e| panic!("cannot run nix: {e}"));
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    }

    #[track_caller]
    fn ok(&self, args: &[String]) -> (String, String) {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "nix {} failed:\n{stderr}", args.join(" "));
        (stdout, stderr)
    }

    #[track_caller]
    fn fails(&self, args: &[String]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(!ok, "nix {} succeeded, expected a failure:\n{stdout}\n{stderr}", args.join(" "));
        stderr
    }

    fn flake(&self) -> String {
        format!("path:{}", self.repo().display())
    }

    /// `nix flake check --no-build --all-systems` of this repository's copy.
    fn check_args(&self) -> Vec<String> {
        let mut args = strings(&["flake", "check", "--no-build", "--all-systems", "-L"]);
        args.push(self.flake());
        args.extend(self.overrides(""));
        args
    }

    /// `nix eval --json` of `attr` of the repository's copy.
    #[track_caller]
    fn eval_json(&self, attr: &str, apply: Option<&str>) -> Value {
        let mut args = strings(&["eval", "--json"]);
        args.push(format!("{}#{attr}", self.flake()));
        if let Some(f) = apply {
            args.extend(strings(&["--apply", f]));
        }
        args.extend(self.overrides(""));
        serde_json::from_str(&self.ok(&args).0).unwrap()
    }

    /// `nix derivation show` of an installable: the one derivation's JSON.
    #[track_caller]
    fn derivation(&self, installable: &str, overrides: &[String]) -> Value {
        let mut args = strings(&["derivation", "show", installable]);
        args.extend_from_slice(overrides);
        let all: Value = serde_json::from_str(&self.ok(&args).0).unwrap();
        let map = all.as_object().unwrap();
        assert_eq!(map.len(), 1, "{installable}: one derivation expected");
        map.values().next().unwrap().clone()
    }

    /// The derivations of several attributes of the copy, in one evaluation (each nix call
    /// evaluates the flake from the start).
    #[track_caller]
    fn drvs(&self, attrs: &[&str]) -> Vec<Value> {
        let list: Vec<String> = attrs.iter().map(|a| format!("labup.{a}.drvPath")).collect();
        let paths = self.probe(&format!("[ {} ]", list.join(" "))).unwrap_or_else(|e| panic!("{e}"));
        let paths: Vec<String> = paths.as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
        let mut args = strings(&["derivation", "show"]);
        args.extend(paths.iter().cloned());
        let all: Value = serde_json::from_str(&self.ok(&args).0).unwrap();
        paths.iter().map(|p| all[p].clone()).collect()
    }

    #[track_caller]
    fn drv_of(&self, attr: &str) -> Value {
        self.drvs(&[attr]).pop().unwrap()
    }

    /// A flake in `probe/` whose `result` is `expr`, with `labup` (the copy), `nixpkgs` (the
    /// stub, which labup follows), crane and `systemd` (the NixOS systemd model) in scope.
    #[track_caller]
    fn probe(&self, expr: &str) -> Result<Value, String> {
        let dir = self.path("probe");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(repo().join("tests/nix-eval/nixos-systemd.nix"), dir.join("systemd.nix")).unwrap();
        let flake = format!(
            "{{\n  inputs.nixpkgs.url = \"path:{np}\";\n  inputs.crane.url = \"path:{crane}\";\n  \
             inputs.labup.url = \"path:{repo}\";\n  inputs.labup.inputs.nixpkgs.follows = \"nixpkgs\";\n  \
             inputs.labup.inputs.crane.follows = \"crane\";\n  outputs = {{ labup, nixpkgs, ... }}:\n    \
             let inherit (nixpkgs) lib; systemd = ./systemd.nix; in {{ result = {expr}; }};\n}}\n",
            np = self.nixpkgs().display(),
            crane = self.crane.display(),
            repo = self.repo().display(),
        );
        std::fs::write(dir.join("flake.nix"), flake).unwrap();
        let args = vec![
            "eval".into(),
            "--json".into(),
            "--no-write-lock-file".into(),
            format!("path:{}#result", dir.display()),
        ];
        let (ok, stdout, stderr) = self.run(&args);
        if ok {
            Ok(serde_json::from_str(&stdout).unwrap())
        } else {
            Err(stderr)
        }
    }

    fn edit(&self, rel: &str, from: &str, to: &str) {
        let path = self.repo().join(rel);
        let old = std::fs::read_to_string(&path).unwrap();
        assert!(old.contains(from), "{rel} no longer contains {from:?}: update this test");
        std::fs::write(&path, old.replacen(from, to, 1)).unwrap();
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn env<'a>(drv: &'a Value, key: &str) -> &'a str {
    drv["env"][key].as_str().unwrap_or_else(|| panic!("no env.{key} in {drv}"))
}

/// The warnings of a successful evaluation, less the one the overrides cause by design.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("warning:") && !l.contains("not writing modified lock file")).collect()
}

#[test]
fn engine_flake_check_evaluates_every_output_for_all_four_systems() {
    let e = Eval::new();
    let (_, stderr) = e.ok(&e.check_args());
    assert_eq!(warnings(&stderr), Vec::<&str>::new(), "{stderr}");
    let mut expected: Vec<String> = Vec::new();
    for system in SYSTEMS {
        for pkg in ["labup", "default"] {
            expected.push(format!("checking derivation packages.{system}.{pkg}..."));
        }
        for check in ["labup", "clippy", "doc", "fmt", "nextest", "nix-lint", "smoke"] {
            expected.push(format!("checking derivation checks.{system}.{check}..."));
        }
        for app in ["default", "up", "stop", "status", "doctor", "up-llm"] {
            expected.push(format!("checking app 'apps.{system}.{app}'..."));
        }
        expected.push(format!("checking derivation devShells.{system}.default..."));
        expected.push(format!("checking derivation formatter.{system}..."));
    }
    for system in ["x86_64-linux", "aarch64-linux"] {
        expected.push(format!("checking derivation packages.{system}.image..."));
    }
    expected.extend(strings(&[
        "checking overlay 'overlays.default'...",
        "checking NixOS module 'nixosModules.default'...",
        "checking template 'templates.default'...",
        "checking flake output 'lib'...",
    ]));
    let missing: Vec<&String> = expected.iter().filter(|line| !stderr.contains(line.as_str())).collect();
    assert!(missing.is_empty(), "not checked: {missing:#?}\n{stderr}");
    assert!(!stderr.contains("packages.aarch64-darwin.image"), "images are Linux only");
}

#[test]
fn engine_the_overlay_gives_the_same_labup_as_packages_default() {
    let e = Eval::new();
    let expr = r#"lib.genAttrs [ "x86_64-linux" "aarch64-darwin" ] (system: {
        overlay = (import nixpkgs { inherit system; overlays = [ labup.overlays.default ]; }).labup.drvPath;
        package = labup.packages.${system}.default.drvPath;
      })"#;
    let got = e.probe(expr).unwrap();
    for system in ["x86_64-linux", "aarch64-darwin"] {
        let (overlay, package) = (&got[system]["overlay"], &got[system]["package"]);
        assert!(overlay.as_str().unwrap().ends_with("-labup-0.1.0.drv"), "{got}");
        assert_eq!(overlay, package, "{system}");
    }
    assert_ne!(got["x86_64-linux"]["package"], got["aarch64-darwin"]["package"]);
}

#[test]
fn engine_the_wrapper_sets_the_store_paths_and_wraps_labup_unwrapped() {
    let e = Eval::new();
    let [linux, darwin, unwrapped] = <[Value; 3]>::try_from(e.drvs(&[
        "packages.x86_64-linux.default",
        "packages.aarch64-darwin.default",
        "packages.x86_64-linux.default.unwrapped",
    ]))
    .unwrap();
    let script = env(&linux, "buildCommand");
    let python =
        regex::Regex::new(r"--set-default LABUP_PYTHON /nix/store/[a-z0-9]{32}-python3-3\.12\.0/bin/python3\.12")
            .unwrap();
    assert!(python.is_match(script), "{script}");
    assert!(regex::Regex::new(r"--set-default LABUP_UV /nix/store/[a-z0-9]{32}-uv-0-stub/bin/uv")
        .unwrap()
        .is_match(script));
    let libs = regex::Regex::new(r"--prefix LABUP_LIBRARY_PATH : (\S+)").unwrap();
    let libs = &libs.captures(script).unwrap_or_else(|| panic!("{script}"))[1];
    let names: Vec<&str> = libs.split(':').map(|p| p.split_once('-').unwrap().1).collect();
    assert_eq!(names, ["gcc-0-stub-lib/lib", "zlib-0-stub/lib", "libglvnd-0-stub/lib", "glib-0-stub/lib"], "{libs}");
    assert!(script.contains("-labup-unwrapped-0.1.0/bin/labup $out/bin/labup"), "{script}");
    assert!(!script.contains("--suffix PATH"), "Linux labup reads /proc: {script}");

    let script = env(&darwin, "buildCommand");
    assert!(!script.contains("LABUP_LIBRARY_PATH"), "{script}");
    let tools = regex::Regex::new(r"--suffix PATH : /nix/store/\w{32}-procps-0-stub/bin\s").unwrap();
    assert!(tools.is_match(script), "darwin labup brings ps (for messages): {script}");
    assert!(!script.contains("-sysctl-"), "process facts come from libproc and sysctl(3), not commands: {script}");

    assert_eq!(env(&unwrapped, "pname"), "labup-unwrapped");
}

/// libproc's build script runs bindgen on macOS: the darwin builds (dependencies, the binary,
/// the checks built from the same arguments) get nixpkgs' bindgenHook, the Linux ones do not.
#[test]
fn engine_darwin_builds_get_the_bindgen_hook() {
    let e = Eval::new();
    let drvs = e.drvs(&[
        "packages.aarch64-darwin.default.unwrapped",
        "packages.aarch64-darwin.default.cargoArtifacts",
        "checks.aarch64-darwin.clippy",
        "packages.x86_64-linux.default.unwrapped",
        "packages.x86_64-linux.default.cargoArtifacts",
    ]);
    let hooked: Vec<bool> = drvs.iter().map(|d| env(d, "nativeBuildInputs").contains("-rust-bindgen-hook")).collect();
    assert_eq!(hooked, [true, true, true, false, false], "{drvs:?}");
    assert!(env(&drvs[0], "nativeBuildInputs").contains("-install-shell-files"), "{}", drvs[0]);
}

#[test]
fn engine_the_dev_shell_has_labup_python_uv_and_the_hook() {
    let e = Eval::new();
    let shell = e.drv_of("devShells.x86_64-linux.default");
    let inputs = env(&shell, "nativeBuildInputs");
    for name in [
        "-labup-0.1.0",
        "-python3-3.12.0",
        "-uv-0-stub",
        "-cargo-nextest-0-stub",
        "-nixfmt-0-stub",
        "-deadnix-0-stub",
        "-rustc-0-stub",
        "-cargo-0-stub",
        "-clippy-0-stub",
        "-rustfmt-0-stub",
    ] {
        assert!(inputs.split(' ').any(|p| p.ends_with(name)), "{name} missing from {inputs}");
    }
    assert_eq!(env(&shell, "shellHook").trim(), "eval \"$(labup hook bash)\"");
    assert_eq!(env(&shell, "name"), "labup-shell");
}

#[test]
fn engine_every_app_runs_its_labup_verb() {
    let e = Eval::new();
    let apps = e.eval_json("apps.x86_64-linux", None);
    let labup = e.eval_json("packages.x86_64-linux.default.outPath", None);
    let names: Vec<&String> = apps.as_object().unwrap().keys().collect();
    assert_eq!(names, ["default", "doctor", "status", "stop", "up", "up-llm"]);
    let ollama = regex::Regex::new(r"--set-default LABUP_OLLAMA (/nix/store/\w{32}-ollama-0-stub)/bin/ollama").unwrap();
    for (name, app) in apps.as_object().unwrap() {
        let verb = match name.as_str() {
            "default" | "up-llm" => "up",
            other => other,
        };
        let program = app["program"].as_str().unwrap();
        let drv = e.derivation(program, &[]);
        let script = env(&drv, "text");
        assert!(script.ends_with(&format!("/bin/labup {verb} \"$@\"\n")), "{name}: {script}");
        if name == "up-llm" {
            assert!(!script.contains(labup.as_str().unwrap()), "up-llm runs the Ollama wrapper: {script}");
            let wrapper = script.split_whitespace().nth(2).unwrap().trim_end_matches("/bin/labup");
            let wrapped = e.derivation(wrapper, &[]);
            let cmd = env(&wrapped, "buildCommand");
            let ollama = &ollama.captures(cmd).unwrap_or_else(|| panic!("{cmd}"))[1];
            let ollama = e.derivation(ollama, &[]);
            assert!(env(&ollama, "buildInputs").contains("-cuda_cudart-0-stub"), "Linux gets ollama-cuda: {ollama}");
        } else {
            assert!(script.contains(&format!("exec {}/bin/labup", labup.as_str().unwrap())), "{name}: {script}");
        }
        assert!(app["meta"]["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
    }
}

#[test]
fn engine_the_checks_are_set_up_for_the_sandbox() {
    let e = Eval::new();
    let [nextest, clippy, darwin_nextest, darwin_smoke, linux_smoke, lint, unwrapped] =
        <[Value; 7]>::try_from(e.drvs(&[
            "checks.x86_64-linux.nextest",
            "checks.x86_64-linux.clippy",
            "checks.aarch64-darwin.nextest",
            "checks.aarch64-darwin.smoke",
            "checks.x86_64-linux.smoke",
            "checks.x86_64-linux.nix-lint",
            "packages.x86_64-linux.default.unwrapped",
        ]))
        .unwrap();
    assert_eq!(env(&nextest, "doInstallCargoArtifacts"), "", "nothing consumes the check's target/");
    let args = env(&nextest, "checkPhase");
    for part in ["binary_id(labup::nix)", "test(/engine_/)", "test(/pypi_/)", "--no-tests=fail"] {
        assert!(args.contains(part), "{part} missing from {args}");
    }
    let pre = env(&nextest, "preCheck");
    assert!(pre.contains("-python3-3.13.0 $HOME/.pyenv/versions/other"), "the other Python is 3.13: {pre}");
    assert!(!env(&nextest, "nativeCheckInputs").contains("-sysctl-"), "Linux needs no sysctl");
    assert_eq!(env(&clippy, "doInstallCargoArtifacts"), "");

    for (check, darwin, linux) in [("nextest", &darwin_nextest, &nextest), ("smoke", &darwin_smoke, &linux_smoke)] {
        assert_eq!(env(darwin, "__darwinAllowLocalNetworking"), "1", "{check}");
        assert!(linux["env"].get("__darwinAllowLocalNetworking").is_none(), "{check}: darwin only");
    }
    let darwin_inputs = env(&darwin_nextest, "nativeCheckInputs");
    assert!(darwin_inputs.contains("-procps-0-stub") && !darwin_inputs.contains("-sysctl-"), "{darwin_nextest}");

    assert!(env(&lint, "buildCommand").contains("nixfmt --check"), "{lint}");

    // The package's source: what the tests and include_str! read, without examples/ or Nix files.
    let src = e.in_store(env(&unwrapped, "src"));
    for present in [
        "Cargo.lock",
        "src/main.rs",
        "src/config/default.toml",
        "templates/default/flake.nix",
        "tests/fixtures",
        "README.md",
    ] {
        assert!(src.join(present).exists(), "{present} missing from the package source {}", src.display());
    }
    for absent in ["examples", "flake.nix", "nix"] {
        assert!(!src.join(absent).exists(), "{absent} is in the package source");
    }
}

#[test]
fn engine_the_image_runs_labup_up_foreground_with_the_demo() {
    let e = Eval::new();
    let image = e.drv_of("packages.x86_64-linux.image");
    let conf: Value = serde_json::from_str(env(&image, "conf")).unwrap();
    let config = &conf["config"];
    let labup = e.eval_json("packages.x86_64-linux.default.outPath", None);
    let labup = labup.as_str().unwrap();
    assert_eq!(config["Entrypoint"], serde_json::json!([format!("{labup}/bin/labup"), "up", "--foreground"]));
    assert_eq!(config["WorkingDir"], "/workspace");
    assert_eq!(config["User"], "1000:1000");
    let ports: Vec<&String> = config["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["5001/tcp", "8888/tcp"], "Jupyter and the demo's server.py");
    let vars: Vec<&str> = config["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(
        vars.iter().any(|v| v.starts_with("SSL_CERT_FILE=/nix/store/")
            && v.ends_with("-nss-cacert-0-stub/etc/ssl/certs/ca-bundle.crt")),
        "{vars:?}"
    );
    assert!(vars.contains(&"LABUP_NO_BROWSER=1"), "{vars:?}");
    let contents = env(&image, "contents");
    for name in ["-labup-0.1.0", "-python3-3.12.0", "-uv-0-stub", "-bash-0-stub", "-nss-cacert-0-stub"] {
        assert!(contents.split(' ').any(|p| p.ends_with(name)), "{name} missing from {contents}");
    }
    let commands = env(&image, "extraCommands");
    let demo = regex::Regex::new(r"cp -r (/nix/store/\S+)/\. workspace/").unwrap();
    let demo = &demo.captures(commands).unwrap_or_else(|| panic!("{commands}"))[1];
    assert!(e.in_store(demo).join("server.py").is_file(), "the image carries examples/demo");
    let systems = e.eval_json("packages", Some("builtins.mapAttrs (_: builtins.attrNames)"));
    assert_eq!(systems["aarch64-darwin"], serde_json::json!(["default", "labup"]));
}

#[test]
fn engine_the_nixos_module_gives_the_systemd_unit() {
    let e = Eval::new();
    let eval = |workspaces: &str| {
        e.probe(&format!(
            r#"(lib.evalModules {{
              modules = [ labup.nixosModules.default systemd
                {{ _module.args.pkgs = import nixpkgs {{ system = "x86_64-linux"; }}; services.labup.workspaces = {workspaces}; }} ];
            }}).config.systemd.services"#
        ))
    };
    let units = eval(r#"{ "Vision Lab" = { path = "/srv/vision lab"; user = "alice"; }; slow = { path = "/srv/50%$"; user = "bob"; stopTimeout = 25; environment.LABUP_DRIVER_DIRS = "/run/opengl-driver/lib"; }; off = { path = "/srv/off"; user = "carol"; enable = false; }; }"#).unwrap();
    let names: Vec<&String> = units.as_object().unwrap().keys().collect();
    assert_eq!(names, ["labup-Vision-Lab", "labup-slow"], "named as `labup export systemd` names them");
    let labup = e.eval_json("packages.x86_64-linux.default.outPath", None);
    let unit = &units["labup-Vision-Lab"];
    let service = &unit["serviceConfig"];
    assert_eq!(
        service["ExecStart"],
        format!("{}/bin/labup --project '/srv/vision lab' up --foreground --no-browser", labup.as_str().unwrap())
    );
    assert_eq!(service["KillMode"], "mixed");
    assert_eq!(service["TimeoutStopSec"], 40, "labup's default stop-timeout (10 s) + 30");
    assert_eq!(service["User"], "alice");
    assert_eq!(service["Type"], "exec");
    assert_eq!(service["WorkingDirectory"], "/srv/vision lab");
    assert_eq!(service["Restart"], "on-failure");
    assert_eq!(service["RestartSec"], 5);
    assert_eq!(unit["description"], "labup workspace Vision Lab");
    assert_eq!(unit["after"], serde_json::json!(["network-online.target"]));
    assert_eq!(unit["wants"], serde_json::json!(["network-online.target"]));
    assert_eq!(unit["wantedBy"], serde_json::json!(["multi-user.target"]));
    assert_eq!(unit["environment"], serde_json::json!({ "LABUP_NO_BROWSER": "1" }));
    let slow = &units["labup-slow"];
    assert_eq!(slow["serviceConfig"]["TimeoutStopSec"], 55);
    let exec = slow["serviceConfig"]["ExecStart"].as_str().unwrap();
    assert!(exec.contains(" --project '/srv/50%%$$' up "), "systemd specifiers and variables escaped: {exec}");
    assert_eq!(slow["environment"]["LABUP_DRIVER_DIRS"], "/run/opengl-driver/lib");

    let err = eval(r#"{ lab = { path = "srv/lab"; user = "alice"; }; }"#).unwrap_err();
    assert!(err.contains("services.labup.workspaces.lab.path") && err.contains("is not of type"), "{err}");
    let err = eval(r#"{ lab = { path = "/srv/lab"; }; }"#).unwrap_err();
    assert!(err.contains("services.labup.workspaces.lab.user") && err.contains("has no value defined"), "{err}");
}

/// A fresh git folder made by `nix flake init -t` from the repository's copy.
fn template_project(e: &Eval, labup_toml: &str) -> PathBuf {
    let dir = e.path("project");
    std::fs::create_dir_all(&dir).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    };
    git(&["init", "-q"]);
    let mut init = e.nix();
    init.current_dir(&dir).args(["flake", "init", "-t", &format!("{}#default", e.flake())]);
    let out = init.output().unwrap();
    assert!(out.status.success(), "nix flake init: {}", text(&out.stderr));
    for file in ["flake.nix", "labup.toml", ".gitignore"] {
        assert!(dir.join(file).is_file(), "the template wrote no {file}");
    }
    std::fs::write(dir.join("labup.toml"), labup_toml).unwrap();
    std::fs::write(dir.join("server.py"), "print('hello')\n").unwrap();
    // What the README says to run (there is no flake.lock yet to add).
    git(&["add", "flake.nix", "labup.toml", ".gitignore", "server.py"]);
    dir
}

fn project_overrides(e: &Eval) -> Vec<String> {
    let mut args = vec!["--override-input".into(), "labup".into(), e.flake()];
    args.extend(e.overrides("labup/"));
    args
}

#[test]
fn engine_the_template_evaluates_through_mk_flake_with_its_labup_toml() {
    let e = Eval::new();
    let toml = "[project]\nname = \"vision\"\n\n[python]\nversion = \"3.13\"\n\n[nix]\npackages = [\"jq\", \"python313Packages.black\"]\n\n[services.app]\ncommand = [\"python\", \"server.py\"]\nport = 7000\n\n[services.notes]\nkind = \"jupyter\"\nport = \"auto\"\n";
    let dir = template_project(&e, toml);
    let flake = format!("git+file://{}", dir.display());
    let mut check = strings(&["flake", "check", "--no-build", "--all-systems", &flake]);
    check.extend(project_overrides(&e));
    let (_, stderr) = e.ok(&check);
    assert_eq!(warnings(&stderr), Vec::<&str>::new(), "{stderr}");
    for line in [
        "checking derivation packages.x86_64-linux.default...",
        "checking derivation packages.aarch64-darwin.default...",
        "checking derivation packages.x86_64-linux.image...",
        "checking derivation devShells.x86_64-darwin.default...",
        "checking app 'apps.aarch64-linux.up-llm'...",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }

    let wrapper = e.derivation(&format!("{flake}#packages.x86_64-linux.default"), &project_overrides(&e));
    let script = env(&wrapper, "buildCommand");
    assert!(
        regex::Regex::new(r"LABUP_PYTHON /nix/store/\w{32}-python3-3\.13\.0/bin/python3\.13").unwrap().is_match(script),
        "{script}"
    );
    assert!(
        regex::Regex::new(r"--prefix PATH : /nix/store/\w{32}-jq-0-stub/bin:/nix/store/\w{32}-black-0-stub/bin")
            .unwrap()
            .is_match(script),
        "{script}"
    );
    let shell = e.derivation(&format!("{flake}#devShells.x86_64-linux.default"), &project_overrides(&e));
    assert_eq!(env(&shell, "name"), "vision-shell");
    let inputs = env(&shell, "nativeBuildInputs");
    for name in ["-python3-3.13.0", "-jq-0-stub", "-black-0-stub", "-uv-0-stub", "-labup-0.1.0"] {
        assert!(inputs.split(' ').any(|p| p.ends_with(name)), "{name} missing from {inputs}");
    }
    let image = e.derivation(&format!("{flake}#packages.x86_64-linux.image"), &project_overrides(&e));
    let conf: Value = serde_json::from_str(env(&image, "conf")).unwrap();
    let ports: Vec<&String> = conf["config"]["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["7000/tcp"], "declared services replace the default set; `auto` has no fixed port");
    assert_eq!(env(&image, "imageName"), "labup-vision");
}

#[test]
fn engine_a_bad_labup_toml_stops_evaluation_naming_the_file_and_key() {
    let e = Eval::new();
    let dir = template_project(&e, "");
    let flake = format!("git+file://{}", dir.display());
    let cases = [
        ("[python]\nversion = 3.13\n", "labup.toml: [python] version must be a string like \"3.12\", not a number"),
        ("[python]\nversion = \"3.9\"\n", "labup.toml: [python] version \"3.9\" needs nixpkgs' `python39`"),
        ("[nix]\npackages = [\"ffmpg\"]\n", "labup.toml: [nix] packages: nixpkgs has no package `ffmpg`"),
        (
            "[nix]\npackages = [\"python313Packages\"]\n",
            "labup.toml: [nix] packages: `python313Packages` is a set of packages in nixpkgs, not a package",
        ),
        ("[services]\napp = 3\n", "labup.toml: [services.app] must be a table"),
        ("[python\n", "while reading labup.toml"),
    ];
    for (toml, message) in cases {
        std::fs::write(dir.join("labup.toml"), toml).unwrap();
        let mut args = strings(&["eval", "--raw", &format!("{flake}#packages.x86_64-linux.image.drvPath")]);
        args.extend(project_overrides(&e));
        let err = e.fails(&args);
        assert!(err.contains(message), "for {toml:?} expected {message:?} in:\n{err}");
    }
}

#[test]
fn engine_the_stub_refuses_unfree_and_foreign_packages_and_builds_nothing() {
    let e = Eval::new();
    let err = e.probe(r#"(import nixpkgs { system = "x86_64-linux"; }).ollama-cuda.drvPath"#).unwrap_err();
    assert!(err.contains("has an unfree license"), "{err}");
    let allowed = e.probe(
        r#"(import nixpkgs { system = "x86_64-linux"; config.allowUnfreePredicate = p: (p.meta.license.shortName or "") == "CUDA EULA"; }).ollama-cuda.drvPath"#,
    );
    assert!(allowed.is_ok(), "{allowed:?}");
    let err = e.probe(r#"(import nixpkgs { system = "aarch64-darwin"; }).ollama-cuda.drvPath"#).unwrap_err();
    assert!(err.contains("is not available on the requested hostPlatform"), "{err}");
    let err = e
        .probe(r#"(import nixpkgs { system = "x86_64-linux"; }).callPackage ({ uv, notAPackage }: uv) { }"#)
        .unwrap_err();
    assert!(err.contains("notAPackage"), "callPackage names the missing argument: {err}");

    // A build is attempted and fails: the builder is /bin/sh exiting 1 (here the private
    // store's chroot has no /bin/sh at all). The build hook would re-run this Nix through
    // /proc/self/exe, which is trixie's loader here: there are no remote builders anyway.
    let python = format!("{}#packages.x86_64-linux.default.python", e.flake());
    let mut build = strings(&["build", "-L", "--no-link", "--option", "build-hook", "", &python]);
    build.extend(e.overrides(""));
    let err = e.fails(&build);
    assert!(
        regex::Regex::new(r"builder for '/nix/store/\w{32}-python3-3\.12\.0\.drv' failed with exit code 1")
            .unwrap()
            .is_match(&err),
        "{err}"
    );
}

#[test]
fn engine_x86_64_darwin_is_dropped_when_nixpkgs_no_longer_has_it() {
    let e = Eval::new();
    let stub = e.nixpkgs().join("flake.nix");
    let text = std::fs::read_to_string(&stub).unwrap();
    let from = "lib.genAttrs lib.systems.flakeExposed";
    assert!(text.contains(from));
    std::fs::write(&stub, text.replace(from, "lib.genAttrs (lib.remove \"x86_64-darwin\" lib.systems.flakeExposed)"))
        .unwrap();
    let (_, stderr) = e.ok(&e.check_args());
    assert!(stderr.contains("checking derivation packages.aarch64-darwin.default..."), "{stderr}");
    assert!(!stderr.contains("x86_64-darwin"), "{stderr}");
}

#[test]
fn engine_harness_fails_on_a_misspelled_crane_function() {
    let e = Eval::new();
    e.edit("nix/package.nix", "craneLib.buildDepsOnly", "craneLib.buildDepOnly");
    let err = e.fails(&e.check_args());
    assert!(err.contains("attribute 'buildDepOnly' missing"), "{err}");
}

#[test]
fn engine_harness_fails_on_a_fileset_naming_a_missing_file() {
    let e = Eval::new();
    e.edit("nix/package.nix", "(root + \"/README.md\")", "(root + \"/README.md\") (root + \"/CHANGELOG.md\")");
    let err = e.fails(&e.check_args());
    assert!(err.contains("CHANGELOG.md") && err.contains("does not exist"), "{err}");
}

#[test]
fn engine_harness_fails_on_a_missing_argument() {
    let e = Eval::new();
    e.edit("flake.nix", "otherPython = w.pkgs.${pure.otherPythonAttr settings};", "");
    let err = e.fails(&e.check_args());
    assert!(err.contains("otherPython"), "{err}");
}

#[test]
#[should_panic(expected = "the Nix evaluation inputs are missing: no crane/lib/default.nix in")]
fn engine_without_the_inputs_the_tests_fail_saying_where_they_are() {
    let empty = tempfile::tempdir().unwrap();
    inputs_at(empty.path().to_path_buf());
}

#[test]
#[should_panic(expected = "run `.ci/setup.d/30-nix-eval.sh` as root")]
fn engine_without_nix_the_tests_fail_saying_how_to_install_it() {
    let empty = tempfile::tempdir().unwrap();
    nix_binary_from(empty.path(), empty.path().as_os_str());
}
