//! The [`Backend`] for Unix-domain sockets: endpoints are socket paths (the product's own, or
//! in a runtime directory the harness makes, `{dir}` in a template) or Linux abstract names
//! (`@name`); protection is the socket file's mode and owner; identities are uids, taken per
//! thread.

use super::creds::{as_user, Ids};
use crate::backend::{Backend, Conn, ConnectSpec, ListenSpec, Listener, PeerIdentity, PipeShape, SessionReach};
use crate::endpoint::{Endpoint, EndpointTemplate, Part};
use crate::error::{Error, OsCode, Result};
use crate::identity::ImpersonationLevel;
use crate::protection::{Protection, UnixMode};
use crate::rules::ProbeReport;
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn io(call: &'static str, context: impl Into<String>, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(code) => Error::Os { call, code: OsCode::Errno(code), context: context.into() },
        None if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
            Error::Timeout { context: context.into(), after: Duration::ZERO }
        }
        None => Error::Peer(format!("{}: {e}", context.into())),
    }
}

/// Unix sockets on this machine, with the probe's measurements and the run's folder.
///
/// The run's folder is made with `tempfile` (a random name, created exclusively), mode 0755 and
/// owned by the harness: nobody else may write it, so nobody else may rename or replace what is
/// in it. `{dir}` in an endpoint is a directory in it owned by the server's identity (the
/// target's `run_as`, else the harness's own: the folder itself), mode 0755, as a service
/// manager makes a runtime directory (systemd's `RuntimeDirectory=`); `{private_dir:ID}` is the
/// same for another identity. Checks never judge these directories
/// ([`Backend::harness_directory`]): the harness chose them, not the product.
#[derive(Debug)]
pub struct UnixBackend {
    probe: ProbeReport,
    dir: PathBuf,
}

/// A directory made as a service manager makes a service's runtime directory (systemd's
/// `RuntimeDirectory=`): mode 0755, owned by the service's identity, in a parent only its
/// maker may write; both removed on drop. For a test that plays the product's deployment (a
/// directory the product chose, which the checks then judge), or for the harness's own.
#[derive(Debug)]
pub struct RuntimeDirectory {
    parent: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl RuntimeDirectory {
    /// Makes `<random parent>/run` (the parent `pipe-harness-PID-` and a random part, made
    /// exclusively, 0755, the caller's), owned
    /// by `owner` with mode 0755.
    pub fn new(owner: Ids) -> Result<RuntimeDirectory> {
        Self::with_mode(owner, 0o755)
    }

    /// The same with another mode: 0777 is a world-writable directory without the sticky bit,
    /// as a deployment may make by mistake (anyone may create and remove sockets there).
    pub fn with_mode(owner: Ids, mode: u32) -> Result<RuntimeDirectory> {
        let parent = tempfile::Builder::new()
            .prefix(&format!("pipe-harness-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| io("mkdir", "creating a run folder in the temporary directory", e))?;
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io("chmod", format!("making {} 0755", parent.path().display()), e))?;
        let path = parent.path().join("run");
        make_owned_dir(&path, owner)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("chmod", format!("making {} {mode:04o}", path.display()), e))?;
        Ok(RuntimeDirectory { parent: Some(parent), path })
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for RuntimeDirectory {
    fn drop(&mut self) {
        if let Some(parent) = self.parent.take() {
            let _ = parent.close();
        }
    }
}

/// Removes the run folders (`pipe-harness-PID-*` in `tmp`) of harnesses that died without their
/// cleanup (SIGKILL): named for a pid that no longer runs, a directory (not a link), and owned
/// by this process's uid (never another user's). A folder of a live harness, or of a pid that
/// came round again, is left alone. Returns what was removed.
pub fn sweep_dead_run_folders(tmp: &std::path::Path) -> Vec<PathBuf> {
    let me = rustix::process::geteuid().as_raw();
    let mut removed = Vec::new();
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("pipe-harness-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = e.path();
        let ours = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me);
        if ours && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// `mkdir` (exclusive: an existing path is an error), then mode 0755 and `owner`.
fn make_owned_dir(dir: &std::path::Path, owner: Ids) -> Result<()> {
    std::fs::create_dir(dir).map_err(|e| io("mkdir", format!("creating {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("chmod", format!("making {} 0755", dir.display()), e))?;
    std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid))
        .map_err(|e| io("chown", format!("giving {} to uid {}", dir.display(), owner.uid), e))
}

impl UnixBackend {
    /// Makes the run's folder, with the platform's probe (measured once per process:
    /// [`probe::measured`](super::probe::measured)).
    pub fn new() -> Result<Self> {
        Self::with_probe(super::probe::measured().clone())
    }

    /// With a probe report already made.
    pub fn with_probe(probe: ProbeReport) -> Result<Self> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| {
            sweep_dead_run_folders(&std::env::temp_dir());
        });
        let dir = tempfile::Builder::new()
            .prefix(&format!("pipe-harness-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| io("mkdir", "creating the run's folder in the temporary directory", e))?
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io("chmod", format!("making {} 0755", dir.display()), e))?;
        crate::tree::register_folder(dir.clone());
        Ok(UnixBackend { probe, dir })
    }

    /// The run's folder (0755, the harness's): `{dir}` for a server that runs as the harness's
    /// own identity.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The run's directory that only `ids` may write (`{private_dir:UID}` in an endpoint, and
    /// `{dir}` for a server that runs as `ids`): `private-UID` in the run's folder, mode 0755,
    /// owned by `ids`; made if missing. The harness's own identity's is the folder itself.
    pub fn private_dir(&self, ids: Ids) -> Result<PathBuf> {
        if ids.uid == rustix::process::geteuid().as_raw() {
            return Ok(self.dir.clone());
        }
        let dir = self.dir.join(format!("private-{}", ids.uid));
        // One maker at a time: a second caller must not use the directory before its mode
        // and owner are set.
        static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _making = MAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if dir.is_dir() {
            return Ok(dir);
        }
        make_owned_dir(&dir, ids)?;
        Ok(dir)
    }

    /// Fills a template, `{dir}` being the runtime directory of `owner` (the harness's own
    /// identity when `None`).
    fn fill(&self, template: &EndpointTemplate, owner: Option<&crate::identity::Identity>) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let unique = format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let private = |who: &crate::identity::Identity| {
            Ids::resolve(who).and_then(|ids| self.private_dir(ids)).map(|d| d.to_string_lossy().into_owned())
        };
        let filled: std::result::Result<String, std::convert::Infallible> = template.fill(|part| {
            Ok(match part {
                Part::Unique => unique.clone(),
                Part::Dir => match owner {
                    None => self.dir.to_string_lossy().into_owned(),
                    Some(who) => private(who).unwrap_or_else(|_| format!("{{dir of {who}}}")),
                },
                Part::PrivateDir(who) => private(who).unwrap_or_else(|_| format!("{{private_dir:{who}}}")),
                _ => String::new(),
            })
        });
        filled.unwrap_or_else(|never| match never {})
    }
}

impl Drop for UnixBackend {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::tree::release_folder(&self.dir);
    }
}

fn socket_addr(endpoint: &str) -> Result<SocketAddr> {
    match Endpoint::unix(endpoint) {
        Endpoint::Abstract(name) => SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|e| io("socket", format!("abstract name @{name}"), e)),
        Endpoint::Path(p) => {
            SocketAddr::from_pathname(&p).map_err(|e| io("socket", format!("path {}", p.display()), e))
        }
        other => Err(Error::invalid("socket address", other.to_string())),
    }
}

/// A client connection.
#[derive(Debug)]
pub struct UnixConn {
    stream: UnixStream,
    endpoint: String,
    /// The write and read timeouts set last.
    timeouts: (Option<Duration>, Option<Duration>),
}

fn timed<T>(r: std::io::Result<T>, what: impl Fn() -> String, timeout: Duration) -> Result<T> {
    r.map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            Error::Timeout { context: what(), after: timeout }
        }
        _ => io("socket I/O", what(), e),
    })
}

/// The timeout to give the socket for one call (`SO_SNDTIMEO` / `SO_RCVTIMEO`), set only when
/// it differs from the one set last (a system call saved per call on the fuzzer's hot path).
fn set_timeout(
    s: &UnixStream,
    last: &mut Option<Duration>,
    timeout: Duration,
    write: bool,
    what: &impl Fn() -> String,
) -> Result<()> {
    let t = timeout.max(Duration::from_millis(1));
    if *last != Some(t) {
        let r = if write { s.set_write_timeout(Some(t)) } else { s.set_read_timeout(Some(t)) };
        r.map_err(|e| io("setsockopt", what(), e))?;
        *last = Some(t);
    }
    Ok(())
}

fn send_on(
    s: &mut UnixStream,
    last: &mut Option<Duration>,
    data: &[u8],
    timeout: Duration,
    what: impl Fn() -> String,
) -> Result<()> {
    set_timeout(s, last, timeout, true, &what)?;
    timed(s.write_all(data), what, timeout)
}

fn recv_on(
    s: &mut UnixStream,
    last: &mut Option<Duration>,
    buf: &mut [u8],
    timeout: Duration,
    what: impl Fn() -> String,
) -> Result<usize> {
    set_timeout(s, last, timeout, false, &what)?;
    timed(s.read(buf), what, timeout)
}

impl Conn for UnixConn {
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        let endpoint = &self.endpoint;
        send_on(&mut self.stream, &mut self.timeouts.0, data, timeout, || format!("writing to {endpoint}"))
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        let endpoint = &self.endpoint;
        recv_on(&mut self.stream, &mut self.timeouts.1, buf, timeout, || format!("reading from {endpoint}"))
    }
    fn protection(&self) -> Result<Protection> {
        match Endpoint::unix(&self.endpoint) {
            Endpoint::Path(p) => {
                let m = std::fs::metadata(&p).map_err(|e| io("stat", format!("reading {}'s mode", p.display()), e))?;
                Ok(Protection::Mode(UnixMode { mode: m.mode() & 0o7777, uid: Some(m.uid()), gid: Some(m.gid()) }))
            }
            _ => Ok(Protection::Abstract),
        }
    }
    fn server_pid(&self) -> Result<u32> {
        let c = rustix::net::sockopt::socket_peercred(&self.stream)
            .map_err(|e| io("getsockopt", "SO_PEERCRED", e.into()))?;
        Ok(c.pid.as_raw_nonzero().get() as u32)
    }
    fn shape(&self) -> Result<PipeShape> {
        Ok(PipeShape { message: false, max_instances: 255 })
    }
    fn end_of_stream(&mut self) -> Result<bool> {
        match self.stream.shutdown(std::net::Shutdown::Write) {
            // The server already hung up: the end of stream is moot, the wait sees the close.
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Ok(true),
            r => r.map(|()| true).map_err(|e| io("shutdown", format!("ending the stream to {}", self.endpoint), e)),
        }
    }
}

/// The harness's own listening socket.
#[derive(Debug)]
pub struct UnixServer {
    listener: UnixListener,
    peer: Option<UnixStream>,
    endpoint: String,
    /// The socket file it bound (path, device, inode): removed on drop while it is still
    /// that file, so a fixed endpoint (a service's) is free again after the attacker leaves,
    /// and a socket someone else bound there since is never touched.
    bound: Option<(PathBuf, u64, u64)>,
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Some((path, dev, ino)) = &self.bound {
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.dev() == *dev && m.ino() == *ino) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl UnixServer {
    fn peer(&mut self) -> Result<&mut UnixStream> {
        self.peer.as_mut().ok_or_else(|| Error::invalid("listener", "no client accepted yet"))
    }
}

impl Listener for UnixServer {
    fn accept(&mut self, timeout: Duration) -> Result<()> {
        let fd = rustix::event::PollFd::new(&self.listener, rustix::event::PollFlags::IN);
        let ts =
            rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
        let n = rustix::event::poll(&mut [fd], Some(&ts)).map_err(|e| io("poll", "waiting for a client", e.into()))?;
        if n == 0 {
            return Err(Error::Timeout {
                context: format!("waiting for a client on {}", self.endpoint),
                after: timeout,
            });
        }
        let (s, _) = self.listener.accept().map_err(|e| io("accept", format!("accepting on {}", self.endpoint), e))?;
        self.peer = Some(s);
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        let what = format!("reading from the client of {}", self.endpoint);
        recv_on(self.peer()?, &mut None, buf, timeout, || what.clone())
    }
    fn send(&mut self, data: &[u8], timeout: Duration) -> Result<()> {
        let what = format!("writing to the client of {}", self.endpoint);
        send_on(self.peer()?, &mut None, data, timeout, || what.clone())
    }
    fn peer_identity(&self) -> Result<PeerIdentity> {
        let peer = self.peer.as_ref().ok_or_else(|| Error::invalid("listener", "no client accepted yet"))?;
        let c = rustix::net::sockopt::socket_peercred(peer).map_err(|e| io("getsockopt", "SO_PEERCRED", e.into()))?;
        // A Unix server learns who the client is, and cannot act as it: Identification.
        Ok(PeerIdentity {
            level: Some(ImpersonationLevel::Identification),
            user: Some(format!("uid {}", c.uid.as_raw())),
        })
    }
}

/// One connect attempt that never blocks: a non-blocking socket, so that a server whose
/// backlog is full (it stopped calling accept) gives `WouldBlock` here instead of a connect
/// that waits forever; the stream is made blocking (with per-call timeouts) once connected.
fn connect_now(endpoint: &str) -> std::io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = match Endpoint::unix(endpoint) {
        Endpoint::Path(p) => SocketAddrUnix::new(p.as_path())?,
        Endpoint::Abstract(name) => SocketAddrUnix::new_abstract_name(name.as_bytes())?,
        other => return Err(std::io::Error::other(format!("{other} is not a Unix socket address"))),
    };
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&fd, &addr)?;
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

impl Backend for UnixBackend {
    type Listener = UnixServer;
    type Client = UnixConn;

    fn platform(&self) -> &'static str {
        "unix"
    }

    fn probe(&self) -> &ProbeReport {
        &self.probe
    }

    /// `{unique}`: a name no other run uses; `{dir}`: the run's folder (0755, the harness's);
    /// `{private_dir:UID}` (or `UID:GID`): a directory in it that only that identity may write
    /// (0755, owned by it), as a service's runtime directory is (systemd's
    /// `RuntimeDirectory=`), made on first use. A `{private_dir:...}` whose identity does not
    /// resolve here is left as written, so the bind names it.
    fn endpoint(&self, template: &EndpointTemplate) -> String {
        self.fill(template, None)
    }

    /// In the run's folder (0755, the harness's, so nobody else can plant a name there):
    /// `files-XXXXXX`, random, made exclusively, 0700.
    fn start_folder(&self, _target: &crate::target::Target) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix("files-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(&self.dir)
            .map_err(|e| io("mkdir", format!("creating a folder for the target's files in {}", self.dir.display()), e))
    }

    /// The folder and its files (one level; a link is given, never followed) to the target's
    /// `run_as`, so a server that writes its pid file or logs beside its configuration can.
    fn give_start_folder(&self, folder: &std::path::Path, target: &crate::target::Target) -> Result<()> {
        let Some(who) = &target.run_as else { return Ok(()) };
        let ids = Ids::resolve(who)?;
        let entries =
            std::fs::read_dir(folder).map_err(|e| io("readdir", format!("listing {}", folder.display()), e))?;
        for entry in entries {
            let path = entry.map_err(|e| io("readdir", format!("listing {}", folder.display()), e))?.path();
            std::os::unix::fs::lchown(&path, Some(ids.uid), Some(ids.gid))
                .map_err(|e| io("chown", format!("giving {} to uid {}", path.display(), ids.uid), e))?;
        }
        std::os::unix::fs::lchown(folder, Some(ids.uid), Some(ids.gid))
            .map_err(|e| io("chown", format!("giving {} to uid {}", folder.display(), ids.uid), e))
    }

    /// As [`endpoint`](Backend::endpoint), with `{dir}` the runtime directory of the target's
    /// `run_as` (0755, owned by it).
    fn endpoint_for(&self, target: &crate::target::Target) -> String {
        self.fill(&target.endpoint, target.run_as.as_ref())
    }

    fn listen(&self, endpoint: &str, spec: &ListenSpec) -> Result<UnixServer> {
        let addr = socket_addr(endpoint)?;
        let path = match Endpoint::unix(endpoint) {
            Endpoint::Path(p) => Some(p),
            _ => None,
        };
        let stale = path.clone().filter(|_| spec.replace_existing);
        // Bind; on a taken path, unlink it and bind again, all with the listening identity's
        // rights (a directory it may not write refuses the unlink).
        let take = move || {
            let first = UnixListener::bind_addr(&addr);
            match (&first, &stale) {
                (Err(e), Some(p)) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    std::fs::remove_file(p)?;
                    UnixListener::bind_addr(&addr)
                }
                _ => first,
            }
        };
        let bound = match spec.as_user.as_ref().map(Ids::resolve).transpose()? {
            Some(ids) => as_user(ids, take)?,
            None => take(),
        };
        let who = spec.as_user.as_ref().map(|u| format!(" as uid {u}")).unwrap_or_default();
        let listener = bound.map_err(|e| io("bind", format!("binding {endpoint}{who}"), e))?;
        let bound = path.as_ref().and_then(|p| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(p).ok().map(|m| (p.clone(), m.dev(), m.ino()))
        });
        if let Some(p) = path {
            let mode = match (&spec.protection, spec.open_to_all) {
                (Some(Protection::Mode(m)), _) => Some(m.mode),
                (Some(other), _) => {
                    return Err(Error::invalid("protection", format!("{other}: a Unix socket takes a mode")))
                }
                (None, true) => Some(0o777),
                (None, false) => None,
            };
            if let Some(mode) = mode {
                let ours = bound.as_ref().map(|(_, dev, ino)| (*dev, *ino));
                chmod_bound_socket(&p, ours, mode)
                    .map_err(|e| io("chmod", format!("setting {}'s mode", p.display()), e))?;
            }
        }
        Ok(UnixServer { listener, peer: None, endpoint: endpoint.to_string(), bound })
    }

    fn connect(&self, endpoint: &str, spec: &ConnectSpec) -> Result<UnixConn> {
        if spec.remote {
            return Err(Error::Unsupported("Unix-domain sockets have no remote clients".into()));
        }
        let ids = spec.as_user.as_ref().map(Ids::resolve).transpose()?;
        let deadline = Instant::now() + spec.timeout;
        let mut pause = Duration::from_micros(50);
        loop {
            let attempt = match ids {
                Some(ids) => {
                    let e = endpoint.to_string();
                    as_user(ids, move || connect_now(&e))?
                }
                None => connect_now(endpoint),
            };
            match attempt {
                Ok(stream) => return Ok(UnixConn { stream, endpoint: endpoint.to_string(), timeouts: (None, None) }),
                // Not there yet (or between a server's restarts), or its backlog is full: wait,
                // bounded.
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound
                            | std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::WouldBlock
                    ) && Instant::now() < deadline =>
                {
                    // From 50 µs up to 5 ms: a server that is about to listen (a restart) is
                    // reached at once, one that is not yet there is not polled hard.
                    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(Error::Timeout {
                        context: format!("connecting to {endpoint} (its backlog is full: nothing accepts)"),
                        after: spec.timeout,
                    })
                }
                Err(e) => {
                    return Err(io(
                        "connect",
                        format!(
                            "connecting to {endpoint}{}",
                            ids.map_or(String::new(), |i| format!(" as uid {}", i.uid))
                        ),
                        e,
                    ))
                }
            }
        }
    }

    fn prepare_command(&self, cmd: &mut Command, target: &crate::target::Target) -> Result<()> {
        let ids = target.run_as.as_ref().map(Ids::resolve).transpose()?;
        if ids.is_some() && !super::creds::is_root() {
            return Err(Error::Unsupported("running the target as another uid needs root".into()));
        }
        // An account's server finds its name and home where it looks (HOME, USER, LOGNAME), as
        // a login or a service manager would set them; the plan's own env wins.
        if let Some((name, home)) = ids.and_then(|i| super::creds::passwd_entry(i.uid)) {
            for (k, v) in [("HOME", home.as_str()), ("USER", name.as_str()), ("LOGNAME", name.as_str())] {
                if !target.env.iter().any(|(e, _)| e == k) {
                    cmd.env(k, v);
                }
            }
        }
        super::creds::run_as(cmd, ids, target.umask);
        Ok(())
    }

    fn reach_from_other_session(&self, endpoint: &str, published_in: Option<&str>) -> Result<SessionReach> {
        if published_in.is_some() {
            return Err(Error::Unsupported(
                "publishing an endpoint's name in a named object is a Windows design".into(),
            ));
        }
        let e = endpoint.to_string();
        let attempt = super::creds::in_new_netns(move || connect_now(&e))?;
        Ok(SessionReach {
            session: "a fresh network namespace (same filesystem)".into(),
            found_published: None,
            connected: attempt.is_ok(),
            detail: match attempt {
                Ok(_) => "connected".into(),
                Err(e) => e.to_string(),
            },
        })
    }

    fn set_protection(&self, endpoint: &str, protection: &Protection) -> Result<()> {
        let (Endpoint::Path(p), Protection::Mode(m)) = (Endpoint::unix(endpoint), protection) else {
            return Err(Error::Unsupported(format!("{endpoint} takes no {protection}: only a socket path has a mode")));
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m.mode))
            .map_err(|e| io("chmod", format!("setting {}'s mode to {:04o}", p.display(), m.mode), e))
    }

    fn clear_stale_endpoint(&self, endpoint: &str) -> Result<()> {
        use std::os::unix::fs::FileTypeExt;
        let Endpoint::Path(p) = Endpoint::unix(endpoint) else { return Ok(()) };
        let is_socket = std::fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_socket());
        let nobody_listens =
            matches!(connect_now(endpoint), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
        if is_socket && nobody_listens {
            std::fs::remove_file(&p)
                .map_err(|e| io("unlink", format!("removing the stale socket {}", p.display()), e))?;
        }
        Ok(())
    }

    fn harness_directory(&self, endpoint: &str) -> Option<PathBuf> {
        match Endpoint::unix(endpoint) {
            Endpoint::Path(p) if p.starts_with(&self.dir) => p.parent().map(PathBuf::from),
            _ => None,
        }
    }

    fn leftover_file(&self, endpoint: &str) -> Option<crate::backend::Leftover> {
        use crate::backend::{Leftover, LeftoverOwner};
        use std::os::unix::fs::MetadataExt;
        match Endpoint::unix(endpoint) {
            // In the run's folder or one of its private directories: the run's to remove.
            Endpoint::Path(p) if p.starts_with(&self.dir) => Some(Leftover { path: p, owner: LeftoverOwner::Harness }),
            // The product's path: only a socket the server made there, once nobody serves it.
            Endpoint::Path(p) => {
                let before = std::fs::symlink_metadata(&p).ok().map(|m| (m.dev(), m.ino()));
                Some(Leftover { path: p, owner: LeftoverOwner::Product { before, remove: remove_orphaned_socket } })
            }
            _ => None,
        }
    }
}

/// Sets the mode of the socket the harness just bound at `path` without following a symlink:
/// the path is opened `O_PATH | O_NOFOLLOW`, must be a socket (the one bound, `ours` = its
/// device and inode, when known), and the mode is set through that descriptor
/// (`/proc/self/fd/N`), so a name swapped for a symlink in the meantime (in a directory others
/// may write) changes nothing but the harness's own socket, or is refused.
fn chmod_bound_socket(path: &std::path::Path, ours: Option<(u64, u64)>, mode: u32) -> std::io::Result<()> {
    use rustix::fs::{FileType, Mode, OFlags};
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    let same = ours.is_none_or(|(dev, ino)| st.st_dev == dev && st.st_ino == ino);
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket || !same {
        return Err(std::io::Error::other("it is no longer the socket the harness bound (replaced)"));
    }
    Ok(rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), Mode::from_raw_mode(mode))?)
}

/// Removes the socket file at `path` when it is not the file that was there before the server
/// started (`before`: its device and inode) and nobody listens on it: the socket of a server the
/// harness killed, in a directory the product chose.
pub(crate) fn remove_orphaned_socket(path: &std::path::Path, before: Option<(u64, u64)>) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(m) = std::fs::symlink_metadata(path) else { return };
    let new = before != Some((m.dev(), m.ino()));
    let orphaned = matches!(std::os::unix::net::UnixStream::connect(path), Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused);
    if m.file_type().is_socket() && new && orphaned {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::{chmod_bound_socket, remove_orphaned_socket};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// The socket the harness bound gets its mode; a symlink put at its name (to a file of
    /// root's) and another socket are refused, and the file keeps its mode (`set_permissions`
    /// on the path, as before, followed the symlink and made the file 0777).
    /// The socket a killed server left at a path the product chose is removed (the kill was the
    /// harness's); what was there before the server started, and a socket someone serves, are
    /// not.
    #[test]
    fn only_the_orphaned_socket_of_the_server_is_removed_from_the_products_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("svc.sock");
        // The server's socket, orphaned: it was not there before, nobody listens.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        remove_orphaned_socket(&path, None);
        assert!(!path.exists(), "the orphaned socket stays");
        // The same, but it was there before the server started: not the server's to remove.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        let m = std::fs::symlink_metadata(&path).expect("stat");
        remove_orphaned_socket(&path, Some((m.dev(), m.ino())));
        assert!(path.exists(), "a socket from before the server was removed");
        std::fs::remove_file(&path).expect("unlink");
        // A socket someone listens on (another server took the name): kept.
        let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        remove_orphaned_socket(&path, None);
        assert!(path.exists(), "a live socket was removed");
        drop(live);
        // Not a socket: kept.
        std::fs::remove_file(&path).expect("unlink");
        std::fs::write(&path, b"x").expect("write");
        remove_orphaned_socket(&path, None);
        assert!(path.exists(), "a regular file was removed");
    }

    #[test]
    fn a_socket_mode_is_set_on_the_bound_socket_never_through_a_symlink() {
        let dir = tempfile::Builder::new().prefix("ph-chmod-").tempdir().expect("dir");
        let sock = dir.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let m = std::fs::symlink_metadata(&sock).expect("stat");
        chmod_bound_socket(&sock, Some((m.dev(), m.ino())), 0o777).expect("chmod the bound socket");
        assert_eq!(std::fs::symlink_metadata(&sock).expect("stat").mode() & 0o7777, 0o777);

        let file = dir.path().join("precious");
        std::fs::write(&file, "x").expect("file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let link = dir.path().join("swapped.sock");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(chmod_bound_socket(&link, None, 0o777).is_err(), "a symlink is not followed");
        let other = dir.path().join("other.sock");
        let _other = std::os::unix::net::UnixListener::bind(&other).expect("bind");
        assert!(chmod_bound_socket(&other, Some((m.dev(), m.ino())), 0o777).is_err(), "another socket is refused");
        assert_eq!(std::fs::metadata(&file).expect("stat").mode() & 0o7777, 0o600, "the file kept its mode");
    }
}
