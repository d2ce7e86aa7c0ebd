//! The HTML reports, rendered in a real browser (Debian's headless Chromium, installed by
//! `ci/setup`): the demo's audits combined on one page, a short campaign with its charts, and a
//! campaign against a server whose output is hostile (markup, quotes, control characters, bytes
//! that are not UTF-8). Each page is checked as the browser built it (`--dump-dom`), and a
//! screenshot is saved under the test's output folder (`CARGO_TARGET_TMPDIR/html-report/`).

#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).expect("output folder");
    dir
}

fn chromium() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("chromium")).find(|f| f.is_file()))
        .expect("chromium is not installed: run ci/setup")
}

/// What the browser made of `page`: its DOM, serialized; and a screenshot at `shot`.
fn render(page: &Path, shot: &Path) -> String {
    let url = format!("file://{}", page.display());
    let base = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"];
    let profile = page.with_extension("profile");
    let run = |extra: &[&str]| {
        let out = Command::new(chromium())
            .args(base)
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(&url)
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let dom = String::from_utf8(run(&["--dump-dom"]).stdout).expect("the DOM is UTF-8");
    run(&["--window-size=1280,2000", &format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "{} is a PNG", shot.display());
    let _ = std::fs::remove_dir_all(&profile);
    dom
}

fn cli(args: &[&str]) -> (Option<i32>, Vec<u8>) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-harness")).args(args).output().expect("run pipe-harness");
    (out.status.code(), out.stdout)
}

#[test]
fn the_demo_renders_every_scenario_row_and_every_findings_replay_command() {
    let dir = out_dir();
    let (code, json) = cli(&["demo", "--format", "json", "--seed", "1"]);
    assert_eq!(code, Some(0), "the demo catches every twin");
    let reports: serde_json::Value = serde_json::from_slice(&json).expect("demo JSON");
    let (code, html) = cli(&["demo", "--format", "html", "--seed", "1"]);
    assert_eq!(code, Some(0));
    let page = dir.join("demo.html");
    std::fs::write(&page, &html).expect("page");
    let dom = render(&page, &dir.join("demo.png"));
    let mut rows = 0;
    for report in reports.as_array().expect("reports") {
        for r in report["results"].as_array().expect("results") {
            let (scenario, target) = (r["scenario"].as_str().expect("id"), r["target"].as_str().expect("target"));
            assert!(dom.contains(&format!("id=\"{target}-{scenario}\"")), "no section for {scenario} on {target}");
            rows += 1;
            if r["verdict"] == "fail" {
                let replay = r["replay"].as_str().expect("a finding's replay command");
                assert_eq!(replay, "pipe-harness demo --seed 1", "the demo's findings replay with the demo");
                assert!(dom.contains(&format!("<pre class=\"replay\">{replay}</pre>")), "no replay command {replay}");
            }
        }
    }
    // One row a check in each audit's table, and the matrix of the four fixtures.
    assert_eq!(dom.matches("<tr class=\"row\"").count(), rows);
    assert!(dom.contains("id=\"matrix\""), "the combined page has the matrix");
    assert!(dom.contains("<nav>"), "and an index");
    for label in ["PASS", "FAIL"] {
        assert!(dom.contains(&format!(">{label}</td>")), "verdict cells carry their label {label}");
    }
}

/// A campaign against a fixture with framing bugs: charts drawn (polylines of several points),
/// findings with their bucket, hex dump and replay command.
#[test]
fn a_short_campaign_renders_its_charts_findings_and_replay_commands() {
    let dir = out_dir();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/plans/unix-framing-bugs.toml");
    let found = dir.join("campaign-findings");
    let args = ["fuzz", plan.to_str().expect("utf-8"), "--duration", "3", "--seed", "1", "--out"];
    let (code, html) = cli(&[&args[..], &[found.to_str().expect("utf-8"), "--format", "html"]].concat());
    assert_eq!(code, Some(1), "the campaign finds the fixture's bugs");
    let page = dir.join("campaign.html");
    std::fs::write(&page, &html).expect("page");
    let dom = render(&page, &dir.join("campaign.png"));
    let charts = dom.matches("<svg class=\"chart\"").count();
    assert!(charts >= 3, "cases/s, corpus and findings charts: {charts}");
    for points in dom.split("points=\"").skip(1).map(|r| r.split('"').next().unwrap_or("")) {
        assert!(points.split(' ').count() >= 2, "a chart with fewer than two points: {points:?}");
    }
    let saved: Vec<PathBuf> = std::fs::read_dir(&found).expect("findings saved").flatten().map(|e| e.path()).collect();
    assert!(!saved.is_empty());
    for file in saved {
        let replay = format!("pipe-harness replay {} {}", file.display(), plan.display());
        assert!(dom.contains(&replay), "no replay command {replay}");
    }
    assert!(dom.contains("<pre class=\"hex\""), "minimised bytes as a hex dump");
    assert!(dom.contains("Finding: <code>crash / "), "each finding with its bucket");
    let _ = std::fs::remove_dir_all(&found);
}

/// A server that prints markup, quotes, control characters and bytes that are not UTF-8, and
/// crashes: its output is in the report as text, and nothing of it became an element.
#[test]
fn hostile_server_output_is_text_in_the_page() {
    let dir = out_dir();
    let plan = dir.join("hostile.toml");
    std::fs::write(
        &plan,
        format!(
            "[target]\nname = \"hostile\"\nprogram = '{}'\nargs = [\"--endpoint\", \"{{pipe}}\", \"--mode\", \"hostile-output\"]\nendpoint = \"{{dir}}/hostile-{{unique}}.sock\"\nready = \"line:READY\"\n",
            common::program_for_plan("misbehave")
        ),
    )
    .expect("plan");
    let found = dir.join("hostile-findings");
    let (code, html) = cli(&[
        "fuzz",
        plan.to_str().expect("utf-8"),
        "--duration",
        "10",
        "--max-findings",
        "1",
        "--seed",
        "1",
        "--out",
        found.to_str().expect("utf-8"),
        "--format",
        "html",
    ]);
    assert_eq!(code, Some(1), "the crash is found");
    let page = dir.join("hostile.html");
    std::fs::write(&page, &html).expect("page");
    let dom = render(&page, &dir.join("hostile.png"));
    // What the browser built: no element from the server's output, the text of it escaped.
    assert!(!dom.contains("<script"), "a script element in the page");
    assert!(!dom.contains("<b id="), "an element from the server's output");
    assert!(!dom.contains("<h1 id=\"pwned"), "a heading from the server's output");
    assert!(!dom.contains("<img"), "an image element from the server's output");
    assert!(dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"), "the markup shown as text");
    assert!(dom.contains("&lt;h1 id=\"pwned-heading\"&gt;broke out&lt;/h1&gt;"));
    assert!(dom.contains("\\x1B[31mred"), "control characters shown, not sent");
    assert!(dom.contains("not utf-8: \u{FFFD}"), "bytes that are not UTF-8 replaced, not dropped");
    assert!(dom.contains("<title>pipe-harness fuzz: hostile</title>"), "the title is the report's");
    let _ = std::fs::remove_dir_all(&found);
}

/// `pipe-harness html` combines JSON reports into one page: the demo's four audits and a
/// campaign, read back from the JSON that is the reports' contract.
#[test]
fn json_reports_combine_into_one_page_with_an_index() {
    let dir = out_dir();
    let (_, demo) = cli(&["demo", "--format", "json", "--seed", "1"]);
    std::fs::write(dir.join("demo.json"), demo).expect("demo JSON");
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/plans/unix-framing-bugs.toml");
    let found = dir.join("combine-findings");
    let (_, campaign) = cli(&[
        "fuzz",
        plan.to_str().expect("utf-8"),
        "--duration",
        "2",
        "--seed",
        "1",
        "--out",
        found.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    std::fs::write(dir.join("campaign.json"), campaign).expect("campaign JSON");
    let (code, html) = cli(&[
        "html",
        dir.join("demo.json").to_str().expect("utf-8"),
        dir.join("campaign.json").to_str().expect("utf-8"),
        "--title",
        "CI run 42",
    ]);
    assert_eq!(code, Some(0));
    let page = dir.join("combined.html");
    std::fs::write(&page, &html).expect("page");
    let dom = render(&page, &dir.join("combined.png"));
    assert!(dom.contains("<title>CI run 42</title>"));
    // The index: the matrix, four audits and the campaign.
    assert_eq!(dom.matches("<li><a href=\"#").count(), 6, "an index of six entries");
    assert!(dom.contains("Campaign against unix-framing-bugs"));
    assert!(
        dom.contains("The probe's rule table is not in this report"),
        "read back, an audit says the probe is not known"
    );
    let _ = std::fs::remove_dir_all(&found);
}
