//! Windows services through the Service Control Manager: the state of a service, its process,
//! how it ended, and starting and stopping it (for targets a service manager starts).

use super::sys::{os, pcwstr, wide};
use crate::error::{Error, OsCode, Result};
use std::time::{Duration, Instant};
use windows::Win32::System::Services::{
    CloseServiceHandle, ControlService, OpenSCManagerW, OpenServiceW, QueryServiceStatusEx, StartServiceW, SC_HANDLE,
    SC_MANAGER_CONNECT, SC_STATUS_PROCESS_INFO, SERVICE_CONTROL_STOP, SERVICE_QUERY_STATUS, SERVICE_RUNNING,
    SERVICE_START, SERVICE_START_PENDING, SERVICE_STATUS, SERVICE_STATUS_PROCESS, SERVICE_STOP, SERVICE_STOPPED,
    SERVICE_STOP_PENDING,
};

/// `ERROR_SERVICE_ALREADY_RUNNING`.
const ALREADY_RUNNING: u32 = 1056;
/// `ERROR_SERVICE_NOT_ACTIVE`.
const NOT_ACTIVE: u32 = 1062;
/// `ERROR_BROKEN_PIPE`.
const BROKEN_PIPE: u32 = 109;
/// `ERROR_SERVICE_SPECIFIC_ERROR`: the exit code is in `dwServiceSpecificExitCode`.
const SERVICE_SPECIFIC: u32 = 1066;

/// An open service (or manager) handle, closed on drop.
struct Sc(SC_HANDLE);

impl Drop for Sc {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenSCManagerW/OpenServiceW and is closed once, here.
        let _ = unsafe { CloseServiceHandle(self.0) };
    }
}

/// What the Service Control Manager says about a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceState {
    /// Running or starting.
    pub running: bool,
    /// Its process, while it has one.
    pub pid: Option<u32>,
    /// The exit code it reported when it stopped (`dwWin32ExitCode`, or the service-specific
    /// code when that is `ERROR_SERVICE_SPECIFIC_ERROR`).
    pub exit_code: u32,
}

fn open(name: &str, access: u32) -> Result<Sc> {
    // SAFETY: null machine and database names select the local active database.
    let manager = unsafe { OpenSCManagerW(None, None, SC_MANAGER_CONNECT) }
        .map_err(|e| os("OpenSCManagerW", "connecting to the Service Control Manager", e))?;
    let manager = Sc(manager);
    let w = wide("service name", name)?;
    // SAFETY: `manager` is open and `w` is NUL-terminated and outlives the call.
    let service = unsafe { OpenServiceW(manager.0, pcwstr(&w), access) }
        .map_err(|e| os("OpenServiceW", format!("opening the service {name}"), e))?;
    Ok(Sc(service))
}

fn status(name: &str, service: &Sc) -> Result<ServiceState> {
    let mut buf = [0u8; std::mem::size_of::<SERVICE_STATUS_PROCESS>()];
    let mut needed = 0u32;
    // SAFETY: the buffer is exactly one SERVICE_STATUS_PROCESS; `needed` is a valid out pointer.
    unsafe { QueryServiceStatusEx(service.0, SC_STATUS_PROCESS_INFO, Some(&mut buf), &mut needed) }
        .map_err(|e| os("QueryServiceStatusEx", format!("asking for the state of the service {name}"), e))?;
    // SAFETY: the call filled `buf` with a SERVICE_STATUS_PROCESS; read unaligned.
    let s: SERVICE_STATUS_PROCESS = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
    let running = matches!(s.dwCurrentState, SERVICE_RUNNING | SERVICE_START_PENDING);
    let exit_code = if s.dwWin32ExitCode == SERVICE_SPECIFIC { s.dwServiceSpecificExitCode } else { s.dwWin32ExitCode };
    Ok(ServiceState { running, pid: Some(s.dwProcessId).filter(|p| *p != 0), exit_code })
}

/// The state of the service `name`.
pub fn query(name: &str) -> Result<ServiceState> {
    status(name, &open(name, SERVICE_QUERY_STATUS)?)
}

/// Starts the service and waits at most `timeout` for it to leave the start-pending state
/// (running, or stopped again: a service that refuses to start).
pub fn start(name: &str, timeout: Duration) -> Result<ServiceState> {
    let service = open(name, SERVICE_START | SERVICE_QUERY_STATUS)?;
    // SAFETY: `service` is open with SERVICE_START; no arguments.
    if let Err(e) = unsafe { StartServiceW(service.0, None) } {
        if super::sys::code_of(&e) != OsCode::Win32(ALREADY_RUNNING) {
            return Err(os("StartServiceW", format!("starting the service {name}"), e));
        }
    }
    settle(name, &service, timeout, |s| s.dwCurrentState != SERVICE_START_PENDING)
}

/// Asks the service to stop and waits at most `timeout` until it has.
pub fn stop(name: &str, timeout: Duration) -> Result<ServiceState> {
    let service = open(name, SERVICE_STOP | SERVICE_QUERY_STATUS)?;
    let mut st = SERVICE_STATUS::default();
    // SAFETY: `service` is open with SERVICE_STOP; `st` is a valid out pointer.
    if let Err(e) = unsafe { ControlService(service.0, SERVICE_CONTROL_STOP, &mut st) } {
        // A service whose process ends while it answers breaks the SCM's control pipe: it is
        // stopping all the same, and the wait below tells.
        let code = super::sys::code_of(&e);
        if code != OsCode::Win32(NOT_ACTIVE) && code != OsCode::Win32(BROKEN_PIPE) {
            return Err(os("ControlService", format!("stopping the service {name}"), e));
        }
    }
    settle(name, &service, timeout, |s| s.dwCurrentState == SERVICE_STOPPED)
}

/// Polls the service every 50 ms until `done` or the deadline.
fn settle(
    name: &str,
    service: &Sc,
    timeout: Duration,
    done: impl Fn(&SERVICE_STATUS_PROCESS) -> bool,
) -> Result<ServiceState> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut buf = [0u8; std::mem::size_of::<SERVICE_STATUS_PROCESS>()];
        let mut needed = 0u32;
        // SAFETY: as in `status`.
        unsafe { QueryServiceStatusEx(service.0, SC_STATUS_PROCESS_INFO, Some(&mut buf), &mut needed) }
            .map_err(|e| os("QueryServiceStatusEx", format!("asking for the state of the service {name}"), e))?;
        // SAFETY: as in `status`.
        let s: SERVICE_STATUS_PROCESS = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        if done(&s) && s.dwCurrentState != SERVICE_STOP_PENDING || Instant::now() >= deadline {
            return match done(&s) {
                true => status(name, service),
                false => Err(Error::Timeout {
                    context: format!("the service {name} changing state (now {})", s.dwCurrentState.0),
                    after: timeout,
                }),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
