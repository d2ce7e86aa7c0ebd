//! Waiting, with a deadline, until the server has read what a client wrote: `FlushFileBuffers`
//! on the client's end of a pipe returns once the other end has read everything written, or
//! the pipe breaks (documented for the server end; the probe's `flush_waits_for_reader`
//! measures it for the client end on the machine it runs on).
//!
//! `FlushFileBuffers` blocks its thread whatever the handle's flags, so each flush runs on a
//! thread of its own (kept for the next flush once it has returned), on a duplicate of the
//! client's handle, and signals an event when it returns. Meanwhile the calling thread reads (and discards) what the server sends, so that a
//! server blocked on writing its answer, or flushing it, still gets to read the rest. A flush
//! that misses the deadline is cancelled (`CancelIoEx` on the handle, `CancelSynchronousIo` on
//! its thread) and joined; one that the platform cannot cancel keeps only its own duplicate
//! handle and ends when the pipe does (its server is killed, or the client ends).

use super::pipe::PipeClient;
use super::sys::{code_of, os, own, raw};
use crate::error::{Error, OsCode, Result};
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use windows::core::PCWSTR;
use windows::Win32::Foundation::{ERROR_IO_PENDING, ERROR_MORE_DATA, HANDLE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows::Win32::Storage::FileSystem::{FlushFileBuffers, ReadFile};
use windows::Win32::System::Threading::{CreateEventW, SetEvent, WaitForMultipleObjects, WaitForSingleObject};
use windows::Win32::System::IO::{CancelIoEx, CancelSynchronousIo, GetOverlappedResult, OVERLAPPED};

/// How the wait for the server to read a client's writes ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// The server has read everything the client wrote (the flush returned).
    Read,
    /// The pipe broke or was disconnected first (`ERROR_BROKEN_PIPE`, `ERROR_NO_DATA`,
    /// `ERROR_PIPE_NOT_CONNECTED`): the server closed its end or died.
    Closed,
    /// Neither within the deadline: the flush was cancelled.
    TimedOut,
}

fn event(context: &str) -> Result<OwnedHandle> {
    // SAFETY: an unnamed manual-reset event with default security.
    let e = unsafe { CreateEventW(None, true, false, PCWSTR::null()) }.map_err(|e| os("CreateEventW", context, e))?;
    Ok(own(e))
}

/// A std call's failure as [`Error::Os`], keeping the Win32 code.
fn io_error(call: &'static str, context: String, e: &std::io::Error) -> Error {
    Error::Os { call, code: OsCode::Win32(e.raw_os_error().unwrap_or(0) as u32), context }
}

fn broken(code: OsCode) -> bool {
    matches!(code, OsCode::BROKEN_PIPE | OsCode::NO_DATA | OsCode::PIPE_NOT_CONNECTED)
}

/// One flush for a flush thread: the handle to flush, the event to signal, where to put the
/// result.
struct Job {
    handle: Arc<OwnedHandle>,
    done: Arc<OwnedHandle>,
    result: Arc<Mutex<Option<Result<()>>>>,
}

/// A thread that runs flushes, one at a time, and is kept for the next case once its flush has
/// returned (starting a thread costs milliseconds under Wine, a case over a pipe about ten).
struct FlushThread {
    jobs: mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

/// The flush threads idle between cases, at most [`IDLE_THREADS`].
static IDLE: Mutex<Vec<FlushThread>> = Mutex::new(Vec::new());
const IDLE_THREADS: usize = 8;

impl FlushThread {
    fn take() -> std::io::Result<Self> {
        if let Some(t) = IDLE.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(t);
        }
        let (jobs, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new().name("pipe-flush".into()).stack_size(64 * 1024).spawn(move || {
            // Ends when its sender goes (a flush thread dropped rather than kept).
            while let Ok(job) = rx.recv() {
                // SAFETY: `job.handle` is a valid pipe handle, kept alive by the job's Arc.
                let r = unsafe { FlushFileBuffers(raw(&job.handle)) }
                    .map_err(|e| os("FlushFileBuffers", "flushing a client", e));
                if let Ok(mut slot) = job.result.lock() {
                    *slot = Some(r);
                }
                // SAFETY: a valid event handle, kept alive by the job's Arc.
                let _ = unsafe { SetEvent(raw(&job.done)) };
            }
        })?;
        Ok(FlushThread { jobs, thread })
    }

    /// Back to the idle list, once its flush has returned.
    fn keep(self) {
        if let Ok(mut idle) = IDLE.lock() {
            if idle.len() < IDLE_THREADS {
                idle.push(self);
            }
        }
    }
}

/// A `FlushFileBuffers` running on a flush thread.
pub(crate) struct FlushWorker {
    done: Arc<OwnedHandle>,
    /// The client's handle, duplicated: the flush's own, so that a flush that cannot be
    /// cancelled never uses a handle the caller has closed.
    handle: Arc<OwnedHandle>,
    result: Arc<Mutex<Option<Result<()>>>>,
    thread: Option<FlushThread>,
}

impl FlushWorker {
    /// Starts flushing `client`'s end.
    pub(crate) fn start(client: &PipeClient) -> Result<Self> {
        let what = || format!("flushing {} (client)", client.name());
        let handle = Arc::new(client.handle().try_clone().map_err(|e| io_error("DuplicateHandle", what(), &e))?);
        let done = Arc::new(event(&what())?);
        let result = Arc::new(Mutex::new(None));
        let thread = FlushThread::take().map_err(|e| io_error("CreateThread", what(), &e))?;
        let job = Job { handle: Arc::clone(&handle), done: Arc::clone(&done), result: Arc::clone(&result) };
        if thread.jobs.send(job).is_err() {
            return Err(Error::Peer(format!("a flush thread ended early while {}", what())));
        }
        Ok(FlushWorker { done, handle, result, thread: Some(thread) })
    }

    /// The event signalled when the flush has returned.
    pub(crate) fn event(&self) -> HANDLE {
        raw(&self.done)
    }

    /// True once the flush has returned, waiting at most `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        // SAFETY: a valid event handle.
        unsafe { WaitForSingleObject(self.event(), super::sys::millis(timeout)) == WAIT_OBJECT_0 }
    }

    fn outcome(&self) -> Flushed {
        match self.result.lock().ok().and_then(|mut r| r.take()) {
            Some(Ok(())) => Flushed::Read,
            Some(Err(Error::Os { code, .. })) if broken(code) => Flushed::Closed,
            // Any other failure of the flush: the server's state is unknown, as after a
            // timeout.
            _ => Flushed::TimedOut,
        }
    }

    /// The flush's result, once [`FlushWorker::wait`] or the event said it returned.
    pub(crate) fn finish(mut self) -> Flushed {
        if !self.wait(Duration::ZERO) {
            return self.stop();
        }
        if let Some(t) = self.thread.take() {
            t.keep();
        }
        self.outcome()
    }

    /// Cancels the flush and waits for it; a flush that ends anyway reports how.
    pub(crate) fn cancel(mut self) -> Flushed {
        self.stop()
    }

    fn stop(&mut self) -> Flushed {
        let Some(thread) = self.thread.take() else { return Flushed::TimedOut };
        // The flush may not have started yet when the first cancel comes: cancel until it
        // has returned, a bounded number of times.
        for _ in 0..200 {
            // SAFETY: valid handles; cancelling I/O that is not pending is harmless.
            unsafe {
                let _ = CancelIoEx(raw(&self.handle), None);
                let _ = CancelSynchronousIo(HANDLE(thread.thread.as_raw_handle()));
            }
            if self.wait(Duration::from_millis(10)) {
                thread.keep();
                return self.outcome();
            }
        }
        // Not cancellable here: the thread keeps its own handle, ends with the pipe, and is
        // not kept.
        drop(thread);
        Flushed::TimedOut
    }
}

impl Drop for FlushWorker {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop();
        }
    }
}

/// An overlapped read whose bytes are thrown away, cancelled and waited out on drop.
struct Drain {
    ov: Box<OVERLAPPED>,
    buf: Box<[u8]>,
    event: OwnedHandle,
    handle: HANDLE,
    pending: bool,
}

impl Drain {
    fn new(client: &PipeClient) -> Result<Self> {
        let event = event("draining a client")?;
        let ov = Box::new(OVERLAPPED { hEvent: raw(&event), ..Default::default() });
        Ok(Drain {
            ov,
            buf: vec![0u8; 16 * 1024].into_boxed_slice(),
            event,
            handle: raw(client.handle()),
            pending: false,
        })
    }

    /// Issues the next read; false when the pipe cannot be read any more (broken, closed).
    fn start(&mut self) -> bool {
        // SAFETY: `buf` and `ov` are boxed and live until the operation is seen complete
        // (`complete`) or cancelled and waited out (`drop`).
        let r = unsafe { ReadFile(self.handle, Some(&mut self.buf), None, Some(&mut *self.ov)) };
        match r {
            Ok(()) => self.pending = true,
            Err(e) if matches!(code_of(&e), c if c == OsCode::Win32(ERROR_IO_PENDING.0) || c == OsCode::Win32(ERROR_MORE_DATA.0)) => {
                self.pending = true
            }
            Err(_) => self.pending = false,
        }
        self.pending
    }

    /// After the event fired: true when data came (read again), false at the pipe's end.
    fn complete(&mut self) -> bool {
        let mut n = 0u32;
        // SAFETY: the event is signalled: the operation on `ov` has completed.
        let r = unsafe { GetOverlappedResult(self.handle, &*self.ov, &mut n, false) };
        self.pending = false;
        match r {
            Ok(()) => true,
            Err(e) => code_of(&e) == OsCode::Win32(ERROR_MORE_DATA.0),
        }
    }
}

impl Drop for Drain {
    fn drop(&mut self) {
        if self.pending {
            let mut n = 0u32;
            // SAFETY: cancel the read on `ov`, then wait (bWait) until the OS is done with
            // `ov` and `buf`, before they are freed.
            unsafe {
                let _ = CancelIoEx(self.handle, Some(&*self.ov));
                let _ = GetOverlappedResult(self.handle, &*self.ov, &mut n, true);
            }
        }
    }
}

/// The most connections [`close_when_read`] waits on at once (two wait handles each, within
/// `MAXIMUM_WAIT_OBJECTS`).
pub const MAX_CLIENTS: usize = 30;

struct Slot {
    client: Option<PipeClient>,
    flush: Option<FlushWorker>,
    drain: Option<Drain>,
    outcome: Flushed,
}

/// Waits, at most `timeout` in all, until the server has read everything each client wrote,
/// reading and discarding what it sends meanwhile; each client is closed as soon as its flush
/// returns (so a server of one connection at a time moves on to the next), the rest at the
/// deadline. One outcome per client, in order. More than [`MAX_CLIENTS`] is an error.
pub fn close_when_read(clients: Vec<PipeClient>, timeout: Duration) -> Result<Vec<Flushed>> {
    if clients.len() > MAX_CLIENTS {
        return Err(Error::invalid("clients", format!("{} connections, at most {MAX_CLIENTS}", clients.len())));
    }
    let deadline = Instant::now() + timeout;
    let mut slots = Vec::with_capacity(clients.len());
    for client in clients {
        let flush = FlushWorker::start(&client)?;
        let mut drain = Drain::new(&client)?;
        let drain = drain.start().then_some(drain);
        slots.push(Slot { client: Some(client), flush: Some(flush), drain, outcome: Flushed::TimedOut });
    }
    loop {
        // (slot, is the flush) for each handle waited on.
        let mut which = Vec::new();
        let mut handles = Vec::new();
        for (i, s) in slots.iter().enumerate() {
            if let Some(f) = &s.flush {
                which.push((i, true));
                handles.push(f.event());
            }
            if let Some(d) = &s.drain {
                which.push((i, false));
                handles.push(raw(&d.event));
            }
        }
        if handles.is_empty() {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // SAFETY: every handle is a valid event owned by a slot that outlives the call.
        let w = unsafe { WaitForMultipleObjects(&handles, false, super::sys::millis(left)) };
        if w == WAIT_TIMEOUT {
            break;
        }
        let k = w.0.wrapping_sub(WAIT_OBJECT_0.0) as usize;
        let Some(&(i, is_flush)) = which.get(k) else {
            return Err(super::sys::last_error("WaitForMultipleObjects", "waiting for the server to read"));
        };
        let s = &mut slots[i];
        if is_flush {
            if let Some(f) = s.flush.take() {
                s.outcome = f.finish();
            }
            // Read: close now, nothing is lost.
            s.drain = None;
            s.client = None;
        } else if let Some(d) = s.drain.as_mut() {
            if !(d.complete() && d.start()) {
                s.drain = None;
            }
        }
    }
    Ok(slots
        .into_iter()
        .map(|mut s| {
            s.drain = None;
            let outcome = match s.flush.take() {
                Some(f) => f.cancel(),
                None => s.outcome,
            };
            // A flush that ended between the deadline and its cancel still counts.
            drop(s.client);
            outcome
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::{ClientOptions, PipeName, ServerOptions};

    const IO: Duration = Duration::from_secs(5);

    fn pair(out_buffer: u32) -> (crate::windows::PipeServer, PipeClient) {
        let name = PipeName::unique("ph-flush-test");
        let server = ServerOptions::new().out_buffer_size(out_buffer).create(&name).expect("instance");
        let client = ClientOptions::new().open(&name).expect("client");
        (server, client)
    }

    /// A server that never reads: the wait ends at its deadline, not before.
    #[test]
    fn nothing_read_is_a_timeout_at_the_deadline() {
        let (_server, mut client) = pair(4096);
        client.write_all(b"unread", IO).expect("write");
        let t = Instant::now();
        let out = close_when_read(vec![client], Duration::from_millis(300)).expect("wait");
        assert_eq!(out, vec![Flushed::TimedOut]);
        assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    }

    /// The client wrote before the server's `ConnectNamedPipe`: the wait lasts until the
    /// server has connected and read all of it, and what was written reaches it.
    #[test]
    fn the_wait_ends_when_the_server_has_read_everything() {
        let (mut server, mut client) = pair(4096);
        client.write_all(b"0123456789", IO).expect("write");
        let reader = std::thread::spawn(move || {
            server.connect(IO).expect("connect");
            let mut got = Vec::new();
            let mut buf = [0u8; 3];
            while got.len() < 10 {
                let r = server.read(&mut buf, IO).expect("read");
                got.extend_from_slice(&buf[..r.len]);
            }
            // Then it waits for the client to go: end of stream once it closed.
            let end = server.read(&mut buf, IO);
            (got, end.map(|r| r.len).map_err(|e| e.os_code()))
        });
        let out = close_when_read(vec![client], IO).expect("wait");
        assert_eq!(out, vec![Flushed::Read]);
        let (got, end) = reader.join().expect("reader");
        assert_eq!(got, b"0123456789");
        assert_eq!(end, Err(Some(OsCode::BROKEN_PIPE)), "the client closed once all was read");
    }

    /// A server that answers with more than its pipe's buffer holds before it reads the rest:
    /// its writes complete only as the client reads them, so the client drains while it waits.
    #[test]
    fn answers_are_drained_while_waiting() {
        let (mut server, mut client) = pair(0);
        client.write_all(b"ab", IO).expect("write");
        let reader = std::thread::spawn(move || {
            server.connect(IO).expect("connect");
            let mut one = [0u8; 1];
            server.read(&mut one, IO).expect("first byte");
            server.write_all(&vec![7u8; 256 * 1024], IO).expect("a large answer");
            server.read(&mut one, IO).expect("second byte");
        });
        let out = close_when_read(vec![client], IO).expect("wait");
        assert_eq!(out, vec![Flushed::Read]);
        reader.join().expect("reader");
    }

    /// A server that hangs up with the case unread: closed, not a timeout.
    #[test]
    fn a_server_that_hangs_up_ends_the_wait() {
        let (mut server, mut client) = pair(4096);
        client.write_all(b"unread", IO).expect("write");
        server.connect(IO).expect("connect");
        server.disconnect().expect("disconnect");
        let out = close_when_read(vec![client], IO).expect("wait");
        assert_eq!(out, vec![Flushed::Closed]);
    }
}
