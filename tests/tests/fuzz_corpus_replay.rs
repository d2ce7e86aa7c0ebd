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

#[test]
fn every_dictionary_mapping_names_a_target_and_an_existing_dictionary() {
    let map = std::fs::read_to_string(fuzz_dir().join("dicts").join("by-target")).expect("dicts/by-target");
    let mut mapped = 0;
    for line in map.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let mut cols = line.split_whitespace();
        let (target, dict) = (cols.next().expect("target"), cols.next().expect("dictionary"));
        // `live` is the live server target (fuzz_targets/live.rs), not a function of TARGETS.
        assert!(
            target == "live" || TARGETS.iter().any(|(n, _)| *n == target),
            "dicts/by-target names unknown target {target}"
        );
        assert!(fuzz_dir().join("dicts").join(dict).is_file(), "{dict} does not exist");
        mapped += 1;
    }
    assert!(mapped >= 4);
}
