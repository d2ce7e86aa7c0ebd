//! Running a program under Wine with a trace of the calls that matter ([`crate::calls`]).
//!
//! Wine's `relay` channel logs each call into a listed export, with its arguments, to the Unix
//! standard error of the calling process. A Windows process's Unix standard error is the one
//! its Wine ancestors started with, whatever handles `CreateProcess` is given (measured: a
//! `2>` redirection in `cmd` does not catch it). So the program is started through a Unix shell
//! (Wine starts Unix executables given to `CreateProcess`) that points its standard error at a
//! temporary file of the harness's own and then runs Wine's loader on the program, with
//! `WINEDEBUG=+pid,+relay` in the environment and the exports of [`RELAY_INCLUDE`] in the
//! prefix's `HKCU\Software\Wine\Debug\RelayInclude`, the only place Wine 8.0 reads that list.
//! `RelayFromExclude` is narrowed to the window-system DLLs, so a call the program makes through
//! `kernel32`'s forward to `kernelbase` is seen (the parser keeps the outermost one).
//!
//! The traced program is not this process's child (the shell's Wine loader starts it), so it is
//! attached by the process id its first trace line names, put into the harness's job, and
//! ended like any other.

use super::probe::wine_version;
use super::process::{adopt, Child, ProcessSpec};
use crate::calls::{CallTrace, RELAY_INCLUDE};
use crate::error::{Error, Result};
use crate::target::Limits;
use std::io::Read;
use std::time::{Duration, Instant};
use windows::core::{s, w, PCWSTR};
use windows::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
use windows::Win32::System::Memory::{GetProcessHeap, HeapFree, HEAP_FLAGS};

/// The shell run through Wine: standard error to the trace file, then Wine's loader on the
/// program. `$1` is the trace file, the rest the loader's command line.
const WRAPPER: &str =
    r#"exec 2>>"$1"; shift; loader=${WINE_LOADER:-$(command -v wine64 || command -v wine)}; exec "$loader" "$@""#;

/// The Unix path of a Windows path, from Wine's `kernel32.wine_get_unix_file_name`.
fn unix_path(path: &std::path::Path) -> Result<String> {
    let wide: Vec<u16> = path.as_os_str().to_string_lossy().encode_utf16().chain([0]).collect();
    // SAFETY: kernel32 is always loaded; GetModuleHandleW adds no reference.
    let k32 = unsafe { GetModuleHandleW(w!("kernel32.dll")) }
        .map_err(|e| Error::Unsupported(format!("kernel32 not found: {e}")))?;
    // SAFETY: looking up an export by a NUL-terminated name.
    let f = unsafe { GetProcAddress(k32, s!("wine_get_unix_file_name")) }
        .ok_or_else(|| Error::Unsupported("not under Wine: no wine_get_unix_file_name".into()))?;
    // SAFETY: Wine documents `char * CDECL wine_get_unix_file_name(LPCWSTR)`, returning a
    // NUL-terminated buffer from the process heap, or NULL.
    let get: extern "C" fn(PCWSTR) -> *mut std::ffi::c_char = unsafe { std::mem::transmute(f) };
    let p = get(PCWSTR(wide.as_ptr()));
    if p.is_null() {
        return Err(Error::invalid("trace file", format!("{} has no Unix path", path.display())));
    }
    // SAFETY: a NUL-terminated string Wine just returned.
    let text = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: the buffer came from the process heap (Wine's documented contract) and is freed once.
    let _ = unsafe {
        HeapFree(GetProcessHeap().map_err(|e| Error::Unsupported(e.to_string()))?, HEAP_FLAGS(0), Some(p.cast()))
    };
    Ok(text)
}

/// Puts the list of traced exports into the prefix's relay settings (idempotent).
fn configure_relay() -> Result<()> {
    for (value, data) in
        [("RelayInclude", RELAY_INCLUDE.join(";")), ("RelayFromExclude", "winex11.drv;winemac.drv;user32;gdi32".into())]
    {
        let out = std::process::Command::new("reg")
            .args(["add", r"HKCU\Software\Wine\Debug", "/v", value, "/t", "REG_SZ", "/d", &data, "/f"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| Error::Unsupported(format!("running reg.exe to set {value}: {e}")))?;
        if !out.success() {
            return Err(Error::Unsupported(format!("reg.exe could not set {value} ({out})")));
        }
    }
    Ok(())
}

/// A program running under Wine with its calls traced.
#[derive(Debug)]
pub struct TracedProcess {
    child: Child,
    wrapper: std::process::Child,
    file: tempfile::NamedTempFile,
}

impl TracedProcess {
    /// Starts `spec` traced, and waits at most `timeout` for its first trace line (which names
    /// its process id). Only under Wine.
    pub fn spawn(spec: &ProcessSpec, timeout: Duration) -> Result<TracedProcess> {
        if wine_version().is_none() {
            return Err(Error::Unsupported("a trace of calls needs Wine's relay channel".into()));
        }
        configure_relay()?;
        let file = tempfile::Builder::new()
            .prefix("ph-calls-")
            .suffix(".log")
            .tempfile()
            .map_err(|e| Error::Unsupported(format!("trace file: {e}")))?;
        let trace_unix = unix_path(file.path())?;
        let mut cmd = std::process::Command::new(r"Z:\bin\sh");
        cmd.args(["-c", WRAPPER, "sh", &trace_unix]).arg(&spec.program).args(&spec.args);
        cmd.env("WINEDEBUG", "+pid,+relay");
        for (k, v) in &spec.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &spec.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        let mut wrapper = cmd.spawn().map_err(|e| Error::Unsupported(format!("starting /bin/sh through Wine: {e}")))?;
        let deadline = Instant::now() + timeout;
        let pid = loop {
            let mut text = String::new();
            let _ = std::fs::File::open(file.path()).and_then(|mut f| f.read_to_string(&mut text));
            if let Some(pid) =
                text.lines().find_map(|l| l.split_once(':').and_then(|(p, _)| u32::from_str_radix(p, 16).ok()))
            {
                break pid;
            }
            if Instant::now() >= deadline {
                let _ = wrapper.kill();
                return Err(Error::Timeout {
                    context: format!("the first trace line of {}", spec.program.display()),
                    after: timeout,
                });
            }
            if let Ok(Some(status)) = wrapper.try_wait() {
                return Err(Error::invalid(
                    "traced program",
                    format!("{} ended before it ran ({status})", spec.program.display()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20)); // polling a file another process writes, under a deadline
        };
        let child = Child::attach(pid)?;
        let _ = adopt(pid, &Limits::default());
        Ok(TracedProcess { child, wrapper, file })
    }

    /// The traced program's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The traced program itself, to wait for or end.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The calls the program has made so far (its process only).
    pub fn calls(&self) -> Result<CallTrace> {
        let bytes =
            std::fs::read(self.file.path()).map_err(|e| Error::Unsupported(format!("reading the trace: {e}")))?;
        Ok(CallTrace::parse_relay(&String::from_utf8_lossy(&bytes), Some(self.child.id())))
    }

    /// Ends the program (if still running) and returns every call it made.
    pub fn finish(mut self) -> Result<CallTrace> {
        if matches!(self.child.wait(Duration::ZERO), Ok(None)) {
            self.child.kill()?;
        }
        // The shell exec'd Wine's loader, which ran the program: it ends with it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.wrapper.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20)); // polling an exit, under a deadline
        }
        self.calls()
    }
}

impl Drop for TracedProcess {
    fn drop(&mut self) {
        let _ = self.wrapper.kill();
    }
}

/// How long a traced server has to make its first instance.
const FIRST_INSTANCE: Duration = Duration::from_secs(30);
/// How long it has, after a client connected, to make its next one (a server that makes no
/// more is judged on the instances it made).
const NEXT_INSTANCE: Duration = Duration::from_secs(5);

fn pipe_creates(t: &CallTrace) -> usize {
    t.calls.iter().filter(|c| matches!(c.call, crate::calls::Call::CreateNamedPipe { .. })).count()
}

/// Waits (at most `timeout`) until the traced program has made `n` pipe creates; the calls so far.
fn until_creates(p: &mut TracedProcess, n: usize, timeout: Duration) -> Result<CallTrace> {
    let deadline = Instant::now() + timeout;
    loop {
        let t = p.calls()?;
        if pipe_creates(&t) >= n || Instant::now() >= deadline {
            return Ok(t);
        }
        if matches!(p.child.wait(Duration::ZERO), Ok(Some(_))) {
            return Ok(t);
        }
        std::thread::sleep(Duration::from_millis(20)); // polling a file Wine writes, under a deadline
    }
}

/// Runs `target`'s server traced on `endpoint`, connects one client, and returns its calls.
pub fn trace_server<B: crate::backend::Backend>(
    backend: &B,
    target: &crate::target::Target,
    endpoint: &str,
) -> Result<CallTrace> {
    let spec = ProcessSpec {
        program: target.program.clone(),
        args: target.args_for(endpoint, &backend.endpoint_path(endpoint)),
        cwd: target.cwd.clone(),
        env: target.env.clone(),
    };
    let mut proc = TracedProcess::spawn(&spec, FIRST_INSTANCE)?;
    let first = until_creates(&mut proc, 1, FIRST_INSTANCE)?;
    if pipe_creates(&first) >= 1 {
        if let Ok(client) = backend.connect(endpoint, &crate::backend::ConnectSpec::default()) {
            until_creates(&mut proc, 2, NEXT_INSTANCE)?;
            drop(client);
        }
    }
    proc.finish()
}

/// How long a traced client has to open the harness's instance.
const CLIENT_CONNECT: Duration = Duration::from_secs(30);

/// Runs the client under test (`target`) traced against an instance of the harness's own on
/// `endpoint`, reads what it sends, and returns its calls.
pub fn trace_client<B: crate::backend::Backend>(
    backend: &B,
    target: &crate::target::Target,
    endpoint: &str,
) -> Result<CallTrace> {
    use crate::backend::Listener;
    let mut listener = backend.listen(endpoint, &crate::backend::ListenSpec::default())?;
    let spec = ProcessSpec {
        program: target.program.clone(),
        args: target.args_for(endpoint, &backend.endpoint_path(endpoint)),
        cwd: target.cwd.clone(),
        env: target.env.clone(),
    };
    let proc = TracedProcess::spawn(&spec, CLIENT_CONNECT)?;
    if listener.accept(CLIENT_CONNECT).is_ok() {
        let mut buf = [0u8; 4096];
        let _ = listener.recv(&mut buf, Duration::from_secs(5));
    }
    drop(listener);
    proc.finish()
}
