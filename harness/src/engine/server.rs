//! Starting the server under test, knowing when it is ready, keeping its output as evidence,
//! and making sure it is gone afterwards.

use super::live::Termination;
use super::service::{Service, ServiceState};
use crate::backend::{Backend, ConnectSpec};
use crate::error::{Error, Result};
use crate::target::{Readiness, Target};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How a child the harness started ended: its signal or exit code (Unix), its exit code or
/// exception status (Windows).
pub(crate) fn termination_of(status: &std::process::ExitStatus) -> Termination {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        Termination::from_unix(status.signal(), status.code()).unwrap_or(Termination::Exit { code: -1 })
    }
    #[cfg(windows)]
    {
        Termination::from_windows(status.code().unwrap_or(-1) as u32)
    }
}

/// A server's output kept as evidence, bounded: its first lines (the banner, the version), the
/// lines around each crash marker (a fatal signal, a stack trace, a panic, a sanitizer's or a
/// program's own bug report: a report printed before a long dump of state, as redis prints
/// its stack trace before its INFO output), and the newest lines. What falls between is
/// counted and said, not kept.
#[derive(Debug, Default)]
pub(crate) struct KeptOutput {
    /// The first [`KeptOutput::HEAD`] lines.
    head: Vec<String>,
    /// Lines around crash markers, with their numbers, at most [`KeptOutput::MARKED`].
    marked: Vec<(u64, String)>,
    /// The newest [`KeptOutput::TAIL`] lines after the head, with their numbers.
    tail: VecDeque<(u64, String)>,
    /// Lines seen.
    seen: u64,
    /// Lines up to this number follow a marker and are kept.
    mark_until: Option<u64>,
}

impl KeptOutput {
    /// First lines kept.
    const HEAD: usize = 40;
    /// Newest lines kept.
    const TAIL: usize = 200;
    /// Lines kept around markers, in all.
    const MARKED: usize = 400;
    /// Lines kept before a marker (the report's heading) and after it (its trace).
    const BEFORE: usize = 5;
    const AFTER: u64 = 100;

    /// Adds the next line.
    pub(crate) fn push(&mut self, line: String) {
        let n = self.seen;
        self.seen += 1;
        if self.head.len() < Self::HEAD {
            self.head.push(line);
            return;
        }
        if is_crash_marker(&line) {
            let last = self.marked.last().map(|(i, _)| *i);
            let before: Vec<(u64, String)> = self
                .tail
                .iter()
                .skip(self.tail.len().saturating_sub(Self::BEFORE))
                .filter(|(i, _)| last.is_none_or(|l| *i > l))
                .cloned()
                .collect();
            for b in before {
                if self.marked.len() < Self::MARKED {
                    self.marked.push(b);
                }
            }
            self.mark_until = Some(n + Self::AFTER);
        }
        if self.mark_until.is_some_and(|until| n <= until) && self.marked.len() < Self::MARKED {
            self.marked.push((n, line.clone()));
        }
        self.tail.push_back((n, line));
        if self.tail.len() > Self::TAIL {
            self.tail.pop_front();
        }
    }

    /// The kept lines in order, with a line saying how many were left out where some were.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut rest: std::collections::BTreeMap<u64, &String> = self.marked.iter().map(|(i, l)| (*i, l)).collect();
        rest.extend(self.tail.iter().map(|(i, l)| (*i, l)));
        let mut out = self.head.clone();
        let mut next = self.head.len() as u64;
        for (i, l) in rest {
            if i > next {
                out.push(format!("[... {} line(s) of output left out ...]", i - next));
            }
            out.push(l.clone());
            next = i + 1;
        }
        out
    }
}

/// A line that starts or belongs to a crash report, whoever printed it.
fn is_crash_marker(line: &str) -> bool {
    const MARKERS: &[&str] = &[
        "sigsegv",
        "sigbus",
        "sigill",
        "sigfpe",
        "sigabrt",
        "by signal",
        "fatal signal",
        "received signal",
        "segmentation fault",
        "stack trace",
        "backtrace",
        "bug report",
        "panicked at",
        "has overflowed its stack",
        "sanitizer",
        "runtime error:",
        "fatal error",
        "unhandled exception",
        "assertion",
    ];
    let lower = line.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

/// Adds `line` to a server's kept output ([`KeptOutput`]).
pub(crate) fn keep(kept: &Mutex<KeptOutput>, line: String) {
    if let Ok(mut k) = kept.lock() {
        k.push(line);
    }
}

/// How a start ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Started {
    /// Ready within the timeout.
    Ready,
    /// Exited before it was ready (its exit code; `None`: a signal or exception ended it).
    Exited(Option<i32>),
    /// A managed server stopped before it was ready, and its manager did not say how.
    Stopped,
    /// Neither within the timeout.
    TimedOut,
}

impl Started {
    /// How a start that ended before readiness is reported: the exit code; `None` for a
    /// signal, an exception or no status at all; [`Started::Stopped`] for a managed server
    /// whose manager did not say.
    pub fn ended(t: Option<&Termination>) -> Started {
        match t {
            Some(Termination::Stopped) => Started::Stopped,
            t => Started::Exited(t.and_then(Termination::exit_code)),
        }
    }
}

/// A running server under test: killed and reaped on drop; stdout and stderr drained all the
/// time (a chatty server never blocks) and the newest lines kept.
pub struct ServerUnderTest {
    child: Proc,
    lines: mpsc::Receiver<String>,
    kept: Arc<Mutex<KeptOutput>>,
    /// How many of its output pipes have closed, with a condition variable to wait on.
    closed: Arc<(Mutex<usize>, std::sync::Condvar)>,
    /// The endpoint of this run (as the server named it on its ready line, if it did).
    pub endpoint: String,
    requested: String,
    /// Removed once the harness has killed the server (its socket file: [`Leftover`](crate::backend::Leftover)).
    leftover: Option<crate::backend::Leftover>,
    /// The folder of the files written for this start (the plan's `[[target.files]]`):
    /// removed once the server is stopped.
    files: Option<tempfile::TempDir>,
}

/// Writes the target's files for one start in a fresh folder ([`Backend::start_folder`]),
/// each created exclusively (never through a name someone planted), with `{pipe}`,
/// `{pipe_path}` and `{dir}` filled, then gives them to the server's identity.
fn write_files<B: Backend>(backend: &B, target: &Target, endpoint: &str, path: &str) -> Result<tempfile::TempDir> {
    use std::io::Write as _;
    let folder = backend.start_folder(target)?;
    let dir = folder.path().to_string_lossy().into_owned();
    for file in &target.files {
        let at = folder.path().join(&file.name);
        let text =
            crate::target::fill(std::slice::from_ref(&file.text), endpoint, path).remove(0).replace("{dir}", &dir);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&at)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::invalid("target files", format!("writing {}: {e}", at.display())))?;
    }
    backend.give_start_folder(folder.path(), target)?;
    Ok(folder)
}

/// The server's process: a child of the harness, or a service its manager runs.
enum Proc {
    Child(Child),
    /// Boxed: a service's description is larger than a child's handle.
    Managed(Box<(crate::target::Managed, String)>),
    /// Stopped by [`ServerUnderTest::stop`].
    Gone,
}

fn drain(
    reader: impl Read + Send + 'static,
    kept: Arc<Mutex<KeptOutput>>,
    tx: Option<mpsc::Sender<String>>,
    tag: &'static str,
    closed: Arc<(Mutex<usize>, std::sync::Condvar)>,
) {
    std::thread::spawn(move || {
        // Lines as bytes: output that is not UTF-8 is kept (lossily) and drained to the end, not
        // the end of the drain (a server blocked writing to a pipe nobody reads hangs).
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // At most 64 KiB a line: a flood without newlines is cut into lines, not held.
            match std::io::Read::by_ref(&mut reader).take(64 * 1024).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let end = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let line = String::from_utf8_lossy(end.strip_suffix(b"\r").unwrap_or(end)).into_owned();
            keep(&kept, format!("{tag}: {line}"));
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
        // Closed before it is counted: whoever waits for the drains to end (a stop, then a
        // count of the harness's descriptors) must find the pipe's end already closed. Counted
        // first, the descriptor was still open for a moment after: fault_injection's census
        // saw "descriptors or handles leaked: 8 vs 7" once under load.
        drop(reader);
        let (count, cv) = &*closed;
        if let Ok(mut n) = count.lock() {
            *n += 1;
            cv.notify_all();
        }
    });
}

impl ServerUnderTest {
    /// Starts `target` on `endpoint` and puts it under the backend's supervision.
    pub fn start<B: Backend>(backend: &B, target: &Target, endpoint: &str) -> Result<Self> {
        if let Some(running) = &target.attach {
            return Err(Error::invalid(
                "target",
                format!("it attaches to a server already running at {running}: the harness does not start it (give a program instead)"),
            ));
        }
        if let Some(spec) = &target.managed {
            return Self::start_managed(backend, spec, endpoint);
        }
        let path = backend.endpoint_path(endpoint);
        let files = if target.files.is_empty() { None } else { Some(write_files(backend, target, endpoint, &path)?) };
        let mut args = target.args_for(endpoint, &path);
        if let Some(folder) = &files {
            let dir = folder.path().to_string_lossy();
            args.iter_mut().for_each(|a| *a = a.replace("{dir}", &dir));
        }
        let mut cmd = Command::new(&target.program);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &target.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &target.cwd {
            cmd.current_dir(dir);
        }
        crate::supervise::tie(&mut cmd);
        backend.prepare_command(&mut cmd, target)?;
        let mut child = crate::supervise::spawn_registered(&mut cmd, &target.limits)
            .map_err(|e| Error::invalid("target program", format!("{}: {e}", target.program.display())))?;
        if let Err(e) = crate::supervise::adopt(child.id(), &target.limits) {
            crate::supervise::release_tree(child.id());
            let _ = child.wait();
            return Err(e);
        }
        // A failure to catch signals leaves PR_SET_PDEATHSIG and the job object: not fatal.
        let _ = crate::supervise::install_signal_cleanup();
        let kept = Arc::new(Mutex::new(KeptOutput::default()));
        let closed = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            drain(out, kept.clone(), Some(tx), "stdout", closed.clone());
        }
        if let Some(err) = child.stderr.take() {
            drain(err, kept.clone(), None, "stderr", closed.clone());
        }
        Ok(ServerUnderTest {
            child: Proc::Child(child),
            lines,
            kept,
            closed,
            endpoint: endpoint.to_string(),
            requested: endpoint.to_string(),
            leftover: backend.leftover_file(endpoint),
            files,
        })
    }

    /// Asks the manager to start `spec` on `endpoint` (stopping it first if it runs: the
    /// checks need a start of their own). Its commands' output is the kept output.
    fn start_managed<B: Backend>(backend: &B, spec: &crate::target::Managed, endpoint: &str) -> Result<Self> {
        let path = backend.endpoint_path(endpoint);
        let kept = Arc::new(Mutex::new(KeptOutput::default()));
        let service = Service { spec, endpoint, path: &path, log: kept.clone() };
        super::service::operate(false, || {
            if matches!(service.state()?, ServiceState::Running(_)) {
                service.stop()?;
            }
            service.start()
        })?;
        let (_tx, lines) = mpsc::channel();
        Ok(ServerUnderTest {
            child: Proc::Managed(Box::new((spec.clone(), path))),
            lines,
            kept,
            // No output pipes of the harness's: nothing to wait for.
            closed: Arc::new((Mutex::new(2usize), std::sync::Condvar::new())),
            endpoint: endpoint.to_string(),
            requested: endpoint.to_string(),
            leftover: None,
            files: None,
        })
    }

    fn service(&self) -> Option<Service<'_>> {
        match &self.child {
            Proc::Child(_) | Proc::Gone => None,
            Proc::Managed(m) => {
                Some(Service { spec: &m.0, endpoint: &self.requested, path: &m.1, log: self.kept.clone() })
            }
        }
    }

    /// The endpoint name the harness gave the server (`{pipe}` in its arguments).
    pub fn requested(&self) -> &str {
        &self.requested
    }

    /// The process id (of a managed server: its main process as its manager tells, 0 when
    /// it does not).
    pub fn pid(&self) -> u32 {
        match (&self.child, self.service()) {
            (Proc::Child(c), _) => c.id(),
            (_, Some(s)) => match s.state() {
                Ok(ServiceState::Running(Some(pid))) => pid,
                _ => 0,
            },
            _ => 0,
        }
    }

    /// How the child ended, if it has (without waiting); a managed server, as its manager says.
    fn poll(&mut self) -> Option<Termination> {
        if let Some(s) = self.service() {
            return match s.state() {
                Ok(ServiceState::Stopped(how)) => Some(how.unwrap_or(Termination::Stopped)),
                _ => None,
            };
        }
        match &mut self.child {
            Proc::Child(c) => c.try_wait().ok().flatten().map(|s| termination_of(&s)),
            Proc::Managed(_) => None,
            Proc::Gone => Some(Termination::Stopped),
        }
    }

    /// Waits until the server is ready, exits, or `timeout` passes. With
    /// [`Readiness::LineNamingEndpoint`], the endpoint the ready line names becomes the run's;
    /// [`Readiness::Line`] is a prefix match and leaves the endpoint as the plan made it.
    pub fn wait_ready<B: Backend>(&mut self, backend: &B, readiness: &Readiness, timeout: Duration) -> Started {
        let deadline = Instant::now() + timeout;
        // An exit is reported with everything the process wrote before it: its drains get up
        // to 2 s to reach the end of its output (less once both pipes close; the full bound
        // only when a process it left behind keeps them open).
        let exited = |me: &Self, t: Option<Termination>| {
            let _ = me.final_output(Duration::from_secs(2));
            Started::ended(t.as_ref())
        };
        loop {
            if let Some(t) = self.poll() {
                return exited(self, Some(t));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Started::TimedOut;
            }
            let step = left.min(Duration::from_millis(100));
            let prefix = match readiness {
                Readiness::Line(prefix) | Readiness::LineNamingEndpoint { prefix, .. } => Some(prefix),
                Readiness::Endpoint => None,
            };
            match prefix {
                Some(prefix) => match self.lines.recv_timeout(step) {
                    Ok(l) if l.starts_with(prefix.as_str()) => {
                        // Only a plan that says where the line names the endpoint changes it
                        // ("line:PREFIX{endpoint}UNTIL"); "line:PREFIX" is a prefix match alone.
                        if let Readiness::LineNamingEndpoint { until, .. } = readiness {
                            let rest = &l[prefix.len()..];
                            let named =
                                if until.is_empty() { rest } else { rest.split(until.as_str()).next().unwrap_or(rest) };
                            if !named.trim().is_empty() {
                                self.endpoint = named.trim().to_string();
                            }
                        }
                        return Started::Ready;
                    }
                    Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        // stdout closed: the process is exiting.
                        let _ = crate::supervise::wait_exit(self.pid(), left);
                        let t = self.poll();
                        return exited(self, t);
                    }
                },
                None => {
                    let spec = ConnectSpec { timeout: step, ..ConnectSpec::default() };
                    if backend.connect(&self.endpoint, &spec).is_ok() {
                        return Started::Ready;
                    }
                }
            }
        }
    }

    /// Waits at most `timeout` for the server to exit; how it ended once it has.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<Termination> {
        // A managed server's state is asked once here (its manager's answer gives both whether
        // it still runs and its process), a child's from its handle.
        let pid = match self.service().map(|s| s.state()) {
            Some(Ok(ServiceState::Stopped(how))) => return Some(how.unwrap_or(Termination::Stopped)),
            Some(Ok(ServiceState::Running(pid))) => pid.unwrap_or(0),
            Some(Err(_)) => 0,
            None => match self.poll() {
                Some(t) => return Some(t),
                None => self.pid(),
            },
        };
        if pid == 0 {
            // A managed server without a known process: nothing to wait on but its manager's
            // word, asked every 100 ms until the deadline.
            let deadline = Instant::now() + timeout;
            loop {
                if let Some(t) = self.poll() {
                    return Some(t);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                std::thread::sleep(left.min(Duration::from_millis(100)));
            }
        }
        match crate::supervise::wait_exit(pid, timeout) {
            Ok(true) => match &mut self.child {
                Proc::Child(c) => c.wait().ok().map(|s| termination_of(&s)),
                Proc::Managed(_) | Proc::Gone => self.poll().or(Some(Termination::Stopped)),
            },
            _ => None,
        }
    }

    /// How it ended, if it has (without waiting).
    pub fn try_exit(&mut self) -> Option<Termination> {
        self.poll()
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        self.poll().is_none()
    }

    /// Its output as kept ([`ServerUnderTest::output`]) once both output pipes have closed (after it exited),
    /// waiting at most `timeout` for the last lines to be read.
    pub fn final_output(&self, timeout: Duration) -> Vec<String> {
        let (count, cv) = &*self.closed;
        if let Ok(n) = count.lock() {
            let _ = cv.wait_timeout_while(n, timeout, |n| *n < 2);
        }
        self.output()
    }

    /// Its output as kept: the first lines, those around a crash report, and the newest
    /// ([`KeptOutput`]).
    pub fn output(&self) -> Vec<String> {
        self.kept.lock().map(|k| k.lines()).unwrap_or_default()
    }
}

impl Drop for ServerUnderTest {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ServerUnderTest {
    /// Ends the server now (the whole tree of a child, reaped; a managed server, by its
    /// manager) and removes what it left; once: a second call does nothing. Called before a
    /// replacement starts on the same endpoint, so that the two never overlap (a server that
    /// takes a fixed name with `FILE_FLAG_FIRST_PIPE_INSTANCE`, or binds a fixed path, cannot
    /// start beside its predecessor, which may still be dying after a crash).
    pub fn stop(&mut self) {
        match std::mem::replace(&mut self.child, Proc::Gone) {
            Proc::Gone => {}
            Proc::Managed(m) => {
                let s = Service { spec: &m.0, endpoint: &self.requested, path: &m.1, log: self.kept.clone() };
                // Its manager stops it; the service is put back as it was found by the
                // [`ServiceGuard`](super::service::ServiceGuard) of the run.
                if let Err(e) = super::service::operate(false, || s.stop()) {
                    keep(&self.kept, format!("stop: {e}"));
                }
            }
            Proc::Child(mut child) => {
                // The whole tree: a server that started helpers (or daemonised) leaves none behind.
                crate::supervise::release_tree(child.id());
                let _ = child.kill();
                // Reaped once it is gone; a process stuck in the kernel past the deadline is left to
                // the platform rather than hanging the harness.
                if crate::supervise::wait_gone(child.id(), Duration::from_secs(10)) {
                    let _ = child.wait();
                }
                // The output drains end (and close their ends of the pipes) once nothing holds the
                // pipes open; with the tree dead that is at once. Bounded all the same.
                let _ = self.final_output(Duration::from_secs(2));
                if let Some(file) = &self.leftover {
                    file.remove();
                }
                // The start's files go with it (also when the server wrote in their folder).
                if let Some(folder) = self.files.take() {
                    let _ = folder.close();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeptOutput;

    /// A server's own bug report, as redis prints one: a banner, the signal and the stack trace,
    /// then a dump of state longer than the tail.
    fn bug_report(dump: usize) -> Vec<String> {
        let mut out: Vec<String> = (0..60).map(|i| format!("stdout: banner line {i}")).collect();
        out.extend((0..500).map(|i| format!("stdout: serving request {i}")));
        out.push("stderr: === BUG REPORT START ===".into());
        out.push("stderr: crashed by signal: 11".into());
        out.push("stderr: ------ STACK TRACE ------".into());
        out.extend(["handleFrame", "readRequest", "serveClient"].map(|f| format!("stderr: ./srv({f}+0x10)[0x55d4]")));
        out.extend((0..dump).map(|i| format!("stderr: info_field_{i}:0")));
        out.push("stderr: === BUG REPORT END ===".into());
        out
    }

    #[test]
    fn the_head_the_crash_report_and_the_tail_are_kept_and_the_rest_counted() {
        let mut k = KeptOutput::default();
        for l in bug_report(400) {
            k.push(l);
        }
        let lines = k.lines();
        assert_eq!(lines[0], "stdout: banner line 0", "the head");
        assert_eq!(lines.last().map(String::as_str), Some("stderr: === BUG REPORT END ==="), "the tail");
        assert!(lines.iter().any(|l| l.contains("(readRequest+0x10)")), "the trace, before the dump: {lines:#?}");
        assert!(lines.iter().any(|l| l.contains("=== BUG REPORT START ===")), "the heading before the marker");
        assert!(lines.iter().any(|l| l.contains("line(s) of output left out")), "the gap is said");
        let report = crate::engine::live::crash_report::parse(&lines).expect("the report is read");
        assert_eq!(report.frames, ["handleFrame", "readRequest", "serveClient"]);
        assert!(
            lines.len() <= KeptOutput::HEAD + KeptOutput::TAIL + KeptOutput::MARKED + 3,
            "bounded: {}",
            lines.len()
        );
        // Short output is kept whole, with nothing said left out.
        let mut k = KeptOutput::default();
        let short: Vec<String> = (0..100).map(|i| format!("stdout: {i}")).collect();
        short.iter().for_each(|l| k.push(l.clone()));
        assert_eq!(k.lines(), short);
    }
}
