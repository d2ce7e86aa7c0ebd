//! The live libFuzzer target's library side (`pipe_harness::engine::live::libfuzzer`), driven
//! here the way `live_fuzz_target!` drives it, against `stateful-bugs` behind its session: an
//! input with the records bug is a crash confirmed on a fresh server, with a report that ends
//! in the bucket; inputs that do nothing wrong are not findings (framed empty messages without
//! the nonce included: the server answers `BAD SESSION` and resets the rest, which the driver
//! once took for a server that no longer accepts); and `pipe-harness replay` replays a libFuzzer
//! input file.

mod common;

use pipe_harness::engine::live::libfuzzer::{case_from_input, Artifact, LiveTarget, Step};
// The facade re-exports the macro a product's fuzz/fuzz_targets/live.rs calls.
#[allow(unused_imports)]
use pipe_harness::live_fuzz_target;
use std::path::{Path, PathBuf};
use std::process::Command;

fn plan(dir: &Path) -> PathBuf {
    let program = common::program_for_plan("stateful-bugs");
    let endpoint = if cfg!(windows) { "ph-lf-{unique}" } else { "{dir}/ph-lf-{unique}.sock" };
    let text = format!(
        "[target]\nname = \"stateful-bugs\"\nprogram = '{program}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{endpoint}\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\n"
    );
    let path = dir.join("live.toml");
    std::fs::write(&path, text).expect("plan");
    path
}

/// Mode 0 (framed, behind the nonce), one message: opcode 0x07 claiming 5 records, none follow.
const RECORDS_BUG: &[u8] = &[0x00, 0x07, 0x05];

#[test]
fn a_crashing_input_is_confirmed_and_reported_and_harmless_ones_are_not_findings() {
    let dir = tempfile::Builder::new().prefix("ph-live-lf-").tempdir().expect("scratch dir");
    let mut live = LiveTarget::from_plan(&plan(dir.path())).expect("the live target starts");
    // Mode 0x1D: four framed messages without the prefix, all empty.
    for input in [&[0x00, b'P', b'I', b'N', b'G'][..], &[0x1D, 0, 0, 0], &[0x06, 1, 2, 3], &[]] {
        match live.run(input).expect("the case runs") {
            Step::Ran(_) => {}
            Step::Found { report, .. } => panic!("{input:02x?} is no finding:\n{report}"),
        }
    }
    // A crash seen only by the next input's connect (the server closed its connections before
    // its exit could be seen) is the next input's to rerun on a fresh server: up to three.
    let found = (0..3).find_map(|_| match live.run(RECORDS_BUG).expect("the case runs") {
        Step::Found { artifact, report } => Some((artifact, report)),
        Step::Ran(_) => None,
    });
    match found {
        Some((artifact, report)) => {
            assert_eq!(artifact, Artifact::Crash);
            assert!(report.contains("confirmed on a fresh server"), "{report}");
            let want = if cfg!(windows) { "0xC0000409" } else { "SIGABRT" };
            assert!(
                report
                    .lines()
                    .last()
                    .is_some_and(|l| l.starts_with("SUMMARY: pipe-harness: crash / ") && l.contains(want)),
                "{report}"
            );
        }
        None => panic!("the records bug was not found"),
    }
    // The server is started again for the next input.
    assert!(matches!(live.run(&[0x00, b'P', b'I', b'N', b'G']), Ok(Step::Ran(_))));
}

#[test]
fn an_input_is_always_the_same_case_and_replays_from_its_file() {
    let dir = tempfile::Builder::new().prefix("ph-live-lf-").tempdir().expect("scratch dir");
    let plan = plan(dir.path());
    let (target, _) = pipe_harness::engine::plan::load(&plan).expect("plan");
    let case = case_from_input(&target, RECORDS_BUG);
    assert_eq!(case, case_from_input(&target, RECORDS_BUG));
    assert_eq!(case.writes, vec![vec![0x07, 0x05]]);
    assert!(case.session.is_some_and(|s| s.messages && s.prefix && s.steps == 1));
    let input = dir.path().join("crash-records");
    std::fs::write(&input, RECORDS_BUG).expect("input");
    let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("replay")
        .arg(&input)
        .arg(&plan)
        .args(["--times", "2"])
        .output()
        .expect("run pipe-harness replay");
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{out}{}", String::from_utf8_lossy(&run.stderr));
    assert!(out.contains("2 fresh server(s): 2 ended in a finding"), "{out}");
    // A harmless input replays as harmless (exit 0).
    std::fs::write(&input, [0x00, b'P', b'I', b'N', b'G']).expect("input");
    let run =
        Command::new(env!("CARGO_BIN_EXE_pipe-harness")).arg("replay").arg(&input).arg(&plan).output().expect("run");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stdout));
}

/// The plan's session only: its program (`target/stateful-bugs-c`, built by `pipe-harness cc`)
/// need not exist for that, so the plan is read without checking it.
#[test]
fn the_committed_dictionary_is_the_live_plans() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (target, _) = pipe_harness::engine::plan::load_unchecked(&root.join("fixtures/plans/stateful-bugs-c.toml"))
        .expect("the live plan");
    let dict = std::fs::read_to_string(root.join("fuzz/dicts/live.dict")).expect("fuzz/dicts/live.dict");
    assert_eq!(dict, pipe_harness::engine::live::libfuzzer::dictionary(&target));
}
