//! Per-service log files: opened for append by the service itself (so it outlives the
//! supervisor), rotated by copy-and-truncate at a size limit, read back for `labup logs`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Size at which a log is rotated to `<name>.log.1`.
pub(crate) const ROTATE_AT: u64 = 10 * 1024 * 1024;

/// Opens a log for appending (services write here directly).
pub(crate) fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Rotates `path` when it is larger than `limit`: copies it to `path.1` and truncates it.
/// Writers use O_APPEND, so they go on at the new end. Returns whether it rotated.
pub(crate) fn rotate_if_large(path: &Path, limit: u64) -> std::io::Result<bool> {
    let Ok(meta) = fs::metadata(path) else { return Ok(false) };
    if meta.len() <= limit {
        return Ok(false);
    }
    let old = path.with_extension("log.1");
    fs::copy(path, &old)?;
    OpenOptions::new().write(true).open(path)?.set_len(0)?;
    Ok(true)
}

/// Appends one line labup writes itself (start and exit notes).
pub(crate) fn note(path: &Path, line: &str) {
    if let Ok(mut f) = open_append(path) {
        let _ = writeln!(f, "--- labup: {line}");
    }
}

/// The last `n` lines of a file.
pub(crate) fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else { return Vec::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(256 * 1024);
    let _ = f.seek(SeekFrom::Start(start));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|l| l.to_string()).collect()
}

/// Reads what was appended since `offset`; a file that shrank (rotated) is read from the start.
pub(crate) fn read_from(path: &Path, offset: &mut u64) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    if len < *offset {
        *offset = 0;
    }
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    // Keep a partial last line for the next read.
    let complete = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    *offset += complete as u64;
    String::from_utf8_lossy(&buf[..complete]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_writer_appending() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("app.log");
        let mut writer = open_append(&p).unwrap();
        writer.write_all(&[b'x'; 100]).unwrap();
        assert!(!rotate_if_large(&p, 1000).unwrap());
        assert!(rotate_if_large(&p, 50).unwrap());
        writeln!(writer, "after").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "after\n");
        assert_eq!(fs::metadata(dir.path().join("app.log.1")).unwrap().len(), 100);
    }

    #[test]
    fn tail_and_incremental_reads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        fs::write(&p, "1\n2\n3\npart").unwrap();
        assert_eq!(tail(&p, 2), ["3", "part"]);
        let mut off = 0;
        assert_eq!(read_from(&p, &mut off), "1\n2\n3\n");
        assert_eq!(read_from(&p, &mut off), "");
        let mut f = open_append(&p).unwrap();
        f.write_all(b"ial\n4\n").unwrap();
        assert_eq!(read_from(&p, &mut off), "partial\n4\n");
        fs::write(&p, "new\n").unwrap();
        assert_eq!(read_from(&p, &mut off), "new\n", "a truncated file is read again from the start");
    }
}
