//! The live fuzzer: hostile frames sent to a running server over a real endpoint, with crash
//! and hang detection, reproducers and minimisation.
//!
//! Cases are structure-aware: they come from the target's framing (length fields that lie,
//! truncated headers, frames dripped a byte per write, frames interleaved across several
//! connections, valid frames with hostile payloads) and from mutations of a seed corpus. Case
//! `i` of a campaign is generated from the seed and `i` alone, so a finding replays from both.
//! After each case the fuzzer checks the server: did it exit (a crash, with its exit code or
//! signal), does it still accept connections (a disconnect with no recovery: alive but
//! unreachable), does it still answer its liveness ping (a hang)? Every few cases it reads the
//! server's resident memory and reports growth past a limit. On a finding it minimises the case
//! against fresh servers, saves a reproducer, restarts the server and goes on. With
//! [`FuzzOptions::jobs`] above one, that many servers are fuzzed in parallel, each job taking
//! the next case index not yet taken, with findings deduplicated across them.

use super::backend::{exchange, Backend, Conn, ConnectSpec};
use super::server::{ServerUnderTest, Started};
use super::target::{FramingSpec, Target};
use super::Schedule;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One case: the writes, in order, each on one of the case's connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Each element is one write.
    pub writes: Vec<Vec<u8>>,
    /// Which connection (0, 1, ...) each write goes on; empty: all on one connection.
    /// Connections are opened when first written to and stay open until the case ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<u8>,
    /// What the case is (for reports).
    pub kind: String,
}

impl Case {
    fn single(writes: Vec<Vec<u8>>, kind: String) -> Self {
        Case { writes, on: Vec::new(), kind }
    }

    /// The connection write `i` goes on.
    pub fn connection_of(&self, i: usize) -> usize {
        self.on.get(i).map_or(0, |c| usize::from(*c))
    }

    /// How many connections the case opens.
    pub fn connections(&self) -> usize {
        (0..self.writes.len()).map(|i| self.connection_of(i) + 1).max().unwrap_or(1)
    }

    /// The writes as hex, one group per write, separated by ` | ` (for reports).
    pub fn writes_hex(&self) -> String {
        let hex = |w: &Vec<u8>| w.iter().map(|b| format!("{b:02x}")).collect::<String>();
        self.writes.iter().map(hex).collect::<Vec<_>>().join(" | ")
    }

    fn without_write(&self, i: usize) -> Self {
        let mut c = self.clone();
        c.writes.remove(i);
        if i < c.on.len() {
            c.on.remove(i);
        }
        c
    }
}

/// What the server did after a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Still alive and answering.
    Survived,
    /// It exited: `code` is its exit code, `None` when a signal ended it.
    Crashed {
        /// The exit code.
        code: Option<i32>,
        /// Its last output lines.
        output: Vec<String>,
    },
    /// Still running and accepting connections, but its liveness ping got no answer.
    Hung {
        /// What the ping saw.
        detail: String,
    },
    /// Still running but no longer accepting connections: it dropped the case's connection
    /// and did not recover (its accept loop died, its endpoint went away).
    Unreachable {
        /// What the connect saw.
        detail: String,
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
    /// A finding (crash or hang)?
    pub fn is_finding(&self) -> bool {
        !matches!(self, Outcome::Survived)
    }

    /// One line for people: what the server did.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Survived => "survived".into(),
            Outcome::Crashed { code: Some(c), .. } => format!("crashed with exit code {c} ({})", self.signature()),
            Outcome::Crashed { code: None, .. } => format!("killed by a signal ({})", self.signature()),
            Outcome::Hung { detail } => format!("hung: {detail}"),
            Outcome::Unreachable { detail } => format!("alive but no longer accepting connections: {detail}"),
            Outcome::MemoryGrowth { baseline_kib, now_kib, cases } => {
                format!("resident memory grew from {baseline_kib} KiB to {now_kib} KiB over {cases} cases")
            }
        }
    }

    /// What tells one bug from another: a crash's panic or fault location when its output
    /// names one, else its exit status; a hang is one bucket.
    pub fn signature(&self) -> String {
        match self {
            Outcome::Survived => "survived".into(),
            Outcome::Hung { .. } => "hang".into(),
            Outcome::Unreachable { .. } => "unreachable after a disconnect".into(),
            Outcome::MemoryGrowth { .. } => "memory growth".into(),
            Outcome::Crashed { code, output } => output
                .iter()
                .find_map(|l| {
                    l.split("panicked at ").nth(1).map(|loc| format!("crash at {}", loc.trim_end_matches(':')))
                })
                .or_else(|| {
                    // Rust's allocation-failure abort prints no panic location.
                    output
                        .iter()
                        .any(|l| l.contains("memory allocation of"))
                        .then(|| "crash: memory allocation failed".into())
                })
                .unwrap_or_else(|| format!("crash, exit {code:?}")),
        }
    }
}

/// A saved finding: enough to replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproducer {
    /// The target's name.
    pub target: String,
    /// The campaign's seed.
    pub seed: u64,
    /// The case's index in the campaign.
    pub index: u64,
    /// The case as generated.
    pub original: Case,
    /// The case after minimisation (what to replay).
    pub case: Case,
    /// How many times to send `case` in a row to reproduce (1 but for memory growth, which
    /// shows over many cases: the last case, repeated as often as the cases that grew it).
    #[serde(default = "one")]
    pub repeat: u64,
    /// What the server did.
    pub outcome: Outcome,
    /// When, after the campaign started, it was found (ms).
    #[serde(default)]
    pub found_after_ms: u64,
}

fn one() -> u64 {
    1
}

fn width_max(width: usize) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    }
}

fn header(width: usize, little: bool, len: u64) -> Vec<u8> {
    let b = len.to_be_bytes();
    let mut h = b[8 - width..].to_vec();
    if little {
        h.reverse();
    }
    h
}

fn bytes(s: &mut Schedule, max: u64) -> Vec<u8> {
    (0..s.below(max + 1)).map(|_| s.next_u64() as u8).collect()
}

/// Payloads that break naive decoders: an extension-record marker with a lying inner length,
/// NULs, 0xFF runs, an empty payload.
const HOSTILE: &[&[u8]] = &[&[0x7F, 0xFF, 0x00], &[0x7F, 200, 1], &[], &[0x00; 16], &[0xFF; 300], &[0x7F]];

/// Generates case `index` of a campaign seeded with `seed`.
pub fn generate(framing: &FramingSpec, seed: u64, index: u64, corpus: &[Vec<u8>]) -> Case {
    let mut s = Schedule::new(seed ^ index.wrapping_mul(0x9E37_79B9));
    let (width, little) = match framing {
        FramingSpec::Length { width, little_endian } => (*width, *little_endian),
        FramingSpec::Thrift => (4, false),
        _ => (0, false),
    };
    let valid = |payload: &[u8]| framing.encode(payload).unwrap_or_else(|_| payload.to_vec());
    let kind = s.below(if corpus.is_empty() { 6 } else { 7 });
    match (kind, width) {
        (5, _) => interleaved(&mut s, &valid, width, little),
        (1, w) if w > 0 => {
            let body = bytes(&mut s, 32);
            let lies = [0, 1, width_max(w), width_max(w) / 2 + 1, body.len() as u64 + 1, body.len() as u64 * 100 + 7];
            let lie = lies[s.below(lies.len() as u64) as usize];
            let mut frame = header(w, little, lie);
            frame.extend_from_slice(&body);
            Case::single(vec![frame], format!("length field says {lie}, {} bytes follow", body.len()))
        }
        (2, w) if w > 1 => {
            let whole = header(w, little, 4);
            let k = 1 + s.below(w as u64 - 1) as usize;
            Case::single(vec![whole[..k].to_vec()], format!("a header cut after {k} of {w} bytes"))
        }
        (3, _) => {
            let frame = valid(&bytes(&mut s, 24));
            Case::single(frame.iter().map(|b| vec![*b]).collect(), "a valid frame dripped a byte per write".into())
        }
        (4, _) => {
            let payload = HOSTILE[s.below(HOSTILE.len() as u64) as usize];
            Case::single(vec![valid(payload)], format!("a valid frame with the hostile payload {payload:02x?}"))
        }
        (6, _) => {
            let mut m = corpus[s.below(corpus.len() as u64) as usize].clone();
            for _ in 0..1 + s.below(3) {
                if !m.is_empty() {
                    let i = s.below(m.len() as u64) as usize;
                    m[i] ^= 1 << s.below(8);
                }
            }
            Case::single(vec![m], "a corpus entry with bits flipped".into())
        }
        _ => {
            let payload = bytes(&mut s, 64);
            Case::single(vec![valid(&payload)], format!("a valid {}-byte frame", payload.len()))
        }
    }
}

/// Two or three connections, each sending frames in pieces, the pieces interleaved: a server
/// that keeps decoder state per process instead of per connection, or serves one client at a
/// time while another waits half-way through a frame, shows here. One connection may lie about
/// its length.
fn interleaved(s: &mut Schedule, valid: &dyn Fn(&[u8]) -> Vec<u8>, width: usize, little: bool) -> Case {
    let n = 2 + s.below(2) as usize;
    let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = (0..n)
        .map(|c| {
            let mut wire = valid(&bytes(s, 24));
            if c == 1 && width > 0 && s.below(2) == 0 {
                wire = header(width, little, width_max(width).min(1 << 20));
            }
            let mut pieces = std::collections::VecDeque::new();
            while !wire.is_empty() {
                let k = (1 + s.below(4) as usize).min(wire.len());
                pieces.push_back(wire.drain(..k).collect());
            }
            pieces
        })
        .collect();
    let (mut writes, mut on) = (Vec::new(), Vec::new());
    while queues.iter().any(|q| !q.is_empty()) {
        let c = s.below(n as u64) as usize;
        if let Some(piece) = queues[c].pop_front() {
            writes.push(piece);
            on.push(c as u8);
        }
    }
    Case { writes, on, kind: format!("frames from {n} connections interleaved in pieces") }
}

/// How long the liveness ping waits.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends one case (opening its connections as it goes), then checks the server.
pub fn run_case<B: Backend>(backend: &B, target: &Target, server: &mut ServerUnderTest, case: &Case) -> Outcome {
    let spec = ConnectSpec { timeout: PING_TIMEOUT, ..ConnectSpec::default() };
    {
        let mut conns: Vec<Option<B::Client>> = (0..case.connections()).map(|_| None).collect();
        let mut failed = vec![false; conns.len()];
        for (i, w) in case.writes.iter().enumerate() {
            let c = case.connection_of(i);
            if failed[c] {
                continue;
            }
            if conns[c].is_none() {
                match backend.connect(&server.endpoint, &spec) {
                    Ok(conn) => conns[c] = Some(conn),
                    Err(_) => {
                        failed[c] = true;
                        continue;
                    }
                }
            }
            if let Some(conn) = conns[c].as_mut() {
                failed[c] = conn.send(w, Duration::from_secs(1)).is_err();
            }
        }
        // The connections close here, after the backend's settle time (zero for Unix sockets,
        // whose queue keeps what was written; named pipes lose it if the server has not taken
        // the connection yet): the liveness ping below is what tells whether the server
        // survived. (Waiting 20 ms on Unix sockets too made the fuzzer 36 times slower there.)
        let settle = backend.settle_before_close();
        if !settle.is_zero() {
            let mut buf = [0u8; 4096];
            for conn in conns.iter_mut().flatten() {
                let _ = conn.recv(&mut buf, settle);
            }
        }
    }
    let crashed = |server: &mut ServerUnderTest, wait: Duration| {
        server.wait_exit(backend, wait).map(|code| Outcome::Crashed { code, output: server.final_output(PING_TIMEOUT) })
    };
    if let Some(c) = crashed(server, Duration::ZERO) {
        return c;
    }
    // The ping connects first, so that a server which no longer accepts (unreachable) is
    // told from one that accepts but does not answer (hung).
    let ping = |server: &ServerUnderTest| -> Outcome {
        let mut conn = match backend.connect(&server.endpoint, &spec) {
            Ok(c) => c,
            Err(e) => return Outcome::Unreachable { detail: format!("the liveness ping could not connect: {e}") },
        };
        let Some(ping) = &target.ping else { return Outcome::Survived };
        match exchange(&mut conn, &target.framing, &ping.request, PING_TIMEOUT) {
            Ok(reply) if reply.starts_with(&ping.success_prefix) => Outcome::Survived,
            Ok(reply) => Outcome::Hung { detail: format!("the liveness ping got a wrong answer: {reply:02x?}") },
            Err(e) => Outcome::Hung { detail: format!("no answer to the liveness ping: {e}") },
        }
    };
    let mut last = Outcome::Survived;
    // A failed ping is a finding only if the server neither dies nor answers a second ping: a
    // dying server can take a while to go (under Wine, seconds).
    for _ in 0..2 {
        last = ping(server);
        if !last.is_finding() {
            // A thread-per-client server may answer the ping on one thread while the case's
            // thread is still dying: a last look, without waiting.
            return crashed(server, Duration::ZERO).unwrap_or(last);
        }
        if let Some(c) = crashed(server, PING_TIMEOUT) {
            return c;
        }
    }
    last
}

/// Starts a fresh server for the target.
pub fn start<B: Backend>(backend: &B, target: &Target) -> Result<ServerUnderTest> {
    let endpoint = backend.endpoint(&target.endpoint);
    let mut server = ServerUnderTest::start(backend, target, &endpoint)?;
    match server.wait_ready(backend, &target.readiness, target.ready_timeout) {
        Started::Ready => Ok(server),
        other => Err(Error::Peer(format!("the target did not get ready ({other:?}): {:?}", server.output()))),
    }
}

/// Shrinks a case while it still gives the same finding (same signature: the same crash site,
/// not just any crash), each try on a fresh server:
/// drops whole writes, then shortens the last one. At most `tries` attempts.
pub fn minimize<B: Backend>(backend: &B, target: &Target, case: &Case, outcome: &Outcome, tries: usize) -> Case {
    let mut best = case.clone();
    let mut budget = tries;
    let reproduces = |c: &Case, budget: &mut usize| -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match start(backend, target) {
            Ok(mut s) => run_case(backend, target, &mut s, c).signature() == outcome.signature(),
            Err(_) => false,
        }
    };
    let mut i = 0;
    while i < best.writes.len() && best.writes.len() > 1 {
        let c = best.without_write(i);
        if reproduces(&c, &mut budget) {
            best = c;
        } else {
            i += 1;
        }
    }
    while let Some(last) = best.writes.last() {
        if last.len() <= 1 {
            break;
        }
        let mut c = best.clone();
        let n = last.len() / 2;
        if let Some(l) = c.writes.last_mut() {
            l.truncate(n);
        }
        if reproduces(&c, &mut budget) {
            best = c;
        } else {
            break;
        }
    }
    best.kind = format!("{} (minimised)", case.kind);
    best
}

/// A campaign's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Campaign {
    /// Cases sent.
    pub cases: u64,
    /// Distinct findings (one per signature), minimised.
    pub findings: Vec<Reproducer>,
    /// Further cases that hit a signature already found.
    pub duplicates: u64,
    /// How long it ran.
    pub elapsed_ms: u64,
    /// Servers started (the first of each job, and one after each finding).
    pub restarts: u64,
}

/// How a campaign runs.
#[derive(Clone, Debug)]
pub struct FuzzOptions {
    /// The campaign's seed.
    pub seed: u64,
    /// At most this many cases (over all jobs).
    pub max_cases: u64,
    /// At most this long.
    pub max_time: Duration,
    /// Stop after this many distinct findings.
    pub max_findings: usize,
    /// Seed inputs (bytes as the server receives them) for the mutation cases.
    pub corpus: Vec<Vec<u8>>,
    /// Servers fuzzed in parallel, each with its own fuzzer thread.
    pub jobs: usize,
    /// Report a memory-growth finding when the server's resident size grows by more than this
    /// (KiB) over its baseline; `None`: do not watch memory.
    pub max_rss_growth_kib: Option<u64>,
    /// Read the resident size every this many cases (the baseline after the first such run of
    /// cases, so that start-up allocations are not counted as growth).
    pub rss_every: u64,
    /// Minimisation attempts per finding.
    pub minimize_tries: usize,
}

impl FuzzOptions {
    /// One job, no case limit, at most 60 s, no corpus, memory watched every 25 cases with a
    /// 64 MiB growth limit, 12 minimisation tries per finding.
    pub fn new(seed: u64) -> Self {
        FuzzOptions {
            seed,
            max_cases: u64::MAX,
            max_time: Duration::from_secs(60),
            max_findings: usize::MAX,
            corpus: Vec::new(),
            jobs: 1,
            max_rss_growth_kib: Some(64 * 1024),
            rss_every: 25,
            minimize_tries: 12,
        }
    }
}

/// The resident-memory watch of one server.
struct MemoryWatch {
    baseline: Option<u64>,
    since: u64,
}

impl MemoryWatch {
    fn new() -> Self {
        MemoryWatch { baseline: None, since: 0 }
    }

    /// Called after each case; a growth finding when the limit is passed.
    fn check<B: Backend>(&mut self, backend: &B, pid: u32, opts: &FuzzOptions) -> Option<Outcome> {
        let limit = opts.max_rss_growth_kib?;
        self.since += 1;
        if self.since % opts.rss_every.max(1) != 0 {
            return None;
        }
        let now = backend.resident_kib(pid).ok()?;
        match self.baseline {
            None => {
                self.baseline = Some(now);
                self.since = 0;
                None
            }
            Some(baseline) if now > baseline.saturating_add(limit) => {
                Some(Outcome::MemoryGrowth { baseline_kib: baseline, now_kib: now, cases: self.since })
            }
            Some(_) => None,
        }
    }
}

/// What the jobs share.
struct Shared {
    campaign: std::sync::Mutex<Campaign>,
    next: std::sync::atomic::AtomicU64,
    stop: std::sync::atomic::AtomicBool,
}

/// Fuzzes `target`: cases from `opts.seed`, until `opts.max_cases`, `opts.max_time` or
/// `opts.max_findings`, on `opts.jobs` servers in parallel. `progress` is called after each
/// case with the campaign so far.
pub fn fuzz<B: Backend>(
    backend: &B,
    target: &Target,
    opts: &FuzzOptions,
    progress: impl Fn(&Campaign) + Sync,
) -> Result<Campaign> {
    let t0 = Instant::now();
    let shared = Shared {
        campaign: std::sync::Mutex::new(Campaign::default()),
        next: std::sync::atomic::AtomicU64::new(0),
        stop: std::sync::atomic::AtomicBool::new(false),
    };
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..opts.jobs.max(1))
            .map(|_| scope.spawn(|| fuzz_job(backend, target, opts, &shared, t0, &progress)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(Error::Peer("a fuzzing job panicked".into()))))
            .collect()
    });
    let mut campaign = shared.campaign.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    campaign.elapsed_ms = t0.elapsed().as_millis() as u64;
    campaign.findings.sort_by_key(|r| r.index);
    // A job that could not (re)start its server fails the campaign only if nothing was found:
    // a server that stops starting after a finding is itself worth the report.
    match results.into_iter().find_map(std::result::Result::err) {
        Some(e) if campaign.findings.is_empty() => Err(e),
        _ => Ok(campaign),
    }
}

/// Counts one more case sent and reports the campaign so far.
fn tally(c: &mut Campaign, t0: Instant, progress: &impl Fn(&Campaign)) {
    c.cases += 1;
    c.elapsed_ms = t0.elapsed().as_millis() as u64;
    progress(c);
}

fn fuzz_job<B: Backend>(
    backend: &B,
    target: &Target,
    opts: &FuzzOptions,
    shared: &Shared,
    t0: Instant,
    progress: &(impl Fn(&Campaign) + Sync),
) -> Result<()> {
    use std::sync::atomic::Ordering;
    let lock = || shared.campaign.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut server = start(backend, target)?;
    lock().restarts += 1;
    let mut memory = MemoryWatch::new();
    loop {
        if shared.stop.load(Ordering::Relaxed) || t0.elapsed() >= opts.max_time {
            return Ok(());
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= opts.max_cases {
            return Ok(());
        }
        let case = generate(&target.framing, opts.seed, index, &opts.corpus);
        let mut outcome = run_case(backend, target, &mut server, &case);
        if !outcome.is_finding() {
            outcome = memory.check(backend, server.pid(), opts).unwrap_or(outcome);
        }
        if !outcome.is_finding() {
            tally(&mut lock(), t0, progress);
            continue;
        }
        let found_after_ms = t0.elapsed().as_millis() as u64;
        let signature = outcome.signature();
        let known = lock().findings.iter().any(|r| r.outcome.signature() == signature);
        let reproducer = (!known).then(|| {
            // A hang costs seconds per try and depends on timing, and memory growth shows only
            // over many cases: keep those as found.
            let (minimized, repeat) = match &outcome {
                Outcome::Hung { .. } => (case.clone(), 1),
                Outcome::MemoryGrowth { cases, .. } => (case.clone(), *cases),
                _ => (minimize(backend, target, &case, &outcome, opts.minimize_tries), 1),
            };
            Reproducer {
                target: target.name.clone(),
                seed: opts.seed,
                index,
                original: case,
                case: minimized,
                repeat,
                outcome,
                found_after_ms,
            }
        });
        {
            let mut c = lock();
            match reproducer {
                // Another job may have found the same bug meanwhile.
                Some(r) if !c.findings.iter().any(|f| f.outcome.signature() == signature) => c.findings.push(r),
                _ => c.duplicates += 1,
            }
            if c.findings.len() >= opts.max_findings {
                shared.stop.store(true, Ordering::Relaxed);
            }
            tally(&mut c, t0, progress);
        }
        drop(server);
        server = start(backend, target)?;
        memory = MemoryWatch::new();
        lock().restarts += 1;
    }
}

/// Replays a reproducer on `server`: its case, `repeat` times; for a memory-growth finding,
/// the outcome is growth when the resident size grew by more than `max_growth_kib` over the
/// repeats.
pub fn replay<B: Backend>(
    backend: &B,
    target: &Target,
    server: &mut ServerUnderTest,
    r: &Reproducer,
    max_growth_kib: u64,
) -> Outcome {
    let before = backend.resident_kib(server.pid()).ok();
    for _ in 0..r.repeat.max(1) {
        let outcome = run_case(backend, target, server, &r.case);
        if outcome.is_finding() {
            return outcome;
        }
    }
    match (before, backend.resident_kib(server.pid()).ok()) {
        (Some(b), Some(now)) if r.repeat > 1 && now > b.saturating_add(max_growth_kib) => {
            Outcome::MemoryGrowth { baseline_kib: b, now_kib: now, cases: r.repeat }
        }
        _ => Outcome::Survived,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_replay_from_seed_and_index_and_cover_every_kind() {
        let framing = FramingSpec::Length { width: 8, little_endian: false };
        let corpus = vec![vec![0, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']];
        assert_eq!(generate(&framing, 5, 9, &corpus), generate(&framing, 5, 9, &corpus));
        let kinds: std::collections::BTreeSet<String> = (0..400)
            .map(|i| generate(&framing, 5, i, &corpus).kind.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .collect();
        for want in ["length field says", "a header cut", "a valid frame", "a corpus entry"] {
            assert!(kinds.iter().any(|k| k.starts_with(want)), "{want} missing from {kinds:?}");
        }
        let huge = (0..400).map(|i| generate(&framing, 5, i, &corpus)).find(|c| c.kind.contains(&u64::MAX.to_string()));
        assert!(huge.is_some_and(|c| c.writes[0][..8] == [0xFF; 8]), "a maximal length lie is generated");
    }
}
