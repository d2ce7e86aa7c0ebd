//! Servers a service manager starts: start/stop commands (an init script, `start-stop-daemon`),
//! a systemd unit, or a Windows service. The harness asks the manager to start and stop them,
//! asks it whether they run and which process they are, and leaves each service as it found it
//! ([`ServiceGuard`]).

use super::live::Termination;
use crate::error::{Error, Result};
use crate::target::{fill, Managed};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a start or stop command (or the manager) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Held around every change of a managed service's state (a start, a stop, the restore), so
/// that the signal cleanup's restore waits for a start in flight, and a start after the cleanup
/// began is refused ([`operate`]).
static OPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` (a start or stop of a managed service) in turn with every other one and with the
/// restore; refused once the harness is ending (a termination signal's cleanup has begun),
/// unless `restoring`.
pub(crate) fn operate<T>(restoring: bool, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let _turn = OPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !restoring && crate::supervise::is_ending() {
        return Err(Error::Unsupported(
            "the harness is ending (a termination signal): no service is started or stopped".into(),
        ));
    }
    f()
}

/// Where a managed server is, as its manager tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceState {
    /// It runs; its main process when the manager knows it.
    Running(Option<u32>),
    /// It does not run; how its last run ended when the manager knows.
    Stopped(Option<Termination>),
}

/// A managed server and the endpoint of the run (for `{pipe}` in commands), with a log of
/// what its commands printed.
pub(crate) struct Service<'a> {
    pub(crate) spec: &'a Managed,
    pub(crate) endpoint: &'a str,
    pub(crate) path: &'a str,
    pub(crate) log: Arc<Mutex<super::server::KeptOutput>>,
}

impl Service<'_> {
    fn note(&self, line: String) {
        super::server::keep(&self.log, line);
    }

    /// Runs `argv` (placeholders filled) to its end, within [`COMMAND_TIMEOUT`]; its output
    /// joins the log. Its exit status: `true` for success.
    fn run(&self, what: &str, argv: &[String]) -> Result<bool> {
        let argv = fill(argv, self.endpoint, self.path);
        let (ok, out) = run_command(&argv)?;
        for line in out.lines() {
            self.note(format!("{what}: {line}"));
        }
        self.note(format!("{what}: {:?} {}", argv.join(" "), if ok { "succeeded" } else { "failed" }));
        Ok(ok)
    }

    /// Asks the manager to start it. A start that fails is not an error (a server refusing to
    /// start is what some checks look for): [`Service::state`] tells afterwards.
    pub(crate) fn start(&self) -> Result<()> {
        match self.spec {
            Managed::Commands { start, .. } => self.run("start", start).map(drop),
            Managed::Unit(unit) => self.run("start", &systemctl(&["start", unit])).map(drop),
            Managed::WindowsService(name) => windows_start(self, name),
        }
    }

    /// Asks the manager to stop it (and waits until it has, within [`COMMAND_TIMEOUT`]).
    pub(crate) fn stop(&self) -> Result<()> {
        match self.spec {
            Managed::Commands { stop, .. } => self.run("stop", stop).map(drop),
            Managed::Unit(unit) => self.run("stop", &systemctl(&["stop", unit])).map(drop),
            Managed::WindowsService(name) => windows_stop(name),
        }
    }

    /// Whether it runs, as the manager says.
    pub(crate) fn state(&self) -> Result<ServiceState> {
        match self.spec {
            Managed::Commands { pid_file, status, .. } => {
                if let Some(file) = pid_file {
                    let pid = std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse::<u32>().ok());
                    return Ok(match pid {
                        Some(pid) if !crate::supervise::wait_exit(pid, Duration::ZERO).unwrap_or(true) => {
                            ServiceState::Running(Some(pid))
                        }
                        _ => ServiceState::Stopped(None),
                    });
                }
                let status = status.as_deref().unwrap_or_default();
                let (running, _) = run_command(&fill(status, self.endpoint, self.path))?;
                Ok(if running { ServiceState::Running(None) } else { ServiceState::Stopped(None) })
            }
            Managed::Unit(unit) => unit_state(unit),
            Managed::WindowsService(name) => windows_state(name),
        }
    }
}

/// `systemctl` with `args` (the one on `PATH`).
fn systemctl(args: &[&str]) -> Vec<String> {
    std::iter::once("systemctl").chain(args.iter().copied()).map(String::from).collect()
}

/// A unit's state from `systemctl show`: `ActiveState`, `MainPID`, and how its main process
/// ended (`ExecMainCode`: 1 exited, 2 killed, 3 dumped; `ExecMainStatus`: the code or signal).
fn unit_state(unit: &str) -> Result<ServiceState> {
    let argv = systemctl(&["show", "--property=LoadState,ActiveState,MainPID,ExecMainCode,ExecMainStatus", unit]);
    let (ok, out) = run_command(&argv)?;
    if !ok {
        return Err(Error::invalid("unit", format!("systemctl show {unit} failed: {}", out.trim())));
    }
    let field = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)?.strip_prefix('=')).unwrap_or("").trim();
    // systemctl show answers for any name, a unit it has no file for with LoadState=not-found.
    if field("LoadState") == "not-found" {
        return Err(Error::invalid(
            "unit",
            format!("systemd has no unit {unit} (systemctl show: LoadState=not-found)"),
        ));
    }
    let pid = field("MainPID").parse::<u32>().ok().filter(|p| *p != 0);
    Ok(match field("ActiveState") {
        "active" | "activating" | "reloading" | "deactivating" => ServiceState::Running(pid),
        "inactive" | "failed" => {
            let status = field("ExecMainStatus").parse::<i32>().ok();
            let ended = match (field("ExecMainCode").parse::<i32>().ok(), status) {
                (Some(1), Some(code)) => Some(Termination::Exit { code }),
                (Some(2 | 3), Some(sig)) => Termination::from_unix(Some(sig), None),
                _ => None,
            };
            ServiceState::Stopped(ended)
        }
        other => {
            return Err(Error::invalid(
                "unit",
                format!("systemctl show {unit}: ActiveState {other:?} (is {unit} a unit systemd knows?)"),
            ))
        }
    })
}

#[cfg(windows)]
fn windows_state(name: &str) -> Result<ServiceState> {
    let s = crate::windows::scm::query(name)?;
    Ok(if s.running {
        ServiceState::Running(s.pid)
    } else {
        ServiceState::Stopped(Some(Termination::from_windows(s.exit_code)))
    })
}

#[cfg(windows)]
fn windows_start(service: &Service<'_>, name: &str) -> Result<()> {
    match crate::windows::scm::start(name, COMMAND_TIMEOUT) {
        Ok(_) => Ok(()),
        // A service that fails to start (its process exits at once) is what some checks want
        // to see: logged, and the state tells.
        Err(e @ Error::Os { .. }) if e.os_code() != Some(crate::error::OsCode::Win32(5)) => {
            service.note(format!("start: {e}"));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(windows)]
fn windows_stop(name: &str) -> Result<()> {
    crate::windows::scm::stop(name, COMMAND_TIMEOUT).map(drop)
}

#[cfg(not(windows))]
fn windows_state(name: &str) -> Result<ServiceState> {
    Err(Error::Unsupported(format!("the Windows service {name}: the Service Control Manager is Windows only")))
}

#[cfg(not(windows))]
fn windows_start(_: &Service<'_>, name: &str) -> Result<()> {
    windows_state(name).map(drop)
}

#[cfg(not(windows))]
fn windows_stop(name: &str) -> Result<()> {
    windows_state(name).map(drop)
}

/// Runs `argv` to its end within [`COMMAND_TIMEOUT`] (killed after it, with its process
/// group on Unix), its stdout and stderr in a scratch file (a daemon it starts may keep the
/// descriptors it inherited: a file never blocks). The file has no name another user could
/// plant or open (`tempfile::tempfile`: unlinked from the start, read back through its
/// descriptor). Success, and what it printed.
fn run_command(argv: &[String]) -> Result<(bool, String)> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Error::invalid("service command", "empty"));
    };
    let mut out = tempfile::tempfile()
        .map_err(|e| Error::invalid("service command", format!("creating a scratch file for its output: {e}")))?;
    let dup = || out.try_clone().map_err(|e| Error::invalid("service command", e.to_string()));
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(dup()?).stderr(dup()?);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let spawned = cmd.spawn();
    let result =
        spawned.map_err(|e| Error::invalid("service command", format!("{program}: {e}"))).and_then(|mut child| {
            match crate::supervise::wait_exit(child.id(), COMMAND_TIMEOUT) {
                Ok(true) => child.wait().map_err(|e| Error::invalid("service command", e.to_string())),
                _ => {
                    #[cfg(unix)]
                    crate::unix::creds::kill_tree(child.id(), None);
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(Error::Timeout { context: format!("running {:?}", argv.join(" ")), after: COMMAND_TIMEOUT })
                }
            }
        });
    let mut bytes = Vec::new();
    let _ = std::io::Seek::rewind(&mut out).and_then(|()| std::io::Read::read_to_end(&mut out, &mut bytes));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    result.map(|status| (status.success(), text))
}

/// Leaves a managed server as the harness found it: running when it ran (started again), else
/// stopped. Made before the first check; restores on drop (and, on Linux, from the signal
/// cleanup when the harness is ended by a signal).
pub struct ServiceGuard {
    restore: Option<(Restore, u64)>,
}

#[derive(Clone)]
struct Restore {
    spec: Managed,
    endpoint: String,
    path: String,
    was_running: bool,
}

impl Restore {
    fn apply(&self) {
        let log = Arc::new(Mutex::new(super::server::KeptOutput::default()));
        let s = Service { spec: &self.spec, endpoint: &self.endpoint, path: &self.path, log };
        let _ = operate(true, || {
            let running = matches!(s.state(), Ok(ServiceState::Running(_)));
            match (self.was_running, running) {
                (true, false) => s.start(),
                (false, true) => s.stop(),
                _ => Ok(()),
            }
        });
    }
}

impl ServiceGuard {
    /// Records whether `target`'s managed server runs now (nothing for a target the harness
    /// starts itself). `endpoint` and `path` fill `{pipe}` and `{pipe_path}` in its commands.
    pub fn new(target: &crate::target::Target, endpoint: &str, path: &str) -> Result<ServiceGuard> {
        let Some(spec) = &target.managed else { return Ok(ServiceGuard { restore: None }) };
        let log = Arc::new(Mutex::new(super::server::KeptOutput::default()));
        let s = Service { spec, endpoint, path, log };
        let was_running = matches!(s.state()?, ServiceState::Running(_));
        let restore = Restore { spec: spec.clone(), endpoint: endpoint.into(), path: path.into(), was_running };
        let again = restore.clone();
        let id = crate::tree::register_cleanup(Box::new(move || again.apply()));
        // The signal cleanup must be there for it to run on SIGTERM.
        let _ = crate::supervise::install_signal_cleanup();
        Ok(ServiceGuard { restore: Some((restore, id)) })
    }

    /// Whether the managed server ran before the harness touched it (`None`: not managed).
    pub fn was_running(&self) -> Option<bool> {
        self.restore.as_ref().map(|(r, _)| r.was_running)
    }
}

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        if let Some((r, id)) = &self.restore {
            crate::tree::release_cleanup(*id);
            r.apply();
        }
    }
}
