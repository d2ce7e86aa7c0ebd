//! A worked example: how a product audits its Unix-socket server from `cargo test`.
//!
//! The product points a `Target` at its server (here the bundled `unix-hardened` and
//! `unix-umask-leak` fixtures stand in for it), writes down who may connect, and asserts on the
//! verdicts. Run as root, the harness starts the server as the service's uid and connects as
//! other uids for real; run as another user, the checks that need other identities say
//! *unverifiable* instead of passing.

#![cfg(unix)]

use pipe_harness::engine::{Exchange, Policy, Readiness, Target, Verdict};
use pipe_harness::identity::Identity;
use pipe_harness::protection::Protection;
use pipe_harness::scenarios::{audit, ScenarioId};
use pipe_harness::unix::creds::Ids;
use pipe_harness::unix::{RuntimeDirectory, UnixBackend};
use rstest::rstest;

use pipe_harness_tests::bundled;

/// The product's server: runs as uid 61000 with its socket in a directory only uid 61000 may
/// write (its runtime directory: `{private_dir:61000}` makes one in the run's folder).
fn service(binary: &str) -> Target {
    in_dir(binary, "{private_dir:61000}")
}

/// The same server with its socket in `dir`.
fn in_dir(binary: &str, dir: &str) -> Target {
    let mut t = Target::new(binary, bundled(binary), &format!("{dir}/my-service-{{unique}}.sock"));
    t.args = vec!["--socket".into(), "{pipe}".into()];
    t.readiness = Readiness::Line("READY".into());
    t.run_as = Some(Identity::uid(61000));
    t.ping = Some(Exchange { request: b"PING".to_vec(), success_prefix: b"PONG".to_vec() });
    t.privileged = Some(Exchange { request: b"PRIV example".to_vec(), success_prefix: b"OK".to_vec() });
    t
}

/// What the product intends: a 0600 socket owned by the service, only the service's own uid
/// may make privileged requests, containers sharing the path may connect.
fn policy() -> Policy {
    Policy {
        protection: Some(Protection::unix(0o600, 61000)),
        allowed_users: vec![Identity::uid(61000)],
        denied_users: vec![Identity::uid(61001)],
        other_sessions: Some(true),
        ..Policy::default()
    }
}

#[rstest]
#[case::no_one_else_can_take_its_name(ScenarioId::InstanceSquatting)]
#[case::refuses_a_taken_path(ScenarioId::FirstInstanceDefence)]
#[case::mode_survives_restarts_and_umasks(ScenarioId::DaclChurn)]
#[case::no_window_at_startup(ScenarioId::PermissionWindow)]
#[case::authorizes_by_peer_uid(ScenarioId::PeerCredentials)]
fn the_hardened_service_has_no_findings(#[case] scenario: ScenarioId) {
    let backend = UnixBackend::new().expect("backend");
    let report = audit(&backend, &service("unix-hardened"), &policy(), 42, &[scenario]);
    let verdict = &report.results[0].verdict;
    assert!(matches!(verdict, Verdict::Pass { .. } | Verdict::Unverifiable { .. }), "{}", report.to_human());
}

#[test]
fn a_service_that_leaves_its_mode_to_the_umask_is_caught() {
    let backend = UnixBackend::new().expect("backend");
    let report = audit(&backend, &service("unix-umask-leak"), &policy(), 42, &[ScenarioId::DaclChurn]);
    if pipe_harness::unix::creds::is_root() {
        assert_eq!(report.exit_code(), 1, "{}", report.to_human());
        assert!(report.results.iter().all(|r| r.verdict.kind() == "fail"), "{}", report.to_human());
    } else {
        assert!(report.results.iter().all(|r| r.verdict.kind() == "unverifiable"), "{}", report.to_human());
    }
}

/// The same hardened server with its socket in a directory every uid may write (mode 1777, as
/// `/tmp`, where such servers keep theirs): while it is down (restarting), uid 61001 takes its
/// name, and the clients that arrive meanwhile talk to uid 61001.
#[test]
fn a_socket_in_a_shared_directory_is_taken_in_the_restart_gap() {
    let backend = UnixBackend::new().expect("backend");
    let tmp = RuntimeDirectory::with_mode(Ids { uid: 0, gid: 0 }, 0o1777).expect("a shared directory");
    let shared = in_dir("unix-hardened", &tmp.path().display().to_string());
    let report = audit(&backend, &shared, &policy(), 42, &[ScenarioId::InstanceSquatting]);
    let verdict = &report.results[0].verdict;
    if !pipe_harness::unix::creds::is_root() {
        assert_eq!(verdict.kind(), "unverifiable", "{}", report.to_human());
        return;
    }
    match verdict {
        Verdict::Fail(f) => {
            assert!(f.title.contains("uid 61001 took its name"), "{}", report.to_human());
            assert!(f.evidence.iter().any(|e| e.contains("3 of 3 clients reached it")), "{}", report.to_human());
        }
        v => panic!("expected the restart gap finding, got {v:?}"),
    }
    // In the runtime directory its deployment makes (0755, owned by its uid), the same binary
    // passes, because the directory refuses uid 61001.
    let runtime = RuntimeDirectory::new(Ids { uid: 61000, gid: 61000 }).expect("runtime directory");
    let deployed = in_dir("unix-hardened", &runtime.path().display().to_string());
    let report = audit(&backend, &deployed, &policy(), 42, &[ScenarioId::InstanceSquatting]);
    match &report.results[0].verdict {
        Verdict::Pass { evidence } => {
            assert!(
                evidence.iter().any(|e| e.contains("Permission denied") && e.contains("as uid 61001")),
                "{evidence:?}"
            )
        }
        v => panic!("expected a pass, got {v:?}"),
    }
}

/// A first plan written as the README teaches (`{dir}`): the harness made that directory, so
/// neither check judges it. The server's own defence still runs, and nothing is blamed on it.
#[test]
fn a_directory_the_harness_made_is_never_judged() {
    let backend = UnixBackend::new().expect("backend");
    let first_plan = in_dir("unix-hardened", "{dir}");
    let report =
        audit(&backend, &first_plan, &policy(), 42, &[ScenarioId::InstanceSquatting, ScenarioId::InstanceCreateRights]);
    if !pipe_harness::unix::creds::is_root() {
        return;
    }
    match &report.results[0].verdict {
        Verdict::Pass { evidence } => assert!(
            evidence.iter().any(|e| e.starts_with("(c) restart gap: not applicable") && e.contains("the harness made")),
            "{}",
            report.to_human()
        ),
        v => panic!("expected a pass with the restart gap not applicable, got {v:?}"),
    }
    match &report.results[1].verdict {
        Verdict::NotApplicable { reason, needs } => {
            assert!(reason.contains("the harness made"), "{reason}");
            assert!(needs.contains("/run/my-service/my-service.sock"), "{needs}");
        }
        v => panic!("expected not applicable, got {v:?}"),
    }
}
