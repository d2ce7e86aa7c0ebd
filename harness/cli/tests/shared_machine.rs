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
    fn plant(victim: &Path) -> Planted {
        let tmp = std::env::temp_dir();
        Planted::remove(&tmp);
        let victim = victim.to_path_buf();
        let ids = Ids { uid: ATTACKER, gid: ATTACKER };
        let planted = as_user(ids, move || -> std::io::Result<Planted> {
            let mut p = Planted { dirs: BTreeMap::new(), links: Vec::new() };
            for pid in PIDS {
                let mut dirs = vec![(format!("pipe-harness-cc-{pid}"), vec!["ph_cov.c", "ph_cov.o"])];
                for n in 0..4 {
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
            let m = std::fs::symlink_metadata(link).unwrap_or_else(|e| panic!("after {after}: {}: {e}", link.display()));
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
        "{what} worked ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
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
        assert_eq!(std::fs::read_to_string(&victim).expect("read the victim"), PRECIOUS, "after {after}");
    };

    // cc: the coverage runtime compiled and linked into the C fixture.
    let planted = Planted::plant(&victim);
    let program = dir.join("stateful-bugs-c");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/stateful-bugs.c");
    let mut cc = harness(&["cc", "-O1", "-o"]);
    cc.arg(&program).arg(&source);
    run("cc", cc);
    assert!(program.is_file(), "cc built the fixture");
    intact("cc");
    planted.unchanged("cc");
    drop(planted);

    // fuzz with coverage, the server another uid: its coverage file reaches it.
    let planted = Planted::plant(&victim);
    let plan = dir.join("coverage.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"stateful-bugs-c\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/sbc-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = true\nrun_as = \"{SERVER}\"\n",
            program.display()
        ),
    )
    .expect("plan");
    let out = dir.join("found");
    let mut fuzz = harness(&["fuzz"]);
    fuzz.arg(&plan).args(["--seed", "1", "--cases", "200", "--format", "json", "--out"]).arg(&out);
    let done = run("fuzz", fuzz);
    let c: pipe_harness::engine::live::Campaign = serde_json::from_slice(&done.stdout)
        .unwrap_or_else(|e| panic!("campaign: {e}: {}", String::from_utf8_lossy(&done.stderr)));
    assert!(c.edges.is_some_and(|e| e > 20), "the server (uid {SERVER}) wrote its coverage: {:?}", c.edges);
    intact("fuzz");
    planted.unchanged("fuzz");
    drop(planted);

    // audit of a program the harness starts.
    let planted = Planted::plant(&victim);
    let plain = dir.join("plain.toml");
    std::fs::write(
        &plain,
        format!(
            "[target]\nname = \"stateful-bugs\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/ph-st-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\n",
            common::program_for_plan("stateful-bugs")
        ),
    )
    .expect("plan");
    let mut audit = harness(&["audit"]);
    audit.arg(&plain).args(["--format", "json", "--scenario", "first_instance_defence"]);
    run("audit", audit);
    intact("audit");
    planted.unchanged("audit");
    drop(planted);

    // record: a client's session relayed to the server and saved.
    let planted = Planted::plant(&victim);
    let listen = dir.join("client.sock");
    let recordings = dir.join("recordings");
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
    assert!(client.expect("client").status.success(), "the client talked through the recorder");
    let ended = pipe_harness::unix::creds::wait_pid_exit(recording.id(), Duration::from_secs(30)).expect("wait");
    assert!(ended, "record ended");
    assert!(recording.wait().expect("status").success(), "record worked");
    assert!(recordings.join("stateful-bugs-conn1.json").is_file(), "saved");
    intact("record");
    planted.unchanged("record");
    drop(planted);

    // A managed service: socat under start-stop-daemon, the commands' output in the log.
    let planted = Planted::plant(&victim);
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
    let mut audit = harness(&["audit"]);
    audit.arg(&managed).args(["--format", "json", "--scenario", "first_instance_defence"]);
    let done = run("the managed service's audit", audit);
    let report: serde_json::Value = serde_json::from_slice(&done.stdout).expect("a JSON report");
    let verdict = report["results"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["scenario"] == "first_instance_defence"))
        .map(|r| r["verdict"].clone());
    assert_eq!(verdict, Some("pass".into()), "socat's own verdict: {report:#}");
    intact("the managed service's audit");
    planted.unchanged("the managed service's audit");
    drop(planted);
    let _ = Command::new("start-stop-daemon").args(["--stop", "--quiet", "--pidfile", &pid, "--retry", "KILL/5"]).status();
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
