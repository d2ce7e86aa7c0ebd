//! What a run prints is readable where it is read (issue 26, items 3 and 8): in a CI log (stderr
//! not a terminal) the fuzzer's progress is plain status lines, never carriage-return frames.

#[cfg(unix)]
mod common;

#[cfg(unix)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// A plan for `misbehave --mode echo` (it never ends in a finding).
#[cfg(unix)]
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

/// Lines of at most 80 characters, but for one unbreakable word (a long path) alone on its line.
fn over_80(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.chars().count() > 80 && l.trim().contains(' ')).collect()
}

#[test]
fn probe_fits_80_columns_and_groups_the_other_platforms_rules() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness")).arg("probe").args(args).output().expect("probe");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let short = run(&[]);
    assert!(over_80(&short).is_empty(), "over 80 columns: {:#?}", over_80(&short));
    let long = run(&["--verbose"]);
    assert!(over_80(&long).is_empty(), "over 80 columns: {:#?}", over_80(&long));
    // The other platform's rules: one entry, each of them with --verbose.
    let other = if cfg!(windows) { "unix_bind_exclusive" } else { "first_instance_flag_enforced" };
    assert!(!short.contains(other) && short.contains("rules not applicable"), "{short}");
    assert!(long.contains(other), "{long}");
}

#[cfg(unix)]
#[test]
fn the_audit_report_fits_80_columns_but_for_its_replay_lines() {
    let dir = tempfile::Builder::new().prefix("ph-readable-").tempdir().expect("scratch dir");
    let plan = echo_plan(dir.path());
    // A policy the echo server's socket does not meet: a finding with evidence.
    let text = std::fs::read_to_string(&plan).expect("plan") + "\n[policy]\nprotection = \"mode=0600 uid=61000\"\n";
    std::fs::write(&plan, text).expect("plan");
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .args(["audit", "--seed", "1"])
        .arg(&plan)
        .output()
        .expect("pipe-harness audit");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT_APPLICABLE  ") && text.contains("FAIL            dacl_churn "), "columns kept:\n{text}");
    let long: Vec<&str> = over_80(&text).into_iter().filter(|l| !l.trim_start().starts_with("replay: ")).collect();
    assert!(long.is_empty(), "over 80 columns: {long:#?}");
}

/// `pipe-harness fuzz` on a plan of `PROGRAM ARGS...` (a Unix socket, 4-byte framing) with
/// `more` arguments: its standard output.
#[cfg(unix)]
fn fuzz_stdout(program: &str, args: &str, more: &[&str]) -> String {
    let dir = tempfile::Builder::new().prefix("ph-readable-").tempdir().expect("scratch dir");
    let plan = dir.path().join("plan.toml");
    let text = format!(
        "[target]\nname = \"t\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\", {args}]\nendpoint = \"{{dir}}/t-{{unique}}.sock\"\nready = \"line:READY\"\nframing = \"length:4:le\"\n",
        common::program_for_plan(program)
    );
    std::fs::write(&plan, text).expect("plan");
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness"))
        .arg("fuzz")
        .arg(&plan)
        .args(["--seed", "1", "--out"])
        .arg(dir.path().join("findings"))
        .args(more)
        .output()
        .expect("pipe-harness fuzz");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg(unix)]
#[test]
fn unconfirmed_buckets_are_one_line_unless_verbose_and_findings_say_when() {
    // A server that crashes after its fifth message: a fresh server never does for one case,
    // so every crash is unconfirmed.
    let crashy = "\"--mode\", \"crash-after\", \"--after\", \"5\"";
    let text = fuzz_stdout("misbehave", crashy, &["--duration", "3"]);
    let unconfirmed: Vec<&str> = text.lines().filter(|l| l.starts_with("UNCONFIRMED")).collect();
    assert_eq!(unconfirmed.len(), 1, "one summary line:\n{text}");
    assert!(unconfirmed[0].contains("bucket(s)") && text.contains("--verbose lists them"), "{text}");
    assert!(over_80(&text).is_empty(), "over 80 columns: {:#?}", over_80(&text));
    let verbose = fuzz_stdout("misbehave", crashy, &["--duration", "3", "--verbose"]);
    assert!(verbose.contains("first: case") && !verbose.contains("--verbose lists them"), "{verbose}");
    // Each finding: when it was found.
    let text = fuzz_stdout("sequential-bugs", "\"--bugs\", \"divide\"", &["--duration", "60", "--max-findings", "1"]);
    let finding = text.lines().find(|l| l.starts_with("FINDING")).unwrap_or_else(|| panic!("a finding:\n{text}"));
    assert!(finding.contains(", found after ") && finding.contains(" s:"), "{finding}");
    let long: Vec<&str> = over_80(&text).into_iter().filter(|l| !l.trim_start().starts_with("replay: ")).collect();
    assert!(long.is_empty(), "over 80 columns: {long:#?}");
}

#[test]
fn every_help_page_fits_80_columns() {
    let mut pages = vec![Vec::new()];
    pages.extend(
        ["probe", "scenarios", "list", "audit", "fuzz", "replay", "record", "init", "cc", "demo"].map(|c| vec![c]),
    );
    for page in pages {
        for flag in ["-h", "--help"] {
            let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness")).args(&page).arg(flag).output().expect("help");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("Usage:"), "{page:?} {flag}: {out:?}");
            let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
            assert!(long.is_empty(), "{page:?} {flag}: over 80 columns: {long:#?}");
        }
    }
}

/// On a terminal, `audit` keeps a progress line on stderr under the verdicts (`[3/9 checks
/// judged] ...`), rewritten in place and cleared before each verdict; in a log (the other tests
/// here) there is none. The terminal is `script`'s pseudo-terminal (util-linux).
#[cfg(unix)]
#[test]
fn on_a_terminal_the_audit_keeps_a_progress_line_under_its_verdicts() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("script (util-linux) is not installed: no pseudo-terminal to test with");
        return;
    }
    let dir = tempfile::Builder::new().prefix("ph-readable-").tempdir().expect("scratch dir");
    let plan = echo_plan(dir.path());
    let typescript = dir.path().join("typescript");
    let command = format!(
        "'{}' audit --seed 1 --scenario dacl_churn --scenario permission_window '{}'",
        env!("CARGO_BIN_EXE_pipe-harness"),
        plan.display()
    );
    let out = Command::new("script").args(["-q", "-e", "-c", &command]).arg(&typescript).output().expect("script");
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(seen.contains("[0 checks judged] the first check is running"), "no progress line:\n{seen:?}");
    assert!(seen.contains("[1/2 checks judged] the next check is running"), "no progress after a verdict:\n{seen:?}");
    // Cleared before the verdict that follows it: the verdict line starts clean.
    assert!(seen.contains("\r\u{1b}[KNOT_APPLICABLE  dacl_churn"), "the line is not cleared first:\n{seen:?}");
}
