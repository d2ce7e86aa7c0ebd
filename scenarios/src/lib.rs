//! The attack scenarios of pipe-harness, one module per attack, written against the
//! [`Backend`] traits so they run unchanged on Windows named pipes and Unix-domain sockets.
//!
//! Each module has `NAME`, `RESTS_ON` (the platform rules its verdict depends on), a `run`
//! that records observations against a live target, and a pure `judge` that turns them into a
//! verdict (unit tested on recorded observations). [`run`] dispatches by name and returns
//! *unverifiable*, with the probe's evidence, when a rule the scenario rests on does not hold.

#![forbid(unsafe_code)]

pub mod bundled;
pub mod client_impersonation;
pub mod cross_session_visibility;
pub mod dacl_churn;
pub mod first_instance_defence;
pub mod framing_robustness;
pub mod impersonation_limits;
pub mod instance_squatting;
pub mod peer_credentials;
pub mod permission_window;
pub mod remote_exposure;

use pipe_harness::engine::{unverifiable_for, Backend, CheckResult, Policy, ServerUnderTest, Started, Target, Verdict};
use pipe_harness::probe::Rule;
use std::time::{Duration, Instant};

/// Everything a scenario needs.
pub struct Context<'a, B: Backend> {
    /// The platform.
    pub backend: &'a B,
    /// The server under test.
    pub target: &'a Target,
    /// What its owner intends.
    pub policy: &'a Policy,
    /// Drives every seeded schedule.
    pub seed: u64,
}

/// The server a check talks to: one the check started (killed when this goes), or one already
/// running that the plan attaches to.
pub enum Running {
    /// Started by the check.
    Started(ServerUnderTest),
    /// Already running at this endpoint.
    Attached(String),
}

impl Running {
    /// Where clients reach it.
    pub fn endpoint(&self) -> &str {
        match self {
            Running::Started(s) => &s.endpoint,
            Running::Attached(e) => e,
        }
    }

    /// The endpoint name the server was given (`{pipe}`), or the attached one.
    pub fn requested(&self) -> &str {
        match self {
            Running::Started(s) => s.requested(),
            Running::Attached(e) => e,
        }
    }
}

impl<B: Backend> Context<'_, B> {
    /// The server to talk to: the attached one, or the target started on a fresh endpoint.
    pub fn reach_ready(&self) -> Result<Running, Verdict> {
        match &self.target.attach {
            Some(endpoint) => Ok(Running::Attached(endpoint.clone())),
            None => self.start_ready().map(Running::Started),
        }
    }

    /// Not applicable when the plan attaches to a running server: the check must start it.
    pub fn needs_start(&self, why: &str) -> Result<(), Verdict> {
        match &self.target.attach {
            Some(endpoint) => Err(Verdict::not_applicable(
                format!("the plan attaches to a server already running at {endpoint}, and this check {why}"),
                "[target] program = \"bin/my-service\", args and endpoint (the harness starts it), instead of attach",
            )),
            None => Ok(()),
        }
    }

    /// Starts the target on a fresh endpoint and waits until it is ready (not applicable for
    /// a plan that attaches to a running server).
    pub fn start_ready(&self) -> Result<ServerUnderTest, Verdict> {
        self.needs_start("starts the server itself")?;
        let endpoint = self.backend.endpoint(&self.target.endpoint);
        let mut server = ServerUnderTest::start(self.backend, self.target, &endpoint)
            .map_err(|e| Verdict::error("starting the target", e))?;
        match server.wait_ready(self.backend, &self.target.readiness, self.target.ready_timeout) {
            Started::Ready => Ok(server),
            other => Err(Verdict::Error {
                reason: format!(
                    "the target did not get ready on a free name ({other:?}); its output: {:?}",
                    server.output()
                ),
            }),
        }
    }
}

/// One scenario in the registry.
#[derive(Clone, Copy, Debug)]
pub struct ScenarioInfo {
    /// Its name.
    pub name: &'static str,
    /// The rules it rests on against Windows named pipes; `None`: not applicable there.
    pub windows: Option<&'static [Rule]>,
    /// The rules it rests on against Unix-domain sockets; `None`: not applicable there.
    pub unix: Option<&'static [Rule]>,
    /// One line on what it checks.
    pub summary: &'static str,
}

impl ScenarioInfo {
    /// The rules for a backend's platform (`windows` / `unix`); `None`: not applicable there.
    pub fn rests_on(&self, platform: &str) -> Option<&'static [Rule]> {
        if platform == "windows" {
            self.windows
        } else {
            self.unix
        }
    }
}

/// Every scenario.
pub const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: instance_squatting::NAME,
        windows: Some(instance_squatting::RESTS_ON),
        unix: Some(instance_squatting::RESTS_ON_UNIX),
        summary: instance_squatting::SUMMARY,
    },
    ScenarioInfo {
        name: first_instance_defence::NAME,
        windows: Some(first_instance_defence::RESTS_ON),
        unix: Some(first_instance_defence::RESTS_ON_UNIX),
        summary: first_instance_defence::SUMMARY,
    },
    ScenarioInfo {
        name: dacl_churn::NAME,
        windows: Some(dacl_churn::RESTS_ON),
        unix: Some(dacl_churn::RESTS_ON_UNIX),
        summary: dacl_churn::SUMMARY,
    },
    ScenarioInfo {
        name: impersonation_limits::NAME,
        windows: Some(impersonation_limits::RESTS_ON),
        unix: impersonation_limits::RESTS_ON_UNIX,
        summary: impersonation_limits::SUMMARY,
    },
    ScenarioInfo {
        name: client_impersonation::NAME,
        windows: Some(client_impersonation::RESTS_ON),
        unix: client_impersonation::RESTS_ON_UNIX,
        summary: client_impersonation::SUMMARY,
    },
    ScenarioInfo {
        name: remote_exposure::NAME,
        windows: Some(remote_exposure::RESTS_ON),
        unix: remote_exposure::RESTS_ON_UNIX,
        summary: remote_exposure::SUMMARY,
    },
    ScenarioInfo {
        name: cross_session_visibility::NAME,
        windows: Some(cross_session_visibility::RESTS_ON),
        unix: Some(cross_session_visibility::RESTS_ON_UNIX),
        summary: cross_session_visibility::SUMMARY,
    },
    ScenarioInfo {
        name: framing_robustness::NAME,
        windows: Some(framing_robustness::RESTS_ON),
        unix: Some(framing_robustness::RESTS_ON_UNIX),
        summary: framing_robustness::SUMMARY,
    },
    ScenarioInfo {
        name: peer_credentials::NAME,
        windows: None,
        unix: Some(peer_credentials::RESTS_ON_UNIX),
        summary: peer_credentials::SUMMARY,
    },
    ScenarioInfo {
        name: permission_window::NAME,
        windows: None,
        unix: Some(permission_window::RESTS_ON_UNIX),
        summary: permission_window::SUMMARY,
    },
];

/// What to do when a rule the scenario rests on does not hold here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmet {
    /// Report unverifiable without running (the default).
    Skip,
    /// Run anyway and report what was observed, still marked unverifiable (exercises the
    /// recording against real endpoints on platforms that cannot judge).
    RunAnyway,
}

/// Runs scenario `name` against the target; `None` for an unknown name. A scenario that does
/// not apply to the backend's platform gives an error verdict saying so.
pub fn run<B: Backend>(name: &str, cx: &Context<'_, B>, unmet: Unmet) -> Option<CheckResult> {
    let info = SCENARIOS.iter().find(|s| s.name == name)?;
    let t0 = Instant::now();
    let result = |verdict| CheckResult {
        scenario: name.into(),
        target: cx.target.name.clone(),
        verdict,
        duration_ms: t0.elapsed().as_millis() as u64,
    };
    let Some(rests_on) = info.rests_on(cx.backend.platform()) else {
        return Some(result(Verdict::not_applicable(
            format!("{name} does not apply to {} endpoints", cx.backend.platform()),
            format!("a target on the other platform: {name} has no meaning for {} endpoints", cx.backend.platform()),
        )));
    };
    let gate = unverifiable_for(cx.backend.probe(), rests_on);
    let verdict = match (gate, unmet) {
        (Some(v), Unmet::Skip) => v,
        (gate, _) => {
            let observed = match name {
                instance_squatting::NAME => instance_squatting::run(cx),
                first_instance_defence::NAME => first_instance_defence::run(cx),
                dacl_churn::NAME => dacl_churn::run(cx),
                impersonation_limits::NAME => impersonation_limits::run(cx),
                client_impersonation::NAME => client_impersonation::run(cx),
                remote_exposure::NAME => remote_exposure::run(cx),
                peer_credentials::NAME => peer_credentials::run(cx),
                cross_session_visibility::NAME => cross_session_visibility::run(cx),
                permission_window::NAME => permission_window::run(cx),
                framing_robustness::NAME => framing_robustness::run(cx),
                _ => return None,
            };
            match gate {
                Some(Verdict::Unverifiable { reason, rules, mut evidence }) => {
                    evidence.insert(0, format!("ran anyway; observed verdict: {} {:?}", observed.kind(), observed));
                    Verdict::Unverifiable { reason, rules, evidence }
                }
                _ => observed,
            }
        }
    };
    Some(CheckResult {
        scenario: name.into(),
        target: cx.target.name.clone(),
        verdict,
        duration_ms: t0.elapsed().as_millis() as u64,
    })
}

/// Why the scenarios that send the privileged request are not applicable without one.
pub(crate) const NO_PRIVILEGED: &str = "the target has no privileged request";
/// The plan key that gives them one.
pub(crate) const PRIVILEGED_KEY: &str = "[target] privileged = { request = \"PRIV x\", success = \"OK\" }";

/// How long a client waits for the server in the scenarios.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the named scenarios (when `names` is empty, every one that applies to this platform
/// and to this kind of target) and collects an
/// [`AuditReport`](pipe_harness::engine::report::AuditReport).
pub fn audit<B: Backend>(
    backend: &B,
    target: &Target,
    policy: &Policy,
    seed: u64,
    names: &[&str],
) -> pipe_harness::engine::report::AuditReport {
    let cx = Context { backend, target, policy, seed };
    // All scenarios that apply here: to a client under test, the client scenario; to a server,
    // every server scenario.
    let chosen: Vec<&str> = if names.is_empty() {
        let client = target.client_under_test.is_some();
        SCENARIOS
            .iter()
            .filter(|s| s.rests_on(backend.platform()).is_some() && (s.name == client_impersonation::NAME) == client)
            .map(|s| s.name)
            .collect()
    } else {
        names.to_vec()
    };
    let results = chosen
        .into_iter()
        .map(|n| {
            run(n, &cx, Unmet::Skip).unwrap_or_else(|| CheckResult {
                scenario: n.into(),
                target: target.name.clone(),
                verdict: Verdict::Error { reason: format!("no scenario named {n:?}") },
                duration_ms: 0,
            })
        })
        .collect();
    let probe = backend.probe();
    let platform = match &probe.platform.wine_version {
        Some(w) => format!("{} (Wine {w})", backend.platform()),
        None => backend.platform().to_string(),
    };
    pipe_harness::engine::report::AuditReport::new(platform, seed, results)
}
