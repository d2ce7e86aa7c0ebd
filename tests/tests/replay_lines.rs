//! Every replay line a finding prints runs as printed, from the folder it was printed in, and
//! replays the finding. (The facade's, under `cargo test`: `facade.rs`.)

#![cfg(unix)]

use pipe_harness_tests::bundled;
use std::process::Command;

/// `framing_robustness` (the live fuzzer inside an audit) against `sequential-bugs`: the
/// finding's replay line, run by `sh` with the command on `PATH`, ends in the same finding
/// from the same case of the same seed.
#[test]
fn a_framing_findings_replay_line_is_a_command_that_replays_it() {
    let dir = tempfile::Builder::new().prefix("ph-replay-lines-").tempdir().expect("temp dir");
    let plan = dir.path().join("plan.toml");
    let text = format!(
        "[target]\nname = \"sequential-bugs\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/sb-{{unique}}.sock\"\nframing = \"length:4:le\"\n",
        bundled("sequential-bugs").display()
    );
    std::fs::write(&plan, text).expect("plan");
    let cli = bundled("pipe-harness");
    let path = format!("{}:{}", cli.parent().expect("bin dir").display(), std::env::var("PATH").unwrap_or_default());
    let first = Command::new(&cli)
        .args(["audit", "--scenario", "framing_robustness", "--seed", "1", "--format", "json"])
        .arg(&plan)
        .output()
        .expect("pipe-harness");
    let report: pipe_harness::engine::report::AuditReport = serde_json::from_slice(&first.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&first.stderr)));
    let pipe_harness::engine::Verdict::Fail(finding) = &report.results[0].verdict else {
        panic!("sequential-bugs crashes within 48 cases of seed 1: {report:?}")
    };
    let line = finding.replay.clone().expect("a replay line");
    assert!(line.starts_with("pipe-harness "), "{line}");
    let replayed = Command::new("timeout")
        .args(["300", "sh", "-c"])
        .arg(&line)
        .env("PATH", &path)
        .current_dir(dir.path())
        .output()
        .expect("sh");
    let text = String::from_utf8_lossy(&replayed.stdout).into_owned() + &String::from_utf8_lossy(&replayed.stderr);
    assert_eq!(replayed.status.code(), Some(1), "the replay finds it again: {line}\n{text}");
    // The report is wrapped to 80 columns: compared word by word.
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let said = words(&text);
    assert!(said.contains(&words(&finding.title)), "the same finding ({}):\n{text}", finding.title);
    assert!(said.contains(&words(&finding.evidence[0])), "from the same case ({}):\n{text}", finding.evidence[0]);
}
