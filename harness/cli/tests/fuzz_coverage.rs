//! Coverage-guided fuzzing of a C server built with `pipe-harness cc`: `fixtures/c/stateful-bugs.c`
//! (a session with a nonce, then a trusted record count, a magic compared a byte at a time and a
//! one-byte checksum). With the edges and comparison operands the runtime reports, each campaign
//! (seeds 1-3) finds all three bugs, each its own finding confirmed 3 of 3 on fresh servers; the
//! campaign reports the edges it reached. The Rust twin, `fixtures/src/bin/stateful-bugs.rs`,
//! built with rustc's SanitizerCoverage pass and the same runtime (the RUSTFLAGS docs/fuzzer.md
//! gives), is solved the same way.

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
        "[target]\nname = \"{}\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"]\nendpoint = \"{{dir}}/sbc-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = true\n",
        program.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        program.display()
    );
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).expect("plan");
    path
}

/// The Rust fixture built as docs/fuzzer.md says: the runtime compiled with `cc -c -O2 -fPIC`,
/// then `cargo build` with the sancov RUSTFLAGS and the runtime as a link argument (in a target
/// directory of its own, kept between runs).
fn build_rust() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sancov");
    std::fs::create_dir_all(&target).expect("target dir");
    let runtime = target.join("ph_cov.o");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/ph_cov.c");
    let status = Command::new("cc").args(["-c", "-O2", "-fPIC", "-o"]).arg(&runtime).arg(&source).status().expect("cc");
    assert!(status.success(), "cc built the runtime");
    let flags = format!(
        "-C passes=sancov-module -C llvm-args=-sanitizer-coverage-level=3 -C llvm-args=-sanitizer-coverage-trace-pc-guard \
         -C llvm-args=-sanitizer-coverage-trace-compares -C link-arg={}",
        runtime.display()
    );
    let out = Command::new(env!("CARGO"))
        .args(["build", "--locked", "--offline", "-q", "-p", "pipe-harness-fixtures", "--bin", "stateful-bugs"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("RUSTFLAGS", flags)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "cargo build with sancov: {}", String::from_utf8_lossy(&out.stderr));
    target.join("debug/stateful-bugs")
}

#[test]
fn with_coverage_the_magic_and_the_checksum_are_solved_not_guessed() {
    let dir = tempfile::Builder::new().prefix("ph-fuzz-coverage-").tempdir().expect("scratch dir").keep();
    solved(&dir, &plan(&dir, &build(&dir)), ["SIGABRT", "SIGFPE", "SIGSEGV"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn with_coverage_the_rust_twin_is_solved_too() {
    let dir = tempfile::Builder::new().prefix("ph-fuzz-coverage-rust-").tempdir().expect("scratch dir").keep();
    // The records bug is Rust's abort: SIGABRT too.
    solved(&dir, &plan(&dir, &build_rust()), ["SIGABRT", "SIGFPE", "SIGSEGV"]);
    std::fs::remove_dir_all(&dir).ok();
}

/// Seeds 1-3: edges reported, and the three bugs, each once, each confirmed 3 of 3.
fn solved(dir: &Path, plan: &Path, want: [&str; 3]) {
    for seed in 1..=3u64 {
        let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .arg("fuzz")
            .arg(plan)
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
        assert_eq!(ended, want, "seed {seed}: all three bugs, each once, in {} cases", c.cases);
    }
}

/// `--save-corpus` writes the coverage corpus as messages; `--corpus` resumes from them: a second
/// campaign that reads the first one's folder and saves into another saves every input of the
/// first (they were in its corpus from the start) and more.
#[test]
fn a_campaign_saves_its_corpus_and_the_next_one_resumes_from_it() {
    let dir = tempfile::Builder::new().prefix("ph-fuzz-corpus-").tempdir().expect("scratch dir").keep();
    let plan = plan(&dir, &build(&dir));
    let (corpus, resumed) = (dir.join("corpus"), dir.join("resumed"));
    let files = |d: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(d)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    };
    let run = |seed: u64, from: Option<&Path>, to: &Path| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipe-harness"));
        cmd.arg("fuzz").arg(&plan).args(["--seed", &seed.to_string(), "--cases", "200", "--out"]);
        cmd.arg(dir.join(format!("found{seed}"))).arg("--save-corpus").arg(to);
        if let Some(from) = from {
            cmd.arg("--corpus").arg(from);
        }
        let out = cmd.output().expect("run pipe-harness fuzz");
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let said = run(1, None, &corpus);
    let first = files(&corpus);
    assert!(!first.is_empty() && first.iter().all(|f| f.ends_with(".msg")), "{said}");
    assert!(said.contains(&format!("corpus: {} inputs in", first.len())), "{said}");
    for f in &first {
        let bytes = std::fs::read(corpus.join(f)).expect("a saved input");
        assert!(bytes.len() < 64 * 1024, "{f}: a message, not a campaign");
    }
    let said = run(2, Some(&corpus), &resumed);
    let second = files(&resumed);
    assert!(second.is_superset(&first), "the resumed campaign kept what it started from: {said}");
    assert!(second.len() > first.len(), "and added to it: {said}");
    // Saved again into the same folder: nothing is written twice.
    let said = run(2, Some(&corpus), &corpus);
    assert!(files(&corpus).len() >= first.len() && said.contains("new)"), "{said}");
    // Minimised: fewer inputs, the same edges, and minimising that again keeps the edges.
    let cmin = |from: &Path, to: &Path| -> (usize, usize, u64) {
        let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .arg("cmin")
            .arg(&plan)
            .arg("--corpus")
            .arg(from)
            .arg("--out")
            .arg(to)
            .output()
            .expect("run pipe-harness cmin");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        // "cmin: N inputs, M kept in DIR (E edges; ...)"
        let num = |after: &str| -> u64 {
            text.split(after)
                .next()
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{text}"))
        };
        (
            num(" inputs,") as usize,
            num(" kept in") as usize,
            text.split('(')
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{text}")),
        )
    };
    let (given, kept, edges) = cmin(&resumed, &dir.join("min"));
    assert_eq!(given, second.len());
    assert!(kept < given && kept == files(&dir.join("min")).len(), "{given} inputs, {kept} kept");
    let (_, _, again) = cmin(&dir.join("min"), &dir.join("min2"));
    assert_eq!(again, edges, "the minimised corpus reaches the edges the whole corpus reached");
    let _ = std::fs::remove_dir_all(&dir);
}
