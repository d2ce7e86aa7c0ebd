//! Small shared pieces of the Windows layer: UTF-16 strings, error mapping, handle ownership,
//! `LocalFree`'d buffers, events and deadline-bound overlapped I/O.

use crate::error::{Error, OsCode, Result};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::time::Duration;
use windows::core::PCWSTR;
use windows::Win32::Foundation::{
    GetLastError, LocalFree, ERROR_IO_PENDING, ERROR_MORE_DATA, HANDLE, HLOCAL, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows::Win32::System::Threading::{CreateEventW, WaitForSingleObject};
use windows::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};

/// A NUL-terminated UTF-16 copy of `s`; an interior NUL is refused.
pub(crate) fn wide(what: &'static str, s: &str) -> Result<Vec<u16>> {
    if s.contains('\0') {
        return Err(Error::invalid(what, format!("{s:?} contains a NUL character")));
    }
    Ok(s.encode_utf16().chain(Some(0)).collect())
}

/// `PCWSTR` pointing into a buffer from [`wide`]; the buffer must outlive every use.
pub(crate) fn pcwstr(w: &[u16]) -> PCWSTR {
    PCWSTR(w.as_ptr())
}

/// The Win32 code inside a `windows::core::Error` (an `HRESULT_FROM_WIN32` value).
pub(crate) fn code_of(e: &windows::core::Error) -> OsCode {
    let hr = e.code().0 as u32;
    if hr & 0xFFFF_0000 == 0x8007_0000 {
        OsCode::Win32(hr & 0xFFFF)
    } else {
        OsCode::Win32(hr)
    }
}

/// Maps a `windows` crate error into [`Error::Os`].
pub(crate) fn os(call: &'static str, context: impl Into<String>, e: windows::core::Error) -> Error {
    Error::Os { call, code: code_of(&e), context: context.into() }
}

/// [`Error::Os`] from `GetLastError`, for calls that signal failure by their return value.
pub(crate) fn last_error(call: &'static str, context: impl Into<String>) -> Error {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    let code = unsafe { GetLastError() };
    Error::Os { call, code: OsCode::Win32(code.0), context: context.into() }
}

/// Takes ownership of a handle just returned by the OS. The caller has checked it is valid.
pub(crate) fn own(h: HANDLE) -> OwnedHandle {
    // SAFETY: `h` is a freshly returned, valid handle that nothing else owns or closes.
    unsafe { OwnedHandle::from_raw_handle(h.0) }
}

/// The raw `HANDLE` of an owned handle, for passing to a Win32 call while `h` stays borrowed.
pub(crate) fn raw(h: &OwnedHandle) -> HANDLE {
    HANDLE(h.as_raw_handle())
}

/// A buffer the OS allocated with `LocalAlloc`, released with `LocalFree` on drop.
pub(crate) struct LocalBuf(pub(crate) *mut core::ffi::c_void);

impl Drop for LocalBuf {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an API documented to allocate with LocalAlloc and
            // is freed exactly once, here.
            unsafe {
                LocalFree(Some(HLOCAL(self.0)));
            }
        }
    }
}

/// Reads a NUL-terminated UTF-16 string the OS allocated and frees it.
pub(crate) fn take_local_wstr(p: windows::core::PWSTR) -> String {
    let buf = LocalBuf(p.0.cast());
    if p.is_null() {
        return String::new();
    }
    // SAFETY: `p` is a valid NUL-terminated string from the OS, alive until `buf` drops below.
    let s = unsafe { p.to_string() }.unwrap_or_default();
    drop(buf);
    s
}

/// Milliseconds for a Win32 timeout argument, never `INFINITE` (u32::MAX).
pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX - 1).min(u32::MAX - 1)
}

/// The outcome of a completed overlapped operation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoDone {
    pub(crate) bytes: u32,
    pub(crate) more_data: bool,
}

/// Runs one overlapped operation on `handle` and waits for it, at most `timeout`.
///
/// `start` issues the call (`ReadFile`, `WriteFile`, `ConnectNamedPipe`) with the given
/// `OVERLAPPED`. On timeout the operation is cancelled with `CancelIoEx` and waited out, so
/// neither the `OVERLAPPED` nor the caller's buffer is referenced once this returns.
pub(crate) fn overlapped(
    handle: &OwnedHandle,
    call: &'static str,
    context: &dyn Fn() -> String,
    timeout: Duration,
    start: impl FnOnce(*mut OVERLAPPED) -> windows::core::Result<()>,
) -> Result<IoDone> {
    // SAFETY: plain event creation with no name and default security.
    let event =
        unsafe { CreateEventW(None, true, false, PCWSTR::null()) }.map_err(|e| os("CreateEventW", context(), e))?;
    let event = own(event);
    let mut ov = OVERLAPPED { hEvent: raw(&event), ..Default::default() };
    let h = raw(handle);
    let started = start(&mut ov);
    if let Err(e) = started {
        let code = code_of(&e);
        if code == OsCode::Win32(ERROR_MORE_DATA.0) {
            // Completed at once with part of a message; the count is in the OVERLAPPED.
        } else if code != OsCode::Win32(ERROR_IO_PENDING.0) {
            return Err(Error::Os { call, code, context: context() });
        }
    }
    // SAFETY: `event` is a valid event handle owned above.
    let waited = unsafe { WaitForSingleObject(raw(&event), millis(timeout)) };
    let mut bytes = 0u32;
    if waited == WAIT_TIMEOUT {
        // SAFETY: `ov` is the OVERLAPPED of the operation in flight on `h`; cancelling it and
        // then waiting (bWait = true) guarantees the OS is done with `ov` and the buffer.
        unsafe {
            let _ = CancelIoEx(h, Some(&ov));
            if GetOverlappedResult(h, &ov, &mut bytes, true).is_ok() {
                // It completed between the timeout and the cancel: report what happened.
                return Ok(IoDone { bytes, more_data: false });
            }
        }
        return Err(Error::Timeout { context: context(), after: timeout });
    }
    if waited != WAIT_OBJECT_0 {
        let err = last_error("WaitForSingleObject", context());
        // SAFETY: as above: cancel and wait out the operation before `ov` goes out of scope.
        unsafe {
            let _ = CancelIoEx(h, Some(&ov));
            let _ = GetOverlappedResult(h, &ov, &mut bytes, true);
        }
        return Err(err);
    }
    // SAFETY: the event is signalled, so the operation on `ov` has completed.
    match unsafe { GetOverlappedResult(h, &ov, &mut bytes, false) } {
        Ok(()) => Ok(IoDone { bytes, more_data: false }),
        Err(e) if code_of(&e) == OsCode::Win32(ERROR_MORE_DATA.0) => Ok(IoDone { bytes, more_data: true }),
        Err(e) => Err(os(call, context(), e)),
    }
}
