//! **framing robustness**: the live fuzzer against the running server, for a bounded number of
//! structure-aware cases from the seed: a crash (exit, signal, exception), a hang (a case's
//! connection still open after its end of stream, or no answer to the liveness ping) or a
//! server that stops accepting connections is a finding once its minimised case has replayed
//! in the same bucket on fresh servers, with the seed and index that replay it.

use crate::{Context, Scenario};
use pipe_harness_core::engine::live;
use pipe_harness_core::engine::{Backend, Finding, Policy, Severity, Verdict};
use pipe_harness_core::probe::Rule;
use std::time::Duration;

/// The scenario.
pub struct FramingRobustness;

impl Scenario for FramingRobustness {
    const ID: &'static str = "framing_robustness";
    const TITLE: &'static str =
        "does the server survive hostile frames (live fuzzer: crash, hang, memory, no recovery)?";
    /// Rests on nothing but a working endpoint.
    const WINDOWS: Option<&'static [Rule]> = Some(&[]);
    /// The same on Unix sockets.
    const UNIX: Option<&'static [Rule]> = Some(&[]);
    const NEEDS: &'static [&'static str] = &[
        "[target] program (the harness restarts it after a crash)",
        "[target.framing] (default: 4-byte big-endian length)",
    ];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// Cases per run of the scenario (a campaign is `pipe-harness fuzz`).
pub const CASES: u64 = 48;

/// What the short campaign found.
#[derive(Clone, Debug)]
pub struct Observations {
    /// The campaign's seed.
    pub seed: u64,
    /// Its result: cases run, confirmed findings, crashes no case replays, the detectors used.
    pub campaign: live::Campaign,
}

/// Runs a short campaign.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    cx.needs_start("restarts the server after every crash it causes (it would not fuzz a server it cannot restart)")?;
    let opts = live::FuzzOptions {
        max_cases: CASES,
        max_time: Duration::from_secs(120),
        max_findings: 1,
        // Memory growth needs a long campaign to tell from warm-up: `pipe-harness fuzz` watches it.
        max_rss_growth_kib: None,
        ..live::FuzzOptions::new(cx.seed)
    };
    // The cases and the ping connect as a client the policy allows (a server that serves
    // only its own uid rightly refuses the harness's root).
    let mut target = cx.target.clone();
    if target.client_as.is_none() {
        target.client_as = cx.policy.allowed_users.first().cloned();
    }
    let campaign = live::fuzz(cx.backend, &target, &opts, |_| {}).map_err(|e| Verdict::error("fuzzing", e))?;
    Ok(Observations { seed: cx.seed, campaign })
}

/// The verdict: a confirmed finding fails; a crash no case replays is unverifiable.
fn judge(obs: &Observations) -> Verdict {
    let (campaign, seed) = (&obs.campaign, obs.seed);
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
                format!("first seen at case {} of seed {seed}: {}", u.index, u.case.kind),
                u.outcome.describe(),
                format!("detection: {}", campaign.liveness),
            ],
        };
    }
    let Some(r) = campaign.findings.first() else {
        let mut evidence = vec![format!(
            "{} cases from seed {seed} in {} ms: no confirmed crash or hang",
            campaign.cases, campaign.elapsed_ms
        )];
        evidence.push(format!("detection: {}", campaign.liveness));
        if campaign.cases == 0 {
            return Verdict::Error { reason: format!("the campaign ran no case: nothing was tested ({evidence:?})") };
        }
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
        // The same short campaign again: its cases come from the seed, so case N is case N again.
        replay: Some(format!("pipe-harness audit PLAN --scenario {} --seed {}", FramingRobustness::ID, r.seed)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use live::{BucketKey, Case, Outcome, Replays, Reproducer};

    fn campaign(cases: u64) -> live::Campaign {
        live::Campaign { cases, liveness: "ping".into(), ..live::Campaign::default() }
    }

    fn hang() -> Reproducer {
        let case = Case { writes: vec![vec![0, 0, 0, 9]], on: Vec::new(), kind: "short body".into(), session: None };
        Reproducer {
            target: "t".into(),
            seed: 7,
            index: 3,
            original: case.clone(),
            case,
            repeat: 1,
            outcome: Outcome::Hung { detail: "no answer to the ping".into() },
            bucket: BucketKey("hang".into()),
            replays: Replays { matched: 3, of: 3, others: Vec::new() },
            hits: 0,
            found_after_ms: 10,
            hang_timeout_ms: 2000,
        }
    }

    #[test]
    fn a_confirmed_finding_fails_with_its_seed_and_a_crash_nothing_replays_is_unverifiable() {
        let pass = Observations { seed: 7, campaign: campaign(48) };
        assert_eq!(judge(&pass).kind(), "pass");
        let none = Observations { seed: 7, campaign: campaign(0) };
        assert_eq!(judge(&none).kind(), "error", "a campaign of no cases tested nothing");
        let mut found = campaign(48);
        found.findings.push(hang());
        match judge(&Observations { seed: 7, campaign: found.clone() }) {
            Verdict::Fail(f) => {
                assert_eq!(f.seed, Some(7));
                assert_eq!(f.replay.as_deref(), Some("pipe-harness audit PLAN --scenario framing_robustness --seed 7"));
            }
            v => panic!("{v:?}"),
        }
        let r = hang();
        let mut shaky = campaign(48);
        shaky.unconfirmed.push(live::Unconfirmed {
            bucket: r.bucket,
            outcome: r.outcome,
            hits: 2,
            attempts: 3,
            index: 5,
            case: r.case,
            tried: Vec::new(),
        });
        assert_eq!(judge(&Observations { seed: 7, campaign: shaky }).kind(), "unverifiable");
    }
}
