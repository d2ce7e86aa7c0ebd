//! Security descriptors: from SDDL or raw bytes, back to SDDL, and read off a live handle.

use super::sys::{os, pcwstr, raw, take_local_wstr, wide, LocalBuf};
use crate::error::{Error, Result};
use std::fmt;
use std::os::windows::io::OwnedHandle;
use std::str::FromStr;
use windows::core::PWSTR;
use windows::Win32::Foundation::WIN32_ERROR;
use windows::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetSecurityInfo, SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows::Win32::Security::{
    GetSecurityDescriptorLength, IsValidSecurityDescriptor, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION,
    LABEL_SECURITY_INFORMATION, OBJECT_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR,
};

/// A self-relative security descriptor owned by the harness (copied out of OS memory).
///
/// Build one from SDDL (`"D:P(A;;GA;;;SY)"`) with [`SecurityDescriptor::from_sddl`] or
/// [`str::parse`], or from raw self-relative bytes with [`SecurityDescriptor::from_bytes`];
/// read a pipe's with [`SecurityDescriptor::of_handle`]. Storage is `u64`-aligned, as the
/// Win32 calls that take a `PSECURITY_DESCRIPTOR` expect.
#[derive(Clone, PartialEq, Eq)]
pub struct SecurityDescriptor {
    words: Vec<u64>,
    len: usize,
}

impl SecurityDescriptor {
    fn from_valid_bytes(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        for (i, b) in bytes.iter().enumerate() {
            words[i / 8] |= u64::from(*b) << (8 * (i % 8));
        }
        SecurityDescriptor { words, len: bytes.len() }
    }

    /// Parses SDDL with `ConvertStringSecurityDescriptorToSecurityDescriptorW`.
    pub fn from_sddl(sddl: &str) -> Result<Self> {
        let w = wide("SDDL string", sddl)?;
        let mut psd = PSECURITY_DESCRIPTOR::default();
        let mut size = 0u32;
        // SAFETY: `w` is NUL-terminated and outlives the call; the out-pointers are valid.
        unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(pcwstr(&w), SDDL_REVISION_1, &mut psd, Some(&mut size))
        }
        .map_err(|e| Error::InvalidInput {
            what: "SDDL string",
            why: format!("{sddl:?}: {}", os("ConvertStringSecurityDescriptorToSecurityDescriptorW", "parsing", e)),
        })?;
        let _free = LocalBuf(psd.0);
        // SAFETY: on success `psd` points at `size` bytes of self-relative descriptor.
        let bytes = unsafe { std::slice::from_raw_parts(psd.0 as *const u8, size as usize) };
        Ok(Self::from_valid_bytes(bytes))
    }

    /// Takes raw self-relative bytes (as `GetKernelObjectSecurity` returns them). The layout is
    /// bounds-checked first, then `IsValidSecurityDescriptor` checks the contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        crate::sd_layout::check_self_relative(bytes)?;
        let sd = Self::from_valid_bytes(bytes);
        // SAFETY: the layout check above proved every offset and size lies inside the buffer.
        let valid = unsafe { IsValidSecurityDescriptor(sd.as_psd()) }.as_bool();
        if !valid {
            return Err(Error::invalid("security descriptor bytes", "IsValidSecurityDescriptor rejected them"));
        }
        Ok(sd)
    }

    /// Reads the owner, group, DACL and label of a kernel object (a pipe end) with
    /// `GetSecurityInfo`. The handle needs `READ_CONTROL`.
    pub fn of_handle(handle: &OwnedHandle) -> Result<Self> {
        let mut psd = PSECURITY_DESCRIPTOR::default();
        let info = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
        // SAFETY: the handle is valid; `psd` receives a LocalAlloc'd descriptor freed below.
        let rc =
            unsafe { GetSecurityInfo(raw(handle), SE_KERNEL_OBJECT, info, None, None, None, None, Some(&mut psd)) };
        let _free = LocalBuf(psd.0);
        if rc != WIN32_ERROR(0) {
            return Err(Error::Os {
                call: "GetSecurityInfo",
                code: crate::error::OsCode::Win32(rc.0),
                context: "reading a pipe's security descriptor".into(),
            });
        }
        if psd.0.is_null() {
            return Ok(Self::from_valid_bytes(&[]));
        }
        // SAFETY: `psd` is a valid self-relative descriptor from the OS.
        let len = unsafe { GetSecurityDescriptorLength(psd) } as usize;
        // SAFETY: GetSecurityDescriptorLength gives the size of the allocation's contents.
        let bytes = unsafe { std::slice::from_raw_parts(psd.0 as *const u8, len) };
        Ok(Self::from_valid_bytes(bytes))
    }

    /// True when the OS returned no descriptor at all (Wine does this for a NULL-SD pipe).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The self-relative bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes; u8 has no alignment needs.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    pub(crate) fn as_psd(&self) -> PSECURITY_DESCRIPTOR {
        PSECURITY_DESCRIPTOR(self.words.as_ptr() as *mut _)
    }

    /// The descriptor as SDDL (owner, group, DACL and label), or `""` when it is empty.
    pub fn to_sddl(&self) -> Result<String> {
        if self.is_empty() {
            return Ok(String::new());
        }
        let info: OBJECT_SECURITY_INFORMATION = OWNER_SECURITY_INFORMATION
            | GROUP_SECURITY_INFORMATION
            | DACL_SECURITY_INFORMATION
            | LABEL_SECURITY_INFORMATION;
        let mut out = PWSTR::null();
        // SAFETY: `as_psd` points at a valid descriptor; `out` receives a LocalAlloc'd string.
        unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(self.as_psd(), SDDL_REVISION_1, info, &mut out, None)
        }
        .map_err(|e| os("ConvertSecurityDescriptorToStringSecurityDescriptorW", "formatting SDDL", e))?;
        Ok(take_local_wstr(out))
    }

    /// The DACL part of the SDDL (`D:...`, flags and ACEs), or `None` when there is no DACL.
    pub fn dacl_sddl(&self) -> Result<Option<String>> {
        Ok(crate::sddl::section(&self.to_sddl()?, 'D').map(|d| format!("D:{d}")))
    }

    /// The owner (`O:` part of the SDDL: a SID string or an alias such as `BA`), if any.
    pub fn owner(&self) -> Result<Option<String>> {
        Ok(crate::sddl::section(&self.to_sddl()?, 'O').map(str::to_string))
    }
}

impl FromStr for SecurityDescriptor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::from_sddl(s)
    }
}

impl fmt::Debug for SecurityDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_sddl() {
            Ok(s) => write!(f, "SecurityDescriptor({s:?})"),
            Err(_) => write!(f, "SecurityDescriptor({} bytes)", self.len),
        }
    }
}
