//! **peer credentials** (the impersonation counterpart on Unix sockets): a Unix server learns
//! who connected from `SO_PEERCRED` and must authorize by it. The harness connects as an
//! identity the policy allows and as one it denies, and sends the privileged request as each.

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{request_succeeds, Backend, ConnectSpec, Finding, Policy, Severity, Verdict};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;

/// The scenario.
pub struct PeerCredentials;

/// The plan keys that name an allowed and a denied identity.
const USERS_KEY: &str = "[policy] allowed_users = [\"61000\"] and denied_users = [\"61001\"]";

impl Scenario for PeerCredentials {
    const ID: &'static str = "peer_credentials";
    const TITLE: &'static str = "does a Unix server refuse the privileged request from a uid the policy denies?";
    /// Named pipes: see `impersonation_limits`.
    const WINDOWS: Option<&'static [Rule]> = None;
    /// Other uids must be real (the harness is root) and seen by `SO_PEERCRED`.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &[crate::PRIVILEGED_KEY, USERS_KEY];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// Per identity: allowed by the policy?, and did the privileged request succeed?
pub type Observations = Vec<(Identity, bool, Result<bool, String>)>;

/// The verdict.
fn judge(obs: &Observations) -> Verdict {
    let evidence: Vec<String> = obs
        .iter()
        .map(|(who, allowed, r)| {
            format!("as uid {who} ({}): {r:?}", if *allowed { "allowed by the policy" } else { "denied by the policy" })
        })
        .collect();
    let leaked: Vec<String> =
        obs.iter().filter(|(_, allowed, r)| !allowed && r == &Ok(true)).map(|(w, _, _)| w.to_string()).collect();
    if !leaked.is_empty() {
        return Verdict::Fail(Finding {
            title: format!("did privileged work for uid {} which the policy denies", leaked.join(", ")),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    if !obs.iter().any(|(_, allowed, r)| *allowed && r == &Ok(true)) {
        return Verdict::Error { reason: format!("the privileged request failed for every allowed identity too, so a refusal proves nothing: {evidence:?}") };
    }
    Verdict::Pass { evidence }
}

/// Connects as each identity the policy names and sends the privileged request.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let Some(privileged) = &cx.target.privileged else {
        return Err(Verdict::not_applicable(crate::NO_PRIVILEGED, crate::PRIVILEGED_KEY));
    };
    if cx.policy.allowed_users.is_empty() || cx.policy.denied_users.is_empty() {
        return Err(Verdict::not_applicable("the policy does not name an allowed and a denied identity", USERS_KEY));
    }
    let server = cx.reach_ready()?;
    let who =
        cx.policy.allowed_users.iter().map(|u| (u, true)).chain(cx.policy.denied_users.iter().map(|u| (u, false)));
    let obs: Observations = who
        .map(|(user, allowed)| {
            let spec = ConnectSpec { as_user: Some(user.clone()), timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
            let r =
                request_succeeds(cx.backend, server.endpoint(), &spec, &cx.target.framing, privileged, CLIENT_TIMEOUT);
            (user.clone(), allowed, r)
        })
        .collect();
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_uid_getting_the_work_done_is_a_finding() {
        let ok = vec![(Identity::uid(61000), true, Ok(true)), (Identity::uid(61001), false, Ok(false))];
        assert_eq!(judge(&ok).kind(), "pass");
        let leak = vec![(Identity::uid(61000), true, Ok(true)), (Identity::uid(61001), false, Ok(true))];
        assert_eq!(judge(&leak).kind(), "fail");
        let broken = vec![(Identity::uid(61000), true, Ok(false)), (Identity::uid(61001), false, Ok(false))];
        assert_eq!(judge(&broken).kind(), "error");
    }
}
