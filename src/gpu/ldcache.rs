//! The host's dynamic linker cache (`/etc/ld.so.cache`), read directly: labup may be a Nix
//! program whose glibc never reads it, and the host's `ldconfig` is only a fallback.

use std::path::{Path, PathBuf};

/// Magic of the cache format glibc writes since 2.32 (and beside the old one since 2.2).
const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const HEADER: usize = 48;
const ENTRY: usize = 24;

/// One library the cache knows: its name (`libcuda.so.1`), path and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The soname.
    pub(crate) name: String,
    /// The host path.
    pub(crate) path: PathBuf,
    /// glibc's flags: `0x0303` is a 64-bit x86-64 libc6 library.
    pub(crate) flags: i32,
}

/// glibc's architecture bits for this build's native libraries (`flags & 0xff00`).
pub(crate) fn native_arch() -> i32 {
    if cfg!(target_arch = "aarch64") {
        0x0a00
    } else {
        0x0300
    }
}

/// Parses the new-format cache (after an old-format prefix, if any).
pub(crate) fn parse(data: &[u8]) -> Option<Vec<Entry>> {
    let base = data.windows(MAGIC.len()).position(|w| w == MAGIC)?;
    let cache = &data[base..];
    let u32_at = |off: usize| -> Option<u32> { Some(u32::from_le_bytes(cache.get(off..off + 4)?.try_into().ok()?)) };
    let nlibs = u32_at(20)? as usize;
    let string = |off: u32| -> Option<String> {
        let rest = cache.get(off as usize..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let mut out = Vec::with_capacity(nlibs.min(100_000));
    for i in 0..nlibs {
        let at = HEADER + i * ENTRY;
        let flags = u32_at(at)? as i32;
        out.push(Entry { name: string(u32_at(at + 4)?)?, path: PathBuf::from(string(u32_at(at + 8)?)?), flags });
    }
    Some(out)
}

/// Parses `ldconfig -p` output: `\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1`.
pub(crate) fn parse_ldconfig_p(text: &str) -> Vec<Entry> {
    let arch = if cfg!(target_arch = "aarch64") { "AArch64" } else { "x86-64" };
    text.lines()
        .filter_map(|l| {
            let (left, path) = l.trim().split_once(" => ")?;
            let (name, tags) = left.split_once(" (")?;
            let flags = if tags.contains(arch) { native_arch() | 3 } else { 0 };
            Some(Entry { name: name.to_string(), path: PathBuf::from(path.trim()), flags })
        })
        .collect()
}

/// The folders holding `soname` for this architecture, in cache order.
pub(crate) fn dirs_of(entries: &[Entry], soname: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for e in entries.iter().filter(|e| e.name == soname && e.flags & 0xff00 == native_arch()) {
        if let Some(dir) = e.path.parent().filter(|d| !out.iter().any(|o| o == d)) {
            out.push(dir.to_path_buf());
        }
    }
    out
}

/// The host's cache entries: the file under `root`, else (only on the real root) the host's
/// own `ldconfig -p`, never one from Nix (which would describe the Nix store, not the host).
pub(crate) fn read(root: Option<&Path>, cache: &Path) -> Vec<Entry> {
    if let Some(entries) = std::fs::read(cache).ok().as_deref().and_then(parse) {
        return entries;
    }
    if root.is_some() {
        return Vec::new();
    }
    for ldconfig in ["/sbin/ldconfig", "/usr/sbin/ldconfig"] {
        if let Ok(out) = std::process::Command::new(ldconfig).arg("-p").output() {
            if out.status.success() {
                return parse_ldconfig_p(&String::from_utf8_lossy(&out.stdout));
            }
        }
    }
    Vec::new()
}

/// Writes a new-format cache (tests build fake hosts with it).
pub fn build(entries: &[(&str, &str)]) -> Vec<u8> {
    let strings_at = HEADER + entries.len() * ENTRY;
    let mut strings = Vec::new();
    let mut table = Vec::new();
    for (name, path) in entries {
        let key = strings_at + strings.len();
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        let value = strings_at + strings.len();
        strings.extend_from_slice(path.as_bytes());
        strings.push(0);
        table.extend_from_slice(&(native_arch() | 3).to_le_bytes());
        table.extend_from_slice(&(key as u32).to_le_bytes());
        table.extend_from_slice(&(value as u32).to_le_bytes());
        table.extend_from_slice(&0u32.to_le_bytes());
        table.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&table);
    out.extend_from_slice(&strings);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_cache_round_trips() {
        let data = build(&[
            ("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
            ("libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            ("libcuda.so.1", "/usr/local/cuda/compat/libcuda.so.1"),
        ]);
        let entries = parse(&data).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].name, "libc.so.6");
        assert_eq!(
            dirs_of(&entries, "libcuda.so.1"),
            [PathBuf::from("/usr/lib/x86_64-linux-gnu"), PathBuf::from("/usr/local/cuda/compat")]
        );
    }

    #[test]
    fn old_format_prefix_is_skipped() {
        let mut data = b"ld.so-1.7.0\0\0\0\0\0".to_vec();
        data.extend(build(&[("libz.so.1", "/lib/libz.so.1")]));
        assert_eq!(parse(&data).unwrap()[0].path, PathBuf::from("/lib/libz.so.1"));
        assert_eq!(parse(b"not a cache"), None);
        assert_eq!(parse(&build(&[("a", "b")])[..60]), None, "truncated");
    }

    #[test]
    fn the_real_hosts_cache_parses_and_agrees_with_ldconfig() {
        let Ok(data) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let entries = parse(&data).expect("this machine's /etc/ld.so.cache parses");
        assert!(entries.iter().any(|e| e.name == "libc.so.6"), "libc.so.6 is in the cache");
        if let Ok(out) = std::process::Command::new("/sbin/ldconfig").arg("-p").output() {
            let theirs = parse_ldconfig_p(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(theirs.len(), entries.len());
            for (a, b) in theirs.iter().zip(&entries) {
                assert_eq!((&a.name, &a.path), (&b.name, &b.path));
            }
        }
    }

    #[test]
    fn ldconfig_p_lines() {
        let text = "1 libs found in cache `/etc/ld.so.cache'\n\
                    \tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1\n\
                    \tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1\n";
        let entries = parse_ldconfig_p(text);
        assert_eq!(entries.len(), 2);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(dirs_of(&entries, "libcuda.so.1"), [PathBuf::from("/usr/lib/x86_64-linux-gnu")]);
        }
    }
}
