//! `labup doctor` on real venvs: extension modules built here with the C compiler (`cc`: gcc
//! on Debian and in the Nix Linux stdenv, clang in the darwin stdenv, which has no `gcc`),
//! linked against a library that is missing or bundled, installed as a distribution with a
//! RECORD. The linkage check reads ELF objects and emulates the Linux loader; on macOS
//! extension modules are Mach-O, so the tests that build them are skipped there (`ignore`d,
//! so nextest counts them as skipped).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Output, Project};

/// The venv's site-packages folder.
fn site_packages(p: &Project) -> PathBuf {
    let lib = p.path(".venv/lib");
    std::fs::read_dir(&lib).unwrap().flatten().map(|e| e.path().join("site-packages")).find(|p| p.is_dir()).unwrap()
}

fn cc(args: &[&str], dir: &Path) {
    let out = Command::new("cc").args(args).current_dir(dir).output().expect("the doctor tests need a C compiler (cc)");
    assert!(out.status.success(), "cc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A project with a free fixed port for its one service (so the ports check is deterministic)
/// and a synced venv with one fixture wheel.
fn synced_project() -> Project {
    let p = Project::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    p.file("labup.toml", &format!("[services.app]\ncommand = [\"python\", \"-c\", \"pass\"]\nport = {port}\n"));
    p.requirements("alpha\n");
    p.sync();
    p
}

/// Builds `lib<name>.so` into `dir`.
fn library(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.c")), format!("int {name}_answer(void) {{ return 42; }}\n")).unwrap();
    cc(&["-shared", "-fPIC", "-o", &format!("lib{name}.so"), &format!("{name}.c")], dir);
}

/// Installs package `pkg` with an extension `_native.so` linked against `lib<needs>.so` from
/// `libdir`, with extra linker flags, and a dist-info RECORD naming the files.
fn extension(p: &Project, pkg: &str, needs: &str, libdir: &Path, flags: &[&str]) -> PathBuf {
    let site = site_packages(p);
    let dir = site.join(pkg);
    std::fs::create_dir_all(&dir).unwrap();
    let src = p.path(&format!("build-{pkg}.c"));
    std::fs::write(
        &src,
        format!("extern int {needs}_answer(void);\nint native_answer(void) {{ return {needs}_answer(); }}\n"),
    )
    .unwrap();
    let out = dir.join("_native.so");
    let l = format!("-L{}", libdir.display());
    let lib = format!("-l{needs}");
    let mut args = vec!["-shared", "-fPIC", "-o", out.to_str().unwrap(), src.to_str().unwrap(), &l, &lib];
    args.extend_from_slice(flags);
    cc(&args, p.root());
    std::fs::write(dir.join("__init__.py"), "").unwrap();
    let info = site.join(format!("{pkg}-1.0.dist-info"));
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(info.join("METADATA"), format!("Metadata-Version: 2.1\nName: {pkg}\nVersion: 1.0\n")).unwrap();
    std::fs::write(
        info.join("RECORD"),
        format!(
            "{pkg}/__init__.py,,\n{pkg}/_native.so,,\n{pkg}-1.0.dist-info/METADATA,,\n{pkg}-1.0.dist-info/RECORD,,\n"
        ),
    )
    .unwrap();
    out
}

/// Whether the real loader can load the object (the emulation must agree with it).
fn loads(p: &Project, object: &Path) -> bool {
    let script = format!("import ctypes; ctypes.CDLL({:?})", object.display().to_string());
    Command::new(p.path(".venv/bin/python")).args(["-c", &script]).status().unwrap().success()
}

fn check<'a>(json: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    json["checks"].as_array().unwrap().iter().find(|c| c["id"] == id).unwrap_or_else(|| panic!("no check {id}: {json}"))
}

fn doctor_json(p: &Project) -> (Output, serde_json::Value) {
    let out = p.labup(&["doctor", "--json"]);
    let json = out.json();
    (out, json)
}

#[test]
fn doctor_passes_on_a_healthy_synced_project() {
    let mut p = synced_project();
    let root = tempfile::tempdir().unwrap();
    p.set("LABUP_FS_ROOT", root.path());
    let (out, json) = doctor_json(&p);
    let out = out.code(0);
    let ids: Vec<&str> = json["checks"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["interpreter", "venv", "linkage", "numpy", "gpu", "torch", "state", "ports", "wsl", "ollama"]);
    for c in json["checks"].as_array().unwrap() {
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["details", "fix", "id", "message", "status", "title"], "{c}");
        assert!(["ok", "warn", "skip"].contains(&c["status"].as_str().unwrap()), "{c}");
    }
    assert_eq!(check(&json, "venv")["status"], "ok", "{}", out.stdout);
    assert_eq!(check(&json, "linkage")["status"], "ok");
    assert_eq!(check(&json, "gpu")["message"], "no NVIDIA GPU");
    assert_eq!(check(&json, "ports")["status"], "ok");
    assert_eq!(json["summary"]["fail"], 0);
    let text = p.labup(&["doctor"]).code(0).stdout;
    assert!(text.contains("✓ virtual environment"), "{text}");
    assert!(text.contains("- NVIDIA driver"), "{text}");
}

#[test]
#[cfg_attr(target_os = "macos", ignore = "ELF linkage: macOS extension modules are Mach-O")]
fn doctor_names_the_package_and_the_missing_library() {
    let mut p = synced_project();
    let build = p.path("libs-outside");
    library(&build, "missing");
    let so = extension(&p, "fixture", "missing", &build, &[]);
    std::fs::remove_dir_all(&build).unwrap();
    assert!(!loads(&p, &so), "the loader cannot find libmissing.so either");
    let root = tempfile::tempdir().unwrap();
    p.set("LABUP_FS_ROOT", root.path());
    let (out, json) = doctor_json(&p);
    out.code(1);
    let linkage = check(&json, "linkage");
    assert_eq!(linkage["status"], "fail");
    assert_eq!(linkage["message"], "a library not found: libmissing.so (needed by fixture)");
    assert_eq!(linkage["details"][0], "fixture: fixture/_native.so needs libmissing.so (no known nixpkgs attribute)");
    assert!(linkage["fix"].as_str().unwrap().contains("libmissing.so"));
    assert_eq!(json["summary"]["fail"], 1);
    let text = p.labup(&["doctor"]).code(1).stdout;
    assert!(text.contains("✗ wheel linkage"), "{text}");
    assert!(text.contains("fixture: fixture/_native.so needs libmissing.so"), "{text}");
}

#[test]
#[cfg_attr(target_os = "macos", ignore = "ELF linkage: macOS extension modules are Mach-O")]
fn doctor_finds_bundled_libraries_through_rpath_and_runpath_origin() {
    let mut p = synced_project();
    let site = site_packages(&p);
    library(&site.join("withrpath.libs"), "bundled");
    let a = extension(
        &p,
        "withrpath",
        "bundled",
        &site.join("withrpath.libs"),
        &["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../withrpath.libs"],
    );
    library(&site.join("withrunpath.libs"), "vendored");
    let b = extension(
        &p,
        "withrunpath",
        "vendored",
        &site.join("withrunpath.libs"),
        &["-Wl,--enable-new-dtags,-rpath,$ORIGIN/../withrunpath.libs"],
    );
    // scipy's case: a bundled library without an RPATH of its own needs another bundled one,
    // which the loader finds through the RPATH of the module that loaded it.
    let libs = site.join("inherits.libs");
    library(&libs, "inner");
    std::fs::write(
        libs.join("outer.c"),
        "extern int inner_answer(void);\nint outer_answer(void) { return inner_answer(); }\n",
    )
    .unwrap();
    cc(&["-shared", "-fPIC", "-o", "libouter.so", "outer.c", "-L.", "-linner"], &libs);
    let c = extension(&p, "inherits", "outer", &libs, &["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../inherits.libs"]);
    assert!(loads(&p, &a) && loads(&p, &b) && loads(&p, &c), "the real loader finds them all");
    let root = tempfile::tempdir().unwrap();
    p.set("LABUP_FS_ROOT", root.path());
    let (out, json) = doctor_json(&p);
    let linkage = check(&json, "linkage");
    assert_eq!(linkage["status"], "ok", "{linkage}");
    assert_eq!(linkage["message"], "all 3 native modules find the libraries they need");
    out.code(0);
}

#[test]
#[cfg_attr(target_os = "macos", ignore = "ELF linkage: macOS extension modules are Mach-O")]
fn doctor_finds_a_library_on_the_child_library_path() {
    let mut p = synced_project();
    let libs = p.path("nix-store-like/lib");
    library(&libs, "fromnix");
    extension(&p, "needsnix", "fromnix", &libs, &[]);
    let root = tempfile::tempdir().unwrap();
    p.set("LABUP_FS_ROOT", root.path());
    let (_, json) = doctor_json(&p);
    assert_eq!(check(&json, "linkage")["status"], "fail");
    p.set("LABUP_LIBRARY_PATH", &libs);
    let (_, json) = doctor_json(&p);
    assert_eq!(check(&json, "linkage")["status"], "ok", "{}", check(&json, "linkage"));
}

#[test]
fn doctor_fails_on_a_foreign_port_and_a_gpu_without_libraries() {
    let p = Project::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    p.file("labup.toml", &format!("[services.app]\ncommand = [\"python\", \"server.py\"]\nport = {port}\n"));
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("sys/module/nvidia")).unwrap();
    std::fs::write(root.path().join("sys/module/nvidia/version"), "550.144.03\n").unwrap();
    let mut p = p;
    p.set("LABUP_FS_ROOT", root.path());
    let (out, json) = doctor_json(&p);
    out.code(1);
    let ports = check(&json, "ports");
    assert_eq!(ports["status"], "fail");
    assert!(
        ports["message"].as_str().unwrap().starts_with(&format!("port {port} of service app is taken by pid ")),
        "{ports}"
    );
    let gpu = check(&json, "gpu");
    assert_eq!(gpu["status"], "fail");
    assert!(gpu["message"].as_str().unwrap().contains("NVIDIA driver 550.144.03"), "{gpu}");
    assert_eq!(check(&json, "venv")["fix"], "labup sync");
    assert_eq!(check(&json, "linkage")["status"], "skip");
    drop(holder);
}

/// A stub `torch` package (the real one cannot use a GPU on these machines): a CUDA build that
/// warns, as torch does, that it found no NVIDIA driver.
const STUB_TORCH: &str = r#"import warnings
__version__ = "2.5.1+cu124"
class version:
    cuda = "12.4"
class cuda:
    @staticmethod
    def is_available():
        warnings.warn("CUDA initialization: Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU and installed a driver")
        return False
    @staticmethod
    def get_arch_list():
        return ["sm_80", "sm_90"]
"#;

#[test]
fn doctor_probes_a_stub_torch_that_finds_no_driver() {
    let mut p = synced_project();
    let site = site_packages(&p);
    std::fs::create_dir_all(site.join("torch")).unwrap();
    std::fs::write(site.join("torch/__init__.py"), STUB_TORCH).unwrap();
    std::fs::create_dir_all(site.join("torch-2.5.1.dist-info")).unwrap();
    std::fs::write(site.join("torch-2.5.1.dist-info/METADATA"), "Metadata-Version: 2.1\nName: torch\nVersion: 2.5.1\n")
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    for (file, text) in [
        ("sys/module/nvidia/version", "550.144.03\n"),
        ("run/opengl-driver/lib/libcuda.so.1", ""),
        ("run/opengl-driver/lib/libcuda.so.550.144.03", ""),
    ] {
        let path = root.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    p.set("LABUP_FS_ROOT", root.path());
    let (out, json) = doctor_json(&p);
    out.code(1);
    assert_eq!(check(&json, "gpu")["status"], "warn", "{}", check(&json, "gpu"));
    let torch = check(&json, "torch");
    assert_eq!(torch["status"], "fail");
    assert_eq!(
        torch["message"],
        "torch 2.5.1+cu124 (CUDA 12.4) cannot find the NVIDIA driver: labup has not linked it yet"
    );
    let link = p.path(".labup/driver/550.144.03");
    std::fs::create_dir_all(&link).unwrap();
    std::fs::write(link.join("libcuda.so.1"), "").unwrap();
    let (_, json) = doctor_json(&p);
    assert_eq!(check(&json, "gpu")["status"], "ok", "{}", check(&json, "gpu"));
    assert!(check(&json, "torch")["message"].as_str().unwrap().contains("driver link folder"));
}
