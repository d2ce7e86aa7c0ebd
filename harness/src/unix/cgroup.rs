//! Control groups for the servers under test (Linux): each process tree the harness starts
//! lives in a cgroup of its own, made for it and removed after it, so tearing it down kills
//! every member whatever it did (`setsid`, a cleared environment, a double fork), and its
//! memory and process count are bounded.
//!
//! What is there is detected, not assumed ([`Layout`]): the cgroup v2 hierarchy (from
//! `/proc/self/mountinfo`, at the harness's own cgroup from `/proc/self/cgroup`), with
//! `cgroup.kill` where the kernel has it (5.14) or `cgroup.freeze`, and its `memory` and `pids`
//! controllers when they can be enabled below the harness's cgroup; else the cgroup v1
//! hierarchies of those controllers (and `freezer` to stop a tree before killing it). A machine
//! with systemd's default layout uses v2 for everything; a machine like this project's (v2
//! without controllers, v1 `memory`, `pids`, `freezer`) combines them.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// The hierarchies this machine offers the harness, below its own cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// The harness's own cgroup in the v2 hierarchy, when it may make children there.
    pub v2: Option<PathBuf>,
    /// Whether v2 cgroups have `cgroup.kill`.
    pub v2_kill: bool,
    /// v2 controllers the harness's children may use (`memory`, `pids`).
    pub v2_controllers: Vec<String>,
    /// v1 hierarchies by controller (`memory`, `pids`, `freezer`): the harness's own cgroup in
    /// each, when it may make children there.
    pub v1: BTreeMap<String, PathBuf>,
    /// Why nothing is usable, when nothing is.
    pub unusable: Option<String>,
}

impl Layout {
    /// Where each job is done, in a line: `cgroup v2 /sys/fs/cgroup/x (cgroup.kill); memory:
    /// v1 /sys/fs/cgroup/memory/y; pids: v1 ...`, or why there are no cgroups.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.unusable {
            return format!("no cgroups ({why}): process groups and inherited tokens only");
        }
        let mut parts = Vec::new();
        if let Some(v2) = &self.v2 {
            parts.push(format!(
                "cgroup v2 {} ({})",
                v2.display(),
                if self.v2_kill { "cgroup.kill" } else { "cgroup.freeze, then SIGKILL" }
            ));
        } else if let Some(f) = self.v1.get("freezer") {
            parts.push(format!("cgroup v1 freezer {}", f.display()));
        }
        for c in ["memory", "pids"] {
            if self.v2_controllers.iter().any(|x| x == c) {
                parts.push(format!("{c}: v2"));
            } else if let Some(d) = self.v1.get(c) {
                parts.push(format!("{c}: v1 {}", d.display()));
            } else {
                parts.push(format!("{c}: no controller (its limit is not applied)"));
            }
        }
        parts.join("; ")
    }

    /// Whether `limit` can be applied here (`memory` or `pids`).
    pub fn has(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|x| x == controller) || self.v1.contains_key(controller)
    }
}

/// Fields of `/proc/self/mountinfo` lines: (mount point, filesystem type, super options).
fn mounts(text: &str) -> Vec<(PathBuf, String, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let _source = r.next();
            let opts = r.next().unwrap_or("").to_string();
            // Octal escapes (\040 for a space) in the mount point.
            Some((PathBuf::from(point.replace("\\040", " ")), fstype, opts))
        })
        .collect()
}

/// Reads the layout from the kernel's files: `mountinfo`, `cgroup` (this process's cgroups)
/// and the v2 controllers, trying what the harness may write (it makes and removes a probe
/// cgroup in each place).
pub fn detect(mountinfo: &str, own: &str) -> Layout {
    let mut layout = Layout::default();
    let own_paths: BTreeMap<String, String> = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect();
    for (point, fstype, opts) in mounts(mountinfo) {
        if fstype == "cgroup2" && layout.v2.is_none() {
            let Some(path) = own_paths.get("") else { continue };
            let dir = point.join(path.trim_start_matches('/'));
            if let Some(probe) = writable(&dir) {
                // The root cgroup has no cgroup.kill: a child (the probe) tells.
                layout.v2_kill = probe.kill;
                layout.v2_controllers = enable_v2_controllers(&dir);
                layout.v2 = Some(dir);
            }
        } else if fstype == "cgroup" {
            for ctl in ["memory", "pids", "freezer"] {
                if !opts.split(',').any(|o| o == ctl) || layout.v1.contains_key(ctl) {
                    continue;
                }
                // /proc/self/cgroup names a v1 hierarchy by its controllers, comma-joined.
                let Some(path) = own_paths.iter().find(|(k, _)| k.split(',').any(|c| c == ctl)).map(|(_, p)| p) else {
                    continue;
                };
                let dir = point.join(path.trim_start_matches('/'));
                if writable(&dir).is_some() {
                    layout.v1.insert(ctl.to_string(), dir);
                }
            }
        }
    }
    if layout.v2.is_none() && layout.v1.is_empty() {
        layout.unusable =
            Some("no cgroup hierarchy this process may make cgroups in (not root, or none mounted)".into());
    }
    layout
}

/// What a probe child cgroup showed.
struct Probe {
    /// It had `cgroup.kill` (v2, kernel 5.14 and later).
    kill: bool,
}

/// Whether a child cgroup can be made in `dir` (made, looked at and removed at once).
fn writable(dir: &Path) -> Option<Probe> {
    let probe = dir.join(format!("pipe-harness-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let seen = Probe { kill: probe.join("cgroup.kill").exists() };
    let _ = std::fs::remove_dir(&probe);
    Some(seen)
}

/// The v2 controllers of `memory` and `pids` that children of `dir` may use: enabled in its
/// `cgroup.subtree_control` already, or enabled now (which v2 refuses when `dir` holds
/// processes and is not the root: then the v1 controllers, if any, are used instead).
fn enable_v2_controllers(dir: &Path) -> Vec<String> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let mut usable = Vec::new();
    for c in ["memory", "pids"] {
        if !available.split_whitespace().any(|a| a == c) {
            continue;
        }
        let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if enabled.split_whitespace().any(|a| a == c)
            || std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")).is_ok()
        {
            usable.push(c.to_string());
        }
    }
    usable
}

/// This machine's layout, detected once per process; the cgroups of harnesses that died without
/// their cleanup (SIGKILL) are removed then ([`sweep`]).
pub fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let layout = detect(&mountinfo, &own);
        sweep(&layout);
        layout
    })
}

/// A number of this process's for its cgroups' names (with the pid: unique even when a dead
/// harness's pid is reused).
pub fn nonce() -> u32 {
    static NONCE: OnceLock<u32> = OnceLock::new();
    *NONCE.get_or_init(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(16) ^ std::process::id()
    })
}

/// The harness pid in a cgroup name of ours: `pipe-harness-PID-...` (a tree's) or
/// `pipe-harness-probe-PID` (the layout probe's).
fn owner_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("pipe-harness-")?;
    rest.strip_prefix("probe-").unwrap_or(rest).split('-').next()?.parse().ok()
}

/// Removes the empty cgroups that harnesses which are gone left behind (a harness ended by
/// SIGKILL runs no cleanup): named for a pid that no longer runs, no member, and made a minute
/// ago or more. Conservative on purpose: a hierarchy may be shared with other pid namespaces,
/// whose harnesses this process cannot see, so nothing with a member is touched and nothing is
/// killed (names carry a nonce, so a leftover never collides with a new cgroup anyway).
fn sweep(layout: &Layout) {
    let me = std::process::id();
    for dir in layout.v2.iter().chain(layout.v1.values()) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = owner_of(&name) else { continue };
            if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = e.path();
            let old = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            let empty = std::fs::read_to_string(path.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty());
            if empty && old.is_some_and(|a| a >= Duration::from_secs(60)) {
                let _ = std::fs::remove_dir(&path);
            }
        }
    }
}

/// How a cgroup's members are killed.
#[derive(Debug)]
enum KillVia {
    /// v2 `cgroup.kill`: the kernel kills every member, forking or not.
    KillFile(PathBuf),
    /// v2 `cgroup.freeze`, SIGKILL to every member, thaw.
    V2Freeze(PathBuf),
    /// v1 `freezer.state`, SIGKILL to every member, thaw.
    V1Freezer(PathBuf),
    /// SIGKILL to every member, in rounds (a memory or pids cgroup without a freezer).
    Signals(PathBuf),
}

impl KillVia {
    fn dir(&self) -> &Path {
        match self {
            KillVia::KillFile(d) | KillVia::V2Freeze(d) | KillVia::V1Freezer(d) | KillVia::Signals(d) => d,
        }
    }
}

/// What [`Cgroup::create`] made: how it kills, where memory and processes are counted.
type Built = (KillVia, Option<(PathBuf, bool)>, Option<PathBuf>);

/// One tree's cgroups (one per hierarchy it uses): made by [`Cgroup::create`], every member
/// killed and every directory removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    kill: KillVia,
    /// Where its memory is accounted: (dir, v2?).
    memory: Option<(PathBuf, bool)>,
    /// Where its processes are counted (`pids.max`, `pids.events`).
    pids: Option<PathBuf>,
    /// `cgroup.procs` of every directory, for the child to write itself into before exec.
    procs: Vec<PathBuf>,
    /// The memory limit applied, bytes (`None`: no memory controller here).
    pub memory_limit: Option<u64>,
    /// The process limit applied (`None`: no pids controller here).
    pub process_limit: Option<u64>,
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| Error::invalid("cgroup", format!("writing {value:?} to {}: {e}", path.display())))
}

impl Cgroup {
    /// Makes the cgroups of a new tree named `name`, with at most `memory` bytes and
    /// `processes` tasks (a limit whose controller this machine lacks is not applied:
    /// [`Layout::has`]). `None` where there are no cgroups.
    pub fn create(name: &str, memory: Option<u64>, processes: Option<u64>) -> Result<Option<Cgroup>> {
        let layout = layout();
        if layout.unusable.is_some() {
            return Ok(None);
        }
        let mut made: Vec<PathBuf> = Vec::new();
        let mut mkdir = |parent: &Path| -> Result<PathBuf> {
            let dir = parent.join(name);
            std::fs::create_dir(&dir)
                .map_err(|e| Error::invalid("cgroup", format!("creating {}: {e}", dir.display())))?;
            made.push(dir.clone());
            Ok(dir)
        };
        let built = (|| -> Result<Built> {
            let v2 = layout.v2.as_deref().map(&mut mkdir).transpose()?;
            let on_v2 = |c: &str| v2.is_some() && layout.v2_controllers.iter().any(|x| x == c);
            let memory = match (memory, on_v2("memory")) {
                (Some(bytes), true) => {
                    let d = v2.clone().unwrap_or_default();
                    write(&d.join("memory.max"), &bytes.to_string())?;
                    // No swap to spill into: the limit is the limit.
                    let _ = write(&d.join("memory.swap.max"), "0");
                    Some((d, true))
                }
                (Some(bytes), false) => match layout.v1.get("memory") {
                    Some(parent) => {
                        let d = mkdir(parent)?;
                        write(&d.join("memory.limit_in_bytes"), &bytes.to_string())?;
                        let _ = write(&d.join("memory.memsw.limit_in_bytes"), &bytes.to_string());
                        Some((d, false))
                    }
                    None => None,
                },
                (None, _) => None,
            };
            let mut pids_dir = None;
            match (processes, on_v2("pids")) {
                (Some(n), true) => {
                    let d = v2.clone().unwrap_or_default();
                    write(&d.join("pids.max"), &n.to_string())?;
                    pids_dir = Some(d);
                }
                (Some(n), false) => {
                    if let Some(parent) = layout.v1.get("pids") {
                        let d = mkdir(parent)?;
                        write(&d.join("pids.max"), &n.to_string())?;
                        pids_dir = Some(d);
                    }
                }
                (None, _) => {}
            }
            let first_v1 = memory.as_ref().map(|(d, _)| d.clone()).or(pids_dir.clone());
            let kill = match (v2, layout.v1.get("freezer")) {
                (Some(d), _) if layout.v2_kill => KillVia::KillFile(d),
                (Some(d), _) => KillVia::V2Freeze(d),
                (None, Some(parent)) => KillVia::V1Freezer(mkdir(parent)?),
                (None, None) => match first_v1 {
                    Some(d) => KillVia::Signals(d),
                    None => match layout.v1.values().next() {
                        Some(parent) => KillVia::Signals(mkdir(parent)?),
                        None => return Err(Error::invalid("cgroup", "no hierarchy to make a cgroup in")),
                    },
                },
            };
            Ok((kill, memory, pids_dir))
        })();
        let (kill, accounted, pids) = match built {
            Ok(b) => b,
            Err(e) => {
                for d in made.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
                return Err(e);
            }
        };
        let procs = made.iter().map(|d| d.join("cgroup.procs")).collect();
        let memory_limit = memory.filter(|_| layout.has("memory"));
        let process_limit = processes.filter(|_| layout.has("pids"));
        Ok(Some(Cgroup { dirs: made, kill, memory: accounted, pids, procs, memory_limit, process_limit }))
    }

    /// Opens its `cgroup.procs` files for writing (close-on-exec), for a child to write itself
    /// into between fork and exec ([`join_self`]). Opened here, by the harness: the kernel
    /// checks a migration against the credentials the file was opened with, so a child that
    /// already dropped to another uid (`run_as`) may still move itself.
    pub fn open_procs(&self) -> Result<Vec<rustix::fd::OwnedFd>> {
        self.procs
            .iter()
            .map(|p| {
                rustix::fs::open(p, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())
                    .map_err(|e| Error::invalid("cgroup", format!("opening {}: {e}", p.display())))
            })
            .collect()
    }

    /// Its members now (the processes of the cgroup that kills).
    pub fn members(&self) -> Vec<u32> {
        std::fs::read_to_string(self.kill.dir().join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// How many times the kernel's OOM killer killed a member for the memory limit.
    pub fn oom_kills(&self) -> u64 {
        let Some((dir, v2)) = &self.memory else { return 0 };
        let file = if *v2 { "memory.events" } else { "memory.oom_control" };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// How many times a fork or clone failed at the process limit (`pids.events`' `max`).
    pub fn process_limit_hits(&self) -> u64 {
        let Some(dir) = &self.pids else { return 0 };
        std::fs::read_to_string(dir.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Its tasks now (processes and threads: `pids.current`), where a pids cgroup counts them.
    pub fn tasks(&self) -> Option<u64> {
        std::fs::read_to_string(self.pids.as_ref()?.join("pids.current")).ok()?.trim().parse().ok()
    }

    /// The most memory its members used together, in bytes, where the kernel keeps it.
    pub fn peak_memory(&self) -> Option<u64> {
        let (dir, v2) = self.memory.as_ref()?;
        let file = if *v2 { "memory.peak" } else { "memory.max_usage_in_bytes" };
        std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// Kills every member and waits (at most 10 s) until none is left.
    pub fn kill_all(&self) {
        let sigkill_members = || {
            for pid in self.members() {
                if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        };
        match &self.kill {
            KillVia::KillFile(d) => {
                let _ = std::fs::write(d.join("cgroup.kill"), "1");
            }
            KillVia::V2Freeze(d) => {
                let _ = std::fs::write(d.join("cgroup.freeze"), "1");
                sigkill_members();
                let _ = std::fs::write(d.join("cgroup.freeze"), "0");
            }
            KillVia::V1Freezer(d) => {
                let _ = std::fs::write(d.join("freezer.state"), "FROZEN");
                sigkill_members();
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
            }
            KillVia::Signals(_) => sigkill_members(),
        }
        // The members are dying; a fork that slipped past a freezer-less kill is killed in a
        // later round. The member list, not v2's `cgroup.events`: a killed child of the harness
        // leaves `cgroup.procs` when it exits but keeps the cgroup populated until the harness
        // reaps it, after this returns (waiting on `populated 0` made the soak 7 times slower,
        // 49 rounds/s against 349, measured 2026-12-02).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.members().is_empty() && Instant::now() < deadline {
            sigkill_members();
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for d in self.dirs.iter().rev() {
            // Removable once empty; the kernel may take a moment after the last exit.
            let deadline = Instant::now() + Duration::from_secs(2);
            while std::fs::remove_dir(d).is_err() && d.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Writes the calling process into each of `procs` (open `cgroup.procs` files): called in the
/// child between fork and exec, so the tree is inside its cgroups before it runs a line of its
/// own. One async-signal-safe call per file (write); the files close at exec.
pub fn join_self(procs: &[rustix::fd::OwnedFd]) -> std::io::Result<()> {
    for fd in procs {
        rustix::io::write(fd, b"0")?;
    }
    Ok(())
}

/// Cgroups of the live trees, by tree token: the tree's [`Cgroup`] is dropped (its members
/// killed, its directories removed) when the tree is released or by the signal cleanup.
static LIVE: Mutex<BTreeMap<String, Cgroup>> = Mutex::new(BTreeMap::new());

fn live() -> std::sync::MutexGuard<'static, BTreeMap<String, Cgroup>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `cgroup` for the tree with `token`.
pub fn hold(token: &str, cgroup: Cgroup) {
    live().insert(token.to_string(), cgroup);
}

/// Kills and removes the cgroup of the tree with `token`, if it has one.
pub fn release(token: &str) {
    let taken = live().remove(token);
    drop(taken);
}

/// Kills and removes every cgroup of the run.
pub fn release_all() {
    let all = std::mem::take(&mut *live());
    drop(all);
}

/// What `f` says about the cgroup of the tree with `token`.
pub fn with<T>(token: &str, f: impl FnOnce(&Cgroup) -> T) -> Option<T> {
    live().get(token).map(f)
}

/// Cgroups the harness holds now.
pub fn held() -> usize {
    live().len()
}

/// Cgroup directories of this process's trees on disk now, in every hierarchy it uses (what a
/// leak would leave behind even if the registry forgot it).
pub fn on_disk() -> usize {
    let l = layout();
    let prefix = format!("pipe-harness-{}-", std::process::id());
    l.v2.iter()
        .chain(l.v1.values())
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "\
25 1 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
30 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn mountinfo_lines_give_mount_points_and_types() {
        let m = mounts(MIXED);
        assert_eq!(m[1], (PathBuf::from("/sys/fs/cgroup/memory"), "cgroup".into(), "rw,memory".into()));
        assert_eq!(m[3].1, "cgroup2");
        assert_eq!(m[4].2, "rw,cpu,cpuacct");
    }

    /// systemd's default layout, pure cgroup v2 with its controllers, mocked in a scratch
    /// directory (a plain directory takes the probe's mkdir as cgroupfs does): v2 does
    /// everything and no v1 hierarchy is used.
    #[test]
    fn pure_v2_with_controllers_uses_v2_for_everything() {
        let scratch = tempfile::Builder::new().prefix("ph-cgroup-mock-").tempdir().expect("mock");
        let root = scratch.path();
        let own = root.join("system.slice/svc.service");
        std::fs::create_dir_all(&own).expect("mock");
        std::fs::write(own.join("cgroup.controllers"), "cpuset cpu io memory pids\n").expect("mock");
        std::fs::write(own.join("cgroup.subtree_control"), "memory pids\n").expect("mock");
        let mountinfo = format!("35 24 0:30 / {} rw - cgroup2 cgroup2 rw\n", root.display());
        let l = detect(&mountinfo, "0::/system.slice/svc.service\n");
        drop(scratch);
        assert_eq!(l.v2.as_deref(), Some(own.as_path()));
        assert_eq!(l.v2_controllers, ["memory", "pids"]);
        assert!(l.v1.is_empty(), "{l:?}");
        assert!(l.describe().contains("memory: v2; pids: v2"), "{}", l.describe());
    }

    #[test]
    fn our_cgroups_name_their_harness() {
        assert_eq!(owner_of("pipe-harness-7017-3"), Some(7017));
        assert_eq!(owner_of("pipe-harness-7017-1a2b3c4d-3"), Some(7017));
        assert_eq!(owner_of("pipe-harness-probe-7017"), Some(7017));
        assert_eq!(owner_of("pipe-harness-x"), None);
        assert_eq!(owner_of("system.slice"), None);
    }

    #[test]
    fn a_layout_nobody_may_write_is_unusable_and_says_why() {
        let l = detect("40 1 0:22 / /nonexistent/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n");
        assert!(l.unusable.is_some(), "{l:?}");
        assert!(l.describe().starts_with("no cgroups"), "{}", l.describe());
    }
}
