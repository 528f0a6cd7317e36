//! The wheel linkage check: every native module in site-packages finds the libraries it needs
//! with the environment labup gives children.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::elf;
use super::nixpkgs::{self, Provider};
use super::resolve::{self, Problem, Resolver, Search};
use super::{Context, Verdict};
use crate::python::venv;

/// At most this many detail lines; the rest are counted.
const MAX_DETAILS: usize = 20;

/// The check.
pub(crate) fn check(ctx: &Context) -> Verdict {
    let venv_dir = &ctx.ws.config.python.venv;
    let venv::State::Venv(cfg) = venv::inspect(venv_dir) else {
        return Verdict::skip("no venv to check yet");
    };
    let Some(site) = venv::site_packages(venv_dir) else {
        return Verdict::skip("the venv has no site-packages folder");
    };
    let python = fs::canonicalize(crate::python::interpreter::venv_python(venv_dir)).ok();
    // Through a profile link (`~/.nix-profile/bin`) the home is outside the store; the file is not.
    let nix = [Some(cfg.home.clone()), fs::canonicalize(&cfg.home).ok(), python.clone()]
        .iter()
        .flatten()
        .any(|p| p.starts_with("/nix/store"));
    let search = search(nix, ctx.child_var("LD_LIBRARY_PATH").as_deref(), &ctx.fs_root);
    let target = python
        .and_then(|p| elf::read(&p).ok().flatten())
        .or_else(|| std::env::current_exe().ok().and_then(|p| elf::read(&p).ok().flatten()))
        .unwrap_or_default();
    let files = native_files(&site);
    let roots: Vec<&PathBuf> = files.iter().filter(|f| !vendored(&site, f)).collect();
    let mut resolver = Resolver::new(search, target.clone(), HashSet::new());
    let mut provided = HashSet::new();
    let roots: Vec<&PathBuf> = roots.into_iter().filter(|f| resolver.info(f).is_some()).collect();
    for root in &roots {
        provided.extend(root.file_name().map(|n| n.to_string_lossy().into_owned()));
        provided.extend(resolver.info(root).and_then(|i| i.soname.clone()));
    }
    resolver.provide(provided);
    let mut problems = BTreeSet::new();
    for root in &roots {
        problems.extend(resolver.check(root).into_iter().map(|p| key(&site, &p)));
    }
    let scanned = roots.len();
    let owners = if problems.is_empty() { BTreeMap::new() } else { owners(&site) };
    let found: Vec<Found> = problems
        .into_iter()
        .map(|(object, needed)| {
            let package = owners.get(&object).cloned().unwrap_or_else(|| top_folder(&object));
            Found { package, object, needed }
        })
        .collect();
    verdict(scanned, &found, ctx.gpu.present(), nix, &elf::machine_name(target.machine))
}

/// Where to look besides RPATH/RUNPATH: the child's `LD_LIBRARY_PATH`, and the host's folders
/// unless the interpreter is a Nix one (its glibc never reads them).
pub(crate) fn search(nix: bool, ld_library_path: Option<&str>, fs_root: &Path) -> Search {
    Search {
        ld_library_path: ld_library_path
            .map(|v| v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect())
            .unwrap_or_default(),
        host_dirs: if nix { Vec::new() } else { resolve::host_dirs(fs_root) },
    }
}

/// One problem, with paths relative to site-packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The distribution that installed the object.
    pub(crate) package: String,
    /// The object, relative to site-packages.
    pub(crate) object: String,
    /// The missing soname, or `arch:<machine>` for an object of another architecture.
    pub(crate) needed: String,
}

fn key(site: &Path, p: &Problem) -> (String, String) {
    let rel = |o: &Path| o.strip_prefix(site).unwrap_or(o).display().to_string();
    match p {
        Problem::Missing { object, needed } => (rel(object), needed.clone()),
        Problem::WrongArch { object, machine } => (rel(object), format!("arch:{machine}")),
    }
}

/// The verdict from what was found (pure).
pub(crate) fn verdict(scanned: usize, found: &[Found], gpu: bool, nix: bool, arch: &str) -> Verdict {
    if found.is_empty() {
        return Verdict::ok(format!("all {} find the libraries they need", crate::ui::count(scanned, "native module")));
    }
    let detail = |f: &Found| match f.needed.strip_prefix("arch:") {
        Some(m) => format!("{}: {} is built for {m}, the interpreter is {arch}", f.package, f.object),
        None => format!("{}: {} needs {} ({})", f.package, f.object, f.needed, nixpkgs::describe(&f.needed)),
    };
    let mut details: Vec<String> = found.iter().take(MAX_DETAILS).map(detail).collect();
    if found.len() > MAX_DETAILS {
        details.push(format!("… and {} more", found.len() - MAX_DETAILS));
    }
    let driver_only = found.iter().all(|f| nixpkgs::provider(&f.needed) == Some(Provider::HostDriver));
    let libs: BTreeSet<&str> = found.iter().map(|f| f.needed.as_str()).filter(|n| !n.starts_with("arch:")).collect();
    let packages: BTreeSet<&str> = found.iter().map(|f| f.package.as_str()).collect();
    let libs_text = libs.iter().copied().collect::<Vec<_>>().join(", ");
    if driver_only {
        let message =
            format!("{} need the NVIDIA driver ({libs_text})", packages.iter().copied().collect::<Vec<_>>().join(", "));
        return if gpu {
            Verdict::warn(format!("{message}, which the venv's programs cannot find"))
                .fix("run `labup gpu` to link the driver libraries, then start Python through labup (`labup run`)")
                .details(details)
        } else {
            Verdict::ok(format!("{message}: fine on a machine without an NVIDIA GPU")).details(details)
        };
    }
    let message = if libs.is_empty() {
        format!("{} built for another architecture than {arch}", crate::ui::count(found.len(), "native module"))
    } else {
        format!(
            "{} not found: {libs_text} (needed by {})",
            if libs.len() == 1 { "a library" } else { "libraries" },
            packages.iter().copied().collect::<Vec<_>>().join(", ")
        )
    };
    Verdict::fail(message).fix(fix(&libs, nix)).details(details)
}

fn fix(libs: &BTreeSet<&str>, nix: bool) -> String {
    let attrs: BTreeSet<&str> = libs
        .iter()
        .filter_map(|l| match nixpkgs::provider(l) {
            Some(Provider::Nixpkgs(a)) => Some(a),
            _ => None,
        })
        .collect();
    let unknown: Vec<&str> = libs.iter().copied().filter(|l| nixpkgs::provider(l).is_none()).collect();
    let list = |v: &BTreeSet<&str>| v.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !attrs.is_empty() {
        parts.push(if nix {
            format!(
                "add the `lib` folders of nixpkgs {} to `LABUP_LIBRARY_PATH` (the wheel libraries labup's Nix package passes)",
                list(&attrs)
            )
        } else {
            format!("install the system packages with these libraries (nixpkgs: {})", list(&attrs))
        });
    }
    if !unknown.is_empty() {
        parts.push(format!("install what provides {} or reinstall the package (`labup sync`)", unknown.join(", ")));
    }
    if libs.is_empty() {
        parts.push("reinstall the packages for this machine: `labup sync`".into());
    }
    parts.join("; ")
}

/// Shared objects (`*.so`, `*.so.N`) under site-packages, without following folder links.
pub(crate) fn native_files(site: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![site.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if name != "__pycache__" {
                    stack.push(entry.path());
                }
            } else if kind.is_file() && (name.ends_with(".so") || name.contains(".so.")) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Whether the file sits in an auditwheel `<pkg>.libs` folder: private libraries only ever
/// loaded as dependencies of the package's own modules, so not checked on their own.
fn vendored(site: &Path, file: &Path) -> bool {
    let rel = file.strip_prefix(site).unwrap_or(file);
    rel.parent().is_some_and(|p| p.components().any(|c| c.as_os_str().to_string_lossy().ends_with(".libs")))
}

/// The first folder of a relative path (the import package), for files no RECORD lists.
fn top_folder(rel: &str) -> String {
    rel.split('/').next().unwrap_or(rel).to_string()
}

/// Relative path → distribution name, from every `*.dist-info/RECORD`.
pub(crate) fn owners(site: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(site).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".dist-info") else { continue };
        let dist = stem.split('-').next().unwrap_or(stem).to_string();
        let Ok(record) = fs::read_to_string(entry.path().join("RECORD")) else { continue };
        for line in record.lines() {
            if let Some(path) = record_path(line) {
                out.insert(path, dist.clone());
            }
        }
    }
    out
}

/// The path field of a RECORD line (CSV; quoted when it holds a comma).
fn record_path(line: &str) -> Option<String> {
    let path = match line.strip_prefix('"') {
        Some(rest) => rest.split_once('"')?.0.to_string(),
        None => line.split(',').next()?.to_string(),
    };
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(package: &str, object: &str, needed: &str) -> Found {
        Found { package: package.into(), object: object.into(), needed: needed.into() }
    }

    #[test]
    fn all_found_is_ok() {
        let v = verdict(12, &[], false, true, "x86_64");
        assert_eq!(v.status, super::super::Status::Ok);
        assert_eq!(v.message, "all 12 native modules find the libraries they need");
    }

    #[test]
    fn missing_library_fails_with_package_and_attribute() {
        let v = verdict(3, &[found("opencv-python", "cv2/cv2.abi3.so", "libGL.so.1")], false, true, "x86_64");
        assert_eq!(v.status, super::super::Status::Fail);
        assert_eq!(v.message, "a library not found: libGL.so.1 (needed by opencv-python)");
        assert_eq!(v.details, ["opencv-python: cv2/cv2.abi3.so needs libGL.so.1 (nixpkgs `libGL`)"]);
        assert!(v.fix.as_deref().unwrap().contains("nixpkgs `libGL` to `LABUP_LIBRARY_PATH`"), "{:?}", v.fix);
        let v = verdict(3, &[found("fixture", "f/_x.so", "libmissing.so")], false, false, "x86_64");
        assert!(v.fix.as_deref().unwrap().contains("libmissing.so"), "{:?}", v.fix);
    }

    #[test]
    fn driver_libraries_only_matter_with_a_gpu() {
        let f = [found("nvidia-cufile", "nvidia/cufile/lib/libcufile.so.0", "libcuda.so.1")];
        assert_eq!(verdict(1, &f, false, true, "x86_64").status, super::super::Status::Ok);
        let v = verdict(1, &f, true, true, "x86_64");
        assert_eq!(v.status, super::super::Status::Warn);
        assert!(v.fix.unwrap().contains("labup gpu"));
    }

    #[test]
    fn other_architecture_fails() {
        let v = verdict(1, &[found("p", "p/_x.so", "arch:aarch64")], false, false, "x86_64");
        assert_eq!(v.status, super::super::Status::Fail);
        assert_eq!(v.details, ["p: p/_x.so is built for aarch64, the interpreter is x86_64"]);
    }

    #[test]
    fn details_are_capped() {
        let many: Vec<Found> = (0..25).map(|i| found("p", &format!("p/{i}.so"), "libz.so.1")).collect();
        let v = verdict(25, &many, false, true, "x86_64");
        assert_eq!(v.details.len(), MAX_DETAILS + 1);
        assert_eq!(v.details.last().unwrap(), "… and 5 more");
    }

    #[test]
    fn nix_interpreters_never_search_host_folders() {
        let root = Path::new("/");
        let s = search(true, Some("/nix/store/a-gcc-lib/lib::/nix/store/b-zlib/lib"), root);
        assert_eq!(s.ld_library_path, [PathBuf::from("/nix/store/a-gcc-lib/lib"), "/nix/store/b-zlib/lib".into()]);
        assert!(s.host_dirs.is_empty());
        let s = search(false, None, root);
        assert!(s.ld_library_path.is_empty());
        assert!(s.host_dirs.contains(&PathBuf::from("/usr/lib")));
    }

    #[test]
    fn walks_shared_objects_and_owners() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path();
        for f in
            ["a/_x.cpython-311-x86_64-linux-gnu.so", "a.libs/libq-12ab.so.1.2", "a/__init__.py", "a/__pycache__/y.so"]
        {
            fs::create_dir_all(s.join(f).parent().unwrap()).unwrap();
            fs::write(s.join(f), "").unwrap();
        }
        let files = native_files(s);
        assert_eq!(files, [s.join("a/_x.cpython-311-x86_64-linux-gnu.so"), s.join("a.libs/libq-12ab.so.1.2")]);
        assert!(!vendored(s, &files[0]));
        assert!(vendored(s, &files[1]));
        fs::create_dir_all(s.join("A_pkg-1.0.dist-info")).unwrap();
        fs::write(
            s.join("A_pkg-1.0.dist-info/RECORD"),
            "a/_x.cpython-311-x86_64-linux-gnu.so,sha256=x,1\n\"a/b,c.so\",,\n",
        )
        .unwrap();
        let o = owners(s);
        assert_eq!(o["a/_x.cpython-311-x86_64-linux-gnu.so"], "A_pkg");
        assert_eq!(o["a/b,c.so"], "A_pkg");
        assert_eq!(top_folder("a.libs/libq.so"), "a.libs");
    }
}
