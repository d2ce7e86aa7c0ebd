//! Cases: the writes the fuzzer sends, each on one of the case's connections, and their
//! generation from the target's framing. Case `i` of a campaign comes from the seed and `i`
//! alone, so a finding replays from both.

use crate::engine::Schedule;
use crate::target::FramingSpec;
use serde::{Deserialize, Serialize};

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
    /// How the case uses the target's session; `None`: the writes go out as they are (a
    /// target without a session, or a reproducer made before sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionUse>,
}

/// How a case uses the target's session opening on each of its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUse {
    /// How many of the session's steps to run first (fewer than all: the next step is the
    /// case's first write, broken).
    pub steps: usize,
    /// The writes are messages: each is framed at send time (after the message prefix, with
    /// the captured token in it, when `prefix`).
    pub messages: bool,
    /// Put the target's message prefix in front of each message.
    pub prefix: bool,
}

impl Case {
    pub(crate) fn single(writes: Vec<Vec<u8>>, kind: String) -> Self {
        Case { writes, on: Vec::new(), kind, session: None }
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

    /// The writes with the connection each goes on (for the minimiser).
    pub(crate) fn pieces(&self) -> Vec<(u8, Vec<u8>)> {
        self.writes.iter().enumerate().map(|(i, w)| (self.connection_of(i) as u8, w.clone())).collect()
    }

    /// A case from writes with their connections, connections renumbered in order of first
    /// use (so that a case whose first connection was dropped still starts on connection 0).
    pub(crate) fn from_pieces(pieces: &[(u8, Vec<u8>)], kind: String) -> Self {
        let mut seen: Vec<u8> = Vec::new();
        let mut on = Vec::with_capacity(pieces.len());
        for (c, _) in pieces {
            let n = seen.iter().position(|s| s == c).unwrap_or_else(|| {
                seen.push(*c);
                seen.len() - 1
            });
            on.push(n as u8);
        }
        if on.iter().all(|c| *c == 0) {
            on.clear();
        }
        Case { writes: pieces.iter().map(|(_, w)| w.clone()).collect(), on, kind, session: None }
    }

    /// Bytes in all its writes.
    pub fn len(&self) -> usize {
        self.writes.iter().map(Vec::len).sum()
    }

    /// No bytes at all?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(crate) fn width_max(width: usize) -> u64 {
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    }
}

/// The length a `width`-byte header `h` declares (the inverse of [`header`]).
pub(crate) fn declared_length(h: &[u8], little: bool) -> u64 {
    let mut v = 0u64;
    let mut bytes = h.to_vec();
    if little {
        bytes.reverse();
    }
    for b in bytes {
        v = (v << 8) | u64::from(b);
    }
    v
}

/// A `width`-byte length header declaring `len` (big endian unless `little`).
pub(crate) fn header(width: usize, little: bool, len: u64) -> Vec<u8> {
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
/// The longest message a covered case grows by one byte (an insertion, or the longer twin of an
/// input-to-state candidate).
pub(crate) const GROW_BELOW: usize = 4096;

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
    let kind = s.below(if corpus.is_empty() { 7 } else { 8 });
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
            // Most binary protocols lead a payload with a type byte: every value of it, with a
            // short body, the way a parser's dispatch is reached.
            let tag = s.below(256) as u8;
            let mut payload = vec![tag];
            payload.extend(bytes(&mut s, 16));
            Case::single(vec![valid(&payload)], format!("a valid frame led by the byte {tag:#04x}"))
        }
        (7, _) => {
            let mut m = corpus[s.below(corpus.len() as u64) as usize].clone();
            flip_bits(&mut s, &mut m);
            Case::single(vec![m], "a corpus entry with bits flipped".into())
        }
        _ => {
            let payload = bytes(&mut s, 64);
            Case::single(vec![valid(&payload)], format!("a valid {}-byte frame", payload.len()))
        }
    }
}

/// Flips one to three bits of `m`, chosen by `s` (nothing in an empty `m`): the schedule draws
/// the count, then each bit's byte and position, in that order (reproducers depend on it).
fn flip_bits(s: &mut Schedule, m: &mut [u8]) {
    for _ in 0..1 + s.below(3) {
        if !m.is_empty() {
            let i = s.below(m.len() as u64) as usize;
            m[i] ^= 1 << s.below(8);
        }
    }
}

/// Case `index` of a campaign against `target`: [`generate`]'s cases as they are for a target
/// without a session. With one, every case runs the session's opening first on each
/// connection: most cases are then messages (framed at send time behind the message prefix,
/// so a server that checks a token on each message sees its token), a few keep [`generate`]'s
/// broken framing, and some break one step of the opening itself.
pub fn generate_for(
    target: &crate::target::Target,
    seed: u64,
    index: u64,
    corpus: &[Vec<u8>],
    messages: &[Vec<u8>],
) -> Case {
    let framed = generate(&target.framing, seed, index, corpus);
    let mut s = Schedule::new(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5E55_1011);
    let all = target.session.len();
    // A recorded message with bits flipped, a case in four when there are recordings.
    if !messages.is_empty() && s.below(4) == 0 {
        let mut m = messages[s.below(messages.len() as u64) as usize].clone();
        flip_bits(&mut s, &mut m);
        return Case {
            writes: vec![m],
            on: Vec::new(),
            kind: "a recorded message with bits flipped".into(),
            session: Some(SessionUse { steps: all, messages: true, prefix: all > 0 }),
        };
    }
    if target.session.is_empty() {
        return framed;
    }
    let message = |writes: Vec<Vec<u8>>, kind: String| Case {
        writes,
        on: Vec::new(),
        kind,
        session: Some(SessionUse { steps: all, messages: true, prefix: true }),
    };
    match s.below(10) {
        0 | 1 => Case { session: Some(SessionUse { steps: all, messages: false, prefix: false }), ..framed },
        2 => {
            let k = s.below(all as u64) as usize;
            let mut m = target.session[k].send.clone();
            flip_bits(&mut s, &mut m);
            Case {
                writes: vec![m],
                on: Vec::new(),
                kind: format!("session step {} with bits flipped", k + 1),
                session: Some(SessionUse { steps: k, messages: true, prefix: false }),
            }
        }
        3 | 4 => {
            let tag = s.below(256) as u8;
            let mut payload = vec![tag];
            payload.extend(bytes(&mut s, 16));
            message(vec![payload], format!("after the session, a message led by the byte {tag:#04x}"))
        }
        5 => {
            let payload = HOSTILE[s.below(HOSTILE.len() as u64) as usize].to_vec();
            message(vec![payload.clone()], format!("after the session, the hostile message {payload:02x?}"))
        }
        6 => {
            let n = 2 + s.below(3) as usize;
            let msgs: Vec<Vec<u8>> = (0..n).map(|_| bytes(&mut s, 24)).collect();
            message(msgs, format!("after the session, {n} messages"))
        }
        _ => {
            let payload = bytes(&mut s, 64);
            message(vec![payload.clone()], format!("after the session, a {}-byte message", payload.len()))
        }
    }
}

/// A case from the coverage corpus (inputs that reached new edges, as messages): one entry
/// mutated one to four times, by a flipped bit, a random byte, an inserted or removed byte, or a
/// comparison's operand put where the other one was (input-to-state); a case in eight is
/// [`generate_for`]'s (with the corpus's raw `frames` and the coverage corpus's messages), so
/// the black-box kinds keep running.
pub fn generate_covered(
    target: &crate::target::Target,
    seed: u64,
    index: u64,
    frames: &[Vec<u8>],
    corpus: &[super::coverage::Entry],
    all_tokens: &[super::coverage::Token],
) -> Case {
    let mut s = Schedule::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0xC0_7E4A6E);
    if corpus.is_empty() || s.below(8) == 0 {
        let messages: Vec<Vec<u8>> = corpus.iter().map(|(m, _)| m.clone()).collect();
        return generate_for(target, seed, index, frames, &messages);
    }
    // Newer entries (deeper in the program) are picked more often: the newest a third of the
    // time, one of the eight newest another third.
    let pick = match s.below(3) {
        0 => corpus.len() - 1,
        1 => corpus.len() - 1 - s.below(corpus.len().min(8) as u64) as usize,
        _ => s.below(corpus.len() as u64) as usize,
    };
    let (mut m, own) = corpus[pick].clone();
    // The comparisons this input ran into (input-to-state), else any seen.
    let tokens: &[super::coverage::Token] = if !own.is_empty() && s.below(4) != 0 { &own } else { all_tokens };
    // One change half the time (what input-to-state needs), else up to four.
    let ops = if s.below(2) == 0 { 1 } else { 1 + s.below(4) };
    let mut what = Vec::new();
    for _ in 0..ops {
        match s.below(if tokens.is_empty() { 4 } else { 7 }) {
            0 if !m.is_empty() => {
                let i = s.below(m.len() as u64) as usize;
                m[i] ^= 1 << s.below(8);
                what.push("bit");
            }
            1 if !m.is_empty() => {
                let i = s.below(m.len() as u64) as usize;
                m[i] = s.below(256) as u8;
                what.push("byte");
            }
            2 if m.len() < GROW_BELOW => {
                let i = s.below(m.len() as u64 + 1) as usize;
                m.insert(i, s.below(256) as u8);
                what.push("insert");
            }
            3 if m.len() > 1 => {
                let i = s.below(m.len() as u64) as usize;
                m.remove(i);
                what.push("delete");
            }
            4..=6 => {
                let (from, to) = &tokens[s.below(tokens.len() as u64) as usize];
                let hits: Vec<usize> = super::coverage::occurrences(&m, from).collect();
                let found = (!hits.is_empty()).then(|| hits[s.below(hits.len() as u64) as usize]);
                match found {
                    Some(i) => {
                        m.splice(i..i + from.len(), to.iter().copied());
                        what.push("input-to-state");
                    }
                    None => {
                        let i = s.below(m.len() as u64 + 1) as usize;
                        m.splice(i..i, to.iter().copied());
                        what.push("token");
                    }
                }
            }
            _ => {}
        }
    }
    let all = target.session.len();
    Case {
        writes: vec![m],
        on: Vec::new(),
        kind: format!(
            "a covered input, mutated ({})",
            if what.is_empty() { "as it is".to_string() } else { what.join(", ") }
        ),
        session: Some(SessionUse { steps: all, messages: true, prefix: all > 0 }),
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
    Case { writes, on, kind: format!("frames from {n} connections interleaved in pieces"), session: None }
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
