//! What a new user sees first is true: no finding the harness caused by how it connected, and
//! no finding against an endpoint nobody reached (issue 24, items 4 and 9).
//!
//! - `unix-own-uid-only` serves only its own uid (it checks `SO_PEERCRED`, as ssh-agent does).
//!   The fuzzer's cases and its ping connect as a legitimate client (the policy's first allowed
//!   user, else the server's `run_as`), so `framing_robustness` and a campaign find nothing;
//!   a plan whose client the server rightly refuses is a plan error that quotes the reply.
//! - dbus-daemon prints its address when ready (`unix:path=P,guid=G`): `ready = "line:unix:"`
//!   is a prefix match and leaves the endpoint alone; `ready = "line:unix:path={endpoint},"`
//!   takes the endpoint from the line. A plan whose endpoint is never reached is said once
//!   (one error result, exit 2), with the endpoint and what was tried, never a finding.
//!
//! Run as root (the server runs as uid 61000; dbus-daemon as Debian's `messagebus`).

#![cfg(unix)]

use pipe_harness::engine::live;
use pipe_harness::engine::report::AuditReport;
use pipe_harness::scenarios::ScenarioId;
use pipe_harness_tests::bundled;
use std::path::PathBuf;
use std::time::Duration;

/// Writes `text` as a plan in a fresh private folder; the folder lives as long as the guard.
fn plan(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new().prefix("ph-first-contact-").tempdir().expect("temp dir");
    let file = dir.path().join("plan.toml");
    std::fs::write(&file, text).expect("plan");
    (dir, file)
}

/// `unix-own-uid-only` run as uid 61000 in a directory only it may write, with a ping; `policy`
/// is the plan's `[policy]` table.
fn own_uid_plan(policy: &str) -> String {
    format!(
        "[target]\nname = \"own-uid-only\"\nprogram = \"{}\"\nargs = [\"--socket\", \"{{pipe}}\"]\nendpoint = \"{{private_dir:61000}}/own-{{unique}}.sock\"\nready = \"line:READY\"\nrun_as = \"61000\"\nping = {{ request = \"PING\", success = \"PONG\" }}\n\n[policy]\n{policy}",
        bundled("unix-own-uid-only").display()
    )
}

fn campaign(plan: &std::path::Path, cases: u64) -> Result<live::Campaign, String> {
    let (target, _) = pipe_harness::engine::plan::load(plan).expect("plan loads");
    let backend = pipe_harness::native_backend().expect("backend");
    let opts = live::FuzzOptions { max_cases: cases, max_time: Duration::from_secs(120), ..live::FuzzOptions::new(1) };
    live::fuzz(&backend, &target, &opts, |_| {}).map_err(|e| e.to_string())
}

fn audit(plan: &std::path::Path, scenarios: &[ScenarioId]) -> AuditReport {
    let (target, policy) = pipe_harness::engine::plan::load(plan).expect("plan loads");
    let backend = pipe_harness::native_backend().expect("backend");
    pipe_harness::scenarios::audit(&backend, &target, &policy, 7, scenarios)
}

#[test]
fn a_server_that_serves_only_its_own_uid_is_fuzzed_as_its_own_client() {
    for policy in ["", "allowed_users = [\"61000\"]\n"] {
        let (_dir, file) = plan(&own_uid_plan(policy));
        let c = campaign(&file, 150).unwrap_or_else(|e| panic!("policy {policy:?}: {e}"));
        assert!(c.cases >= 150, "{c:?}");
        assert!(c.findings.is_empty() && c.unconfirmed.is_empty(), "policy {policy:?}: no false finding: {c:?}");
        let r = audit(&file, &[ScenarioId::FramingRobustness]);
        assert_eq!(r.results[0].verdict.kind(), "pass", "policy {policy:?}:\n{}", r.to_human());
    }
}

#[test]
fn a_client_the_server_rightly_refuses_is_a_plan_error_that_quotes_the_reply() {
    let (_dir, file) = plan(&own_uid_plan("allowed_users = [\"0\"]\n"));
    let err = campaign(&file, 50).expect_err("a ping that never succeeds is a plan error, not a campaign");
    let text = err;
    assert!(text.contains("the plan does not reach its server"), "{text}");
    assert!(text.contains("DENIED uid 0 is not uid 61000"), "the reply it got: {text}");
    let r = audit(&file, &[ScenarioId::FramingRobustness]);
    assert_eq!(r.results[0].verdict.kind(), "error", "never a finding:\n{}", r.to_human());
    assert_eq!(r.exit_code(), 2);
}

fn dbus_plan(ready: &str) -> String {
    let dbus = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("dbus-daemon is not installed: run ci/setup");
    format!(
        "[target]\nname = \"dbus-daemon\"\nprogram = \"{dbus}\"\nargs = [\"--session\", \"--nofork\", \"--print-address\", \"--address=unix:path={{pipe}}\"]\nendpoint = \"{{private_dir:messagebus}}/bus-{{unique}}\"\nrun_as = \"messagebus\"\nready = \"{ready}\"\n"
    )
}

#[test]
fn a_ready_line_is_a_prefix_match_unless_the_plan_says_where_it_names_the_endpoint() {
    // "line:unix:" matches dbus-daemon's address line and leaves the endpoint the plan's.
    let (_dir, file) = plan(&dbus_plan("line:unix:"));
    let r = audit(&file, &[ScenarioId::FramingRobustness]);
    assert_ne!(r.exit_code(), 2, "the endpoint is the plan's, and reached:\n{}", r.to_human());
    assert!(!r.to_human().contains("path="), "{}", r.to_human());
    // Taken from the line where the plan says so: the same socket.
    let (_dir, file) = plan(&dbus_plan("line:unix:path={endpoint},"));
    let r = audit(&file, &[ScenarioId::FramingRobustness]);
    assert_ne!(r.exit_code(), 2, "{}", r.to_human());
}

#[test]
fn an_endpoint_never_reached_is_one_plan_error_not_a_finding() {
    // The rest of the line as the endpoint (what "line:unix:" did before): "path=P,guid=G" is no socket.
    let (_dir, file) = plan(&dbus_plan("line:unix:{endpoint}"));
    let r = audit(&file, &[]);
    let text = r.to_human();
    assert_eq!(r.exit_code(), 2, "{text}");
    assert_eq!(r.results.len(), 1, "said once:\n{text}");
    assert_eq!(r.results[0].scenario, pipe_harness::scenarios::CONTROL_CONNECTION);
    assert!(text.contains("\"path=") && text.contains("never reached"), "{text}");
    assert!(!r.results.iter().any(|c| c.verdict.kind() == "fail"), "{text}");
}

#[test]
fn a_wrong_ready_line_is_one_error_after_one_timeout_naming_the_condition() {
    // The server prints "READY ..."; the plan waits for "LISTENING": one start, one wait of
    // 2 s, one error (before: one per check, 9 waits).
    let text =
        own_uid_plan("").replace("ready = \"line:READY\"", "ready = \"line:LISTENING\"\nready_timeout_ms = 2000");
    let (_dir, file) = plan(&text);
    let t0 = std::time::Instant::now();
    let r = audit(&file, &[]);
    let took = t0.elapsed();
    let human = r.to_human();
    assert_eq!(r.exit_code(), 2, "{human}");
    assert_eq!(r.results.len(), 1, "said once:\n{human}");
    assert_eq!(r.results[0].scenario, pipe_harness::scenarios::CONTROL_CONNECTION);
    for part in ["did not get ready", "\"LISTENING\"", "2.0 s", "READY"] {
        assert!(human.contains(part), "{part:?} in:\n{human}");
    }
    assert!(took < Duration::from_secs(60), "one wait, not one per check: {took:?}");
}

#[test]
fn a_run_as_uid_without_an_account_that_stops_dbus_says_so_and_the_fix() {
    let dbus = ["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .expect("dbus-daemon is not installed: run ci/setup");
    let (_dir, file) = plan(&format!(
        "[target]\nname = \"dbus-daemon\"\nprogram = \"{dbus}\"\nargs = [\"--session\", \"--nofork\", \"--print-address\", \"--address=unix:path={{pipe}}\"]\nendpoint = \"{{private_dir:61000}}/bus-{{unique}}\"\nrun_as = \"61000\"\nready = \"line:unix:\"\n"
    ));
    let r = audit(&file, &[]);
    let human = r.to_human();
    assert_eq!(r.results.len(), 1, "said once:\n{human}");
    for part in
        ["Could not get password database information", "uid 61000 has no account", "create_accounts = [\"ph-svc\"]"]
    {
        assert!(human.contains(part), "{part:?} in:\n{human}");
    }
}
