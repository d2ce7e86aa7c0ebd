//! **peer credentials** (the impersonation counterpart on Unix sockets): a Unix server learns
//! who connected from `SO_PEERCRED` and must authorize by it. The harness connects as an
//! identity the policy allows and as one it denies, and sends the privileged request as each.
//!
//! Two defences can refuse a denied uid, and the verdict says which held:
//! 1. **the socket's mode**: `connect(2)` needs the write bit, so a 0600 socket refuses every
//!    other uid before the server sees it;
//! 2. **the server's own check** of `SO_PEERCRED`, reached only by a uid the mode lets in.
//!
//! Where the mode refused a denied uid, the server's own check was not reached. When the harness
//! started the server (it owns the deployment), it then opens the socket's mode to 0777 for
//! that uid's attempt alone and puts it back, so the server's own check is tested too: a server
//! that relies on its mode alone fails that layer (Medium: its mode still holds, but one
//! `chmod` or umask away from doing the work for anyone), a denied uid that got the work done
//! through the socket's real mode is High. Each layer is one evidence line starting
//! `defence 1 (the socket's mode)` / `defence 2 (the server's own check)`, so every report
//! format carries both.

use crate::{Context, Running, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{reply_succeeds, Backend, Conn, ConnectSpec, Finding, Policy, Severity, Verdict};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;
use pipe_harness_core::protection::{Protection, UnixMode};

/// The scenario.
pub struct PeerCredentials;

/// The plan key that says the product relies on the server's own check of its peer.
const PEER_CHECK_KEY: &str = "[policy] peer_check = true";

/// The plan keys that name an allowed and a denied identity.
const USERS_KEY: &str = "[policy] allowed_users = [\"61000\"] and denied_users = [\"61001\"]";

impl Scenario for PeerCredentials {
    const ID: &'static str = "peer_credentials";
    const TITLE: &'static str = "does a Unix server refuse the privileged request from a uid the policy denies (by the socket's mode, and by its own check of the peer)?";
    /// Named pipes: see `impersonation_limits`.
    const WINDOWS: Option<&'static [Rule]> = None;
    /// Other uids must be real (the harness is root) and seen by `SO_PEERCRED`.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &[crate::PRIVILEGED_KEY, USERS_KEY];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy.peer_check)
    }
}

/// What one privileged request came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The socket's mode refused the connect (`EACCES`): the server never saw the client.
    ModeRefused(String),
    /// Connected; the server answered, and the answer was not the success reply.
    ServerRefused,
    /// Connected; the server did the work.
    Done,
    /// Connected, or tried to, and something else went wrong.
    Failed(String),
}

/// One identity's attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Who.
    pub who: Identity,
    /// Whether the policy allows it.
    pub allowed: bool,
    /// What came of it.
    pub outcome: Outcome,
}

/// The server's own check, tested with the socket's mode opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerCheck {
    /// Tested: each denied identity the mode had refused, with the mode opened for it.
    Tested(Vec<Attempt>),
    /// Not needed: every denied identity reached the server through the socket's own mode.
    Reached,
    /// Not tested, and why (the plan attaches to a server the harness did not start; an
    /// abstract name; the platform).
    NotTested(String),
}

/// What both layers showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The socket's protection as the server set it (read as root once it was ready).
    pub protection: Option<Protection>,
    /// Through the socket's own mode: every identity the policy names.
    pub attempts: Vec<Attempt>,
    /// The server's own check behind the mode.
    pub server_check: ServerCheck,
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::ModeRefused(e) => format!("refused by the socket's mode ({e})"),
        Outcome::ServerRefused => "connected; the server refused the request".into(),
        Outcome::Done => "connected; the server did the privileged work".into(),
        Outcome::Failed(e) => format!("failed: {e}"),
    }
}

fn denied_done(attempts: &[Attempt]) -> Vec<String> {
    attempts.iter().filter(|a| !a.allowed && a.outcome == Outcome::Done).map(|a| a.who.to_string()).collect()
}

/// The verdict. `peer_check`: the policy says the product relies on the server's own check
/// ([`Policy::peer_check`]); without it, a server that relies on its socket's mode alone passes,
/// and what its own check did is information in the evidence.
fn judge(obs: &Observations, peer_check: bool) -> Verdict {
    let mode = obs.protection.as_ref().map_or("?".to_string(), ToString::to_string);
    let mut evidence: Vec<String> = obs
        .attempts
        .iter()
        .map(|a| {
            format!(
                "as uid {} ({}), through the socket as the server set it ({mode}): {}",
                a.who,
                if a.allowed { "allowed by the policy" } else { "denied by the policy" },
                outcome_text(&a.outcome)
            )
        })
        .collect();
    if !obs.attempts.iter().any(|a| a.allowed && a.outcome == Outcome::Done) {
        return Verdict::Error { reason: format!("the privileged request failed for every allowed identity too, so a refusal proves nothing: {evidence:?}") };
    }
    let denied: Vec<&Attempt> = obs.attempts.iter().filter(|a| !a.allowed).collect();
    let mode_refused: Vec<String> = denied
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::ModeRefused(_)))
        .map(|a| format!("uid {}", a.who))
        .collect();
    evidence.push(if mode_refused.is_empty() {
        format!("defence 1 (the socket's mode, {mode}): let every denied uid connect; the server's own check is all there is")
    } else {
        format!("defence 1 (the socket's mode, {mode}): held: it refused {}", mode_refused.join(", "))
    });
    evidence.push(match &obs.server_check {
        ServerCheck::Reached => "defence 2 (the server's own check): reached through the socket's own mode (above)".into(),
        ServerCheck::NotTested(why) => format!(
            "defence 2 (the server's own check): not reached: the socket's mode refused first, and the harness could not open it ({why})"
        ),
        ServerCheck::Tested(tries) => {
            let each: Vec<String> = tries.iter().map(|a| format!("uid {}: {}", a.who, outcome_text(&a.outcome))).collect();
            format!("defence 2 (the server's own check), with the socket's mode opened to 0777 for the attempt and put back after: {}", each.join("; "))
        }
    });
    let leaked = denied_done(&obs.attempts);
    if !leaked.is_empty() {
        return Verdict::Fail(Finding {
            title: format!(
                "did privileged work for uid {} which the policy denies: the socket's mode ({mode}) let it connect and the server's own check did not refuse it",
                leaked.join(", ")
            ),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    if let ServerCheck::Tested(tries) = &obs.server_check {
        let leaked = denied_done(tries);
        if !leaked.is_empty() && !peer_check {
            evidence.push(format!(
                "information: the product relies on the socket's mode, which held; the server itself would serve uid {} (if it is meant to check peers itself, say so with {PEER_CHECK_KEY} and this is a finding)",
                leaked.join(", ")
            ));
            return Verdict::Pass { evidence };
        }
        if !leaked.is_empty() {
            return Verdict::Fail(Finding {
                title: format!(
                    "the server's own check does not refuse uid {}, which the policy denies: only the socket's mode ({mode}) keeps it out, and with the mode opened the server did the privileged work",
                    leaked.join(", ")
                ),
                severity: Severity::Medium,
                evidence,
                seed: None,
                replay: None,
            });
        }
        if let Some(a) = tries.iter().find(|a| matches!(a.outcome, Outcome::ModeRefused(_))) {
            return Verdict::Error {
                reason: format!(
                    "the server's own check could not be reached: with the mode opened, uid {}'s attempt was {}: {evidence:?}",
                    a.who,
                    outcome_text(&a.outcome)
                ),
            };
        }
    }
    Verdict::Pass { evidence }
}

fn attempt<B: Backend>(cx: &Context<'_, B>, endpoint: &str, who: &Identity, allowed: bool) -> Attempt {
    let privileged = cx.target.privileged.as_ref().expect("checked by observe");
    let spec = ConnectSpec { as_user: Some(who.clone()), timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
    let outcome = match cx.backend.connect(endpoint, &spec) {
        Err(e) if e.is_permission_denied() => Outcome::ModeRefused(e.to_string()),
        Err(e) => Outcome::Failed(e.to_string()),
        Ok(mut c) => match reply_succeeds(&mut c, &cx.target.framing, privileged, CLIENT_TIMEOUT) {
            Ok(true) => Outcome::Done,
            Ok(false) => Outcome::ServerRefused,
            // A server that hangs up on a peer it refuses did not do the work either.
            Err(e) => Outcome::Failed(e),
        },
    };
    Attempt { who: who.clone(), allowed, outcome }
}

/// Puts the socket's mode back when the attempt is over, however it ends.
struct Restore<'a, B: Backend> {
    backend: &'a B,
    endpoint: &'a str,
    was: Protection,
}

impl<B: Backend> Drop for Restore<'_, B> {
    fn drop(&mut self) {
        let _ = self.backend.set_protection(self.endpoint, &self.was);
    }
}

/// Connects as each identity the policy names and sends the privileged request; then, for the
/// denied identities the socket's mode refused, tries again with the mode opened.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    if cx.target.privileged.is_none() {
        return Err(Verdict::not_applicable(crate::NO_PRIVILEGED, crate::PRIVILEGED_KEY));
    }
    if cx.policy.allowed_users.is_empty() || cx.policy.denied_users.is_empty() {
        return Err(Verdict::not_applicable("the policy does not name an allowed and a denied identity", USERS_KEY));
    }
    let server = cx.reach_ready()?;
    let endpoint = server.endpoint();
    let protection = cx
        .backend
        .connect(endpoint, &ConnectSpec { read_protection: true, timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() })
        .and_then(|c| c.protection())
        .ok();
    let who =
        cx.policy.allowed_users.iter().map(|u| (u, true)).chain(cx.policy.denied_users.iter().map(|u| (u, false)));
    let attempts: Vec<Attempt> = who.map(|(user, allowed)| attempt(cx, endpoint, user, allowed)).collect();
    let behind_mode: Vec<&Attempt> =
        attempts.iter().filter(|a| !a.allowed && matches!(a.outcome, Outcome::ModeRefused(_))).collect();
    let server_check = if behind_mode.is_empty() {
        ServerCheck::Reached
    } else {
        match (&server, &protection) {
            (Running::Attached(_), _) => ServerCheck::NotTested(
                "the plan attaches to a server the harness did not start, and its socket is not the harness's to change"
                    .into(),
            ),
            (Running::Started(_), Some(was @ Protection::Mode(m))) => {
                let open = Protection::Mode(UnixMode { mode: 0o777, ..*m });
                match cx.backend.set_protection(endpoint, &open) {
                    Err(e) => ServerCheck::NotTested(e.to_string()),
                    Ok(()) => {
                        let _restore = Restore { backend: cx.backend, endpoint, was: was.clone() };
                        ServerCheck::Tested(behind_mode.iter().map(|a| attempt(cx, endpoint, &a.who, false)).collect())
                    }
                }
            }
            (Running::Started(_), other) => ServerCheck::NotTested(format!(
                "the endpoint's protection ({}) is not a socket mode the harness can open",
                other.as_ref().map_or("unreadable".to_string(), ToString::to_string)
            )),
        }
    };
    Ok(Observations { protection, attempts, server_check })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(uid: u32, allowed: bool, outcome: Outcome) -> Attempt {
        Attempt { who: Identity::uid(uid), allowed, outcome }
    }

    fn obs(denied: Outcome, server_check: ServerCheck) -> Observations {
        Observations {
            protection: Some(Protection::unix(0o600, 61000)),
            attempts: vec![a(61000, true, Outcome::Done), a(61001, false, denied)],
            server_check,
        }
    }

    fn refused_by_mode() -> Outcome {
        Outcome::ModeRefused("Permission denied (errno 13)".into())
    }

    #[test]
    fn a_denied_uid_getting_the_work_done_is_a_finding() {
        assert_eq!(judge(&obs(Outcome::ServerRefused, ServerCheck::Reached), true).kind(), "pass");
        match judge(&obs(Outcome::Done, ServerCheck::Reached), false) {
            Verdict::Fail(f) => assert_eq!(f.severity, Severity::High),
            v => panic!("{v:?}"),
        }
        let broken = Observations {
            attempts: vec![a(61000, true, Outcome::ServerRefused), a(61001, false, Outcome::ServerRefused)],
            ..obs(Outcome::ServerRefused, ServerCheck::Reached)
        };
        assert_eq!(judge(&broken, true).kind(), "error");
    }

    /// The socket's mode refused the denied uid: the verdict says so, and that the server's own
    /// check was not reached, unless the harness opened the mode and tested it.
    #[test]
    fn the_verdict_says_which_defence_held() {
        let untested = obs(refused_by_mode(), ServerCheck::NotTested("attached".into()));
        let Verdict::Pass { evidence } = judge(&untested, true) else { panic!() };
        assert!(
            evidence.iter().any(
                |e| e.starts_with("defence 1 (the socket's mode, mode=0600 uid=61000): held: it refused uid 61001")
            ),
            "{evidence:?}"
        );
        assert!(
            evidence.iter().any(|e| e.starts_with("defence 2 (the server's own check): not reached")),
            "{evidence:?}"
        );
        let both = obs(refused_by_mode(), ServerCheck::Tested(vec![a(61001, false, Outcome::ServerRefused)]));
        let Verdict::Pass { evidence } = judge(&both, true) else { panic!() };
        assert!(
            evidence
                .iter()
                .any(|e| e.starts_with("defence 2") && e.contains("uid 61001: connected; the server refused")),
            "{evidence:?}"
        );
    }

    /// A server whose own check was removed, behind a 0600 socket, for a product that relies on
    /// that check (`peer_check = true`): the mode holds, the server's own check fails.
    #[test]
    fn a_server_that_relies_on_its_mode_alone_fails_the_server_check_layer() {
        let mode_only = obs(refused_by_mode(), ServerCheck::Tested(vec![a(61001, false, Outcome::Done)]));
        match judge(&mode_only, true) {
            Verdict::Fail(f) => {
                assert_eq!(f.severity, Severity::Medium);
                assert!(f.title.contains("only the socket's mode (mode=0600 uid=61000) keeps it out"), "{}", f.title);
                assert!(f.evidence.iter().any(|e| e.starts_with("defence 1") && e.contains("held")), "{f:?}");
            }
            v => panic!("{v:?}"),
        }
    }

    /// The same server for a product whose defence is its socket's mode (the default, as for
    /// most servers: redis, memcached, haproxy's stats socket): a pass that says the mode held,
    /// with what the server's own check did as information, never a finding.
    #[test]
    fn a_product_that_relies_on_its_mode_passes_and_learns_what_its_server_would_do() {
        let mode_only = obs(refused_by_mode(), ServerCheck::Tested(vec![a(61001, false, Outcome::Done)]));
        let Verdict::Pass { evidence } = judge(&mode_only, false) else {
            panic!("a finding the product never claimed")
        };
        assert!(evidence.iter().any(|e| e.starts_with("defence 1") && e.contains("held")), "{evidence:?}");
        assert!(
            evidence.iter().any(|e| e.starts_with("information:") && e.contains("peer_check = true")),
            "{evidence:?}"
        );
    }
}
