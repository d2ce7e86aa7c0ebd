//! Named-pipe instances (server side) and client opens, with deadline-bound I/O.
//!
//! Modelled on the Win32 calls one to one, so a scenario can set exactly the flags a product
//! sets: [`ServerOptions`] is `CreateNamedPipeW`, [`ClientOptions`] is `CreateFileW` on a pipe
//! path with its SQOS flags. Defaults are the safe ones (remote clients rejected, a client that
//! allows the server only Identification), so an unsafe setting is always written out.

use super::security::SecurityDescriptor;
use super::sys::{os, overlapped, own, pcwstr, raw, wide};
use super::token::{Impersonation, ImpersonationLevel};
use crate::error::{Error, OsCode, Result};
use std::os::windows::io::OwnedHandle;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use windows::Win32::Foundation::{ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE};
use windows::Win32::Security::SECURITY_ATTRIBUTES;
use windows::Win32::Storage::FileSystem::{
    CreateFileW, FlushFileBuffers, ReadFile, WriteFile, FILE_FLAGS_AND_ATTRIBUTES, FILE_FLAG_FIRST_PIPE_INSTANCE,
    FILE_FLAG_OVERLAPPED, FILE_SHARE_NONE, OPEN_EXISTING, PIPE_ACCESS_DUPLEX, PIPE_ACCESS_INBOUND,
    PIPE_ACCESS_OUTBOUND, READ_CONTROL, SECURITY_CONTEXT_TRACKING, SECURITY_EFFECTIVE_ONLY, SECURITY_SQOS_PRESENT,
    WRITE_DAC,
};
use windows::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeClientProcessId, GetNamedPipeClientSessionId,
    GetNamedPipeHandleStateW, GetNamedPipeInfo, GetNamedPipeServerProcessId, GetNamedPipeServerSessionId,
    ImpersonateNamedPipeClient, SetNamedPipeHandleState, WaitNamedPipeW, NAMED_PIPE_MODE, PIPE_READMODE_BYTE,
    PIPE_READMODE_MESSAGE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE, PIPE_TYPE_MESSAGE, PIPE_WAIT,
};

/// A pipe path: `\\.\pipe\NAME` on this machine, or `\\HOST\pipe\NAME` through the redirector.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipeName {
    path: String,
}

impl PipeName {
    /// `\\.\pipe\{name}`. The name must be 1 to 256 characters with no NUL; backslashes are
    /// allowed (they are plain characters in the pipe namespace).
    pub fn new(name: &str) -> Result<Self> {
        if name.is_empty() || name.chars().count() > 256 || name.contains('\0') {
            return Err(Error::invalid("pipe name", format!("{name:?}: must be 1 to 256 characters without NUL")));
        }
        Ok(PipeName { path: format!(r"\\.\pipe\{name}") })
    }

    /// Parses a full path (`\\.\pipe\x` or `\\host\pipe\x`).
    pub fn from_path(path: &str) -> Result<Self> {
        let rest = path
            .strip_prefix(r"\\")
            .ok_or_else(|| Error::invalid("pipe path", format!("{path:?} does not start with \\\\")))?;
        let (host, name) = rest
            .split_once('\\')
            .ok_or_else(|| Error::invalid("pipe path", format!("{path:?} has no \\pipe\\ part")))?;
        let name = name
            .strip_prefix("pipe\\")
            .or_else(|| name.strip_prefix("PIPE\\"))
            .ok_or_else(|| Error::invalid("pipe path", format!("{path:?}: expected \\\\{host}\\pipe\\NAME")))?;
        let local = PipeName::new(name)?;
        Ok(if host == "." { local } else { local.via_host(host) })
    }

    /// A name no other run uses: `{prefix}-{pid}-{counter}-{nanos}`. Tests and scenarios use it
    /// so runs never collide.
    pub fn unique(prefix: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        PipeName { path: format!(r"\\.\pipe\{prefix}-{}-{n}-{nanos:x}", std::process::id()) }
    }

    /// The same pipe reached through `\\{host}\pipe\...` (the SMB redirector: a remote client
    /// as far as `PIPE_REJECT_REMOTE_CLIENTS` is concerned).
    pub fn via_host(&self, host: &str) -> Self {
        PipeName { path: format!(r"\\{host}\pipe\{}", self.name()) }
    }

    /// The full path.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The part after `\pipe\`.
    pub fn name(&self) -> &str {
        self.path.splitn(5, '\\').nth(4).unwrap_or("")
    }
}

impl std::fmt::Display for PipeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.path)
    }
}

/// Which way data flows through an instance (`PIPE_ACCESS_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeAccess {
    /// Client to server only (`PIPE_ACCESS_INBOUND`).
    Inbound,
    /// Server to client only (`PIPE_ACCESS_OUTBOUND`).
    Outbound,
    /// Both ways (`PIPE_ACCESS_DUPLEX`).
    Duplex,
}

/// How data is written into the pipe (`PIPE_TYPE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeType {
    /// A byte stream (`PIPE_TYPE_BYTE`).
    Byte,
    /// Each write is one message (`PIPE_TYPE_MESSAGE`).
    Message,
}

/// How data is read (`PIPE_READMODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// Reads return any number of available bytes.
    Byte,
    /// Reads return one message; a short buffer gives `ERROR_MORE_DATA`.
    Message,
}

/// The security descriptor a new instance asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecuritySpec {
    /// NULL `lpSecurityDescriptor`: the first instance gets the default DACL (and, as a later
    /// instance, the name's existing one).
    Default,
    /// An SDDL string, parsed at create time.
    Sddl(String),
    /// A descriptor already built (from SDDL or raw bytes).
    Descriptor(SecurityDescriptor),
}

/// Options for creating a pipe instance, i.e. the arguments of `CreateNamedPipeW`.
///
/// ```no_run
/// # use pipe_harness_core::windows::{PipeName, ServerOptions, PipeType, ReadMode, SecuritySpec};
/// let name = PipeName::unique("doc");
/// let server = ServerOptions::new()
///     .pipe_type(PipeType::Message)
///     .read_mode(ReadMode::Message)
///     .first_pipe_instance(true)
///     .security(SecuritySpec::Sddl("D:P(A;;GA;;;SY)(A;;GA;;;OW)".into()))
///     .create(&name)?;
/// # Ok::<(), pipe_harness_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ServerOptions {
    access: PipeAccess,
    pipe_type: PipeType,
    read_mode: ReadMode,
    max_instances: u32,
    out_buffer: u32,
    in_buffer: u32,
    default_timeout: Duration,
    first_instance: bool,
    reject_remote: bool,
    write_dac: bool,
    security: SecuritySpec,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerOptions {
    /// Duplex, byte type and read mode, unlimited instances, 4 KiB buffers, remote clients
    /// rejected, no first-instance flag, the default security descriptor.
    pub fn new() -> Self {
        ServerOptions {
            access: PipeAccess::Duplex,
            pipe_type: PipeType::Byte,
            read_mode: ReadMode::Byte,
            max_instances: 255,
            out_buffer: 4096,
            in_buffer: 4096,
            default_timeout: Duration::from_millis(50),
            first_instance: false,
            reject_remote: true,
            write_dac: false,
            security: SecuritySpec::Default,
        }
    }

    /// Data direction (`PIPE_ACCESS_INBOUND` / `OUTBOUND` / `DUPLEX`).
    pub fn access(mut self, access: PipeAccess) -> Self {
        self.access = access;
        self
    }

    /// `PIPE_TYPE_BYTE` or `PIPE_TYPE_MESSAGE`. Every instance of a name must agree, or the
    /// create fails with `ERROR_ACCESS_DENIED`.
    pub fn pipe_type(mut self, t: PipeType) -> Self {
        self.pipe_type = t;
        self
    }

    /// `PIPE_READMODE_BYTE` or `PIPE_READMODE_MESSAGE` (message needs the message type).
    pub fn read_mode(mut self, m: ReadMode) -> Self {
        self.read_mode = m;
        self
    }

    /// `nMaxInstances`, 1 to 254; 255 is `PIPE_UNLIMITED_INSTANCES`. One more than this gives
    /// `ERROR_PIPE_BUSY`.
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n;
        self
    }

    /// `nOutBufferSize` (advisory).
    pub fn out_buffer_size(mut self, n: u32) -> Self {
        self.out_buffer = n;
        self
    }

    /// `nInBufferSize` (advisory).
    pub fn in_buffer_size(mut self, n: u32) -> Self {
        self.in_buffer = n;
        self
    }

    /// `nDefaultTimeOut`, used by clients' `WaitNamedPipe(NMPWAIT_USE_DEFAULT_WAIT)`.
    pub fn default_timeout(mut self, d: Duration) -> Self {
        self.default_timeout = d;
        self
    }

    /// `FILE_FLAG_FIRST_PIPE_INSTANCE`: fail with `ERROR_ACCESS_DENIED` when an instance of the
    /// name already exists (the squatting defence).
    pub fn first_pipe_instance(mut self, on: bool) -> Self {
        self.first_instance = on;
        self
    }

    /// `PIPE_REJECT_REMOTE_CLIENTS` (on by default). It is per instance: every instance must set it.
    pub fn reject_remote_clients(mut self, on: bool) -> Self {
        self.reject_remote = on;
        self
    }

    /// `WRITE_DAC` on the instance handle, so the server can change the pipe's DACL later.
    pub fn write_dac(mut self, on: bool) -> Self {
        self.write_dac = on;
        self
    }

    /// The security descriptor for the instance (`lpSecurityAttributes`).
    pub fn security(mut self, s: SecuritySpec) -> Self {
        self.security = s;
        self
    }

    fn check(&self) -> Result<()> {
        if !(1..=255).contains(&self.max_instances) {
            return Err(Error::invalid(
                "max_instances",
                format!("{} (must be 1..=255, 255 = unlimited)", self.max_instances),
            ));
        }
        if self.read_mode == ReadMode::Message && self.pipe_type == PipeType::Byte {
            return Err(Error::invalid("read_mode", "message read mode needs PipeType::Message"));
        }
        Ok(())
    }

    /// Creates one instance of `name` with `CreateNamedPipeW`, opened for overlapped I/O.
    ///
    /// Errors keep the exact code: `ERROR_ACCESS_DENIED` (first-instance flag, mismatched
    /// settings, or a DACL without `FILE_CREATE_PIPE_INSTANCE`), `ERROR_PIPE_BUSY` (max instances).
    pub fn create(&self, name: &PipeName) -> Result<PipeServer> {
        self.check()?;
        let sd = match &self.security {
            SecuritySpec::Default => None,
            SecuritySpec::Sddl(s) => Some(SecurityDescriptor::from_sddl(s)?),
            SecuritySpec::Descriptor(d) => Some(d.clone()),
        };
        let sa = sd.as_ref().map(|sd| SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: sd.as_psd().0,
            bInheritHandle: false.into(),
        });
        let mut open_mode = match self.access {
            PipeAccess::Inbound => PIPE_ACCESS_INBOUND,
            PipeAccess::Outbound => PIPE_ACCESS_OUTBOUND,
            PipeAccess::Duplex => PIPE_ACCESS_DUPLEX,
        } | FILE_FLAG_OVERLAPPED;
        if self.first_instance {
            open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
        }
        if self.write_dac {
            open_mode |= FILE_FLAGS_AND_ATTRIBUTES(WRITE_DAC.0);
        }
        let mut mode: NAMED_PIPE_MODE = PIPE_WAIT;
        mode |= if self.pipe_type == PipeType::Message { PIPE_TYPE_MESSAGE } else { PIPE_TYPE_BYTE };
        mode |= if self.read_mode == ReadMode::Message { PIPE_READMODE_MESSAGE } else { PIPE_READMODE_BYTE };
        if self.reject_remote {
            mode |= PIPE_REJECT_REMOTE_CLIENTS;
        }
        let w = wide("pipe name", name.as_str())?;
        // SAFETY: `w` is NUL-terminated; `sa` and the descriptor it points into outlive the call.
        let h = unsafe {
            CreateNamedPipeW(
                pcwstr(&w),
                open_mode,
                mode,
                self.max_instances,
                self.out_buffer,
                self.in_buffer,
                super::sys::millis(self.default_timeout),
                sa.as_ref().map(|s| s as *const _),
            )
        };
        if h == INVALID_HANDLE_VALUE || h.is_invalid() {
            return Err(super::sys::last_error("CreateNamedPipeW", format!("creating an instance of {name}")));
        }
        Ok(PipeServer { handle: own(h), name: name.clone(), read_since_connect: false })
    }
}

/// What one read returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOutcome {
    /// Bytes placed in the buffer (0 at end of stream or for a zero-length message).
    pub len: usize,
    /// True when a message-mode read returned only part of the message (`ERROR_MORE_DATA`):
    /// read again for the rest.
    pub more_data: bool,
}

fn read_on(h: &OwnedHandle, what: &dyn Fn() -> String, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX) as usize;
    let buf = &mut buf[..len];
    let done = overlapped(h, "ReadFile", what, timeout, |ov| {
        // SAFETY: `buf` and `ov` stay alive until `overlapped` has seen the operation complete.
        unsafe { ReadFile(raw(h), Some(buf), None, Some(ov)) }
    })?;
    Ok(ReadOutcome { len: done.bytes as usize, more_data: done.more_data })
}

fn read_message_on(h: &OwnedHandle, what: &dyn Fn() -> String, max: usize, timeout: Duration) -> Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut msg = Vec::new();
    let mut chunk = vec![0u8; max.clamp(1, 64 * 1024)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let r = read_on(h, what, &mut chunk, left)?;
        if msg.len() + r.len > max {
            return Err(Error::Peer(format!("message larger than the {max}-byte limit while {}", what())));
        }
        msg.extend_from_slice(&chunk[..r.len]);
        if !r.more_data {
            return Ok(msg);
        }
    }
}

fn write_on(h: &OwnedHandle, what: &dyn Fn() -> String, data: &[u8], timeout: Duration) -> Result<usize> {
    if u32::try_from(data.len()).is_err() {
        return Err(Error::invalid("write", format!("{} bytes is more than one WriteFile can take", data.len())));
    }
    let done = overlapped(h, "WriteFile", what, timeout, |ov| {
        // SAFETY: `data` and `ov` stay alive until `overlapped` has seen the operation complete.
        unsafe { WriteFile(raw(h), Some(data), None, Some(ov)) }
    })?;
    Ok(done.bytes as usize)
}

fn write_all_on(h: &OwnedHandle, what: &dyn Fn() -> String, mut data: &[u8], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !data.is_empty() {
        let n = write_on(h, what, data, deadline.saturating_duration_since(Instant::now()))?;
        if n == 0 {
            return Err(Error::Peer(format!("a write made no progress while {}", what())));
        }
        data = &data[n..];
    }
    Ok(())
}

fn pid_query(
    h: &OwnedHandle,
    call: &'static str,
    f: unsafe fn(windows::Win32::Foundation::HANDLE, *mut u32) -> windows::core::Result<()>,
) -> Result<u32> {
    let mut v = 0u32;
    // SAFETY: `h` is a valid pipe handle and `v` a valid out-pointer for the call.
    unsafe { f(raw(h), &mut v) }.map_err(|e| os(call, "querying the pipe's other end", e))?;
    Ok(v)
}

fn current_instances(h: &OwnedHandle) -> Result<u32> {
    let mut n = 0u32;
    // SAFETY: valid pipe handle; only the instance-count out-pointer is requested.
    let ok = unsafe { GetNamedPipeHandleStateW(raw(h), None, Some(&mut n), None, None, None) };
    if !ok.as_bool() {
        return Err(super::sys::last_error("GetNamedPipeHandleStateW", "counting instances"));
    }
    Ok(n)
}

/// An instance's fixed settings (`GetNamedPipeInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeInfo {
    /// Message type (else byte).
    pub message: bool,
    /// `nMaxInstances` (255: unlimited).
    pub max_instances: u32,
    /// `nOutBufferSize` of the server end.
    pub out_buffer: u32,
    /// `nInBufferSize` of the server end.
    pub in_buffer: u32,
}

fn pipe_info(h: &OwnedHandle) -> Result<PipeInfo> {
    let (mut flags, mut out, mut inb, mut max) = (NAMED_PIPE_MODE(0), 0u32, 0u32, 0u32);
    // SAFETY: valid pipe handle; every out-pointer is valid for the call.
    unsafe { GetNamedPipeInfo(raw(h), Some(&mut flags), Some(&mut out), Some(&mut inb), Some(&mut max)) }
        .map_err(|e| os("GetNamedPipeInfo", "reading the pipe's settings", e))?;
    Ok(PipeInfo { message: flags.0 & PIPE_TYPE_MESSAGE.0 != 0, max_instances: max, out_buffer: out, in_buffer: inb })
}

/// The server end: one pipe instance, owned; closed on drop.
#[derive(Debug)]
pub struct PipeServer {
    handle: OwnedHandle,
    name: PipeName,
    read_since_connect: bool,
}

impl PipeServer {
    /// The name this instance serves.
    pub fn name(&self) -> &PipeName {
        &self.name
    }

    /// The owned handle (for queries this module does not wrap).
    pub fn handle(&self) -> &OwnedHandle {
        &self.handle
    }

    fn what(&self, doing: &'static str) -> impl Fn() -> String + '_ {
        move || format!("{doing} on {}", self.name)
    }

    /// Waits for a client (`ConnectNamedPipe`), at most `timeout`. A client that connected
    /// before the call (`ERROR_PIPE_CONNECTED`) counts as connected.
    pub fn connect(&mut self, timeout: Duration) -> Result<()> {
        let (h, name) = (&self.handle, &self.name);
        let what = move || format!("waiting for a client on {name}");
        let r = overlapped(h, "ConnectNamedPipe", &what, timeout, |ov| {
            // SAFETY: `ov` stays alive until `overlapped` has seen the operation complete.
            unsafe { ConnectNamedPipe(raw(h), Some(ov)) }
        });
        match r {
            Ok(_) => {}
            Err(Error::Os { code, .. }) if code == OsCode::Win32(ERROR_PIPE_CONNECTED.0) => {}
            Err(e) => return Err(e),
        }
        self.read_since_connect = false;
        Ok(())
    }

    /// Ends the current client's connection (`DisconnectNamedPipe`); the instance can connect again.
    pub fn disconnect(&mut self) -> Result<()> {
        // SAFETY: valid pipe handle owned by self.
        unsafe { DisconnectNamedPipe(raw(&self.handle)) }
            .map_err(|e| os("DisconnectNamedPipe", format!("disconnecting {}", self.name), e))
    }

    /// One read, at most `timeout`.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        let r = read_on(&self.handle, &self.what("reading"), buf, timeout)?;
        self.read_since_connect = true;
        Ok(r)
    }

    /// Reads one whole message (message read mode), joining `ERROR_MORE_DATA` parts; a message
    /// longer than `max` is an error.
    pub fn read_message(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>> {
        let r = read_message_on(&self.handle, &self.what("reading a message"), max, timeout)?;
        self.read_since_connect = true;
        Ok(r)
    }

    /// One write (one message in message mode), at most `timeout`; returns bytes written.
    pub fn write(&mut self, data: &[u8], timeout: Duration) -> Result<usize> {
        write_on(&self.handle, &self.what("writing"), data, timeout)
    }

    /// Writes all of `data`, at most `timeout` in total.
    pub fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        write_all_on(&self.handle, &self.what("writing"), data, timeout)
    }

    /// Waits until the client has read everything written (`FlushFileBuffers`).
    pub fn flush(&mut self) -> Result<()> {
        // SAFETY: valid pipe handle owned by self.
        unsafe { FlushFileBuffers(raw(&self.handle)) }
            .map_err(|e| os("FlushFileBuffers", format!("flushing {}", self.name), e))
    }

    /// Impersonates the connected client on this thread (`ImpersonateNamedPipeClient`) until
    /// the returned guard drops, which always reverts.
    ///
    /// Windows refuses (`ERROR_CANNOT_IMPERSONATE`) until the server has read from the client;
    /// and success may still give only an Identification-level token: look at
    /// [`Impersonation::level`] before acting for the client.
    pub fn impersonate(&self) -> Result<Impersonation<'_>> {
        // SAFETY: valid pipe handle. On success this thread carries the client's token; the
        // guard's drop reverts it.
        unsafe { ImpersonateNamedPipeClient(raw(&self.handle)) }
            .map_err(|e| os("ImpersonateNamedPipeClient", format!("impersonating the client of {}", self.name), e))?;
        Ok(Impersonation::new())
    }

    /// Whether this server has read since its last connect (impersonation needs it on Windows).
    pub fn has_read(&self) -> bool {
        self.read_since_connect
    }

    /// The connected client's process id (`GetNamedPipeClientProcessId`).
    pub fn client_process_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeClientProcessId", GetNamedPipeClientProcessId)
    }

    /// The connected client's session id (`GetNamedPipeClientSessionId`).
    pub fn client_session_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeClientSessionId", GetNamedPipeClientSessionId)
    }

    /// The server process id as a client would see it (`GetNamedPipeServerProcessId`).
    pub fn server_process_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeServerProcessId", GetNamedPipeServerProcessId)
    }

    /// The pipe's security descriptor, read from this end.
    pub fn security(&self) -> Result<SecurityDescriptor> {
        SecurityDescriptor::of_handle(&self.handle)
    }

    /// How many instances of this name exist now (`GetNamedPipeHandleStateW`).
    pub fn instance_count(&self) -> Result<u32> {
        current_instances(&self.handle)
    }
}

/// The SQOS flags a client passes to `CreateFileW`: how far the server may use its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sqos {
    /// `SECURITY_ANONYMOUS` ... `SECURITY_DELEGATION`.
    pub level: ImpersonationLevel,
    /// `SECURITY_EFFECTIVE_ONLY`: only the enabled parts of the client's token are usable.
    pub effective_only: bool,
    /// `SECURITY_CONTEXT_TRACKING`: dynamic tracking instead of a static snapshot.
    pub context_tracking: bool,
}

impl Sqos {
    /// The given level, static tracking, not effective-only.
    pub fn level(level: ImpersonationLevel) -> Self {
        Sqos { level, effective_only: false, context_tracking: false }
    }
}

/// Options for opening a pipe as a client (`CreateFileW` on a pipe path).
#[derive(Clone, Debug)]
pub struct ClientOptions {
    read: bool,
    write: bool,
    read_control: bool,
    sqos: Option<Sqos>,
    read_mode: ReadMode,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientOptions {
    /// Read and write access, SQOS Identification (the server may learn who the client is but
    /// not act as it), byte read mode.
    pub fn new() -> Self {
        ClientOptions {
            read: true,
            write: true,
            read_control: false,
            sqos: Some(Sqos::level(ImpersonationLevel::Identification)),
            read_mode: ReadMode::Byte,
        }
    }

    /// `GENERIC_READ`.
    pub fn read(mut self, on: bool) -> Self {
        self.read = on;
        self
    }

    /// `GENERIC_WRITE`.
    pub fn write(mut self, on: bool) -> Self {
        self.write = on;
        self
    }

    /// `READ_CONTROL`, so the pipe's security descriptor can be read from the client side.
    pub fn read_control(mut self, on: bool) -> Self {
        self.read_control = on;
        self
    }

    /// The SQOS to send; `None` sends no `SECURITY_SQOS_PRESENT` flag at all, which lets the
    /// server impersonate at `SecurityImpersonation` (what many IPC crates do).
    pub fn sqos(mut self, sqos: Option<Sqos>) -> Self {
        self.sqos = sqos;
        self
    }

    /// The read mode set with `SetNamedPipeHandleState` after the open.
    pub fn read_mode(mut self, m: ReadMode) -> Self {
        self.read_mode = m;
        self
    }

    /// Opens `name` once. `ERROR_FILE_NOT_FOUND`: no instance; `ERROR_PIPE_BUSY`: every
    /// instance is taken; `ERROR_ACCESS_DENIED`: the DACL refused.
    pub fn open(&self, name: &PipeName) -> Result<PipeClient> {
        let mut access = 0u32;
        if self.read {
            access |= GENERIC_READ.0;
        }
        if self.write {
            access |= GENERIC_WRITE.0;
        }
        if self.read_control {
            access |= READ_CONTROL.0;
        }
        let mut flags = FILE_FLAG_OVERLAPPED;
        if let Some(q) = self.sqos {
            flags |= SECURITY_SQOS_PRESENT | FILE_FLAGS_AND_ATTRIBUTES((q.level as u32) << 16);
            if q.effective_only {
                flags |= SECURITY_EFFECTIVE_ONLY;
            }
            if q.context_tracking {
                flags |= SECURITY_CONTEXT_TRACKING;
            }
        }
        let w = wide("pipe name", name.as_str())?;
        // SAFETY: `w` is NUL-terminated and outlives the call; no template handle.
        let h = unsafe { CreateFileW(pcwstr(&w), access, FILE_SHARE_NONE, None, OPEN_EXISTING, flags, None) }
            .map_err(|e| os("CreateFileW", format!("opening {name} as a client"), e))?;
        let client = PipeClient { handle: own(h), name: name.clone() };
        if self.read_mode == ReadMode::Message {
            let mode = PIPE_READMODE_MESSAGE;
            // SAFETY: valid pipe handle; `mode` outlives the call.
            unsafe { SetNamedPipeHandleState(raw(&client.handle), Some(&mode), None, None) }
                .map_err(|e| os("SetNamedPipeHandleState", format!("setting message read mode on {name}"), e))?;
        }
        Ok(client)
    }

    /// Opens `name`, waiting while every instance is busy (`WaitNamedPipeW`) or none exists
    /// yet, at most `timeout`. Other errors return at once.
    pub fn open_wait(&self, name: &PipeName, timeout: Duration) -> Result<PipeClient> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.open(name) {
                // A single attempt (no time to wait) reports the OS's answer itself.
                Err(e) if timeout.is_zero() => return Err(e),
                Err(e) if matches!(e.os_code(), Some(OsCode::PIPE_BUSY) | Some(OsCode::FILE_NOT_FOUND)) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout { context: format!("opening {name} ({e})"), after: timeout });
                    }
                    if e.is_pipe_busy() {
                        let w = wide("pipe name", name.as_str())?;
                        // SAFETY: `w` is NUL-terminated; the wait is bounded by `left`.
                        let _ = unsafe { WaitNamedPipeW(pcwstr(&w), super::sys::millis(left).max(1)) };
                    } else {
                        // No instance yet: the server has not created one. Poll, bounded by the deadline.
                        std::thread::sleep(left.min(Duration::from_millis(5)));
                    }
                }
                other => return other,
            }
        }
    }
}

/// The settings of the instance a client is connected to.
pub(crate) fn client_info(c: &PipeClient) -> Result<PipeInfo> {
    pipe_info(&c.handle)
}

/// The client end of a pipe, owned; closed on drop.
#[derive(Debug)]
pub struct PipeClient {
    handle: OwnedHandle,
    name: PipeName,
}

impl PipeClient {
    /// The path this client opened.
    pub fn name(&self) -> &PipeName {
        &self.name
    }

    /// The owned handle.
    pub fn handle(&self) -> &OwnedHandle {
        &self.handle
    }

    fn what(&self, doing: &'static str) -> impl Fn() -> String + '_ {
        move || format!("{doing} on {} (client)", self.name)
    }

    /// One read, at most `timeout`.
    pub fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        read_on(&self.handle, &self.what("reading"), buf, timeout)
    }

    /// One whole message (message read mode), at most `max` bytes.
    pub fn read_message(&mut self, max: usize, timeout: Duration) -> Result<Vec<u8>> {
        read_message_on(&self.handle, &self.what("reading a message"), max, timeout)
    }

    /// One write (one message in message mode).
    pub fn write(&mut self, data: &[u8], timeout: Duration) -> Result<usize> {
        write_on(&self.handle, &self.what("writing"), data, timeout)
    }

    /// Writes all of `data`, at most `timeout` in total.
    pub fn write_all(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        write_all_on(&self.handle, &self.what("writing"), data, timeout)
    }

    /// The server's process id (`GetNamedPipeServerProcessId`): a client that checks it
    /// defeats squatting.
    pub fn server_process_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeServerProcessId", GetNamedPipeServerProcessId)
    }

    /// The server's session id (`GetNamedPipeServerSessionId`).
    pub fn server_session_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeServerSessionId", GetNamedPipeServerSessionId)
    }

    /// This client's own process id as the pipe records it (`GetNamedPipeClientProcessId`).
    pub fn client_process_id(&self) -> Result<u32> {
        pid_query(&self.handle, "GetNamedPipeClientProcessId", GetNamedPipeClientProcessId)
    }

    /// The pipe's security descriptor, read from the client side (open with `read_control`).
    pub fn security(&self) -> Result<SecurityDescriptor> {
        SecurityDescriptor::of_handle(&self.handle)
    }

    /// How many instances of the name exist now.
    pub fn instance_count(&self) -> Result<u32> {
        current_instances(&self.handle)
    }

    /// The instance's settings (type, max instances, buffers), as the server created it.
    pub fn info(&self) -> Result<PipeInfo> {
        pipe_info(&self.handle)
    }
}
