//! The oracle: what the server did after a case ([`Outcome`]), how a crashed process ended
//! ([`Termination`]: the signal, the exit code or the Windows exception), and the bucket that
//! tells one bug from another ([`BucketKey`]), as ClusterFuzz's crash state does: the kind, the
//! signal or exception, then the top frames of the crash report when the process printed one,
//! else the panic location, else nothing more.

use super::crash_report::{self, CrashReport};
use serde::{Deserialize, Serialize};

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Termination {
    /// It exited with this code (Unix `exit`; on Windows an exit code that is not an
    /// exception status).
    Exit {
        /// The exit code.
        code: i32,
    },
    /// A signal ended it (Unix).
    Signal {
        /// The signal number.
        number: i32,
        /// Its name (`SIGSEGV`), or `signal N` for one without a name here.
        name: String,
    },
    /// An exception ended it (Windows: the exit code is an NTSTATUS error or warning value,
    /// such as `0xC0000005`).
    Exception {
        /// The NTSTATUS.
        code: u32,
        /// What it means (`access violation`), or `unknown exception`.
        name: String,
    },
    /// It stopped, and its service manager did not say how (a service found stopped through a
    /// pid file or a status command).
    Stopped,
}

/// Linux's signal names (x86_64 and arm64 numbering).
const SIGNALS: &[(i32, &str)] = &[
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (10, "SIGUSR1"),
    (11, "SIGSEGV"),
    (12, "SIGUSR2"),
    (13, "SIGPIPE"),
    (14, "SIGALRM"),
    (15, "SIGTERM"),
    (16, "SIGSTKFLT"),
    (24, "SIGXCPU"),
    (25, "SIGXFSZ"),
    (31, "SIGSYS"),
];

/// NTSTATUS values a crashing Windows process ends with, and what each means.
const EXCEPTIONS: &[(u32, &str)] = &[
    (0x8000_0003, "breakpoint"),
    (0xC000_0005, "access violation"),
    (0xC000_0006, "in-page error"),
    (0xC000_001D, "illegal instruction"),
    (0xC000_008C, "array bounds exceeded"),
    (0xC000_0094, "integer divide by zero"),
    (0xC000_0095, "integer overflow"),
    (0xC000_0096, "privileged instruction"),
    (0xC000_00FD, "stack overflow"),
    (0xC000_0135, "DLL not found"),
    (0xC000_0142, "DLL initialisation failed"),
    (0xC000_013A, "terminated by Ctrl+C"),
    (0xC000_0374, "heap corruption"),
    (0xC000_0409, "fast fail / stack buffer overrun"),
    (0xC000_0417, "invalid C runtime parameter"),
    (0xE043_4352, ".NET exception"),
    (0xE06D_7363, "C++ exception"),
];

impl Termination {
    /// From a Unix wait status's parts: the signal when one ended it, else the exit code.
    pub fn from_unix(signal: Option<i32>, code: Option<i32>) -> Option<Termination> {
        match (signal, code) {
            (Some(number), _) => Some(Termination::Signal {
                number,
                name: SIGNALS
                    .iter()
                    .find(|(n, _)| *n == number)
                    .map_or_else(|| format!("signal {number}"), |(_, s)| s.to_string()),
            }),
            (None, Some(code)) => Some(Termination::Exit { code }),
            (None, None) => None,
        }
    }

    /// From a Windows exit code: an exception when it is an NTSTATUS error (`0xC...`) or a
    /// known warning (`0x80000003`) or a known exception code, else a plain exit code.
    pub fn from_windows(code: u32) -> Termination {
        let known = EXCEPTIONS.iter().find(|(c, _)| *c == code).map(|(_, n)| n.to_string());
        match known {
            Some(name) => Termination::Exception { code, name },
            None if code & 0xC000_0000 == 0xC000_0000 => {
                Termination::Exception { code, name: "unknown exception".into() }
            }
            None => Termination::Exit { code: code as i32 },
        }
    }

    /// The exit code, when it exited (not for a signal or an exception).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            Termination::Exit { code } => Some(*code),
            _ => None,
        }
    }

    /// Short, for bucket keys: `SIGSEGV`, `exit 101`, `0xC0000005 access violation`.
    pub fn label(&self) -> String {
        match self {
            Termination::Exit { code } => format!("exit {code}"),
            Termination::Signal { name, .. } => name.clone(),
            Termination::Exception { code, name } => format!("0x{code:08X} {name}"),
            Termination::Stopped => "stopped".into(),
        }
    }

    /// For people: `killed by SIGSEGV (signal 11)`, `exited with code 101`, `ended by
    /// exception 0xC0000005 (access violation)`.
    pub fn describe(&self) -> String {
        match self {
            Termination::Exit { code } => format!("exited with code {code}"),
            Termination::Signal { number, name } => format!("killed by {name} (signal {number})"),
            Termination::Exception { code, name } => format!("ended by exception 0x{code:08X} ({name})"),
            Termination::Stopped => "stopped (its service manager did not say how)".into(),
        }
    }
}

/// A crash: how the process ended, the report it printed if it printed one, and its last
/// output lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crash {
    /// How it ended; `None` when the status could not be read.
    pub termination: Option<Termination>,
    /// The crash report in its output, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<CrashReport>,
    /// Its last output lines.
    pub output: Vec<String>,
}

impl Crash {
    /// A crash from how the process ended and what it printed (the report is read from it).
    pub fn new(termination: Option<Termination>, output: Vec<String>) -> Self {
        Crash { report: crash_report::parse(&output), termination, output }
    }
}

/// The crash state that tells one bug from another: two outcomes with the same key are one
/// finding.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BucketKey(pub String);

impl std::fmt::Display for BucketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the server did after a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Still alive and serving.
    Survived,
    /// It exited.
    Crashed(Crash),
    /// Still running, but it did not serve: what the detector saw.
    Hung {
        /// Which detector fired and what it saw.
        detail: String,
    },
    /// Still running but no longer accepting connections: it dropped the case's connection
    /// and did not recover (its accept loop died, its endpoint went away).
    Unreachable {
        /// What the connect saw.
        detail: String,
    },
    /// Killed for passing its memory limit (Linux: the cgroup's OOM killer; Windows: its job's
    /// peak memory at the limit when it ended): an allocation the input asked for, not a crash
    /// of unknown cause.
    OutOfMemory {
        /// The limit, bytes.
        limit_bytes: u64,
        /// How it ended.
        termination: Option<Termination>,
        /// Its last output lines.
        output: Vec<String>,
    },
    /// Still answering, but its resident memory grew past the limit since the baseline.
    MemoryGrowth {
        /// Resident memory (KiB) when the baseline was taken.
        baseline_kib: u64,
        /// Resident memory (KiB) now.
        now_kib: u64,
        /// Cases sent between the two readings.
        cases: u64,
    },
}

impl Outcome {
    /// A finding (anything but survival)?
    pub fn is_finding(&self) -> bool {
        !matches!(self, Outcome::Survived)
    }

    /// The crash, when it is one.
    pub fn crash(&self) -> Option<&Crash> {
        match self {
            Outcome::Crashed(c) => Some(c),
            _ => None,
        }
    }

    /// The server's last output lines, when the outcome kept them (a crash, out of memory).
    pub fn output(&self) -> Option<&[String]> {
        match self {
            Outcome::Crashed(c) => Some(&c.output),
            Outcome::OutOfMemory { output, .. } => Some(output),
            _ => None,
        }
    }

    /// The detector that fired: `process exit`, `hang`, `unreachable`, `memory growth`.
    pub fn detector(&self) -> &'static str {
        match self {
            Outcome::Survived => "none",
            Outcome::Crashed(_) => "process exit",
            Outcome::Hung { .. } => "hang",
            Outcome::Unreachable { .. } => "unreachable",
            Outcome::MemoryGrowth { .. } => "memory growth",
            Outcome::OutOfMemory { .. } => "memory limit",
        }
    }

    /// One line for people: what the server did.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Survived => "survived".into(),
            Outcome::Crashed(c) => {
                let how =
                    c.termination.as_ref().map_or_else(|| "exited (status unknown)".into(), Termination::describe);
                match &c.report {
                    Some(r) => {
                        let at = r.location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default();
                        format!("crashed: {how}; {}{at}: {}", r.kind.label(), r.title)
                    }
                    None => format!("crashed: {how}; it printed no crash report (bucketed by how it ended alone)"),
                }
            }
            Outcome::Hung { detail } => format!("hung: {detail}"),
            Outcome::Unreachable { detail } => format!("alive but no longer accepting connections: {detail}"),
            Outcome::MemoryGrowth { baseline_kib, now_kib, cases } => {
                format!("resident memory grew from {baseline_kib} KiB to {now_kib} KiB over {cases} cases")
            }
            Outcome::OutOfMemory { limit_bytes, termination, .. } => {
                let how = termination.as_ref().map_or_else(|| "ended".into(), Termination::describe);
                format!("out of memory: {how} at its memory limit of {} MiB", limit_bytes / (1024 * 1024))
            }
        }
    }

    /// The bucket: `crash / SIGSEGV`, `crash / SIGABRT / rust panic / at src/x.rs:9:5`,
    /// `crash / 0xC0000005 access violation / sanitizer / ... / f < g < h`, `hang`,
    /// `unreachable after a disconnect`, `memory growth`.
    pub fn bucket(&self) -> BucketKey {
        BucketKey(match self {
            Outcome::Survived => "survived".into(),
            Outcome::Hung { .. } => "hang".into(),
            Outcome::Unreachable { .. } => "unreachable after a disconnect".into(),
            Outcome::MemoryGrowth { .. } => "memory growth".into(),
            Outcome::OutOfMemory { .. } => "out of memory".into(),
            Outcome::Crashed(c) => {
                let mut parts = vec!["crash".to_string()];
                parts.push(c.termination.as_ref().map_or_else(|| "status unknown".into(), Termination::label));
                if let Some(r) = &c.report {
                    parts.push(r.state());
                }
                parts.join(" / ")
            }
        })
    }

    /// The bucket as text (as [`Outcome::bucket`]).
    pub fn signature(&self) -> String {
        self.bucket().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash(t: Termination, out: &[&str]) -> Outcome {
        Outcome::Crashed(Crash::new(Some(t), out.iter().map(|l| l.to_string()).collect()))
    }

    #[test]
    fn signals_and_exceptions_have_names_and_make_distinct_buckets() {
        let segv = Termination::from_unix(Some(11), None).expect("signal");
        let abrt = Termination::from_unix(Some(6), None).expect("signal");
        let bus = Termination::from_unix(Some(7), None).expect("signal");
        assert_eq!(segv.describe(), "killed by SIGSEGV (signal 11)");
        let keys: std::collections::BTreeSet<BucketKey> =
            [&segv, &abrt, &bus].iter().map(|t| crash((*t).clone(), &[]).bucket()).collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(crash(bus, &[]).signature(), "crash / SIGBUS");
        assert_eq!(Termination::from_unix(None, Some(101)), Some(Termination::Exit { code: 101 }));
        let av = Termination::from_windows(0xC000_0005);
        assert_eq!(av.label(), "0xC0000005 access violation");
        assert_eq!(Termination::from_windows(0xC000_0409).label(), "0xC0000409 fast fail / stack buffer overrun");
        assert_eq!(Termination::from_windows(3), Termination::Exit { code: 3 });
        assert!(matches!(Termination::from_windows(0xC0AB_0001), Termination::Exception { .. }));
    }

    #[test]
    fn the_same_signal_with_different_reports_is_two_buckets_and_messages_do_not_split_one() {
        let abrt = || Termination::from_unix(Some(6), None).expect("signal");
        let a = crash(abrt(), &["stderr: thread 'main' panicked at src/a.rs:1:5:", "stderr: index 9 out of range"]);
        let a2 = crash(abrt(), &["stderr: thread 'main' panicked at src/a.rs:1:5:", "stderr: index 12 out of range"]);
        let so = crash(abrt(), &["stderr: thread 'main' has overflowed its stack"]);
        let plain = crash(abrt(), &[]);
        assert_eq!(a.bucket(), a2.bucket());
        assert_eq!(a.signature(), "crash / SIGABRT / rust panic / at src/a.rs:1:5");
        assert_ne!(a.bucket(), so.bucket());
        assert_ne!(so.bucket(), plain.bucket());
        assert!(plain.describe().contains("no crash report"), "{}", plain.describe());
        assert!(a.describe().contains("killed by SIGABRT"), "{}", a.describe());
    }

    #[test]
    fn outcomes_round_trip_through_json() {
        let o = crash(Termination::from_unix(Some(7), None).expect("signal"), &["stderr: x"]);
        let text = serde_json::to_string(&o).expect("json");
        assert!(text.contains("\"outcome\":\"crashed\"") && text.contains("\"name\":\"SIGBUS\""), "{text}");
        assert_eq!(serde_json::from_str::<Outcome>(&text).expect("back"), o);
    }
}
