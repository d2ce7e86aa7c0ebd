//! Time to bug, with coverage feedback against without, measured in the same run: the C server
//! `fixtures/c/stateful-bugs.c` (a session with a nonce, then a trusted record count, a magic
//! compared a byte at a time and a one-byte checksum) built twice, with `pipe-harness cc` and
//! `coverage = true`, and with plain `cc` fuzzed black-box (the baseline). Each seed runs both
//! campaigns with the same budget; the table gives the time to the first, second and third
//! distinct finding, and the ratio baseline / coverage (`>` when the baseline did not get there
//! within the budget, so the ratio is at least that). Then the price of instrumentation: both
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

/// Builds the fixture with `pipe-harness cc` (`coverage`) or with the plain compiler.
fn build(dir: &Path, coverage: bool) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/c/stateful-bugs.c");
    let out = dir.join(if coverage { "sbc-cov" } else { "sbc-plain" });
    let mut cmd = if coverage {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipe-harness"));
        c.arg("cc");
        c
    } else {
        Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
    };
    let status = cmd.args(["-O1", "-o"]).arg(&out).arg(&source).status().expect("run the compiler");
    assert!(status.success(), "building {}", out.display());
    out
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
    let (cov_bin, plain_bin) = (build(&dir, true), build(&dir, false));
    let cov = target(&dir, &cov_bin, true, true);
    let plain = target(&dir, &plain_bin, false, true);
    println!("time to bug: stateful-bugs.c, {seeds} seeds, {seconds} s budget per campaign");
    println!("{:>4} {:>5}  {:>18}  {:>18}  {:>18}", "seed", "bug", "coverage (s)", "black-box (s)", "ratio");
    let mut ratios = Vec::new();
    for seed in 1..=seeds {
        let mut opts = live::FuzzOptions::new(seed);
        opts.max_time = Duration::from_secs(seconds);
        opts.max_findings = 3;
        let with = live::fuzz(&backend, &cov, &opts, |_| {}).expect("coverage campaign");
        let without = live::fuzz(&backend, &plain, &opts, |_| {}).expect("black-box campaign");
        for (k, (a, b)) in times(&with).into_iter().zip(times(&without)).enumerate() {
            let show = |t: Option<f64>| t.map_or_else(|| format!("> {seconds}"), |t| format!("{t:.2}"));
            let ratio = match (a, b) {
                (Some(a), Some(b)) => format!("{:.1}x", b / a.max(0.001)),
                (Some(a), None) => format!("> {:.1}x", seconds as f64 / a.max(0.001)),
                (None, _) => "n/a (coverage missed it)".into(),
            };
            if let (Some(a), b) = (a, b) {
                ratios.push(b.unwrap_or(seconds as f64) / a.max(0.001));
            }
            println!("{seed:>4} {:>5}  {:>18}  {:>18}  {ratio:>18}", k + 1, show(a), show(b));
        }
    }
    ratios.sort_by(f64::total_cmp);
    if let Some(median) = ratios.get(ratios.len() / 2) {
        println!("median ratio (black-box time / coverage time, budget where black-box missed): {median:.1}x");
    }
    // Throughput without bugs: no restarts, the same paths, so the difference is the coverage.
    let rate_seconds = seconds.min(10);
    let mut opts = live::FuzzOptions::new(1);
    opts.max_time = Duration::from_secs(rate_seconds);
    let rate = |t: &pipe_harness::engine::Target| {
        let c = live::fuzz(&backend, t, &opts, |_| {}).expect("throughput campaign");
        (c.cases as f64 * 1000.0 / c.elapsed_ms.max(1) as f64, c.edges)
    };
    let (instrumented, _) = rate(&target(&dir, &cov_bin, false, false));
    let (plain_rate, _) = rate(&target(&dir, &plain_bin, false, false));
    let (guided, edges) = rate(&target(&dir, &cov_bin, true, false));
    println!(
        "cases/s, bugs off, {rate_seconds} s each, black-box: instrumented build {instrumented:.0}, plain build {plain_rate:.0}; ratio {:.2}x",
        instrumented / plain_rate.max(0.001)
    );
    println!(
        "cases/s, coverage-guided (coverage = true, other cases): instrumented build {guided:.0}, {} edges",
        edges.unwrap_or(0)
    );
    drop(scratch);
}
