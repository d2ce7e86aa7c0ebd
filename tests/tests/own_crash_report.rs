//! A server that prints its own bug report as it dies (the signal and the stack trace first,
//! then a dump of its state longer than the output's tail, as redis does) is reported with
//! that report, not as one that "printed no crash report" (issue 24, item 8): the harness keeps
//! the head, the lines around a crash marker and the tail of the output, and reads a program's
//! own fatal-signal report. Run as root or not.

#![cfg(unix)]

use pipe_harness::engine::live::{self, ReportKind};
use std::time::Duration;

#[test]
fn a_servers_own_bug_report_is_kept_and_read() {
    let dir = tempfile::Builder::new().prefix("ph-own-report-").tempdir().expect("temp dir");
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"bug-report\"\nprogram = \"{}\"\nargs = [\"--socket\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/bug-report-{{unique}}.sock\"\nready = \"line:READY\"\nping = {{ request = \"PING\", success = \"PONG\" }}\n",
            pipe_harness_tests::bundled("unix-bug-report").display()
        ),
    )
    .expect("plan");
    let (target, _) = pipe_harness::engine::plan::load(&plan).expect("plan loads");
    let backend = pipe_harness::native_backend().expect("backend");
    let opts = live::FuzzOptions {
        max_cases: 400,
        max_time: Duration::from_secs(120),
        max_findings: 1,
        max_rss_growth_kib: None,
        ..live::FuzzOptions::new(1)
    };
    let c = live::fuzz(&backend, &target, &opts, |_| {}).expect("campaign");
    let f = c.findings.first().unwrap_or_else(|| panic!("the empty frame crashes it: {c:?}"));
    let described = f.outcome.describe();
    assert!(!described.contains("printed no crash report"), "{described}");
    let crash = f.outcome.crash().expect("a crash");
    let report = crash.report.as_ref().unwrap_or_else(|| panic!("its own report is read: {:#?}", crash.output));
    assert_eq!(report.kind, ReportKind::OwnSignalReport, "{report:?}");
    assert_eq!(report.title, "SIGSEGV");
    assert_eq!(report.frames[..2], ["opcode", "serve"], "{report:?}");
    assert!(f.bucket.0.contains("opcode < serve"), "bucketed by its frames: {}", f.bucket.0);
    let out = &crash.output;
    assert!(out.first().is_some_and(|l| l.contains("unix-bug-report 1.0 starting")), "the head: {out:#?}");
    assert!(out.iter().any(|l| l.contains("BUG REPORT END")), "the tail");
    assert!(out.iter().any(|l| l.contains("left out")), "the gap is said");
}
