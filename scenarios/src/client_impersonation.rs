//! **client impersonation** (the other direction): the harness squats the name with a rogue
//! instance, starts the client under test, and when it connects reads its first message and
//! impersonates it. A client that offers Impersonation or Delegation to a server it has not
//! authenticated hands its identity to whoever got the name first.

use crate::{Context, Scenario};
use pipe_harness_core::engine::{
    Backend, Finding, ListenSpec, Listener, PeerIdentity, Policy, ServerUnderTest, Severity, Target, Verdict,
};
use pipe_harness_core::probe::Rule;
use std::time::Duration;

/// The scenario.
pub struct ClientImpersonation;

/// The plan key that names the client under test.
pub(crate) const CLIENT_KEY: &str =
    "[target] client = { program = \"bin/my-client\", args = [\"--pipe\", \"{pipe}\"] }";

impl Scenario for ClientImpersonation {
    const ID: &'static str = "client_impersonation";
    const TITLE: &'static str = "does a client under test hand a rogue server more than Identification?";
    /// The rogue server must get the level the client's SQOS allowed.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::SqosLevelHonoured]);
    /// A Unix-socket client offers no impersonation.
    const UNIX: Option<&'static [Rule]> = None;
    const NEEDS: &'static [&'static str] = &[CLIENT_KEY];
    const SUBJECT: crate::Subject = crate::Subject::Client;
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy)
    }
}

/// What the rogue server got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The client connected to the rogue instance.
    pub connected: bool,
    /// Bytes it sent before the rogue impersonated it.
    pub bytes: usize,
    /// What impersonation gave.
    pub identity: Option<PeerIdentity>,
}

/// The verdict.
fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    if !obs.connected {
        return Verdict::Error { reason: "the client under test never connected to the rogue instance".into() };
    }
    let mut evidence =
        vec![format!("the client connected to the harness's rogue instance and sent {} bytes", obs.bytes)];
    match &obs.identity {
        Some(PeerIdentity { level: Some(level), user }) => {
            evidence.push(format!("impersonating it gave {} as {}", level.id(), user.as_deref().unwrap_or("?")));
            if *level > policy.client_max_level {
                return Verdict::Fail(Finding {
                    title: format!("the client offered {} to a server it had not authenticated", level.id()),
                    severity: Severity::High,
                    evidence,
                    seed: None,
                    replay: None,
                });
            }
        }
        _ => evidence.push("the client sent nothing the rogue could impersonate".into()),
    }
    Verdict::Pass { evidence }
}

/// Squats, runs the client, impersonates it.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let Some(client) = &cx.target.client_under_test else {
        return Err(Verdict::not_applicable("the target has no client under test", CLIENT_KEY));
    };
    let endpoint = cx.backend.endpoint_for(cx.target);
    let mut rogue = cx
        .backend
        .listen(&endpoint, &ListenSpec { open_to_all: true, ..ListenSpec::default() })
        .map_err(|e| Verdict::error("creating the rogue instance", e))?;
    // Started like a server under test: tied to the harness, its tree killed when it ends.
    let mut as_target = Target::new("client under test", &client.program, &endpoint);
    as_target.args = client.args.clone();
    let child = ServerUnderTest::start(cx.backend, &as_target, &endpoint)
        .map_err(|e| Verdict::error("starting the client under test", e))?;
    let connected = rogue.accept(Duration::from_secs(20)).is_ok();
    let mut buf = [0u8; 4096];
    let bytes = if connected { rogue.recv(&mut buf, Duration::from_secs(5)).unwrap_or(0) } else { 0 };
    let identity = if bytes > 0 { rogue.peer_identity().ok() } else { None };
    drop(rogue);
    drop(child);
    Ok(Observations { connected, bytes, identity })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipe_harness_core::identity::ImpersonationLevel;

    #[test]
    fn more_than_identification_to_a_rogue_is_a_finding() {
        let p = Policy::default();
        let seen = |level| Observations {
            connected: true,
            bytes: 8,
            identity: Some(PeerIdentity { level: Some(level), user: Some("S-1-5-21-1".into()) }),
        };
        assert_eq!(judge(&seen(ImpersonationLevel::Identification), &p).kind(), "pass");
        assert_eq!(judge(&seen(ImpersonationLevel::Impersonation), &p).kind(), "fail");
        assert_eq!(judge(&Observations { connected: true, bytes: 0, identity: None }, &p).kind(), "pass");
        assert_eq!(judge(&Observations { connected: false, bytes: 0, identity: None }, &p).kind(), "error");
    }
}
