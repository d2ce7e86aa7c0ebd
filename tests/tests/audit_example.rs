//! A worked example: how a product audits its own pipe server from `cargo test`.
//!
//! A product points `Target` at its server binary (in its own crate: `env!("CARGO_BIN_EXE_my-
//! service")`), writes down its policy, and asserts on the verdicts. Here the "product" is two
//! of the bundled fixtures: `hardened` (which must pass) and `heirloom-dacl` (which loses its
//! DACL after a moment with no instance, and must be caught). The fixtures are built by
//! `cargo test --workspace`; they sit next to this test's executable.
//!
//! A verdict of *unverifiable* is not a pass: it says the platform running the test cannot
//! show the rule (Wine ignores pipe DACLs on open, SQOS...). On a real Windows runner the same
//! test judges every scenario.

#![cfg(windows)]

use pipe_harness::engine::{Exchange, Policy, Readiness, Target, Verdict};
use pipe_harness::scenarios::{audit, ScenarioId};
use pipe_harness::windows::WindowsBackend;
use rstest::rstest;

use pipe_harness_tests::bundled;

/// The product's server, as the harness should start and talk to it.
fn service(binary: &str) -> Target {
    let mut t = Target::new(binary, bundled(binary), "my-service-{unique}");
    t.args = vec!["--pipe".into(), "{pipe}".into()];
    t.readiness = Readiness::Line("READY".into());
    t.ping = Some(Exchange { request: b"PING".to_vec(), success_prefix: b"PONG".to_vec() });
    t.privileged = Some(Exchange { request: b"PRIV example".to_vec(), success_prefix: b"OK".to_vec() });
    t
}

/// What the product intends: only LocalSystem and the owner, refuse a taken name, privileged
/// work only for clients that allow Impersonation, no remote clients.
fn policy() -> Policy {
    Policy { protection: Some("D:P(A;;GA;;;SY)(A;;GA;;;OW)".parse().expect("SDDL")), ..Policy::default() }
}

#[rstest]
#[case::dacl_survives_churn(ScenarioId::DaclChurn)]
#[case::refuses_a_taken_name(ScenarioId::FirstInstanceDefence)]
#[case::no_work_below_impersonation(ScenarioId::ImpersonationLimits)]
#[case::no_remote_clients(ScenarioId::RemoteExposure)]
fn the_hardened_service_has_no_findings(#[case] scenario: ScenarioId) {
    let backend = WindowsBackend::new();
    let report = audit(&backend, &service("hardened"), &policy(), 42, &[scenario]);
    let verdict = &report.results[0].verdict;
    assert!(matches!(verdict, Verdict::Pass { .. } | Verdict::Unverifiable { .. }), "{}", report.to_human());
}

#[test]
fn a_service_that_sets_its_dacl_once_is_caught() {
    let backend = WindowsBackend::new();
    let report = audit(&backend, &service("heirloom-dacl"), &policy(), 42, &[ScenarioId::DaclChurn]);
    match &report.results[0].verdict {
        Verdict::Fail(f) => assert!(f.title.contains("the policy's"), "{}", report.to_human()),
        other => panic!("expected a finding, got {other:?}\n{}", report.to_human()),
    }
    assert_eq!(report.exit_code(), 1);
}
