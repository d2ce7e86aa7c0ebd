//! Replays every committed fuzz input: the seed corpora (`fuzz/corpus/<target>/`) and every
//! reproducer a campaign ever saved (`fuzz/regressions/<target>/`, copied from
//! `fuzz/artifacts/`), through the same library function the fuzz target calls. What was found
//! once stays fixed.

use pipe_harness::fuzzing::TARGETS;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_target_has_a_fuzz_target_file_and_a_seed_corpus() {
    for (name, _) in TARGETS {
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(target.is_file(), "{} is missing", target.display());
        assert!(!files(&fuzz_dir().join("corpus").join(name)).is_empty(), "no seed corpus for {name}");
    }
}

#[test]
fn corpora_and_saved_reproducers_replay_cleanly() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for sub in ["corpus", "regressions"] {
            for file in files(&fuzz_dir().join(sub).join(name)) {
                let data = std::fs::read(&file).expect("readable input");
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name} fails on {}", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len(), "replayed only {replayed} inputs");
}
