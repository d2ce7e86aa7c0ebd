//! Sending one case to a running server and judging what it did, one case at a time: a case's
//! outcome is read only after the server has had the chance to process that case alone.
//!
//! Where the platform lets a client end its side of a connection (Unix sockets: `shutdown`),
//! the case ends with the client's end of stream on each of its connections, and the driver
//! waits for the server to hang up each of them: the server has then read the whole case and
//! finished with it, whether it serves one connection at a time or a thread per client. A
//! server that keeps a connection open after its client's end of stream for longer than the
//! hang timeout is hung (no ping needed). Then the process state (`waitpid`, no waiting) says
//! whether it died, with the signal or exit code. The next case's first connect is the check
//! that it still accepts: when it fails, nothing of that case reached the server, and the
//! finding belongs to the case before ([`Blame::Before`]).
//!
//! Named pipes have no half-close: a case's connections close once the server has read them
//! ([`Backend::close_when_read`]: a flush, where the probe measured that it waits for the
//! reader; else up to [`Backend::settle_before_close`] for an answer or a hang-up); a ping
//! (when the plan has one) follows every case.

use crate::backend::{exchange, Backend, Conn, ConnectSpec};
use crate::engine::server::{ServerUnderTest, Started};
use crate::error::{Error, Result};
use crate::target::Target;
use std::time::{Duration, Instant};

use super::case::{Case, SessionUse};
use super::oracle::{Crash, Outcome};

/// How the driver judges liveness, measured on the target by [`Liveness::measure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// How long a server may take to end a connection after its client's end of stream, or to
    /// answer the ping, before it counts as hung.
    pub hang_timeout: Duration,
    /// The server ends a connection once its client has ended its side (measured): the
    /// driver waits for that hang-up after every case.
    pub ends_connections: bool,
    /// Ping after every this many cases (when the target has a ping); 1: after each.
    pub ping_every: u64,
    /// Who the cases and the ping connect as: a legitimate client
    /// ([`Target::client_identity`]); `None`: the harness's own identity.
    pub client: Option<crate::identity::Identity>,
}

impl Liveness {
    /// Measures, on a fresh `server` (one [`start_proved`] started), whether it ends a
    /// connection whose client ended its side: one connection that sends nothing, as the
    /// target's legitimate client. Pings after every case where that does not hold or the
    /// platform cannot half-close; else every `ping_every` cases.
    pub fn measure<B: Backend>(
        backend: &B,
        target: &Target,
        server: &ServerUnderTest,
        hang_timeout: Duration,
        ping_every: u64,
    ) -> Self {
        let client = target.client_identity();
        let spec = ConnectSpec { timeout: hang_timeout, as_user: client.clone(), ..ConnectSpec::default() };
        let ends_connections = backend.connect(&server.endpoint, &spec).is_ok_and(|mut c| {
            matches!(c.end_of_stream(), Ok(true)) && hung_up(&mut c, Instant::now() + hang_timeout) == HangUp::Closed
        });
        let ping_every = if ends_connections { ping_every.max(1) } else { 1 };
        Liveness { hang_timeout, ends_connections, ping_every, client }
    }
}

/// Starts a fresh server and proves its endpoint ([`prove_endpoint`]) before any case. A
/// server that died during the control (its ping crashed it: a crash any first request
/// causes) is started again, and what the cases do to it is for the campaign to judge.
pub fn start_proved<B: Backend>(backend: &B, target: &Target, timeout: Duration) -> Result<ServerUnderTest> {
    let mut server = start(backend, target)?;
    prove_endpoint(backend, target, &mut server, timeout)?;
    if server.try_exit().is_some() {
        drop(server);
        return start_again(backend, target);
    }
    Ok(server)
}

/// The control connection, before any case: a legitimate client
/// ([`Target::client_identity`]) connects to the fresh `server` (as long as `timeout`, watching
/// its process) and, when the target has a ping, the ping must succeed. Either failing is
/// [`Error::Plan`], with the endpoint, who connected and the reply or error it got: a server
/// that was never reached, or never answered its ping, has shown nothing a finding could rest
/// on (a plan whose ready line or endpoint is wrong, a client the server rightly refuses).
/// A server that exits during the control is no plan error: `Ok`, and the caller sees it
/// dead.
pub fn prove_endpoint<B: Backend>(
    backend: &B,
    target: &Target,
    server: &mut ServerUnderTest,
    timeout: Duration,
) -> Result<()> {
    let client = target.client_identity();
    let who = client.as_ref().map_or_else(
        || "the harness's own identity".to_string(),
        |c| match c {
            crate::identity::Identity::Uid { .. } => format!("uid {c}"),
            _ => c.to_string(),
        },
    );
    let spec = ConnectSpec { timeout, as_user: client, ..ConnectSpec::default() };
    let endpoint = server.endpoint.clone();
    let mut conn = match backend.connect(&endpoint, &spec) {
        Ok(c) => c,
        Err(_) if server.try_exit().is_some() => return Ok(()),
        Err(e) => {
            return Err(Error::Plan(format!(
            "a fresh server's endpoint {endpoint:?} was never reached: a client connecting as {who} for {} s got {e}{}",
            timeout.as_secs_f64(),
            match &target.readiness {
                crate::target::Readiness::LineNamingEndpoint { .. } if endpoint != server.requested() => {
                    " (the endpoint is what the server's ready line named)"
                }
                _ => "",
            }
        )))
        }
    };
    let Some(ping) = &target.ping else { return Ok(()) };
    let captured = super::session::open(&mut conn, target, target.session.len(), timeout).map_err(|e| {
        Error::Plan(format!("the session opening on a fresh server at {endpoint:?}, connected as {who}, failed: {e}"))
    })?;
    let mut request = crate::target::substitute(&target.message_prefix, &captured);
    request.extend_from_slice(&ping.request);
    let answer = exchange(&mut conn, &target.framing, &request, timeout);
    drop(conn);
    if server.wait_exit(Duration::from_millis(100)).is_some() {
        return Ok(());
    }
    let got = match answer {
        Ok(reply) if reply.starts_with(&ping.success_prefix) => return Ok(()),
        Ok(reply) => format!("the reply {:?}", String::from_utf8_lossy(&reply)),
        Err(e) => format!("no reply ({e})"),
    };
    Err(Error::Plan(format!(
        "the ping {:?} to a fresh server at {endpoint:?}, connected as {who}, got {got}, not one starting with {:?}: no liveness check can rest on it",
        String::from_utf8_lossy(&ping.request),
        String::from_utf8_lossy(&ping.success_prefix)
    )))
}

impl Liveness {
    /// What the detection rests on, for reports.
    pub fn describe(&self, has_ping: bool) -> String {
        let hang = self.hang_timeout.as_secs_f64();
        let crash = "a crash is the process's exit (its wait status: signal or exit code)";
        match (self.ends_connections, has_ping) {
            (true, true) => format!(
                "{crash}; each case ends with the client's end of stream and waits for the server to hang up (a hang: none within {hang} s); the ping runs every {} cases",
                self.ping_every
            ),
            (true, false) => format!(
                "{crash}; each case ends with the client's end of stream and waits for the server to hang up (a hang: none within {hang} s); no ping: a server that hangs up but no longer answers is not seen"
            ),
            (false, true) => format!(
                "{crash}; the server does not hang up after a client's end of stream (or the platform has no half-close), so the ping after every case is the liveness check (a hang: no answer within {hang} s)"
            ),
            (false, false) => format!(
                "{crash}; the server does not hang up after a client's end of stream (or the platform has no half-close) and the plan has no ping: the next case's connect is the only liveness check, and hangs are not detected"
            ),
        }
    }
}

/// Which case a finding belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The case just sent.
    This,
    /// An earlier case: the server was already gone or unreachable before this case reached it
    /// (its first connect failed).
    Before,
}

/// How the server ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HangUp {
    /// End of stream: it closed its side.
    Closed,
    /// A reset: it closed with data unread, or the connection was never accepted and went
    /// with the listening socket (a dying server's).
    Reset,
    /// Still open at the deadline.
    Open,
}

/// Waits for the other end to hang up until `deadline`, discarding what it sends.
fn hung_up<C: Conn + ?Sized>(c: &mut C, deadline: Instant) -> HangUp {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return HangUp::Open;
        }
        match c.recv(&mut buf, left) {
            Ok(0) => return HangUp::Closed,
            Ok(_) => {}
            Err(Error::Timeout { .. }) => return HangUp::Open,
            Err(e) if e.is_connection_reset() => return HangUp::Reset,
            Err(_) => return HangUp::Closed,
        }
    }
}

/// Connects to the server, one attempt at a time, watching its process between attempts: a
/// server that exited is seen at once (not after the connect's timeout), one that stays alive
/// without accepting for the hang timeout is unreachable.
fn connect_watching<B: Backend>(
    backend: &B,
    server: &mut ServerUnderTest,
    live: &Liveness,
    limit: Duration,
) -> std::result::Result<B::Client, Box<Outcome>> {
    let once = ConnectSpec { timeout: Duration::ZERO, as_user: live.client.clone(), ..ConnectSpec::default() };
    let deadline = Instant::now() + limit;
    loop {
        let err = match backend.connect(&server.endpoint, &once) {
            Ok(c) => return Ok(c),
            Err(e) => e,
        };
        if err.is_pipe_busy() {
            // A pipe whose instances are all taken (a one-instance server still busy with the
            // last case, or reconnecting): its server is alive; wait for an instance, which the
            // OS signals, a little at a time.
            let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            if let Ok(c) = backend.connect(&server.endpoint, &ConnectSpec { timeout: left, ..ConnectSpec::default() }) {
                return Ok(c);
            }
        }
        if let Some(t) = server.wait_exit(if err.is_pipe_busy() { Duration::ZERO } else { Duration::from_millis(2) }) {
            return Err(Box::new(crashed(server, t)));
        }
        if Instant::now() >= deadline {
            return Err(Box::new(Outcome::Unreachable {
                detail: format!("alive, but a connect failed for {} s: {err}", limit.as_secs_f64()),
            }));
        }
    }
}

/// The outcome once the server has exited: how it ended and what it printed.
pub(crate) fn crashed(server: &mut ServerUnderTest, termination: super::oracle::Termination) -> Outcome {
    let output = server.final_output(Duration::from_secs(2));
    match crate::supervise::memory_limit_hits(server.pid()) {
        Some((hits, limit_bytes)) if hits > 0 => {
            Outcome::OutOfMemory { limit_bytes, termination: Some(termination), output }
        }
        _ => Outcome::Crashed(Crash::new(Some(termination), output)),
    }
}

/// Sends `case` to `server` and judges what it did (see the module's documentation);
/// `index` counts the cases this server has had, for the ping's cadence.
pub fn run_case<B: Backend>(
    backend: &B,
    target: &Target,
    server: &mut ServerUnderTest,
    case: &Case,
    live: &Liveness,
    index: u64,
) -> (Outcome, Blame) {
    let n = case.connections();
    let mut conns: Vec<Option<B::Client>> = (0..n).map(|_| None).collect();
    let mut captured: Vec<Vec<u8>> = vec![Vec::new(); n];
    let mut failed = vec![false; n];
    let mut reached = false;
    for (i, w) in case.writes.iter().enumerate() {
        let c = case.connection_of(i);
        if failed[c] {
            continue;
        }
        if conns[c].is_none() {
            // A second connection of the case, on a server that takes one at a time (a single
            // pipe instance), is refused while the first is open: not waited for long.
            let limit = if reached { live.hang_timeout.min(Duration::from_millis(50)) } else { live.hang_timeout };
            match connect_watching(backend, server, live, limit) {
                Ok(mut conn) => {
                    if let Some(use_) = case.session {
                        // The opening, as the protocol wants it; a server that refuses it has
                        // refused the rest of this connection. A later connection of the case,
                        // on a server busy with the first, is not waited for long (as its
                        // connect is not).
                        let wait = if reached { limit } else { live.hang_timeout };
                        reached = true;
                        match super::session::open(&mut conn, target, use_.steps, wait) {
                            Ok(token) => captured[c] = token,
                            Err(_) => failed[c] = true,
                        }
                    }
                    conns[c] = Some(conn)
                }
                // Nothing of this case reached the server before it went: the case before is
                // to blame.
                Err(outcome) if !reached => return (*outcome, Blame::Before),
                Err(_) => {
                    failed[c] = true;
                    continue;
                }
            }
        }
        if failed[c] {
            continue;
        }
        if let Some(conn) = conns[c].as_mut() {
            reached = true;
            let wire = match case.session {
                Some(SessionUse { messages: true, prefix, .. }) => {
                    let mut payload = if prefix {
                        crate::target::substitute(&target.message_prefix, &captured[c])
                    } else {
                        Vec::new()
                    };
                    payload.extend_from_slice(w);
                    target.framing.encode(&payload).unwrap_or(payload)
                }
                _ => w.clone(),
            };
            failed[c] = conn.send(&wire, live.hang_timeout).is_err();
        }
    }
    // A case with no writes still connects once (an empty connection).
    if case.writes.is_empty() {
        match connect_watching(backend, server, live, live.hang_timeout) {
            Ok(conn) => conns[0] = Some(conn),
            Err(outcome) => return (*outcome, Blame::Before),
        }
    }
    // End every connection's stream first (a server of one connection at a time may be on any
    // of them), then wait for the server to hang up on each.
    let deadline = Instant::now() + live.hang_timeout;
    let half_closed: Vec<bool> =
        conns.iter_mut().map(|c| c.as_mut().is_some_and(|c| matches!(c.end_of_stream(), Ok(true)))).collect();
    let mut open_after = 0;
    let mut reset = false;
    let mut no_half_close = Vec::new();
    for (conn, half_closed) in conns.iter_mut().zip(half_closed) {
        if !(half_closed && live.ends_connections) {
            no_half_close.extend(conn.take());
            continue;
        }
        let Some(conn) = conn else { continue };
        match hung_up(conn, deadline) {
            HangUp::Open => open_after += 1,
            HangUp::Reset => reset = true,
            HangUp::Closed => {}
        }
    }
    // No half-close: closed once the server has read them (or after a settle), so that what
    // was written is not lost with a close that comes before the server took the connection.
    backend.close_when_read(no_half_close, deadline.saturating_duration_since(Instant::now()));
    drop(conns);
    if let Some(t) = server.try_exit() {
        return (crashed(server, t), Blame::This);
    }
    // (A case with a session, or whose empty messages were framed, sent bytes all the same.)
    let sent_nothing = case.is_empty() && case.session.is_none_or(|s| s.steps == 0 && !s.messages);
    if reset && sent_nothing {
        // A connection that sent nothing was reset: never accepted, its listening socket gone
        // (a dying server releases its connections before its exit is seen). The case before
        // ended the server, or its accept loop.
        return match server.wait_exit(live.hang_timeout) {
            Some(t) => (crashed(server, t), Blame::Before),
            None => (
                Outcome::Unreachable { detail: "alive, but it reset a connection it never served".into() },
                Blame::Before,
            ),
        };
    }
    if open_after > 0 {
        // Dying servers close their connections before their exit is seen: a last look.
        if let Some(t) = server.wait_exit(Duration::from_millis(100)) {
            return (crashed(server, t), Blame::This);
        }
        // One that no longer accepts at all is unreachable, the more telling diagnosis.
        if let Err(outcome) = connect_watching(backend, server, live, live.hang_timeout) {
            return (*outcome, Blame::This);
        }
        return (
            Outcome::Hung {
                detail: format!(
                    "{open_after} of the case's connections still open {} s after the client's end of stream (the server ends connections after their end of stream otherwise, measured when it started)",
                    live.hang_timeout.as_secs_f64()
                ),
            },
            Blame::This,
        );
    }
    let Some(ping) = &target.ping else { return (Outcome::Survived, Blame::This) };
    if (index + 1) % live.ping_every.max(1) != 0 {
        return (Outcome::Survived, Blame::This);
    }
    (ping_check(backend, server, target, ping, live), Blame::This)
}

/// One more look at the server after the cases sent to it: a connection that sends nothing,
/// then the ping when the target has one, whatever the ping's cadence. A finding here belongs
/// to the cases before (a crash a case caused after its connections closed).
pub fn look_after<B: Backend>(backend: &B, target: &Target, server: &mut ServerUnderTest, live: &Liveness) -> Outcome {
    let check = Case::single(Vec::new(), "a connection that sends nothing".into());
    run_case(backend, target, server, &check, live, live.ping_every.max(1) - 1).0
}

/// The liveness ping: connects (a failure is unreachability, or the exit), sends the ping, and
/// a wrong answer or none within the hang timeout is a hang. A failed ping is a finding only if
/// the server neither dies nor answers a second one.
fn ping_check<B: Backend>(
    backend: &B,
    server: &mut ServerUnderTest,
    target: &Target,
    ping: &crate::engine::Exchange,
    live: &Liveness,
) -> Outcome {
    let once = |server: &mut ServerUnderTest| -> Outcome {
        let mut conn = match connect_watching(backend, server, live, live.hang_timeout) {
            Ok(c) => c,
            Err(other) => {
                return match *other {
                    Outcome::Unreachable { detail } => {
                        Outcome::Unreachable { detail: format!("the liveness ping: {detail}") }
                    }
                    other => other,
                }
            }
        };
        // The ping is a message of the protocol: after the session's opening, behind the
        // message prefix.
        let captured = match super::session::open(&mut conn, target, target.session.len(), live.hang_timeout) {
            Ok(c) => c,
            Err(e) => return Outcome::Hung { detail: format!("the liveness ping's session opening: {e}") },
        };
        let mut request = crate::target::substitute(&target.message_prefix, &captured);
        request.extend_from_slice(&ping.request);
        match exchange(&mut conn, &target.framing, &request, live.hang_timeout) {
            Ok(reply) if reply.starts_with(&ping.success_prefix) => Outcome::Survived,
            Ok(reply) => Outcome::Hung { detail: format!("the liveness ping got a wrong answer: {reply:02x?}") },
            Err(e) => Outcome::Hung { detail: format!("no answer to the liveness ping: {e}") },
        }
    };
    let mut last = Outcome::Survived;
    for _ in 0..2 {
        last = once(server);
        if matches!(last, Outcome::Crashed(_)) {
            return last;
        }
        if !last.is_finding() {
            // A thread-per-client server may answer the ping on one thread while the case's
            // thread is still dying: a last look, without waiting.
            return server.try_exit().map_or(last, |t| crashed(server, t));
        }
        if let Some(t) = server.wait_exit(live.hang_timeout) {
            return crashed(server, t);
        }
    }
    last
}

/// How many times in a row [`start_again`] tries.
pub const START_ATTEMPTS: usize = 3;

/// Starts a fresh server for a target that has started before (after a finding, for a
/// replay): as [`start`], tried up to [`START_ATTEMPTS`] times, so that one start that fails
/// on a loaded machine (a readiness deadline missed while a crashed predecessor is still being
/// torn down) does not end a campaign; a server that keeps failing to start is an error that
/// names every attempt.
pub fn start_again<B: Backend>(backend: &B, target: &Target) -> Result<ServerUnderTest> {
    let mut failed = Vec::new();
    while failed.len() < START_ATTEMPTS {
        match start(backend, target) {
            Ok(server) => return Ok(server),
            Err(Error::Peer(why)) => failed.push(why),
            Err(e) => failed.push(e.to_string()),
        }
    }
    Err(Error::Peer(format!("{START_ATTEMPTS} starts in a row failed: {}", failed.join("; then: "))))
}

/// Starts a fresh server for the target and waits until it is ready.
pub fn start<B: Backend>(backend: &B, target: &Target) -> Result<ServerUnderTest> {
    let endpoint = backend.endpoint_for(target);
    let mut server = ServerUnderTest::start(backend, target, &endpoint)?;
    match server.wait_ready(backend, &target.readiness, target.ready_timeout) {
        Started::Ready => Ok(server),
        other => Err(Error::Peer(format!("the target did not get ready ({other:?}): {:?}", server.output()))),
    }
}
