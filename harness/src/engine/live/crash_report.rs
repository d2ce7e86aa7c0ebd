//! Reading the crash report a dying process prints, whatever it was written in: a Rust panic
//! (message and `file:line:col`), Rust's stack-overflow and allocation-failure aborts, an
//! AddressSanitizer or UndefinedBehaviorSanitizer report (error type, top frames), a Go
//! `panic:` / `fatal error:` with its goroutine trace, a .NET unhandled exception and a Node.js
//! uncaught exception. Pure text in, [`CrashReport`] out; no I/O.
//!
//! The frames kept are the program's own: sanitizer interceptors, runtime and standard-library
//! frames are skipped, as ClusterFuzz does when it builds a crash state from the top frames.

use serde::{Deserialize, Serialize};

/// What kind of report a crash printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReportKind {
    /// `thread '...' panicked at FILE:LINE:COL:` (Rust).
    RustPanic,
    /// `thread '...' has overflowed its stack` (Rust's guard-page handler, then an abort).
    RustStackOverflow,
    /// `memory allocation of N bytes failed` (Rust's default allocation-error handler).
    RustAllocFailure,
    /// `ERROR: AddressSanitizer: TYPE` (also LeakSanitizer, MemorySanitizer, ThreadSanitizer).
    Sanitizer,
    /// `FILE:LINE:COL: runtime error: ...` (UndefinedBehaviorSanitizer).
    UndefinedBehavior,
    /// `panic: ...` or `fatal error: ...` with a goroutine trace (Go).
    GoPanic,
    /// `Unhandled exception. TYPE: MESSAGE` with `at ...` frames (.NET).
    DotNetUnhandled,
    /// An uncaught JavaScript exception with `at ...` frames (Node.js).
    NodeUncaught,
    /// The program's own report of a fatal signal (a crash handler's "crashed by signal: 11",
    /// as redis and many C servers print) followed by a stack trace (`backtrace_symbols`'
    /// `BINARY(FUNC+0xOFF)[0xADDR]` lines, or `#N 0xADDR in FUNC`).
    OwnSignalReport,
}

impl ReportKind {
    /// A short name for reports and bucket keys.
    pub fn label(self) -> &'static str {
        match self {
            ReportKind::RustPanic => "rust panic",
            ReportKind::RustStackOverflow => "rust stack overflow",
            ReportKind::RustAllocFailure => "rust allocation failure",
            ReportKind::Sanitizer => "sanitizer",
            ReportKind::UndefinedBehavior => "undefined behaviour",
            ReportKind::GoPanic => "go panic",
            ReportKind::DotNetUnhandled => ".NET unhandled exception",
            ReportKind::NodeUncaught => "node uncaught exception",
            ReportKind::OwnSignalReport => "own fatal-signal report",
        }
    }
}

/// A crash report read from a process's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashReport {
    /// Which runtime or tool printed it.
    pub kind: ReportKind,
    /// The error: the sanitizer's error type, the exception's type, the panic's message.
    pub title: String,
    /// Where, when the report names one place (a Rust panic's `file:line:col`, UBSan's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The program's own top frames, innermost first (function names; file:line where the
    /// report gives no function).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<String>,
}

impl CrashReport {
    /// The part of the report that tells this bug from others: the sanitizer's or exception's
    /// type with the top three frames; else the location; else the kind alone. The panic's
    /// message is left out (it often carries the values of the case, an index or a length).
    pub fn state(&self) -> String {
        let top: Vec<&str> = self.frames.iter().take(3).map(String::as_str).collect();
        let mut parts = vec![self.kind.label().to_string()];
        match self.kind {
            ReportKind::Sanitizer | ReportKind::DotNetUnhandled | ReportKind::NodeUncaught | ReportKind::GoPanic => {
                parts.push(self.title_kind());
            }
            _ => {}
        }
        if !top.is_empty() {
            parts.push(top.join(" < "));
        } else if let Some(loc) = &self.location {
            parts.push(format!("at {loc}"));
        }
        parts.join(" / ")
    }

    /// The title without the values of the case: up to the first `:` or ` on address`.
    fn title_kind(&self) -> String {
        let t = self.title.split(" on address").next().unwrap_or(&self.title);
        let t = match self.kind {
            // "runtime error: index out of range [5] with length 3": keep the words only.
            ReportKind::GoPanic => t.split(" [").next().unwrap_or(t),
            _ => t.split(':').next().unwrap_or(t),
        };
        t.trim().to_string()
    }
}

/// Reads the first crash report in `lines` (a process's output, in order; a `stdout: ` or
/// `stderr: ` tag at the start of a line is ignored). `None` when it printed none.
pub fn parse(lines: &[String]) -> Option<CrashReport> {
    let lines: Vec<&str> =
        lines.iter().map(|l| l.strip_prefix("stderr: ").or_else(|| l.strip_prefix("stdout: ")).unwrap_or(l)).collect();
    for (i, line) in lines.iter().enumerate() {
        let rest = &lines[i + 1..];
        if let Some(r) = rust_panic(line, rest) {
            return Some(r);
        }
        if line.contains("has overflowed its stack") {
            return Some(CrashReport {
                kind: ReportKind::RustStackOverflow,
                title: "stack overflow".into(),
                location: None,
                frames: Vec::new(),
            });
        }
        if let Some(r) = line.strip_prefix("memory allocation of ").filter(|r| r.ends_with("failed")) {
            return Some(CrashReport {
                kind: ReportKind::RustAllocFailure,
                title: format!("memory allocation of {r}"),
                location: None,
                frames: Vec::new(),
            });
        }
        if let Some(r) = super::sanitizer::report(line, rest) {
            return Some(r);
        }
        if let Some(r) = ubsan(line) {
            return Some(r);
        }
        if let Some(r) = go_panic(line, rest) {
            return Some(r);
        }
        if let Some(r) = dotnet(line, rest) {
            return Some(r);
        }
        if let Some(r) = node(line, rest) {
            return Some(r);
        }
        if let Some(r) = own_signal_report(line, rest) {
            return Some(r);
        }
    }
    None
}

/// `thread 'main' panicked at src/x.rs:10:5:` + the message on the next line (Rust 1.73+;
/// a panic hook that prints the `PanicHookInfo` gives the same words after its own prefix), or
/// `thread 'main' panicked at 'message', src/x.rs:10:5` (older).
fn rust_panic(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let after = line.split("panicked at ").nth(1)?;
    let (title, location) = match after.strip_prefix('\'') {
        Some(old) => {
            let (msg, loc) = old.rsplit_once("', ")?;
            (msg.to_string(), loc.to_string())
        }
        None => {
            (rest.first().map(|m| m.trim().to_string()).unwrap_or_default(), after.trim_end_matches(':').to_string())
        }
    };
    // FILE:LINE:COL, nothing else: other lines that mention a panic are not the report.
    let mut parts = location.rsplitn(3, ':');
    let numeric = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !(numeric(parts.next()) && numeric(parts.next()) && parts.next().is_some_and(|f| !f.contains(' '))) {
        return None;
    }
    Some(CrashReport {
        kind: ReportKind::RustPanic,
        title,
        location: Some(location.replace('\\', "/")),
        frames: Vec::new(),
    })
}

/// Frames that are the sanitizer's, the C library's or a runtime's, never the program's.
pub(super) fn is_foreign_frame(f: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "__interceptor_",
        "___interceptor_",
        "__asan",
        "__sanitizer",
        "__ubsan",
        "__msan",
        "__tsan",
        "__lsan",
        "__libc_",
        "__GI_",
        "_start",
        "__memcpy",
        "__memmove",
        "__memset",
        "__strlen",
        "runtime.",
        "System.Runtime.",
        "System.Private.CoreLib",
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_",
    ];
    const EXACT: &[&str] =
        &["memcpy", "memmove", "memset", "strlen", "strcpy", "malloc", "free", "abort", "raise", "main"];
    PREFIXES.iter().any(|p| f.starts_with(p)) || EXACT.contains(&f)
}

/// `src/x.c:12:5: runtime error: signed integer overflow: ...`
fn ubsan(line: &str) -> Option<CrashReport> {
    let (loc, msg) = line.split_once(": runtime error: ")?;
    // `FILE:LINE:COL`: no spaces, ends in a number (Go's `panic: runtime error:` is not one).
    if loc.contains(' ') || !loc.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some(CrashReport {
        kind: ReportKind::UndefinedBehavior,
        title: msg.trim().to_string(),
        location: Some(loc.trim().replace('\\', "/")),
        frames: Vec::new(),
    })
}

/// `panic: MSG` / `fatal error: MSG`, then `goroutine N [running]:`, then pairs of
/// `pkg.func(...)` and `\t/path/file.go:LINE +0x..` lines.
fn go_panic(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let title = line.strip_prefix("panic: ").or_else(|| line.strip_prefix("fatal error: "))?;
    let g = rest.iter().position(|l| l.starts_with("goroutine ") && l.ends_with(':'))?;
    let mut frames = Vec::new();
    let mut location = None;
    let trace = &rest[g + 1..];
    for (i, l) in trace.iter().enumerate() {
        if l.is_empty() {
            break;
        }
        if l.starts_with('\t') || l.starts_with(' ') {
            continue;
        }
        let func = l.split('(').next().unwrap_or(l).trim();
        if func.is_empty() || is_foreign_frame(func) || func == "panic" {
            continue;
        }
        if location.is_none() {
            location = trace.get(i + 1).map(|f| f.trim().split(' ').next().unwrap_or("").replace('\\', "/"));
        }
        frames.push(func.to_string());
    }
    Some(CrashReport { kind: ReportKind::GoPanic, title: title.trim().to_string(), location, frames })
}

/// `Unhandled exception. System.IndexOutOfRangeException: MSG` then `   at NS.Type.Method(args) in FILE:line N`.
fn dotnet(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let title = line.strip_prefix("Unhandled exception. ").or_else(|| line.strip_prefix("Unhandled Exception: "))?;
    let (frames, location) = at_frames(rest, |f| f.split('(').next().unwrap_or(f).to_string(), " in ");
    Some(CrashReport { kind: ReportKind::DotNetUnhandled, title: title.trim().to_string(), location, frames })
}

/// Node.js: `TypeError: MSG` followed by `    at FUNC (FILE:LINE:COL)` lines.
fn node(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let first = rest.first()?.trim_start();
    if !first.starts_with("at ") || line.starts_with(' ') || !line.contains("Error") {
        return None;
    }
    let (frames, location) = at_frames(
        rest,
        |f| match f.split_once(" (") {
            Some((func, _)) => func.to_string(),
            None => f.to_string(),
        },
        " (",
    );
    Some(CrashReport { kind: ReportKind::NodeUncaught, title: line.trim().to_string(), location, frames })
}

/// The `at ...` lines that follow an exception header: the program's own frames (a
/// `node:` or runtime frame is not), and the first one's location.
fn at_frames(rest: &[&str], func_of: impl Fn(&str) -> String, loc_sep: &str) -> (Vec<String>, Option<String>) {
    let mut frames = Vec::new();
    let mut location = None;
    for l in rest.iter().take(64) {
        let Some(f) = l.trim_start().strip_prefix("at ") else { break };
        if f.contains("(node:") || f.starts_with("node:") {
            continue;
        }
        let func = func_of(f);
        if is_foreign_frame(&func) {
            continue;
        }
        if location.is_none() {
            location = f.split_once(loc_sep).map(|(_, l)| l.trim_end_matches(')').replace('\\', "/"));
        }
        frames.push(func);
    }
    (frames, location)
}

/// The fatal signal a line announces, by name: `SIGSEGV` as a word, or `signal 11` /
/// `signal: 11` with the number of a fatal signal (a crash handler's own words).
fn fatal_signal(line: &str) -> Option<&'static str> {
    const FATAL: &[(&str, u32)] =
        &[("SIGSEGV", 11), ("SIGBUS", 7), ("SIGILL", 4), ("SIGFPE", 8), ("SIGABRT", 6), ("SIGSYS", 31)];
    let by_name = FATAL.iter().find(|(name, _)| {
        line.match_indices(name).any(|(i, _)| !line[i + name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric()))
    });
    if let Some((name, _)) = by_name {
        return Some(name);
    }
    let lower = line.to_ascii_lowercase();
    let after = lower.split("signal").skip(1).find_map(|rest| {
        let digits: String = rest.trim_start_matches([':', ' ']).chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    })?;
    FATAL.iter().find(|(_, n)| *n == after).map(|(name, _)| *name)
}

/// A line announcing a fatal signal, then (within the report's next lines) a stack trace: the
/// program's own crash handler. The frames are the named ones of the first trace.
fn own_signal_report(line: &str, rest: &[&str]) -> Option<CrashReport> {
    let signal = fatal_signal(line)?;
    let mut frames = Vec::new();
    for l in rest.iter().take(200) {
        let t = l.trim();
        let func = match (t.strip_prefix('#'), t.rfind('(')) {
            // `#3 0x55d4 in func file:line` (gdb, libunwind, boost.stacktrace)
            (Some(f), _) => f.split_once(" in ").and_then(|(_, a)| a.split_whitespace().next()),
            // `binary(func+0x1b0)[0x55d4]` (glibc's backtrace_symbols)
            (None, Some(i)) if t.ends_with(']') && t.contains(")[0x") => t[i + 1..].split(['+', ')']).next(),
            _ => None,
        };
        match func {
            // A frame without a name (`libc.so.6(+0x3bfd0)[...]`) or not the program's.
            Some(f) if f.is_empty() || is_foreign_frame(f) => {}
            Some(f) => frames.push(f.to_string()),
            // A trace ends at the first line that is not a frame, once it has frames.
            None if frames.len() >= 3 && !t.is_empty() => break,
            None => {}
        }
    }
    if frames.is_empty() {
        return None;
    }
    Some(CrashReport { kind: ReportKind::OwnSignalReport, title: signal.to_string(), location: None, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(|l| format!("stderr: {l}")).collect()
    }

    #[test]
    fn a_servers_own_fatal_signal_report_gives_the_signal_and_its_frames() {
        let text = "=== BUG REPORT START ===\n12:M 02 Dec 2026 # crashed by signal: 11, si_code: 1\n\n------ STACK TRACE ------\nEIP:\n./srv *:6379(handleFrame+0x1b0)[0x55d4a1]\n\nBacktrace:\n/lib/x86_64-linux-gnu/libc.so.6(+0x3bfd0)[0x7f01]\n./srv *:6379(handleFrame+0x1b0)[0x55d4a1]\n./srv *:6379(readRequest+0x22)[0x55d4b2]\n./srv *:6379(serveClient+0x9)[0x55d4c3]\n./srv *:6379(main+0x40)[0x55d4d4]\n\n------ INFO OUTPUT ------";
        let r = parse(&lines(text)).expect("report");
        assert_eq!(r.kind, ReportKind::OwnSignalReport);
        assert_eq!(r.title, "SIGSEGV");
        assert_eq!(r.frames[..3], ["handleFrame", "handleFrame", "readRequest"]);
        assert_eq!(r.state(), "own fatal-signal report / handleFrame < handleFrame < readRequest");
        let gdb = parse(&lines("Received signal SIGBUS\n#0 0x1 in worker src/w.c:3\n#1 0x2 in serve src/s.c:9"))
            .expect("gdb");
        assert_eq!((gdb.title.as_str(), gdb.frames.len()), ("SIGBUS", 2));
        // A signal named without a trace, or a trace without a fatal signal, is no report.
        assert_eq!(parse(&lines("got SIGTERM, shutting down\n#0 0x1 in f x.c:1")), None);
        assert_eq!(parse(&lines("exiting on signal 11 (no trace)")), None);
        assert_eq!(parse(&lines("SIGSEGVX\n#0 0x1 in f x.c:1")), None);
    }

    #[test]
    fn a_rust_panic_gives_its_location_old_and_new_formats() {
        let r = parse(&lines("thread 'main' panicked at src/bin/x.rs:97:21:\nindex out of bounds: the len is 3 but the index is 9\nnote: run with `RUST_BACKTRACE=1`"))
            .expect("report");
        assert_eq!(r.kind, ReportKind::RustPanic);
        assert_eq!(r.location.as_deref(), Some("src/bin/x.rs:97:21"));
        assert!(r.title.starts_with("index out of bounds"));
        assert_eq!(r.state(), "rust panic / at src/bin/x.rs:97:21");
        let old = parse(&lines("thread 'main' panicked at 'boom', src\\main.rs:3:5")).expect("report");
        let hook = parse(&lines("framing-bugs: panicked at fixtures/src/bugs.rs:24:80:\nshort header: 3 bytes"))
            .expect("hook");
        assert_eq!(hook.location.as_deref(), Some("fixtures/src/bugs.rs:24:80"));
        assert_eq!(parse(&lines("the worker panicked at startup, retrying")), None);
        assert_eq!((old.title.as_str(), old.location.as_deref()), ("boom", Some("src/main.rs:3:5")));
    }

    #[test]
    fn rust_aborts_without_a_panic_are_told_apart() {
        let so =
            parse(&lines("\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow")).expect("so");
        assert_eq!(so.kind, ReportKind::RustStackOverflow);
        let oom = parse(&lines("memory allocation of 18446744073709551615 bytes failed")).expect("oom");
        assert_eq!(oom.kind, ReportKind::RustAllocFailure);
        assert_eq!(parse(&lines("READY /tmp/x.sock\nserving")), None);
    }

    #[test]
    fn an_asan_report_gives_its_type_and_the_programs_top_frames() {
        let text = "=================================================================
==4242==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000018 at pc 0x55 bp 0x7ff sp 0x7ff
WRITE of size 8 at 0x602000000018 thread T0
    #0 0x4f1a2b in __interceptor_memcpy (/srv/server+0x4f1a2b)
    #1 0x55d0c4 in parse_record /src/server.c:42:7
    #2 0x55d1f0 in handle_frame /src/server.c:88:3
    #3 0x55d300 in serve_client /src/server.c:120:5
    #4 0x55d400 in main /src/server.c:200:5

0x602000000018 is located 0 bytes to the right of 8-byte region
allocated by thread T0 here:
    #0 0x4f in malloc
    #1 0x55 in read_frame /src/server.c:30:9
SUMMARY: AddressSanitizer: heap-buffer-overflow /src/server.c:42:7 in parse_record";
        let r = parse(&lines(text)).expect("report");
        assert_eq!(r.kind, ReportKind::Sanitizer);
        assert_eq!(r.frames, ["parse_record", "handle_frame", "serve_client"]);
        assert_eq!(r.location.as_deref(), Some("/src/server.c:42:7"));
        assert_eq!(
            r.state(),
            "sanitizer / AddressSanitizer heap-buffer-overflow WRITE / parse_record < handle_frame < serve_client"
        );
    }

    #[test]
    fn ubsan_go_dotnet_and_node_reports_are_read() {
        let u = parse(&lines("server.c:17:12: runtime error: division by zero")).expect("ubsan");
        assert_eq!((u.kind, u.location.as_deref()), (ReportKind::UndefinedBehavior, Some("server.c:17:12")));

        let go = "panic: runtime error: index out of range [5] with length 3

goroutine 18 [running]:
main.parseFrame({0xc000014090, 0x3, 0x8})
\t/home/u/srv/main.go:31 +0x1d5
main.handle({0x5a3c40, 0xc000012028})
\t/home/u/srv/main.go:55 +0x85
created by main.main in goroutine 1
\t/home/u/srv/main.go:70 +0x1a5
exit status 2";
        let g = parse(&lines(go)).expect("go");
        assert_eq!(g.kind, ReportKind::GoPanic);
        assert_eq!(g.frames[..2], ["main.parseFrame", "main.handle"]);
        assert_eq!(g.location.as_deref(), Some("/home/u/srv/main.go:31"));
        assert!(g.state().starts_with("go panic / runtime error: index out of range / main.parseFrame < main.handle"));

        let net = "Unhandled exception. System.IndexOutOfRangeException: Index was outside the bounds of the array.
   at PipeServer.Frames.Parse(Byte[] data) in C:\\src\\Frames.cs:line 41
   at PipeServer.Program.Serve(NamedPipeServerStream s) in C:\\src\\Program.cs:line 22
   at PipeServer.Program.Main(String[] args) in C:\\src\\Program.cs:line 9";
        let d = parse(&lines(net)).expect(".net");
        assert_eq!(d.kind, ReportKind::DotNetUnhandled);
        assert_eq!(d.frames, ["PipeServer.Frames.Parse", "PipeServer.Program.Serve", "PipeServer.Program.Main"]);
        assert_eq!(d.location.as_deref(), Some("C:/src/Frames.cs:line 41"));
        assert!(d.state().starts_with(".NET unhandled exception / System.IndexOutOfRangeException / "));

        let js = "/srv/server.js:12
    const n = frame.readUInt32LE(4);
                    ^

RangeError [ERR_OUT_OF_RANGE]: The value of \"offset\" is out of range.
    at boundsError (node:internal/buffer:88:9)
    at Buffer.readUInt32LE (node:internal/buffer:222:5)
    at parse (/srv/server.js:12:21)
    at Socket.<anonymous> (/srv/server.js:30:5)
    at Socket.emit (node:events:517:28)

Node.js v20.20.2";
        let n = parse(&lines(js)).expect("node");
        assert_eq!(n.kind, ReportKind::NodeUncaught);
        assert_eq!(n.frames, ["parse", "Socket.<anonymous>"]);
        assert_eq!(n.location.as_deref(), Some("/srv/server.js:12:21"));
    }
}
