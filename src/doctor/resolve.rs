//! An emulation of the dynamic loader's library search, to tell which `DT_NEEDED` entries of
//! an extension module would not be found when Python imports it.
//!
//! Order, as in glibc's `_dl_map_object`: a name already loaded in the process (by soname),
//! `DT_RPATH` (only when there is no `DT_RUNPATH`: the object's own, then that of the object that
//! loaded it, and on up), `LD_LIBRARY_PATH`, `DT_RUNPATH`, then the host's ld cache and default
//! folders. The inherited RPATH matters: scipy's bundled libgfortran has none of its own and
//! finds its libquadmath through the RPATH of the extension module that loaded it. A Nix glibc reads neither `/etc/ld.so.cache` nor the
//! host folders, so under a Nix interpreter the last step is left out. A candidate of another
//! ELF class or machine is skipped, as the loader does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::elf::{self, ElfInfo};
use super::host_path;

/// Where the search looks besides the object's own RPATH/RUNPATH.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Search {
    /// The child's `LD_LIBRARY_PATH`.
    pub(crate) ld_library_path: Vec<PathBuf>,
    /// Host folders (ld.so.conf and the defaults); empty under a Nix interpreter.
    pub(crate) host_dirs: Vec<PathBuf>,
}

/// Why a folder is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The object's `DT_RPATH`.
    Rpath,
    /// The child's `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// The object's `DT_RUNPATH`.
    Runpath,
    /// The host's library folders.
    Host,
}

/// The folders searched for `info`'s dependencies, in order; `dir` is the object's folder
/// (`$ORIGIN`), `inherited` the expanded RPATH folders of the objects that loaded it.
pub(crate) fn search_dirs(
    dir: &Path,
    info: &ElfInfo,
    inherited: &[PathBuf],
    search: &Search,
) -> Vec<(PathBuf, Origin)> {
    let expand = |entries: &[String], origin: Origin| -> Vec<(PathBuf, Origin)> {
        entries.iter().filter_map(|e| expand_origin(e, dir)).map(|p| (p, origin)).collect()
    };
    let mut out = Vec::new();
    if info.runpath.is_empty() {
        out.extend(expand(&info.rpath, Origin::Rpath));
        out.extend(inherited.iter().map(|p| (p.clone(), Origin::Rpath)));
    }
    out.extend(search.ld_library_path.iter().map(|p| (p.clone(), Origin::LdLibraryPath)));
    out.extend(expand(&info.runpath, Origin::Runpath));
    out.extend(search.host_dirs.iter().map(|p| (p.clone(), Origin::Host)));
    out
}

/// `$ORIGIN` / `${ORIGIN}` replaced by the object's folder; `None` for entries the loader
/// would resolve against the current folder or with `$LIB`/`$PLATFORM` (not emulated).
pub(crate) fn expand_origin(entry: &str, dir: &Path) -> Option<PathBuf> {
    let origin = dir.to_string_lossy();
    let text = entry.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin);
    (!text.contains('$') && text.starts_with('/')).then(|| lexical(Path::new(&text)))
}

/// `a/b/../c` → `a/c` without touching the disk (for readable paths in messages).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Libraries every Python process has loaded before it imports an extension module.
pub(crate) fn preloaded(name: &str) -> bool {
    let stem = name.split(".so").next().unwrap_or(name);
    matches!(stem, "libc" | "libm" | "libpthread" | "libdl" | "librt" | "libutil" | "linux-vdso" | "linux-gate")
        || name.starts_with("ld-linux")
        || name.starts_with("ld64.so")
        || name.starts_with("libpython3")
}

/// The host's library folders: `/etc/ld.so.conf` (and its includes), then the defaults.
pub(crate) fn host_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_conf(root, &host_path(root, "/etc/ld.so.conf"), &mut dirs, 0);
    for d in ["/lib", "/usr/lib", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"] {
        dirs.push(host_path(root, d));
    }
    if cfg!(target_arch = "aarch64") {
        dirs.push(host_path(root, "/lib/aarch64-linux-gnu"));
        dirs.push(host_path(root, "/usr/lib/aarch64-linux-gnu"));
    }
    let mut seen = HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// Folders named in an ld.so.conf file; `include` lines may end in a `*` pattern.
fn read_ld_conf(root: &Path, file: &Path, out: &mut Vec<PathBuf>, depth: u8) {
    let Ok(text) = std::fs::read_to_string(file) else { return };
    if depth > 4 {
        return;
    }
    for line in text.lines().map(|l| l.split('#').next().unwrap_or("").trim()).filter(|l| !l.is_empty()) {
        if let Some(pattern) = line.strip_prefix("include").map(str::trim) {
            for f in glob_last(&host_path(root, pattern)) {
                read_ld_conf(root, &f, out, depth + 1);
            }
        } else if line.starts_with('/') {
            out.push(host_path(root, line));
        }
    }
}

/// Files matching a path whose last component may hold one `*`, sorted.
fn glob_last(pattern: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name().map(|n| n.to_string_lossy())) else {
        return Vec::new();
    };
    let Some((pre, post)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(pre) && n.ends_with(post)))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A dependency the loader would not find, or an object it would refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// `object` needs `needed`, found nowhere.
    Missing {
        /// The object with the `DT_NEEDED` entry.
        object: PathBuf,
        /// The soname.
        needed: String,
    },
    /// The object is built for another architecture than the interpreter.
    WrongArch {
        /// The object.
        object: PathBuf,
        /// Its architecture.
        machine: String,
    },
}

/// Resolves dependencies with caches shared by every object of a venv.
#[derive(Debug)]
pub(crate) struct Resolver {
    search: Search,
    /// The interpreter's ELF kind: candidates of another kind are skipped.
    target: ElfInfo,
    /// Sonames provided by libraries elsewhere in site-packages that a package import loads.
    provided: HashSet<String>,
    listings: HashMap<PathBuf, Rc<HashSet<OsString>>>,
    infos: HashMap<PathBuf, Option<Rc<ElfInfo>>>,
    lookups: HashMap<(String, Vec<PathBuf>), Option<PathBuf>>,
}

impl Resolver {
    /// A resolver for objects loaded into an interpreter of `target`'s kind.
    pub(crate) fn new(search: Search, target: ElfInfo, provided: HashSet<String>) -> Resolver {
        Resolver { search, target, provided, listings: HashMap::new(), infos: HashMap::new(), lookups: HashMap::new() }
    }

    /// Adds sonames that importing other packages loads.
    pub(crate) fn provide(&mut self, names: HashSet<String>) {
        self.provided.extend(names);
    }

    /// An object's ELF facts (read once).
    pub(crate) fn info(&mut self, path: &Path) -> Option<Rc<ElfInfo>> {
        if let Some(cached) = self.infos.get(path) {
            return cached.clone();
        }
        let info = elf::read(path).ok().flatten().map(Rc::new);
        self.infos.insert(path.to_path_buf(), info.clone());
        info
    }

    fn listing(&mut self, dir: &Path) -> Rc<HashSet<OsString>> {
        if let Some(l) = self.listings.get(dir) {
            return l.clone();
        }
        let names: HashSet<OsString> =
            std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name()).collect();
        let names = Rc::new(names);
        self.listings.insert(dir.to_path_buf(), names.clone());
        names
    }

    /// The first file called `name` in `dirs` that the loader would accept.
    pub(crate) fn find(&mut self, name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
        let key = (name.to_string(), dirs.to_vec());
        if let Some(hit) = self.lookups.get(&key) {
            return hit.clone();
        }
        let mut found = None;
        for dir in dirs {
            if !self.listing(dir).contains(std::ffi::OsStr::new(name)) {
                continue;
            }
            let candidate = dir.join(name);
            if self.info(&candidate).is_some_and(|i| i.compatible(&self.target)) {
                found = Some(candidate);
                break;
            }
        }
        self.lookups.insert(key, found.clone());
        found
    }

    /// Loads `root` as the loader would (breadth first, reusing what is loaded by soname)
    /// and returns what fails.
    pub(crate) fn check(&mut self, root: &Path) -> Vec<Problem> {
        let Some(info) = self.info(root) else { return Vec::new() };
        if !info.compatible(&self.target) {
            return vec![Problem::WrongArch { object: root.to_path_buf(), machine: elf::machine_name(info.machine) }];
        }
        let mut problems = Vec::new();
        let mut loaded: HashSet<String> = HashSet::new();
        let mut queue = VecDeque::from([(root.to_path_buf(), info, Rc::new(Vec::new()))]);
        let mut visited: HashSet<PathBuf> = HashSet::from([root.to_path_buf()]);
        while let Some((object, info, inherited)) = queue.pop_front() {
            loaded.extend(info.soname.clone());
            let dir = object.parent().unwrap_or(Path::new("/")).to_path_buf();
            let dirs: Vec<PathBuf> =
                search_dirs(&dir, &info, &inherited, &self.search).into_iter().map(|(d, _)| d).collect();
            // What this object's dependencies inherit: its RPATH, then its loaders'.
            let own: Vec<PathBuf> = info.rpath.iter().filter_map(|e| expand_origin(e, &dir)).collect();
            let passed = if own.is_empty() { inherited.clone() } else { Rc::new([own, inherited.to_vec()].concat()) };
            for needed in &info.needed {
                if loaded.contains(needed) || preloaded(needed) {
                    continue;
                }
                let hit = if needed.contains('/') {
                    Some(PathBuf::from(needed)).filter(|p| p.is_file())
                } else {
                    self.find(needed, &dirs)
                };
                match hit {
                    Some(path) => {
                        loaded.insert(needed.clone());
                        if visited.insert(path.clone()) {
                            if let Some(dep) = self.info(&path) {
                                queue.push_back((path, dep, passed.clone()));
                            }
                        }
                    }
                    // A library of another package (torch's libc10.so for a torch extension) is
                    // loaded by importing that package first, which such modules rely on.
                    None if self.provided.contains(needed) => {
                        loaded.insert(needed.clone());
                    }
                    None => problems.push(Problem::Missing { object: object.clone(), needed: needed.clone() }),
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(rpath: &[&str], runpath: &[&str]) -> ElfInfo {
        ElfInfo {
            rpath: rpath.iter().map(|s| s.to_string()).collect(),
            runpath: runpath.iter().map(|s| s.to_string()).collect(),
            ..ElfInfo::default()
        }
    }

    fn search() -> Search {
        Search { ld_library_path: vec!["/ld".into()], host_dirs: vec!["/usr/lib".into()] }
    }

    #[test]
    fn rpath_first_then_ld_library_path_then_runpath_then_host() {
        let dirs = search_dirs(Path::new("/sp/pkg"), &info(&["$ORIGIN/../pkg.libs"], &[]), &[], &search());
        assert_eq!(
            dirs,
            [
                ("/sp/pkg.libs".into(), Origin::Rpath),
                ("/ld".into(), Origin::LdLibraryPath),
                ("/usr/lib".into(), Origin::Host)
            ]
        );
        let inherited = [PathBuf::from("/loader/rpath")];
        let dirs = search_dirs(
            Path::new("/sp/pkg"),
            &info(&["/ignored"], &["${ORIGIN}/lib", "/opt/x"]),
            &inherited,
            &search(),
        );
        assert_eq!(
            dirs,
            [
                ("/ld".into(), Origin::LdLibraryPath),
                ("/sp/pkg/lib".into(), Origin::Runpath),
                ("/opt/x".into(), Origin::Runpath),
                ("/usr/lib".into(), Origin::Host)
            ],
            "RPATH, own and inherited, is ignored when RUNPATH is set"
        );
        let dirs = search_dirs(Path::new("/sp/pkg.libs"), &info(&["/own"], &[]), &inherited, &search());
        assert_eq!(dirs[..2], [("/own".into(), Origin::Rpath), ("/loader/rpath".into(), Origin::Rpath)]);
        let nix = Search { ld_library_path: vec![], host_dirs: vec![] };
        assert!(search_dirs(Path::new("/sp"), &info(&[], &[]), &[], &nix).is_empty());
    }

    #[test]
    fn origin_expansion_skips_what_is_not_emulated() {
        assert_eq!(expand_origin("$ORIGIN/../lib", Path::new("/a/b")), Some("/a/lib".into()));
        assert_eq!(expand_origin("$LIB/x", Path::new("/a")), None);
        assert_eq!(expand_origin("relative", Path::new("/a")), None);
    }

    #[test]
    fn interpreter_libraries_count_as_loaded() {
        for name in
            ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "ld-linux-x86-64.so.2", "libpython3.11.so.1.0"]
        {
            assert!(preloaded(name), "{name}");
        }
        assert!(!preloaded("libstdc++.so.6"));
        assert!(!preloaded("libcrypto.so.3"));
    }

    /// Any ELF of the test's own kind serves as a library file.
    fn lib(dir: &Path, name: &str) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(name);
        std::fs::copy(std::env::current_exe().unwrap(), &path).unwrap();
        path
    }

    fn target() -> ElfInfo {
        elf::read(&std::env::current_exe().unwrap()).unwrap().unwrap()
    }

    #[test]
    fn find_takes_the_first_acceptable_candidate_and_caches() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::write(a.join("libfoo.so.1"), "not an ELF file").unwrap();
        let good = lib(&b, "libfoo.so.1");
        let mut r = Resolver::new(Search::default(), target(), HashSet::new());
        assert_eq!(r.find("libfoo.so.1", &[a.clone(), b.clone()]), Some(good.clone()), "invalid candidate skipped");
        std::fs::remove_file(&good).unwrap();
        assert_eq!(r.find("libfoo.so.1", &[a.clone(), b.clone()]), Some(good), "answer cached");
        assert_eq!(r.find("libbar.so.1", &[a, b]), None);
    }

    #[test]
    fn incompatible_machine_is_skipped() {
        let d = tempfile::tempdir().unwrap();
        let path = lib(d.path(), "libfoo.so.1");
        let other = ElfInfo { machine: target().machine.wrapping_add(1), ..target() };
        let mut r = Resolver::new(Search::default(), other, HashSet::new());
        assert_eq!(r.find("libfoo.so.1", &[d.path().to_path_buf()]), None);
        let machine = elf::machine_name(target().machine);
        assert_eq!(r.check(&path), [Problem::WrongArch { object: path.clone(), machine }]);
    }

    #[test]
    fn host_dirs_follow_ld_so_conf_includes() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("etc/ld.so.conf.d")).unwrap();
        std::fs::write(r.join("etc/ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n/opt/first\n").unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/b.conf"), "# comment\n/opt/b\n").unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/a.conf"), "/opt/a\n").unwrap();
        std::fs::write(r.join("etc/ld.so.conf.d/skip.txt"), "/opt/no\n").unwrap();
        let dirs = host_dirs(r);
        assert_eq!(dirs[..3], [r.join("opt/a"), r.join("opt/b"), r.join("opt/first")]);
        assert!(dirs.contains(&r.join("usr/lib/x86_64-linux-gnu")));
        assert!(!dirs.contains(&r.join("opt/no")));
    }
}
