//! Acting as another identity or from another namespace, on one thread; tying children to the
//! harness; waiting for a process with a deadline.

use crate::error::{Error, OsCode, Result};
use crate::identity::Identity;
use rustix::process::{Gid, Pid, Uid};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

fn os(call: &'static str, context: impl Into<String>, e: rustix::io::Errno) -> Error {
    Error::Os { call, code: OsCode::Errno(e.raw_os_error()), context: context.into() }
}

/// True when the harness runs as root (and can take other identities).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A uid and gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Ids {
    /// The uid and gid of an identity here: a number is taken as it is (the gid defaults to
    /// the uid); an account is looked up in `/etc/passwd` (its primary group) and a group in
    /// `/etc/group`, so an account that exists (a service's, one made with `useradd`) can be
    /// named wherever a uid is taken.
    pub fn resolve(who: &Identity) -> Result<Ids> {
        let bad = |why: String| Error::invalid("identity", format!("{:?}: {why}", who.to_string()));
        match who {
            Identity::Uid { uid, gid } => Ok(Ids { uid: *uid, gid: gid.unwrap_or(*uid) }),
            Identity::Account { name, group: g } => {
                let (uid, primary) = account(name).ok_or_else(|| {
                    bad(format!("no account {name:?} in /etc/passwd (expected UID, UID:GID or an account)"))
                })?;
                let gid = match g {
                    None => primary,
                    Some(g) => match g.parse::<u32>() {
                        Ok(gid) => gid,
                        Err(_) => group(g).ok_or_else(|| bad(format!("no group {g:?} in /etc/group")))?,
                    },
                };
                Ok(Ids { uid, gid })
            }
        }
    }

    /// Parses and resolves `uid`, `uid:gid`, `account` or `account:group`.
    pub fn parse(s: &str) -> Result<Ids> {
        let who: Identity =
            s.parse().map_err(|e: crate::identity::BadIdentity| Error::invalid("identity", e.to_string()))?;
        Ids::resolve(&who)
    }
}

/// The uid and primary gid of account `name` in `/etc/passwd`.
fn account(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
    })
}

/// The name and home of the account with `uid` in `/etc/passwd`, if there is one.
pub fn passwd_entry(uid: u32) -> Option<(String, String)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[5].to_string()))
    })
}

/// The gid of group `name` in `/etc/group`.
fn group(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name).then(|| f[2].parse().ok()).flatten()
    })
}

/// Whether `name` is an account in `/etc/passwd`.
pub fn account_exists(name: &str) -> bool {
    account(name).is_some()
}

/// Checks an account name a plan asks the harness to create: what `useradd` takes on
/// Debian without `--badname` (a lowercase letter or `_` first, then letters, digits, `_`, `-`;
/// at most 32).
pub fn check_account_name(name: &str) -> Result<()> {
    let ok = name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "account name",
            format!("{name:?}: a lowercase letter or '_' first, then a-z, 0-9, '_' or '-', at most 32 characters"),
        ))
    }
}

/// Creates a system account with a group of its own, no home and no login shell
/// (`useradd --system --user-group`). Needs root. `Ok(false)` when it exists already (then it is
/// not the harness's to delete).
pub fn create_account(name: &str) -> Result<bool> {
    check_account_name(name)?;
    if account_exists(name) {
        return Ok(false);
    }
    if !is_root() {
        return Err(Error::Unsupported(format!("creating the account {name:?} needs root")));
    }
    run_tool(
        Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", name]),
        &format!("creating the account {name:?}"),
    )?;
    Ok(true)
}

/// Deletes an account the harness created (`userdel`, which also removes its own group).
pub fn delete_account(name: &str) -> Result<()> {
    check_account_name(name)?;
    if !account_exists(name) {
        return Ok(());
    }
    run_tool(Command::new("userdel").arg(name), &format!("deleting the account {name:?}"))
}

/// Runs an administration tool to its end (at most 30 s), its failure an error with its output.
fn run_tool(cmd: &mut Command, what: &str) -> Result<()> {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Unsupported(format!("{what}: cannot run {:?}: {e}", cmd.get_program())))?;
    let limit = Duration::from_secs(30);
    if !wait_pid_exit(child.id(), limit)? {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Timeout { context: what.to_string(), after: limit });
    }
    let out = child.wait_with_output().map_err(|e| Error::Unsupported(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{what}: {:?} {}: {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `f` on a fresh thread that has dropped to `ids` (no supplementary groups). Needs root.
pub fn as_user<T: Send>(ids: Ids, f: impl FnOnce() -> T + Send) -> Result<T> {
    if !is_root() {
        return Err(Error::Unsupported(format!(
            "acting as uid {} needs root; the harness runs as uid {}",
            ids.uid,
            rustix::process::geteuid().as_raw()
        )));
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            let context = || format!("dropping a thread to uid {} gid {}", ids.uid, ids.gid);
            rustix::thread::set_thread_groups(&[]).map_err(|e| os("setgroups", context(), e))?;
            let gid = Gid::from_raw(ids.gid);
            rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| os("setresgid", context(), e))?;
            let uid = Uid::from_raw(ids.uid);
            rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| os("setresuid", context(), e))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Unsupported("the identity thread panicked".into())))
    })
}

/// Runs `f` on a fresh thread in a new network namespace (another "session" for abstract
/// socket names). Needs `CAP_SYS_ADMIN`.
pub fn in_new_netns<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T> {
            // SAFETY: only the network namespace is unshared (not the file table), and only for
            // this thread, which ends when `f` returns.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }
                .map_err(|e| os("unshare", "entering a new network namespace", e))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Unsupported("the namespace thread panicked".into())))
    })
}

/// Makes a child the harness's: its own process group (so the whole group can be killed),
/// `SIGKILL` when the harness dies (`PR_SET_PDEATHSIG`), and a token of its own in
/// [`TREE_VAR`](crate::tree::TREE_VAR) that every process it starts inherits, so that a
/// descendant that left the group (`setsid`, a double fork) is still found ([`kill_tree`]).
pub fn tie(cmd: &mut Command) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    cmd.env(crate::tree::TREE_VAR, format!("{}.{n}", std::process::id()));
    cmd.process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and makes only an
    // async-signal-safe system call (prctl), touching no memory the parent owns.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// With `limits.cgroup` and a machine that has cgroups, gives a [`tie`]d command a cgroup of
/// its own ([`super::cgroup`]) with the memory and process limits, which the child joins before
/// exec and which [`release_tree_cgroup`] kills and removes (kept under the tree's token);
/// elsewhere nothing (the group and token alone).
pub fn contain(cmd: &mut Command, limits: &crate::target::Limits) -> Result<()> {
    let Some(token) = crate::tree::token_in(cmd) else {
        return Err(Error::invalid("command", "not tied to the harness (no tree token): tie it first"));
    };
    if !limits.cgroup {
        return Ok(());
    }
    let total = super::procfs::total_memory()?;
    // The pid and a nonce of this process's: a cgroup left by a harness that was killed (no
    // cleanup ran) and whose pid came round again does not collide.
    let name = format!("pipe-harness-{}-{:08x}", token.replace('.', "-"), super::cgroup::nonce());
    let Some(cg) = super::cgroup::Cgroup::create(&name, Some(limits.memory_for(total)), Some(limits.processes()))?
    else {
        return Ok(());
    };
    let fds = cg.open_procs()?;
    super::cgroup::hold(&token, cg);
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (write) on descriptors opened before the fork, touching
    // no memory the parent may change.
    unsafe {
        cmd.pre_exec(move || super::cgroup::join_self(&fds));
    }
    Ok(())
}

/// Kills every member of the cgroup of the tree with `token` and removes it (nothing for a
/// tree without one).
pub fn release_tree_cgroup(token: &str) {
    super::cgroup::release(token);
}

/// Runs a child as another identity and under a given umask.
pub fn run_as(cmd: &mut Command, ids: Option<Ids>, umask: Option<u32>) {
    if let Some(ids) = ids {
        // std clears supplementary groups itself when root sets a uid.
        cmd.uid(ids.uid).gid(ids.gid);
    }
    if let Some(m) = umask {
        // SAFETY: the closure runs in the child between fork and exec and makes only an
        // async-signal-safe system call (umask), touching no memory the parent owns.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(m & 0o777));
                Ok(())
            });
        }
    }
}

/// Sends SIGKILL to the process group `pgid` (a child started by [`tie`] leads its
/// own group, so its id is the group's): the child and everything it started that stayed in
/// the group. Then, with the tree's `token`, to every process that still carries it in its
/// environment wherever it went (its own session or group, re-parented to init), and to the
/// groups those lead ([`kill_carriers`]). A process that left the group *and* cleared its
/// environment is not found: only a cgroup would hold it. Processes already gone are not an
/// error.
pub fn kill_tree(pgid: u32, token: Option<&str>) {
    sigkill_with_group(pgid);
    let Some(token) = token else { return };
    kill_carriers(|| super::procfs::processes_with_env(crate::tree::TREE_VAR, token));
}

/// SIGKILL to process `pid` and to the process group it leads, if it leads one.
fn sigkill_with_group(pid: u32) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// Kills what `find` finds (with the groups they lead), in rounds, until it finds nothing new:
/// the processes killed already and still found (dying, not yet zombies, whose environment
/// reads empty) are waited for, at most a second each, instead of being searched for again and
/// again. At most 16 rounds (a process that forks as it is killed).
fn kill_carriers(find: impl Fn() -> Vec<u32>) {
    let me = std::process::id();
    let mut killed = std::collections::BTreeSet::new();
    for _ in 0..16 {
        let left: Vec<u32> = find().into_iter().filter(|p| *p != me).collect();
        let new: Vec<u32> = left.iter().copied().filter(|p| !killed.contains(p)).collect();
        if new.is_empty() {
            for p in left {
                let _ = wait_pid_exit(p, Duration::from_secs(1));
            }
            return;
        }
        for p in new {
            sigkill_with_group(p);
            killed.insert(p);
        }
    }
}

/// Kills every process carrying a tree token that harness process `harness` gave out (its
/// trees, registered or not), in rounds as [`kill_tree`] does.
pub fn kill_tree_tokens_of(harness: u32) {
    let prefix = format!("{harness}.");
    kill_carriers(|| super::procfs::processes_with_env_prefix(crate::tree::TREE_VAR, &prefix));
}

/// The termination signal being handled, once one came (0 before).
pub static ENDING_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Runs `cleanup` and exits with 128 + the signal number when SIGTERM, SIGINT or SIGHUP
/// arrives (caught on a thread of its own, so `cleanup` may lock and allocate freely).
pub fn on_termination(cleanup: fn()) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(|e| Error::Os {
        call: "sigaction",
        code: OsCode::Errno(e.raw_os_error().unwrap_or(0)),
        context: "catching SIGTERM, SIGINT and SIGHUP".into(),
    })?;
    std::thread::Builder::new()
        .name("pipe-harness-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                ENDING_SIGNAL.store(signal, std::sync::atomic::Ordering::SeqCst);
                cleanup();
                std::process::exit(128 + signal);
            }
        })
        .map_err(|e| Error::Peer(format!("starting the signal thread: {e}")))?;
    Ok(())
}

/// Waits at most `timeout` for process `pid` to exit (a pidfd, polled); `true` once it has or
/// when it no longer exists.
pub fn wait_pid_exit(pid: u32, timeout: Duration) -> Result<bool> {
    let Some(p) = Pid::from_raw(pid as i32) else { return Ok(true) };
    let fd = match rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(true),
        Err(e) => return Err(os("pidfd_open", format!("watching process {pid}"), e)),
    };
    let ts = rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
    let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
    let n =
        rustix::event::poll(&mut fds, Some(&ts)).map_err(|e| os("poll", format!("waiting for process {pid}"), e))?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_with_a_clear_error() {
        assert_eq!(Ids::parse("61000").ok(), Some(Ids { uid: 61000, gid: 61000 }));
        assert_eq!(Ids::parse("61000:100").ok(), Some(Ids { uid: 61000, gid: 100 }));
        let e = Ids::parse("no-such-account-here").expect_err("not a uid").to_string();
        assert!(e.contains("expected UID") && e.contains("no account"), "{e}");
        // Accounts every Debian system has: root (0:0) and nobody (65534:65534), group nogroup.
        assert_eq!(Ids::parse("root").ok(), Some(Ids { uid: 0, gid: 0 }));
        assert_eq!(Ids::parse("nobody:nogroup").ok(), Some(Ids { uid: 65534, gid: 65534 }));
        assert!(Ids::parse("nobody:no-such-group").is_err());
    }

    #[test]
    fn a_thread_acts_as_another_uid_and_the_rest_of_the_process_stays_root() {
        if !is_root() {
            assert!(
                as_user(Ids { uid: 61000, gid: 61000 }, || ()).is_err(),
                "without root it must refuse, not pretend"
            );
            return;
        }
        let seen = as_user(Ids { uid: 61000, gid: 61001 }, || {
            (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw())
        })
        .expect("as user");
        assert_eq!(seen, (61000, 61001));
        assert!(is_root(), "the harness's own thread is still root");
    }
}
