//! The scenario engine: what a target is and what its owner intends (the [`Target`] and its
//! [`Policy`]), the [`Backend`] verbs every scenario is written against, the server-under-test
//! runner, and the verdicts and reports.
//!
//! A scenario first records what happened as plain data (observations), then judges it in a
//! separate pure function, which is unit tested on recorded observations. A finding is a
//! [`Verdict::Fail`] value, never an `Err`: `Err` means the harness could not run the check.

pub mod from_calls;
pub mod html;
pub mod live;
pub mod plan;
pub mod report;
mod server;
pub mod service;
pub mod starter;
mod verdict;

pub use crate::backend::{
    exchange, reply_succeeds, request_succeeds, Backend, Conn, ConnectSpec, ListenSpec, Listener, PeerIdentity,
    PipeShape, SessionReach,
};
pub use crate::target::{ClientProgram, Exchange, FramingSpec, Policy, Readiness, Target};
pub use server::{ServerUnderTest, Started};
pub use verdict::{CheckResult, Finding, Severity, Verdict};

use crate::probe::{ProbeReport, Rule, Status};

/// Seeds a scenario's schedule: a small, fast, reproducible generator (SplitMix64), so a
/// failing race replays exactly from the seed printed with the finding.
#[derive(Clone, Debug)]
pub struct Schedule {
    state: u64,
}

impl Schedule {
    /// A schedule from `seed`.
    pub fn new(seed: u64) -> Self {
        Schedule { state: seed }
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// The rules of `rests_on` that the probe did not measure as holding, with the probe's evidence:
/// a scenario resting on any of them is unverifiable here.
pub fn unmet_rules(probe: &ProbeReport, rests_on: &[Rule]) -> Vec<(Rule, Status, Vec<String>)> {
    rests_on
        .iter()
        .filter_map(|&r| {
            let res = probe.result(r);
            let status = probe.status(r);
            (status != Status::Holds).then(|| (r, status, res.map(|x| x.evidence.clone()).unwrap_or_default()))
        })
        .collect()
}

/// The unverifiable verdict for the unmet rules, or `None` when every rule holds.
pub fn unverifiable_for(probe: &ProbeReport, rests_on: &[Rule]) -> Option<Verdict> {
    let unmet = unmet_rules(probe, rests_on);
    if unmet.is_empty() {
        return None;
    }
    // An untestable rule's last line of evidence says why it could not be measured (not root,
    // a capability missing): the reason carries it, in words.
    let reason = unmet
        .iter()
        .map(|(r, s, ev)| match (s, ev.last()) {
            (Status::Untestable, Some(why)) => format!("{} {} ({why})", r.id(), s.label()),
            _ => format!("{} {}", r.id(), s.label()),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let evidence =
        unmet.into_iter().flat_map(|(r, _, ev)| ev.into_iter().map(move |e| format!("{}: {e}", r.id()))).collect();
    Some(Verdict::Unverifiable {
        reason: format!("the platform probe says: {reason}"),
        rules: rests_on.to_vec(),
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{PlatformInfo, RuleResult};

    #[test]
    fn schedules_replay_from_their_seed() {
        let a: Vec<u64> = (0..5).scan(Schedule::new(7), |s, _| Some(s.next_u64())).collect();
        let b: Vec<u64> = (0..5).scan(Schedule::new(7), |s, _| Some(s.next_u64())).collect();
        let c: Vec<u64> = (0..5).scan(Schedule::new(8), |s, _| Some(s.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_rule_that_does_not_hold_makes_the_verdict_unverifiable_with_its_evidence() {
        let probe = ProbeReport {
            schema_version: 1,
            platform: PlatformInfo { os: "windows".into(), wine_version: None, user: None, session_id: None },
            results: vec![
                RuleResult {
                    rule: Rule::SqosLevelHonoured,
                    status: Status::DoesNotHold,
                    evidence: vec!["got Impersonation".into()],
                },
                RuleResult { rule: Rule::ImpersonationRequiresRead, status: Status::Holds, evidence: vec![] },
            ],
        };
        assert!(unverifiable_for(&probe, &[Rule::ImpersonationRequiresRead]).is_none());
        match unverifiable_for(&probe, &[Rule::ImpersonationRequiresRead, Rule::SqosLevelHonoured]) {
            Some(Verdict::Unverifiable { reason, evidence, .. }) => {
                assert!(reason.contains("sqos_level_honoured DOES NOT HOLD"), "{reason}");
                assert_eq!(evidence, vec!["sqos_level_honoured: got Impersonation".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }

    /// An untestable rule's reason says, in words, what is missing (the probe's last line of
    /// evidence for it: not root, a capability).
    #[test]
    fn an_untestable_rule_says_what_is_missing() {
        let probe = ProbeReport {
            schema_version: 1,
            platform: PlatformInfo { os: "linux".into(), wine_version: None, user: None, session_id: None },
            results: vec![RuleResult {
                rule: Rule::UnixDistinctIdentities,
                status: Status::Untestable,
                evidence: vec!["the harness runs as uid 1000, not root: it cannot connect as other uids; run it as root to measure this".into()],
            }],
        };
        match unverifiable_for(&probe, &[Rule::UnixDistinctIdentities]) {
            Some(Verdict::Unverifiable { reason, .. }) => assert_eq!(
                reason,
                "the platform probe says: unix_distinct_identities untestable (the harness runs as uid 1000, not root: it cannot connect as other uids; run it as root to measure this)"
            ),
            other => panic!("{other:?}"),
        }
    }
}
