//! Coverage-guided fuzzing of a C server built with `pipe-harness cc`: `fixtures/c/stateful-bugs.c`
//! (a session with a nonce, then a trusted record count, a magic compared a byte at a time and a
//! one-byte checksum). With the edges and comparison operands the runtime reports, each campaign
//! (seeds 1-3) finds all three bugs, each its own finding confirmed 3 of 3 on fresh servers; the
//! campaign reports the edges it reached. The Rust twin, `fixtures/src/bin/stateful-bugs.rs`,
//! built with rustc's SanitizerCoverage pass and the same runtime (the RUSTFLAGS docs/fuzzer.md
//! gives), is solved the same way.

#![cfg(unix)]

use pipe_harness::engine::live::{Campaign, ReportKind, Reproducer, Termination};
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(dir: &Path) -> PathBuf {
    build_with(dir, None, &[], "stateful-bugs-c")
}

/// `fixtures/c/stateful-bugs.c` built with `pipe-harness cc` and `extra` flags, with the
/// compiler `cc` (`$CC`) or the wrapper's own choice.
fn build_with(dir: &Path, cc: Option<&str>, extra: &[&str], name: &str) -> PathBuf {
    build_source(dir, cc, extra, name, "stateful-bugs.c")
}

fn build_source(dir: &Path, cc: Option<&str>, extra: &[&str], name: &str, source: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c").join(source);
    let out = dir.join(name);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipe-harness"));
    cmd.args(["cc", "-O1"]).args(extra).arg("-o").arg(&out).arg(&source);
    if let Some(cc) = cc {
        cmd.env("CC", cc);
    }
    let status = cmd.status().expect("run pipe-harness cc");
    assert!(status.success(), "pipe-harness cc built the fixture ({cc:?} {extra:?})");
    out
}

/// The C compilers installed here, of gcc and clang (CI installs both: ci/setup).
fn compilers() -> Vec<&'static str> {
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
    };
    let found: Vec<&str> = ["gcc", "clang"].into_iter().filter(|c| on_path(c)).collect();
    for c in ["gcc", "clang"] {
        if !found.contains(&c) {
            eprintln!("{c} is not installed: the coverage tests do not run with it here (ci/setup installs it)");
        }
    }
    found
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
#[serial_test::serial(coverage_campaigns)]
fn with_coverage_the_magic_and_the_checksum_are_solved_not_guessed() {
    let dir = tempdir("ph-fuzz-coverage");
    for cc in compilers() {
        let program = build_with(dir.path(), Some(cc), &[], &format!("stateful-bugs-c-{cc}"));
        let plan = plan(dir.path(), &program);
        // (The heap overread of opcode 0x4E never ends a plain build: the ASan test below
        // replays it against one.)
        solved(dir.path(), &plan, 1..=5, &["SIGABRT", "SIGFPE", "SIGSEGV"], 3);
    }
}

/// The twin whose comparisons are library calls (`-DLIBRARY_COMPARES`: the hello through
/// strncmp, a 12-byte magic through memcmp, the checksum behind the verb `SUM:` through
/// strncmp): the runtime logs those calls' operands (`pipe-harness cc` keeps them calls with
/// `-fno-builtin-...`), so input-to-state solves them too. With the runtime before that, a gcc
/// build gave the records bug alone in 30 s for seeds 1-3. Built with gcc: with clang 14 the
/// same campaigns found all three in 19 of 20 (seeds 1-5, twice each), one seed missing the
/// checksum in 60 s, so clang is not asserted here (docs/fuzzer.md).
#[test]
#[serial_test::serial(coverage_campaigns)]
fn with_coverage_magic_and_verb_compared_by_library_calls_are_solved() {
    if !compilers().contains(&"gcc") {
        return;
    }
    let dir = tempdir("ph-fuzz-libcmp");
    let program = build_with(dir.path(), Some("gcc"), &["-DLIBRARY_COMPARES"], "sbc-libcmp-gcc");
    solved(dir.path(), &plan(dir.path(), &program), 1..=5, &["SIGABRT", "SIGFPE", "SIGSEGV"], 3);
}

/// Built with clang and AddressSanitizer (`pipe-harness cc -fsanitize=address`), the fixture's
/// fourth bug, a one-byte heap overread a plain build survives, is a finding of its own; the
/// sanitizer's reports are buckets by crash type, access and frames (no addresses, pids or
/// thread ids), so each bug is confirmed 3 of 3. Its reproducer replays against the ASan build
/// and ends nothing in the plain clang build.
#[test]
#[serial_test::serial(coverage_campaigns)]
fn with_clang_and_asan_a_heap_overread_only_asan_sees_is_its_own_finding() {
    if !compilers().contains(&"clang") {
        return;
    }
    let dir = tempdir("ph-fuzz-asan");
    let asan = plan(dir.path(), &build_with(dir.path(), Some("clang"), &["-g", "-fsanitize=address"], "sbc-asan"));
    let want = [
        "SIGABRT",
        "exit 1 AddressSanitizer FPE",
        "exit 1 AddressSanitizer SEGV WRITE",
        "exit 1 AddressSanitizer heap-buffer-overflow READ",
    ];
    let found = solved(dir.path(), &asan, 1..=3, &want, 4);
    let overread =
        found.iter().find(|f| f.bucket.0.contains("heap-buffer-overflow")).expect("the overread's reproducer").clone();
    assert!(overread.bucket.0.ends_with("/ handle < serve"), "top frames, symbolised: {}", overread.bucket);
    let saved = dir.path().join("overread.json");
    std::fs::write(&saved, serde_json::to_string(&overread).expect("json")).expect("save");
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&plain_dir).expect("dir");
    let plain = plan(&plain_dir, &build_with(&plain_dir, Some("clang"), &[], "sbc-plain"));
    for (plan, code) in [(&asan, 1), (&plain, 0)] {
        let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .arg("replay")
            .arg(&saved)
            .arg(plan)
            .output()
            .expect("run pipe-harness replay");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{}: {text}", plan.display());
        let want = if code == 1 { "3 of 3 in the bucket" } else { "0 of 3 in the bucket" };
        assert!(text.contains(want), "{}: {text}", plan.display());
    }
}

#[test]
#[serial_test::serial(coverage_campaigns)]
fn with_coverage_the_rust_twin_is_solved_too() {
    let dir = tempdir("ph-fuzz-coverage-rust-");
    // The records bug is Rust's abort: SIGABRT too.
    solved(dir.path(), &plan(dir.path(), &build_rust()), 1..=3, &["SIGABRT", "SIGFPE", "SIGSEGV"], 3);
}

/// A fresh directory of the test's own, removed when it goes.
fn tempdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().expect("temp dir")
}

/// What ended a finding's server, for comparing with what a test wants: the signal or exit
/// code, then the sanitizer's title when it printed a sanitizer report.
fn ended(f: &Reproducer) -> String {
    let Some(crash) = f.outcome.crash() else { return f.bucket.0.clone() };
    let how = crash.termination.as_ref().map(Termination::label).unwrap_or_default();
    match &crash.report {
        Some(r) if r.kind == ReportKind::Sanitizer => format!("{how} {}", r.title),
        _ => how,
    }
}

/// For each seed: edges reported, and the bugs `want` (as [`ended`] says them), each once, each
/// confirmed 3 of 3; `max` findings are allowed, so a finding too many fails. The findings.
fn solved(dir: &Path, plan: &Path, seeds: std::ops::RangeInclusive<u64>, want: &[&str], max: usize) -> Vec<Reproducer> {
    let mut all = Vec::new();
    for seed in seeds {
        let started = std::time::Instant::now();
        let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
            .arg("fuzz")
            .arg(plan)
            .args(["--seed", &seed.to_string(), "--duration", "60", "--cases", "30000", "--format", "json"])
            .args(["--max-findings", &max.to_string(), "--out"])
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
                ended(f)
            })
            .collect();
        ended.sort();
        let mut want: Vec<&str> = want.to_vec();
        want.sort();
        assert_eq!(ended, want, "seed {seed} ({}): all bugs, each once, in {} cases", plan.display(), c.cases);
        eprintln!(
            "{}: seed {seed}: {} bugs in {} cases, {:.1} s",
            plan.display(),
            want.len(),
            c.cases,
            started.elapsed().as_secs_f64()
        );
        all.extend(c.findings);
    }
    all
}

/// `--save-corpus` writes the coverage corpus as messages; `--corpus` resumes from them: a second
/// campaign that reads the first one's folder and saves into another saves every input of the
/// first (they were in its corpus from the start) and more.
#[test]
#[serial_test::serial(coverage_campaigns)]
fn a_campaign_saves_its_corpus_and_the_next_one_resumes_from_it() {
    let scratch = tempdir("ph-fuzz-corpus-");
    let dir = scratch.path().to_path_buf();
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
    drop(scratch);
}

/// A recorded session seeds a coverage campaign as the session it is: sent whole, first (its
/// messages after the plan's session, each behind the new token). This recording's second
/// message is the records bug (`07ff`: 255 records, none given), so the first case ends the
/// server, and the finding is the recording itself. Before, a coverage campaign took the
/// recording's messages only as entries to mutate, and never sent the recording.
#[test]
#[serial_test::serial(coverage_campaigns)]
fn a_recorded_session_seeds_a_coverage_campaign_as_a_session() {
    let dir = tempdir("ph-fuzz-seeded");
    let plan = plan(dir.path(), &build(dir.path()));
    let corpus = dir.path().join("corpus");
    std::fs::create_dir_all(&corpus).expect("corpus dir");
    // HELLO 2, then the captured token aabbccdd and the message 07ff; the reply carries the token.
    let recording = r#"{"target": "stateful-bugs-c", "connection": 1,
        "messages": ["48454c4c4f02", "aabbccdd07ff"], "replies": ["57454c434f4d4520aabbccdd"]}"#;
    std::fs::write(corpus.join("stateful-bugs-c-conn1.json"), recording).expect("recording");
    let run = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("fuzz")
        .arg(&plan)
        .args(["--seed", "1", "--cases", "1", "--max-findings", "1", "--format", "json", "--corpus"])
        .arg(&corpus)
        .arg("--out")
        .arg(dir.path().join("found"))
        .output()
        .expect("run pipe-harness fuzz");
    let err = String::from_utf8_lossy(&run.stderr);
    let c: Campaign = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let kinds: Vec<&str> = c.findings.iter().map(|f| f.original.kind.as_str()).collect();
    assert_eq!(kinds, ["recorded connection 1 of stateful-bugs-c"], "{err}");
    assert_eq!(c.findings[0].case.writes, [vec![0x07u8, 0xff]], "the recorded message, behind the new token");
}
