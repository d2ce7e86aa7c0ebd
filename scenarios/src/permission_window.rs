//! **permission window** (Unix sockets): between `bind(2)`+`listen(2)` and a later `chmod`, the
//! socket accepts connections with whatever mode the umask left. The harness starts the server
//! under the most permissive umask a service manager could hand it (000) and, as an identity
//! the policy denies, tries to connect from the moment the socket appears until the server is
//! ready, then once more: the mode it settled on. The window is only the time the socket is
//! connectable with a mode other than the one it settles on: a connect during startup is a
//! finding only when the settled mode refuses the same identity. A server that sets its umask
//! before bind, binds in a private directory, or chmods between `bind` and `listen` (a bound
//! socket that does not listen refuses every connect) has no window; a settled mode that lets
//! the identity in (0666, an abstract name) is its steady state, which `dacl_churn` and
//! `peer_credentials` judge, not a startup race.
//!
//! Which defence held is in the evidence: the socket's mode (the settled attempt was refused
//! with `EACCES`), or nothing yet (the socket was not listening).

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
    const TITLE: &'static str =
        "can a denied uid connect while the server starts, with a mode other than the one the socket settles on?";
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

/// One connect attempt: when (ms since start), what it found, and the socket's mode read just
/// after it (`None`: no socket file, or an abstract name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Try {
    /// Milliseconds since the server was started.
    pub at_ms: u128,
    /// What it found.
    pub attempt: Attempt,
    /// The socket file's mode just after.
    pub mode: Option<u32>,
}

/// The race as the denied identity saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The identity that raced the server.
    pub who: Identity,
    /// Each connect attempt before the server said it was ready (none when the policy's
    /// protection lets everyone connect anyway).
    pub attempts: Vec<Try>,
    /// The attempt made once the server was ready: the mode it settled on. `None`: it never
    /// got ready while the harness watched.
    pub settled: Option<Try>,
}

fn mode_text(mode: Option<u32>) -> String {
    mode.map_or("no socket file".into(), |m| format!("mode {m:04o}"))
}

fn line(who: &Identity, t: &Try) -> String {
    format!("{} ms: as uid {who}: {:?} ({})", t.at_ms, t.attempt, mode_text(t.mode))
}

/// The verdict.
fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    if policy_lets_others_connect(policy.protection.as_ref()) {
        return Verdict::Pass {
            evidence: vec![format!("the policy's protection ({}) lets every user connect: there is no window to close (authorization is by peer credentials; see peer_credentials)", policy.protection.as_ref().map(ToString::to_string).unwrap_or_default())],
        };
    }
    let who = &obs.who;
    let seen: Vec<&Try> = obs.attempts.iter().filter(|t| t.attempt != Attempt::NoSocketYet).collect();
    let mut evidence: Vec<String> = seen.iter().take(20).map(|t| line(who, t)).collect();
    let Some(settled) = &obs.settled else {
        return Verdict::Error {
            reason: format!(
                "the server never said it was ready while the harness watched, so there is no settled mode to compare with: {evidence:?}"
            ),
        };
    };
    evidence.push(format!("settled (after ready): {}", line(who, settled)));
    if settled.attempt == Attempt::Connected {
        evidence.push(format!(
            "no window: the mode it settles on ({}) lets uid {who} connect too, so startup opens nothing it does not keep open; a steady mode is dacl_churn's business, and who may do what once connected peer_credentials'",
            mode_text(settled.mode)
        ));
        return Verdict::Pass { evidence };
    }
    if let Some(t) = seen.iter().find(|t| t.attempt == Attempt::Connected) {
        return Verdict::Fail(Finding {
            title: format!(
                "uid {who}, which the policy denies, connected {} ms into startup, while the socket's mode was {}; the mode it settles on ({}) refuses it",
                t.at_ms,
                mode_text(t.mode).trim_start_matches("mode "),
                mode_text(settled.mode).trim_start_matches("mode ")
            ),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    if seen.is_empty() && obs.attempts.is_empty() {
        return Verdict::Error {
            reason: "the socket never appeared while the harness watched: nothing was tested".into(),
        };
    }
    evidence.push(format!(
        "no connect as uid {who} succeeded during startup, and the settled mode refuses it: the socket's mode (or its not listening yet) held throughout"
    ));
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
    let mut obs = Observations { who: denied.clone(), attempts: Vec::new(), settled: None };
    if policy_lets_others_connect(cx.policy.protection.as_ref()) {
        return Ok(obs);
    }
    let mut target = cx.target.clone();
    target.umask = Some(0o000);
    let endpoint = cx.backend.endpoint_for(&target);
    let path = cx.backend.endpoint_path(&endpoint);
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
        let t = Try { at_ms: t0.elapsed().as_millis(), attempt, mode: socket_mode(&path) };
        if ready {
            obs.settled = Some(t); // one attempt after ready: the settled mode
            break;
        }
        obs.attempts.push(t);
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

/// The socket file's permission bits (`None`: no file, or not a path).
#[cfg(unix)]
fn socket_mode(path: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    if path.starts_with('@') {
        return None;
    }
    std::fs::symlink_metadata(path).ok().map(|m| m.mode() & 0o7777)
}

#[cfg(not(unix))]
fn socket_mode(_: &str) -> Option<u32> {
    None
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

    fn at(at_ms: u128, attempt: Attempt, mode: Option<u32>) -> Try {
        Try { at_ms, attempt, mode }
    }

    fn seen(attempts: Vec<Try>, settled: Try) -> Observations {
        Observations { who: Identity::uid(61001), attempts, settled: Some(settled) }
    }

    fn refused() -> Attempt {
        Attempt::Refused("Permission denied".into())
    }

    #[test]
    fn a_connect_during_startup_that_the_settled_mode_refuses_is_a_finding() {
        let p = Policy::default();
        let closed =
            seen(vec![at(1, Attempt::NoSocketYet, None), at(3, refused(), Some(0o600))], at(5, refused(), Some(0o600)));
        assert_eq!(judge(&closed, &p).kind(), "pass");
        let window = seen(
            vec![at(1, Attempt::NoSocketYet, None), at(3, Attempt::Connected, Some(0o777))],
            at(305, refused(), Some(0o600)),
        );
        match judge(&window, &p) {
            Verdict::Fail(f) => assert!(f.title.contains("mode was 0777") && f.title.contains("(0600)"), "{}", f.title),
            v => panic!("{v:?}"),
        }
        let everyone = Policy { protection: Some(Protection::unix(0o666, 61000)), ..Policy::default() };
        assert_eq!(judge(&window, &everyone).kind(), "pass", "the policy itself opens it to all");
    }

    /// bind, chmod 0666, listen: the denied uid connects as soon as the socket listens, with
    /// the mode it keeps. Its steady 0666 is not a startup race.
    #[test]
    fn a_steady_mode_that_lets_the_identity_in_is_no_window() {
        let steady = seen(
            vec![
                at(1, Attempt::NoSocketYet, None),
                at(3, refused(), Some(0o777)),
                at(305, Attempt::Connected, Some(0o666)),
            ],
            at(307, Attempt::Connected, Some(0o666)),
        );
        match judge(&steady, &Policy::default()) {
            Verdict::Pass { evidence } => {
                assert!(evidence.iter().any(|e| e.contains("no window") && e.contains("mode 0666")), "{evidence:?}")
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn never_seeing_the_socket_or_never_ready_is_an_error() {
        let p = Policy::default();
        let never = Observations {
            who: Identity::uid(61001),
            attempts: vec![at(1, Attempt::NoSocketYet, None)],
            settled: None,
        };
        assert_eq!(judge(&never, &p).kind(), "error");
    }
}
