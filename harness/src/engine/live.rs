//! The live fuzzer: hostile frames sent to a running server over a real endpoint, with crash
//! and hang detection, reproducers and minimisation.
//!
//! Cases are structure-aware: they come from the target's framing (length fields that lie,
//! truncated headers, frames dripped a byte per write, valid frames with hostile payloads) and
//! from mutations of a seed corpus. Case `i` of a campaign is generated from `seed ^ i`, so a
//! finding replays from its seed and index alone. After each case the fuzzer checks the server:
//! did it exit (a crash, with its exit code or signal), and does it still answer its liveness
//! ping (a hang)? On a finding it minimises the case against fresh servers, saves a
//! reproducer, restarts the server and goes on.

use super::backend::{request_succeeds, Backend, Conn, ConnectSpec};
use super::server::{ServerUnderTest, Started};
use super::target::{FramingSpec, Target};
use super::Schedule;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One case: the writes, in order, on one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// Each element is one write.
    pub writes: Vec<Vec<u8>>,
    /// What the case is (for reports).
    pub kind: String,
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
    /// Still running but its liveness ping got no answer.
    Hung {
        /// What the ping saw.
        detail: String,
    },
}

impl Outcome {
    /// A finding (crash or hang)?
    pub fn is_finding(&self) -> bool {
        !matches!(self, Outcome::Survived)
    }

    /// What tells one bug from another: a crash's panic or fault location when its output
    /// names one, else its exit status; a hang is one bucket.
    pub fn signature(&self) -> String {
        match self {
            Outcome::Survived => "survived".into(),
            Outcome::Hung { .. } => "hang".into(),
            Outcome::Crashed { code, output } => output
                .iter()
                .find_map(|l| {
                    l.split("panicked at ").nth(1).map(|loc| format!("crash at {}", loc.trim_end_matches(':')))
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
    /// What the server did.
    pub outcome: Outcome,
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
    let kind = s.below(if corpus.is_empty() { 5 } else { 6 });
    match (kind, width) {
        (1, w) if w > 0 => {
            let body = bytes(&mut s, 32);
            let lies = [0, 1, width_max(w), width_max(w) / 2 + 1, body.len() as u64 + 1, body.len() as u64 * 100 + 7];
            let lie = lies[s.below(lies.len() as u64) as usize];
            let mut frame = header(w, little, lie);
            frame.extend_from_slice(&body);
            Case { writes: vec![frame], kind: format!("length field says {lie}, {} bytes follow", body.len()) }
        }
        (2, w) if w > 1 => {
            let whole = header(w, little, 4);
            let k = 1 + s.below(w as u64 - 1) as usize;
            Case { writes: vec![whole[..k].to_vec()], kind: format!("a header cut after {k} of {w} bytes") }
        }
        (3, _) => {
            let frame = valid(&bytes(&mut s, 24));
            Case {
                writes: frame.iter().map(|b| vec![*b]).collect(),
                kind: "a valid frame dripped a byte per write".into(),
            }
        }
        (4, _) => {
            let payload = HOSTILE[s.below(HOSTILE.len() as u64) as usize];
            Case {
                writes: vec![valid(payload)],
                kind: format!("a valid frame with the hostile payload {payload:02x?}"),
            }
        }
        (5, _) => {
            let mut m = corpus[s.below(corpus.len() as u64) as usize].clone();
            for _ in 0..1 + s.below(3) {
                if !m.is_empty() {
                    let i = s.below(m.len() as u64) as usize;
                    m[i] ^= 1 << s.below(8);
                }
            }
            Case { writes: vec![m], kind: "a corpus entry with bits flipped".into() }
        }
        _ => {
            let payload = bytes(&mut s, 64);
            Case { writes: vec![valid(&payload)], kind: format!("a valid {}-byte frame", payload.len()) }
        }
    }
}

/// Sends one case on a fresh connection, then checks the server.
pub fn run_case<B: Backend>(backend: &B, target: &Target, server: &mut ServerUnderTest, case: &Case) -> Outcome {
    let spec = ConnectSpec { timeout: Duration::from_secs(2), ..ConnectSpec::default() };
    if let Ok(mut c) = backend.connect(&server.endpoint, &spec) {
        for w in &case.writes {
            if c.send(w, Duration::from_secs(1)).is_err() {
                break;
            }
        }
        // Give the server a moment to read and answer (or choke) before hanging up; the
        // liveness ping below is what tells whether it survived.
        let mut buf = [0u8; 4096];
        let _ = c.recv(&mut buf, Duration::from_millis(20));
    }
    // A case that kills the server usually does so within milliseconds: wait for that briefly
    // (a pidfd / process-handle wait, which returns at once on exit), so the ping below does not
    // connect into the backlog of a server that is already dying.
    if let Some(code) = server.wait_exit(backend, Duration::from_millis(3)) {
        return Outcome::Crashed { code, output: server.final_output(Duration::from_secs(2)) };
    }
    let ping = |server: &ServerUnderTest| match &target.ping {
        Some(ping) => request_succeeds(backend, &server.endpoint, &spec, &target.framing, ping, Duration::from_secs(2)),
        None => backend.connect(&server.endpoint, &spec).map(|_| true).map_err(|e| e.to_string()),
    };
    let mut last = String::new();
    // A failed ping is a hang only if the server neither dies nor answers a second ping: a
    // dying server can take a while to go (under Wine, seconds).
    for _ in 0..2 {
        match ping(server) {
            Ok(true) => return Outcome::Survived,
            Ok(false) => last = "the liveness ping got a wrong answer".into(),
            Err(e) => last = format!("no answer to the liveness ping: {e}"),
        }
        if let Some(code) = server.wait_exit(backend, Duration::from_secs(2)) {
            return Outcome::Crashed { code, output: server.final_output(Duration::from_secs(2)) };
        }
    }
    Outcome::Hung { detail: last }
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
        let mut c = best.clone();
        c.writes.remove(i);
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
}

/// Fuzzes `target` from `seed`: at most `max_cases` cases or `max_time`, stopping after
/// `max_findings` findings. `progress` is called after each case.
#[allow(clippy::too_many_arguments)]
pub fn fuzz<B: Backend>(
    backend: &B,
    target: &Target,
    seed: u64,
    max_cases: u64,
    max_time: Duration,
    max_findings: usize,
    corpus: &[Vec<u8>],
    mut progress: impl FnMut(&Campaign),
) -> Result<Campaign> {
    let t0 = Instant::now();
    let mut campaign = Campaign::default();
    let mut server = start(backend, target)?;
    for index in 0..max_cases {
        if t0.elapsed() >= max_time || campaign.findings.len() >= max_findings {
            break;
        }
        let case = generate(&target.framing, seed, index, corpus);
        let outcome = run_case(backend, target, &mut server, &case);
        campaign.cases += 1;
        if outcome.is_finding() {
            let signature = outcome.signature();
            if campaign.findings.iter().any(|r| r.outcome.signature() == signature) {
                campaign.duplicates += 1;
            } else {
                // A hang costs seconds per try and depends on timing: keep it as found.
                let minimized = if matches!(outcome, Outcome::Hung { .. }) {
                    case.clone()
                } else {
                    minimize(backend, target, &case, &outcome, 12)
                };
                campaign.findings.push(Reproducer {
                    target: target.name.clone(),
                    seed,
                    index,
                    original: case,
                    case: minimized,
                    outcome,
                });
            }
            server = start(backend, target)?;
        }
        campaign.elapsed_ms = t0.elapsed().as_millis() as u64;
        progress(&campaign);
    }
    campaign.elapsed_ms = t0.elapsed().as_millis() as u64;
    Ok(campaign)
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
