//! Coverage-guided fuzzing on Windows (run here under Wine): `fixtures/c/stateful-bugs.c` built
//! for a windows-gnu target with `pipe-harness cc` (`CC=x86_64-w64-mingw32-gcc`), whose runtime
//! maps the coverage file with `CreateFileMapping`/`MapViewOfFile`. `ci/test` builds it before
//! the Windows suite and names it in `PH_STATEFUL_BUGS_C_EXE` (a Windows path). One campaign
//! reports edges and finds the three bugs (the trusted count's `abort()`, exit 3 in the mingw
//! C runtime; the checksum's division; the magic's wild write), each confirmed 3 of 3.

#![cfg(windows)]

use pipe_harness::engine::live::{Campaign, Termination};
use std::process::Command;

#[test]
fn with_coverage_a_windows_server_s_magic_and_checksum_are_solved() {
    let program = std::env::var("PH_STATEFUL_BUGS_C_EXE").unwrap_or_else(|_| {
        panic!(
            "PH_STATEFUL_BUGS_C_EXE names no server: build it with `CC=x86_64-w64-mingw32-gcc pipe-harness cc -O1 -o \
             stateful-bugs-c.exe fixtures/c/stateful-bugs.c` (ci/test does) and give its Windows path"
        )
    });
    let dir = std::env::temp_dir().join(format!("ph-fuzz-coverage-win-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"stateful-bugs-c\"\nprogram = '{program}'\nargs = [\"--endpoint\", \"{{pipe_path}}\"]\nendpoint = \"sbc-{{unique}}\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = true\n"
        ),
    )
    .expect("plan");
    let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("fuzz")
        .arg(&plan)
        .args(["--seed", "1", "--duration", "300", "--max-findings", "3", "--format", "json", "--out"])
        .arg(dir.join("found"))
        .output()
        .expect("run pipe-harness fuzz");
    let err = String::from_utf8_lossy(&run.stderr);
    let c: Campaign = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert!(c.edges.is_some_and(|e| e > 20), "edges reported: {:?}", c.edges);
    assert_eq!(c.ended_early, Vec::<String>::new());
    let mut ended: Vec<String> = c
        .findings
        .iter()
        .map(|f| {
            assert_eq!((f.replays.matched, f.replays.of), (3, 3), "{f:?}");
            f.outcome.crash().and_then(|x| x.termination.as_ref()).map(Termination::label).unwrap_or_default()
        })
        .collect();
    ended.sort();
    assert_eq!(
        ended,
        ["0xC0000005 access violation", "0xC0000094 integer divide by zero", "exit 3"],
        "all three bugs, each once, in {} cases",
        c.cases
    );
    std::fs::remove_dir_all(&dir).ok();
}
