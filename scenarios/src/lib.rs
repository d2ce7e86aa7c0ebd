//! The attack scenarios of pipe-harness, one module per attack, written against the
//! [`Backend`] traits so they run unchanged on Windows named pipes and Unix-domain sockets.
//!
//! Every scenario implements [`Scenario`]: its id and title, the platform rules its verdict
//! rests on, what it needs from the plan, an `observe` that records plain observations against
//! a live target, and a pure `judge` that turns them into a verdict (unit tested on recorded
//! observations). It is registered once, in the `registry!` list below; [`ScenarioId`] names it
//! in code, [`SCENARIOS`] describes it to the matrix, the command's listing, the reports and the
//! docs, and [`run`] returns *unverifiable*, with the probe's evidence, when a rule it rests on
//! does not hold here.
//!
//! ```
//! use pipe_harness_scenarios::ScenarioId;
//!
//! let id: ScenarioId = "dacl_churn".parse().unwrap();
//! assert_eq!(id, ScenarioId::DaclChurn);
//! assert_eq!(id.info().id, "dacl_churn");
//! // A typo is an error that lists what exists, not a verdict at run time.
//! let err = "dacl_crunch".parse::<ScenarioId>().unwrap_err();
//! assert!(err.to_string().contains("dacl_churn"));
//! ```

#![forbid(unsafe_code)]

pub mod advice;
pub mod bundled;
pub mod client_impersonation;
pub mod client_verifies_server;
pub mod connect_race;
pub mod cross_session_visibility;
pub mod dacl_churn;
pub mod first_instance_defence;
pub mod framing_robustness;
pub mod impersonation_limits;
pub mod instance_create_rights;
pub mod instance_squatting;
pub mod peer_credentials;
pub mod permission_window;
pub mod remote_exposure;

use pipe_harness_core::engine::{
    unverifiable_for, Backend, CheckResult, Policy, ServerUnderTest, Started, Target, Verdict,
};
use pipe_harness_core::probe::Rule;
use std::fmt;
use std::time::{Duration, Instant};

/// One attack scenario. Implemented by a unit struct in the scenario's module and registered
/// once in this crate's `registry!`.
pub trait Scenario {
    /// Its id: the name plans, reports, the matrix and `--scenario` use.
    const ID: &'static str;
    /// One line on what it checks.
    const TITLE: &'static str;
    /// The rules it rests on against Windows named pipes; `None`: not applicable there.
    const WINDOWS: Option<&'static [Rule]>;
    /// The rules it rests on against Unix-domain sockets; `None`: not applicable there.
    const UNIX: Option<&'static [Rule]>;
    /// What it needs from the plan, as the plan keys that give it (without them it is not
    /// applicable and says which).
    const NEEDS: &'static [&'static str];
    /// What it tests: the target's server (the default) or its client under test.
    const SUBJECT: Subject = Subject::Server;
    /// For a platform whose rules are `None` although the attack exists there: why the check
    /// is not built for it (the not-applicable verdict says so instead of "no meaning").
    const NOT_BUILT: Option<&'static str> = None;
    /// What it records against a live target: plain data, no verdict.
    type Observations: fmt::Debug;
    /// Records observations against the target. `Err`: a verdict reached without observing
    /// anything (not applicable to this plan, or the harness failed).
    fn observe<B: Backend>(cx: &Context<'_, B>) -> Result<Self::Observations, Verdict>;
    /// The verdict, from the observations and the owner's policy alone.
    fn judge(obs: &Self::Observations, policy: &Policy) -> Verdict;
}

/// What a scenario tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// The server under test (`[target] program`).
    Server,
    /// The client under test (`[target] client`).
    Client,
}

/// One scenario as the registry describes it (built from its [`Scenario`] impl).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ScenarioInfo {
    /// Its typed name.
    pub scenario: ScenarioId,
    /// Its id ([`Scenario::ID`]).
    pub id: &'static str,
    /// One line on what it checks ([`Scenario::TITLE`]).
    pub title: &'static str,
    /// The rules it rests on against Windows named pipes; `None`: not applicable there.
    pub windows: Option<&'static [Rule]>,
    /// The rules it rests on against Unix-domain sockets; `None`: not applicable there.
    pub unix: Option<&'static [Rule]>,
    /// The plan keys it needs ([`Scenario::NEEDS`]).
    pub needs: &'static [&'static str],
    /// What it tests ([`Scenario::SUBJECT`]).
    pub subject: Subject,
    /// Why it is not built for a platform where the attack exists ([`Scenario::NOT_BUILT`]).
    pub not_built: Option<&'static str>,
}

impl ScenarioInfo {
    const fn of<S: Scenario>(scenario: ScenarioId) -> ScenarioInfo {
        ScenarioInfo {
            scenario,
            id: S::ID,
            title: S::TITLE,
            windows: S::WINDOWS,
            unix: S::UNIX,
            needs: S::NEEDS,
            subject: S::SUBJECT,
            not_built: S::NOT_BUILT,
        }
    }

    /// The rules for a backend's platform (`windows` / `unix`); `None`: not applicable there.
    pub fn rests_on(&self, platform: &str) -> Option<&'static [Rule]> {
        if platform == "windows" {
            self.windows
        } else {
            self.unix
        }
    }
}

/// The registry: one line per scenario. It defines [`ScenarioId`], [`SCENARIOS`] and the
/// dispatch of [`run`].
macro_rules! registry {
    ($($variant:ident => $module:ident :: $ty:ident),* $(,)?) => {
        /// A scenario, by type: what code names instead of a string.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ScenarioId {
            $(
                #[doc = concat!("The `", stringify!($module), "` scenario: see [`", stringify!($module), "`].")]
                $variant,
            )*
        }

        /// Every registered scenario, in registry order.
        pub const SCENARIOS: &[ScenarioInfo] = &[$(ScenarioInfo::of::<$module::$ty>(ScenarioId::$variant)),*];

        impl ScenarioId {
            fn observe_and_judge<B: Backend>(self, cx: &Context<'_, B>, gate: Option<Verdict>) -> Verdict {
                match self {
                    $(ScenarioId::$variant => observe_and_judge::<$module::$ty, B>(cx, gate),)*
                }
            }
        }
    };
}

registry! {
    InstanceSquatting => instance_squatting::InstanceSquatting,
    FirstInstanceDefence => first_instance_defence::FirstInstanceDefence,
    InstanceCreateRights => instance_create_rights::InstanceCreateRights,
    DaclChurn => dacl_churn::DaclChurn,
    ImpersonationLimits => impersonation_limits::ImpersonationLimits,
    ClientImpersonation => client_impersonation::ClientImpersonation,
    ClientVerifiesServer => client_verifies_server::ClientVerifiesServer,
    ConnectRace => connect_race::ConnectRace,
    RemoteExposure => remote_exposure::RemoteExposure,
    CrossSessionVisibility => cross_session_visibility::CrossSessionVisibility,
    FramingRobustness => framing_robustness::FramingRobustness,
    PeerCredentials => peer_credentials::PeerCredentials,
    PermissionWindow => permission_window::PermissionWindow,
}

impl ScenarioId {
    /// What the registry says about it.
    pub fn info(self) -> ScenarioInfo {
        *SCENARIOS.iter().find(|s| s.scenario == self).expect("every ScenarioId is registered")
    }

    /// Its id, as plans and reports spell it.
    pub fn id(self) -> &'static str {
        self.info().id
    }
}

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The registry as a Markdown table (id, what it checks, the rules it rests on per platform,
/// what it needs from the plan): `pipe-harness scenarios --markdown` prints it and
/// `docs/scenarios.md` carries it, checked by a test.
pub fn catalogue_markdown() -> String {
    let rules = |r: Option<&[Rule]>| match r {
        None => "not applicable".to_string(),
        Some([]) => "nothing but a working endpoint".to_string(),
        Some(rs) => rs.iter().map(|r| format!("`{}`", r.id())).collect::<Vec<_>>().join(", "),
    };
    let mut out =
        String::from("| scenario | what it checks | rests on (Windows) | rests on (Unix) | the plan must give |\n");
    out.push_str("|---|---|---|---|---|\n");
    for s in SCENARIOS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            s.id,
            s.title,
            rules(s.windows),
            rules(s.unix),
            s.needs.iter().map(|n| format!("`{}`", n.replace('|', "\\|"))).collect::<Vec<_>>().join("<br>")
        ));
    }
    out
}

/// A scenario name that no scenario has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {name:?}; known: {known}")]
pub struct UnknownScenario {
    /// The name asked for.
    pub name: String,
    /// Every id, comma-separated.
    pub known: String,
}

impl std::str::FromStr for ScenarioId {
    type Err = UnknownScenario;

    fn from_str(name: &str) -> Result<Self, UnknownScenario> {
        SCENARIOS.iter().find(|s| s.id == name).map(|s| s.scenario).ok_or_else(|| UnknownScenario {
            name: name.to_string(),
            known: SCENARIOS.iter().map(|s| s.id).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Observes, then judges; with a `gate` (a rule does not hold here, and the caller asked to run
/// anyway), the result stays that unverifiable verdict, with what was observed as evidence.
fn observe_and_judge<S: Scenario, B: Backend>(cx: &Context<'_, B>, gate: Option<Verdict>) -> Verdict {
    let observed = S::observe(cx);
    match gate {
        Some(Verdict::Unverifiable { reason, rules, mut evidence }) => {
            let seen = match &observed {
                Ok(obs) => {
                    format!("ran anyway; observed {obs:?}; its judge would say {}", S::judge(obs, cx.policy).kind())
                }
                Err(v) => format!("ran anyway; no observations: {} {v:?}", v.kind()),
            };
            evidence.insert(0, seen);
            Verdict::Unverifiable { reason, rules, evidence }
        }
        _ => match observed {
            Ok(obs) => S::judge(&obs, cx.policy),
            Err(v) => v,
        },
    }
}

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
    Started(Box<ServerUnderTest>),
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
            None => self.start_ready().map(|s| Running::Started(Box::new(s))),
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
        let endpoint = self.backend.endpoint_for(self.target);
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

/// A pipe that reads back a NULL DACL is a finding only where a pipe created without a
/// security descriptor gets the default DACL (`null_sd_gets_default_dacl`): elsewhere (Wine
/// 8.0) both read back as no DACL at all, and a check cannot tell a server that asked for a NULL
/// DACL (anyone may do anything) from one that asked for the default (libuv's and Node's pipes,
/// many C servers). Then the verdict is unverifiable, with the probe's evidence.
pub(crate) fn null_dacl_is_telling<B: Backend>(cx: &Context<'_, B>, what: &str) -> Result<(), Verdict> {
    match unverifiable_for(cx.backend.probe(), &[pipe_harness_core::probe::Rule::NullSdGetsDefaultDacl]) {
        None => Ok(()),
        Some(Verdict::Unverifiable { reason, rules, mut evidence }) => {
            evidence.insert(0, format!("{what} reads back a NULL DACL (NO_ACCESS_CONTROL)"));
            Err(Verdict::Unverifiable {
                reason: format!(
                    "{what} has no DACL, and here a pipe created without a security descriptor reads back the same ({reason}): the server may have asked for a NULL DACL (a finding) or for the default DACL (none)"
                ),
                rules,
                evidence,
            })
        }
        Some(other) => Err(other),
    }
}

/// What to do when a rule the scenario rests on does not hold here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmet {
    /// Report unverifiable without running (the default).
    Skip,
    /// Run anyway and report what was observed, still marked unverifiable (exercises the
    /// recording against real endpoints on platforms that cannot judge).
    RunAnyway,
    /// Where the platform can trace the server's calls (Wine), judge the checks that calls can
    /// decide from them ([`pipe_harness_core::engine::from_calls`]): each such verdict says "from
    /// calls, not from effect" and the calls it rests on. Other checks are skipped as with
    /// [`Unmet::Skip`].
    FromCalls,
}

/// The verdict from the server's calls, for a scenario that calls can decide, when the backend
/// can trace them; otherwise `gate`, the unverifiable verdict, stands.
fn from_calls<B: Backend>(id: &str, cx: &Context<'_, B>, gate: Verdict) -> Verdict {
    use pipe_harness_core::engine::from_calls as judge;
    let endpoint = cx.backend.endpoint_for(cx.target);
    let traced = match (id, &cx.target.client_under_test) {
        ("client_impersonation", Some(client)) => {
            let mut as_target = Target::new("client under test", &client.program, &endpoint);
            as_target.args = client.args.clone();
            cx.backend.client_calls(&as_target, &endpoint)
        }
        ("first_instance_defence" | "remote_exposure", None) => cx.backend.server_calls(cx.target, &endpoint),
        ("cross_session_visibility", None) if cx.policy.other_sessions.is_some() => {
            cx.backend.server_calls(cx.target, &endpoint)
        }
        _ => return gate,
    };
    let trace = match traced {
        None => return gate,
        Some(Ok(trace)) => trace,
        Some(Err(e)) => {
            return match gate {
                Verdict::Unverifiable { reason, rules, mut evidence } => {
                    evidence.push(format!("no trace of the server's calls: {e}"));
                    Verdict::Unverifiable { reason, rules, evidence }
                }
                other => other,
            }
        }
    };
    let pipe = cx.backend.endpoint_path(&endpoint);
    match id {
        "first_instance_defence" => judge::first_instance_defence(&trace, &pipe, cx.policy.refuse_taken_name),
        "remote_exposure" => judge::remote_exposure(&trace, &pipe, cx.policy.reject_remote),
        "client_impersonation" => judge::client_impersonation(&trace, &pipe, cx.policy.client_max_level.into()),
        _ => judge::cross_session_visibility(&trace, cx.policy.other_sessions),
    }
}

/// Runs one scenario against the target. A scenario that does not apply to the backend's
/// platform is not applicable, saying so; one resting on a rule that does not hold here is
/// unverifiable (with [`Unmet::RunAnyway`], after observing anyway).
pub fn run<B: Backend>(scenario: ScenarioId, cx: &Context<'_, B>, unmet: Unmet) -> CheckResult {
    let info = scenario.info();
    let t0 = Instant::now();
    let platform = cx.backend.platform();
    let verdict = match info.rests_on(platform) {
        None => match info.not_built {
            Some(why) => Verdict::not_applicable(
                format!("{} is not built for {platform} endpoints yet: {why}", info.id),
                format!("a target on the other platform ({} runs there)", info.id),
            ),
            None => Verdict::not_applicable(
                format!("{} does not apply to {platform} endpoints", info.id),
                format!("a target on the other platform: {} has no meaning for {platform} endpoints", info.id),
            ),
        },
        Some(rests_on) => match (unverifiable_for(cx.backend.probe(), rests_on), unmet) {
            (Some(v), Unmet::Skip) => v,
            (Some(v), Unmet::FromCalls) => from_calls(info.id, cx, v),
            (gate, _) => scenario.observe_and_judge(cx, gate),
        },
    };
    CheckResult {
        scenario: info.id.into(),
        target: cx.target.name.clone(),
        verdict,
        duration_ms: t0.elapsed().as_millis() as u64,
    }
}

/// Why the scenarios that need another account's process on Windows are not built there.
pub(crate) const NO_WINDOWS_ACCOUNTS: &str = "a rogue under another account needs Windows local accounts and a process started with one's token, and nothing here can show them (under Wine, LogonUserW accepts any name and password: the probe's logon_checks_credentials)";

/// Why the scenarios that send the privileged request are not applicable without one.
pub(crate) const NO_PRIVILEGED: &str = "the target has no privileged request";
/// The plan key that gives them one.
pub(crate) const PRIVILEGED_KEY: &str = "[target] privileged = { request = \"PRIV x\", success = \"OK\" }";

/// How long a client waits for the server in the scenarios.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the given scenarios (when `scenarios` is empty, every one that applies to this
/// platform and to this kind of target) and collects an
/// [`AuditReport`](pipe_harness_core::engine::report::AuditReport).
pub fn audit<B: Backend>(
    backend: &B,
    target: &Target,
    policy: &Policy,
    seed: u64,
    scenarios: &[ScenarioId],
) -> pipe_harness_core::engine::report::AuditReport {
    audit_with(backend, target, policy, seed, scenarios, Unmet::Skip, &mut |_, _| {})
}

/// [`audit`], saying what to do with a check resting on a rule that does not hold here
/// (`pipe-harness demo` judges from calls under Wine: [`Unmet::FromCalls`]), and calling
/// `progress` with each check's result as it is reached, and how many checks are done and to
/// run (`(3, 9)`).
pub fn audit_with<B: Backend>(
    backend: &B,
    target: &Target,
    policy: &Policy,
    seed: u64,
    scenarios: &[ScenarioId],
    unmet: Unmet,
    progress: &mut dyn FnMut(&CheckResult, (usize, usize)),
) -> pipe_harness_core::engine::report::AuditReport {
    let cx = Context { backend, target, policy, seed };
    // All scenarios that apply here: to a client under test, the client scenario; to a server,
    // every server scenario.
    let chosen: Vec<ScenarioId> = if scenarios.is_empty() {
        let client = target.client_under_test.is_some();
        SCENARIOS
            .iter()
            .filter(|s| s.rests_on(backend.platform()).is_some() && (s.subject == Subject::Client) == client)
            .map(|s| s.scenario)
            .collect()
    } else {
        scenarios.to_vec()
    };
    // The accounts the plan asks for exist while the scenarios run, and are gone after.
    // A managed service is put back as it was found once the checks are done.
    let endpoint = backend.endpoint_for(target);
    let held = pipe_harness_core::supervise::TestAccounts::create(&target.create_accounts)
        .map_err(|e| format!("creating the plan's accounts (create_accounts): {e}"))
        .and_then(|accounts| {
            pipe_harness_core::engine::service::ServiceGuard::new(target, &endpoint, &backend.endpoint_path(&endpoint))
                .map(|guard| (accounts, guard))
                .map_err(|e| format!("asking the service manager whether {} runs: {e}", target.name))
        });
    let total = chosen.len();
    let results = match held {
        Ok(_held) => match endpoint_reached(&cx) {
            Ok(()) => chosen
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let result = run(s, &cx, unmet);
                    progress(&result, (i + 1, total));
                    result
                })
                .collect(),
            // Said once: no check is judged against an endpoint nobody reached.
            Err(reason) => {
                let result = CheckResult {
                    scenario: CONTROL_CONNECTION.into(),
                    target: target.name.clone(),
                    verdict: Verdict::Error { reason },
                    duration_ms: 0,
                };
                progress(&result, (1, 1));
                vec![result]
            }
        },
        Err(reason) => chosen
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let result = CheckResult {
                    scenario: s.id().into(),
                    target: target.name.clone(),
                    verdict: Verdict::Error { reason: reason.clone() },
                    duration_ms: 0,
                };
                progress(&result, (i + 1, total));
                result
            })
            .collect(),
    };
    pipe_harness_core::engine::report::AuditReport::new(platform(backend), seed, results)
        .describe_rules(advice::rule_docs())
}

/// The platform as reports name it: `unix`, `windows`, `windows (Wine 8.0)`.
pub fn platform<B: Backend>(backend: &B) -> String {
    match &backend.probe().platform.wine_version {
        Some(w) => format!("{} (Wine {w})", backend.platform()),
        None => backend.platform().to_string(),
    }
}

/// The name an audit's one result carries when its control connection failed.
pub const CONTROL_CONNECTION: &str = "control_connection";

/// How long the control connection tries before the endpoint counts as never reached.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How many of the server's last output lines a start that failed quotes.
const LAST_LINES: usize = 8;

/// The first start, before any check: the target on a fresh endpoint, ready. `Err`: one
/// error naming the condition waited for, for how long, how it ended, the server's last
/// lines and, where the cause is known, the fix: said once instead of once per check.
fn start_once<B: Backend>(cx: &Context<'_, B>) -> Result<ServerUnderTest, String> {
    use pipe_harness_core::engine::Readiness;
    let target = cx.target;
    let endpoint = cx.backend.endpoint_for(target);
    let mut server = ServerUnderTest::start(cx.backend, target, &endpoint)
        .map_err(|e| format!("the target could not be started, so no check ran: {e}"))?;
    let started = server.wait_ready(cx.backend, &target.readiness, target.ready_timeout);
    if started == Started::Ready {
        return Ok(server);
    }
    let condition = match &target.readiness {
        Readiness::Line(prefix) => {
            format!("a stdout line starting with {prefix:?} (ready = \"line:...\" is a prefix match)")
        }
        Readiness::LineNamingEndpoint { prefix, .. } => {
            format!("a stdout line starting with {prefix:?} and naming the endpoint")
        }
        Readiness::Endpoint => format!("a client to connect at {endpoint}"),
    };
    let ended = match started {
        Started::Exited(Some(code)) => format!("it exited with code {code} first"),
        Started::Exited(None) => "it ended first (a signal or an exception)".to_string(),
        Started::Stopped => "its service manager stopped it first".to_string(),
        _ => "it was still running when the wait ended".to_string(),
    };
    let output = server.output();
    let last: Vec<&str> = output.iter().rev().take(LAST_LINES).rev().map(String::as_str).collect();
    let printed = if last.is_empty() {
        "it printed nothing".to_string()
    } else {
        format!("its last lines: {}", last.join(" | "))
    };
    let fix = start_fix(target, &output).map(|f| format!(". {f}")).unwrap_or_default();
    Err(format!(
        "the target did not get ready, so no check ran: waited up to {:.1} s for {condition}; {ended}; {printed}{fix}",
        target.ready_timeout.as_secs_f64()
    ))
}

/// The fix for a start that failed in a way whose cause is known.
fn start_fix(target: &Target, output: &[String]) -> Option<String> {
    if output.iter().any(|l| l.contains("Could not get password database information for UID")) {
        let who = target.run_as.as_ref().map_or_else(|| "its uid".to_string(), |u| format!("uid {u}"));
        return Some(format!(
            "The server looked up its own account, and {who} has no account here (no passwd entry): run it as an account, one the run makes and deletes after (run_as = \"ph-svc\" with create_accounts = [\"ph-svc\"], and {{private_dir:ph-svc}} in the endpoint) or a real one"
        ));
    }
    if let pipe_harness_core::engine::Readiness::Line(prefix) = &target.readiness {
        let stdout: Vec<&str> = output.iter().filter_map(|l| l.strip_prefix("stdout: ")).collect();
        if let Some(near) = stdout.iter().find(|l| l.contains(prefix.trim())) {
            return Some(format!(
                "Its line {near:?} holds {prefix:?} but does not start with it: give ready the line's start"
            ));
        }
    }
    None
}

/// The control connection, before any check: a fresh server (or the attached one) must be
/// reached at its endpoint by a legitimate client ([`Target::client_identity`]) or by the
/// harness itself. `Err`: why it never was, naming the endpoint and what was tried: a plan
/// error, said once, never a finding. A target that does not start or get ready is the same
/// error ([`start_once`]), and a client under test has no server endpoint to prove.
fn endpoint_reached<B: Backend>(cx: &Context<'_, B>) -> Result<(), String> {
    if cx.target.client_under_test.is_some() {
        return Ok(());
    }
    let mut started = match &cx.target.attach {
        Some(_) => None,
        None => Some(start_once(cx)?),
    };
    let endpoint = match (&started, &cx.target.attach) {
        (Some(s), _) => s.endpoint.clone(),
        (None, Some(a)) => a.clone(),
        (None, None) => return Ok(()),
    };
    let mut tried = Vec::new();
    // A legitimate client: the target's, else the policy's first allowed user, else the
    // server's own identity (as the fuzzer's cases connect), then the harness itself.
    let client = cx.target.client_as.clone().or_else(|| cx.policy.allowed_users.first().cloned());
    let mut who = vec![client.or_else(|| cx.target.run_as.clone())];
    if who[0].is_some() {
        who.push(None);
    }
    for as_user in who {
        let spec = pipe_harness_core::engine::ConnectSpec {
            timeout: CONTROL_TIMEOUT,
            as_user: as_user.clone(),
            ..Default::default()
        };
        match cx.backend.connect(&endpoint, &spec) {
            Ok(_) => return Ok(()),
            Err(e) => tried.push(format!(
                "as {}: {e}",
                as_user.map_or_else(
                    || "the harness's own identity".to_string(),
                    |u| match u {
                        pipe_harness_core::identity::Identity::Uid { .. } => format!("uid {u}"),
                        _ => u.to_string(),
                    }
                )
            )),
        }
    }
    let ended = started.as_mut().and_then(|s| s.try_exit()).map(|t| format!("; the server then {}", t.describe()));
    let named = match (&started, &cx.target.readiness) {
        (Some(s), pipe_harness_core::engine::Readiness::LineNamingEndpoint { .. }) if s.endpoint != s.requested() => {
            " (the endpoint its ready line named)"
        }
        _ => "",
    };
    Err(format!(
        "the plan's endpoint {endpoint:?}{named} was never reached on a fresh server, so no check ran: connecting for {} s {}{}",
        CONTROL_TIMEOUT.as_secs(),
        tried.join("; "),
        ended.unwrap_or_default()
    ))
}
