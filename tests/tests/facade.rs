//! The README's test, as a product writes it: one dev-dependency (`pipe-harness`), its plan
//! file, and eight lines. A product passes `env!("CARGO_BIN_EXE_my-service")` to `program`;
//! here the bundled fixtures stand in for its server, so their paths come from `bundled`.

use pipe_harness::{Audit, ScenarioId};

use pipe_harness_tests::bundled;

/// A plan of `fixtures/plans`, for this platform's twin of the fixture.
fn plan(unix: &str, windows: &str) -> String {
    format!("../fixtures/plans/{}.toml", if cfg!(windows) { windows } else { unix })
}

#[test]
fn my_service_passes_the_audit() -> pipe_harness::Result<()> {
    let (name, twin) = ("unix-hardened", "hardened");
    let audit = Audit::plan(plan(name, twin))?.program(bundled(if cfg!(windows) { twin } else { name }));
    audit.run()?.assert_no_findings();
    Ok(())
}

#[test]
fn a_finding_fails_the_test_and_the_failure_prints_the_report() -> pipe_harness::Result<()> {
    let (name, twin) = ("unix-umask-leak", "heirloom-dacl");
    let audit = Audit::plan(plan(name, twin))?
        .program(bundled(if cfg!(windows) { twin } else { name }))
        .scenario(ScenarioId::DaclChurn)
        .seed(7);
    let report = audit.run()?;
    if report.results[0].verdict.kind() == "unverifiable" {
        // Not root (Unix): the umask leak shows only to other uids; nothing claimed.
        assert!(report.is_clean(), "{}", report.to_human());
        return Ok(());
    }
    let panic = std::panic::catch_unwind(|| report.assert_no_findings()).expect_err("a finding must fail the test");
    let message = panic.downcast_ref::<String>().expect("a message");
    assert!(message.contains("FAIL") && message.contains("dacl_churn"), "{message}");
    assert!(message.contains("--seed 7"), "the report names the seed that replays it: {message}");
    Ok(())
}

#[test]
fn a_plan_with_a_mistake_is_an_error_naming_the_file() {
    let err = Audit::plan("../fixtures/plans/no-such-plan.toml").expect_err("no such file").to_string();
    assert!(err.contains("no-such-plan.toml"), "{err}");
}
