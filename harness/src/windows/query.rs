//! Machine-wide queries: every pipe name on the machine and its instance counts.
//!
//! The pipe file system's root (`\\.\pipe\`) is a directory: each entry is a pipe name, its
//! end-of-file field the number of instances that exist now and its allocation size the
//! name's maximum (-1 for unlimited). The listing is read with
//! `GetFileInformationByHandleEx(FileFullDirectoryInfo)` on a handle to the root, and
//! with `FindFirstFileW(\\.\pipe\*)` where that is not available.

use super::sys::{code_of, os, own, pcwstr, raw, wide};
use crate::error::{Error, Result};
use windows::Win32::Foundation::HANDLE;
use windows::Win32::Storage::FileSystem::{
    CreateFileW, FileFullDirectoryInfo, FileFullDirectoryRestartInfo, FindClose, FindFirstFileW, FindNextFileW,
    GetFileInformationByHandleEx, FILE_FLAGS_AND_ATTRIBUTES, FILE_LIST_DIRECTORY, FILE_SHARE_READ, FILE_SHARE_WRITE,
    OPEN_EXISTING, SYNCHRONIZE, WIN32_FIND_DATAW,
};

/// One pipe name as the pipe file system lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PipeEntry {
    /// The name after `\\.\pipe\`.
    pub name: String,
    /// Instances of the name that exist now.
    pub instances: u32,
    /// The name's `nMaxInstances` (`None` when the listing does not say; 255 = unlimited).
    pub max_instances: Option<u32>,
}

/// Parses a buffer of `FILE_FULL_DIR_INFO` records, every offset checked against the buffer.
fn parse_full_dir_info(buf: &[u8], out: &mut Vec<PipeEntry>) -> Result<()> {
    let field = |at: usize, n: usize| {
        buf.get(at..at + n).ok_or_else(|| {
            Error::Peer(format!("directory record field at {at} is past the {}-byte listing", buf.len()))
        })
    };
    let mut at = 0usize;
    loop {
        let next = u32::from_le_bytes(field(at, 4)?.try_into().unwrap_or_default()) as usize;
        let end_of_file = i64::from_le_bytes(field(at + 40, 8)?.try_into().unwrap_or_default());
        let allocation = i64::from_le_bytes(field(at + 48, 8)?.try_into().unwrap_or_default());
        let name_len = u32::from_le_bytes(field(at + 60, 4)?.try_into().unwrap_or_default()) as usize;
        let name_bytes = field(at + 68, name_len)?;
        let units: Vec<u16> = name_bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        out.push(PipeEntry {
            name: String::from_utf16_lossy(&units),
            instances: u32::try_from(end_of_file).unwrap_or(0),
            max_instances: Some(if allocation < 0 { 255 } else { u32::try_from(allocation).unwrap_or(255) }),
        });
        if next == 0 {
            return Ok(());
        }
        at += next;
    }
}

fn list_by_directory_handle() -> Result<Vec<PipeEntry>> {
    let root = wide("path", r"\\.\pipe\")?;
    // SAFETY: `root` is NUL-terminated; the handle is owned right after.
    let h = unsafe {
        CreateFileW(
            pcwstr(&root),
            FILE_LIST_DIRECTORY.0 | SYNCHRONIZE.0,
            FILE_SHARE_READ | FILE_SHARE_WRITE,
            None,
            OPEN_EXISTING,
            FILE_FLAGS_AND_ATTRIBUTES(0),
            None,
        )
    }
    .map_err(|e| os("CreateFileW", "opening \\\\.\\pipe\\ as a directory", e))?;
    let dir = own(h);
    let mut buf = vec![0u64; 8192];
    let mut out = Vec::new();
    let mut class = FileFullDirectoryRestartInfo;
    loop {
        // SAFETY: `buf` has `len` writable, 8-aligned bytes for the records.
        let r =
            unsafe { GetFileInformationByHandleEx(raw(&dir), class, buf.as_mut_ptr().cast(), (buf.len() * 8) as u32) };
        match r {
            Ok(()) => {}
            Err(e) if code_of(&e) == crate::OsCode::NO_MORE_FILES => return Ok(out),
            Err(e) => return Err(os("GetFileInformationByHandleEx", "listing \\\\.\\pipe\\", e)),
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_le_bytes()).collect();
        parse_full_dir_info(&bytes, &mut out)?;
        class = FileFullDirectoryInfo;
    }
}

struct FindHandle(HANDLE);

impl Drop for FindHandle {
    fn drop(&mut self) {
        // SAFETY: a search handle from FindFirstFileW, closed exactly once.
        unsafe {
            let _ = FindClose(self.0);
        }
    }
}

fn find_entry(d: &WIN32_FIND_DATAW) -> PipeEntry {
    let end = d.cFileName.iter().position(|&c| c == 0).unwrap_or(d.cFileName.len());
    PipeEntry { name: String::from_utf16_lossy(&d.cFileName[..end]), instances: d.nFileSizeLow, max_instances: None }
}

fn list_by_find_first_file() -> Result<Vec<PipeEntry>> {
    let pattern = wide("pattern", r"\\.\pipe\*")?;
    let mut data = WIN32_FIND_DATAW::default();
    // SAFETY: `pattern` is NUL-terminated; `data` is a valid out-structure.
    let first = match unsafe { FindFirstFileW(pcwstr(&pattern), &mut data) } {
        Ok(h) => h,
        Err(e) if [crate::OsCode::FILE_NOT_FOUND, crate::OsCode::NO_MORE_FILES].contains(&code_of(&e)) => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(os("FindFirstFileW", "listing \\\\.\\pipe\\*", e)),
    };
    let find = FindHandle(first);
    let mut out = vec![find_entry(&data)];
    loop {
        // SAFETY: `find.0` is a live search handle; `data` a valid out-structure.
        match unsafe { FindNextFileW(find.0, &mut data) } {
            Ok(()) => out.push(find_entry(&data)),
            Err(e) if code_of(&e) == crate::OsCode::NO_MORE_FILES => return Ok(out),
            Err(e) => return Err(os("FindNextFileW", "listing \\\\.\\pipe\\*", e)),
        }
    }
}

/// Every pipe on the machine, with instance counts.
pub fn list_pipes() -> Result<Vec<PipeEntry>> {
    match list_by_directory_handle() {
        Ok(v) => Ok(v),
        Err(first) => list_by_find_first_file()
            .map_err(|second| Error::Unsupported(format!("listing pipes: {first}; and {second}"))),
    }
}

/// The number of instances of `name` (the part after `\pipe\`), 0 when it is not listed.
pub fn instance_count(name: &str) -> Result<u32> {
    Ok(list_pipes()?.into_iter().filter(|e| e.name.eq_ignore_ascii_case(name)).map(|e| e.instances).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(next: u32, eof: i64, alloc: i64, name: &str) -> Vec<u8> {
        let units: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut r = vec![0u8; 68];
        r[0..4].copy_from_slice(&next.to_le_bytes());
        r[40..48].copy_from_slice(&eof.to_le_bytes());
        r[48..56].copy_from_slice(&alloc.to_le_bytes());
        r[60..64].copy_from_slice(&(units.len() as u32).to_le_bytes());
        r.extend(units);
        r
    }

    #[test]
    fn records_parse_and_bad_offsets_are_refused() {
        let mut buf = record(72, 2, -1, "ab");
        buf.extend(record(0, 1, 3, "c"));
        let mut out = Vec::new();
        parse_full_dir_info(&buf, &mut out).expect("valid listing");
        assert_eq!(out[0], PipeEntry { name: "ab".into(), instances: 2, max_instances: Some(255) });
        assert_eq!(out[1], PipeEntry { name: "c".into(), instances: 1, max_instances: Some(3) });
        let mut bad = record(0, 1, 1, "name");
        bad[60..64].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_full_dir_info(&bad, &mut Vec::new()).is_err());
    }
}
