//! Servers a service manager starts, audited through it: socat run by Debian's
//! `start-stop-daemon` (start/stop commands and a pid file), the same as a systemd unit (through
//! a `systemctl` on `PATH`: systemd is not PID 1 on the machines this runs on, so a stand-in
//! script answers `start`, `stop` and `show` as systemctl does, by running the same
//! start-stop-daemon commands), and the service left as it was found: stopped when it was, running
//! (restarted) when it was, and put back when the harness is ended by SIGTERM mid-audit.
//!
//! The verdicts are socat's own, as when the harness starts it: `UNIX-LISTEN` refuses a path that
//! exists (first_instance_defence passes), and the run's shared directory lets anyone take the
//! name while it is down (instance_squatting fails).

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A scratch folder for one test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            tempfile::Builder::new().prefix(&format!("ph-managed-{name}-")).tempdir().expect("scratch dir").keep();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Whatever a failed test left running is stopped before its folder goes.
        let _ = Command::new("start-stop-daemon")
            .args(["--stop", "--quiet", "--pidfile"])
            .arg(self.0.join("socat.pid"))
            .args(["--retry", "KILL/5"])
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn socat() -> String {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("socat")).find(|f| f.is_file()))
        .expect("socat is not installed: run ci/setup");
    std::fs::canonicalize(found).expect("canonical").display().to_string()
}

/// The start-stop-daemon commands for socat on `socket`, with its pid in `pid`.
fn commands(pid: &Path, socket: &str) -> (Vec<String>, Vec<String>) {
    let pid = pid.display().to_string();
    let start = [
        "start-stop-daemon",
        "--start",
        "--background",
        "--make-pidfile",
        "--pidfile",
        &pid,
        "--exec",
        &socat(),
        "--",
        &format!("UNIX-LISTEN:{socket},fork"),
        "EXEC:/bin/cat",
    ];
    let stop = ["start-stop-daemon", "--stop", "--pidfile", &pid, "--remove-pidfile", "--retry", "TERM/5/KILL/5"];
    (start.iter().map(|s| s.to_string()).collect(), stop.iter().map(|s| s.to_string()).collect())
}

fn toml_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "))
}

/// The live pid in socat's pid file, if its process runs.
fn running(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("socat.pid")).ok()?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 3 (after the parenthesised name) is the state; Z is a zombie, not running.
    let state = stat.rsplit(')').next()?.split_whitespace().next()?;
    (state != "Z").then_some(pid)
}

/// `pipe-harness audit PLAN --format json` with `path` first on `PATH`, the checks named.
fn audit(plan: &Path, path_first: Option<&Path>, scenarios: &[&str]) -> serde_json::Value {
    audit_exits(plan, path_first, scenarios, &[0, 1])
}

/// [`audit`], the exit code one of `codes`.
fn audit_exits(plan: &Path, path_first: Option<&Path>, scenarios: &[&str], codes: &[i32]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipe-harness"));
    cmd.arg("audit").arg(plan).args(["--format", "json", "--seed", "3"]);
    for s in scenarios {
        cmd.args(["--scenario", s]);
    }
    if let Some(dir) = path_first {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let joined =
            std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path))).expect("PATH");
        cmd.env("PATH", joined);
    }
    let out = cmd.output().expect("run pipe-harness");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| codes.contains(&c)),
        "audit exit {:?}:\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON report ({e}):\n{text}"))
}

fn kind<'a>(report: &'a serde_json::Value, scenario: &str) -> &'a str {
    let results = report["results"].as_array().expect("results");
    results.iter().find(|r| r["scenario"] == scenario).and_then(|r| r["verdict"].as_str()).unwrap_or("missing")
}

const CHECKS: [&str; 2] = ["first_instance_defence", "instance_squatting"];

/// A plan for socat under start-stop-daemon on `endpoint`.
fn commands_plan(dir: &Path, endpoint: &str, socket: &str) -> PathBuf {
    let pid = dir.join("socat.pid");
    let (start, stop) = commands(&pid, socket);
    let text = format!(
        "[target]\nname = \"socat-daemon\"\nendpoint = \"{endpoint}\"\nstart = {}\nstop = {}\npid_file = \"{}\"\n",
        toml_list(&start),
        toml_list(&stop),
        pid.display()
    );
    let plan = dir.join("plan.toml");
    std::fs::write(&plan, text).expect("plan");
    plan
}

#[test]
fn start_stop_commands_give_socats_own_verdicts_and_leave_it_stopped() {
    let s = Scratch::new("commands");
    // The harness's run folder and a fresh name per start, as for a program it starts. The
    // harness made that directory, so the restart gap is not judged there: no finding.
    let plan = commands_plan(&s.0, "{dir}/socat-{unique}.sock", "{pipe}");
    let report = audit(&plan, None, &CHECKS);
    assert_eq!(kind(&report, "first_instance_defence"), "pass", "{report:#}");
    assert_eq!(kind(&report, "instance_squatting"), "pass", "{report:#}");
    assert_eq!(running(&s.0), None, "found stopped, left stopped");
}

#[test]
fn a_service_found_running_is_restarted_after_the_audit() {
    let s = Scratch::new("running");
    let socket = s.0.join("svc.sock").display().to_string();
    let plan = commands_plan(&s.0, &socket, &socket);
    let (start, _) = commands(&s.0.join("socat.pid"), &socket);
    let status = Command::new(&start[0]).args(&start[1..]).stdout(Stdio::null()).status().expect("start");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(&s.0).is_none() || !Path::new(&socket).exists() {
        assert!(Instant::now() < deadline, "socat did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = running(&s.0).expect("running");
    let report = audit(&plan, None, &CHECKS);
    assert_eq!(kind(&report, "first_instance_defence"), "pass", "{report:#}");
    let after = running(&s.0).expect("found running, left running");
    assert_ne!(before, after, "the checks restarted it");
    // start-stop-daemon --background returns before socat binds: poll for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = std::os::unix::net::UnixStream::connect(&socket) {
        assert!(Instant::now() < deadline, "it does not serve its socket again: {e}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `systemctl` that knows one unit, `socat-ph.service`, run by start-stop-daemon.
fn fake_systemctl(dir: &Path, socket: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let (start, stop) = commands(&dir.join("socat.pid"), socket);
    let pid = dir.join("socat.pid");
    let script = format!(
        r#"#!/bin/sh
# Stand-in for systemctl(1): start, stop and show for one unit.
verb=$1; shift
unit=$(for a in "$@"; do case "$a" in --*) ;; *) echo "$a";; esac; done)
if [ "$unit" != socat-ph.service ]; then
  # What systemctl does for a unit it has no file for.
  case $verb in
    show) printf 'LoadState=not-found\nActiveState=inactive\nMainPID=0\n'; exit 0 ;;
    *) echo "Failed to $verb $unit: Unit $unit not found." >&2; exit 5 ;;
  esac
fi
case $verb in
  start) exec {start} ;;
  stop) {stop} >/dev/null 2>&1; exit 0 ;;
  show)
    pid=$(cat {pid} 2>/dev/null)
    if [ -n "$pid" ] && [ -d /proc/$pid ] && ! grep -q '^State:.Z' /proc/$pid/status; then
      printf 'LoadState=loaded\nActiveState=active\nMainPID=%s\nExecMainCode=0\nExecMainStatus=0\n' "$pid"
    else
      printf 'LoadState=loaded\nActiveState=inactive\nMainPID=0\nExecMainCode=0\nExecMainStatus=0\n'
    fi ;;
  *) echo "unknown verb $verb" >&2; exit 1 ;;
esac
"#,
        start = start.join(" "),
        stop = stop.join(" "),
        pid = pid.display()
    );
    let file = bin.join("systemctl");
    std::fs::write(&file, script).expect("script");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    bin
}

#[test]
fn a_systemd_unit_is_started_and_stopped_through_systemctl() {
    let s = Scratch::new("unit");
    let socket = s.0.join("unit.sock").display().to_string();
    let bin = fake_systemctl(&s.0, &socket);
    let plan = s.0.join("plan.toml");
    std::fs::write(&plan, format!("[target]\nname = \"socat-unit\"\nunit = \"socat-ph\"\nendpoint = \"{socket}\"\n"))
        .expect("plan");
    let report = audit(&plan, Some(&bin), &CHECKS);
    assert_eq!(kind(&report, "first_instance_defence"), "pass", "{report:#}");
    // Its socket is in a folder only root may write: nobody else can take the name.
    assert_eq!(kind(&report, "instance_squatting"), "pass", "{report:#}");
    assert_eq!(running(&s.0), None, "found stopped, left stopped");
    // A unit systemd does not know is an error that names it, for every check.
    std::fs::write(&plan, format!("[target]\nname = \"x\"\nunit = \"nope\"\nendpoint = \"{socket}\"\n")).expect("plan");
    let report = audit_exits(&plan, Some(&bin), &CHECKS[..1], &[2]);
    assert_eq!(kind(&report, "first_instance_defence"), "error", "{report:#}");
    assert!(report.to_string().contains("systemd has no unit nope.service"), "{report:#}");
}

#[test]
fn sigterm_mid_audit_puts_the_service_back_as_it_was() {
    let s = Scratch::new("sigterm");
    let plan = commands_plan(&s.0, "{dir}/socat-{unique}.sock", "{pipe}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("audit")
        .arg(&plan)
        .args(["--scenario", "framing_robustness"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("audit");
    // Once the harness has started the service, end the harness.
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(&s.0).is_none() {
        assert!(Instant::now() < deadline, "the audit never started the service");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = running(&s.0).expect("running");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(128 + 15), "the harness reports SIGTERM as a shell would");
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || running(&s.0).is_none(), "the service was stopped again");
    assert_eq!(running(&s.0), None, "found stopped, left stopped");
}
