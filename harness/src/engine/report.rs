//! Reports of an audit: human (terminal), JSON (schema `report-v1`, in `harness/schemas/`),
//! SARIF 2.1.0 (code-scanning dashboards) and JUnit XML (CI test views). Reports only read
//! verdicts; they never touch the platform.

use super::verdict::{CheckResult, Severity, Verdict};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Version of the JSON report shape (`harness/schemas/report-v1.schema.json`).
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one audit found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `pipe-harness` and its version.
    pub tool: String,
    /// `windows` / `unix`, and Wine's version when under Wine.
    pub platform: String,
    /// The seed every seeded scenario used.
    pub seed: u64,
    /// One result per scenario and target.
    pub results: Vec<CheckResult>,
}

impl AuditReport {
    /// Names the plan the report came from in every finding's replay command: a scenario's own
    /// command has its `PLAN` replaced by `plan`; a finding without one gets
    /// `pipe-harness audit PLAN --scenario NAME --seed SEED`.
    pub fn name_plan(&mut self, plan: &str) {
        let seed = self.seed;
        for r in &mut self.results {
            if let Verdict::Fail(f) = &mut r.verdict {
                f.replay = Some(match f.replay.take() {
                    Some(own) => own.replace("PLAN", plan),
                    None => format!("pipe-harness audit {plan} --scenario {} --seed {seed}", r.scenario),
                });
            }
        }
    }

    /// For a report that came from no plan file (the demo's bundled fixtures): every finding's
    /// replay command is `command`, which runs the same checks again.
    pub fn name_rerun(&mut self, command: &str) {
        for r in &mut self.results {
            if let Verdict::Fail(f) = &mut r.verdict {
                f.replay = Some(command.to_string());
            }
        }
    }

    /// A report of `results`.
    pub fn new(platform: String, seed: u64, results: Vec<CheckResult>) -> Self {
        AuditReport {
            schema_version: SCHEMA_VERSION,
            tool: format!("pipe-harness {}", env!("CARGO_PKG_VERSION")),
            platform,
            seed,
            results,
        }
    }

    /// Exit code for CI: 0 all pass (unverifiable counts as not failing), 1 findings, 2 the
    /// harness failed.
    pub fn exit_code(&self) -> u8 {
        self.exit_code_with(false)
    }

    /// The exit code; `strict`: a check that was not applicable fails (1), for teams that want
    /// every check to run.
    pub fn exit_code_with(&self, strict: bool) -> u8 {
        if self.results.iter().any(|r| matches!(r.verdict, Verdict::Error { .. })) {
            2
        } else if self.results.iter().any(|r| {
            matches!(r.verdict, Verdict::Fail(_)) || (strict && matches!(r.verdict, Verdict::NotApplicable { .. }))
        }) {
            1
        } else {
            0
        }
    }

    fn count(&self, kind: &str) -> usize {
        self.results.iter().filter(|r| r.verdict.kind() == kind).count()
    }

    /// One line a check, details under each finding.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} on {} (seed {})", self.tool, self.platform, self.seed);
        for r in &self.results {
            let calls = super::from_calls::is_from_calls(&r.verdict);
            let _ = writeln!(
                out,
                "{:<15} {:<26} {}{}",
                r.verdict.kind().to_uppercase(),
                r.scenario,
                r.target,
                if calls { format!(" ({})", super::from_calls::FROM_CALLS) } else { String::new() }
            );
            match &r.verdict {
                Verdict::Pass { evidence } if calls => {
                    for e in evidence.iter().skip(1) {
                        let _ = writeln!(out, "                - {e}");
                    }
                }
                Verdict::Fail(f) => {
                    let _ = writeln!(out, "              {:?}: {}", f.severity, f.title);
                    for e in &f.evidence {
                        let _ = writeln!(out, "                - {e}");
                    }
                    if let Some(seed) = f.seed {
                        let _ = writeln!(out, "                seed {seed}");
                    }
                    if let Some(cmd) = &f.replay {
                        let _ = writeln!(out, "                replay: {cmd}");
                    }
                }
                Verdict::Unverifiable { reason, .. } => {
                    let _ = writeln!(out, "              {reason}");
                }
                Verdict::NotApplicable { reason, needs } => {
                    let _ = writeln!(out, "              {reason}; to run it, add: {needs}");
                }
                Verdict::Error { reason } => {
                    let _ = writeln!(out, "              {reason}");
                }
                Verdict::Pass { .. } => {}
            }
        }
        let _ = writeln!(
            out,
            "{} checks: {} pass, {} fail, {} unverifiable, {} not applicable, {} error",
            self.results.len(),
            self.count("pass"),
            self.count("fail"),
            self.count("unverifiable"),
            self.count("not_applicable"),
            self.count("error")
        );
        let calls = self.results.iter().filter(|r| super::from_calls::is_from_calls(&r.verdict)).count();
        if calls > 0 {
            let _ = writeln!(
                out,
                "{calls} of them judged {}: what the program asked of the OS, under Microsoft's documented rules",
                super::from_calls::FROM_CALLS
            );
        }
        out
    }

    /// The report as JSON (`report-v1`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// SARIF 2.1.0: one rule per scenario, one result per finding (and a `note` per
    /// unverifiable or not-applicable check, so dashboards show what was not shown).
    pub fn to_sarif(&self) -> String {
        let mut scenarios: Vec<&str> = self.results.iter().map(|r| r.scenario.as_str()).collect();
        scenarios.sort_unstable();
        scenarios.dedup();
        let rules: Vec<serde_json::Value> = scenarios
            .iter()
            .map(|s| serde_json::json!({ "id": s, "name": s, "shortDescription": { "text": format!("pipe-harness scenario {s}") } }))
            .collect();
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .filter_map(|r| {
                let (level, text, props) = match &r.verdict {
                    Verdict::Fail(f) => (
                        match f.severity {
                            Severity::Low => "note",
                            Severity::Medium => "warning",
                            Severity::High | Severity::Critical => "error",
                        },
                        if super::from_calls::is_from_calls(&r.verdict) {
                            format!("{}: {} ({})", r.target, f.title, super::from_calls::FROM_CALLS)
                        } else {
                            format!("{}: {}", r.target, f.title)
                        },
                        serde_json::json!({ "evidence": f.evidence, "seed": f.seed, "replay": f.replay, "severity": f.severity, "from_calls": super::from_calls::is_from_calls(&r.verdict) }),
                    ),
                    Verdict::Unverifiable { reason, .. } => ("note", format!("{}: unverifiable on this platform: {reason}", r.target), serde_json::json!({})),
                    Verdict::NotApplicable { reason, needs } => ("note", format!("{}: not applicable: {reason}; to run it, add: {needs}", r.target), serde_json::json!({})),
                    _ => return None,
                };
                Some(serde_json::json!({
                    "ruleId": r.scenario,
                    "ruleIndex": scenarios.iter().position(|s| *s == r.scenario).unwrap_or(0),
                    "level": level,
                    "message": { "text": text },
                    "locations": [{ "logicalLocations": [{ "name": r.target, "kind": "resource" }] }],
                    "properties": props,
                }))
            })
            .collect();
        let sarif = serde_json::json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [{
                "tool": { "driver": { "name": "pipe-harness", "version": env!("CARGO_PKG_VERSION"), "informationUri": "https://example.invalid/pipe-harness", "rules": rules } },
                "results": results,
                "properties": { "platform": self.platform, "seed": self.seed },
            }],
        });
        serde_json::to_string_pretty(&sarif).unwrap_or_default()
    }

    /// JUnit XML: a test suite per target, a test case per scenario; a finding is a
    /// `<failure>`, an error an `<error>`, unverifiable and not applicable a `<skipped>` with
    /// the reason.
    pub fn to_junit(&self) -> String {
        let mut targets: Vec<&str> = self.results.iter().map(|r| r.target.as_str()).collect();
        targets.dedup();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"pipe-harness\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            self.results.len(),
            self.count("fail"),
            self.count("error"),
            self.count("unverifiable") + self.count("not_applicable")
        );
        for t in targets {
            let rs: Vec<&CheckResult> = self.results.iter().filter(|r| r.target == t).collect();
            let n = |k: &str| rs.iter().filter(|r| r.verdict.kind() == k).count();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
                xml(t),
                rs.len(),
                n("fail"),
                n("error"),
                n("unverifiable") + n("not_applicable")
            );
            for r in rs {
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(t),
                    xml(&r.scenario),
                    r.duration_ms as f64 / 1000.0
                );
                match &r.verdict {
                    Verdict::Pass { evidence } if super::from_calls::is_from_calls(&r.verdict) => {
                        let _ = writeln!(
                            out,
                            ">\n      <system-out>{}</system-out>\n    </testcase>",
                            xml(&evidence.join("\n"))
                        );
                    }
                    Verdict::Pass { .. } => out.push_str("/>\n"),
                    Verdict::Fail(f) => {
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"{:?}\">{}</failure>\n    </testcase>",
                            xml(&f.title),
                            f.severity,
                            xml(&f.evidence.join("\n"))
                        );
                    }
                    Verdict::Error { reason } => {
                        let _ = writeln!(out, ">\n      <error message=\"{}\"/>\n    </testcase>", xml(reason));
                    }
                    Verdict::Unverifiable { reason, .. } => {
                        let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml(reason));
                    }
                    Verdict::NotApplicable { reason, needs } => {
                        let why = format!("not applicable: {reason}; to run it, add: {needs}");
                        let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml(&why));
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot carry become U+FFFD.
fn xml(s: &str) -> String {
    escape_markup(s, "&apos;", |c, out| {
        if c == '\r' {
            out.push(c);
        } else if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' {
            out.push('\u{FFFD}');
        } else {
            out.push(c);
        }
    })
}

/// Markup text (XML, HTML): `&`, `<`, `>`, `"` as entities, `'` as `apostrophe`, tab and newline
/// kept, every other control character (and U+FFFE, U+FFFF) handed to `control`.
pub(crate) fn escape_markup(s: &str, apostrophe: &str, control: impl Fn(char, &mut String)) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => control(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::verdict::Finding;
    use super::*;
    use crate::probe::Rule;

    #[test]
    fn verdicts_from_calls_say_so_in_every_format() {
        use super::super::from_calls as judge;
        use crate::calls::{Call, CallTrace, OpenMode, PipeMode, TracedCall, Width};
        let create = |first: bool| TracedCall {
            pid: 1,
            tid: 2,
            returned: Some(4),
            call: Call::CreateNamedPipe {
                width: Width::W,
                name: r"\\.\pipe\p".into(),
                open_mode: OpenMode(if first { OpenMode::FIRST_PIPE_INSTANCE | 3 } else { 3 }),
                pipe_mode: PipeMode(0),
                max_instances: 1,
                security_attributes: false,
            },
        };
        let check = |target: &str, first: bool| CheckResult {
            scenario: "first_instance_defence".into(),
            target: target.into(),
            duration_ms: 1,
            verdict: judge::first_instance_defence(&CallTrace { calls: vec![create(first)] }, r"\\.\pipe\p", true),
        };
        let r = AuditReport::new("windows (Wine 8.0)".into(), 1, vec![check("good", true), check("bad", false)]);
        let human = r.to_human();
        assert!(
            human.contains("PASS            first_instance_defence     good (from calls, not from effect)"),
            "{human}"
        );
        assert!(
            human.contains("FAIL            first_instance_defence     bad (from calls, not from effect)"),
            "{human}"
        );
        assert!(human.contains("2 of them judged from calls"), "{human}");
        assert!(human.contains("FILE_FLAG_FIRST_PIPE_INSTANCE"), "{human}");
        assert!(r.to_junit().contains("<system-out>from calls, not from effect"), "{}", r.to_junit());
        assert!(r.to_json().contains("from calls, not from effect"));
        let sarif = r.to_sarif();
        assert!(sarif.contains("without FILE_FLAG_FIRST_PIPE_INSTANCE (from calls, not from effect)"), "{sarif}");
        assert!(!sample().to_human().contains("from calls"), "effect verdicts are not marked");
    }

    pub(crate) fn sample() -> AuditReport {
        AuditReport::new(
            "windows (Wine 8.0)".into(),
            42,
            vec![
                CheckResult {
                    scenario: "dacl_churn".into(),
                    target: "heirloom-dacl".into(),
                    duration_ms: 120,
                    verdict: Verdict::Fail(Finding {
                        title: "instance 2 carries DACL \"\" instead of the policy's".into(),
                        severity: Severity::High,
                        evidence: vec!["cycle 1: D:P(A;;GA;;;SY)".into(), "cycle 2: <none> & \"quoted\"".into()],
                        seed: Some(42),
                        replay: Some("pipe-harness audit plan.toml --scenario dacl_churn --seed 42".into()),
                    }),
                },
                CheckResult {
                    scenario: "dacl_churn".into(),
                    target: "hardened".into(),
                    duration_ms: 80,
                    verdict: Verdict::Pass { evidence: vec!["5 cycles".into()] },
                },
                CheckResult {
                    scenario: "first_instance_defence".into(),
                    target: "hardened".into(),
                    duration_ms: 1,
                    verdict: Verdict::Unverifiable {
                        reason: "first_instance_flag_enforced DOES NOT HOLD".into(),
                        rules: vec![Rule::FirstInstanceFlagEnforced],
                        evidence: vec![],
                    },
                },
                CheckResult {
                    scenario: "impersonation_limits".into(),
                    target: "hardened".into(),
                    duration_ms: 1,
                    verdict: Verdict::Error { reason: "the plan has no privileged request\u{1}".into() },
                },
            ],
        )
    }

    #[test]
    fn exit_codes_follow_the_worst_verdict() {
        let mut r = sample();
        assert_eq!(r.exit_code(), 2);
        r.results.retain(|c| c.verdict.kind() != "error");
        assert_eq!(r.exit_code(), 1);
        r.results.retain(|c| c.verdict.kind() != "fail");
        assert_eq!(r.exit_code(), 0, "unverifiable is not a failure");
        r.results.push(CheckResult {
            scenario: "peer_credentials".into(),
            target: "t".into(),
            verdict: Verdict::not_applicable("no denied identity", "[policy] denied_users = [\"61001\"]"),
            duration_ms: 0,
        });
        assert_eq!(r.exit_code(), 0, "not applicable is not a failure");
        assert_eq!(r.exit_code_with(true), 1, "--strict: every check must run");
        assert!(r.to_junit().contains("<skipped message=\"not applicable: no denied identity; to run it, add: [policy] denied_users = [&quot;61001&quot;]\"/>"), "{}", r.to_junit());
        assert!(r.to_human().contains("to run it, add: [policy] denied_users"), "{}", r.to_human());
    }

    #[test]
    fn human_report_has_a_line_per_check_and_details_for_findings() {
        let text = sample().to_human();
        assert!(text.contains("FAIL            dacl_churn                 heirloom-dacl"), "{text}");
        assert!(text.contains("seed 42") && text.contains("replay: pipe-harness audit"));
        assert!(text.contains("4 checks: 1 pass, 1 fail, 1 unverifiable, 0 not applicable, 1 error"));
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: AuditReport = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(back, r);
    }

    #[test]
    fn json_report_matches_the_published_schema_and_the_schema_rejects_bad_reports() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/report-v1.schema.json")).expect("schema is JSON");
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let report: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("report is JSON");
        let errors: Vec<String> = validator.iter_errors(&report).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let mut bad = report.clone();
        bad["results"][0]["severity"] = serde_json::json!("apocalyptic");
        assert!(!validator.is_valid(&bad));
        let mut bad = report;
        bad["results"][1]["verdict"] = serde_json::json!("maybe");
        assert!(!validator.is_valid(&bad));
    }

    /// Microsoft's SARIF validator (`Sarif.Multitool validate`, installed by `ci/setup` from
    /// the npm package `@microsoft/sarif-multitool-linux`). It prints `error` lines for schema
    /// violations but exits 0, so the output is read.
    #[cfg(target_os = "linux")]
    fn sarif_errors(sarif: &str) -> Vec<String> {
        let tool = std::env::var_os("PH_SARIF_MULTITOOL").map(std::path::PathBuf::from).unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/sarif-multitool/Sarif.Multitool")
        });
        assert!(tool.is_file(), "{} is missing: run ci/setup (it installs the SARIF validator)", tool.display());
        let dir = tempfile::Builder::new().prefix("ph-sarif-").tempdir().expect("temp dir");
        let file = dir.path().join("report.sarif");
        std::fs::write(&file, sarif).expect("write");
        let out = std::process::Command::new(&tool)
            .arg("validate")
            .arg(&file)
            .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1")
            .output()
            .expect("run the validator");
        std::fs::remove_dir_all(&dir).ok();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("files scanned"), "the validator did not run: {text}");
        text.lines().filter(|l| l.contains(": error ")).map(String::from).collect()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sarif_report_passes_the_sarif_2_1_0_validator() {
        let errors = sarif_errors(&sample().to_sarif());
        assert!(errors.is_empty(), "{errors:?}");
        // The validator is not a rubber stamp: a run without a tool driver is rejected.
        let broken = r#"{"version":"2.1.0","runs":[{"tool":{}}]}"#;
        assert!(!sarif_errors(broken).is_empty(), "the validator must reject a SARIF log without a driver");
    }

    #[test]
    fn junit_is_escaped_and_counts_match() {
        let x = sample().to_junit();
        assert!(
            x.contains("<testsuites name=\"pipe-harness\" tests=\"4\" failures=\"1\" errors=\"1\" skipped=\"1\">"),
            "{x}"
        );
        assert!(x.contains("&lt;none&gt; &amp; &quot;quoted&quot;") && x.contains("request\u{FFFD}"), "{x}");
    }
}
