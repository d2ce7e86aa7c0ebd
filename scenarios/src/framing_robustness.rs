//! **framing robustness**: the live fuzzer against the running server, for a bounded number of
//! structure-aware cases from the seed: a crash (exit, signal, exception), a hang (a case's
//! connection still open after its end of stream, or no answer to the liveness ping) or a
//! server that stops accepting connections is a finding once its minimised case has replayed
//! in the same bucket on fresh servers, with the seed and index that replay it.

use crate::Context;
use pipe_harness::engine::live;
use pipe_harness::engine::{Backend, Finding, Severity, Verdict};
use pipe_harness::probe::Rule;
use std::time::Duration;

/// The scenario's name.
pub const NAME: &str = "framing_robustness";
/// Rests on nothing but a working endpoint.
pub const RESTS_ON: &[Rule] = &[];
/// The same on Unix sockets.
pub const RESTS_ON_UNIX: &[Rule] = &[];
/// What it checks.
pub const SUMMARY: &str = "does the server survive hostile frames (crash, hang)?";
/// Cases per run of the scenario (a campaign is `pipe-harness fuzz`).
pub const CASES: u64 = 48;

/// Runs a short campaign.
pub fn run<B: Backend>(cx: &Context<'_, B>) -> Verdict {
    if let Err(na) =
        cx.needs_start("restarts the server after every crash it causes (it would not fuzz a server it cannot restart)")
    {
        return na;
    }
    let opts = live::FuzzOptions {
        max_cases: CASES,
        max_time: Duration::from_secs(120),
        max_findings: 1,
        // Memory growth needs a long campaign to tell from warm-up: `pipe-harness fuzz` watches it.
        max_rss_growth_kib: None,
        ..live::FuzzOptions::new(cx.seed)
    };
    let campaign = match live::fuzz(cx.backend, cx.target, &opts, |_| {}) {
        Ok(c) => c,
        Err(e) => return Verdict::error("fuzzing", e),
    };
    if let (None, Some(u)) = (campaign.findings.first(), campaign.unconfirmed.first()) {
        // The server did crash (or hang), but no single case replays it on a fresh server:
        // claiming a finding would claim more than was shown.
        return Verdict::Unverifiable {
            reason: format!(
                "the server ended in the bucket \"{}\" {} time(s) during the campaign, but no case replays it on a fresh server (it depends on what came before it): not claimed as a finding",
                u.bucket, u.hits
            ),
            rules: Vec::new(),
            evidence: vec![
                format!("first seen at case {} of seed {}: {}", u.index, cx.seed, u.case.kind),
                u.outcome.describe(),
                format!("detection: {}", campaign.liveness),
            ],
        };
    }
    let Some(r) = campaign.findings.first() else {
        let mut evidence = vec![format!(
            "{} cases from seed {} in {} ms: no confirmed crash or hang",
            campaign.cases, cx.seed, campaign.elapsed_ms
        )];
        evidence.push(format!("detection: {}", campaign.liveness));
        return Verdict::Pass { evidence };
    };
    let what = r.outcome.describe();
    let mut evidence = vec![
        format!("case {} of seed {}: {}", r.index, r.seed, r.original.kind),
        format!("minimised: {} ({} writes: {})", r.case.kind, r.case.writes.len(), r.case.writes_hex()),
        format!("bucket: {} (replayed {} of {} on fresh servers)", r.bucket, r.replays.matched, r.replays.of),
    ];
    if let Some(c) = r.outcome.crash() {
        evidence.extend(c.output.iter().rev().take(4).rev().cloned());
    }
    Verdict::Fail(Finding {
        title: format!("after a hostile frame ({}), the server {what}", r.original.kind),
        severity: Severity::High,
        evidence,
        seed: Some(r.seed),
        replay: Some(format!("pipe-harness fuzz PLAN --seed {} (case {})", r.seed, r.index)),
    })
}
