//! **cross-session visibility**: who, in another session, can find and open the endpoint and
//! what publishes it. On Windows the pipe namespace is machine-wide, but a name published in a
//! `Local\` object lives in the publisher's session, so a service in session 0 cannot find a pipe
//! a user's process serves that way (WCF's NetNamedPipeBinding). On Unix, an abstract socket
//! lives in its network namespace, while a path socket follows the filesystem.

use crate::{Context, Scenario};
use pipe_harness_core::engine::{Backend, Finding, Policy, SessionReach, Severity, Verdict};
use pipe_harness_core::probe::Rule;

/// Why it is not applicable without a policy on other sessions.
const NO_SESSION_POLICY: &str = "the policy does not say whether other sessions may reach the endpoint";
/// The plan key that gives one.
const SESSION_POLICY_KEY: &str = "[policy] other_sessions = true (a service that serves other sessions) or false";

/// The scenario.
pub struct CrossSessionVisibility;

impl Scenario for CrossSessionVisibility {
    const ID: &'static str = "cross_session_visibility";
    const TITLE: &'static str =
        "can a client in the sessions the policy names find and open the pipe and what publishes it?";
    /// A token must really move to another session (Windows; needs `SeTcbPrivilege`).
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::SessionIdsReal]);
    /// Abstract names must really be per network namespace (Unix).
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixAbstractPerNetns]);
    const NEEDS: &'static [&'static str] = &[SESSION_POLICY_KEY];
    /// What the other session could do.
    type Observations = SessionReach;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<SessionReach, Verdict> {
        observe(cx)
    }

    fn judge(reach: &SessionReach, policy: &Policy) -> Verdict {
        judge(reach, policy.other_sessions)
    }
}

/// The verdict for what the other session could do, against the policy.
fn judge(reach: &SessionReach, must_reach: Option<bool>) -> Verdict {
    let mut evidence = vec![format!(
        "from {}: published name {}; endpoint {} ({})",
        reach.session,
        match reach.found_published {
            Some(true) => "found",
            Some(false) => "NOT found",
            None => "not used",
        },
        if reach.connected { "opened" } else { "not opened" },
        reach.detail
    )];
    let reached = reach.connected && reach.found_published != Some(false);
    match must_reach {
        None => Verdict::not_applicable(NO_SESSION_POLICY, SESSION_POLICY_KEY),
        Some(true) if !reached => Verdict::Fail(Finding {
            title: if reach.found_published == Some(false) {
                "a client in another session cannot find the published endpoint name".into()
            } else {
                "a client in another session cannot open the endpoint".into()
            },
            severity: Severity::Medium,
            evidence,
            seed: None,
            replay: None,
        }),
        Some(false) if reached => Verdict::Fail(Finding {
            title: "a client in another session can reach the endpoint".into(),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        }),
        Some(_) => {
            evidence.push(format!(
                "the policy says other sessions {} reach it",
                if must_reach == Some(true) { "must" } else { "must not" }
            ));
            Verdict::Pass { evidence }
        }
    }
}

/// Starts the server and tries to reach it from another session.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<SessionReach, Verdict> {
    if cx.policy.other_sessions.is_none() {
        return Err(Verdict::not_applicable(NO_SESSION_POLICY, SESSION_POLICY_KEY));
    }
    let server = cx.reach_ready()?;
    let published = cx.target.published_in.as_ref().map(|p| p.replace("{pipe}", server.requested()));
    cx.backend
        .reach_from_other_session(server.endpoint(), published.as_deref())
        .map_err(|e| Verdict::error("reaching the endpoint from another session", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(found: Option<bool>, connected: bool) -> SessionReach {
        SessionReach { session: "session 0".into(), found_published: found, connected, detail: String::new() }
    }

    #[test]
    fn the_policy_decides_whether_reaching_or_not_reaching_is_the_finding() {
        assert_eq!(judge(&reach(Some(true), true), Some(true)).kind(), "pass");
        match judge(&reach(Some(false), true), Some(true)) {
            Verdict::Fail(f) => assert!(f.title.contains("cannot find the published"), "{}", f.title),
            v => panic!("{v:?}"),
        }
        assert_eq!(judge(&reach(None, false), Some(true)).kind(), "fail");
        assert_eq!(judge(&reach(None, true), Some(false)).kind(), "fail");
        assert_eq!(judge(&reach(None, false), Some(false)).kind(), "pass");
        assert_eq!(judge(&reach(None, true), None).kind(), "not_applicable");
    }
}
