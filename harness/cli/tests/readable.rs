//! What a run prints is readable where it is read (issue 26, items 3 and 8): in a CI log (stderr
//! not a terminal) the fuzzer's progress is plain status lines, never carriage-return frames.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A plan for `misbehave --mode echo` (it never ends in a finding).
fn echo_plan(dir: &Path) -> PathBuf {
    let program = common::program_for_plan("misbehave");
    let endpoint = if cfg!(windows) { "ph-rd-{unique}" } else { "{dir}/ph-rd-{unique}.sock" };
    let text = format!(
        "[target]\nname = \"echo\"\nprogram = '{program}'\nargs = [\"--endpoint\", \"{{pipe}}\", \"--mode\", \"echo\"]\nendpoint = \"{endpoint}\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\n"
    );
    let path = dir.join("echo.toml");
    std::fs::write(&path, text).expect("plan");
    path
}

#[cfg(unix)]
#[test]
fn the_fuzzers_progress_in_a_log_is_plain_status_lines() {
    let dir = tempfile::Builder::new().prefix("ph-readable-").tempdir().expect("scratch dir");
    let plan = echo_plan(dir.path());
    let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("fuzz")
        .arg(&plan)
        .args(["--duration", "7", "--seed", "1", "--out"])
        .arg(dir.path().join("findings"))
        .output()
        .expect("pipe-harness fuzz");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!err.contains('\r'), "carriage-return frames in a log:\n{err:?}");
    // The campaign runs 7 s (no finding stops it): a status line every 5 s.
    let status: Vec<&str> = err.lines().filter(|l| l.starts_with("fuzzing: ")).collect();
    assert!(!status.is_empty(), "no status line:\n{err}");
    for l in &status {
        assert!(l.contains(" cases, ") && l.contains(" unconfirmed, ") && l.len() <= 100, "{l}");
    }
}
