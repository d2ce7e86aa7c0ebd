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
    // `PIPE_HARNESS_SEED=7 cargo test ...` (Windows: PowerShell's `$env:PIPE_HARNESS_SEED=7; cargo test ...`).
    assert!(
        message.contains("PIPE_HARNESS_SEED=7") && message.contains("cargo test"),
        "the report names the seed that replays it: {message}"
    );
    Ok(())
}

#[test]
fn a_plan_with_a_mistake_is_an_error_naming_the_file() {
    let err = Audit::plan("../fixtures/plans/no-such-plan.toml").expect_err("no such file").to_string();
    assert!(err.contains("no-such-plan.toml"), "{err}");
}

/// Set by the test below for the run of the replay line it printed: that run is the product's
/// test as a developer replays it, and must fail the way the first run did.
#[cfg(unix)]
const REPLAYING: &str = "PH_FACADE_TEST_REPLAYING";

/// The replay line of a finding made from `cargo test` (the program set in code, so the plan
/// alone does not replay it) is run, as printed, from the folder it was printed in, and
/// reproduces the finding: the same seed, the same evidence (dacl_churn's umasks come from
/// the seed), the test failing again. (Unix: the line is run by `sh`.)
#[cfg(unix)]
#[test]
fn a_findings_replay_line_runs_as_printed_and_reproduces_it() -> pipe_harness::Result<()> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(3, |d| u64::from(d.subsec_nanos()) % 1000 + 2);
    let audit = Audit::plan(plan("unix-umask-leak", ""))?
        .program(bundled("unix-umask-leak"))
        .scenario(ScenarioId::DaclChurn)
        .seed(seed);
    let report = audit.run()?;
    if std::env::var_os(REPLAYING).is_some() {
        // The replay: the product's test as written.
        report.assert_no_findings();
        return Ok(());
    }
    let pipe_harness::engine::Verdict::Fail(finding) = &report.results[0].verdict else {
        // Not root: unverifiable, nothing to replay.
        assert_ne!(report.results[0].verdict.kind(), "error", "{}", report.to_human());
        return Ok(());
    };
    let line = finding.replay.clone().expect("a finding has a replay line");
    let want = format!(
        "PIPE_HARNESS_SEED={seed} cargo test -p pipe-harness-tests --test facade -- --exact a_findings_replay_line_runs_as_printed_and_reproduces_it"
    );
    assert_eq!(line, want);
    assert!(report.to_human().contains(&format!("replay: {line}")), "{}", report.to_human());
    // As printed, from here (the folder cargo runs this test in), with the seed only in the line;
    // bounded (a cargo that had to rebuild the test takes a few minutes at most).
    let out = std::process::Command::new("timeout")
        .args(["600", "sh", "-c"])
        .arg(&line)
        .env(REPLAYING, "1")
        .env_remove("PIPE_HARNESS_SEED")
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the replay must fail the test again:\n{text}");
    assert!(text.contains(&format!("(seed {seed})")), "the replay ran with seed {seed}:\n{text}");
    assert!(text.contains("1 passed") || text.contains("1 failed"), "one test ran:\n{text}");
    for e in &finding.evidence {
        assert!(text.contains(e.as_str()), "the replay shows the same evidence ({e}):\n{text}");
    }
    Ok(())
}
