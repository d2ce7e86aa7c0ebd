//! Minimisation: the smallest case that still ends a fresh server in the same bucket.
//!
//! In order, each step keeping only what still reproduces: one connection of several alone;
//! adjacent writes on the same connection merged into one; delta debugging (ddmin) over the
//! writes, and merging again; ddmin over the bytes of each write (over a whole frame's payload,
//! its length re-declared); for length-prefixed framing, shrinking a declared length towards the bytes that
//! follow it. Every try runs on a fresh server; the whole is bounded by a number of tries and a
//! time limit, and what is returned always reproduced on its last try.

use crate::backend::Backend;
use crate::target::{FramingSpec, Target};
use std::time::{Duration, Instant};

use super::case::{declared_length, header, Case};
use super::driver::Liveness;
use super::oracle::BucketKey;
use super::replay::replay_once;

/// How much work minimisation may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Replays at most.
    pub tries: usize,
    /// Time at most.
    pub time: Duration,
}

/// Delta debugging (Zeller's ddmin): a smallest subsequence of `items` for which `test` holds,
/// with `test(items)` assumed to hold. 1-minimal within the tries `test` allows: removing any
/// one element fails.
pub fn ddmin<T: Clone>(items: &[T], test: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut cur = items.to_vec();
    let mut n = 2usize;
    while cur.len() >= 2 {
        let chunk = cur.len().div_ceil(n);
        let parts: Vec<(usize, usize)> =
            (0..cur.len()).step_by(chunk).map(|s| (s, (s + chunk).min(cur.len()))).collect();
        let mut reduced = false;
        for &(s, e) in &parts {
            if test(&cur[s..e]) {
                cur = cur[s..e].to_vec();
                n = 2;
                reduced = true;
                break;
            }
        }
        if !reduced && parts.len() > 2 {
            for &(s, e) in &parts {
                let complement: Vec<T> = cur[..s].iter().chain(&cur[e..]).cloned().collect();
                if test(&complement) {
                    cur = complement;
                    n = (n - 1).max(2);
                    reduced = true;
                    break;
                }
            }
        }
        if !reduced {
            if n >= cur.len() {
                break;
            }
            n = (n * 2).min(cur.len());
        }
    }
    cur
}

/// Shrinks `case` while it still ends a fresh server in `bucket`.
pub fn minimize<B: Backend>(
    backend: &B,
    target: &Target,
    case: &Case,
    bucket: &BucketKey,
    live: &Liveness,
    budget: Budget,
) -> Case {
    let deadline = Instant::now() + budget.time;
    let tries = std::cell::Cell::new(budget.tries);
    let spent = || tries.get() == 0 || Instant::now() >= deadline;
    let kind = case.kind.clone();
    let mut reproduces = |pieces: &[(u8, Vec<u8>)]| -> bool {
        if spent() {
            return false;
        }
        tries.set(tries.get() - 1);
        let c = Case { session: case.session, ..Case::from_pieces(pieces, kind.clone()) };
        replay_once(backend, target, &c, 1, live, None).is_ok_and(|o| &o.bucket() == bucket)
    };
    let mut pieces = case.pieces();
    // 1. One connection alone, when there are several (cheap, and usually enough).
    let connections: Vec<u8> =
        pieces.iter().map(|(c, _)| *c).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    if connections.len() > 1 {
        for c in connections {
            let alone: Vec<(u8, Vec<u8>)> = pieces.iter().filter(|(on, _)| *on == c).cloned().collect();
            if reproduces(&alone) {
                pieces = alone;
                break;
            }
        }
    }
    // 2. Each connection's writes joined (a frame dripped a byte per write becomes one write),
    //    then whole writes, then joined again.
    pieces = join_writes(pieces, &mut reproduces);
    pieces = ddmin(&pieces, &mut reproduces);
    pieces = join_writes(pieces, &mut reproduces);
    // 3. The bytes of each write; for a whole length-prefixed frame, its payload, the length
    //    re-declared to match (removing a byte of a frame would only make it lie).
    let width = match target.framing {
        FramingSpec::Length { width, little_endian } => Some((width, little_endian)),
        _ => None,
    };
    for i in (0..pieces.len()).rev() {
        let bytes = pieces[i].1.clone();
        let whole_frame = width
            .filter(|(w, le)| bytes.len() >= *w && declared_length(&bytes[..*w], *le) == (bytes.len() - *w) as u64);
        let smaller = match whole_frame {
            Some((w, le)) if bytes.len() > w + 1 => {
                let mut test = |payload: &[u8]| {
                    let mut p = pieces.clone();
                    p[i].1 = header(w, le, payload.len() as u64);
                    p[i].1.extend_from_slice(payload);
                    reproduces(&p)
                };
                let payload = ddmin(&bytes[w..], &mut test);
                let mut frame = header(w, le, payload.len() as u64);
                frame.extend_from_slice(&payload);
                frame
            }
            Some(_) => bytes,
            None if bytes.len() >= 2 => {
                let mut test = |b: &[u8]| {
                    let mut p = pieces.clone();
                    p[i].1 = b.to_vec();
                    reproduces(&p)
                };
                ddmin(&bytes, &mut test)
            }
            None => bytes,
        };
        pieces[i].1 = smaller;
    }
    // 4. A declared length that says more than follows, smaller while it still reproduces.
    if let FramingSpec::Length { width, little_endian } = target.framing {
        for i in 0..pieces.len() {
            let w = &pieces[i].1;
            if w.len() < width {
                continue;
            }
            let declared = declared_length(&w[..width], little_endian);
            let follows = (w.len() - width) as u64;
            let mut hi = declared;
            let mut lo = follows;
            // Binary search for the smallest declared length that still reproduces.
            while lo < hi && !spent() {
                let mid = lo + (hi - lo) / 2;
                let mut p = pieces.clone();
                p[i].1.splice(..width, header(width, little_endian, mid));
                if reproduces(&p) {
                    pieces = p;
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }
    Case { session: case.session, ..Case::from_pieces(&pieces, format!("{} (minimised)", case.kind)) }
}

/// A case's writes, each with the connection it goes on.
type Pieces = Vec<(u8, Vec<u8>)>;

/// Whether writes (with their connections) still end a fresh server in the bucket.
type Reproduces<'a> = dyn FnMut(&[(u8, Vec<u8>)]) -> bool + 'a;

/// `pieces` with adjacent writes on one connection joined, when that still reproduces.
fn join_writes(pieces: Pieces, reproduces: &mut Reproduces<'_>) -> Pieces {
    let merged = merge_adjacent(&pieces);
    if merged.len() < pieces.len() && reproduces(&merged) {
        merged
    } else {
        pieces
    }
}

/// Adjacent writes on the same connection joined into one.
fn merge_adjacent(pieces: &[(u8, Vec<u8>)]) -> Vec<(u8, Vec<u8>)> {
    let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
    for (c, w) in pieces {
        match out.last_mut() {
            Some((lc, lw)) if lc == c => lw.extend_from_slice(w),
            _ => out.push((*c, w.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_the_two_bytes_that_matter_among_many() {
        let input: Vec<u8> = (0..200).collect();
        let mut calls = 0;
        let out = ddmin(&input, &mut |s: &[u8]| {
            calls += 1;
            s.contains(&17) && s.contains(&150)
        });
        assert_eq!(out, vec![17, 150]);
        assert!(calls < 200, "{calls} tests");
    }

    #[test]
    fn adjacent_writes_on_one_connection_merge_and_lengths_read_both_ways() {
        let p = vec![(0, vec![1]), (0, vec![2]), (1, vec![3]), (0, vec![4])];
        assert_eq!(merge_adjacent(&p), vec![(0, vec![1, 2]), (1, vec![3]), (0, vec![4])]);
        assert_eq!(declared_length(&[0, 0, 1, 2], false), 258);
        assert_eq!(declared_length(&[2, 1, 0, 0], true), 258);
    }
}
