//! Coverage feedback from a server built with `pipe-harness cc` (its runtime is
//! `harness/runtime/ph_cov.c`): a file the harness creates and names in [`VAR`], which the
//! server maps shared and writes its edge hit counts and comparison operands into. The harness
//! clears it before a case and reads it after (plain file reads: the page cache is the shared
//! memory), keeps the cases that reach new edges, and turns the comparison operands into
//! replacement tokens (input-to-state: a magic value compared byte by byte, a checksum, an
//! opcode's `switch`).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A replacement token: bytes an input may carry, and what a comparison wanted there.
pub type Token = (Vec<u8>, Vec<u8>);
/// A coverage corpus entry: an input (a message), and the tokens of the comparisons it ran into.
pub type Entry = (Vec<u8>, Vec<Token>);

/// The runtime's C source, which `pipe-harness cc` compiles into every build.
pub const RUNTIME_C: &str = include_str!("../../../runtime/ph_cov.c");

/// The environment variable that names the coverage file to the server.
pub const VAR: &str = "PIPE_HARNESS_COVERAGE";
/// Edges in the map (as the runtime's `PH_MAP_SIZE`).
pub const MAP_SIZE: usize = 1 << 16;
/// Comparisons logged per case at most (the runtime's `PH_CMP_MAX`).
pub const CMP_MAX: usize = 4096;
const HEADER: usize = 8;
/// Library-call comparisons logged per case at most (the runtime's `PH_RTN_MAX`).
pub const RTN_MAX: usize = 512;
/// Bytes of each operand a library-call comparison logs at most (`PH_RTN_LEN`).
pub const RTN_LEN: usize = 32;
const RTN_ENTRY: usize = 8 + 2 * RTN_LEN;
/// Where the library-call log starts: its count, a reserved word, then the entries.
const RTN_AT: usize = MAP_SIZE + HEADER + CMP_MAX * 24;
/// The file's size: the map, a count and a reserved word, the comparison log, then the log of
/// comparisons made by library calls (memcmp, strcmp...: a count, a reserved word, entries of
/// two lengths, padding and two 32-byte operands).
pub const FILE_SIZE: usize = RTN_AT + 8 + RTN_MAX * RTN_ENTRY;

/// One job's coverage file, removed (with its directory) when this goes.
///
/// It is made fresh, with a random name and exclusive creation, in a directory of its own
/// that only the harness can write (`tempfile`), and the harness reads and clears it only
/// through the descriptor it created: nothing another user could have planted is opened.
/// On Unix the file is 0600, owned by the server's identity when the plan runs the server as
/// another one (its directory then 0711: the server may reach the file by its name, nobody
/// may list or add to the directory), so no third identity can open it, let alone write the
/// edges and comparisons the campaign takes as the truth about coverage.
#[derive(Debug)]
pub struct CoverageFile {
    path: PathBuf,
    file: std::fs::File,
    // Dropped after `file`'s path is removed: the directory goes last.
    _dir: tempfile::TempDir,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Unsupported(format!("{what} {}: {e}", path.display()))
}

impl CoverageFile {
    /// Creates a zeroed coverage file for a server that runs as `server` (`None`: as the
    /// harness itself), in a new private directory under the system's temporary directory.
    pub fn create(server: Option<&crate::identity::Identity>) -> Result<CoverageFile> {
        let tmp = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix("pipe-harness-coverage-")
            .tempdir_in(&tmp)
            .map_err(|e| io("creating a directory in", &tmp, e))?;
        let named = tempfile::Builder::new()
            .prefix("map-")
            .tempfile_in(dir.path())
            .map_err(|e| io("creating a file in", dir.path(), e))?;
        let (file, path) = named.keep().map_err(|e| io("keeping", dir.path(), e.error))?;
        let made = CoverageFile { path, file, _dir: dir };
        made.file.set_len(FILE_SIZE as u64).map_err(|e| io("sizing", &made.path, e))?;
        #[cfg(unix)]
        if let Some(who) = server {
            use std::os::unix::fs::PermissionsExt;
            let ids = crate::unix::creds::Ids::resolve(who)?;
            // The descriptor, not the path: the file the harness made is the one given.
            std::os::unix::fs::fchown(&made.file, Some(ids.uid), Some(ids.gid))
                .map_err(|e| io("giving to the server", &made.path, e))?;
            made.file
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| io("setting the mode of", &made.path, e))?;
            std::fs::set_permissions(made._dir.path(), std::fs::Permissions::from_mode(0o711))
                .map_err(|e| io("opening to the server", made._dir.path(), e))?;
        }
        #[cfg(not(unix))]
        let _ = server;
        Ok(made)
    }

    /// Its path (the value of [`VAR`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Zeroes the map and the comparison counts, before a case.
    pub fn clear(&self) -> Result<()> {
        write_at(&self.file, &vec![0u8; MAP_SIZE + HEADER], 0).map_err(|e| io("clearing", &self.path, e))?;
        write_at(&self.file, &[0u8; 4], RTN_AT as u64).map_err(|e| io("clearing", &self.path, e))
    }

    /// What the server recorded since the last [`clear`](CoverageFile::clear).
    pub fn read(&self) -> Result<Trace> {
        let mut buf = vec![0u8; FILE_SIZE];
        read_at(&self.file, &mut buf, 0).map_err(|e| io("reading", &self.path, e))?;
        let count = (u32::from_le_bytes([buf[MAP_SIZE], buf[MAP_SIZE + 1], buf[MAP_SIZE + 2], buf[MAP_SIZE + 3]])
            as usize)
            .min(CMP_MAX);
        let word = |i: usize| {
            let at = MAP_SIZE + HEADER + i * 8;
            u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
        };
        let cmps = (0..count).map(|i| (word(i * 3), word(i * 3 + 1), word(i * 3 + 2) as u8)).collect();
        let rtn_count =
            (u32::from_le_bytes(buf[RTN_AT..RTN_AT + 4].try_into().expect("4 bytes")) as usize).min(RTN_MAX);
        let library = (0..rtn_count)
            .map(|i| {
                let e = &buf[RTN_AT + 8 + i * RTN_ENTRY..][..RTN_ENTRY];
                let (la, lb) = (usize::from(e[0]).min(RTN_LEN), usize::from(e[1]).min(RTN_LEN));
                (e[8..8 + la].to_vec(), e[8 + RTN_LEN..8 + RTN_LEN + lb].to_vec())
            })
            .collect();
        buf.truncate(MAP_SIZE);
        Ok(Trace { map: buf, cmps, library })
    }
}

impl Drop for CoverageFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(unix)]
fn write_at(f: &std::fs::File, b: &[u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, b, at)
}
#[cfg(unix)]
fn read_at(f: &std::fs::File, b: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, b, at)
}
#[cfg(windows)]
fn write_at(f: &std::fs::File, b: &[u8], at: u64) -> std::io::Result<()> {
    let n = std::os::windows::fs::FileExt::seek_write(f, b, at)?;
    if n == b.len() {
        Ok(())
    } else {
        Err(std::io::Error::other("short write"))
    }
}
#[cfg(windows)]
fn read_at(f: &std::fs::File, b: &mut [u8], at: u64) -> std::io::Result<()> {
    let n = std::os::windows::fs::FileExt::seek_read(f, b, at)?;
    if n == b.len() {
        Ok(())
    } else {
        Err(std::io::Error::other("short read"))
    }
}

/// One case's record.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Hit counts per edge.
    pub map: Vec<u8>,
    /// Comparisons whose operands differed: (a, b, size in bytes).
    pub cmps: Vec<(u64, u64, u8)>,
    /// Comparisons made by library calls (memcmp, bcmp, strcmp, strncmp, strcasecmp,
    /// strncasecmp, memmem) whose operands differed: up to 32 bytes of each, as in memory.
    pub library: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Trace {
    /// Every replacement token of the case: [`tokens`] of its comparisons, then
    /// [`library_tokens`](Trace::library_tokens).
    pub fn tokens(&self) -> Vec<Token> {
        let mut out = tokens(&self.cmps);
        for t in self.library_tokens() {
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Each library comparison's operands both ways, bytes as they are in memory (a string, a
    /// magic), in the order the calls were made.
    pub fn library_tokens(&self) -> Vec<Token> {
        let mut out: Vec<Token> = Vec::new();
        for (a, b) in &self.library {
            for t in [(a.clone(), b.clone()), (b.clone(), a.clone())] {
                if !t.0.is_empty() && !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }
}

/// The hit-count class of a count, AFL's buckets (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+).
fn class(count: u8) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        _ => 128,
    }
}

/// Every (edge, hit-count class) seen so far.
#[derive(Clone, Debug)]
pub struct Seen {
    bits: Vec<u8>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { bits: vec![0; MAP_SIZE] }
    }
}

impl Seen {
    /// Adds a case's map; how many (edge, class) pairs were new.
    pub fn merge(&mut self, map: &[u8]) -> usize {
        let mut new = 0;
        for (seen, &count) in self.bits.iter_mut().zip(map) {
            let c = class(count);
            if c != 0 && *seen & c == 0 {
                *seen |= c;
                new += 1;
            }
        }
        new
    }

    /// Edges hit at least once.
    pub fn edges(&self) -> u64 {
        self.bits.iter().filter(|b| **b != 0).count() as u64
    }
}

/// Replacement tokens from comparisons: the bytes of each operand as the input would carry
/// them (little- and big-endian), paired with the other operand's.
pub fn tokens(cmps: &[(u64, u64, u8)]) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    for &(a, b, size) in cmps {
        let n = usize::from(size.clamp(1, 8));
        for (x, y) in [(a, b), (b, a)] {
            let le = (x.to_le_bytes()[..n].to_vec(), y.to_le_bytes()[..n].to_vec());
            let be = (x.to_be_bytes()[8 - n..].to_vec(), y.to_be_bytes()[8 - n..].to_vec());
            for t in [le, be] {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
    }
    out
}

/// Where `from` occurs in `m`, first to last (nothing for an empty `from` or one longer than
/// `m`): the places an input-to-state candidate puts a comparison's other operand.
pub(crate) fn occurrences<'a>(m: &'a [u8], from: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let last = if from.is_empty() || from.len() > m.len() { 0 } else { m.len() - from.len() + 1 };
    (0..last).filter(move |&i| m[i..i + from.len()] == *from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_edges_and_new_hit_count_classes_are_new_once() {
        let mut seen = Seen::default();
        let mut map = vec![0u8; MAP_SIZE];
        map[7] = 1;
        assert_eq!(seen.merge(&map), 1);
        assert_eq!(seen.merge(&map), 0, "the same again is nothing new");
        map[7] = 5;
        assert_eq!(seen.merge(&map), 1, "more iterations of a loop: a new class");
        assert_eq!(seen.edges(), 1);
    }

    #[test]
    fn comparison_operands_become_tokens_both_ways_and_both_byte_orders() {
        let t = tokens(&[(0x4d, 0x41, 1), (0x0102, 0x0304, 2)]);
        assert!(t.contains(&(vec![0x4d], vec![0x41])) && t.contains(&(vec![0x41], vec![0x4d])));
        assert!(t.contains(&(vec![0x02, 0x01], vec![0x04, 0x03])) && t.contains(&(vec![0x01, 0x02], vec![0x03, 0x04])));
    }

    #[test]
    fn a_coverage_file_reads_back_what_was_written_and_clears() {
        let f = CoverageFile::create(None).expect("file");
        let mut raw = vec![0u8; FILE_SIZE];
        raw[3] = 9;
        raw[MAP_SIZE] = 1; // one comparison
        raw[MAP_SIZE + HEADER] = 0x4d;
        raw[MAP_SIZE + HEADER + 8] = 0x41;
        raw[MAP_SIZE + HEADER + 16] = 1;
        raw[RTN_AT] = 1; // one library comparison: "HELLX" against "HELLO-V2"
        raw[RTN_AT + 8] = 5;
        raw[RTN_AT + 9] = 8;
        raw[RTN_AT + 16..RTN_AT + 21].copy_from_slice(b"HELLX");
        raw[RTN_AT + 16 + RTN_LEN..RTN_AT + 24 + RTN_LEN].copy_from_slice(b"HELLO-V2");
        write_at(&f.file, &raw, 0).expect("write");
        let t = f.read().expect("read");
        assert_eq!((t.map[3], t.cmps.clone()), (9, vec![(0x4d, 0x41, 1)]));
        assert_eq!(t.library, vec![(b"HELLX".to_vec(), b"HELLO-V2".to_vec())]);
        assert!(t.tokens().contains(&(b"HELLX".to_vec(), b"HELLO-V2".to_vec())));
        f.clear().expect("clear");
        let t = f.read().expect("read");
        assert!(t.map.iter().all(|b| *b == 0) && t.cmps.is_empty() && t.library.is_empty());
        let path = f.path().to_path_buf();
        drop(f);
        assert!(!path.exists(), "removed with its owner");
    }

    /// A coverage file for a server run as uid 61_130 is that uid's, 0600, in a 0711
    /// directory of the harness's: the server opens it; a third uid (61_131) cannot open it
    /// to write, so it cannot feed the campaign edges or comparisons (the file used to be 0666).
    #[cfg(unix)]
    #[test]
    fn a_coverage_file_is_the_servers_alone() {
        use crate::unix::creds::{as_user, is_root, Ids};
        use std::os::unix::fs::MetadataExt;
        if !is_root() {
            eprintln!("skipped: needs root to act as other uids");
            return;
        }
        let f = CoverageFile::create(Some(&crate::identity::Identity::uid(61_130))).expect("file");
        let m = std::fs::metadata(f.path()).expect("stat");
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (61_130, 61_130, 0o600));
        let d = std::fs::metadata(f.path().parent().expect("dir")).expect("stat dir");
        assert_eq!((d.uid(), d.mode() & 0o7777), (0, 0o711));
        let open_as = |uid: u32| {
            let path = f.path().to_path_buf();
            as_user(Ids { uid, gid: uid }, move || {
                std::fs::OpenOptions::new().read(true).write(true).open(&path).map(drop).map_err(|e| e.kind())
            })
            .expect("act as uid")
        };
        assert_eq!(open_as(61_130), Ok(()), "the server's uid opens it");
        assert_eq!(open_as(61_131), Err(std::io::ErrorKind::PermissionDenied), "a third uid cannot");
    }
}
