//! **connect race** ("the first client wins"): while the legitimate client connects, an
//! identity the policy denies races it for the server. A server with one instance (or one
//! connection at a time), or one that trusts whoever connects first, either serves the
//! attacker as if it were the legitimate client, or leaves the legitimate client talking to
//! nobody until it gives up.
//!
//! A control round first: the legitimate client alone must get its privileged request done
//! (else nothing here can be judged). Then rounds drawn from the seed: the attacker connects
//! (first, or just after the legitimate client) and holds its connection open while the
//! legitimate client makes its request with a deadline; then the attacker sends the privileged
//! request itself. A finding: the attacker's request succeeded, or the legitimate client was
//! locked out; with the seed that replays the rounds.

use crate::{Context, Scenario};
use pipe_harness_core::engine::{
    reply_succeeds, request_succeeds, Backend, ConnectSpec, Finding, Policy, Schedule, Severity, Verdict,
};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;
use std::time::Duration;

/// The scenario.
pub struct ConnectRace;

/// How long the legitimate client waits for its answer in a round (long enough for a loaded
/// machine: a server that serves clients side by side answers in milliseconds).
pub const DEADLINE: Duration = Duration::from_secs(5);

impl Scenario for ConnectRace {
    const ID: &'static str = "connect_race";
    const TITLE: &'static str =
        "can a denied identity that races the legitimate client be served as it, or lock it out?";
    /// A client under another token is not built here yet (see `impersonation_limits`).
    const WINDOWS: Option<&'static [Rule]> = None;
    /// The attacker must really be another uid.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixDistinctIdentities]);
    const NOT_BUILT: Option<&'static str> = Some(crate::NO_WINDOWS_ACCOUNTS);
    const NEEDS: &'static [&'static str] =
        &[crate::PRIVILEGED_KEY, "[policy] denied_users = [\"61001\"] (the attacker)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// One round of the race.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// The attacker connected before the legitimate client did.
    pub attacker_first: bool,
    /// The attacker got a connection to hold.
    pub attacker_connected: bool,
    /// The legitimate client's privileged request: done, refused, or why it failed.
    pub legit: Result<bool, String>,
    /// The attacker's privileged request, after: done, refused, or why it failed.
    pub attacker: Result<bool, String>,
}

/// The race.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// Who raced.
    pub attacker: Identity,
    /// The legitimate client alone.
    pub control: Result<bool, String>,
    /// The rounds.
    pub rounds: Vec<Round>,
    /// Their seed.
    pub seed: u64,
}

fn describe(i: usize, r: &Round, who: &Identity) -> String {
    format!(
        "round {}: uid {who} {} ({}); legitimate client: {}; uid {who}'s privileged request: {}",
        i + 1,
        if r.attacker_first { "connected first" } else { "connected second" },
        if r.attacker_connected { "holding a connection" } else { "refused" },
        match &r.legit {
            Ok(true) => "served".to_string(),
            Ok(false) => "refused".to_string(),
            Err(e) => format!("not served: {e}"),
        },
        match &r.attacker {
            Ok(true) => "DONE".to_string(),
            Ok(false) => "refused".to_string(),
            Err(e) => format!("failed: {e}"),
        }
    )
}

/// The verdict.
fn judge(obs: &Observations) -> Verdict {
    let mut evidence = vec![format!("control (the legitimate client alone): {:?}", obs.control)];
    evidence.extend(obs.rounds.iter().enumerate().map(|(i, r)| describe(i, r, &obs.attacker)));
    if obs.control != Ok(true) {
        return Verdict::Error {
            reason: format!("the legitimate client's privileged request failed with no one racing it, so the race proves nothing: {evidence:?}"),
        };
    }
    let replay = Some(format!("pipe-harness audit PLAN --scenario {} --seed {}", ConnectRace::ID, obs.seed));
    if let Some(i) = obs.rounds.iter().position(|r| r.attacker == Ok(true)) {
        return Verdict::Fail(Finding {
            title: format!("uid {}, which the policy denies, raced the legitimate client and had its privileged request done (round {})", obs.attacker, i + 1),
            severity: Severity::High,
            evidence,
            seed: Some(obs.seed),
            replay,
        });
    }
    if let Some(i) = obs.rounds.iter().position(|r| r.attacker_connected && r.legit != Ok(true)) {
        return Verdict::Fail(Finding {
            title: format!(
                "while uid {} held a connection, the legitimate client was not served within {} s: any such user can lock it out (round {})",
                obs.attacker,
                DEADLINE.as_secs(),
                i + 1
            ),
            severity: Severity::Medium,
            evidence,
            seed: Some(obs.seed),
            replay,
        });
    }
    Verdict::Pass { evidence }
}

fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let Some(privileged) = &cx.target.privileged else {
        return Err(Verdict::not_applicable(crate::NO_PRIVILEGED, crate::PRIVILEGED_KEY));
    };
    let Some(attacker) = cx.policy.denied_users.first().cloned() else {
        return Err(Verdict::not_applicable(
            "the policy names no denied identity to race the legitimate client with",
            "[policy] denied_users = [\"61001\"]",
        ));
    };
    let server = cx.reach_ready()?;
    let legit_spec =
        ConnectSpec { as_user: cx.policy.allowed_users.first().cloned(), timeout: DEADLINE, ..ConnectSpec::default() };
    let attacker_spec = ConnectSpec { as_user: Some(attacker.clone()), timeout: DEADLINE, ..ConnectSpec::default() };
    let framing = &cx.target.framing;
    let legit = || request_succeeds(cx.backend, server.endpoint(), &legit_spec, framing, privileged, DEADLINE);
    // The control has all the time a client gets: no one races it.
    let control_spec = ConnectSpec { timeout: crate::CLIENT_TIMEOUT, ..legit_spec.clone() };
    let control =
        request_succeeds(cx.backend, server.endpoint(), &control_spec, framing, privileged, crate::CLIENT_TIMEOUT);
    let mut schedule = Schedule::new(cx.seed);
    let mut rounds = Vec::new();
    for _ in 0..4 + schedule.below(4) {
        let attacker_first = schedule.below(2) == 0;
        // Sequential, in the seed's order: the attacker's connection is open (and unread)
        // while the legitimate client makes its request.
        let (held, legit_result) = if attacker_first {
            let held = cx.backend.connect(server.endpoint(), &attacker_spec);
            (held, legit())
        } else {
            // The legitimate client connects first; the attacker connects while that
            // connection is open, then the legitimate client makes its request.
            match cx.backend.connect(server.endpoint(), &legit_spec) {
                Ok(mut own) => {
                    let held = cx.backend.connect(server.endpoint(), &attacker_spec);
                    let r = reply_succeeds(&mut own, framing, privileged, DEADLINE);
                    (held, r)
                }
                Err(e) => (Err(e), Err("the legitimate client could not connect".to_string())),
            }
        };
        let attacker_connected = held.is_ok();
        let attacker_result = match held {
            Ok(mut c) => reply_succeeds(&mut c, framing, privileged, DEADLINE),
            Err(e) => Err(e.to_string()),
        };
        let round = Round { attacker_first, attacker_connected, legit: legit_result, attacker: attacker_result };
        let found = round.attacker == Ok(true) || (round.attacker_connected && round.legit != Ok(true));
        rounds.push(round);
        if found {
            break;
        }
    }
    Ok(Observations { attacker, control, rounds, seed: cx.seed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(attacker_connected: bool, legit: Result<bool, String>, attacker: Result<bool, String>) -> Round {
        Round { attacker_first: true, attacker_connected, legit, attacker }
    }

    fn obs(rounds: Vec<Round>) -> Observations {
        Observations { attacker: Identity::uid(61001), control: Ok(true), rounds, seed: 3 }
    }

    #[test]
    fn served_as_legitimate_or_locking_it_out_is_a_finding_with_its_seed() {
        let refused = || Err("Permission denied".to_string());
        assert_eq!(judge(&obs(vec![round(false, Ok(true), refused())])).kind(), "pass");
        assert_eq!(judge(&obs(vec![round(true, Ok(true), Ok(false))])).kind(), "pass");
        match judge(&obs(vec![round(true, Ok(true), Ok(true))])) {
            Verdict::Fail(f) => assert!(f.title.contains("had its privileged request done") && f.seed == Some(3)),
            v => panic!("{v:?}"),
        }
        match judge(&obs(vec![round(true, Err("timed out".into()), Ok(false))])) {
            Verdict::Fail(f) => assert!(f.title.contains("lock it out"), "{}", f.title),
            v => panic!("{v:?}"),
        }
        let broken = Observations { control: Ok(false), ..obs(vec![]) };
        assert_eq!(judge(&broken).kind(), "error");
    }
}
