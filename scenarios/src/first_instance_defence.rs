//! **first-instance defence**: with an attacker's instance already holding the name, does the
//! server refuse to run (`FILE_FLAG_FIRST_PIPE_INSTANCE`, exclusive creation) and fail safe,
//! exiting non-zero and serving nothing, instead of carrying on beside it?
//!
//! `ERROR_ACCESS_DENIED` on create has several causes (the flag; settings that differ from the
//! existing instances'; a DACL without `FILE_CREATE_PIPE_INSTANCE`). To pin a refusal on the
//! flag, the attacker's instance first learns the server's own settings (type, max instances)
//! from a clean start and mirrors them, and grants everyone everything.

use crate::{Context, Scenario, CLIENT_TIMEOUT};
use pipe_harness_core::engine::{
    Backend, Conn, ConnectSpec, Finding, ListenSpec, PipeShape, Policy, ServerUnderTest, Severity, Started, Verdict,
};
use pipe_harness_core::probe::Rule;
use pipe_harness_core::protection::Protection;
use std::time::Duration;

/// The scenario.
pub struct FirstInstanceDefence;

impl Scenario for FirstInstanceDefence {
    const ID: &'static str = "first_instance_defence";
    const TITLE: &'static str = "does the server refuse a taken name and fail safe (exit non-zero, serve nothing)?";
    /// The flag must be enforced.
    const WINDOWS: Option<&'static [Rule]> = Some(&[Rule::FirstInstanceFlagEnforced]);
    /// On Unix sockets: exclusive creation is `bind(2)` failing on an existing path.
    const UNIX: Option<&'static [Rule]> = Some(&[Rule::UnixBindExclusive, Rule::UnixDistinctIdentities]);
    const NEEDS: &'static [&'static str] = &["[target] program (the harness starts it)"];
    type Observations = Observations;

    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
        observe(cx)
    }

    fn judge(obs: &Observations, policy: &Policy) -> Verdict {
        judge(obs, policy)
    }
}

/// What happened when the server started on a taken name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observations {
    /// The settings the attacker mirrored.
    pub shape: PipeShape,
    /// The squatting socket's protection (its mode and owner), as a client read it, on Unix,
    /// where those decide what a server may do about it (a server may connect to it, or unlink
    /// it, only as its mode and directory allow); `None` for a named pipe.
    pub squatter: Option<Protection>,
    /// How the start ended.
    pub started: Started,
    /// Clients that reached the server itself (not the attacker).
    pub clients_on_server: usize,
    /// Clients that reached the attacker's instance.
    pub clients_on_attacker: usize,
    /// The server's output.
    pub output: Vec<String>,
}

/// The server's instance settings, learnt from a clean start.
pub fn learn_shape<B: Backend>(cx: &Context<'_, B>) -> Result<PipeShape, Verdict> {
    let server = cx.start_ready()?;
    let c = cx
        .backend
        .connect(&server.endpoint, &ConnectSpec { timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() })
        .map_err(|e| Verdict::error("connecting to learn the server's settings", e))?;
    c.shape().map_err(|e| Verdict::error("reading the server's settings", e))
}

/// Where `n` clients land: (on the server, on the attacker).
pub fn landings<B: Backend>(cx: &Context<'_, B>, endpoint: &str, server_pid: u32, n: usize) -> (usize, usize) {
    let (mut server, mut attacker) = (0, 0);
    let mut held = Vec::new(); // keep them connected so each takes a different instance
    for _ in 0..n {
        let Ok(c) =
            cx.backend.connect(endpoint, &ConnectSpec { timeout: Duration::from_secs(2), ..ConnectSpec::default() })
        else {
            break;
        };
        match c.server_pid() {
            Ok(p) if p == server_pid => server += 1,
            Ok(p) if p == cx.backend.own_pid() => attacker += 1,
            _ => {}
        }
        held.push(c);
    }
    (server, attacker)
}

/// Waits, at most the target's ready timeout, until the server exits (`Exited`) or a client
/// that opens the name reaches a process other than the harness's attacker (`Ready`: it took
/// the name over, or serves beside the attacker); `TimedOut` when neither happens. Looks every
/// 100 ms, returning at once on the exit.
fn exit_or_takeover<B: Backend>(cx: &Context<'_, B>, server: &mut ServerUnderTest, endpoint: &str) -> Started {
    let deadline = std::time::Instant::now() + cx.target.ready_timeout;
    let once = ConnectSpec { timeout: Duration::ZERO, ..ConnectSpec::default() };
    loop {
        if let Some(t) = server.try_exit() {
            return Started::ended(Some(&t));
        }
        if cx.backend.connect(endpoint, &once).is_ok_and(|c| c.server_pid().is_ok_and(|p| p != cx.backend.own_pid())) {
            return Started::Ready;
        }
        if std::time::Instant::now() >= deadline {
            return Started::TimedOut;
        }
        if let Some(t) = server.wait_exit(Duration::from_millis(100)) {
            return Started::ended(Some(&t));
        }
    }
}

/// Starts the server while an attacker holds its name, and records what happens.
pub fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Observations, Verdict> {
    cx.needs_start("starts the server on a name an attacker already holds")?;
    let shape = learn_shape(cx)?;
    let endpoint = cx.backend.endpoint_for(cx.target);
    let _attacker = cx
        .backend
        .listen(&endpoint, &ListenSpec { shape: Some(shape), open_to_all: true, ..ListenSpec::default() })
        .map_err(|e| Verdict::error("creating the attacker's instance", e))?;
    // On Unix the squatting socket's mode and owner are read as a client would (a connect to a
    // listening socket takes no instance); a pipe instance would be used up by the reading.
    let squatter = if cx.backend.platform() == "windows" {
        None
    } else {
        let spec = ConnectSpec { read_protection: true, timeout: CLIENT_TIMEOUT, ..ConnectSpec::default() };
        let c = cx.backend.connect(&endpoint, &spec).map_err(|e| Verdict::error("connecting to the squatter", e))?;
        Some(c.protection().map_err(|e| Verdict::error("reading the squatting socket's mode", e))?)
    };
    let mut server = ServerUnderTest::start(cx.backend, cx.target, &endpoint)
        .map_err(|e| Verdict::error("starting the target", e))?;
    let started = match &cx.target.readiness {
        // "The endpoint exists" is already true (the attacker's): judge by the exit, or by a
        // client reaching someone other than the attacker (the server took the name over).
        pipe_harness_core::engine::Readiness::Endpoint => exit_or_takeover(cx, &mut server, &endpoint),
        r => server.wait_ready(cx.backend, r, cx.target.ready_timeout),
    };
    let (on_server, on_attacker) = if matches!(started, Started::Exited(_) | Started::Stopped) {
        (0, 0)
    } else {
        landings(cx, &endpoint, server.pid(), 4)
    };
    Ok(Observations {
        shape,
        squatter,
        started,
        clients_on_server: on_server,
        clients_on_attacker: on_attacker,
        output: server.output(),
    })
}

/// What held the name before the server started, in the platform's words.
fn squatter_line(obs: &Observations) -> String {
    match &obs.squatter {
        Some(Protection::Mode(m)) => format!(
            "the squatter (the harness, uid {}) held the path with a listening socket of mode {:04o}, owner uid {}, group {}: any uid may connect to it, and only its owner (or the directory's rights) may unlink it; only the server's own defence can refuse it (not unlinking a socket it did not make)",
            m.uid.map_or("?".into(), |u| u.to_string()),
            m.mode,
            m.uid.map_or("?".into(), |u| u.to_string()),
            m.gid.map_or("?".into(), |g| g.to_string()),
        ),
        Some(other) => format!(
            "the squatter (the harness) held the name ({other}): only the server's own defence can refuse it (not unbinding a name it did not take)"
        ),
        None => format!(
            "the attacker's pipe instance mirrored the server's settings ({} type, max instances {}) and let everyone in, so only the server's own defence can refuse (FILE_FLAG_FIRST_PIPE_INSTANCE)",
            if obs.shape.message { "message" } else { "byte" },
            obs.shape.max_instances
        ),
    }
}

/// The verdict for what was observed.
pub(crate) fn judge(obs: &Observations, policy: &Policy) -> Verdict {
    let mut evidence = vec![squatter_line(obs)];
    evidence.push(match obs.started {
        Started::Exited(Some(code)) => format!("the server exited with {code} on the taken name"),
        Started::Exited(None) => "the server died by a signal on the taken name".into(),
        Started::Stopped => "the server stopped on the taken name".into(),
        Started::Ready => "the server started on the taken name and serves".into(),
        Started::TimedOut => "the server neither exited nor got ready on the taken name".into(),
    });
    if !policy.refuse_taken_name {
        evidence.push("the policy does not require refusing a taken name".into());
        return Verdict::Pass { evidence };
    }
    let fail = |title: &str, severity, mut evidence: Vec<String>| {
        evidence.extend(obs.output.iter().map(|l| format!("server {l}")));
        Verdict::Fail(Finding { title: title.into(), severity, evidence, seed: None, replay: None })
    };
    match obs.started {
        Started::Exited(Some(code)) if code != 0 => {
            evidence.push(format!("exited with {code} and served nothing"));
            Verdict::Pass { evidence }
        }
        Started::Exited(Some(_)) => {
            fail("refused the taken name but exited 0: service managers and CI see success", Severity::Medium, evidence)
        }
        Started::Stopped => {
            evidence.push("stopped without serving (its service manager did not say how it ended)".into());
            Verdict::Pass { evidence }
        }
        Started::Exited(None) => fail(
            "died by a signal or crash on a taken name instead of exiting with an error",
            Severity::Medium,
            evidence,
        ),
        Started::Ready | Started::TimedOut => {
            evidence.push(format!(
                "{} test clients reached the server, {} reached the {}",
                obs.clients_on_server,
                obs.clients_on_attacker,
                if obs.squatter.is_some() { "squatting socket" } else { "attacker's instance" }
            ));
            fail("started on a name an attacker already held (beside its instance, or by taking it over) instead of refusing", Severity::High, evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(started: Started) -> Observations {
        Observations {
            shape: PipeShape { message: false, max_instances: 255 },
            squatter: None,
            started,
            clients_on_server: 1,
            clients_on_attacker: 2,
            output: vec![],
        }
    }

    #[test]
    fn refusing_with_an_error_passes_and_everything_else_fails() {
        let p = Policy::default();
        assert_eq!(judge(&obs(Started::Exited(Some(3))), &p).kind(), "pass");
        assert_eq!(judge(&obs(Started::Exited(Some(0))), &p).kind(), "fail");
        assert_eq!(judge(&obs(Started::Exited(None)), &p).kind(), "fail");
        assert_eq!(judge(&obs(Started::Stopped), &p).kind(), "pass");
        match judge(&obs(Started::Ready), &p) {
            Verdict::Fail(f) => {
                assert_eq!(f.severity, Severity::High);
                assert!(f.evidence.iter().any(|e| e.contains("2 reached the attacker")), "{f:?}");
            }
            v => panic!("{v:?}"),
        }
        let lax = Policy { refuse_taken_name: false, ..Policy::default() };
        assert_eq!(judge(&obs(Started::Ready), &lax).kind(), "pass");
    }

    /// On Unix the evidence names the squatter's uid and its socket's mode, and what the
    /// server did, in Unix words (no pipe type, no instance count).
    #[test]
    fn unix_evidence_says_who_squatted_with_what_mode_and_what_the_server_did() {
        let squatted = Observations {
            squatter: Some(Protection::Mode(pipe_harness_core::protection::UnixMode {
                mode: 0o777,
                uid: Some(0),
                gid: Some(0),
            })),
            ..obs(Started::Exited(Some(1)))
        };
        let Verdict::Pass { evidence } = judge(&squatted, &Policy::default()) else { panic!() };
        let text = evidence.join("\n");
        assert!(text.contains("uid 0") && text.contains("mode 0777"), "{text}");
        assert!(text.contains("the server exited with 1"), "{text}");
        assert!(!text.contains("max instances") && !text.contains("byte type"), "{text}");
        let taken = Observations { squatter: squatted.squatter.clone(), ..obs(Started::Ready) };
        let Verdict::Fail(f) = judge(&taken, &Policy::default()) else { panic!() };
        assert!(f.evidence.iter().any(|e| e.contains("2 reached the squatting socket")), "{:?}", f.evidence);
    }
}
