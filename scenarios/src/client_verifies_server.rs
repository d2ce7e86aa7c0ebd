//! **client verifies server**: a client that connects to its service's endpoint and sends a
//! token, a password or a command before it checks who serves the endpoint hands it to whoever
//! took the name (OpenVPN GUI, CVE-2024-4877: the fix checks the server; Docker Desktop,
//! CVE-2020-11492). The check a client should make: on Unix, `SO_PEERCRED` (or `getpeereid`)
//! of the server against the service's uid; on Windows, who owns the server end
//! (`GetNamedPipeServerProcessId`, then that process's token).
//!
//! The harness plays the server twice, each time recording everything the client under test
//! sends: first as the service's own identity (the plan's `run_as`), where the client must
//! talk, which shows the client works and the check can fail; then as another identity (the
//! policy's first denied user, else uid 61999), where it must not. Bytes sent to the second
//! are a finding (shown as a short prefix and a length, not the secret).

use crate::{Context, Scenario, Subject};
use pipe_harness_core::engine::{
    Backend, ClientProgram, Finding, ListenSpec, Listener, Policy, ServerUnderTest, Severity, Target, Verdict,
};
use pipe_harness_core::identity::Identity;
use pipe_harness_core::probe::Rule;
use std::time::{Duration, Instant};

/// The scenario.
pub struct ClientVerifiesServer;

/// The plan key that says which identity the real server runs as.
const SERVICE_KEY: &str = "[target] run_as = \"svc-account\" (the identity the real server runs as)";
/// Who plays the rogue when the policy denies nobody.
pub const ROGUE_UID: u32 = 61999;
/// How many bytes of what a client sent a report shows.
pub const SHOWN: usize = 4;

impl Scenario for ClientVerifiesServer {
    const ID: &'static str = "client_verifies_server";
    const TITLE: &'static str = "does a client under test check who serves the endpoint before it sends anything?";
    /// A rogue instance under another token (and a client that checks its owner) is not built
    /// here yet; named-pipe clients are judged on what they offer (`client_impersonation`).
    const WINDOWS: Option<&'static [Rule]> = None;
    /// The rogue must really be another uid, as `SO_PEERCRED` reports it.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &[crate::client_impersonation::CLIENT_KEY, SERVICE_KEY];
    const SUBJECT: Subject = Subject::Client;
    const NOT_BUILT: Option<&'static str> = Some(crate::NO_WINDOWS_ACCOUNTS);
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, _: &Policy) -> Verdict {
        judge(obs)
    }
}

/// What the client did with one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// Who the harness's server ran as.
    pub server_as: Identity,
    /// The client connected.
    pub connected: bool,
    /// How many bytes it sent.
    pub sent: usize,
    /// The first bytes it sent (at most [`SHOWN`]).
    pub prefix: Vec<u8>,
}

/// Both contacts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// With a server of the service's own identity (the control).
    pub service: Contact,
    /// With a server of another identity.
    pub rogue: Contact,
}

/// `uid 61001`, or an account's name.
fn who(i: &Identity) -> String {
    match i {
        Identity::Uid { .. } => format!("uid {i}"),
        _ => i.to_string(),
    }
}

fn shown(c: &Contact) -> String {
    let prefix: String = c.prefix.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    format!("\"{prefix}...\" ({} bytes)", c.sent)
}

fn describe(c: &Contact) -> String {
    match (c.connected, c.sent) {
        (false, _) => format!("server as {}: the client never connected", who(&c.server_as)),
        (true, 0) => format!("server as {}: the client connected and sent nothing", who(&c.server_as)),
        (true, _) => format!("server as {}: the client sent {}", who(&c.server_as), shown(c)),
    }
}

/// The verdict.
fn judge(obs: &Observations) -> Verdict {
    let evidence = vec![describe(&obs.service), describe(&obs.rogue)];
    if obs.service.sent == 0 {
        return Verdict::Error {
            reason: format!(
                "the client sent nothing even to a server of the service's own identity, so a refusal would prove nothing: {evidence:?}"
            ),
        };
    }
    if obs.rogue.sent > 0 {
        return Verdict::Fail(Finding {
            title: format!(
                "the client sent {} bytes to a server running as {}, not as the service ({}), without checking who it was",
                obs.rogue.sent,
                who(&obs.rogue.server_as),
                who(&obs.service.server_as)
            ),
            severity: Severity::High,
            evidence,
            seed: None,
            replay: None,
        });
    }
    Verdict::Pass { evidence }
}

/// Plays the server as `who` on a fresh endpoint, starts the client against it, and records
/// what the client sends until it closes (or 3 s of quiet).
fn contact<B: Backend>(cx: &Context<'_, B>, client: &ClientProgram, who: &Identity) -> Result<Contact, Verdict> {
    // On Unix, in a runtime directory of the identity that plays the server.
    let template = if cx.backend.platform() == "windows" {
        "ph-client-{unique}".to_string()
    } else {
        format!("{{private_dir:{who}}}/ph-client-{{unique}}.sock")
    };
    let endpoint = cx.backend.endpoint(&pipe_harness_core::endpoint::EndpointTemplate::lenient(&template));
    let spec = ListenSpec { as_user: Some(who.clone()), open_to_all: true, ..ListenSpec::default() };
    let mut server = cx
        .backend
        .listen(&endpoint, &spec)
        .map_err(|e| Verdict::error(&format!("serving the endpoint as {who}"), e))?;
    let mut as_target = Target::new("client under test", &client.program, &endpoint);
    as_target.args = client.args.clone();
    let child = ServerUnderTest::start(cx.backend, &as_target, &endpoint)
        .map_err(|e| Verdict::error("starting the client under test", e))?;
    let mut seen = Contact { server_as: who.clone(), connected: false, sent: 0, prefix: Vec::new() };
    seen.connected = server.accept(Duration::from_secs(20)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while seen.connected && Instant::now() < deadline {
        match server.recv(&mut buf, deadline.saturating_duration_since(Instant::now())) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = SHOWN.saturating_sub(seen.prefix.len());
                seen.prefix.extend_from_slice(&buf[..n.min(room)]);
                seen.sent += n;
            }
        }
    }
    drop(server);
    drop(child);
    Ok(seen)
}

/// Both contacts, the service's first.
fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    let Some(client) = &cx.target.client_under_test else {
        return Err(Verdict::not_applicable(
            "the target has no client under test",
            crate::client_impersonation::CLIENT_KEY,
        ));
    };
    let Some(service) = &cx.target.run_as else {
        return Err(Verdict::not_applicable(
            "the plan does not say which identity the real server runs as",
            SERVICE_KEY,
        ));
    };
    let rogue = cx.policy.denied_users.iter().find(|u| *u != service).cloned().unwrap_or(Identity::uid(ROGUE_UID));
    Ok(Observations { service: contact(cx, client, service)?, rogue: contact(cx, client, &rogue)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(uid: u32, sent: &[u8]) -> Contact {
        Contact {
            server_as: Identity::uid(uid),
            connected: true,
            sent: sent.len(),
            prefix: sent[..sent.len().min(SHOWN)].to_vec(),
        }
    }

    #[test]
    fn sending_to_another_identity_is_a_finding_that_shows_only_a_prefix() {
        let secret = b"TOKEN hunter2\n";
        let pass = Observations { service: contact(61000, secret), rogue: contact(61001, b"") };
        assert_eq!(judge(&pass).kind(), "pass");
        match judge(&Observations { service: contact(61000, secret), rogue: contact(61001, secret) }) {
            Verdict::Fail(f) => {
                assert!(f.title.contains("14 bytes") && f.title.contains("61001"), "{}", f.title);
                let all = f.evidence.join("\n");
                assert!(all.contains("\"TOKE...\" (14 bytes)") && !all.contains("hunter2"), "{all}");
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_client_that_talks_to_nobody_proves_nothing() {
        let obs = Observations { service: contact(61000, b""), rogue: contact(61001, b"") };
        assert_eq!(judge(&obs).kind(), "error");
    }
}
