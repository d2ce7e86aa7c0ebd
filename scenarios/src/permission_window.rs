//! **permission window** (Unix sockets): between `bind(2)` and a later `chmod`, the socket has
//! whatever mode the umask left, and anyone it allows can connect. The harness starts the server
//! under the most permissive umask a service manager could hand it (000) and, as an identity
//! the policy denies, tries to connect from the moment the socket appears until the server is
//! ready. A server that sets its umask before bind (or binds in a private directory) has no
//! window; an abstract socket has no permissions at all.

use crate::{Context, Scenario};
use pipe_harness_core::engine::{Backend, ConnectSpec, Finding, Policy, ServerUnderTest, Severity, Started, Verdict};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;
use pipe_harness_core::protection::Protection;
use std::time::{Duration, Instant};

/// The scenario.
pub struct PermissionWindow;

/// The plan key that names a denied identity.
const DENIED_KEY: &str = "[policy] denied_users = [\"61001\"]";

impl Scenario for PermissionWindow {
    const ID: &'static str = "permission_window";
    const TITLE: &'static str = "can a denied uid connect while the server starts, before it sets the socket's mode?";
    /// Named pipes are created with their descriptor: there is no window.
    const WINDOWS: Option<&'static [Rule]> = None;
    /// Another uid's connect must be refused by a socket's mode.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixSocketModeEnforced, Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &[DENIED_KEY, "[target] program (the harness starts it)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy)
    }
}

/// What one connect attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The socket did not exist yet (`ENOENT`).
    NoSocketYet,
    /// The socket was there and refused this identity.
    Refused(String),
    /// The identity connected.
    Connected,
}

/// The race as the denied identity saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The identity that raced the server.
    pub who: Identity,
    /// Each connect attempt: when (ms since start), and what it found (none when the policy's
    /// protection lets everyone connect anyway).
    pub attempts: Vec<(u128, Attempt)>,
}

/// The verdict.
fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    if policy_lets_others_connect(policy.protection.as_ref()) {
        return Verdict::Pass {
            evidence: vec![format!("the policy's protection ({}) lets every user connect: there is no window to close (authorization is by peer credentials; see peer_credentials)", policy.protection.as_ref().map(ToString::to_string).unwrap_or_default())],
        };
    }
    let (who, obs) = (&obs.who, &obs.attempts);
    let seen: Vec<&(u128, Attempt)> = obs.iter().filter(|(_, a)| *a != Attempt::NoSocketYet).collect();
    let evidence: Vec<String> = seen.iter().take(20).map(|(t, a)| format!("{t} ms: as uid {who}: {a:?}")).collect();
    if let Some((t, _)) = obs.iter().find(|(_, a)| *a == Attempt::Connected) {
        return Verdict::Fail(Finding {
            title: format!("uid {who}, which the policy denies, connected {t} ms into startup"),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    if seen.is_empty() {
        return Verdict::Error {
            reason: "the socket never appeared while the harness watched: nothing was tested".into(),
        };
    }
    Verdict::Pass { evidence }
}

/// Whether the policy's protection (a mode) lets other users connect anyway (connecting to a
/// Unix socket needs write permission): then there is no window to find.
pub fn policy_lets_others_connect(protection: Option<&Protection>) -> bool {
    matches!(protection, Some(Protection::Mode(m)) if m.others_may_connect())
}

/// Starts the server under umask 000 and races it as a denied identity.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    cx.needs_start("races the server's start")?;
    let Some(denied) = cx.policy.denied_users.first() else {
        return Err(Verdict::not_applicable("the policy names no denied identity to race the server with", DENIED_KEY));
    };
    let mut obs = Observations { who: denied.clone(), attempts: Vec::new() };
    if policy_lets_others_connect(cx.policy.protection.as_ref()) {
        return Ok(obs);
    }
    let mut target = cx.target.clone();
    target.umask = Some(0o000);
    let endpoint = cx.backend.endpoint(&target.endpoint);
    let mut server =
        ServerUnderTest::start(cx.backend, &target, &endpoint).map_err(|e| Verdict::error("starting the target", e))?;
    let t0 = Instant::now();
    let deadline = t0 + target.ready_timeout;
    let mut ready = false;
    while Instant::now() < deadline {
        let spec = ConnectSpec { as_user: Some(denied.clone()), timeout: Duration::ZERO, ..ConnectSpec::default() };
        let attempt = match cx.backend.connect(&endpoint, &spec) {
            Ok(_) => Attempt::Connected,
            Err(e) if e.os_code() == Some(pipe_harness_core::OsCode::ENOENT) => Attempt::NoSocketYet,
            Err(e) => Attempt::Refused(e.to_string()),
        };
        obs.attempts.push((t0.elapsed().as_millis(), attempt));
        if ready {
            break; // one attempt after ready: the settled mode
        }
        match server.wait_ready(cx.backend, &target.readiness, Duration::from_millis(2)) {
            Started::Ready => ready = true,
            ended @ (Started::Exited(_) | Started::Stopped) => {
                return Err(Verdict::Error {
                    reason: format!("the target exited ({ended:?}) during startup: {:?}", server.output()),
                })
            }
            Started::TimedOut => {}
        }
    }
    Ok(obs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_open_to_everyone_has_no_window() {
        assert!(policy_lets_others_connect(Some(&Protection::unix(0o666, 61000))));
        assert!(!policy_lets_others_connect(Some(&Protection::unix(0o600, 61000))));
        assert!(!policy_lets_others_connect(None));
    }

    #[test]
    fn a_connect_during_startup_is_a_finding_and_never_seeing_the_socket_is_an_error() {
        let p = Policy::default();
        let seen = |attempts| Observations { who: Identity::uid(61001), attempts };
        let refused = seen(vec![(1, Attempt::NoSocketYet), (3, Attempt::Refused("Permission denied".into()))]);
        assert_eq!(judge(&refused, &p).kind(), "pass");
        let open = seen(vec![(1, Attempt::NoSocketYet), (3, Attempt::Connected)]);
        assert_eq!(judge(&open, &p).kind(), "fail");
        assert_eq!(judge(&seen(vec![(1, Attempt::NoSocketYet)]), &p).kind(), "error");
        let everyone = Policy { protection: Some(Protection::unix(0o666, 61000)), ..Policy::default() };
        assert_eq!(judge(&open, &everyone).kind(), "pass", "the policy itself opens it to all");
    }
}
