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
    /// Set when the audit was ended before its last check (a termination signal): which, and
    /// how far it got; the results are those judged before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// The scenarios as rules (what each checks, the fix, how bad its findings are), for
    /// SARIF; not part of the JSON report.
    #[serde(skip)]
    pub rules: Vec<RuleDoc>,
    /// The file SARIF's results point at (the plan, or the test that ran the audit); not part
    /// of the JSON report.
    #[serde(skip)]
    pub source: Option<SourceFile>,
}

/// A scenario as a rule of code-scanning tools: what it checks, how to fix what it finds, how
/// bad that usually is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDoc {
    /// The scenario's id (`dacl_churn`).
    pub id: String,
    /// One line on what it checks.
    pub title: String,
    /// What fixes a finding, in a few sentences.
    pub fix: String,
    /// The usual severity of its findings (a report's own findings, when worse, win).
    pub severity: Severity,
}

/// The file a report's results point at in SARIF (code scanning shows each result there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// Its path as a URI reference: `/`-separated and relative to `base`, or an absolute
    /// `file:` URI when there is no base.
    pub uri: String,
    /// The folder `uri` is relative to, an absolute `file:` URI ending in `/` (SARIF's
    /// `%SRCROOT%`: the repository's root when the file is in one).
    pub base: Option<String>,
    /// The line the results point at (1-based; 1 for a plan).
    pub line: u32,
}

/// GitHub code scanning's `security-severity` (a number from 0.0 to 10.0, as a string: 9.0 and
/// above is critical, 7.0 high, 4.0 medium, above 0 low) of a severity.
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Low => "3.0",
        Severity::Medium => "5.5",
        Severity::High => "8.0",
        Severity::Critical => "9.5",
    }
}

/// The `%SRCROOT%` base id of SARIF locations.
const SRCROOT: &str = "%SRCROOT%";

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
            interrupted: None,
            rules: Vec::new(),
            source: None,
        }
    }

    /// The report with these rule descriptions (SARIF's rules: the fix, the severity).
    pub fn describe_rules(mut self, rules: Vec<RuleDoc>) -> Self {
        self.rules = rules;
        self
    }

    /// Points SARIF's results at `source` (the plan; the test that ran the audit).
    pub fn locate(&mut self, source: SourceFile) {
        self.source = Some(source);
    }

    /// Exit code for CI: 0 all pass (unverifiable counts as not failing), 1 findings, 2 the
    /// harness failed.
    pub fn exit_code(&self) -> u8 {
        self.exit_code_with(false)
    }

    /// The exit code; `strict`: a check that did not run to a verdict (not applicable, or
    /// unverifiable here) fails (1), for teams that want every check to run.
    pub fn exit_code_with(&self, strict: bool) -> u8 {
        if self.results.iter().any(|r| matches!(r.verdict, Verdict::Error { .. })) {
            2
        } else if self.results.iter().any(|r| {
            matches!(r.verdict, Verdict::Fail(_))
                || (strict && matches!(r.verdict, Verdict::NotApplicable { .. } | Verdict::Unverifiable { .. }))
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
        let mut out = self.human_header();
        for r in &self.results {
            out.push_str(&Self::human_check(r));
        }
        out.push_str(&self.human_summary());
        out
    }

    /// The human report's first line: the tool, the platform, the seed.
    pub fn human_header(&self) -> String {
        format!("{} on {} (seed {})\n", self.tool, self.platform, self.seed)
    }

    /// One check as the human report shows it (printed as each is reached).
    pub fn human_check(r: &CheckResult) -> String {
        Self::human_check_wrapped(r, usize::MAX)
    }

    /// The human report with its reasons and evidence wrapped to `width` columns (the
    /// command's, for a terminal: [`crate::wrap::COLUMNS`]); a replay line is never broken.
    pub fn to_human_wrapped(&self, width: usize) -> String {
        let mut out = self.human_header();
        for r in &self.results {
            out.push_str(&Self::human_check_wrapped(r, width));
        }
        out.push_str(&self.human_summary());
        out
    }

    /// [`human_check`](Self::human_check) wrapped to `width` columns (`usize::MAX`: not at all).
    pub fn human_check_wrapped(r: &CheckResult, width: usize) -> String {
        // The verdict line as it is (its columns aligned), never wrapped; a verdict judged from
        // the program's calls says so on it.
        let calls = super::from_calls::is_from_calls(&r.verdict);
        let mut out = format!(
            "{:<15} {:<26} {}{}\n",
            r.verdict.kind().to_uppercase(),
            r.scenario,
            r.target,
            if calls { format!(" ({})", super::from_calls::FROM_CALLS) } else { String::new() }
        );
        let mut say = |text: &str, first: &str, rest: &str| {
            let text = if width == usize::MAX {
                format!("{first}{text}")
            } else {
                crate::wrap::wrap(text, width, first, rest)
            };
            let _ = writeln!(out, "{text}");
        };
        const REASON: &str = "              ";
        const ITEM: &str = "                ";
        match &r.verdict {
            Verdict::Pass { evidence } if calls => {
                for e in evidence.iter().skip(1) {
                    say(e, &format!("{ITEM}- "), &format!("{ITEM}  "));
                }
            }
            Verdict::Fail(f) => {
                say(&format!("{:?}: {}", f.severity, f.title), REASON, REASON);
                for e in &f.evidence {
                    say(e, &format!("{ITEM}- "), &format!("{ITEM}  "));
                }
                if let Some(seed) = f.seed {
                    let _ = writeln!(out, "{ITEM}seed {seed}");
                }
                if let Some(cmd) = &f.replay {
                    let _ = writeln!(out, "{ITEM}replay: {cmd}");
                }
            }
            Verdict::Unverifiable { reason, .. } | Verdict::Error { reason } => say(reason, REASON, REASON),
            Verdict::NotApplicable { reason, needs } => {
                say(&format!("{reason}; to run it, add: {needs}"), REASON, REASON)
            }
            Verdict::Pass { .. } => {}
        }
        out
    }

    /// The human report's last line: how many checks of each verdict (and, when the audit was
    /// ended early, that it was).
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "INTERRUPTED: {why}");
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

    /// SARIF 2.1.0, as GitHub code scanning reads it: one rule per scenario, with its fix as
    /// help text and a `security-severity`; a finding is a result of kind `fail` (level by its
    /// severity), a check not applicable here one of kind `notApplicable` and an unverifiable
    /// one of kind `open` (both of level `none`: not alerts of any level); a check the harness
    /// could not run is an error notification of the invocation. Every result is located at
    /// the [`source`](AuditReport::source) (the plan, line 1), relative to `%SRCROOT%`.
    pub fn to_sarif(&self) -> String {
        let mut scenarios: Vec<&str> = self.results.iter().map(|r| r.scenario.as_str()).collect();
        scenarios.sort_unstable();
        scenarios.dedup();
        let rules: Vec<serde_json::Value> = scenarios.iter().map(|s| self.sarif_rule(s)).collect();
        let location = |target: &str| {
            let logical = serde_json::json!([{ "name": target, "kind": "resource" }]);
            match &self.source {
                Some(src) => {
                    let mut artifact = serde_json::json!({ "uri": src.uri });
                    if src.base.is_some() {
                        artifact["uriBaseId"] = serde_json::json!(SRCROOT);
                    }
                    serde_json::json!([{
                        "physicalLocation": { "artifactLocation": artifact, "region": { "startLine": src.line.max(1) } },
                        "logicalLocations": logical,
                    }])
                }
                None => serde_json::json!([{ "logicalLocations": logical }]),
            }
        };
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .filter_map(|r| {
                let (kind, level, text, props) = match &r.verdict {
                    Verdict::Fail(f) => (
                        "fail",
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
                    Verdict::Unverifiable { reason, evidence, .. } => (
                        "open",
                        "none",
                        format!("{}: unverifiable here: {reason}", r.target),
                        serde_json::json!({ "evidence": evidence }),
                    ),
                    Verdict::NotApplicable { reason, needs } => (
                        "notApplicable",
                        "none",
                        format!("{}: not applicable: {reason}; to run it, add: {needs}", r.target),
                        serde_json::json!({ "needs": needs }),
                    ),
                    Verdict::Pass { .. } | Verdict::Error { .. } => return None,
                };
                Some(serde_json::json!({
                    "ruleId": r.scenario,
                    "ruleIndex": scenarios.iter().position(|s| *s == r.scenario).unwrap_or(0),
                    "kind": kind,
                    "level": level,
                    "message": { "text": text },
                    "locations": location(&r.target),
                    "properties": props,
                }))
            })
            .collect();
        let errors: Vec<serde_json::Value> = self
            .results
            .iter()
            .filter_map(|r| match &r.verdict {
                Verdict::Error { reason } => Some(serde_json::json!({
                    "level": "error",
                    "message": { "text": format!("{} ({}): the check could not run: {reason}", r.scenario, r.target) },
                    "associatedRule": { "id": r.scenario, "index": scenarios.iter().position(|s| *s == r.scenario).unwrap_or(0) },
                })),
                _ => None,
            })
            .collect();
        let mut errors = errors;
        if let Some(why) = &self.interrupted {
            errors.push(serde_json::json!({ "level": "error", "message": { "text": format!("interrupted: {why}") } }));
        }
        let mut run = serde_json::json!({
            "tool": { "driver": { "name": "pipe-harness", "version": env!("CARGO_PKG_VERSION"), "informationUri": "https://docs.rs/pipe-harness", "rules": rules } },
            "invocations": [{ "executionSuccessful": errors.is_empty(), "toolExecutionNotifications": errors }],
            "results": results,
            "properties": { "platform": self.platform, "seed": self.seed },
        });
        if let Some(base) = self.source.as_ref().and_then(|s| s.base.as_ref()) {
            run["originalUriBaseIds"] = serde_json::json!({ SRCROOT: { "uri": base } });
        }
        let sarif = serde_json::json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [run],
        });
        serde_json::to_string_pretty(&sarif).unwrap_or_default()
    }

    /// A scenario as a SARIF rule: its title, its fix as help text, its `security-severity`
    /// (the worst of this report's findings for it, else its usual one).
    fn sarif_rule(&self, id: &str) -> serde_json::Value {
        let doc = self.rules.iter().find(|d| d.id == id);
        let worst = self
            .results
            .iter()
            .filter(|r| r.scenario == id)
            .filter_map(|r| match &r.verdict {
                Verdict::Fail(f) => Some(f.severity),
                _ => None,
            })
            .max();
        let severity = worst.max(doc.map(|d| d.severity)).unwrap_or(Severity::High);
        let title = doc.map_or_else(|| format!("pipe-harness scenario {id}"), |d| d.title.clone());
        let fix = doc.map_or_else(
            || format!("`pipe-harness scenarios` describes what {id} checks and what it rests on."),
            |d| d.fix.clone(),
        );
        let name: String = id
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect();
        serde_json::json!({
            "id": id,
            "name": name,
            "shortDescription": { "text": title },
            "fullDescription": { "text": format!("{title} (pipe-harness scenario {id})") },
            "help": { "text": fix, "markdown": fix },
            "defaultConfiguration": { "level": "error" },
            "properties": { "security-severity": security_severity(severity), "tags": ["security"], "precision": "high" },
        })
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
                        // The body: the evidence, then what replays it (CI shows the body).
                        let mut body = f.evidence.join("\n");
                        if let Some(seed) = f.seed.or(Some(self.seed)) {
                            let _ = write!(body, "\nseed {seed}");
                        }
                        if let Some(cmd) = &f.replay {
                            let _ = write!(body, "\nreplay: {cmd}");
                        }
                        let _ = writeln!(
                            out,
                            ">\n      <failure message=\"{}\" type=\"{:?}\">{}</failure>\n    </testcase>",
                            xml(&f.title),
                            f.severity,
                            xml(body.trim_start())
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
        if let Some(why) = &self.interrupted {
            let _ = writeln!(out, "  <!-- interrupted: {} -->", xml(why).replace("--", "- -"));
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

    /// [`sample`] with a not-applicable check, its plan located and a rule described.
    fn sample_located() -> AuditReport {
        let mut r = sample().describe_rules(vec![RuleDoc {
            id: "dacl_churn".into(),
            title: "does every instance carry the policy's DACL?".into(),
            fix: "Pass the same security descriptor to every CreateNamedPipe call.".into(),
            severity: Severity::Medium,
        }]);
        r.results.push(CheckResult {
            scenario: "peer_credentials".into(),
            target: "hardened".into(),
            duration_ms: 0,
            verdict: Verdict::not_applicable("no denied identity", "[policy] denied_users = [\"61001\"]"),
        });
        r.locate(SourceFile { uri: "ci/plans/hardened.toml".into(), base: Some("file:///work/repo/".into()), line: 1 });
        r
    }

    /// What GitHub code scanning requires of a SARIF file beyond the schema, as its
    /// documentation ("SARIF support for code scanning") states it: every rule with a short and
    /// a full description, help text and a `security-severity` from 0.0 to 10.0; every result
    /// with a rule, a message and one to ten locations, each a file (artifactLocation.uri) and
    /// a region starting at a line. A result whose kind is not `fail` has level `none` (SARIF
    /// 2.1.0, 3.27.9).
    fn github_ingestion_errors(sarif: &str) -> Vec<String> {
        let log: serde_json::Value = serde_json::from_str(sarif).expect("SARIF is JSON");
        let mut errors = Vec::new();
        for run in log["runs"].as_array().into_iter().flatten() {
            for rule in run["tool"]["driver"]["rules"].as_array().into_iter().flatten() {
                let id = rule["id"].as_str().unwrap_or("?");
                for key in ["shortDescription", "fullDescription", "help"] {
                    if rule[key]["text"].as_str().is_none_or(str::is_empty) {
                        errors.push(format!("rule {id}: no {key}.text"));
                    }
                }
                let sev = rule["properties"]["security-severity"].as_str().and_then(|s| s.parse::<f64>().ok());
                if !sev.is_some_and(|s| (0.0..=10.0).contains(&s)) {
                    errors.push(format!("rule {id}: security-severity {:?}", rule["properties"]["security-severity"]));
                }
            }
            for (i, result) in run["results"].as_array().into_iter().flatten().enumerate() {
                if result["ruleId"].as_str().is_none() || result["message"]["text"].as_str().is_none() {
                    errors.push(format!("result {i}: no ruleId or message"));
                }
                let locations = result["locations"].as_array().map_or(&[][..], Vec::as_slice);
                if locations.is_empty() || locations.len() > 10 {
                    errors.push(format!("result {i}: {} locations", locations.len()));
                }
                for l in locations {
                    let physical = &l["physicalLocation"];
                    if physical["artifactLocation"]["uri"].as_str().is_none_or(str::is_empty)
                        || physical["region"]["startLine"].as_u64().is_none_or(|n| n == 0)
                    {
                        errors.push(format!("result {i}: a location without a file and a line: {l}"));
                    }
                }
                let kind = result["kind"].as_str().unwrap_or("fail");
                if kind != "fail" && result["level"].as_str().unwrap_or("none") != "none" {
                    errors.push(format!("result {i}: kind {kind} with level {}", result["level"]));
                }
            }
        }
        errors
    }

    #[test]
    fn sarif_meets_github_code_scannings_rules_and_a_not_applicable_check_is_no_alert() {
        let sarif = sample_located().to_sarif();
        assert_eq!(github_ingestion_errors(&sarif), Vec::<String>::new(), "{sarif}");
        let log: serde_json::Value = serde_json::from_str(&sarif).expect("JSON");
        let run = &log["runs"][0];
        let results = run["results"].as_array().expect("results");
        let of = |rule: &str| results.iter().find(|r| r["ruleId"] == rule).expect("a result").clone();
        let na = of("peer_credentials");
        assert_eq!((na["kind"].as_str(), na["level"].as_str()), (Some("notApplicable"), Some("none")), "{na}");
        let open = of("first_instance_defence");
        assert_eq!((open["kind"].as_str(), open["level"].as_str()), (Some("open"), Some("none")), "{open}");
        let fail = of("dacl_churn");
        assert_eq!((fail["kind"].as_str(), fail["level"].as_str()), (Some("fail"), Some("error")));
        assert_eq!(
            fail["locations"][0]["physicalLocation"]["artifactLocation"],
            serde_json::json!({ "uri": "ci/plans/hardened.toml", "uriBaseId": "%SRCROOT%" })
        );
        assert_eq!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"], "file:///work/repo/");
        let rule = &run["tool"]["driver"]["rules"][fail["ruleIndex"].as_u64().expect("index") as usize];
        assert_eq!(rule["id"], "dacl_churn");
        assert_eq!(rule["help"]["text"], "Pass the same security descriptor to every CreateNamedPipe call.");
        assert_eq!(
            rule["properties"]["security-severity"], "8.0",
            "the report's High finding outranks the usual Medium"
        );
        // The error is the invocation's notification, not a result.
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
        assert!(results.iter().all(|r| r["ruleId"] != "impersonation_limits"));
        // The check can fail: a note-level not-applicable result without a location is refused.
        let old = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[{"id":"a","shortDescription":{"text":"a"}}]}},"results":[{"ruleId":"a","level":"note","kind":"notApplicable","message":{"text":"n/a"},"locations":[{"logicalLocations":[{"name":"t"}]}]}]}]}"#;
        assert_eq!(github_ingestion_errors(old).len(), 5, "{:?}", github_ingestion_errors(old));
    }

    #[test]
    fn a_junit_failure_carries_the_seed_and_the_replay_command() {
        let x = sample().to_junit();
        assert!(
            x.contains("cycle 2: &lt;none&gt; &amp; &quot;quoted&quot;\nseed 42\nreplay: pipe-harness audit plan.toml --scenario dacl_churn --seed 42</failure>"),
            "{x}"
        );
    }

    #[test]
    fn exit_codes_follow_the_worst_verdict() {
        let mut r = sample();
        assert_eq!(r.exit_code(), 2);
        r.results.retain(|c| c.verdict.kind() != "error");
        assert_eq!(r.exit_code(), 1);
        r.results.retain(|c| c.verdict.kind() != "fail");
        assert_eq!(r.exit_code(), 0, "unverifiable is not a failure");
        assert_eq!(r.exit_code_with(true), 1, "--strict: an unverifiable check fails");
        r.results.retain(|c| c.verdict.kind() != "unverifiable");
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
        // Its id is where the published crate serves the file (docs.rs shows every crate's
        // source), not a placeholder.
        assert_eq!(
            schema["$id"],
            format!(
                "https://docs.rs/crate/pipe-harness-core/0.1.0/source/schemas/report-v{SCHEMA_VERSION}.schema.json"
            )
        );
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let report: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("report is JSON");
        let errors: Vec<String> = validator.iter_errors(&report).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        // An interrupted audit's report: marked, and still valid.
        let mut cut = sample();
        cut.interrupted = Some("SIGINT after 4 of 9 checks".into());
        let cut_json: serde_json::Value = serde_json::from_str(&cut.to_json()).expect("JSON");
        assert_eq!(cut_json["interrupted"], "SIGINT after 4 of 9 checks");
        assert!(validator.is_valid(&cut_json));
        assert!(cut.to_human().contains("INTERRUPTED: SIGINT after 4 of 9 checks\n4 checks:"), "{}", cut.to_human());
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
            // The SARIF rules and GitHub's ingestion rules (GH1001...: what code scanning needs).
            .args(["--rule-kind", "Sarif;Gh"])
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
        let errors = sarif_errors(&sample_located().to_sarif());
        assert!(errors.is_empty(), "{errors:?}");
        // GitHub's ingestion rules (the validator's GH rules) refuse rules without help.
        let no_help = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[{"id":"a1","shortDescription":{"text":"a"}}]}},"results":[]}]}"#;
        assert!(sarif_errors(no_help).iter().any(|e| e.contains("GH")), "{:?}", sarif_errors(no_help));
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
