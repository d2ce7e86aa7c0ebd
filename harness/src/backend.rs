//! The verbs every scenario needs, named by what they do, implemented once per platform
//! (`windows::backend` for named pipes; the Unix-socket backend beside it). Scenarios are
//! written against these traits and never look at the OS.

use crate::error::Result;
use crate::identity::ImpersonationLevel;
use crate::protection::Protection;
use crate::rules::ProbeReport;
use std::time::Duration;

/// The shape of the endpoint a listener mimics: an attacker's instance must match the server's
/// own settings, so that a refusal can only come from the first-instance rule (or the DACL) and
/// not from a mismatch (`docs/windows-rules.md`, rule 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeShape {
    /// Message type (else byte).
    pub message: bool,
    /// `nMaxInstances` (255: unlimited).
    pub max_instances: u32,
}

/// How the harness creates an endpoint of its own (an attacker's instance, a rogue server).
#[derive(Clone, Debug, Default)]
pub struct ListenSpec {
    /// Settings to mimic (from [`Conn::shape`] on the server's own endpoint).
    pub shape: Option<PipeShape>,
    /// Protection for the endpoint (a DACL / a mode); `None`: the platform default.
    pub protection: Option<Protection>,
    /// Let anyone join the endpoint (create instances, connect): an attacker's instance set up
    /// so that only the server's own defences can keep it out.
    pub open_to_all: bool,
    /// Create the endpoint as this identity (Unix: `UID` or `UID:GID`, so the directory's
    /// permissions apply to it); `None`: as the harness. Named pipes refuse it (`Unsupported`):
    /// their namespace has no directories, so a free name is anyone's to create.
    pub as_user: Option<crate::identity::Identity>,
    /// When the name is taken by a socket file (one a dead server left), remove it and bind
    /// again, with the rights of the identity that listens, as an attacker would (Unix; named
    /// pipes leave nothing behind). Only for names whose server is known to be down.
    pub replace_existing: bool,
}

/// How the harness connects as a client.
#[derive(Clone, Debug)]
pub struct ConnectSpec {
    /// The level the client allows the server (SQOS); `None`: no SQOS flags at all.
    pub level: Option<ImpersonationLevel>,
    /// Ask for the right to read the endpoint's protection (`READ_CONTROL`).
    pub read_protection: bool,
    /// Arrive as a remote client (`\\localhost\pipe\...`).
    pub remote: bool,
    /// Connect as this identity (Unix: `UID` or `UID:GID`); `None`: as the harness.
    pub as_user: Option<crate::identity::Identity>,
    /// How long to wait for a free instance.
    pub timeout: Duration,
}

impl Default for ConnectSpec {
    fn default() -> Self {
        ConnectSpec {
            level: Some(ImpersonationLevel::Identification),
            read_protection: false,
            remote: false,
            as_user: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Who a listener's peer is, as the listener could use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The level the listener got (`None`: it could not impersonate at all).
    pub level: Option<ImpersonationLevel>,
    /// The peer's user (SID / uid).
    pub user: Option<String>,
}

/// What a client in another session could do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionReach {
    /// Which session or namespace the client was in.
    pub session: String,
    /// Whether it found the published name (`None`: nothing is published).
    pub found_published: Option<bool>,
    /// Whether it opened the endpoint.
    pub connected: bool,
    /// What it saw.
    pub detail: String,
}

/// A client connection.
pub trait Conn {
    /// Sends all of `data`.
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()>;
    /// Receives some bytes; 0 at end of stream.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize>;
    /// The endpoint's protection, read back from the live endpoint (its DACL; its socket
    /// file's mode and owner).
    fn protection(&self) -> Result<Protection>;
    /// The process id of whoever serves this connection.
    fn server_pid(&self) -> Result<u32>;
    /// The endpoint's settings.
    fn shape(&self) -> Result<PipeShape>;
    /// Ends the client's side of the stream and keeps the connection open to read (Unix:
    /// `shutdown(SHUT_WR)`: the server reads end of stream and can still answer). `Ok(false)`
    /// where the platform has no half-close (named pipes), and nothing is done.
    fn end_of_stream(&mut self) -> Result<bool> {
        Ok(false)
    }
}

/// An endpoint the harness itself serves.
pub trait Listener {
    /// Waits for a client.
    fn accept(&mut self, timeout: Duration) -> Result<()>;
    /// Receives some bytes from the client; 0 at end of stream.
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize>;
    /// Sends to the client.
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()>;
    /// What the listener can do with the client's identity (impersonates and reverts).
    fn peer_identity(&self) -> Result<PeerIdentity>;
}

/// One platform's implementation.
pub trait Backend: Sync {
    /// An endpoint the harness serves.
    type Listener: Listener + Send + 'static;
    /// A client connection.
    type Client: Conn;

    /// `windows` or `unix`.
    fn platform(&self) -> &'static str;
    /// What the platform probe measured on this machine.
    fn probe(&self) -> &ProbeReport;
    /// A concrete endpoint name for a template (`{unique}` replaced).
    fn endpoint(&self, template: &crate::endpoint::EndpointTemplate) -> String;
    /// The endpoint as a client opens it (`{pipe_path}` in a target's arguments): the socket's
    /// path on Unix, `\\.\pipe\NAME` for a pipe name.
    fn endpoint_path(&self, endpoint: &str) -> String {
        endpoint.to_string()
    }
    /// Creates an endpoint of the harness's own on `endpoint`.
    fn listen(&self, endpoint: &str, spec: &ListenSpec) -> Result<Self::Listener>;
    /// Connects as a client.
    fn connect(&self, endpoint: &str, spec: &ConnectSpec) -> Result<Self::Client>;
    /// Applies the target's `run_as` and `umask` to its command before it is spawned (tying it
    /// to the harness is [`crate::supervise::tie`]'s). The default refuses `run_as` and ignores
    /// `umask` (platforms without either).
    fn prepare_command(&self, _cmd: &mut std::process::Command, target: &crate::target::Target) -> Result<()> {
        refuse_run_as(self.platform(), target)
    }
    /// From another session (Windows: a helper process in another logon session; Unix: a fresh
    /// network namespace), looks the endpoint up where it is published, if it is, and opens it.
    fn reach_from_other_session(&self, endpoint: &str, published_in: Option<&str>) -> Result<SessionReach>;
    /// How long a client that has written should wait for an answer (or the server hanging
    /// up) before it closes. Zero for Unix sockets: what was written stays queued for the
    /// server after the close. Named pipes need a moment: a client that closes before the
    /// server's `ConnectNamedPipe` has taken the connection loses what it wrote (the call fails
    /// with `ERROR_NO_DATA` and the instance is reset), which under Wine made a fuzz case that
    /// crashes the server sometimes not reach it at all.
    fn settle_before_close(&self) -> Duration {
        Duration::ZERO
    }
    /// Closes connections that could not end their stream (named pipes), each once the server
    /// has read everything written on it, at most `timeout` in all. Where the platform cannot
    /// tell when that is (the default), each waits up to [`Backend::settle_before_close`] for
    /// an answer or a hang-up, then closes.
    fn close_when_read(&self, conns: Vec<Self::Client>, timeout: Duration) {
        let _ = timeout;
        let settle = self.settle_before_close();
        let mut buf = [0u8; 4096];
        for mut c in conns {
            if !settle.is_zero() {
                let _ = c.recv(&mut buf, settle);
            }
        }
    }
    /// A file the endpoint leaves behind when its server dies (a Unix socket file in the run's
    /// own directory), which the harness removes once it has killed the server; `None` when
    /// there is none or it is not the harness's to remove.
    fn leftover_file(&self, _endpoint: &str) -> Option<std::path::PathBuf> {
        None
    }
    /// The harness's own process id (to tell a client that reached the harness's endpoint).
    fn own_pid(&self) -> u32 {
        std::process::id()
    }
}

/// The refusal of a platform that cannot start a target as another identity: an error when the
/// target asks for `run_as`.
pub(crate) fn refuse_run_as(platform: &str, target: &crate::target::Target) -> Result<()> {
    match &target.run_as {
        Some(who) => {
            Err(crate::Error::Unsupported(format!("running the target as {who:?} is not supported on {platform}")))
        }
        None => Ok(()),
    }
}

/// Connects per `spec`, sends the exchange's request and tells whether the reply starts with its
/// success prefix (`Err`: the connect or the exchange failed, as text for observations).
pub fn request_succeeds<B: Backend + ?Sized>(
    backend: &B,
    endpoint: &str,
    spec: &ConnectSpec,
    framing: &crate::target::FramingSpec,
    ex: &crate::target::Exchange,
    timeout: Duration,
) -> std::result::Result<bool, String> {
    match backend.connect(endpoint, spec) {
        Ok(mut c) => reply_succeeds(&mut c, framing, ex, timeout),
        Err(e) => Err(e.to_string()),
    }
}

/// On an open connection, sends the exchange's request and tells whether the reply starts with
/// its success prefix (`Err`: the exchange failed, as text for observations).
pub fn reply_succeeds<C: Conn + ?Sized>(
    c: &mut C,
    framing: &crate::target::FramingSpec,
    ex: &crate::target::Exchange,
    timeout: Duration,
) -> std::result::Result<bool, String> {
    exchange(c, framing, &ex.request, timeout)
        .map(|reply| reply.starts_with(&ex.success_prefix))
        .map_err(|e| e.to_string())
}

/// Sends `request` framed with `framing` and reads one framed reply.
pub fn exchange<C: Conn + ?Sized>(
    c: &mut C,
    framing: &crate::target::FramingSpec,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let wire = framing.encode(request).map_err(|e| crate::Error::invalid("request", e.to_string()))?;
    c.send(&wire, timeout)?;
    let mut d = framing.decoder().map_err(|e| crate::Error::invalid("framing", e.to_string()))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(reply) = d.next_reply().map_err(|e| crate::Error::Peer(format!("bad reply: {e}")))? {
            return Ok(reply.to_vec());
        }
        let n = c.recv(&mut buf, deadline.saturating_duration_since(std::time::Instant::now()))?;
        if n == 0 {
            return Err(crate::Error::Peer("the server closed the connection before replying".into()));
        }
        d.push(&buf[..n]);
    }
}
