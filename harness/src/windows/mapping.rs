//! Named kernel objects that publish an endpoint (a file mapping holding a pipe name, as WCF's
//! net.pipe binding does): whether one can be found from where the caller runs.

use super::sys::{code_of, os, own, pcwstr, wide};
use crate::error::Result;
use windows::Win32::System::Memory::{OpenFileMappingW, FILE_MAP_READ};

/// Whether the named file mapping (`Local\NAME`, `Global\NAME`) exists and can be opened for
/// reading from this process's session. `Local\` names resolve in the caller's session.
pub fn mapping_exists(name: &str) -> Result<bool> {
    let w = wide("mapping name", name)?;
    // SAFETY: `w` is NUL-terminated; the handle is owned (and closed) right after.
    match unsafe { OpenFileMappingW(FILE_MAP_READ.0, false, pcwstr(&w)) } {
        Ok(h) => {
            drop(own(h));
            Ok(true)
        }
        Err(e) if code_of(&e) == crate::OsCode::FILE_NOT_FOUND => Ok(false),
        Err(e) => Err(os("OpenFileMappingW", format!("opening {name}"), e)),
    }
}
