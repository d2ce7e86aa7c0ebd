//! Run as root on a machine shared with other users, the harness hands them nothing: an
//! unprivileged user (uid 61150) plants, before each command, directories it owns and
//! symlinks to a root-owned file at every name the harness used to make in the temporary
//! directory (`pipe-harness-cc-PID/ph_cov.c` and `ph_cov.o`, `pipe-harness-svc-PID-SEQ.log`,
//! `ph-probe-PID-N/`), then root runs `cc`, `fuzz` with coverage (the server as uid 61151),
//! `audit`, `record` and an audit of a managed service. Each command runs in a fresh PID
//! namespace, where it is PID 2, so the names the attacker predicts are exactly the ones the
//! old code would have used (and no other process of the machine has those PIDs). Every
//! command must work, the root-owned file must be unchanged, and the attacker's directories
//! must hold exactly what the attacker put there. The whole run is done with
//! `fs.protected_symlinks` at 0 and at 1 (restored afterwards, even on a panic).

#![cfg(target_os = "linux")]

mod common;

use pipe_harness::unix::creds::{as_user, Ids};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The other user of the machine.
const ATTACKER: u32 = 61_150;
/// The identity the coverage-built server runs as.
const SERVER: u32 = 61_151;
/// The PIDs the attacker plants for: a command run by `sh` in a new PID namespace is PID 2.
const PIDS: std::ops::RangeInclusive<u32> = 1..=8;
const PRECIOUS: &str = "root's file: nobody but root changes this\n";

/// `fs.protected_symlinks` set for the guard's life, then put back (on a panic too).
struct ProtectedSymlinks(String);

const SYSCTL: &str = "/proc/sys/fs/protected_symlinks";

impl ProtectedSymlinks {
    fn set(value: u8) -> ProtectedSymlinks {
        let original = std::fs::read_to_string(SYSCTL).expect("read the sysctl");
        std::fs::write(SYSCTL, value.to_string()).expect("set the sysctl");
        assert_eq!(std::fs::read_to_string(SYSCTL).expect("read").trim(), value.to_string());
        ProtectedSymlinks(original)
    }
}

impl Drop for ProtectedSymlinks {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.0.trim());
    }
}

/// Everything the attacker planted: removed (by root, never followed) when the guard goes.
struct Planted {
    /// Each planted directory and the names the attacker put in it.
    dirs: BTreeMap<PathBuf, Vec<String>>,
    /// Each planted symlink directly in the temporary directory.
    links: Vec<PathBuf>,
}

impl Planted {
    fn remove(tmp: &Path) {
        for pid in PIDS {
            let _ = std::fs::remove_dir_all(tmp.join(format!("pipe-harness-cc-{pid}")));
            for n in 0..4 {
                let _ = std::fs::remove_dir_all(tmp.join(format!("ph-probe-{pid}-{n}")));
            }
            for seq in 0..8 {
                let _ = std::fs::remove_file(tmp.join(format!("pipe-harness-svc-{pid}-{seq}.log")));
            }
        }
    }

    /// As the attacker: directories at the old build and probe names, symlinks to `victim` in
    /// them and at the old log names.
    fn plant(victim: &Path, probe_dirs: bool) -> Planted {
        let tmp = std::env::temp_dir();
        Planted::remove(&tmp);
        let victim = victim.to_path_buf();
        let ids = Ids { uid: ATTACKER, gid: ATTACKER };
        let planted = as_user(ids, move || -> std::io::Result<Planted> {
            let mut p = Planted { dirs: BTreeMap::new(), links: Vec::new() };
            for pid in PIDS {
                let mut dirs = vec![(format!("pipe-harness-cc-{pid}"), vec!["ph_cov.c", "ph_cov.o"])];
                for n in (0..4).filter(|_| probe_dirs) {
                    dirs.push((format!("ph-probe-{pid}-{n}"), vec!["ids.sock", "mode.sock", "bind.sock"]));
                }
                for (dir, names) in dirs {
                    let dir = tmp.join(dir);
                    std::fs::create_dir(&dir)?;
                    for name in &names {
                        std::os::unix::fs::symlink(&victim, dir.join(name))?;
                    }
                    p.dirs.insert(dir, names.iter().map(|n| n.to_string()).collect());
                }
                for seq in 0..8 {
                    let link = tmp.join(format!("pipe-harness-svc-{pid}-{seq}.log"));
                    std::os::unix::fs::symlink(&victim, &link)?;
                    p.links.push(link);
                }
            }
            Ok(p)
        })
        .expect("act as the attacker")
        .expect("plant");
        planted
    }

    /// Nothing was added to, or taken from, what the attacker planted.
    fn unchanged(&self, after: &str) {
        use std::os::unix::fs::MetadataExt;
        for (dir, names) in &self.dirs {
            let m = std::fs::symlink_metadata(dir).unwrap_or_else(|e| panic!("after {after}: {}: {e}", dir.display()));
            assert!(m.is_dir() && m.uid() == ATTACKER, "after {after}: {} is the attacker's directory", dir.display());
            let mut found: Vec<String> = std::fs::read_dir(dir)
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            found.sort();
            let mut want = names.clone();
            want.sort();
            assert_eq!(found, want, "after {after}: {} holds what the attacker put there", dir.display());
        }
        for link in &self.links {
            let m =
                std::fs::symlink_metadata(link).unwrap_or_else(|e| panic!("after {after}: {}: {e}", link.display()));
            assert!(m.file_type().is_symlink() && m.uid() == ATTACKER, "after {after}: {}", link.display());
        }
    }
}

impl Drop for Planted {
    fn drop(&mut self) {
        Planted::remove(&std::env::temp_dir());
    }
}

/// `pipe-harness ARGS` as root in a new PID namespace (with its own /proc), where `sh` is
/// PID 1 and the harness PID 2.
fn harness(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", "\"$@\"; exit $?", "sh"]);
    cmd.arg(env!("CARGO_BIN_EXE_pipe-harness")).args(args);
    cmd
}

fn run(what: &str, mut cmd: Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{what} worked ({}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

fn socat() -> String {
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("socat")).find(|f| f.is_file()))
        .expect("socat is not installed: run ci/setup");
    std::fs::canonicalize(found).expect("canonical").display().to_string()
}

fn toml_list(v: &[&str]) -> String {
    format!("[{}]", v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "))
}

/// The verdict of `first_instance_defence` in an audit's JSON report, with its reason.
fn first_instance_defence(done: &Output) -> String {
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).expect("a JSON report");
    let result = report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["scenario"] == "first_instance_defence"))
        .cloned()
        .unwrap_or_default();
    match result["verdict"].as_str() {
        Some(v @ ("pass" | "fail")) => v.to_string(),
        other => format!("{}: {}", other.unwrap_or("missing"), result["reason"]),
    }
}

/// Every command, against a fresh plant before each; the victim and the plant checked after.
fn every_command_as_root_among_planted_names() {
    let work = tempfile::Builder::new().prefix("ph-shared-machine-").tempdir().expect("work dir");
    let dir = work.path();
    // The server of the coverage run (another uid) executes the program built in here.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let private = tempfile::Builder::new().prefix("ph-victim-").tempdir().expect("victim dir");
    let victim = private.path().join("precious");
    std::fs::write(&victim, PRECIOUS).expect("victim");
    let intact = |after: &str| {
        let now = std::fs::read_to_string(&victim).expect("read the victim");
        assert!(now == PRECIOUS, "after {after}: root's file now holds {:?}", now.chars().take(80).collect::<String>());
    };

    // Each command is a step; every step runs (a fresh plant before each), and the test
    // fails at the end naming each step that did not hold.
    let mut failed: Vec<String> = Vec::new();
    let mut step = |name: &str, probe_dirs: bool, f: &dyn Fn()| {
        std::fs::write(&victim, PRECIOUS).expect("victim");
        let planted = Planted::plant(&victim, probe_dirs);
        let held = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f();
            intact(name);
            planted.unchanged(name);
        }));
        if let Err(e) = held {
            let why = e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
            let why: String = why.unwrap_or_default().chars().take(400).collect();
            failed.push(format!("{name}: {why}"));
        }
    };

    // cc: the coverage runtime compiled and linked into the C fixture.
    let program = dir.join("stateful-bugs-c");
    step("cc", true, &|| {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/stateful-bugs.c");
        let mut cc = harness(&["cc", "-O1", "-o"]);
        cc.arg(&program).arg(&source);
        run("cc", cc);
        assert!(program.is_file(), "cc built the fixture");
    });

    // fuzz with coverage, the server another uid: its coverage file reaches it.
    let plan = dir.join("coverage.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"stateful-bugs-c\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/sbc-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = true\nrun_as = \"{SERVER}\"\n",
            program.display()
        ),
    )
    .expect("plan");
    step("fuzz with coverage", true, &|| {
        let mut fuzz = harness(&["fuzz"]);
        fuzz.arg(&plan).args(["--seed", "1", "--cases", "200", "--format", "json", "--out"]).arg(dir.join("found"));
        let done = run("fuzz", fuzz);
        let c: pipe_harness::engine::live::Campaign = serde_json::from_slice(&done.stdout)
            .unwrap_or_else(|e| panic!("campaign: {e}: {}", String::from_utf8_lossy(&done.stderr)));
        assert!(c.edges.is_some_and(|e| e > 20), "the server (uid {SERVER}) wrote its coverage: {:?}", c.edges);
    });

    // audit of a program the harness starts.
    let plain = dir.join("plain.toml");
    std::fs::write(
        &plain,
        format!(
            "[target]\nname = \"stateful-bugs\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/ph-st-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\n",
            common::program_for_plan("stateful-bugs")
        ),
    )
    .expect("plan");
    step("audit", true, &|| {
        let mut audit = harness(&["audit"]);
        audit.arg(&plain).args(["--format", "json", "--scenario", "first_instance_defence"]);
        let verdict = first_instance_defence(&run("audit", audit));
        assert!(verdict == "pass" || verdict == "fail", "a verdict on the server, not {verdict:?}");
    });

    // record: a client's session relayed to the server and saved.
    step("record", true, &|| {
        let listen = dir.join("client.sock");
        let recordings = dir.join("recordings");
        let _ = std::fs::remove_file(&listen);
        let mut record = harness(&["record"]);
        record.arg(&plain).arg("--listen").arg(&listen).arg("--out").arg(&recordings);
        record.args(["--connections", "1", "--timeout", "30"]).stdout(Stdio::null());
        let mut recording = record.spawn().expect("record");
        // The socket appears once the recorder serves it (nothing to wait on but its presence).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !listen.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let client = Command::new(common::beside_cli("stateful-client")).arg("--endpoint").arg(&listen).output();
        let ended = pipe_harness::unix::creds::wait_pid_exit(recording.id(), Duration::from_secs(30)).expect("wait");
        if !ended {
            let _ = recording.kill();
        }
        let status = recording.wait().expect("status");
        assert!(client.expect("client").status.success(), "the client talked through the recorder");
        assert!(ended && status.success(), "record worked: {status}");
        assert!(recordings.join("stateful-bugs-conn1.json").is_file(), "saved");
    });

    // A managed service: socat under start-stop-daemon, the commands' output in the log.
    let pid = dir.join("socat.pid").display().to_string();
    let socat = socat();
    let start = [
        "start-stop-daemon",
        "--start",
        "--background",
        "--make-pidfile",
        "--pidfile",
        &pid,
        "--exec",
        &socat,
        "--",
        "UNIX-LISTEN:{pipe},fork",
        "EXEC:/bin/cat",
    ];
    let stop = ["start-stop-daemon", "--stop", "--pidfile", &pid, "--remove-pidfile", "--retry", "TERM/5/KILL/5"];
    let managed = dir.join("managed.toml");
    std::fs::write(
        &managed,
        format!(
            "[target]\nname = \"socat-daemon\"\nendpoint = \"{{dir}}/socat-{{unique}}.sock\"\nstart = {}\nstop = {}\npid_file = \"{pid}\"\n",
            toml_list(&start),
            toml_list(&stop)
        ),
    )
    .expect("plan");
    let audit_managed = || {
        let mut audit = harness(&["audit"]);
        audit.arg(&managed).args(["--format", "json", "--scenario", "first_instance_defence"]);
        let verdict = first_instance_defence(&run("the managed service's audit", audit));
        assert_eq!(verdict, "pass", "socat's own verdict");
    };
    step("a managed service's audit", true, &audit_managed);
    // Again with the probe's old names free, so that a planted probe directory (which made the
    // old probe fail, and the check untestable) does not hide what the service commands'
    // log does.
    step("a managed service's audit, the probe's names free", false, &audit_managed);
    let _ =
        Command::new("start-stop-daemon").args(["--stop", "--quiet", "--pidfile", &pid, "--retry", "KILL/5"]).status();
    assert!(failed.is_empty(), "steps that did not hold:\n{}", failed.join("\n"));
}

#[test]
#[serial_test::serial]
fn planted_names_change_nothing_with_protected_symlinks_off() {
    if !pipe_harness::unix::creds::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _sysctl = ProtectedSymlinks::set(0);
    every_command_as_root_among_planted_names();
}

#[test]
#[serial_test::serial]
fn planted_names_change_nothing_with_protected_symlinks_on() {
    if !pipe_harness::unix::creds::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let _sysctl = ProtectedSymlinks::set(1);
    every_command_as_root_among_planted_names();
}
