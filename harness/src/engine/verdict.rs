//! Verdicts: pass, fail (a finding), unverifiable (the platform cannot show it), not
//! applicable (the plan does not ask for it, and what would), error (the harness failed).

use crate::probe::Rule;
use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Hardening advice.
    Low,
    /// A weakness that needs another flaw to exploit.
    Medium,
    /// Directly exploitable by a local attacker.
    High,
    /// Privilege escalation or code execution as the server.
    Critical,
}

/// A finding: what was observed, why it is wrong, and how to replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// One line: what is wrong.
    pub title: String,
    /// How bad it is.
    pub severity: Severity,
    /// What the harness saw, step by step.
    pub evidence: Vec<String>,
    /// The seed of the run, for scenarios with a seeded schedule.
    pub seed: Option<u64>,
    /// A command that replays the check.
    pub replay: Option<String>,
}

/// The outcome of one scenario against one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The target behaved as its policy says.
    Pass {
        /// What was checked and seen.
        evidence: Vec<String>,
    },
    /// A finding.
    Fail(Finding),
    /// The platform cannot show this: a rule the scenario rests on does not hold here.
    Unverifiable {
        /// Why, in one line.
        reason: String,
        /// The rules the scenario rests on.
        rules: Vec<Rule>,
        /// The probe's evidence for the rules that do not hold.
        evidence: Vec<String>,
    },
    /// The plan does not ask for this check, or does not give what it needs (no privileged
    /// request, no denied identity, no protection...): not run, and not a failure of anything.
    NotApplicable {
        /// Why it did not run, in one line.
        reason: String,
        /// What the plan would have to add to run it: the key, with an example value.
        needs: String,
    },
    /// The harness could not run the check (the target did not start, it crashed the harness's
    /// way...).
    Error {
        /// What went wrong.
        reason: String,
    },
}

impl Verdict {
    /// `pass`, `fail`, `unverifiable`, `not_applicable` or `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Pass { .. } => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Unverifiable { .. } => "unverifiable",
            Verdict::NotApplicable { .. } => "not_applicable",
            Verdict::Error { .. } => "error",
        }
    }

    /// A not-applicable verdict: why, and what the plan would have to add.
    pub fn not_applicable(reason: impl Into<String>, needs: impl Into<String>) -> Verdict {
        Verdict::NotApplicable { reason: reason.into(), needs: needs.into() }
    }

    /// An error verdict from a harness error.
    pub fn error(context: &str, e: impl std::fmt::Display) -> Verdict {
        Verdict::Error { reason: format!("{context}: {e}") }
    }
}

/// One scenario's verdict against one target, as reports list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The scenario (`dacl_churn`).
    pub scenario: String,
    /// The target's name.
    pub target: String,
    /// What the scenario concluded.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long the check took.
    pub duration_ms: u64,
}
