//! # pipe-harness
//!
//! A security test harness and fuzzer for pipe servers: Windows named pipes, and Unix-domain
//! sockets for the same products on Linux. Scenarios start the server under test under
//! different identities and attack it the way real attackers do (instance squatting, DACL
//! drift across instance churn, impersonation-level abuse, cross-session exposure, hostile
//! frames); every verdict is pass, fail with evidence and a seed, unverifiable (the platform
//! cannot show it, and why), not applicable (the plan does not ask for it), or error.
//!
//! This crate is what a product depends on: the `pipe-harness` command
//! (`cargo install pipe-harness`) and, for its own `cargo test`, [`Audit`]. It re-exports the
//! engine ([`pipe_harness_core`]: backends, probe, framing, live fuzzer) and the scenarios
//! ([`scenarios`], named by [`ScenarioId`]).
//!
//! A product's test, auditing its server from its plan file:
//!
//! ```no_run
//! use pipe_harness::Audit;
//!
//! #[test]
//! fn my_service_passes_the_audit() -> pipe_harness::Result<()> {
//!     let audit = Audit::plan("tests/my-service.toml")?.program(env!("CARGO_BIN_EXE_my-service"));
//!     audit.run()?.assert_no_findings();
//!     Ok(())
//! }
//! ```
//!
//! Or from code, with typed scenario names:
//!
//! ```no_run
//! use pipe_harness::engine::{Policy, Target};
//! use pipe_harness::protection::Protection;
//! use pipe_harness::{Audit, ScenarioId};
//!
//! let mut server = Target::new("my-service", "target/debug/my-service", "{dir}/svc-{unique}.sock");
//! server.args = vec!["--socket".into(), "{pipe}".into()];
//! let policy = Policy { protection: Some(Protection::unix(0o600, 61000)), ..Policy::default() };
//! let report = Audit::new(server, policy).scenario(ScenarioId::DaclChurn).seed(7).run()?;
//! report.assert_no_findings();
//! # Ok::<(), pipe_harness::Error>(())
//! ```

#![forbid(unsafe_code)]

pub use pipe_harness_core::*;
pub use pipe_harness_scenarios as scenarios;
pub use pipe_harness_scenarios::{Scenario, ScenarioId};

use engine::report::AuditReport;
use engine::{Policy, Target};
use std::path::{Path, PathBuf};

/// The environment variable that overrides an [`Audit`]'s seed, also one given with
/// [`Audit::seed`]: the replay line a finding prints under `cargo test` sets it
/// (`PIPE_HARNESS_SEED=7 cargo test -p my-service --test audit -- --exact my_test`).
pub const SEED_VAR: &str = "PIPE_HARNESS_SEED";

/// The seed [`SEED_VAR`] gives, if it is set to a number.
fn seed_from_env() -> Option<u64> {
    std::env::var(SEED_VAR).ok().and_then(|s| s.trim().parse().ok())
}

/// An audit of one target, built up and then [`run`](Audit::run) against this platform's
/// backend (the probe measured once per process).
#[derive(Clone, Debug)]
pub struct Audit {
    target: Target,
    policy: Policy,
    scenarios: Vec<ScenarioId>,
    seed: u64,
    strict: bool,
    plan: Option<PathBuf>,
    /// The program was set in code ([`Audit::program`]): the plan alone does not replay.
    program_set: bool,
}

impl Audit {
    /// The audit a plan file describes (the format of `pipe-harness audit`; errors name the
    /// file, line and column).
    pub fn plan(path: impl AsRef<Path>) -> Result<Audit> {
        let path = path.as_ref();
        // The plan's program is checked when the audit runs, unless the test sets its own.
        let (target, policy) = engine::plan::load_unchecked(path)?;
        Ok(Audit { plan: Some(path.to_path_buf()), ..Audit::new(target, policy) })
    }

    /// The audit of `target` against what its owner intends (`policy`): every scenario that
    /// applies, with seed 1 (or [`SEED_VAR`]).
    pub fn new(target: Target, policy: Policy) -> Audit {
        let seed = seed_from_env().unwrap_or(1);
        Audit { target, policy, scenarios: Vec::new(), seed, strict: false, plan: None, program_set: false }
    }

    /// Starts this program instead of the plan's (`env!("CARGO_BIN_EXE_my-service")`: the
    /// binary cargo built for this test).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Audit {
        self.target.program = program.into();
        self.program_set = true;
        self
    }

    /// Runs this scenario (repeatable); without any, every scenario that applies.
    pub fn scenario(mut self, scenario: ScenarioId) -> Audit {
        self.scenarios.push(scenario);
        self
    }

    /// The seed of the seeded scenarios (a finding prints the seed that replays it);
    /// [`SEED_VAR`], when set, wins, so that a finding's replay line replays it.
    pub fn seed(mut self, seed: u64) -> Audit {
        self.seed = seed_from_env().unwrap_or(seed);
        self
    }

    /// A scenario the plan does not configure (not applicable) or this platform cannot show
    /// (unverifiable: not root, a capability missing) counts against
    /// [`Report::assert_no_findings`], as `pipe-harness audit --strict` does.
    pub fn strict(mut self) -> Audit {
        self.strict = true;
        self
    }

    /// The target, as the plan and the builder made it.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs the scenarios against this platform's backend. SARIF's results point at the plan,
    /// or, for an audit built in code, at the line that called this.
    #[track_caller]
    pub fn run(&self) -> Result<Report> {
        let caller = std::panic::Location::caller();
        if let (Some(plan), false) = (&self.plan, self.program_set) {
            engine::plan::load(plan)?;
        }
        let backend = native_backend()?;
        let mut report = scenarios::audit(&backend, &self.target, &self.policy, self.seed, &self.scenarios);
        match (replay::cargo_test(self.seed), &self.plan) {
            // Under `cargo test`: the test itself, with the seed (a program set in code is set again).
            (Some(line), _) => report.name_rerun(&line),
            (None, Some(plan)) if !self.program_set => report.name_plan(&plan.display().to_string()),
            // Elsewhere: this process's command line again, with the seed.
            (None, _) => report.name_rerun(&replay::this_process(self.seed)),
        }
        match &self.plan {
            Some(plan) => report.locate(engine::plan::source_file(plan, 1)),
            None => {
                // The caller's file is named relative to the folder cargo built from (the
                // workspace's), which is this folder or one above it.
                let file = Path::new(caller.file());
                let cwd = std::env::current_dir().unwrap_or_default();
                let found = cwd.ancestors().map(|d| d.join(file)).find(|f| f.is_file());
                report.locate(engine::plan::source_file(found.as_deref().unwrap_or(file), caller.line()));
            }
        }
        Ok(Report { report, strict: self.strict })
    }
}

/// The replay lines of findings made through the facade, where the plan alone does not replay
/// them (its program is set in code).
mod replay {
    use super::SEED_VAR;

    /// `PIPE_HARNESS_SEED=7 cargo test -p PACKAGE --test TARGET -- --exact TEST`, when this runs
    /// as a test under `cargo test` (cargo sets `CARGO_PKG_NAME`; libtest names each test's
    /// thread after it). It runs from anywhere in the package's workspace (`cargo test` starts
    /// a test in its package's folder).
    pub(super) fn cargo_test(seed: u64) -> Option<String> {
        let package = std::env::var("CARGO_PKG_NAME").ok().filter(|p| !p.is_empty())?;
        let test = std::thread::current().name().filter(|n| *n != "main")?.to_string();
        let exe = std::env::current_exe().ok()?;
        // target/<profile>/deps/<target>-<hash>
        let stem = exe.file_stem()?.to_str()?;
        let target = match stem.rsplit_once('-') {
            Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => name,
            _ => return None,
        };
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        let profile = match deps.parent()?.file_name()?.to_str()? {
            "debug" => String::new(),
            "release" => " --release".to_string(),
            other => format!(" --profile {other}"),
        };
        let which = if target == package.replace('-', "_") { "--lib".to_string() } else { format!("--test {target}") };
        Some(format!("{} cargo test{profile} -p {package} {which} -- --exact {}", set_seed(seed), quote(&test)))
    }

    /// This process's command line again, with the seed.
    pub(super) fn this_process(seed: u64) -> String {
        let args: Vec<String> = std::env::args().map(|a| quote(&a)).collect();
        format!("{} {}", set_seed(seed), args.join(" "))
    }

    /// The seed set for the one command, in the shell of the platform (POSIX sh; PowerShell,
    /// the shell of Windows runners).
    fn set_seed(seed: u64) -> String {
        if cfg!(windows) {
            format!("$env:{SEED_VAR}={seed};")
        } else {
            format!("{SEED_VAR}={seed}")
        }
    }

    /// A word as a shell reads it back.
    fn quote(word: &str) -> String {
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+".contains(&b)) {
            word.to_string()
        } else {
            format!("'{}'", word.replace('\'', "'\\''"))
        }
    }
}

/// The verdicts of an [`Audit`].
#[derive(Clone, Debug)]
pub struct Report {
    report: AuditReport,
    strict: bool,
}

impl Report {
    /// The report: its results, and its human, JSON, SARIF and JUnit forms.
    pub fn report(&self) -> &AuditReport {
        &self.report
    }

    /// Whether it has no finding and no error (and, if strict, nothing not applicable or
    /// unverifiable):
    /// pass, unverifiable and not applicable are not failures.
    pub fn is_clean(&self) -> bool {
        self.report.exit_code_with(self.strict) == 0
    }

    /// Panics, printing the whole report, unless [`is_clean`](Report::is_clean).
    #[track_caller]
    pub fn assert_no_findings(&self) {
        assert!(self.is_clean(), "the audit is not clean:\n{}", self.report.to_human());
    }
}

impl std::ops::Deref for Report {
    type Target = AuditReport;

    fn deref(&self) -> &AuditReport {
        &self.report
    }
}
