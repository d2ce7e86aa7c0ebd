//! Time to bug, with coverage feedback against without, measured in the same run: the C server
//! `fixtures/c/stateful-bugs.c` (a session with a nonce, then a trusted record count, a magic
//! compared a byte at a time and a one-byte checksum) built with `pipe-harness cc` and
//! `coverage = true`, once with each of gcc and clang that is installed (side by side), and with
//! plain `cc` fuzzed black-box (the baseline). Each seed runs every campaign with the same
//! budget; the table gives the time to the first, second and third distinct finding, and the
//! ratio baseline / coverage for each compiler (`>` when the baseline did not get there within
//! the budget, so the ratio is at least that). AFL++ is not run here (it says so when
//! `afl-fuzz` is installed; docs/fuzzer.md has the side-by-side measured by hand). Then the price of instrumentation: both
//! builds with their bugs off (`--bugs none`: no restarts), fuzzed black-box with the same seed
//! for the same time (the same cases, so the ratio is what the callbacks cost), and the
//! instrumented build with `coverage = true` (its map cleared and read around every case; its
//! cases are other cases, session messages, so its rate is shown beside, not as a ratio).
//!
//! ```text
//! cargo bench -p pipe-harness --bench time_to_bug                       # seeds 1-3, 20 s each
//! cargo bench -p pipe-harness --bench time_to_bug -- --seeds 5 --seconds 60
//! ```

use pipe_harness::engine::live::{self, Campaign};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Builds the fixture with `pipe-harness cc` and the compiler `cc` (`coverage`), or with the
/// plain compiler.
fn build(dir: &Path, coverage: Option<&str>) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/stateful-bugs.c");
    let out = dir.join(coverage.map_or_else(|| "sbc-plain".to_string(), |cc| format!("sbc-cov-{cc}")));
    let mut cmd = match coverage {
        Some(cc) => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_pipe-harness"));
            c.arg("cc").env("CC", cc);
            c
        }
        None => Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into())),
    };
    let status = cmd.args(["-O1", "-o"]).arg(&out).arg(&source).status().expect("run the compiler");
    assert!(status.success(), "building {}", out.display());
    out
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

fn target(dir: &Path, program: &Path, coverage: bool, bugs: bool) -> pipe_harness::engine::Target {
    let extra = if bugs { "" } else { ", \"--bugs\", \"none\"" };
    let text = format!(
        "[target]\nname = \"stateful-bugs-c\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\"{extra}]\nendpoint = \"{{dir}}/sbc-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:be\"\nping = {{ request = \"PING\", success = \"PONG\" }}\nsession = [{{ send = \"HELLO\\u0002\", expect = \"WELCOME \", capture = {{ offset = 8, len = 4 }} }}]\nmessage_prefix = \"{{capture}}\"\ncoverage = {coverage}\n",
        program.display()
    );
    pipe_harness::engine::plan::parse(&dir.join("plan.toml"), &text).expect("plan").0
}

/// Seconds to the first, second and third finding (`None`: not within the budget).
fn times(c: &Campaign) -> [Option<f64>; 3] {
    let mut found: Vec<u64> = c.findings.iter().map(|f| f.found_after_ms).collect();
    found.sort_unstable();
    [0, 1, 2].map(|k| found.get(k).map(|ms| *ms as f64 / 1000.0))
}

fn main() {
    let seeds = arg("--seeds", 3);
    let seconds = arg("--seconds", 20);
    let scratch = tempfile::Builder::new().prefix("ph-time-to-bug-").tempdir().expect("scratch");
    let dir = scratch.path().to_path_buf();
    let backend = pipe_harness::native_backend().expect("backend");
    let compilers: Vec<&str> = ["gcc", "clang"].into_iter().filter(|c| on_path(c)).collect();
    let cov_bins: Vec<PathBuf> = compilers.iter().map(|cc| build(&dir, Some(cc))).collect();
    let plain_bin = build(&dir, None);
    let covs: Vec<_> = cov_bins.iter().map(|b| target(&dir, b, true, true)).collect();
    let plain = target(&dir, &plain_bin, false, true);
    println!("time to bug: stateful-bugs.c, {seeds} seeds, {seconds} s budget per campaign");
    if on_path("afl-fuzz") {
        println!("(afl-fuzz is installed; AFL++ is not run by this benchmark: docs/fuzzer.md has it measured by hand)");
    }
    let mut header = format!("{:>4} {:>4}", "seed", "bug");
    for cc in &compilers {
        header += &format!("  {:>14}", format!("{cc} cov (s)"));
    }
    header += &format!("  {:>14}", "black-box (s)");
    for cc in &compilers {
        header += &format!("  {:>14}", format!("ratio {cc}"));
    }
    println!("{header}");
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); compilers.len()];
    for seed in 1..=seeds {
        let mut opts = live::FuzzOptions::new(seed);
        opts.max_time = Duration::from_secs(seconds);
        opts.max_findings = 3;
        let with: Vec<[Option<f64>; 3]> =
            covs.iter().map(|t| times(&live::fuzz(&backend, t, &opts, |_| {}).expect("coverage campaign"))).collect();
        let without = times(&live::fuzz(&backend, &plain, &opts, |_| {}).expect("black-box campaign"));
        let show = |t: Option<f64>| t.map_or_else(|| format!("> {seconds}"), |t| format!("{t:.2}"));
        for (k, b) in without.iter().enumerate() {
            let mut line = format!("{seed:>4} {:>4}", k + 1);
            for w in &with {
                line += &format!("  {:>14}", show(w[k]));
            }
            line += &format!("  {:>14}", show(*b));
            for (i, w) in with.iter().enumerate() {
                let ratio = match (w[k], b) {
                    (Some(a), Some(b)) => format!("{:.1}x", b / a.max(0.001)),
                    (Some(a), None) => format!("> {:.1}x", seconds as f64 / a.max(0.001)),
                    (None, _) => "missed".into(),
                };
                if let Some(a) = w[k] {
                    ratios[i].push(b.unwrap_or(seconds as f64) / a.max(0.001));
                }
                line += &format!("  {ratio:>14}");
            }
            println!("{line}");
        }
    }
    for (cc, r) in compilers.iter().zip(&mut ratios) {
        r.sort_by(f64::total_cmp);
        if let Some(median) = r.get(r.len() / 2) {
            println!(
                "median ratio, {cc} (black-box time / coverage time, budget where black-box missed): {median:.1}x"
            );
        }
    }
    // Throughput without bugs: no restarts, the same paths, so the difference is the coverage.
    let rate_seconds = seconds.min(10);
    let mut opts = live::FuzzOptions::new(1);
    opts.max_time = Duration::from_secs(rate_seconds);
    let rate = |t: &pipe_harness::engine::Target| {
        let c = live::fuzz(&backend, t, &opts, |_| {}).expect("throughput campaign");
        (c.cases as f64 * 1000.0 / c.elapsed_ms.max(1) as f64, c.edges)
    };
    let (plain_rate, _) = rate(&target(&dir, &plain_bin, false, false));
    for (cc, bin) in compilers.iter().zip(&cov_bins) {
        let (instrumented, _) = rate(&target(&dir, bin, false, false));
        let (guided, edges) = rate(&target(&dir, bin, true, false));
        println!(
            "{cc}: cases/s, bugs off, {rate_seconds} s each, black-box: instrumented build {instrumented:.0}, plain build {plain_rate:.0}; ratio {:.2}x; coverage-guided (other cases): {guided:.0}, {} edges",
            instrumented / plain_rate.max(0.001),
            edges.unwrap_or(0)
        );
    }
    drop(scratch);
}
