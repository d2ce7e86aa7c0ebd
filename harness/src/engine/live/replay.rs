//! Replaying a case on fresh servers: one replay ([`replay_once`]) and the confirmation that
//! makes a crash a finding ([`confirm`]): the case, on a fresh server each time, ends in the
//! same bucket every time.

use crate::backend::Backend;
use crate::error::Result;
use crate::target::Target;
use serde::{Deserialize, Serialize};

use super::case::Case;
use super::driver::{look_after, run_case, Liveness};
use super::oracle::{BucketKey, Outcome};

/// How often a case, replayed on fresh servers, ended in its bucket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replays {
    /// Replays that ended in the bucket.
    pub matched: u32,
    /// Replays made.
    pub of: u32,
    /// The other buckets seen, if any (a survival is `survived`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<BucketKey>,
}

impl Replays {
    /// Every replay ended in the bucket (and there was at least one).
    pub fn all(&self) -> bool {
        self.of > 0 && self.matched == self.of
    }
}

/// Sends `case` `repeat` times to a fresh server, then checks it once more (a connection that
/// sends nothing, and the ping when the target has one), so that a crash the case causes after
/// its connections closed is seen too. For `repeat` above one, growth of the resident size by
/// more than `growth_kib` over the repeats is a memory-growth outcome.
pub fn replay_once<B: Backend>(
    backend: &B,
    target: &Target,
    case: &Case,
    repeat: u64,
    live: &Liveness,
    growth_kib: Option<u64>,
) -> Result<Outcome> {
    let mut server = super::driver::start_again(backend, target)?;
    let before = crate::supervise::resident_kib(server.pid()).ok();
    for i in 0..repeat.max(1) {
        let (outcome, _) = run_case(backend, target, &mut server, case, live, i);
        if outcome.is_finding() {
            return Ok(outcome);
        }
    }
    let outcome = look_after(backend, target, &mut server, live);
    if outcome.is_finding() {
        return Ok(outcome);
    }
    Ok(match (growth_kib, before, crate::supervise::resident_kib(server.pid()).ok()) {
        (Some(limit), Some(b), Some(now)) if repeat > 1 && now > b.saturating_add(limit) => {
            Outcome::MemoryGrowth { baseline_kib: b, now_kib: now, cases: repeat }
        }
        _ => Outcome::Survived,
    })
}

/// Replays `case` `times` times, each on a fresh server, and counts the replays that end in
/// `bucket`. Stops early once one does not (`stop_at_first_miss`), for the campaign's cheap
/// first look.
#[allow(clippy::too_many_arguments)]
pub fn confirm<B: Backend>(
    backend: &B,
    target: &Target,
    case: &Case,
    repeat: u64,
    bucket: &BucketKey,
    times: u32,
    live: &Liveness,
    growth_kib: Option<u64>,
    stop_at_first_miss: bool,
) -> Result<Replays> {
    let mut r = Replays::default();
    for _ in 0..times {
        let outcome = replay_once(backend, target, case, repeat, live, growth_kib)?;
        r.of += 1;
        let got = outcome.bucket();
        if &got == bucket {
            r.matched += 1;
        } else {
            if !r.others.contains(&got) {
                r.others.push(got);
            }
            if stop_at_first_miss {
                break;
            }
        }
    }
    Ok(r)
}

/// Replays a saved finding `times` times, each on a fresh server, as `pipe-harness replay`
/// does: liveness measured on a first fresh server with the hang timeout the finding was
/// confirmed with, memory growth judged against half the growth the finding saw.
pub fn replay_reproducer<B: Backend>(
    backend: &B,
    target: &Target,
    r: &super::campaign::Reproducer,
    times: u32,
) -> Result<Replays> {
    let opts = super::campaign::FuzzOptions::new(r.seed);
    let live = {
        let hang = std::time::Duration::from_millis(r.hang_timeout_ms.max(1));
        let server = super::driver::start_proved(backend, target, hang)?;
        Liveness::measure(backend, target, &server, hang, opts.ping_every)
    };
    let growth = match &r.outcome {
        Outcome::MemoryGrowth { baseline_kib, now_kib, .. } => Some(now_kib.saturating_sub(*baseline_kib) / 2),
        _ => None,
    };
    confirm(backend, target, &r.case, r.repeat, &r.bucket, times, &live, growth, false)
}

/// Sends `case` (a recorded connection, say) to `times` fresh servers, each once, with the
/// default hang timeout and liveness measured on a first fresh server; what each server did.
pub fn replay_case<B: Backend>(backend: &B, target: &Target, case: &Case, times: u32) -> Result<Vec<Outcome>> {
    let opts = super::campaign::FuzzOptions::new(0);
    let live = {
        let server = super::driver::start_proved(backend, target, opts.hang_timeout)?;
        Liveness::measure(backend, target, &server, opts.hang_timeout, opts.ping_every)
    };
    (0..times).map(|_| replay_once(backend, target, case, 1, &live, None)).collect()
}
