//! The harness itself killed mid-run: `pipe-harness fuzz` against a server that starts a helper
//! process, then SIGTERM to the harness (Linux) or TerminateProcess (Windows, under Wine). Every
//! process of the run must be gone afterwards, and (Linux) the run's folder removed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes a plan for `misbehave --mode helper` with `env` in the server's environment.
fn plan(dir: &Path, endpoint: &str, env: &str) -> PathBuf {
    plan_with(dir, endpoint, env, "")
}

/// The same, with more `[target]` lines.
fn plan_with(dir: &Path, endpoint: &str, env: &str, more: &str) -> PathBuf {
    // A TOML literal string keeps backslashes.
    let program = common::program_for_plan("misbehave");
    let text = format!(
        r#"[target]
name = "helper"
program = '{program}'
args = ["--endpoint", "{{pipe}}", "--mode", "helper"]
endpoint = "{endpoint}"
ready = "line:READY"
framing = "length:4:be"
ping = {{ request = "PING", success = "PONG" }}
env = {{ PH_TERMINATION_TEST = "{env}" }}
{more}
"#
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).expect("plan");
    path
}

/// Polls `done` until it holds or `limit` passes (observing processes the test does not own:
/// there is nothing to wait on but their presence).
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `pipe-harness fuzz PLAN` for two minutes (it is killed long before).
fn fuzz_for_two_minutes(plan: &Path, dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .args(["fuzz", plan.to_str().expect("utf-8"), "--duration", "120", "--seed", "1", "--out"])
        .arg(dir.join("findings"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pipe-harness")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = tempfile::Builder::new().prefix(&format!("ph-term-{tag}-")).tempdir().expect("scratch dir").keep();
    dir
}

#[cfg(unix)]
#[test]
// One harness at a time: a run that starts removes the folders of dead runs, so one beside the
// SIGKILL test would remove the folder that test must first see left behind.
#[serial_test::serial(harness_runs)]
fn sigterm_to_the_harness_kills_the_whole_run_and_removes_its_folder() {
    use pipe_harness::unix::procfs::processes_with_env;
    let marker = format!("run-{}", std::process::id());
    let dir = scratch("unix");
    let plan = plan(&dir, "{dir}/helper-{unique}.sock", &marker);
    let mut cli = fuzz_for_two_minutes(&plan, &dir);
    let cli_pid = cli.id();
    let up = within(Duration::from_secs(30), || processes_with_env("PH_TERMINATION_TEST", &marker).len() >= 2);
    if !up {
        let _ = cli.kill();
        let _ = cli.wait();
        panic!("the server and its helper never ran");
    }
    let run_dirs = || -> Vec<PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&format!("pipe-harness-{cli_pid}-")))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(!run_dirs().is_empty(), "the run's folder exists while it runs");
    // The server's cgroups (Linux, root): made while it runs, gone after the signal.
    let cgroups = || cgroups_of(cli_pid);
    let contained = pipe_harness::supervise::has_cgroups();
    assert!(!contained || !cgroups().is_empty(), "no cgroup of the run while it runs");
    let status = Command::new("kill").args(["-TERM", &cli_pid.to_string()]).status().expect("kill");
    assert!(status.success());
    assert!(
        pipe_harness::unix::creds::wait_pid_exit(cli_pid, Duration::from_secs(20)).expect("wait"),
        "harness still running"
    );
    let code = cli.wait().expect("status").code();
    assert_eq!(code, Some(128 + 15), "exit status 128 + SIGTERM");
    assert!(
        within(Duration::from_secs(10), || processes_with_env("PH_TERMINATION_TEST", &marker).is_empty()),
        "processes of the run left: {:?}",
        processes_with_env("PH_TERMINATION_TEST", &marker)
    );
    assert!(run_dirs().is_empty(), "run folders left: {:?}", run_dirs());
    assert!(cgroups().is_empty(), "cgroups left: {:?}", cgroups());
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGKILL to the harness runs none of its cleanup: its run folder (with a stale socket) and
/// its cgroups stay. The next run removes them: the folder of a pid that is gone, the harness's
/// uid's, at once; the empty cgroups of a pid that is gone once a minute old (backdated here).
#[cfg(unix)]
#[test]
// One harness at a time: a run that starts removes the folders of dead runs, so one beside the
// SIGKILL test would remove the folder that test must first see left behind.
#[serial_test::serial(harness_runs)]
fn after_a_sigkill_the_next_run_removes_the_dead_runs_folder_and_cgroups() {
    use pipe_harness::unix::procfs::processes_with_env;
    let marker = format!("kill-{}", std::process::id());
    let dir = scratch("sigkill");
    // An echo server (no helper: a helper outlives a SIGKILLed harness, in its cgroup, and a
    // cgroup with a member is never touched by the next run).
    let plan = plan(&dir, "{dir}/echo-{unique}.sock", &marker);
    let text = std::fs::read_to_string(&plan).expect("plan").replace("\"helper\"]", "\"echo\"]");
    std::fs::write(&plan, text).expect("plan");
    let mut cli = fuzz_for_two_minutes(&plan, &dir);
    let cli_pid = cli.id();
    let up = within(Duration::from_secs(30), || !processes_with_env("PH_TERMINATION_TEST", &marker).is_empty());
    let run_dirs = || -> Vec<PathBuf> {
        std::fs::read_dir(std::env::temp_dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&format!("pipe-harness-{cli_pid}-")))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let contained = pipe_harness::supervise::has_cgroups();
    let cgroups_up = !contained || !cgroups_of(cli_pid).is_empty();
    let _ = cli.kill(); // SIGKILL
    let _ = cli.wait();
    assert!(up && cgroups_up, "the server never ran (cgroups: {cgroups_up})");
    assert!(
        within(Duration::from_secs(20), || processes_with_env("PH_TERMINATION_TEST", &marker).is_empty()),
        "processes of the run left"
    );
    let left = run_dirs();
    assert!(!left.is_empty(), "a SIGKILL leaves the run's folder (nothing ran to remove it)");
    let cgroups = cgroups_of(cli_pid);
    assert!(!contained || !cgroups.is_empty(), "a SIGKILL leaves the run's cgroups");
    for cg in &cgroups {
        let status = Command::new("touch").args(["-d", "2 minutes ago"]).arg(cg).status().expect("touch");
        assert!(status.success(), "backdating {}", cg.display());
    }
    // The next run, against the same plan.
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .args(["audit", plan.to_str().expect("utf-8"), "--scenario", "framing_robustness", "--seed", "1"])
        .output()
        .expect("pipe-harness");
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    assert!(run_dirs().is_empty(), "the dead run's folders are left: {:?}", run_dirs());
    assert!(cgroups_of(cli_pid).is_empty(), "the dead run's cgroups are left: {:?}", cgroups_of(cli_pid));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Cgroup directories named for harness process `pid`'s trees, anywhere under /sys/fs/cgroup
/// (four levels down: a hierarchy, then the harness's own cgroup's path).
#[cfg(unix)]
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("pipe-harness-{pid}-");
    let mut found = Vec::new();
    let mut level = vec![PathBuf::from("/sys/fs/cgroup")];
    for _ in 0..5 {
        let mut next = Vec::new();
        for dir in level {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = e.path();
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    found.push(path);
                } else {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    found
}

/// An account the plan had the harness create is deleted by the signal cleanup too.
#[cfg(unix)]
#[test]
// One harness at a time: a run that starts removes the folders of dead runs, so one beside the
// SIGKILL test would remove the folder that test must first see left behind.
#[serial_test::serial(harness_runs)]
fn sigterm_to_the_harness_deletes_the_accounts_it_created() {
    use pipe_harness::unix::creds::{account_exists, is_root};
    if !is_root() {
        return; // creating accounts needs root; the audit's error says so (tests/tests/accounts.rs)
    }
    let account = format!("ph-term-{}", std::process::id());
    assert!(!account_exists(&account), "{account} exists before the run");
    let dir = scratch("accounts");
    let more = format!("create_accounts = [\"{account}\"]\nrun_as = \"{account}\"");
    let plan = plan_with(&dir, "{dir}/helper-{unique}.sock", &format!("acct-{account}"), &more);
    let mut cli = fuzz_for_two_minutes(&plan, &dir);
    let up = within(Duration::from_secs(30), || {
        pipe_harness::unix::procfs::processes_with_env("PH_TERMINATION_TEST", &format!("acct-{account}")).len() >= 2
    });
    let created = account_exists(&account);
    let _ = Command::new("kill").args(["-TERM", &cli.id().to_string()]).status();
    let code = cli.wait().expect("status").code();
    assert!(up && created, "the run never started as {account} (up {up}, account made {created})");
    assert_eq!(code, Some(128 + 15), "exit status 128 + SIGTERM");
    assert!(!account_exists(&account), "{account} outlived the run");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(windows)]
#[test]
// One harness at a time: a run that starts removes the folders of dead runs, so one beside the
// SIGKILL test would remove the folder that test must first see left behind.
#[serial_test::serial(harness_runs)]
fn killing_the_harness_kills_the_whole_run() {
    use pipe_harness::windows::process::{child_processes, wait_for_pid_exit};
    let dir = scratch("windows");
    let plan = plan(&dir, "ph-term-{unique}", "windows");
    let mut cli = fuzz_for_two_minutes(&plan, &dir);
    // The server is the harness's child, the helper the server's; both misbehave.exe (the
    // harness may have other children, Wine's conhost among them, that are not the run's).
    let ours = |pid: u32| -> Vec<u32> {
        let kids = child_processes(pid).unwrap_or_default();
        kids.into_iter().filter(|(_, exe)| exe.eq_ignore_ascii_case("misbehave.exe")).map(|(p, _)| p).collect()
    };
    let mut run = Vec::new();
    let up = within(Duration::from_secs(60), || {
        run = ours(cli.id());
        let helpers: Vec<u32> = run.iter().flat_map(|s| ours(*s)).collect();
        run.extend(helpers);
        run.len() >= 2
    });
    let _ = cli.kill(); // TerminateProcess: no cleanup code of the harness runs
    let _ = cli.wait();
    assert!(up, "the server and its helper never ran");
    for pid in &run {
        assert!(
            wait_for_pid_exit(*pid, Duration::from_secs(20)).expect("wait"),
            "process {pid} of the run outlived the harness"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGINT (Ctrl-C) mid-audit: the checks judged before it are written where the report was
/// asked for, marked interrupted, and nothing of the run is left. The server listens (socat)
/// the first time it starts, for the control connection, and never again; the first check is
/// not applicable (at once), the second waits up to 60 s for a server that never gets ready: the
/// signal goes once stderr says the first is judged, so it always lands in the second.
#[cfg(unix)]
#[test]
// One harness at a time: a run that starts removes the folders of dead runs, so one beside the
// SIGKILL test would remove the folder that test must first see left behind.
#[serial_test::serial(harness_runs)]
fn sigint_mid_audit_writes_what_was_judged_marked_interrupted() {
    use std::io::BufRead as _;
    let dir = scratch("sigint");
    let plan = dir.join("plan.toml");
    let once = dir.join("started-once");
    let script = "if [ -e \\\"$1\\\" ]; then exec sleep 120; fi; : > \\\"$1\\\"; exec socat UNIX-LISTEN:\\\"$2\\\",fork EXEC:/bin/cat";
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"ready-once\"\nprogram = \"/bin/sh\"\nargs = [\"-c\", \"{script}\", \"sh\", '{}', \"{{pipe}}\"]\nendpoint = \"{{dir}}/ro-{{unique}}.sock\"\nready_timeout_ms = 60000\n",
            once.display()
        ),
    )
    .expect("plan");
    let report = dir.join("report.json");
    let mut cli = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .args(["audit", "--scenario", "peer_credentials", "--scenario", "framing_robustness", "--format", "json"])
        .arg(&plan)
        .arg("--out")
        .arg(&report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipe-harness");
    let cli_pid = cli.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = cli.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let judged = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.starts_with("[1/2] NOT_APPLICABLE peer_credentials") => break true,
            Ok(line) => seen.push(line),
            Err(_) => break false,
        }
    };
    if !judged {
        let _ = cli.kill();
        let _ = cli.wait();
        panic!("no progress line for the first check: {seen:?}");
    }
    let status = Command::new("kill").args(["-INT", &cli_pid.to_string()]).status().expect("kill");
    assert!(status.success());
    assert!(
        pipe_harness::unix::creds::wait_pid_exit(cli_pid, Duration::from_secs(20)).expect("wait"),
        "harness still running"
    );
    assert_eq!(cli.wait().expect("status").code(), Some(128 + 2), "exit status 128 + SIGINT");
    let text = std::fs::read_to_string(&report).expect("the report was written");
    let written: pipe_harness::engine::report::AuditReport = serde_json::from_str(&text).expect(&text);
    assert_eq!(written.interrupted.as_deref(), Some("SIGINT after 1 of 2 checks"), "{text}");
    assert_eq!(written.results.len(), 1, "{text}");
    assert_eq!(written.results[0].verdict.kind(), "not_applicable");
    let left: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("pipe-harness-{cli_pid}-")))
        })
        .collect();
    assert!(left.is_empty(), "run folders left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
