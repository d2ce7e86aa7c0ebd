//! Machine-wide queries: every pipe name on the machine and its instance counts.

use super::sys::{code_of, os, pcwstr, wide};
use crate::error::Result;
use windows::Win32::Foundation::HANDLE;
use windows::Win32::Storage::FileSystem::{FindClose, FindFirstFileW, FindNextFileW, WIN32_FIND_DATAW};

/// One pipe name as the pipe file system lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PipeEntry {
    /// The name after `\\.\pipe\`.
    pub name: String,
    /// Instances of the name that exist now (the listing's file size field).
    pub instances: u32,
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

fn entry(d: &WIN32_FIND_DATAW) -> PipeEntry {
    let end = d.cFileName.iter().position(|&c| c == 0).unwrap_or(d.cFileName.len());
    PipeEntry { name: String::from_utf16_lossy(&d.cFileName[..end]), instances: d.nFileSizeLow }
}

/// Every pipe on the machine (`FindFirstFileW(\\.\pipe\*)`).
pub fn list_pipes() -> Result<Vec<PipeEntry>> {
    let pattern = wide("pattern", r"\\.\pipe\*")?;
    let mut data = WIN32_FIND_DATAW::default();
    // SAFETY: `pattern` is NUL-terminated; `data` is a valid out-structure.
    let first = match unsafe { FindFirstFileW(pcwstr(&pattern), &mut data) } {
        Ok(h) => h,
        Err(e) if code_of(&e).0 == 2 || code_of(&e).0 == 18 => return Ok(Vec::new()),
        Err(e) => return Err(os("FindFirstFileW", "listing \\\\.\\pipe\\", e)),
    };
    let find = FindHandle(first);
    let mut out = vec![entry(&data)];
    loop {
        // SAFETY: `find.0` is a live search handle; `data` a valid out-structure.
        match unsafe { FindNextFileW(find.0, &mut data) } {
            Ok(()) => out.push(entry(&data)),
            Err(e) if code_of(&e).0 == 18 => break, // ERROR_NO_MORE_FILES
            Err(e) => return Err(os("FindNextFileW", "listing \\\\.\\pipe\\", e)),
        }
    }
    Ok(out)
}

/// The number of instances of `name` (the part after `\pipe\`), 0 when it is not listed.
pub fn instance_count(name: &str) -> Result<u32> {
    Ok(list_pipes()?.into_iter().filter(|e| e.name.eq_ignore_ascii_case(name)).map(|e| e.instances).sum())
}
