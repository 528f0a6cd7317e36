//! The few ELF facts the loader uses to find a shared object's dependencies.
//!
//! Only the file header, the section headers, the dynamic section and its string table are
//! read (through `object`'s `ReadCache`, which reads the ranges asked for and nothing else), so
//! a 1 GB `libtorch_cuda.so` costs a few small reads.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use object::elf;
use object::read::elf::FileHeader;
use object::read::ReadCache;
use object::{Endianness, ReadRef};

/// What the dynamic loader needs from an ELF object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    /// 64-bit (`ELFCLASS64`).
    pub(crate) class64: bool,
    /// `e_machine`.
    pub(crate) machine: u16,
    /// `DT_SONAME`.
    pub(crate) soname: Option<String>,
    /// `DT_NEEDED`, in order.
    pub(crate) needed: Vec<String>,
    /// `DT_RPATH` entries (unexpanded).
    pub(crate) rpath: Vec<String>,
    /// `DT_RUNPATH` entries (unexpanded).
    pub(crate) runpath: Vec<String>,
}

impl ElfInfo {
    /// Whether the loader would accept this object in a process of `other`'s kind (an unknown
    /// kind, machine 0, accepts anything).
    pub(crate) fn compatible(&self, other: &ElfInfo) -> bool {
        other.machine == 0 || (self.class64 == other.class64 && self.machine == other.machine)
    }
}

/// The architecture's usual name (`x86_64`, `aarch64`), or `machine N`.
pub(crate) fn machine_name(machine: u16) -> String {
    let names = [
        (elf::EM_X86_64, "x86_64"),
        (elf::EM_386, "i386"),
        (elf::EM_AARCH64, "aarch64"),
        (elf::EM_ARM, "arm"),
        (elf::EM_PPC64, "ppc64"),
        (elf::EM_S390, "s390x"),
        (elf::EM_RISCV, "riscv"),
    ];
    match names.iter().find(|(m, _)| m.0 == machine) {
        Some((_, name)) => (*name).to_string(),
        None => format!("machine {machine}"),
    }
}

/// Reads an ELF object's dynamic facts; `Ok(None)` when the file is not ELF (or unreadable as one).
pub(crate) fn read(path: &Path) -> std::io::Result<Option<ElfInfo>> {
    let mut file = File::open(path)?;
    let mut ident = [0u8; 5];
    if file.read_exact(&mut ident).is_err() || ident[..4] != elf::ELFMAG {
        return Ok(None);
    }
    let cache = ReadCache::new(file);
    let info = match ident[4] {
        c if c == elf::ELFCLASS64.0 => parse::<elf::FileHeader64<Endianness>, _>(&cache),
        c if c == elf::ELFCLASS32.0 => parse::<elf::FileHeader32<Endianness>, _>(&cache),
        _ => None,
    };
    Ok(info)
}

fn parse<'data, H, R>(data: R) -> Option<ElfInfo>
where
    H: FileHeader<Endian = Endianness>,
    R: ReadRef<'data>,
{
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let mut info = ElfInfo { class64: header.is_class_64(), machine: header.e_machine(endian).0, ..ElfInfo::default() };
    let sections = header.sections(endian, data).ok()?;
    // Without a dynamic section (a static object) the table is empty: it needs nothing.
    let table = sections.dynamic_table(endian, data).ok()?;
    for d in table.iter() {
        let text = || table.string(d).ok().map(|s| String::from_utf8_lossy(s).into_owned());
        match d.tag {
            elf::DT_NEEDED => info.needed.extend(text()),
            elf::DT_SONAME => info.soname = text(),
            elf::DT_RPATH => info.rpath.extend(text().iter().flat_map(|t| split_path(t))),
            elf::DT_RUNPATH => info.runpath.extend(text().iter().flat_map(|t| split_path(t))),
            _ => {}
        }
    }
    Some(info)
}

fn split_path(text: &str) -> Vec<String> {
    text.split(':').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary_and_rejects_non_elf() {
        let exe = std::env::current_exe().unwrap();
        let info = read(&exe).unwrap().unwrap();
        assert_eq!(info.class64, cfg!(target_pointer_width = "64"));
        assert_eq!(machine_name(info.machine), std::env::consts::ARCH);
        assert!(info.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", info.needed);
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("x.so");
        std::fs::write(&text, "INPUT(-lfoo)\n").unwrap();
        assert_eq!(read(&text).unwrap(), None);
        std::fs::write(&text, b"\x7fELF").unwrap();
        assert_eq!(read(&text).unwrap(), None, "truncated");
    }
}
