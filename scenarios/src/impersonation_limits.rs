//! **impersonation limits**: connect at Anonymous, Identification and Impersonation and send
//! the privileged request; the server must not act for a client whose level is below the
//! policy's. A server that impersonates without checking the thread token's level (or before
//! reading, so the call fails and it acts as itself) does the work anyway.

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{request_succeeds, Backend, ConnectSpec, Finding, Policy, Severity, Verdict};
use pipe_harness_core::identity::ImpersonationLevel;
use pipe_harness_core::probe::Rule;

/// The scenario.
pub struct ImpersonationLimits;

impl Scenario for ImpersonationLimits {
    const ID: &'static str = "impersonation_limits";
    const TITLE: &'static str =
        "does the server do privileged work for a client below the policy's impersonation level?";
    /// The server must be unable to impersonate before reading, and get the level the client chose.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::ImpersonationRequiresRead, Rule::SqosLevelHonoured]);
    /// SQOS levels do not exist on Unix sockets (see `peer_credentials`).
    const UNIX: Option<&'static [Rule]> = None;
    const NEEDS: &'static [&'static str] = &[crate::PRIVILEGED_KEY];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy)
    }
}

/// Per level: did the privileged request succeed (or why it could not be sent)?
pub type Observations = Vec<(ImpersonationLevel, Result<bool, String>)>;

/// The verdict.
fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    let evidence: Vec<String> = obs
        .iter()
        .map(|(l, r)| match r {
            Ok(true) => format!("client at {}: privileged request succeeded", l.id()),
            Ok(false) => format!("client at {}: privileged request refused", l.id()),
            Err(e) => format!("client at {}: {e}", l.id()),
        })
        .collect();
    let below: Vec<_> =
        obs.iter().filter(|(l, r)| *l < policy.min_privileged_level && r == &Ok(true)).map(|(l, _)| l.id()).collect();
    if !below.is_empty() {
        return Verdict::Fail(Finding {
            title: format!(
                "did privileged work for a client at {} (policy: {} or above)",
                below.join(", "),
                policy.min_privileged_level.id()
            ),
            severity: if below.contains(&"anonymous") { Severity::Critical } else { Severity::High },
            evidence,
            seed: None,
            replay: None,
        });
    }
    if !obs.iter().any(|(l, r)| *l >= policy.min_privileged_level && r == &Ok(true)) {
        return Verdict::Error {
            reason: format!("the privileged request never succeeded, even at {}: this check cannot tell refusal from a broken request ({evidence:?})", policy.min_privileged_level.id()),
        };
    }
    Verdict::Pass { evidence }
}

/// Sends the privileged request at each level.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let Some(privileged) = &cx.target.privileged else {
        return Err(Verdict::not_applicable(crate::NO_PRIVILEGED, crate::PRIVILEGED_KEY));
    };
    let server = cx.reach_ready()?;
    let obs: Observations =
        [ImpersonationLevel::Anonymous, ImpersonationLevel::Identification, ImpersonationLevel::Impersonation]
            .into_iter()
            .map(|level| {
                let spec = ConnectSpec { level: Some(level), timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
                (
                    level,
                    request_succeeds(
                        cx.backend,
                        server.endpoint(),
                        &spec,
                        &cx.target.framing,
                        privileged,
                        CLIENT_TIMEOUT,
                    ),
                )
            })
            .collect();
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ImpersonationLevel::*;

    #[test]
    fn work_below_the_policy_level_fails_and_a_request_that_never_works_is_an_error() {
        let p = Policy::default();
        assert_eq!(
            judge(&vec![(Anonymous, Ok(false)), (Identification, Ok(false)), (Impersonation, Ok(true))], &p).kind(),
            "pass"
        );
        match judge(&vec![(Anonymous, Ok(true)), (Identification, Ok(true)), (Impersonation, Ok(true))], &p) {
            Verdict::Fail(f) => assert_eq!(f.severity, Severity::Critical),
            v => panic!("{v:?}"),
        }
        assert_eq!(
            judge(&vec![(Anonymous, Ok(false)), (Identification, Ok(true)), (Impersonation, Ok(true))], &p).kind(),
            "fail"
        );
        assert_eq!(
            judge(&vec![(Anonymous, Ok(false)), (Identification, Ok(false)), (Impersonation, Ok(false))], &p).kind(),
            "error"
        );
    }
}
