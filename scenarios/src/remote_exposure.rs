//! **remote exposure**: `PIPE_REJECT_REMOTE_CLIENTS` is per instance, so every instance must
//! set it. The harness takes the server's first instances with local clients, then opens the
//! pipe the way a remote client does (`\\localhost\pipe\...`, through the redirector).

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{Backend, ConnectSpec, Finding, Policy, Severity, Verdict};
use pipe_harness_core::probe::Rule;
use std::time::Duration;

/// The scenario.
pub struct RemoteExposure;

impl Scenario for RemoteExposure {
    const ID: &'static str = "remote_exposure";
    const TITLE: &'static str = "does every instance refuse remote clients when the policy says so?";
    /// A remote client must be makeable here, and the flag honoured.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::RemoteClientsRejected]);
    /// Unix-domain sockets have no remote clients.
    const UNIX: Option<&'static [Rule]> = None;
    const NEEDS: &'static [&'static str] = &["[policy] reject_remote (default true)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy)
    }
}

/// Per attempt (after that many local clients): was the remote client accepted?
pub type Observations = Vec<(usize, Result<bool, String>)>;

/// The verdict.
fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    let evidence: Vec<String> =
        obs.iter().map(|(n, r)| format!("after {n} local clients: remote open {r:?}")).collect();
    if policy.reject_remote && obs.iter().any(|(_, r)| r == &Ok(true)) {
        return Verdict::Fail(Finding {
            title: "an instance accepted a remote client".into(),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    Verdict::Pass { evidence }
}

/// Takes instances locally and tries a remote open after each.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let server = cx.reach_ready()?;
    let mut held = Vec::new();
    let mut obs = Observations::new();
    for n in 0..3 {
        let remote = ConnectSpec { remote: true, timeout: Duration::from_secs(2), ..ConnectSpec::default() };
        let r = cx.backend.connect(server.endpoint(), &remote);
        obs.push((
            n,
            r.as_ref().map(|_| true).or_else(|e| if e.is_access_denied() { Ok(false) } else { Err(e.to_string()) }),
        ));
        if let Ok(c) = r {
            held.push(c);
        }
        match cx.backend.connect(server.endpoint(), &ConnectSpec { timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() })
        {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
    }
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accepted_remote_client_is_a_finding() {
        let p = Policy::default();
        assert_eq!(judge(&vec![(0, Ok(false)), (1, Ok(false))], &p).kind(), "pass");
        assert_eq!(judge(&vec![(0, Ok(false)), (1, Ok(true))], &p).kind(), "fail");
    }
}
