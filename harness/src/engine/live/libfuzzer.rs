//! A live server as a libFuzzer target (`cargo fuzz`, ClusterFuzzLite, OSS-Fuzz): the engine
//! runs the campaign, this module starts, supervises and judges the server.
//!
//! A product's `fuzz/fuzz_targets/live.rs` is one line, [`live_fuzz_target!`](crate::live_fuzz_target)
//! naming its plan. The server is started once per fuzzing process as the plan says (a fresh
//! run folder and `{unique}` endpoint per process, so `-jobs`/`-fork` processes never share one)
//! and again after a crash. Each input is one case ([`case_from_input`]): the first byte chooses
//! how the case uses the plan's session and framing, the rest are the messages.
//!
//! After each case the server's edge map (a server built with `pipe-harness cc` and a plan
//! with `coverage = true`) becomes libFuzzer's extra counters and its comparison operands go to
//! libFuzzer's table of recent compares; the macro does both with what [`Ran`] carries.
//!
//! A crash, hang or out-of-memory is replayed on a fresh server first ([`LiveTarget::run`]);
//! only a confirmed one is [`Step::Found`], whose report the macro prints before it makes
//! libFuzzer write its `crash-`, `timeout-` or `oom-` artifact. An unconfirmed one is logged
//! and the server restarted.

use crate::engine::server::ServerUnderTest;
use crate::error::{Error, Result};
use crate::target::Target;
use crate::NativeBackend;
use arbitrary::Unstructured;
use std::path::Path;
use std::time::Duration;

use super::case::{Case, SessionUse};
use super::coverage::{CoverageFile, Trace};
use super::driver::{run_case, start_again, start_proved, Blame, Liveness};
use super::oracle::Outcome;
use super::replay::confirm;

/// The environment variable that overrides the plan a live target was built with (a fuzzer
/// binary run on another machine, as ClusterFuzzLite does).
pub const PLAN_VAR: &str = "PIPE_HARNESS_PLAN";

/// How long a case that the server survived waits for an exit already under way (a server
/// that closed its connections as it died).
pub const EXIT_SETTLE: Duration = Duration::from_micros(500);

/// The case an input is: the first byte is the mode, the rest the messages (see the module's
/// documentation). Modes, by the first byte's low three bits:
///
/// - 0 to 4: framed messages after the whole session, behind the message prefix;
/// - 5: framed messages after the whole session, without the prefix;
/// - 6: raw writes after the whole session (the framing is the input's: lying lengths);
/// - 7: raw writes after fewer of the session's steps (the next step is the first write).
///
/// The next two bits give the number of messages (1 to 4); for more than one, each but the last
/// takes its length from the input first. The same bytes always make the same case.
pub fn case_from_input(target: &Target, data: &[u8]) -> Case {
    let mut u = Unstructured::new(data);
    let mode: u8 = u.arbitrary().unwrap_or(0);
    let count = usize::from((mode >> 3) & 3) + 1;
    let mut writes = Vec::with_capacity(count);
    for _ in 1..count {
        let len = u.arbitrary_len::<u8>().unwrap_or(0);
        writes.push(u.bytes(len).map(<[u8]>::to_vec).unwrap_or_default());
    }
    writes.push(u.take_rest().to_vec());
    let steps = target.session.len();
    let (session, kind) = match mode & 7 {
        0..=4 => (SessionUse { steps, messages: true, prefix: true }, "framed messages after the session"),
        5 => (SessionUse { steps, messages: true, prefix: false }, "framed messages without the prefix"),
        6 => (SessionUse { steps, messages: false, prefix: false }, "raw writes after the session"),
        _ => (
            SessionUse { steps: usize::from(mode >> 5) % steps.max(1), messages: false, prefix: false },
            "raw writes after part of the session",
        ),
    };
    Case { writes, on: Vec::new(), kind: format!("libFuzzer input: {kind}"), session: Some(session) }
}

/// A libFuzzer dictionary for the plan: the session's requests and expected replies, the ping
/// and its answer, as libFuzzer's `"..."` lines with `\xNN` escapes.
pub fn dictionary(target: &Target) -> String {
    let mut words: Vec<&[u8]> = Vec::new();
    for step in &target.session {
        words.push(&step.send);
        if let Some(e) = &step.expect {
            words.push(e);
        }
    }
    if let Some(p) = &target.ping {
        words.push(&p.request);
        words.push(&p.success_prefix);
    }
    let mut out = String::new();
    for w in words.into_iter().filter(|w| !w.is_empty()) {
        out.push('"');
        for b in w {
            match b {
                b' '..=b'~' if *b != b'"' && *b != b'\\' => out.push(char::from(*b)),
                _ => out.push_str(&format!("\\x{b:02X}")),
            }
        }
        out.push_str("\"\n");
    }
    out
}

/// What a case did that libFuzzer should learn: the coverage the server recorded, if it
/// records any.
#[derive(Debug, Default)]
pub struct Ran {
    /// The server's edges and comparisons during the case (`None`: not built for coverage).
    pub trace: Option<Trace>,
}

/// What libFuzzer should make of a confirmed finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifact {
    /// A crash: print the report and abort (`crash-<sha1>`).
    Crash,
    /// A hang: outlive libFuzzer's `-timeout` (`timeout-<sha1>`).
    Timeout,
    /// Out of memory: exceed libFuzzer's malloc limit (`oom-<sha1>`).
    OutOfMemory,
}

/// The outcome of one input.
#[derive(Debug)]
pub enum Step {
    /// The server survived the case (or its finding did not replay on a fresh server).
    Ran(Ran),
    /// A finding that replayed on a fresh server.
    Found {
        /// The artifact libFuzzer should write.
        artifact: Artifact,
        /// The server's report, for the fuzzer's output (ClusterFuzz reads it).
        report: String,
    },
}

/// One fuzzing process's server, its liveness and its coverage file.
pub struct LiveTarget {
    backend: NativeBackend,
    target: Target,
    live: Liveness,
    server: Option<ServerUnderTest>,
    coverage: Option<CoverageFile>,
    said_uncovered: bool,
    cases: u64,
    _accounts: crate::supervise::TestAccounts,
}

impl std::fmt::Debug for LiveTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTarget")
            .field("target", &self.target.name)
            .field("cases", &self.cases)
            .finish_non_exhaustive()
    }
}

impl LiveTarget {
    /// Loads the plan, starts its server and proves its endpoint, and measures liveness on it.
    pub fn from_plan(plan: &Path) -> Result<Self> {
        let (mut target, _) = crate::engine::plan::load(plan)?;
        if let Some(m) = &target.managed {
            return Err(Error::invalid(
                "plan",
                format!("{m} is one server on one endpoint: a live fuzz target needs a program it starts itself"),
            ));
        }
        let backend = crate::native_backend()?;
        let accounts = crate::supervise::TestAccounts::create(&target.create_accounts)?;
        let coverage = if target.coverage { Some(CoverageFile::create(target.run_as.as_ref())?) } else { None };
        if let Some(f) = &coverage {
            target.env.push((super::coverage::VAR.to_string(), f.path().display().to_string()));
        }
        let opts = super::campaign::FuzzOptions::new(0);
        let server = start_proved(&backend, &target, opts.hang_timeout)?;
        let live = Liveness::measure(&backend, &target, &server, opts.hang_timeout, opts.ping_every);
        eprintln!(
            "pipe-harness: live target {} at {}; {}",
            target.name,
            server.endpoint,
            live.describe(target.ping.is_some())
        );
        if coverage.is_none() {
            eprintln!("pipe-harness: the plan does not say coverage = true: libFuzzer sees none of the server's code (fuzzing on, blind)");
        }
        Ok(LiveTarget {
            backend,
            target,
            live,
            server: Some(server),
            coverage,
            said_uncovered: false,
            cases: 0,
            _accounts: accounts,
        })
    }

    /// The target as the server is started (with the coverage file in its environment).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs one input as one case; a finding is confirmed on a fresh server before it is
    /// [`Step::Found`]. An unconfirmed one is logged and the server restarted.
    pub fn run(&mut self, data: &[u8]) -> Result<Step> {
        let case = case_from_input(&self.target, data);
        let mut server = match self.server.take() {
            Some(s) => s,
            None => start_again(&self.backend, &self.target)?,
        };
        if let Some(f) = &self.coverage {
            f.clear()?;
        }
        let (mut outcome, blame) = run_case(&self.backend, &self.target, &mut server, &case, &self.live, self.cases);
        self.cases += 1;
        if blame == Blame::Before {
            // Nothing of this input reached the server: the input before ended it. This one
            // runs again, on a fresh server.
            eprintln!("pipe-harness: the server was gone before this input reached it ({}); the input before it is to blame (unconfirmed); restarting", outcome.describe());
            drop(server);
            server = start_again(&self.backend, &self.target)?;
            if let Some(f) = &self.coverage {
                f.clear()?;
            }
            outcome = run_case(&self.backend, &self.target, &mut server, &case, &self.live, 0).0;
            self.cases = 1;
        }
        if !outcome.is_finding() {
            // A server that dies of the case closes its connections a moment before its exit
            // can be seen: a short last look, so that the crash is this input's, not the next's.
            if let Some(t) = server.wait_exit(EXIT_SETTLE) {
                outcome = super::driver::crashed(&mut server, t);
            }
        }
        let trace = match &self.coverage {
            Some(f) => Some(f.read()?),
            None => None,
        };
        if let Some(t) = &trace {
            if !self.said_uncovered && self.cases >= 16 && t.map.iter().all(|c| *c == 0) {
                eprintln!("pipe-harness: the plan says coverage = true but the server records no edges (not built with `pipe-harness cc`?): fuzzing on, blind");
                self.said_uncovered = true;
            }
        }
        if !outcome.is_finding() {
            self.server = Some(server);
            return Ok(Step::Ran(Ran { trace }));
        }
        drop(server);
        self.cases = 0;
        let bucket = outcome.bucket();
        let replays = confirm(&self.backend, &self.target, &case, 1, &bucket, 1, &self.live, None, true)?;
        if !replays.all() {
            eprintln!(
                "pipe-harness: UNCONFIRMED {} (bucket {}): a fresh server given this input alone ended in {}; not a finding, restarting",
                outcome.describe(),
                bucket.0,
                replays.others.iter().map(|b| b.0.as_str()).collect::<Vec<_>>().join(", ")
            );
            return Ok(Step::Ran(Ran { trace }));
        }
        let artifact = match outcome {
            Outcome::Hung { .. } => Artifact::Timeout,
            Outcome::OutOfMemory { .. } | Outcome::MemoryGrowth { .. } => Artifact::OutOfMemory,
            _ => Artifact::Crash,
        };
        Ok(Step::Found { artifact, report: report(&self.target, &case, &outcome, std::process::id()) })
    }
}

/// Input-to-state pairs for libFuzzer's table of compared words (its `memcmp` hook, which
/// keeps words of 2 bytes and more): for each operand of the server's comparisons that the
/// input carries (little- or big-endian, found as [`super::coverage::tokens`] finds them), the
/// input's bytes there (widened to 2 bytes for a 1-byte operand) and the same bytes with the
/// other operand put in. libFuzzer's "CMP" mutation then replaces the first with the second in
/// the input: a magic value compared a byte at a time, a checksum, an opcode's `switch`. At
/// most `max` pairs.
pub fn compared_words(data: &[u8], cmps: &[(u64, u64, u8)], max: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (have, want) in super::coverage::tokens(cmps) {
        if out.len() >= max {
            break;
        }
        let Some(at) = super::coverage::occurrences(data, &have).next() else { continue };
        let (start, end) = if have.len() >= 2 {
            (at, at + have.len())
        } else if at + 2 <= data.len() {
            (at, at + 2)
        } else if at >= 1 {
            (at - 1, at + 1)
        } else {
            continue;
        };
        let old = data[start..end].to_vec();
        let mut new = old.clone();
        new[at - start..at - start + want.len()].copy_from_slice(&want);
        if old != new && !out.iter().any(|(o, n)| *o == old && *n == new) {
            out.push((old, new));
        }
    }
    out
}

/// The report printed for a confirmed finding: a header line in the sanitizers' form naming the
/// server and what it did, the server's own output (its sanitizer report or crash trace, which
/// ClusterFuzz's stack parser reads), the case, and a `SUMMARY:` line with the bucket.
pub fn report(target: &Target, case: &Case, outcome: &Outcome, pid: u32) -> String {
    let mut out = format!(
        "==={pid}==ERROR: pipe-harness: the server {} {} (confirmed on a fresh server)\n",
        target.name,
        outcome.describe()
    );
    for line in outcome.output().unwrap_or_default() {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("the case: {} ({} write(s)): {}\n", case.kind, case.writes.len(), case.writes_hex()));
    out.push_str(&format!("SUMMARY: pipe-harness: {}\n", outcome.bucket().0));
    out
}

/// A libFuzzer flag's value from this process's arguments (`-name=value`).
pub fn flag(name: &str) -> Option<u64> {
    let prefix = format!("-{name}=");
    std::env::args().filter_map(|a| a.strip_prefix(&prefix).and_then(|v| v.parse().ok())).next_back()
}

/// How long to outlive libFuzzer's `-timeout` (default 1200 s) so its watchdog sees this input
/// as a timeout: the timeout and half again (its alarm fires every timeout/2 + 1 s), plus 2 s.
pub fn outlive_timeout() -> Duration {
    let t = flag("timeout").unwrap_or(1200);
    Duration::from_secs(t + t / 2 + 2)
}

/// The allocation that exceeds libFuzzer's malloc limit (`-malloc_limit_mb`, else
/// `-rss_limit_mb`, default 2048), which libFuzzer reports as out-of-memory; `None` when both
/// are 0 (no limit).
pub fn over_malloc_limit() -> Option<usize> {
    let mb = flag("malloc_limit_mb").filter(|m| *m > 0).or_else(|| Some(flag("rss_limit_mb").unwrap_or(2048)))?;
    (mb > 0).then(|| ((mb + 1) << 20) as usize)
}

/// The plan a target built with `plan` (relative to the fuzz crate, `manifest_dir`) uses:
/// [`PLAN_VAR`] when set; else `NAME.toml` beside the fuzzer binary `NAME` when there is one
/// (a build copied to `$OUT`, as `.clusterfuzzlite/build.sh` does); else that file.
pub fn plan_path(manifest_dir: &str, plan: &str) -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(PLAN_VAR) {
        return p.into();
    }
    let beside = std::env::current_exe().ok().map(|exe| exe.with_extension("toml")).filter(|p| p.is_file());
    beside.unwrap_or_else(|| Path::new(manifest_dir).join(plan))
}

/// Exposes a plan's live server as a libFuzzer target; for `fuzz/fuzz_targets/live.rs`:
///
/// ```ignore
/// #![no_main]
/// pipe_harness::live_fuzz_target!("../tests/my-service.toml");
/// ```
///
/// The plan's path is relative to the fuzz crate (`PIPE_HARNESS_PLAN` overrides it). The fuzz
/// crate depends on `libfuzzer-sys`. The server's edge map goes to libFuzzer's extra counters
/// (the `__libfuzzer_extra_counters` section), its comparison operands to
/// `__sanitizer_cov_trace_cmp1/2/4/8`.
#[macro_export]
macro_rules! live_fuzz_target {
    ($plan:expr) => {
        #[used]
        #[link_section = "__libfuzzer_extra_counters"]
        static PH_EXTRA_COUNTERS: [::std::sync::atomic::AtomicU8; $crate::engine::live::coverage::MAP_SIZE] =
            [const { ::std::sync::atomic::AtomicU8::new(0) }; $crate::engine::live::coverage::MAP_SIZE];
        static PH_LIVE: ::std::sync::Mutex<Option<$crate::engine::live::libfuzzer::LiveTarget>> =
            ::std::sync::Mutex::new(None);
        extern "C" {
            fn __sanitizer_cov_trace_cmp1(a: u8, b: u8);
            fn __sanitizer_cov_trace_cmp2(a: u16, b: u16);
            fn __sanitizer_cov_trace_cmp4(a: u32, b: u32);
            fn __sanitizer_cov_trace_cmp8(a: u64, b: u64);
            fn __sanitizer_weak_hook_memcmp(caller_pc: *const u8, s1: *const u8, s2: *const u8, n: usize, result: i32);
        }
        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use $crate::engine::live::libfuzzer as lf;
            let mut guard = PH_LIVE.lock().unwrap_or_else(::std::sync::PoisonError::into_inner);
            if guard.is_none() {
                let plan = lf::plan_path(env!("CARGO_MANIFEST_DIR"), $plan);
                match lf::LiveTarget::from_plan(&plan) {
                    Ok(t) => *guard = Some(t),
                    Err(e) => {
                        eprintln!("pipe-harness: the live target {}: {e}", plan.display());
                        ::std::process::exit(2);
                    }
                }
            }
            let Some(live) = guard.as_mut() else { return };
            match live.run(data) {
                Ok(lf::Step::Ran(ran)) => {
                    if let Some(trace) = ran.trace {
                        for (c, v) in PH_EXTRA_COUNTERS.iter().zip(&trace.map) {
                            if *v != 0 {
                                c.store(*v, ::std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        let words = lf::compared_words(data, &trace.cmps, 64);
                        for (i, (have, want)) in words.iter().enumerate() {
                            // SAFETY: both words are `have.len()` bytes long and live through
                            // the call; libFuzzer copies what it keeps. The "caller" is a
                            // made-up site per word, for its value profile.
                            unsafe {
                                __sanitizer_weak_hook_memcmp(
                                    ::std::ptr::without_provenance(0x1000 + i * 8),
                                    have.as_ptr(),
                                    want.as_ptr(),
                                    have.len(),
                                    1,
                                )
                            }
                        }
                        for (a, b, size) in trace.cmps {
                            // SAFETY: libFuzzer's comparison hooks take two integers and only
                            // record them.
                            unsafe {
                                match size {
                                    1 => __sanitizer_cov_trace_cmp1(a as u8, b as u8),
                                    2 => __sanitizer_cov_trace_cmp2(a as u16, b as u16),
                                    4 => __sanitizer_cov_trace_cmp4(a as u32, b as u32),
                                    _ => __sanitizer_cov_trace_cmp8(a, b),
                                }
                            }
                        }
                    }
                }
                Ok(lf::Step::Found { artifact, report }) => {
                    eprint!("{report}");
                    // The server and the coverage file go before the process does.
                    drop(guard.take());
                    match artifact {
                        lf::Artifact::Crash => {}
                        lf::Artifact::Timeout => ::std::thread::sleep(lf::outlive_timeout()),
                        lf::Artifact::OutOfMemory => {
                            if let Some(n) = lf::over_malloc_limit() {
                                ::std::hint::black_box(Vec::<u8>::with_capacity(n));
                            }
                        }
                    }
                    ::std::process::abort();
                }
                Err(e) => {
                    eprintln!("pipe-harness: the live target failed: {e}");
                    ::std::process::exit(2);
                }
            }
        });
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        let text = "[target]\nname = \"t\"\nprogram = \"bin/t\"\nendpoint = \"t-{unique}\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = { request = \"PING\", success = \"PONG\" }\nsession = [{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = { offset = 8, len = 4 } }, { send = \"AUTH\" }]\nmessage_prefix = \"{capture}\"\n";
        crate::engine::plan::parse(Path::new("t.toml"), text).expect("plan").0
    }

    #[test]
    fn the_first_byte_chooses_the_session_use_and_the_message_count() {
        let t = target();
        let s = |d: &[u8]| case_from_input(&t, d).session.expect("a session use");
        assert_eq!(s(&[0x00, 1]), SessionUse { steps: 2, messages: true, prefix: true });
        assert_eq!(s(&[0x05, 1]), SessionUse { steps: 2, messages: true, prefix: false });
        assert_eq!(s(&[0x06, 1]), SessionUse { steps: 2, messages: false, prefix: false });
        assert_eq!(s(&[0x07, 1]), SessionUse { steps: 0, messages: false, prefix: false });
        assert_eq!(s(&[0x27, 1]), SessionUse { steps: 1, messages: false, prefix: false });
        // One message: all the rest; an empty input is one empty message.
        assert_eq!(case_from_input(&t, &[0x00, 1, 2, 3]).writes, vec![vec![1, 2, 3]]);
        assert_eq!(case_from_input(&t, &[]).writes, vec![Vec::<u8>::new()]);
        // Two to four messages: each but the last has its length from the input.
        let c = case_from_input(&t, &[0x18, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.writes.len(), 4);
        assert_eq!(c.writes.concat().len() + 3, 8, "{c:?}");
        assert_eq!(c, case_from_input(&t, &[0x18, 1, 2, 3, 4, 5, 6, 7, 8]));
    }

    #[test]
    fn compared_operands_the_input_carries_become_word_pairs_in_place() {
        // A byte compared with 'C' where the input has 'G'; a checksum byte 0x05 wanted 0x09;
        // an operand the input does not carry gives nothing.
        let data = [0x00, 0x4D, b'M', b'A', b'G', b'G', 0x05];
        let cmps = [(u64::from(b'G'), u64::from(b'C'), 1), (5, 9, 1), (0x7777, 0x1234, 2)];
        let words = compared_words(&data, &cmps, 64);
        assert!(words.contains(&(b"GG".to_vec(), b"CG".to_vec())), "{words:?}");
        assert!(words.contains(&(vec![b'G', 0x05], vec![b'G', 0x09])), "{words:?}");
        assert!(words.iter().all(|(o, _)| o.len() >= 2 && !o.starts_with(&[0x77])), "{words:?}");
        assert_eq!(compared_words(&data, &cmps, 1).len(), 1);
    }

    #[test]
    fn the_dictionary_has_the_session_and_the_ping_escaped() {
        assert_eq!(dictionary(&target()), "\"HELLO\\x02\"\n\"WELCOME \"\n\"AUTH\"\n\"PING\"\n\"PONG\"\n");
    }
}
