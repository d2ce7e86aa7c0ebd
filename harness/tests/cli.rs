//! The `pipe-harness` binary as a user runs it.

use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
}

#[test]
fn probe_json_has_a_result_with_evidence_for_every_rule() {
    let out = harness().args(["probe", "--format", "json"]).output().expect("run pipe-harness");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: pipe_harness::probe::ProbeReport = serde_json::from_slice(&out.stdout).expect("valid JSON report");
    assert_eq!(report.schema_version, 1);
    assert_eq!(report.results.len(), pipe_harness::probe::Rule::ALL.len());
    assert!(report.results.iter().all(|r| !r.evidence.is_empty()));
    assert_eq!(report.platform.os, std::env::consts::OS);
}

#[test]
fn probe_table_goes_to_the_file_given() {
    let dir = std::env::temp_dir().join(format!("ph-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("probe.txt");
    let status = harness().args(["probe", "--out"]).arg(&file).status().expect("run");
    assert!(status.success());
    let text = std::fs::read_to_string(&file).expect("report written");
    assert!(text.starts_with("platform: ") && text.contains("first_instance_flag_enforced"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_arguments_and_unwritable_outputs_exit_2_with_the_reason() {
    let out = harness().args(["probe", "--format", "yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("yaml"));
    let out = harness().args(["probe", "--out", "/no/such/dir/x.txt"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writing the report to /no/such/dir/x.txt"), "{err}");
}
