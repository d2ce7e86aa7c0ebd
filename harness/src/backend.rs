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
    /// A concrete endpoint for a target's template: as [`endpoint`](Backend::endpoint), with
    /// what depends on the target filled for it (Unix: `{dir}` is a runtime directory owned by
    /// the target's `run_as`).
    fn endpoint_for(&self, target: &crate::target::Target) -> String {
        self.endpoint(&target.endpoint)
    }
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
    /// Runs the target's server with a trace of the calls it makes ([`crate::calls`]), lets one
    /// client through (so a server that makes its next instance then has made it), ends it, and
    /// returns its calls; `None` where this platform has no such trace (only Wine has one).
    fn server_calls(
        &self,
        _target: &crate::target::Target,
        _endpoint: &str,
    ) -> Option<Result<crate::calls::CallTrace>> {
        None
    }
    /// Runs a client under test (`target`'s program and arguments) with a trace of its calls
    /// against an instance of the harness's own on `endpoint`, reads what it sends, ends it, and
    /// returns its calls; `None` where this platform has no such trace.
    fn client_calls(
        &self,
        _target: &crate::target::Target,
        _endpoint: &str,
    ) -> Option<Result<crate::calls::CallTrace>> {
        None
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
    /// A fresh folder for the files written before one start of `target` (its
    /// [`files`](crate::target::Target::files)): random name, created exclusively, the
    /// server's to read and write, removed when the guard drops. The default: in the
    /// temporary directory, the harness's own.
    fn start_folder(&self, _target: &crate::target::Target) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("pipe-harness-files-")
            .tempdir()
            .map_err(|e| crate::error::Error::invalid("target files", format!("creating a folder for them: {e}")))
    }

    /// Gives what [`start_folder`](Backend::start_folder) made (the folder and the files in
    /// it) to the identity `target` runs as. The default: nothing to give.
    fn give_start_folder(&self, _folder: &std::path::Path, _target: &crate::target::Target) -> Result<()> {
        Ok(())
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
    /// What the endpoint leaves behind when the harness kills its server (a Unix socket file),
    /// asked before the server starts; `None` when there is nothing (a pipe name goes with its
    /// last instance).
    fn leftover_file(&self, _endpoint: &str) -> Option<Leftover> {
        None
    }
    /// The harness's own process id (to tell a client that reached the harness's endpoint).
    fn own_pid(&self) -> u32 {
        std::process::id()
    }
    /// Sets the protection of an endpoint a server the harness started is serving (Unix: the
    /// socket file's mode), so that a check can reach the server's own defence behind it (and
    /// put it back after). The default: unsupported (a pipe's DACL is the server's to set).
    fn set_protection(&self, endpoint: &str, _protection: &crate::protection::Protection) -> Result<()> {
        Err(crate::Error::Unsupported(format!(
            "the harness cannot change {endpoint}'s protection on {}",
            self.platform()
        )))
    }
    /// After the harness stopped a server: removes the socket file it left at `endpoint`, as
    /// its clean exit would have (only a socket file nobody listens on). The default: nothing
    /// (a pipe name goes with its last instance).
    fn clear_stale_endpoint(&self, _endpoint: &str) -> Result<()> {
        Ok(())
    }
    /// The directory holding the endpoint when the harness made it (`{dir}`, `{private_dir:...}`
    /// on Unix): a check must never judge a directory the harness chose. `None`: the product
    /// chose it (or there is none).
    fn harness_directory(&self, _endpoint: &str) -> Option<std::path::PathBuf> {
        None
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

/// Sends `request` framed with `framing` and reads one framed reply. A server that answered
/// and hung up before reading the request (a refusal: `DENIED ...`) breaks the send; what it
/// sent is still read (briefly) and is the reply; without one, the send's error stands.
pub fn exchange<C: Conn + ?Sized>(
    c: &mut C,
    framing: &crate::target::FramingSpec,
    request: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>> {
    let wire = framing.encode(request).map_err(|e| crate::Error::invalid("request", e.to_string()))?;
    let sent = c.send(&wire, timeout);
    let mut d = framing.decoder().map_err(|e| crate::Error::invalid("framing", e.to_string()))?;
    // After a failed send only what the server already sent is read.
    let wait = if sent.is_ok() { timeout } else { timeout.min(Duration::from_millis(200)) };
    let deadline = std::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(reply) = d.next_reply().map_err(|e| crate::Error::Peer(format!("bad reply: {e}")))? {
            return Ok(reply.to_vec());
        }
        let n = match c.recv(&mut buf, deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(n) => n,
            Err(e) => return Err(sent.err().unwrap_or(e)),
        };
        if n == 0 {
            return Err(sent
                .err()
                .unwrap_or_else(|| crate::Error::Peer("the server closed the connection before replying".into())));
        }
        d.push(&buf[..n]);
    }
}

/// A socket file a server may leave at its endpoint when the harness kills it (a clean exit
/// would have removed it, or not: the kill is the harness's, so the file is the harness's to
/// remove, and a next start or check must not find the name taken by it).
#[derive(Clone, Debug)]
pub struct Leftover {
    pub(crate) path: std::path::PathBuf,
    pub(crate) owner: LeftoverOwner,
}

/// Whose the directory of a [`Leftover`] is.
#[derive(Clone, Debug)]
// Only the Unix backend leaves files behind (a pipe name goes with its last instance).
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) enum LeftoverOwner {
    /// The run's own folder: whatever is at the path once the server is dead is removed.
    Harness,
    /// A path the product chose: removed only when it is a socket that was not there before
    /// the server started (`before`: the device and inode of what was, if anything) and that
    /// nobody listens on, so nothing the harness did not cause is ever removed.
    Product {
        /// The device and inode of the file at the path before the server started.
        before: Option<(u64, u64)>,
        /// The platform's removal of an orphaned socket (given by the backend that made this).
        remove: fn(&std::path::Path, Option<(u64, u64)>),
    },
}

impl Leftover {
    /// Removes it, as said in [`LeftoverOwner`]; best effort (a cleanup).
    pub(crate) fn remove(&self) {
        match self.owner {
            LeftoverOwner::Harness => {
                let _ = std::fs::remove_file(&self.path);
            }
            LeftoverOwner::Product { before, remove } => remove(&self.path, before),
        }
    }
}
