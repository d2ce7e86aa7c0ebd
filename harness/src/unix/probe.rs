//! The Unix platform probe: each rule measured by doing it (another uid's connect, a second
//! bind, a client in a fresh network namespace), each with a control.

use super::creds::{as_user, in_new_netns, is_root, Ids};
use crate::rules::{not_applicable, PlatformInfo, ProbeReport, Rule, RuleResult, Status};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The uid the probe acts as (any uid without an account works for sockets).
pub const PROBE_UID: u32 = 61_999;

/// A scratch directory anyone may traverse (and only the harness write: a fresh random name,
/// made exclusively), removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let dir = tempfile::Builder::new().prefix("ph-probe-").tempdir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        Ok(Scratch(dir))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn result(rule: Rule, status: Status, evidence: Vec<String>) -> RuleResult {
    RuleResult { rule, status, evidence }
}

/// Why a rule cannot be measured without root, and what would measure it, in words.
fn needs_root(what: &str) -> String {
    format!(
        "the harness runs as uid {}, not root: {what}; run it as root to measure this",
        rustix::process::geteuid().as_raw()
    )
}

fn connect_as(path: &Path, uid: u32) -> Result<std::io::Result<UnixStream>, crate::Error> {
    let path = path.to_path_buf();
    as_user(Ids { uid, gid: uid }, move || UnixStream::connect(&path))
}

fn distinct_identities(scratch: &Scratch) -> RuleResult {
    let rule = Rule::UnixDistinctIdentities;
    if !is_root() {
        return result(rule, Status::Untestable, vec![needs_root("it cannot connect as other uids")]);
    }
    let path = scratch.path("ids.sock");
    let measured = (|| -> std::io::Result<(u32, u32)> {
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))?;
        let client = connect_as(&path, PROBE_UID).map_err(std::io::Error::other)??;
        let (server_side, _) = listener.accept()?;
        let cred = rustix::net::sockopt::socket_peercred(&server_side)?;
        drop(client);
        Ok((cred.uid.as_raw(), cred.pid.as_raw_nonzero().get() as u32))
    })();
    match measured {
        Ok((uid, pid)) => {
            let ev = vec![format!(
                "a thread dropped to uid {PROBE_UID} connected; the server's SO_PEERCRED says uid {uid}, pid {pid}"
            )];
            result(rule, if uid == PROBE_UID { Status::Holds } else { Status::DoesNotHold }, ev)
        }
        Err(e) => result(rule, Status::Untestable, vec![format!("measurement failed: {e}")]),
    }
}

fn socket_mode(scratch: &Scratch) -> RuleResult {
    let rule = Rule::UnixSocketModeEnforced;
    if !is_root() {
        return result(rule, Status::Untestable, vec![needs_root("no other uid to connect as")]);
    }
    let path = scratch.path("mode.sock");
    let measured = (|| -> std::io::Result<(std::io::Result<UnixStream>, std::io::Result<UnixStream>)> {
        let _listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let denied = connect_as(&path, PROBE_UID).map_err(std::io::Error::other)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        let control = connect_as(&path, PROBE_UID).map_err(std::io::Error::other)?;
        Ok((denied, control))
    })();
    match measured {
        Ok((denied, control)) => {
            let ev = vec![
                format!(
                    "uid {PROBE_UID} connecting to a root-owned 0600 socket: {}",
                    denied.as_ref().map_or_else(|e| e.to_string(), |_| "connected".into())
                ),
                format!(
                    "control, the same socket at 0666: {}",
                    control.as_ref().map_or_else(|e| e.to_string(), |_| "connected".into())
                ),
            ];
            let status = match (&denied, &control) {
                (Err(e), Ok(_)) if e.kind() == std::io::ErrorKind::PermissionDenied => Status::Holds,
                (Ok(_), _) => Status::DoesNotHold,
                _ => Status::Untestable,
            };
            result(rule, status, ev)
        }
        Err(e) => result(rule, Status::Untestable, vec![format!("measurement failed: {e}")]),
    }
}

fn bind_exclusive(scratch: &Scratch) -> RuleResult {
    let path = scratch.path("bind.sock");
    let first = UnixListener::bind(&path);
    let second = UnixListener::bind(&path);
    let ev = vec![
        format!("first bind: {}", first.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())),
        format!(
            "second bind of the same path while the first listens: {}",
            second.as_ref().map_or_else(|e| e.to_string(), |_| "ok".into())
        ),
    ];
    let status = match (&first, &second) {
        (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::AddrInUse => Status::Holds,
        (Ok(_), Ok(_)) => Status::DoesNotHold,
        _ => Status::Untestable,
    };
    result(Rule::UnixBindExclusive, status, ev)
}

fn abstract_per_netns() -> RuleResult {
    let rule = Rule::UnixAbstractPerNetns;
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("ph-probe-{}-{n}-abstract", std::process::id());
    let addr = match SocketAddr::from_abstract_name(name.as_bytes()) {
        Ok(a) => a,
        Err(e) => return result(rule, Status::Untestable, vec![format!("no abstract addresses: {e}")]),
    };
    let _listener = match UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) => return result(rule, Status::Untestable, vec![format!("binding @{name}: {e}")]),
    };
    let control = UnixStream::connect_addr(&addr);
    let other = in_new_netns(|| UnixStream::connect_addr(&addr));
    let mut ev = vec![
        format!(
            "control, same network namespace: {}",
            control.as_ref().map_or_else(|e| e.to_string(), |_| "connected".into())
        ),
        format!(
            "from a fresh network namespace: {}",
            match &other {
                Ok(Ok(_)) => "connected".to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("could not make one: {e}"),
            }
        ),
    ];
    let status = match (&control, &other) {
        (Ok(_), Ok(Err(_))) => Status::Holds,
        (Ok(_), Ok(Ok(_))) => Status::DoesNotHold,
        _ => Status::Untestable,
    };
    if other.is_err() && !is_root() {
        ev.push(needs_root("it cannot make a network namespace (CAP_SYS_ADMIN)"));
    }
    result(rule, status, ev)
}

/// A shell that leaves a `setsid` child behind, started in a cgroup of its own: both must be
/// members, and both gone after the cgroup's kill.
fn cgroup_containment() -> RuleResult {
    let rule = Rule::UnixCgroupContainment;
    let layout = super::cgroup::layout();
    let mut ev = vec![format!("layout: {}", layout.describe())];
    if layout.unusable.is_some() {
        if !is_root() {
            ev.push(needs_root("it cannot make cgroups (unless a cgroup is delegated to it)"));
        }
        return result(rule, Status::Untestable, ev);
    }
    let limits = crate::target::Limits { memory_bytes: Some(64 << 20), processes: Some(16), cgroup: true };
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "setsid sleep 30 & exec sleep 30"]).stdin(std::process::Stdio::null());
    super::creds::tie(&mut cmd);
    let spawned = super::creds::contain(&mut cmd, &limits)
        .and_then(|()| cmd.spawn().map_err(|e| crate::Error::invalid("probe", format!("starting /bin/sh: {e}"))));
    let token = crate::tree::token_in(&cmd).unwrap_or_default();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            super::cgroup::release(&token);
            ev.push(format!("starting a shell in a cgroup: {e}"));
            return result(rule, Status::DoesNotHold, ev);
        }
    };
    let members = || super::cgroup::with(&token, |c| c.members().len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while members() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let joined = members();
    ev.push(format!("a shell and the setsid child it left: {joined} members of its cgroup"));
    let _ = super::cgroup::with(&token, super::cgroup::Cgroup::kill_all);
    let after = members();
    ev.push(format!("after the cgroup's kill: {after} members"));
    super::cgroup::release(&token);
    let _ = child.kill();
    let _ = child.wait();
    let status = if joined >= 2 && after == 0 { Status::Holds } else { Status::DoesNotHold };
    result(rule, status, ev)
}

/// Measures the Unix rules; the Windows rules are not applicable here.
pub fn run() -> ProbeReport {
    let mut results = not_applicable(
        &Rule::WINDOWS,
        &format!(
            "a Windows named-pipe rule; this is {}: run the Windows build (on Windows, or under Wine: ci/run-windows)",
            std::env::consts::OS
        ),
    );
    match Scratch::new() {
        Ok(scratch) => {
            results.push(distinct_identities(&scratch));
            results.push(socket_mode(&scratch));
            results.push(bind_exclusive(&scratch));
        }
        Err(e) => {
            for rule in [Rule::UnixDistinctIdentities, Rule::UnixSocketModeEnforced, Rule::UnixBindExclusive] {
                results.push(result(rule, Status::Untestable, vec![format!("no scratch directory: {e}")]));
            }
        }
    }
    results.push(abstract_per_netns());
    results.push(cgroup_containment());
    let uid = rustix::process::geteuid().as_raw();
    ProbeReport {
        schema_version: 1,
        platform: PlatformInfo {
            os: std::env::consts::OS.to_string(),
            wine_version: None,
            user: Some(format!("uid {uid}")),
            session_id: None,
        },
        results,
    }
}

/// The probe of this machine, measured once per process (the first call runs [`run`]).
pub fn measured() -> &'static ProbeReport {
    static MEASURED: std::sync::OnceLock<ProbeReport> = std::sync::OnceLock::new();
    MEASURED.get_or_init(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_running_at_once_do_not_collide() {
        let reports: Vec<ProbeReport> = std::thread::scope(|s| {
            let a = s.spawn(run);
            let b = s.spawn(run);
            vec![a.join().expect("probe a"), b.join().expect("probe b")]
        });
        for r in reports {
            for rule in [Rule::UnixBindExclusive, Rule::UnixAbstractPerNetns] {
                assert_ne!(r.status(rule), Status::Untestable, "{:?}", r.result(rule));
            }
        }
    }
}
