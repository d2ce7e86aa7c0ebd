//! Coverage-guided fuzzing of a C server built with `pipe-harness cc`: `fixtures/c/stateful-bugs.c`
//! (a session with a nonce, then a trusted record count, a magic compared a byte at a time and a
//! one-byte checksum). With the edges and comparison operands the runtime reports, each campaign
//! (seeds 1-3) finds all three bugs, each its own finding confirmed 3 of 3 on fresh servers; the
//! campaign reports the edges it reached.

#![cfg(unix)]

use pipe_harness::engine::live::{Campaign, Termination};
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/stateful-bugs.c");
    let out = dir.join("stateful-bugs-c");
    let status = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .args(["cc", "-O1", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("run pipe-harness cc");
    assert!(status.success(), "pipe-harness cc built the fixture");
    out
}

fn plan(dir: &Path, program: &Path) -> PathBuf {
    let text = format!(
        "[target]\nname = \"stateful-bugs-c\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/sbc-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = true\n",
        program.display()
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).expect("plan");
    path
}

#[test]
fn with_coverage_the_magic_and_the_checksum_are_solved_not_guessed() {
    let dir = std::env::temp_dir().join(format!("ph-fuzz-coverage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plan = plan(&dir, &build(&dir));
    for seed in 1..=3u64 {
        let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .arg("fuzz")
            .arg(&plan)
            .args(["--seed", &seed.to_string(), "--cases", "30000", "--max-findings", "3", "--format", "json", "--out"])
            .arg(dir.join(format!("found{seed}")))
            .output()
            .expect("run pipe-harness fuzz");
        let err = String::from_utf8_lossy(&run.stderr);
        let c: Campaign = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("seed {seed}: {e}: {err}"));
        assert!(c.edges.is_some_and(|e| e > 20), "seed {seed}: edges reported: {:?}", c.edges);
        let mut ended: Vec<String> = c
            .findings
            .iter()
            .map(|f| {
                assert_eq!((f.replays.matched, f.replays.of), (3, 3), "seed {seed}: {f:?}");
                f.outcome.crash().and_then(|x| x.termination.as_ref()).map(Termination::label).unwrap_or_default()
            })
            .collect();
        ended.sort();
        assert_eq!(ended, ["SIGABRT", "SIGFPE", "SIGSEGV"], "seed {seed}: all three bugs, each once");
    }
    std::fs::remove_dir_all(&dir).ok();
}
