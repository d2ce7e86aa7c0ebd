//! What is tested ([`Target`]) and what its owner intends ([`Policy`]).

use crate::framing::{Codec, ContentLength, Delimited, Endian, FrameDecoder, FrameError, LengthPrefixed, ThriftFramed};
use crate::identity::ImpersonationLevel;
use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;

/// How the harness knows the server under test is ready.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// A line on the server's stdout starting with this text (a prefix match; the rest of the
    /// line is not read).
    Line(String),
    /// A line on the server's stdout that names the endpoint the server chose: it starts with
    /// `prefix`, the endpoint follows, and ends where `until` first follows it (the line's end
    /// when `until` is empty). The plan's `ready = "line:PREFIX{endpoint}UNTIL"`: dbus-daemon's
    /// `unix:path=P,guid=G` is `"line:unix:path={endpoint},"`.
    LineNamingEndpoint {
        /// What the line starts with.
        prefix: String,
        /// What follows the endpoint on the line (empty: nothing, the endpoint ends the line).
        until: String,
    },
    /// The endpoint exists (a client can open it).
    Endpoint,
}

/// The framing a target speaks, for the ping, the privileged request and the fuzzer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramingSpec {
    /// A length prefix of `width` bytes.
    Length {
        /// 1, 2, 4 or 8.
        width: usize,
        /// Little endian when true.
        little_endian: bool,
    },
    /// Thrift framed transport.
    Thrift,
    /// `Content-Length` headers.
    ContentLength,
    /// Newline-delimited.
    Lines,
}

impl FramingSpec {
    /// Frames `payload`.
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        let p = Bytes::copy_from_slice(payload);
        match self {
            FramingSpec::Length { width, little_endian } => LengthPrefixed::new(*width)?
                .endian(if *little_endian { Endian::Little } else { Endian::Big })
                .encode(&p, &mut out)?,
            FramingSpec::Thrift => ThriftFramed::default().encode(&p, &mut out)?,
            FramingSpec::ContentLength => ContentLength::new(16 << 20).encode(&p, &mut out)?,
            FramingSpec::Lines => Delimited::lines(16 << 20).encode(&p, &mut out)?,
        }
        Ok(out)
    }

    /// A streaming decoder for replies, boxed so callers need not name the codec.
    pub fn decoder(&self) -> Result<Box<dyn ReplyDecoder>, FrameError> {
        Ok(match self {
            FramingSpec::Length { width, little_endian } => Box::new(FrameDecoder::new(
                LengthPrefixed::new(*width)?
                    .endian(if *little_endian { Endian::Little } else { Endian::Big })
                    .max_frame(16 << 20),
            )),
            FramingSpec::Thrift => Box::new(FrameDecoder::new(ThriftFramed::default())),
            FramingSpec::ContentLength => Box::new(FrameDecoder::new(ContentLength::new(16 << 20))),
            FramingSpec::Lines => Box::new(FrameDecoder::new(Delimited::lines(16 << 20))),
        })
    }
}

/// A decoder of reply frames, whatever the codec.
pub trait ReplyDecoder {
    /// Adds bytes read from the connection.
    fn push(&mut self, bytes: &[u8]);
    /// The next whole reply, if one is in.
    fn next_reply(&mut self) -> Result<Option<Bytes>, FrameError>;
}

impl<C: Codec<Frame = Bytes>> ReplyDecoder for FrameDecoder<C> {
    fn push(&mut self, bytes: &[u8]) {
        FrameDecoder::push(self, bytes)
    }
    fn next_reply(&mut self) -> Result<Option<Bytes>, FrameError> {
        self.next_frame()
    }
}

/// A request/response exchange whose success the harness can observe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The request payload (framed with the target's framing).
    pub request: Vec<u8>,
    /// A reply starting with this means the request succeeded.
    pub success_prefix: Vec<u8>,
}

/// One step of a session's opening (a handshake, a version check, an auth step): a message the
/// harness sends, framed by the target's framing, and what the reply must start with.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SessionStep {
    /// The message; the bytes `{capture}` are replaced by what an earlier step captured.
    pub send: Vec<u8>,
    /// What the reply must start with; `None`: any reply.
    pub expect: Option<Vec<u8>>,
    /// Take bytes of the reply (an echoed nonce, a session id) for the later steps and for
    /// [`Target::message_prefix`].
    pub capture: Option<Capture>,
}

/// Which bytes of a reply a step captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Where they start in the reply.
    pub offset: usize,
    /// How many.
    pub len: usize,
}

/// The bytes a message template names as `{capture}`.
pub const CAPTURE: &[u8] = b"{capture}";

/// `template` with every `{capture}` replaced by `captured`.
pub fn substitute(template: &[u8], captured: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.windows(CAPTURE.len()).position(|w| w == CAPTURE) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(captured);
        rest = &rest[i + CAPTURE.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// A program that is a client of the target (a client under test).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientProgram {
    /// The executable.
    pub program: PathBuf,
    /// Arguments; `{pipe}` is replaced by the endpoint name.
    pub args: Vec<String>,
}

/// A server the harness does not start as its own child: a service manager starts and stops
/// it, and the harness asks the manager whether it runs and which process it is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Managed {
    /// Commands the harness runs (an init script, `start-stop-daemon`); `{pipe}` and
    /// `{pipe_path}` are replaced in them as in a program's arguments.
    Commands {
        /// Starts the server (returns once it is started, or has failed to start).
        start: Vec<String>,
        /// Stops it.
        stop: Vec<String>,
        /// Where the started server's process id is written (`start-stop-daemon --pidfile`):
        /// the server runs while that process lives.
        pid_file: Option<PathBuf>,
        /// A command that exits 0 while the server runs (an init script's `status`), for
        /// servers without a pid file.
        status: Option<Vec<String>>,
    },
    /// A systemd unit (`name.service`), started and stopped with `systemctl`; its main
    /// process and how it ended come from `systemctl show`.
    Unit(String),
    /// A Windows service, started and stopped through the Service Control Manager
    /// (`StartServiceW`, `ControlService(SERVICE_CONTROL_STOP)`).
    WindowsService(String),
}

impl std::fmt::Display for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Managed::Commands { start, .. } => write!(f, "the start command {:?}", start.join(" ")),
            Managed::Unit(u) => write!(f, "the systemd unit {u}"),
            Managed::WindowsService(s) => write!(f, "the Windows service {s}"),
        }
    }
}

/// What the server under test (and everything it starts) may use, and whether it is
/// contained: Linux, a cgroup of its own (`memory.max`, `pids.max`; killed as one with
/// `cgroup.kill`); Windows, the limits of its job object (`JOB_OBJECT_LIMIT_JOB_MEMORY`,
/// `JOB_OBJECT_LIMIT_ACTIVE_PROCESS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory for the whole tree; `None`: [`Limits::DEFAULT_MEMORY_SHARE`] of the
    /// machine's memory.
    pub memory_bytes: Option<u64>,
    /// Processes (Linux: tasks, threads included) at once; `None`: [`Limits::DEFAULT_PROCESSES`].
    pub processes: Option<u64>,
    /// Put the tree in a cgroup (Linux; `false`: process group and inherited token only, to
    /// compare).
    pub cgroup: bool,
}

impl Limits {
    /// Processes and threads a tree may have at once unless the plan says otherwise.
    pub const DEFAULT_PROCESSES: u64 = 4096;
    /// The share of the machine's memory a tree may use unless the plan says otherwise.
    pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

    /// The memory limit for a machine with `total` bytes.
    pub fn memory_for(&self, total: u64) -> u64 {
        self.memory_bytes.unwrap_or((total as f64 * Self::DEFAULT_MEMORY_SHARE) as u64)
    }

    /// The process limit.
    pub fn processes(&self) -> u64 {
        self.processes.unwrap_or(Self::DEFAULT_PROCESSES)
    }
}

impl Default for Limits {
    /// The defaults: half the machine's memory, 4096 processes, a cgroup.
    fn default() -> Self {
        Limits { memory_bytes: None, processes: None, cgroup: true }
    }
}

/// The server under test: how to start it, reach it and talk to it.
#[derive(Clone, Debug)]
pub struct Target {
    /// A name for reports.
    pub name: String,
    /// The server executable.
    pub program: PathBuf,
    /// Arguments; `{pipe}` is replaced by the endpoint name of the run, `{pipe_path}` by its
    /// full path (`\\.\pipe\NAME` on Windows; the socket path on Unix).
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// The endpoint name; `{unique}` is replaced per run so runs never collide.
    pub endpoint: crate::endpoint::EndpointTemplate,
    /// How to know it is ready.
    pub readiness: Readiness,
    /// How long it may take to get ready.
    pub ready_timeout: Duration,
    /// Its framing.
    pub framing: FramingSpec,
    /// A liveness ping.
    pub ping: Option<Exchange>,
    /// A privileged request.
    pub privileged: Option<Exchange>,
    /// A client program under test (for `client_impersonation`).
    pub client_under_test: Option<ClientProgram>,
    /// The opening every connection makes before its messages (the live fuzzer's cases and
    /// its ping follow it; a case may also break one of its steps). Empty: none.
    pub session: Vec<SessionStep>,
    /// Bytes in front of every message the fuzzer sends after the session (`{capture}`: the
    /// captured token, for servers that check it on each message).
    pub message_prefix: Vec<u8>,
    /// The server was built with `pipe-harness cc` and reports edge coverage and comparison
    /// operands: the live fuzzer keeps the cases that reach new edges and mutates them.
    pub coverage: bool,
    /// The identity to run the server as (Unix: `UID[:GID]`); `None`: the harness's own.
    pub run_as: Option<crate::identity::Identity>,
    /// The identity a legitimate client connects as (Unix: `UID[:GID]`): the live fuzzer's
    /// cases, its liveness ping and the control connection that proves the endpoint. A plan
    /// sets it to the policy's first allowed user; `None`: [`Target::run_as`], else the
    /// harness's own ([`Target::client_identity`]).
    pub client_as: Option<crate::identity::Identity>,
    /// Accounts the harness creates for the run when they do not exist, and deletes after
    /// (the service's own account, an attacker's), so a plan can name the accounts a product
    /// installs on a machine that has not got them ([`crate::supervise::TestAccounts`]).
    pub create_accounts: Vec<String>,
    /// The umask to start the server with (Unix); `None`: the harness's own.
    pub umask: Option<u32>,
    /// What the server may use ([`Limits`]).
    pub limits: Limits,
    /// The endpoint of a server already running that the harness does not start (a service
    /// of the system's); the checks that start or restart the server are not applicable then.
    pub attach: Option<String>,
    /// A server a service manager starts (instead of [`Target::program`]); the harness stops
    /// and starts it through the manager and leaves it as it found it.
    pub managed: Option<Managed>,
    /// Where the server publishes its endpoint's name, if it does (Windows: a named file
    /// mapping such as `Local\{pipe}`; `{pipe}` is replaced), as WCF's net.pipe binding does.
    pub published_in: Option<String>,
    /// Files written before each start (a server's configuration), in a folder made for that
    /// start and removed after it (`{dir}` in their text and in `args`).
    pub files: Vec<FileTemplate>,
}

/// A file the harness writes before each start of the server: the plan's
/// `[[target.files]] path = "{dir}/NAME"`, `text = "..."`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTemplate {
    /// Its name in the start's folder (one path component).
    pub name: String,
    /// Its text, with `{pipe}`, `{pipe_path}` and `{dir}` (the start's folder) replaced.
    pub text: String,
}

impl Target {
    /// A target with the given program and endpoint template, ready when the endpoint exists,
    /// 4-byte big-endian framing, no ping or privileged request.
    pub fn new(name: &str, program: impl Into<PathBuf>, endpoint: &str) -> Self {
        Target {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            endpoint: crate::endpoint::EndpointTemplate::lenient(endpoint),
            readiness: Readiness::Endpoint,
            ready_timeout: Duration::from_secs(30),
            framing: FramingSpec::Length { width: 4, little_endian: false },
            ping: None,
            privileged: None,
            client_under_test: None,
            session: Vec::new(),
            message_prefix: Vec::new(),
            coverage: false,
            run_as: None,
            client_as: None,
            create_accounts: Vec::new(),
            umask: None,
            limits: Limits::default(),
            published_in: None,
            attach: None,
            managed: None,
            files: Vec::new(),
        }
    }

    /// The arguments with `{pipe_path}` replaced by `path` (the endpoint as a client opens it:
    /// `\\.\pipe\NAME`, the socket's path) and `{pipe}` by `endpoint` (the name the harness
    /// chose).
    pub fn args_for(&self, endpoint: &str, path: &str) -> Vec<String> {
        fill(&self.args, endpoint, path)
    }

    /// Who a legitimate client is: [`Target::client_as`], else the identity the server runs
    /// as ([`Target::run_as`]: a server that serves only its own uid, as ssh-agent does, serves
    /// it), else the harness's own (`None`).
    pub fn client_identity(&self) -> Option<crate::identity::Identity> {
        self.client_as.clone().or_else(|| self.run_as.clone())
    }
}

/// `args` with `{pipe_path}` replaced by `path` and `{pipe}` by `endpoint`.
pub fn fill(args: &[String], endpoint: &str, path: &str) -> Vec<String> {
    args.iter().map(|a| a.replace("{pipe_path}", path).replace("{pipe}", endpoint)).collect()
}

/// What the product intends. Each scenario judges against the parts it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The protection every endpoint must carry: a DACL (Windows) or a mode and owner (Unix).
    /// `None`: not checked.
    pub protection: Option<crate::protection::Protection>,
    /// The server must refuse to start when its endpoint name is already taken.
    pub refuse_taken_name: bool,
    /// The lowest level at which the server may do privileged work for a client.
    pub min_privileged_level: ImpersonationLevel,
    /// The most a client under test may offer an unauthenticated server.
    pub client_max_level: ImpersonationLevel,
    /// Every instance must refuse remote clients.
    pub reject_remote: bool,
    /// Identities that may make the privileged request (Unix: `UID[:GID]`).
    pub allowed_users: Vec<crate::identity::Identity>,
    /// Identities that must be refused (Unix: `UID[:GID]`).
    pub denied_users: Vec<crate::identity::Identity>,
    /// Whether a client in another session (Windows logon session; Unix network namespace)
    /// must be able to find and open the endpoint (`Some(true)`, e.g. a service in session 0
    /// talking to a user's process), must not (`Some(false)`), or either (`None`).
    pub other_sessions: Option<bool>,
    /// The server checks who its peer is itself (Unix: `SO_PEERCRED`) and must refuse a denied
    /// identity even where the endpoint's protection would let it connect: the product relies
    /// on that check, not on the socket's mode alone. `false` (the default): the mode is the
    /// product's defence; the server's own check is still tested where the harness can reach
    /// it, and reported as information.
    pub peer_check: bool,
}

impl Default for Policy {
    /// Refuse a taken name, privileged work only at Impersonation, clients offer at most
    /// Identification, remote clients refused, protection unchecked.
    fn default() -> Self {
        Policy {
            protection: None,
            refuse_taken_name: true,
            min_privileged_level: ImpersonationLevel::Impersonation,
            client_max_level: ImpersonationLevel::Identification,
            reject_remote: true,
            allowed_users: Vec::new(),
            denied_users: Vec::new(),
            other_sessions: None,
            peer_check: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_is_the_name_and_pipe_path_the_full_endpoint() {
        let mut t = Target::new("t", "x", "n-{unique}");
        t.args = vec!["--name".into(), "{pipe}".into(), "--path={pipe_path}".into()];
        assert_eq!(t.args_for("n-1", r"\\.\pipe\n-1"), ["--name", "n-1", r"--path=\\.\pipe\n-1"]);
    }

    #[test]
    fn requests_are_framed_and_replies_decoded_with_the_targets_framing() {
        for spec in [
            FramingSpec::Length { width: 4, little_endian: false },
            FramingSpec::Length { width: 2, little_endian: true },
            FramingSpec::Thrift,
            FramingSpec::ContentLength,
            FramingSpec::Lines,
        ] {
            let wire = spec.encode(b"PING").expect("encode");
            let mut d = spec.decoder().expect("decoder");
            d.push(&wire[..1]);
            assert_eq!(d.next_reply().expect("partial"), None);
            d.push(&wire[1..]);
            assert_eq!(d.next_reply().expect("whole").as_deref(), Some(&b"PING"[..]), "{spec:?}");
        }
    }
}
