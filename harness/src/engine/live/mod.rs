//! The live fuzzer: hostile frames sent to a running server over a real endpoint, with crash,
//! hang and memory-growth detection, crashes told apart by their crash state, and only
//! findings that replay.
//!
//! One module per job:
//!
//! - [`case`]: what a case is, and its generation from the target's framing (length fields
//!   that lie, truncated headers, frames dripped a byte per write, frames interleaved across
//!   connections, a type byte swept over its values, hostile payloads, corpus mutations). Case
//!   `i` of a campaign comes from the seed and `i` alone.
//! - [`driver`]: one case against a running server, judged only once the server has had the
//!   chance to process that case alone (the client's end of stream, then the server's hang-up),
//!   with or without a ping.
//! - [`oracle`]: what the server did ([`Outcome`]), how a crashed process ended
//!   ([`Termination`]: signal, exit code or Windows exception), and the bucket
//!   ([`BucketKey`]): kind, signal or exception, then the top frames of the crash report, else
//!   the panic location.
//! - [`crash_report`]: reading the report the process printed (Rust, sanitizers, Go, .NET,
//!   Node.js); a sanitizer's in `sanitizer` (crash type, access, top frames, symbolised; no
//!   addresses, thread or process ids).
//! - [`minimize`]: ddmin over writes and bytes, merged writes, shrunk lengths.
//! - [`replay`]: a case on fresh servers, and the confirmation that makes a crash a finding.
//! - [`campaign`]: jobs in parallel, buckets, confirmation, unconfirmed buckets apart.

pub mod campaign;
pub mod case;
pub mod cmin;
pub mod coverage;
pub mod crash_report;
pub mod driver;
pub mod libfuzzer;
pub mod minimize;
pub mod oracle;
pub mod record;
pub mod replay;
mod sanitizer;
pub mod session;

pub use campaign::{fuzz, Campaign, FuzzOptions, Reproducer, Sample, Unconfirmed};
pub use case::{generate, generate_for, Case, SessionUse};
pub use cmin::{can_minimize, minimize_corpus, Minimized};
pub use crash_report::{CrashReport, ReportKind};
pub use driver::{run_case, start, Blame, Liveness};
pub use minimize::{minimize, Budget};
pub use oracle::{BucketKey, Crash, Outcome, Termination};
pub use record::{record, RecordOptions, Recording};
pub use replay::{confirm, replay_case, replay_once, replay_reproducer, Replays};
