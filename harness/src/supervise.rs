//! Supervision: whatever the servers under test do, and however the harness ends, nothing of
//! a run is left behind.
//!
//! Every process the harness starts is tied to it by the platform (Windows: a kill-on-close job
//! object, so the processes die when the harness's last handle to the job closes, which happens
//! however the harness ends, and one job of its own nested in it; Linux: its own process
//! group, `PR_SET_PDEATHSIG` and a [`TREE_VAR`] token its descendants inherit). On top of that,
//! this module keeps a registry of the live process trees and scratch folders of the run:
//!
//! - a [`ServerUnderTest`](crate::engine::ServerUnderTest) leaving scope (normal end, panic,
//!   timeout) kills its whole tree, grandchildren included ([`kill_tree`]), not just its child,
//!   and also a descendant that left the tree (its own session or group, re-parented away);
//! - processes start through [`spawn_registered`], which takes turns with the signal cleanup;
//! - on Linux, SIGTERM, SIGINT and SIGHUP are caught (by a thread, once the first server starts:
//!   [`install_signal_cleanup`]); every registered tree is killed, every registered folder
//!   removed, and the process exits with 128 + the signal number, as a shell would report it.
//!   (`PR_SET_PDEATHSIG` alone kills only direct children, and only when the thread that started
//!   them ends.)
//!
//! [`snapshot`] counts what the harness holds (descriptors or handles, resident memory, living
//! children): the fault-injection tests and the soak benchmark compare it before and after.

use crate::error::Result;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub use crate::tree::{live_trees, register_folder, register_tree, release_folder, TREE_VAR};

/// Kills the tree rooted at `pid` and forgets it.
pub fn release_tree(pid: u32) {
    let token = crate::tree::forget_tree(pid);
    kill(pid, token.as_deref());
    #[cfg(unix)]
    if let Some(t) = &token {
        crate::unix::creds::release_tree_cgroup(t);
    }
}

/// How many times the memory limit's OOM killer killed a process of the tree rooted at `pid`
/// (Linux: its cgroup's `oom_kill` count; Windows: 1 when its job's peak memory reached the
/// limit), and the limit in bytes; `None` where the tree has no memory limit.
pub fn memory_limit_hits(pid: u32) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let token = crate::tree::token_of(pid)?;
        crate::unix::cgroup::with(&token, |c| c.memory_limit.map(|l| (c.oom_kills(), l))).flatten()
    }
    #[cfg(windows)]
    {
        crate::windows::process::memory_limit_hits(pid)
    }
}

/// The process limit of the tree rooted at `pid` as its cgroup counts it (Linux): (times a
/// fork or clone failed at the limit, tasks now, the limit); `None` without a process limit.
pub fn process_limit_hits(pid: u32) -> Option<(u64, u64, u64)> {
    #[cfg(unix)]
    {
        let token = crate::tree::token_of(pid)?;
        crate::unix::cgroup::with(&token, |c| Some((c.process_limit_hits(), c.tasks()?, c.process_limit?))).flatten()
    }
    #[cfg(windows)]
    {
        let _ = pid;
        None
    }
}

/// Cgroups the harness's registry holds now (Linux; 0 elsewhere).
pub fn cgroups_held() -> usize {
    #[cfg(unix)]
    {
        crate::unix::cgroup::held()
    }
    #[cfg(windows)]
    {
        0
    }
}

/// How the servers under test are contained on this machine, in a line (Linux: the cgroup
/// hierarchies used, or why none is; Windows: job objects).
pub fn containment() -> String {
    #[cfg(unix)]
    {
        crate::unix::cgroup::layout().describe()
    }
    #[cfg(windows)]
    {
        "job objects: kill on close, with the memory and process limits of each server's own job".into()
    }
}

/// Whether the servers under test are in cgroups here (Linux); `false` on Windows (job
/// objects contain them there).
pub fn has_cgroups() -> bool {
    #[cfg(unix)]
    {
        crate::unix::cgroup::layout().unusable.is_none()
    }
    #[cfg(windows)]
    {
        false
    }
}

/// Set once the harness is ending (a termination signal): no process starts after that.
static ENDING: Mutex<bool> = Mutex::new(false);
/// Whether the harness is ending: a termination signal's cleanup has begun.
pub fn is_ending() -> bool {
    *lock(&ENDING)
}

/// The termination signal the harness is ending on (`SIGINT`, `SIGTERM`, `SIGHUP`), once one
/// came (Linux; `None` elsewhere and before).
pub fn ending_signal() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        match crate::unix::creds::ENDING_SIGNAL.load(std::sync::atomic::Ordering::SeqCst) {
            SIGINT => Some("SIGINT"),
            SIGTERM => Some("SIGTERM"),
            SIGHUP => Some("SIGHUP"),
            _ => None,
        }
    }
    #[cfg(not(unix))]
    None
}

/// Held for the whole of [`cleanup_now`].
static CLEANING: Mutex<()> = Mutex::new(());

/// Call before the process ends on its own: when a termination signal's cleanup is under way,
/// waits for it to finish (services put back, accounts deleted) and for the signal thread to
/// end the process with 128 + the signal, at most 60 s; else returns at once. Without it, a
/// main thread that finishes during the cleanup ends the process half-way through it.
pub fn settle() {
    if !*lock(&ENDING) {
        return;
    }
    drop(lock(&CLEANING));
    // The signal thread exits the process right after the cleanup.
    std::thread::sleep(std::time::Duration::from_secs(60));
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `cmd` (Linux: in a cgroup of its own with `limits`, where the machine has cgroups)
/// and registers its tree ([`register_tree`]), one start at a time with
/// [`cleanup_now`], so that no process slips in between a cleanup and the harness's exit.
/// Once the harness is ending (the signal thread exits the process right after its cleanup),
/// starts nothing: it waits for that exit, so that the caller cannot end the process first
/// with another status, and gives up with an error after 30 s.
pub fn spawn_registered(cmd: &mut Command, limits: &crate::target::Limits) -> std::io::Result<std::process::Child> {
    let ending = lock(&ENDING);
    if *ending {
        drop(ending);
        std::thread::sleep(std::time::Duration::from_secs(30));
        return Err(std::io::Error::other("the harness is ending (a termination signal): no new process"));
    }
    // Its cgroup is made here, in turn with the cleanup, so that none is made after it.
    #[cfg(unix)]
    crate::unix::creds::contain(cmd, limits).map_err(std::io::Error::other)?;
    #[cfg(windows)]
    let _ = limits;
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            // A cgroup made for it by `tie` goes with it.
            #[cfg(unix)]
            if let Some(token) = crate::tree::token_in(cmd) {
                crate::unix::creds::release_tree_cgroup(&token);
            }
            return Err(e);
        }
    };
    register_tree(child.id(), cmd);
    drop(ending);
    Ok(child)
}

/// Kills every registered tree and removes every registered folder; no process starts
/// afterwards ([`spawn_registered`]). On Linux, also every process carrying a tree token of
/// this harness, registered or not.
pub fn cleanup_now() {
    let _whole = lock(&CLEANING);
    let mut ending = lock(&ENDING);
    *ending = true;
    for (pid, token) in crate::tree::take_trees() {
        kill(pid, token.as_deref());
    }
    #[cfg(unix)]
    crate::unix::creds::kill_tree_tokens_of(std::process::id());
    #[cfg(unix)]
    crate::unix::cgroup::release_all();
    drop(ending);
    // Managed services back as they were found (their managers start and stop them, not
    // this process: no process of this harness's is needed for that after `ENDING`).
    for restore in crate::tree::take_cleanups() {
        restore();
    }
    for dir in crate::tree::take_folders() {
        let _ = std::fs::remove_dir_all(dir);
    }
    #[cfg(unix)]
    for name in crate::tree::take_accounts() {
        let _ = crate::unix::creds::delete_account(&name);
    }
}

/// Accounts the harness made for a run (a plan's `create_accounts`): each one missing is
/// created (Linux: a system account with a group of its own, no home, no login shell) and
/// deleted when the last holder drops this, or by the signal cleanup; an account that existed
/// before is used as it is and left alone.
#[derive(Debug, Default)]
pub struct TestAccounts {
    held: Vec<String>,
}

impl TestAccounts {
    /// Makes sure every account in `names` exists. An account this cannot create is an error
    /// naming it (and the accounts made before it are deleted again).
    pub fn create(names: &[String]) -> Result<TestAccounts> {
        // One creation at a time in this process: two audits asking for the same account must
        // not both run useradd.
        static CREATING: Mutex<()> = Mutex::new(());
        let _turn = lock(&CREATING);
        #[cfg(windows)]
        if let Some(name) = names.first() {
            return Err(crate::Error::Unsupported(format!(
                "creating the local account {name:?}: not built for Windows yet (create it before the run)"
            )));
        }
        #[cfg_attr(windows, allow(unused_mut))]
        let mut accounts = TestAccounts::default();
        #[cfg(unix)]
        for name in names {
            let created = crate::unix::creds::create_account(name)?;
            if crate::tree::hold_account(name, created) {
                accounts.held.push(name.clone());
            }
        }
        Ok(accounts)
    }

    /// The accounts this run holds (created by it), in order.
    pub fn held(&self) -> &[String] {
        &self.held
    }
}

impl Drop for TestAccounts {
    fn drop(&mut self) {
        for name in &self.held {
            if crate::tree::let_go_account(name) {
                #[cfg(unix)]
                let _ = crate::unix::creds::delete_account(name);
            }
        }
    }
}

/// Kills the process `pid` and every process it started (Linux: the process group the harness
/// gave it and, for a registered tree, every process carrying its [`TREE_VAR`] token;
/// Windows: the job of its own that the backend made for it, then its descendants in the
/// harness's job).
pub fn kill_tree(pid: u32) {
    let token = crate::tree::token_of(pid);
    kill(pid, token.as_deref());
}

fn kill(pid: u32, token: Option<&str>) {
    #[cfg(unix)]
    {
        if let Some(t) = token {
            let _ = crate::unix::cgroup::with(t, crate::unix::cgroup::Cgroup::kill_all);
        }
        crate::unix::creds::kill_tree(pid, token);
    }
    #[cfg(windows)]
    {
        let _ = token;
        crate::windows::process::kill_tree(pid);
    }
}

/// Ties a command to the harness before it is spawned: Linux, its own process group,
/// `PR_SET_PDEATHSIG` and a [`TREE_VAR`] token; Windows, started suspended, so that it cannot
/// start anything before [`adopt`] has put it in a job of the harness's.
pub fn tie(cmd: &mut Command) {
    #[cfg(unix)]
    crate::unix::creds::tie(cmd);
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        cmd.creation_flags(windows::Win32::System::Threading::CREATE_SUSPENDED.0);
    }
}

/// Puts a process started from a [`tie`]d command under supervision: Windows, a kill-on-close
/// job of its own nested in the harness's, then lets it run; Linux, nothing more (tied at
/// spawn time).
pub fn adopt(pid: u32, limits: &crate::target::Limits) -> Result<()> {
    #[cfg(windows)]
    {
        crate::windows::process::adopt(pid, limits)?;
        crate::windows::process::resume(pid)
    }
    #[cfg(unix)]
    {
        let _ = (pid, limits);
        Ok(())
    }
}

/// Waits at most `timeout` for process `pid` to exit; `true` once it has (or is gone).
pub fn wait_exit(pid: u32, timeout: std::time::Duration) -> Result<bool> {
    #[cfg(unix)]
    {
        crate::unix::creds::wait_pid_exit(pid, timeout)
    }
    #[cfg(windows)]
    {
        crate::windows::process::wait_for_pid_exit(pid, timeout)
    }
}

/// [`wait_exit`], an error counting as "not yet".
pub fn wait_gone(pid: u32, timeout: std::time::Duration) -> bool {
    wait_exit(pid, timeout).unwrap_or(false)
}

/// The resident memory of process `pid`, in KiB (the live fuzzer's memory watch).
pub fn resident_kib(pid: u32) -> Result<u64> {
    #[cfg(unix)]
    {
        crate::unix::procfs::resident_kib(pid)
    }
    #[cfg(windows)]
    {
        crate::windows::process::resident_kib(pid)
    }
}

/// Waits, at most `timeout`, until process `pid` has nothing more to do: on Linux, until every
/// one of its threads is asleep (blocked in `accept`, `read`, `poll`...: back waiting for
/// input), or it is gone. `false` when the time ran out first. The live fuzzer reads a case's
/// coverage only then, so what a case reached does not depend on how busy the machine is. On
/// Windows this returns `true` at once (not measured there: the coverage is read after the
/// case's replies or hang-up, as before).
pub fn wait_until_idle(pid: u32, timeout: std::time::Duration) -> bool {
    #[cfg(unix)]
    {
        let deadline = std::time::Instant::now() + timeout;
        let mut pause = std::time::Duration::from_micros(20);
        loop {
            if crate::unix::procfs::all_threads_asleep(pid) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(2));
        }
    }
    #[cfg(windows)]
    {
        let _ = (pid, timeout);
        true
    }
}

/// On Linux, catches SIGTERM, SIGINT and SIGHUP on a thread of their own: cleanup, then exit
/// with 128 + the signal. Idempotent. On Windows the job object already covers every way the
/// harness can end, so this does nothing.
pub fn install_signal_cleanup() -> Result<()> {
    #[cfg(unix)]
    {
        static INSTALLED: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
        INSTALLED
            .get_or_init(|| crate::unix::creds::on_termination(cleanup_now).map_err(|e| e.to_string()))
            .clone()
            .map_err(crate::Error::Unsupported)
    }
    #[cfg(not(unix))]
    Ok(())
}

/// What the harness process holds at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    /// Open file descriptors (Linux) or handles (Windows); `None` where the platform does not
    /// count them (Wine 8.0's `GetProcessHandleCount` reports 0, which no live process has).
    pub handles: Option<usize>,
    /// Resident memory, KiB.
    pub resident_kib: u64,
    /// Living child processes (descendants on Linux).
    pub children: usize,
    /// Cgroup directories of this process's trees (Linux; 0 elsewhere).
    pub cgroups: usize,
}

/// Counts what this process holds now.
pub fn snapshot() -> Result<Snapshot> {
    let me = std::process::id();
    #[cfg(unix)]
    {
        use crate::unix::procfs;
        Ok(Snapshot {
            handles: Some(procfs::open_fds(me)?),
            resident_kib: procfs::resident_kib(me)?,
            children: procfs::descendants(me).len(),
            cgroups: crate::unix::cgroup::on_disk(),
        })
    }
    #[cfg(windows)]
    {
        use crate::windows::process;
        Ok(Snapshot {
            handles: Some(process::own_handle_count()?).filter(|n| *n > 0),
            resident_kib: process::resident_kib(me)?,
            children: process::descendants(me)?.len(),
            cgroups: 0,
        })
    }
}
