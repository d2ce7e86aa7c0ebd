//! **DACL churn** (permission churn on Unix): drive connect/disconnect cycles (including
//! moments when the server has no instance left) and restarts, read the endpoint's protection
//! from the client side each time, and compare it with the policy's. Instances share one
//! descriptor only while one of them is open; a server that sets the DACL on the first instance
//! only, and later creates instances with a NULL descriptor, silently falls back to the default
//! DACL after such a moment. On Unix, each restart runs under another umask (from the seed),
//! so a socket whose mode is left to the umask shows it.

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{exchange, Backend, Conn, ConnectSpec, Finding, Policy, Schedule, Severity, Verdict};
use pipe_harness_core::probe::Rule;
use pipe_harness_core::protection::{AccessComparison, Protection};

/// The scenario.
pub struct DaclChurn;

impl Scenario for DaclChurn {
    const ID: &'static str = "dacl_churn";
    const TITLE: &'static str = "after connect/disconnect churn, does every new instance carry the policy's DACL?";
    /// Descriptors are shared across instances and released with the last one: what makes the
    /// client-side reading meaningful.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::SdSharedAcrossInstances, Rule::SdReleasedWithLastInstance]);
    /// On Unix sockets the protection is the socket file's mode and owner, which other users'
    /// connects must honour.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixSocketModeEnforced]);
    const NEEDS: &'static [&'static str] = &[PROTECTION_KEY, "[target] program (the harness restarts it)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// The plan key that gives the policy's protection.
const PROTECTION_KEY: &str = "[policy] protection = \"D:P(A;;GA;;;SY)(A;;GA;;;OW)\" (Unix: \"mode=0600 uid=61000\")";

/// The protection read in each cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The policy's protection.
    pub expected: Protection,
    /// Cycle by cycle: what the instance carried (or why it could not be read).
    pub seen: Vec<Result<Protection, String>>,
    /// A pipe made without a security descriptor reads back no DACL here, as a NULL DACL does
    /// (`null_sd_gets_default_dacl` does not hold): a cycle without a DACL had one of the two.
    pub null_reads_default: bool,
}

/// The verdict: the first cycle whose protection grants more than the policy's is a finding (a
/// socket mode that differs only in bits a connect does not use, or that grants less, is
/// information in the evidence).
fn judge(obs: &Observations) -> Verdict {
    let evidence: Vec<String> = obs
        .seen
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Ok(Protection::NullDacl) if obs.null_reads_default => format!(
                "cycle {}{}: no DACL (a NULL DACL, or the default DACL: here both read back the same; neither is the policy's)",
                i + 1,
                if i % 2 == 1 { " (after a restart)" } else { "" }
            ),
            Ok(p) => {
                let note = match obs.expected.compare(p) {
                    AccessComparison::Same => String::new(),
                    AccessComparison::SameAccess(why) | AccessComparison::Narrower(why) | AccessComparison::Wider(why) => {
                        format!(" ({why})")
                    }
                    _ => String::new(),
                };
                format!("cycle {}{}: {p}{note}", i + 1, if i % 2 == 1 { " (after a restart)" } else { "" })
            }
            Err(e) => format!("cycle {}: unreadable: {e}", i + 1),
        })
        .collect();
    let mut evidence = evidence;
    evidence.insert(0, format!("policy: {}", obs.expected));
    match obs.seen.iter().position(|s| !s.as_ref().is_ok_and(|p| obs.expected.is_met_by(p))) {
        None if !obs.seen.is_empty() => Verdict::Pass { evidence },
        None => Verdict::Error { reason: "no cycle completed".into() },
        Some(i) => Verdict::Fail(Finding {
            title: format!(
                "from cycle {} on, the endpoint's protection (DACL / socket mode) grants more than the policy's",
                i + 1
            ),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        }),
    }
}

/// The umasks restarts cycle through (a service manager may hand a server any of them).
pub const UMASKS: [u32; 4] = [0o022, 0o000, 0o077, 0o002];

/// Runs the cycles: every other one restarts the server under the next umask of the schedule.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    cx.needs_start("restarts the server between cycles")?;
    let Some(policy) = &cx.policy.protection else {
        return Err(Verdict::not_applicable(
            "the policy names no protection to compare the endpoint's with",
            PROTECTION_KEY,
        ));
    };
    let expected = policy.clone();
    let mut schedule = Schedule::new(cx.seed);
    let cycles = 4 + schedule.below(4) as usize;
    let mut target = cx.target.clone();
    let mut server = cx.start_ready()?;
    let mut seen = Vec::new();
    for cycle in 0..cycles {
        if cycle % 2 == 1 {
            // Restart: every instance closes (the name's descriptor goes with them).
            target.umask = Some(UMASKS[schedule.below(UMASKS.len() as u64) as usize]);
            drop(server);
            let restarted = Context { backend: cx.backend, target: &target, policy: cx.policy, seed: cx.seed };
            server = restarted.start_ready()?;
        }
        let spec = ConnectSpec { read_protection: true, timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
        match cx.backend.connect(&server.endpoint, &spec) {
            Ok(mut c) => {
                seen.push(c.protection().map_err(|e| e.to_string()));
                if let Some(ping) = &cx.target.ping {
                    let _ = exchange(&mut c, &cx.target.framing, &ping.request, CLIENT_TIMEOUT);
                }
            }
            Err(e) => seen.push(Err(format!("connect: {e}"))),
        }
    }
    // Where a pipe made without a security descriptor reads back no DACL (Wine), "no DACL" is
    // a NULL DACL or the default one; either way not the policy's, so still a finding.
    let null_reads_default = seen.iter().any(|s| matches!(s, Ok(Protection::NullDacl)))
        && crate::null_dacl_is_telling(cx, "the endpoint").is_err();
    Ok(Observations { expected, seen, null_reads_default })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dacl_that_drifts_after_churn_is_a_finding_at_the_cycle_it_drifted() {
        let expected: Protection = "D:P(A;;GA;;;SY)".parse().expect("sddl");
        let stored: Protection = "D:P(A;;FA;;;S-1-5-18)".parse().expect("sddl");
        let ok = Observations {
            expected: expected.clone(),
            seen: vec![Ok(stored.clone()), Ok(stored.clone())],
            null_reads_default: false,
        };
        assert_eq!(judge(&ok).kind(), "pass");
        let drift = Observations {
            expected: expected.clone(),
            seen: vec![Ok(stored), Ok(Protection::NullDacl)],
            null_reads_default: true,
        };
        match judge(&drift) {
            Verdict::Fail(f) => {
                assert!(f.title.contains("cycle 2"), "{}", f.title);
                assert!(f.evidence.iter().any(|e| e.contains("neither is the policy's")), "{:?}", f.evidence);
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(judge(&Observations { expected, seen: vec![], null_reads_default: false }).kind(), "error");
    }

    #[test]
    fn a_socket_mode_is_judged_by_who_may_connect_not_by_its_number() {
        let policy = Protection::unix(0o600, 61000);
        let same = Observations {
            expected: policy.clone(),
            seen: vec![Ok(Protection::unix(0o600, 61000)), Ok(Protection::unix(0o700, 61000))],
            null_reads_default: false,
        };
        match judge(&same) {
            Verdict::Pass { evidence } => {
                assert!(evidence.iter().any(|e| e.contains("the same identities may connect")), "{evidence:?}")
            }
            v => panic!("{v:?}"),
        }
        let open = Observations {
            expected: policy,
            seen: vec![Ok(Protection::unix(0o700, 61000)), Ok(Protection::unix(0o602, 61000))],
            null_reads_default: false,
        };
        match judge(&open) {
            Verdict::Fail(f) => {
                assert!(f.title.contains("cycle 2"), "{}", f.title);
                assert!(f.evidence.iter().any(|e| e.contains("every other user may connect")), "{:?}", f.evidence);
            }
            v => panic!("{v:?}"),
        }
    }
}
