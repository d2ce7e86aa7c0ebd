//! **instance squatting**: an attacker creates an instance of the server's pipe name, (a) before
//! the server starts, or (b) over and over while clients load the server and it churns its
//! instances. A client takes any listening instance, so every client that lands on the
//! attacker's instance talks to the attacker. The race is driven by a seed: a failing run
//! replays with the same seed.

use crate::first_instance_defence;
use crate::Context;
use pipe_harness::engine::{
    exchange, Backend, Conn, ConnectSpec, Finding, ListenSpec, Schedule, Severity, Started, Verdict,
};
use pipe_harness::probe::Rule;
use std::time::Duration;

/// The scenario's name.
pub const NAME: &str = "instance_squatting";
/// The rules its verdict rests on: the server's first-instance defence, DACLs that keep another
/// user from adding instances, and an attacker that is really another identity.
pub const RESTS_ON: &[Rule] =
    &[Rule::FirstInstanceFlagEnforced, Rule::InstanceCreateDaclEnforced, Rule::DistinctIdentityReachesServer];
/// On Unix sockets.
pub const RESTS_ON_UNIX: &[Rule] = &[Rule::UnixBindExclusive, Rule::UnixDistinctIdentities];
/// What it checks.
pub const SUMMARY: &str = "an attacker instance before or between the server's instances: do clients land on it?";

/// What both phases saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// (a): how the server's start on a taken name ended.
    pub pre_start: Started,
    /// (a): clients on the attacker while the server ran beside it.
    pub pre_on_attacker: usize,
    /// (b): client rounds made.
    pub rounds: usize,
    /// (b): rounds whose client landed on the attacker.
    pub race_on_attacker: usize,
    /// (b): instances the attacker managed to create during the race.
    pub attacker_instances: usize,
    /// The seed of the race.
    pub seed: u64,
}

/// The verdict.
pub fn judge(obs: &Observations) -> Verdict {
    let evidence = vec![
        format!("(a) start on a name the attacker already held: {:?}; {} clients landed on the attacker", obs.pre_start, obs.pre_on_attacker),
        format!(
            "(b) {} client rounds while the attacker kept creating instances (it created {}): {} landed on the attacker",
            obs.rounds, obs.attacker_instances, obs.race_on_attacker
        ),
    ];
    let served_beside = !matches!(obs.pre_start, Started::Exited(_));
    if (served_beside && obs.pre_on_attacker > 0) || obs.race_on_attacker > 0 {
        return Verdict::Fail(Finding {
            title: format!(
                "clients reached an attacker's instance: {} before start, {} of {} during the race",
                obs.pre_on_attacker, obs.race_on_attacker, obs.rounds
            ),
            severity: Severity::High,
            evidence,
            seed: Some(obs.seed),
            replay: Some(format!("pipe-harness audit PLAN --scenario {NAME} --seed {}", obs.seed)),
        });
    }
    Verdict::Pass { evidence }
}

/// Runs both phases. The race interleaves, on one thread and in an order drawn from the seed,
/// bursts of attacker attempts to add an instance with client rounds against the running
/// server (which churns its own instances concurrently, in its own process).
pub fn run<B: Backend>(cx: &Context<'_, B>) -> Verdict {
    let pre = match first_instance_defence::observe(cx) {
        Ok(o) => o,
        Err(v) => return v,
    };
    let server = match cx.start_ready() {
        Ok(s) => s,
        Err(v) => return v,
    };
    let endpoint = server.endpoint.clone();
    let mut schedule = Schedule::new(cx.seed);
    let rounds = 8 + schedule.below(8) as usize;
    let attacker_spec = ListenSpec { shape: Some(pre.shape), protection: None, open_to_all: true };
    let mut held: Vec<B::Listener> = Vec::new();
    let mut on_attacker = 0;
    for _ in 0..rounds {
        for _ in 0..schedule.below(3) {
            if let Ok(l) = cx.backend.listen(&endpoint, &attacker_spec) {
                held.push(l);
            }
        }
        let Ok(mut c) =
            cx.backend.connect(&endpoint, &ConnectSpec { timeout: Duration::from_secs(5), ..ConnectSpec::default() })
        else {
            continue;
        };
        if c.server_pid().ok() == Some(cx.backend.own_pid()) {
            on_attacker += 1;
        } else if let Some(ping) = &cx.target.ping {
            let _ = exchange(&mut c, &cx.target.framing, &ping.request, Duration::from_secs(5));
        }
    }
    judge(&Observations {
        pre_start: pre.started,
        pre_on_attacker: pre.clients_on_attacker,
        rounds,
        race_on_attacker: on_attacker,
        attacker_instances: held.len(),
        seed: cx.seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(pre: Started, pre_on: usize, race_on: usize) -> Observations {
        Observations {
            pre_start: pre,
            pre_on_attacker: pre_on,
            rounds: 10,
            race_on_attacker: race_on,
            attacker_instances: 3,
            seed: 99,
        }
    }

    #[test]
    fn any_client_on_the_attacker_is_a_finding_with_its_seed() {
        assert_eq!(judge(&obs(Started::Exited(Some(3)), 0, 0)).kind(), "pass");
        // The server refused; clients reaching the squatter then are the client's problem.
        assert_eq!(judge(&obs(Started::Exited(Some(3)), 4, 0)).kind(), "pass");
        match judge(&obs(Started::Ready, 2, 1)) {
            Verdict::Fail(f) => {
                assert_eq!(f.seed, Some(99));
                assert!(f.replay.as_deref().is_some_and(|r| r.contains("--seed 99")));
                assert!(f.title.contains("1 of 10"), "{}", f.title);
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(judge(&obs(Started::Exited(Some(3)), 0, 1)).kind(), "fail");
    }
}
