//! **instance squatting**: an attacker creates an instance of the server's pipe name, (a) before
//! the server starts, or (b) over and over while clients load the server and it churns its
//! instances. A client takes any listening instance, so every client that lands on the
//! attacker's instance talks to the attacker. The race is driven by a seed: a failing run
//! replays with the same seed.
//!
//! (c) **the restart gap**: the server stops (a restart, an upgrade, a crash), and while its
//! name is free an unprivileged identity (the policy's first denied user, else uid 61999)
//! tries to create it; clients that arrive meanwhile reach whoever holds it. On Unix a socket
//! path is only as safe as its directory: a shared one (`/tmp`, a world-writable folder, an
//! abstract name) lets anyone take the name; a runtime directory only the service may write
//! does not. Only a directory the product chose is tried: in one the harness made for the run
//! (`{dir}`, `{private_dir:...}`) this phase is not applicable, and says which endpoint would
//! make it run; phases (a) and (b), the server's own defence, still run. Named pipes have no
//! directories (any identity may create a free name; the defence is the client's check of the
//! server, `client_impersonation`), so there this phase is recorded as not applicable.

use crate::first_instance_defence;
use crate::{Context, Scenario};
use pipe_harness_core::engine::{
    exchange, Backend, Conn, ConnectSpec, Finding, ListenSpec, Policy, Schedule, Severity, Started, Verdict,
};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;
use std::time::Duration;

/// Who tries the restart gap when the policy denies nobody: an unprivileged uid no one uses.
pub const GAP_ATTACKER_UID: u32 = 61999;

/// The scenario.
pub struct InstanceSquatting;

impl Scenario for InstanceSquatting {
    const ID: &'static str = "instance_squatting";
    const TITLE: &'static str = "an attacker instance before or between the server's instances, or in its restart gap (Unix: who may create the name while the server is down); do clients land on it?";
    /// The server's first-instance defence, DACLs that keep another user from adding
    /// instances, and an attacker that is really another identity.
    const WINDOWS: Option<&'static [Rule]> =
        Some(&[Rule::FirstInstanceFlagEnforced, Rule::InstanceCreateDaclEnforced, Rule::DistinctIdentityReachesServer]);
    /// On Unix sockets: exclusive bind, and other uids that are really others.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixBindExclusive, Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &["[target] program (the harness starts and restarts it)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

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
    /// (c): the restart gap.
    pub gap: Gap,
}

/// What another identity could do with the server's name while the server was down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gap {
    /// It could not create the name (the error says why: a directory it may not write).
    Closed(String),
    /// It created the name, and this many of `clients` test clients reached it.
    Taken {
        /// The identity that took it.
        by: Identity,
        /// Clients that connected meanwhile.
        clients: usize,
        /// Of those, clients that reached the attacker.
        on_attacker: usize,
    },
    /// Not tried here, and why.
    NotApplicable(String),
}

/// The verdict.
fn judge(obs: &Observations) -> Verdict {
    let evidence = vec![
        format!("(a) start on a name the attacker already held: {:?}; {} clients landed on the attacker", obs.pre_start, obs.pre_on_attacker),
        format!(
            "(b) {} client rounds while the attacker kept creating instances (it created {}): {} landed on the attacker",
            obs.rounds, obs.attacker_instances, obs.race_on_attacker
        ),
    ];
    let mut evidence = evidence;
    evidence.push(match &obs.gap {
        Gap::Closed(why) => format!("(c) restart gap: the name could not be taken while the server was down: {why}"),
        Gap::Taken { by, clients, on_attacker } => format!(
            "(c) restart gap: uid {by} created the name while the server was down; {on_attacker} of {clients} clients reached it"
        ),
        Gap::NotApplicable(why) => format!("(c) restart gap: not applicable: {why}"),
    });
    if let Gap::Taken { by, on_attacker, clients } = &obs.gap {
        return Verdict::Fail(Finding {
            title: format!(
                "while the server was down, uid {by} took its name and {on_attacker} of {clients} clients reached it: keep the socket in a directory only the service may write"
            ),
            severity: Severity::High,
            evidence,
            seed: Some(obs.seed),
            replay: Some(format!("pipe-harness audit PLAN --scenario {} --seed {}", InstanceSquatting::ID, obs.seed)),
        });
    }
    let served_beside = !matches!(obs.pre_start, Started::Exited(_) | Started::Stopped);
    if (served_beside && obs.pre_on_attacker > 0) || obs.race_on_attacker > 0 {
        return Verdict::Fail(Finding {
            title: format!(
                "clients reached an attacker's instance: {} before start, {} of {} during the race",
                obs.pre_on_attacker, obs.race_on_attacker, obs.rounds
            ),
            severity: Severity::High,
            evidence,
            seed: Some(obs.seed),
            replay: Some(format!("pipe-harness audit PLAN --scenario {} --seed {}", InstanceSquatting::ID, obs.seed)),
        });
    }
    Verdict::Pass { evidence }
}

/// Runs both phases. The race interleaves, on one thread and in an order drawn from the seed,
/// bursts of attacker attempts to add an instance with client rounds against the running
/// server (which churns its own instances concurrently, in its own process).
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    cx.needs_start("starts and restarts the server around an attacker's instance")?;
    let pre = first_instance_defence::observe(cx)?;
    let server = cx.start_ready()?;
    let endpoint = server.endpoint.clone();
    let mut schedule = Schedule::new(cx.seed);
    let rounds = 8 + schedule.below(8) as usize;
    let attacker_spec = ListenSpec { shape: Some(pre.shape), open_to_all: true, ..ListenSpec::default() };
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
    let attacker_instances = held.len();
    drop(held);
    // The server goes down; the harness removes its socket file, as a clean exit would.
    drop(server);
    cx.backend
        .clear_stale_endpoint(&endpoint)
        .map_err(|e| Verdict::error("removing the stopped server's socket", e))?;
    let gap = restart_gap(cx, &endpoint)?;
    Ok(Observations {
        pre_start: pre.started,
        pre_on_attacker: pre.clients_on_attacker,
        rounds,
        race_on_attacker: on_attacker,
        attacker_instances,
        seed: cx.seed,
        gap,
    })
}

/// (c): with the server stopped, an unprivileged identity tries to create its name; if it
/// can, test clients connect and are counted. Only a refusal for lack of rights closes the gap:
/// any other failure (a missing directory, a name too long) is the harness's error, not a pass.
fn restart_gap<B: Backend>(cx: &Context<'_, B>, endpoint: &str) -> Result<Gap, Verdict> {
    // A directory the harness made says nothing about the product: not judged.
    if let Some(dir) = cx.backend.harness_directory(endpoint) {
        return Ok(Gap::NotApplicable(format!(
            "the socket's directory ({}) is one the harness made for this run, not one the product chose; {} would make it run",
            dir.display(),
            crate::instance_create_rights::DEPLOYED_KEY
        )));
    }
    let by = cx.policy.denied_users.first().cloned().unwrap_or(Identity::uid(GAP_ATTACKER_UID));
    // As an attacker would: a socket file the stopped server left is removed first, if the
    // directory lets this identity remove it.
    let spec =
        ListenSpec { open_to_all: true, as_user: Some(by.clone()), replace_existing: true, ..ListenSpec::default() };
    match cx.backend.listen(endpoint, &spec) {
        Err(pipe_harness_core::Error::Unsupported(why)) => Ok(Gap::NotApplicable(why)),
        Err(e) if e.is_permission_denied() => Ok(Gap::Closed(e.to_string())),
        Err(e) => Err(Verdict::error("trying the restart gap as another identity", e)),
        Ok(_attacker) => {
            let clients = 3;
            // No server runs: every client that connects reached the attacker (counted by the
            // pid that holds the endpoint, the harness's own).
            let (_, on_attacker) = first_instance_defence::landings(cx, endpoint, 0, clients);
            Ok(Gap::Taken { by, clients, on_attacker })
        }
    }
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
            gap: Gap::Closed("Permission denied".into()),
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

    #[test]
    fn a_name_taken_in_the_restart_gap_is_a_finding_and_a_closed_or_inapplicable_gap_is_not() {
        let taken = Observations {
            gap: Gap::Taken { by: Identity::uid(61001), clients: 3, on_attacker: 3 },
            ..obs(Started::Exited(Some(3)), 0, 0)
        };
        match judge(&taken) {
            Verdict::Fail(f) => {
                assert!(f.title.contains("uid 61001 took its name and 3 of 3"), "{}", f.title);
                assert!(f.evidence.iter().any(|e| e.starts_with("(c) restart gap: uid 61001")), "{f:?}");
            }
            v => panic!("{v:?}"),
        }
        let na =
            Observations { gap: Gap::NotApplicable("no directories".into()), ..obs(Started::Exited(Some(3)), 0, 0) };
        match judge(&na) {
            Verdict::Pass { evidence } => {
                assert!(evidence.iter().any(|e| e.contains("not applicable: no directories")))
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(judge(&obs(Started::Exited(Some(3)), 0, 0)).kind(), "pass");
    }
}
