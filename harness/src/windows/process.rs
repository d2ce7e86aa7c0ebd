//! Starting processes under a chosen token, inside a job object that kills them when the
//! harness ends.
//!
//! Every child goes into one process-wide job created with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`.
//! The harness holds the job's only handle, so when the harness exits (or is killed) the handle
//! closes and Windows kills every process still in the job, grandchildren included. A
//! [`Child`] also kills its own process on drop. A server under test also gets a job of its own
//! nested in that one ([`adopt`]), so [`kill_tree`] ends everything it started, even a process
//! whose parent has exited; neither job allows breakaway (`CREATE_BREAKAWAY_FROM_JOB` fails).

use super::sys::{last_error, millis, os, own, raw, wide};
use super::token::Token;
use crate::cmdline::command_line;
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::windows::io::OwnedHandle;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use windows::core::PWSTR;
use windows::Win32::Foundation::{WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation, QueryInformationJobObject,
    SetInformationJobObject, TerminateJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_JOB_MEMORY, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows::Win32::System::Threading::{
    CreateProcessAsUserW, CreateProcessW, GetExitCodeProcess, OpenProcess, ResumeThread, TerminateProcess,
    WaitForSingleObject, CREATE_NEW_PROCESS_GROUP, CREATE_SUSPENDED, CREATE_UNICODE_ENVIRONMENT, PROCESS_INFORMATION,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SET_QUOTA, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE, STARTUPINFOW,
};

/// The process-wide kill-on-close job.
struct Job(OwnedHandle);

/// A new unnamed job whose processes are killed when its last handle closes.
fn kill_on_close_job(what: &str) -> Result<Job> {
    limited_job(what, None, None)
}

/// A kill-on-close job, with at most `memory` bytes committed by its processes together
/// (`JOB_OBJECT_LIMIT_JOB_MEMORY`) and `processes` active processes
/// (`JOB_OBJECT_LIMIT_ACTIVE_PROCESS`).
fn limited_job(what: &str, memory: Option<u64>, processes: Option<u64>) -> Result<Job> {
    // SAFETY: an unnamed job with default security.
    let h = unsafe { CreateJobObjectW(None, windows::core::PCWSTR::null()) }
        .map_err(|e| os("CreateJobObjectW", format!("creating {what}"), e))?;
    let job = Job(own(h));
    let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if let Some(bytes) = memory {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
        info.JobMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
    }
    if let Some(n) = processes {
        info.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
        info.BasicLimitInformation.ActiveProcessLimit = u32::try_from(n).unwrap_or(u32::MAX);
    }
    // SAFETY: `info` outlives the call and has the size passed.
    unsafe {
        SetInformationJobObject(
            raw(&job.0),
            JobObjectExtendedLimitInformation,
            (&info as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
        )
    }
    .map_err(|e| os("SetInformationJobObject", format!("setting kill-on-close on {what}"), e))?;
    Ok(job)
}

fn job() -> Result<&'static Job> {
    static JOB: OnceLock<std::result::Result<Job, String>> = OnceLock::new();
    JOB.get_or_init(|| kill_on_close_job("the harness's job").map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Unsupported(format!("no job object for children: {e}")))
}

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct ProcessSpec {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments (quoted for `CommandLineToArgvW`).
    pub args: Vec<String>,
    /// Working directory; the harness's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables set on top of the harness's environment.
    pub env: Vec<(String, String)>,
}

impl ProcessSpec {
    /// `program` with `args`.
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        ProcessSpec { program: program.into(), args: args.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    fn env_block(&self) -> Result<Option<Vec<u16>>> {
        if self.env.is_empty() {
            return Ok(None);
        }
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(Error::invalid("environment variable", format!("{k:?}={v:?}")));
            }
            vars.retain(|(ek, _)| !ek.eq_ignore_ascii_case(k));
            vars.push((k.into(), v.into()));
        }
        let mut block = Vec::new();
        for (k, v) in vars {
            let line = format!("{}={}", k.to_string_lossy(), v.to_string_lossy());
            block.extend(line.encode_utf16());
            block.push(0);
        }
        block.push(0);
        Ok(Some(block))
    }
}

/// A started process in the harness's job; killed and reaped on drop.
#[derive(Debug)]
pub struct Child {
    process: OwnedHandle,
    pid: u32,
}

/// Starts `spec` under `token` (`CreateProcessAsUserW`), or as the harness itself when `token`
/// is `None` (`CreateProcessW`), suspended, puts it in the job, then lets it run.
pub fn spawn(spec: &ProcessSpec, token: Option<&Token>) -> Result<Child> {
    let job = job()?;
    let program = spec.program.to_string_lossy().into_owned();
    let mut line = wide("command line", &command_line(&program, &spec.args)?)?;
    let cwd = spec.cwd.as_ref().map(|c| wide("working directory", &c.to_string_lossy())).transpose()?;
    let env = spec.env_block()?;
    let si = STARTUPINFOW { cb: std::mem::size_of::<STARTUPINFOW>() as u32, ..Default::default() };
    let mut pi = PROCESS_INFORMATION::default();
    let flags = CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT | CREATE_NEW_PROCESS_GROUP;
    let cwd_p = cwd.as_ref().map_or(windows::core::PCWSTR::null(), |c| super::sys::pcwstr(c));
    let env_p = env.as_ref().map(|e| e.as_ptr().cast::<core::ffi::c_void>());
    let context = || format!("starting {program}");
    // SAFETY: every buffer (command line, cwd, environment, startup info) outlives the call;
    // the command line is mutable as CreateProcess requires; handles are not inherited.
    let started = unsafe {
        match token {
            Some(t) => CreateProcessAsUserW(
                Some(raw(t.handle())),
                windows::core::PCWSTR::null(),
                Some(PWSTR(line.as_mut_ptr())),
                None,
                None,
                false,
                flags,
                env_p,
                cwd_p,
                &si,
                &mut pi,
            )
            .map_err(|e| os("CreateProcessAsUserW", context(), e)),
            None => CreateProcessW(
                windows::core::PCWSTR::null(),
                Some(PWSTR(line.as_mut_ptr())),
                None,
                None,
                false,
                flags,
                env_p,
                cwd_p,
                &si,
                &mut pi,
            )
            .map_err(|e| os("CreateProcessW", context(), e)),
        }
    };
    started?;
    let process = own(pi.hProcess);
    let thread = own(pi.hThread);
    let child = Child { process, pid: pi.dwProcessId };
    // SAFETY: both handles are valid; a failure here drops `child`, which kills the process.
    unsafe { AssignProcessToJobObject(raw(&job.0), raw(&child.process)) }
        .map_err(|e| os("AssignProcessToJobObject", context(), e))?;
    // SAFETY: the suspended main thread of the process just created.
    if unsafe { ResumeThread(raw(&thread)) } == u32::MAX {
        return Err(last_error("ResumeThread", context()));
    }
    Ok(child)
}

/// Waits for the process behind `handle`; `Ok(Some(code))` when it exited within `timeout`.
fn wait_handle(handle: &OwnedHandle, timeout: Duration, what: &str) -> Result<Option<u32>> {
    // SAFETY: valid process handle.
    let w = unsafe { WaitForSingleObject(raw(handle), millis(timeout)) };
    if w == WAIT_TIMEOUT {
        return Ok(None);
    }
    if w != WAIT_OBJECT_0 {
        return Err(last_error("WaitForSingleObject", format!("waiting for {what}")));
    }
    let mut code = 0u32;
    // SAFETY: valid process handle that has exited.
    unsafe { GetExitCodeProcess(raw(handle), &mut code) }
        .map_err(|e| os("GetExitCodeProcess", format!("reading {what}'s exit code"), e))?;
    Ok(Some(code))
}

impl Child {
    /// A process started by someone else (by id), to wait for and end like one of ours: the
    /// server a traced run started through Wine's loader ([`super::trace`]).
    pub fn attach(pid: u32) -> Result<Child> {
        // SAFETY: opens a process by id with the rights wait and kill need.
        let h = unsafe {
            OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_TERMINATE | PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
        }
        .map_err(|e| os("OpenProcess", format!("attaching to process {pid}"), e))?;
        Ok(Child { process: own(h), pid })
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Waits at most `timeout`; `Some(exit code)` once it has exited.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<u32>> {
        wait_handle(&self.process, timeout, &format!("process {}", self.pid))
    }

    /// Terminates the process (exit code 1) and waits for it to be gone.
    pub fn kill(&mut self) -> Result<()> {
        // SAFETY: valid process handle; terminating an already-exited process is harmless.
        let _ = unsafe { TerminateProcess(raw(&self.process), 1) };
        match self.wait(Duration::from_secs(10))? {
            Some(_) => Ok(()),
            None => Err(Error::Timeout {
                context: format!("process {} to die after TerminateProcess", self.pid),
                after: Duration::from_secs(10),
            }),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.wait(Duration::ZERO), Ok(None)) {
            let _ = self.kill();
        }
    }
}

/// Puts an already started process (by id) into the harness's kill-on-close job, so it dies
/// with the harness, and into a job of its own nested in it (Windows 8 and later), so that
/// [`kill_tree`] ends everything it started, including processes whose parent has exited (a
/// double start, which the parent-id walk cannot follow). A process started by someone else's
/// `Command` is adopted this way. Where the nested job cannot be made, the process is still
/// in the harness's job and [`kill_tree`] falls back to the walk.
pub fn adopt(pid: u32, limits: &crate::target::Limits) -> Result<()> {
    let job = job()?;
    // SAFETY: opens a process by id with the rights AssignProcessToJobObject needs.
    let h = unsafe { OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, false, pid) }
        .map_err(|e| os("OpenProcess", format!("adopting process {pid}"), e))?;
    let h = own(h);
    // SAFETY: both handles are valid.
    unsafe { AssignProcessToJobObject(raw(&job.0), raw(&h)) }
        .map_err(|e| os("AssignProcessToJobObject", format!("adopting process {pid}"), e))?;
    let memory = total_memory().ok().map(|t| limits.memory_for(t));
    if let Ok(tree) = limited_job(&format!("the job of process {pid}"), memory, Some(limits.processes())) {
        // SAFETY: both handles are valid.
        if unsafe { AssignProcessToJobObject(raw(&tree.0), raw(&h)) }.is_ok() {
            tree_jobs().insert(pid, tree);
        }
    }
    Ok(())
}

/// The machine's physical memory in bytes (`GlobalMemoryStatusEx`).
pub fn total_memory() -> Result<u64> {
    use windows::Win32::System::SystemInformation::{GlobalMemoryStatusEx, MEMORYSTATUSEX};
    let mut status = MEMORYSTATUSEX { dwLength: std::mem::size_of::<MEMORYSTATUSEX>() as u32, ..Default::default() };
    // SAFETY: `status` outlives the call and its dwLength is set.
    unsafe { GlobalMemoryStatusEx(&mut status) }
        .map_err(|e| os("GlobalMemoryStatusEx", "reading the machine's memory", e))?;
    Ok(status.ullTotalPhys)
}

/// For the tree rooted at `pid`: (1 when its job's peak committed memory reached the job's
/// memory limit, else 0; the limit in bytes), or `None` without a job memory limit.
pub fn memory_limit_hits(pid: u32) -> Option<(u64, u64)> {
    let jobs = tree_jobs();
    let job = jobs.get(&pid)?;
    let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    // SAFETY: `info` outlives the call and has the size passed.
    unsafe {
        QueryInformationJobObject(
            Some(raw(&job.0)),
            JobObjectExtendedLimitInformation,
            (&mut info as *mut JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
            std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            None,
        )
    }
    .ok()?;
    if info.BasicLimitInformation.LimitFlags & JOB_OBJECT_LIMIT_JOB_MEMORY != JOB_OBJECT_LIMIT_JOB_MEMORY {
        return None;
    }
    let limit = info.JobMemoryLimit as u64;
    // An allocation that would pass the limit fails, so the peak stays just under it: within
    // a page's worth of slack is a hit.
    let hit = u64::from(info.PeakJobMemoryUsed as u64 + 64 * 1024 >= limit);
    Some((hit, limit))
}

/// The jobs of the trees started by [`adopt`], by root process id.
fn tree_jobs() -> std::sync::MutexGuard<'static, std::collections::BTreeMap<u32, Job>> {
    static JOBS: std::sync::Mutex<std::collections::BTreeMap<u32, Job>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    JOBS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits at most `timeout` for process `pid` (not necessarily ours) to exit; `Ok(true)` when it
/// has, or is already gone.
pub fn wait_for_pid_exit(pid: u32, timeout: Duration) -> Result<bool> {
    // SAFETY: opens a process by id for waiting only.
    let h = match unsafe { OpenProcess(PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, false, pid) } {
        Ok(h) => own(h),
        Err(_) => return Ok(true), // no such process any more
    };
    Ok(wait_handle(&h, timeout, &format!("process {pid}"))?.is_some())
}

/// The working set (resident memory) of process `pid`, in KiB.
pub fn resident_kib(pid: u32) -> Result<u64> {
    use windows::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
    // SAFETY: opens a process by id for querying only.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid) }
        .map_err(|e| os("OpenProcess", format!("reading the memory of process {pid}"), e))?;
    let h = own(h);
    let mut counters = PROCESS_MEMORY_COUNTERS::default();
    let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: `counters` outlives the call and has the size passed.
    if !unsafe { K32GetProcessMemoryInfo(raw(&h), &mut counters, size) }.as_bool() {
        return Err(last_error("K32GetProcessMemoryInfo", format!("reading the memory of process {pid}")));
    }
    Ok(counters.WorkingSetSize as u64 / 1024)
}

/// Every process on the machine with its parent's id (a Toolhelp snapshot).
fn parents() -> Result<Vec<(u32, u32)>> {
    Ok(processes()?.into_iter().map(|(pid, parent, _)| (pid, parent)).collect())
}

/// Every process on the machine: its id, its parent's id and its executable's file name.
fn processes() -> Result<Vec<(u32, u32, String)>> {
    use windows::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Process32FirstW, Process32NextW, PROCESSENTRY32W, TH32CS_SNAPPROCESS,
    };
    // SAFETY: a process snapshot; the handle is owned right after.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) }
        .map_err(|e| os("CreateToolhelp32Snapshot", "listing processes", e))?;
    let snap = own(snap);
    let mut entry = PROCESSENTRY32W { dwSize: std::mem::size_of::<PROCESSENTRY32W>() as u32, ..Default::default() };
    let mut out = Vec::new();
    // SAFETY: `entry` outlives the call and its dwSize is set.
    let mut more = unsafe { Process32FirstW(raw(&snap), &mut entry) }.is_ok();
    while more {
        let len = entry.szExeFile.iter().position(|c| *c == 0).unwrap_or(entry.szExeFile.len());
        let exe = String::from_utf16_lossy(&entry.szExeFile[..len]);
        out.push((entry.th32ProcessID, entry.th32ParentProcessID, exe));
        // SAFETY: as above.
        more = unsafe { Process32NextW(raw(&snap), &mut entry) }.is_ok();
    }
    Ok(out)
}

/// Is process `pid` in the harness's job? (A parent id can be stale: Windows does not update
/// it when the parent dies, so a reused id would otherwise look like a descendant.)
fn in_our_job(pid: u32) -> bool {
    use windows::Win32::System::JobObjects::IsProcessInJob;
    let Ok(job) = job() else { return false };
    // Wine 8.0 answers IsProcessInJob only with PROCESS_QUERY_INFORMATION (with the limited
    // right, which Windows documents as enough, it says "not in the job"; measured here).
    use windows::Win32::System::Threading::PROCESS_QUERY_INFORMATION;
    // SAFETY: opens a process by id for querying only.
    let opened = unsafe { OpenProcess(PROCESS_QUERY_INFORMATION, false, pid) }
        // SAFETY: as above, with the lesser right.
        .or_else(|_| unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, false, pid) });
    let Ok(h) = opened else { return false };
    let h = own(h);
    let mut inside = windows::core::BOOL(0);
    // SAFETY: both handles are valid; `inside` outlives the call.
    unsafe { IsProcessInJob(raw(&h), Some(raw(&job.0)), &mut inside) }.is_ok() && inside.as_bool()
}

/// The living descendants of `pid` that are in the harness's job.
pub fn descendants(pid: u32) -> Result<Vec<u32>> {
    let mut found = crate::tree::tree_below(pid, &parents()?);
    found.retain(|c| in_our_job(*c));
    Ok(found)
}

/// The processes whose recorded parent is `pid`, in or out of the harness's job, each with its
/// executable's file name (a parent id can be stale after the parent died: check what you
/// find).
pub fn child_processes(pid: u32) -> Result<Vec<(u32, String)>> {
    Ok(processes()?.into_iter().filter(|(c, p, _)| *p == pid && *c != pid).map(|(c, _, exe)| (c, exe)).collect())
}

/// Terminates `pid` and everything it started: its own job when [`adopt`] made one (every
/// process started inside, whoever its parent was), then `pid` and its descendants in the
/// harness's job by parent id.
pub fn kill_tree(pid: u32) {
    if let Some(tree) = tree_jobs().remove(&pid) {
        // SAFETY: a valid job handle; ends every process in the job.
        let _ = unsafe { TerminateJobObject(raw(&tree.0), 1) };
    }
    let mut victims = descendants(pid).unwrap_or_default();
    victims.insert(0, pid);
    for v in victims {
        // SAFETY: opens a process by id for termination only.
        if let Ok(h) = unsafe { OpenProcess(PROCESS_TERMINATE, false, v) } {
            let h = own(h);
            // SAFETY: valid handle with PROCESS_TERMINATE.
            let _ = unsafe { TerminateProcess(raw(&h), 1) };
        }
    }
}

/// How many handles this process has open (`GetProcessHandleCount`).
pub fn own_handle_count() -> Result<usize> {
    use windows::Win32::System::Threading::{GetCurrentProcess, GetProcessHandleCount};
    let mut n = 0u32;
    // SAFETY: the pseudo-handle of the current process; `n` outlives the call.
    unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut n) }
        .map_err(|e| os("GetProcessHandleCount", "counting the harness's handles", e))?;
    Ok(n as usize)
}

/// Resumes every suspended thread of process `pid` (a process started with `CREATE_SUSPENDED`
/// has one). Threads that run already are left as they are.
pub fn resume(pid: u32) -> Result<()> {
    use windows::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
    };
    use windows::Win32::System::Threading::{OpenThread, THREAD_SUSPEND_RESUME};
    // SAFETY: a thread snapshot; the handle is owned right after.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) }
        .map_err(|e| os("CreateToolhelp32Snapshot", format!("listing the threads of process {pid}"), e))?;
    let snap = own(snap);
    let mut entry = THREADENTRY32 { dwSize: std::mem::size_of::<THREADENTRY32>() as u32, ..Default::default() };
    let mut resumed = 0;
    // SAFETY: `entry` outlives the call and its dwSize is set.
    let mut more = unsafe { Thread32First(raw(&snap), &mut entry) }.is_ok();
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opens a thread by id for resuming only.
            let t = unsafe { OpenThread(THREAD_SUSPEND_RESUME, false, entry.th32ThreadID) }
                .map_err(|e| os("OpenThread", format!("resuming process {pid}"), e))?;
            let t = own(t);
            // SAFETY: valid thread handle with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(raw(&t)) } == u32::MAX {
                return Err(last_error("ResumeThread", format!("resuming process {pid}")));
            }
            resumed += 1;
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(raw(&snap), &mut entry) }.is_ok();
    }
    if resumed == 0 {
        return Err(Error::Peer(format!("process {pid} has no thread to resume")));
    }
    Ok(())
}

/// What a job's limits did to two suspended processes of this program: whether assigning the
/// second to a job limited to one active process was refused, and whether committing 64 MiB in
/// the first under a 32 MiB job memory limit was; with what each call said. For the probe's
/// `job_limits_enforced`.
pub fn measure_job_limits() -> Result<(bool, bool, Vec<String>)> {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use windows::Win32::System::Memory::{VirtualAllocEx, MEM_COMMIT, MEM_RESERVE, PAGE_READWRITE};
    let job = limited_job("the probe's limited job", Some(32 << 20), Some(1))?;
    let me = std::env::current_exe().map_err(|e| Error::invalid("probe", format!("finding this program: {e}")))?;
    let start = || {
        std::process::Command::new(&me)
            .arg("--pipe-harness-never-runs")
            .creation_flags(CREATE_SUSPENDED.0)
            .spawn()
            .map_err(|e| Error::invalid("probe", format!("starting a suspended copy of this program: {e}")))
    };
    let mut first = start()?;
    let second = start();
    let mut notes = Vec::new();
    let assign = |c: &std::process::Child| {
        let h = windows::Win32::Foundation::HANDLE(c.as_raw_handle());
        // SAFETY: both handles are valid; the child's handle has PROCESS_ALL_ACCESS.
        unsafe { AssignProcessToJobObject(raw(&job.0), h) }
    };
    let measured = (|| -> Result<(bool, bool)> {
        assign(&first)
            .map_err(|e| os("AssignProcessToJobObject", "putting the first process in the probe's job", e))?;
        let mut second = second?;
        let refused = assign(&second);
        notes.push(format!(
            "a second process in a job of ActiveProcessLimit 1: {}",
            match &refused {
                Ok(()) => "assigned".to_string(),
                Err(e) => format!("refused ({})", super::sys::code_of(e)),
            }
        ));
        let _ = second.kill();
        let _ = second.wait();
        let h = windows::Win32::Foundation::HANDLE(first.as_raw_handle());
        // SAFETY: a commit in a suspended child of ours; freed with the process.
        let p = unsafe { VirtualAllocEx(h, None, 64 << 20, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE) };
        notes.push(format!(
            "committing 64 MiB in a process of a job with JobMemoryLimit 32 MiB: {}",
            if p.is_null() { "refused" } else { "allowed" }
        ));
        Ok((refused.is_err(), p.is_null()))
    })();
    let _ = first.kill();
    let _ = first.wait();
    measured.map(|(a, b)| (a, b, notes))
}
