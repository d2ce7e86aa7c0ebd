//! Plans: a target and its policy written down in TOML, for `pipe-harness audit PLAN.toml`.
//!
//! ```toml
//! [target]
//! name = "my-service"
//! program = "bin/my-service"          # relative to the plan's folder
//! args = ["--pipe", "{pipe}"]          # {pipe}: the name; {pipe_path}: \\.\pipe\NAME, or the socket's path
//! endpoint = "my-service-{unique}"    # a pipe name; Unix: "{dir}/x-{unique}.sock", "@name", or
//!                                     # "{private_dir:61000}/x.sock" (a directory only uid 61000 may write)
//! ready = "line:READY"                # a prefix match; or "endpoint"; or "line:READY {endpoint}" (the
//!                                     # line names the endpoint the server chose)
//! # attach = "/run/svc.sock"          # instead of program and endpoint: a server already running
//! framing = "length:4:be"             # length:W:be|le, thrift, content-length, lines
//! ping = { request = "PING", success = "PONG" }
//! privileged = { request = "PRIV x", success = "OK" }
//!
//! [policy]
//! protection = "D:P(A;;GA;;;SY)(A;;GA;;;OW)"   # Unix: "mode=0600 uid=61000"
//! min_privileged_level = "impersonation"
//! ```
//!
//! A mistake is reported with the file, line and column, and what was expected.

use crate::error::{Error, Result};
use crate::identity::{Identity, ImpersonationLevel};
use crate::target::{ClientProgram, Exchange, FramingSpec, Managed, Policy, Readiness, Target};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where a ready line names the endpoint, in `ready = "line:PREFIX{endpoint}UNTIL"`.
const ENDPOINT_MARK: &str = "{endpoint}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanFile {
    target: TargetSection,
    #[serde(default)]
    policy: PolicySection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeSection {
    request: Spanned<String>,
    success: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSection {
    send: Spanned<String>,
    #[serde(default)]
    expect: Option<Spanned<String>>,
    #[serde(default)]
    capture: Option<CaptureSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureSection {
    offset: usize,
    len: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSection {
    program: String,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSection {
    name: String,
    #[serde(default)]
    program: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    endpoint: Option<Spanned<String>>,
    #[serde(default)]
    attach: Option<Spanned<String>>,
    #[serde(default)]
    start: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    stop: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pid_file: Option<Spanned<String>>,
    #[serde(default)]
    status: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    unit: Option<Spanned<String>>,
    #[serde(default)]
    service: Option<Spanned<String>>,
    #[serde(default)]
    ready: Option<Spanned<String>>,
    #[serde(default)]
    ready_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    framing: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    run_as: Option<Spanned<String>>,
    #[serde(default)]
    create_accounts: Vec<Spanned<String>>,
    #[serde(default)]
    published_in: Option<String>,
    #[serde(default)]
    ping: Option<ExchangeSection>,
    #[serde(default)]
    privileged: Option<ExchangeSection>,
    #[serde(default)]
    client: Option<ClientSection>,
    #[serde(default)]
    session: Vec<StepSection>,
    #[serde(default)]
    message_prefix: Option<Spanned<String>>,
    #[serde(default)]
    coverage: bool,
    #[serde(default)]
    memory_limit_mb: Option<Spanned<u64>>,
    #[serde(default)]
    process_limit: Option<Spanned<u64>>,
    #[serde(default)]
    cgroup: Option<bool>,
    #[serde(default)]
    files: Vec<FileSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSection {
    path: Spanned<String>,
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    #[serde(default)]
    protection: Option<Spanned<String>>,
    #[serde(default)]
    refuse_taken_name: Option<bool>,
    #[serde(default)]
    min_privileged_level: Option<Spanned<String>>,
    #[serde(default)]
    client_max_level: Option<Spanned<String>>,
    #[serde(default)]
    reject_remote: Option<bool>,
    #[serde(default)]
    allowed_users: Vec<Spanned<String>>,
    #[serde(default)]
    denied_users: Vec<Spanned<String>>,
    #[serde(default)]
    other_sessions: Option<bool>,
    #[serde(default)]
    peer_check: Option<bool>,
}

/// Line and column (1-based) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}

struct Located<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Located<'_> {
    fn error(&self, span: Option<std::ops::Range<usize>>, message: impl std::fmt::Display) -> Error {
        let place = match span {
            Some(s) => {
                let (l, c) = line_col(self.text, s.start);
                format!("{}:{l}:{c}", self.file.display())
            }
            None => self.file.display().to_string(),
        };
        Error::InvalidInput { what: "plan", why: format!("{place}: {message}") }
    }

    fn level(&self, v: &Option<Spanned<String>>, default: ImpersonationLevel) -> Result<ImpersonationLevel> {
        let Some(v) = v else { return Ok(default) };
        ImpersonationLevel::ALL.into_iter().find(|l| l.id() == v.get_ref()).ok_or_else(|| {
            self.error(
                Some(v.span()),
                format!(
                    "unknown impersonation level {:?}, expected anonymous, identification, impersonation or delegation",
                    v.get_ref()
                ),
            )
        })
    }

    fn identity(&self, v: &Spanned<String>) -> Result<Identity> {
        v.get_ref().parse().map_err(|e: crate::identity::BadIdentity| self.error(Some(v.span()), e.to_string()))
    }

    fn framing(&self, v: &Option<Spanned<String>>) -> Result<FramingSpec> {
        let Some(v) = v else { return Ok(FramingSpec::Length { width: 4, little_endian: false }) };
        let s = v.get_ref().as_str();
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["thrift"] => Ok(FramingSpec::Thrift),
            ["content-length"] => Ok(FramingSpec::ContentLength),
            ["lines"] => Ok(FramingSpec::Lines),
            ["length", w, e] if matches!(*w, "1" | "2" | "4" | "8") && matches!(*e, "be" | "le") => {
                Ok(FramingSpec::Length { width: w.parse().unwrap_or(4), little_endian: *e == "le" })
            }
            _ => Err(self.error(Some(v.span()), format!("unknown framing {s:?}, expected length:W:be|le (W = 1, 2, 4 or 8), thrift, content-length or lines"))),
        }
    }

    fn readiness(&self, v: &Option<Spanned<String>>) -> Result<Readiness> {
        let Some(v) = v else { return Ok(Readiness::Endpoint) };
        match v.get_ref().as_str() {
            "endpoint" => Ok(Readiness::Endpoint),
            s => match s.strip_prefix("line:") {
                // "line:PREFIX{endpoint}UNTIL": the line names the endpoint the server chose.
                Some(form) if form.contains(ENDPOINT_MARK) => {
                    let (prefix, until) = form.split_once(ENDPOINT_MARK).unwrap_or((form, ""));
                    if prefix.is_empty() || until.contains(ENDPOINT_MARK) {
                        return Err(self.error(
                            Some(v.span()),
                            format!("readiness {s:?}: {ENDPOINT_MARK} once, after the text the line starts with (\"line:READY {ENDPOINT_MARK}\")"),
                        ));
                    }
                    Ok(Readiness::LineNamingEndpoint { prefix: prefix.to_string(), until: until.to_string() })
                }
                Some(prefix) if !prefix.is_empty() => Ok(Readiness::Line(prefix.to_string())),
                _ => Err(self.error(
                    Some(v.span()),
                    format!("unknown readiness {s:?}, expected \"endpoint\", \"line:PREFIX\" or \"line:PREFIX{ENDPOINT_MARK}\""),
                )),
            },
        }
    }
}

/// The service manager a target names, if any: start/stop commands, a systemd unit or a
/// Windows service, at most one of them and not with a program or attach.
fn managed(at: &Located<'_>, t: &TargetSection, resolve: &dyn Fn(&str) -> PathBuf) -> Result<Option<Managed>> {
    let command = |c: &Option<Spanned<Vec<String>>>, key: &str| -> Result<Option<Vec<String>>> {
        match c {
            Some(c) if c.get_ref().first().is_none_or(|p| p.trim().is_empty()) => {
                Err(at.error(Some(c.span()), format!("{key} is empty: give the program and its arguments")))
            }
            other => Ok(other.as_ref().map(|c| c.get_ref().clone())),
        }
    };
    let start = command(&t.start, "start")?;
    let stop = command(&t.stop, "stop")?;
    let status = command(&t.status, "status")?;
    let chosen: Vec<(&str, std::ops::Range<usize>)> = [
        t.start.as_ref().map(|s| ("start", s.span())),
        t.unit.as_ref().map(|s| ("unit", s.span())),
        t.service.as_ref().map(|s| ("service", s.span())),
        t.program.as_ref().map(|s| ("program", s.span())),
        t.attach.as_ref().map(|s| ("attach", s.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let [(first, _), (second, span), ..] = chosen.as_slice() {
        if chosen.iter().any(|(k, _)| matches!(*k, "start" | "unit" | "service")) {
            return Err(at.error(
                Some(span.clone()),
                format!("{second} and {first} both say how the server starts: give one of program, start/stop, unit, service or attach"),
            ));
        }
    }
    let stray = |key: &str, span: Option<std::ops::Range<usize>>, needs: &str| {
        at.error(span, format!("{key} belongs with {needs}"))
    };
    if start.is_none() {
        if let Some(s) = &t.stop {
            return Err(stray("stop", Some(s.span()), "start (the command that starts the server)"));
        }
        if let Some(s) = &t.pid_file {
            return Err(stray("pid_file", Some(s.span()), "start and stop commands"));
        }
        if let Some(s) = &t.status {
            return Err(stray("status", Some(s.span()), "start and stop commands"));
        }
    }
    if let Some(start) = start {
        let span = t.start.as_ref().map(|s| s.span());
        let Some(stop) = stop else {
            return Err(at.error(
                span,
                "start needs stop: the command that stops the server (the harness restarts it between checks)",
            ));
        };
        if t.pid_file.is_none() && status.is_none() {
            return Err(at.error(
                span,
                "start needs pid_file = \"/run/x.pid\" (where the started server's pid is written) or status = [\"cmd\", ...] (exits 0 while it runs), to know whether the server runs",
            ));
        }
        let pid_file = t.pid_file.as_ref().map(|p| resolve(p.get_ref()));
        return Ok(Some(Managed::Commands { start, stop, pid_file, status }));
    }
    let name = |v: &Spanned<String>, what: &str| -> Result<String> {
        let n = v.get_ref().trim();
        if n.is_empty() || n.contains(['/', '\\']) || n.chars().any(char::is_control) {
            return Err(at.error(Some(v.span()), format!("{what} {:?} is not a {what} name", v.get_ref())));
        }
        Ok(n.to_string())
    };
    if let Some(u) = &t.unit {
        let unit = name(u, "unit")?;
        if !cfg!(unix) {
            return Err(
                at.error(Some(u.span()), "unit names a systemd unit: Linux only (on Windows: service = \"NAME\")")
            );
        }
        return Ok(Some(Managed::Unit(if unit.contains('.') { unit } else { format!("{unit}.service") })));
    }
    if let Some(s) = &t.service {
        let service = name(s, "service")?;
        if !cfg!(windows) {
            return Err(at.error(
                Some(s.span()),
                "service names a Windows service: Windows only (on Linux: unit = \"NAME.service\", or start and stop commands)",
            ));
        }
        return Ok(Some(Managed::WindowsService(service)));
    }
    Ok(None)
}

fn exchange(e: &Option<ExchangeSection>) -> Option<Exchange> {
    e.as_ref().map(|e| Exchange {
        request: e.request.get_ref().as_bytes().to_vec(),
        success_prefix: e.success.get_ref().as_bytes().to_vec(),
    })
}

/// What the plan sends must go through its framing, and what it expects back must be
/// something the framing can deliver: a `lines` plan whose request holds a newline would fail
/// mid-run ("the frame contains the delimiter"); one whose expected reply holds one would never
/// match. Caught here, at the value's place.
fn check_framed(at: &Located<'_>, t: &TargetSection, framing: &FramingSpec) -> Result<()> {
    let mut sent: Vec<(&str, &Spanned<String>)> = Vec::new();
    let mut expected: Vec<(&str, &Spanned<String>)> = Vec::new();
    for (key, e) in [("ping", &t.ping), ("privileged", &t.privileged)] {
        if let Some(e) = e {
            sent.push((key, &e.request));
            expected.push((key, &e.success));
        }
    }
    for step in &t.session {
        sent.push(("session", &step.send));
        if let Some(e) = &step.expect {
            expected.push(("session", e));
        }
    }
    let named = t.framing.as_ref().map_or("length:4:be", |f| f.get_ref().as_str());
    for (key, v) in sent {
        if let Err(e) = framing.encode(v.get_ref().as_bytes()) {
            return Err(at.error(
                Some(v.span()),
                format!("{key}: {} cannot be sent with framing \"{named}\": {e}", shown(v.get_ref())),
            ));
        }
    }
    if *framing == FramingSpec::Lines {
        let prefix = t.message_prefix.as_ref().map(|p| ("message_prefix", p));
        for (key, v) in expected.into_iter().chain(prefix) {
            if v.get_ref().contains('\n') {
                return Err(at.error(
                    Some(v.span()),
                    format!(
                        "{key}: {} holds a newline, the delimiter of framing \"lines\": a line never does",
                        shown(v.get_ref())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A value as an error shows it: quoted, and cut after 40 characters.
fn shown(v: &str) -> String {
    match v.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?} ({} bytes)", format!("{}...", &v[..cut]), v.len()),
        None => format!("{v:?}"),
    }
}

/// `unknown field `x`, expected one of `a`, `b`` from serde, with the closest known key
/// first: "did you mean `protection`?".
fn did_you_mean(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else { return message.to_string() };
    let Some((unknown, expected)) = rest.split_once('`') else { return message.to_string() };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let closest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min();
    match closest {
        Some((_, k)) => {
            let known = expected.trim_start_matches(", ");
            format!("unknown field `{unknown}`: did you mean `{k}`? ({known})")
        }
        None => message.to_string(),
    }
}

/// Parses a plan's text; `file` names it in errors and anchors relative paths.
pub fn parse(file: &Path, text: &str) -> Result<(Target, Policy)> {
    let at = Located { file, text };
    let plan: PlanFile = toml::from_str(text).map_err(|e| at.error(e.span(), did_you_mean(e.message())))?;
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let resolve = |p: &str| -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    };
    let t = &plan.target;
    let managed = managed(&at, t, &resolve)?;
    let (program, endpoint) = match (&t.program, &t.endpoint, &t.attach) {
        (Some(_), _, Some(a)) | (None, Some(_), Some(a)) => {
            return Err(at.error(
                Some(a.span()),
                "attach names a server already running: give it instead of program and endpoint, not with them",
            ))
        }
        (None, None, Some(a)) => (String::new(), a),
        (Some(p), Some(e), None) => (p.get_ref().clone(), e),
        (None, Some(e), None) if managed.is_some() => (String::new(), e),
        (Some(p), None, None) => {
            return Err(at.error(Some(p.span()), "[target] has a program but no endpoint (the name it listens on, e.g. \"{dir}/x-{unique}.sock\")"))
        }
        (None, None, None) if managed.is_some() => {
            return Err(at.error(
                None,
                "[target] names a service but no endpoint: give the endpoint its configuration listens on (endpoint = \"/run/svc.sock\")",
            ))
        }
        (None, _, None) => {
            return Err(at.error(
                None,
                "[target] needs a program (the harness starts the server), start/stop commands, unit = \"NAME.service\", service = \"NAME\" (a service manager starts it) or attach = \"ENDPOINT\" (a server already running)",
            ))
        }
    };
    let mut target =
        Target::new(&t.name, if program.is_empty() { PathBuf::new() } else { resolve(&program) }, endpoint.get_ref());
    target.attach = t.attach.as_ref().map(|a| a.get_ref().clone());
    if t.attach.is_none() {
        target.endpoint = crate::endpoint::EndpointTemplate::parse(endpoint.get_ref())
            .map_err(|e| at.error(Some(endpoint.span()), e.to_string()))?;
    }
    if let Some(m) = &managed {
        // A unit or a service listens where its own configuration says: the harness cannot
        // hand it a fresh name or a folder of the run's.
        let fixed = !matches!(m, Managed::Commands { .. });
        if fixed && target.endpoint.parts().iter().any(|p| !matches!(p, crate::endpoint::Part::Text(_))) {
            return Err(at.error(
                Some(endpoint.span()),
                format!("{m} listens where its configuration says: the endpoint must be that fixed name, without {{unique}} or {{dir}}"),
            ));
        }
        if let Some(r) = t.ready.as_ref().filter(|r| r.get_ref() != "endpoint") {
            return Err(at.error(
                Some(r.span()),
                format!("{m} writes its output to its manager, not to the harness: ready = \"endpoint\" (the default)"),
            ));
        }
    }
    target.managed = managed;
    target.args = t.args.clone();
    target.readiness = at.readiness(&t.ready)?;
    if let Some(ms) = &t.ready_timeout_ms {
        if *ms.get_ref() == 0 {
            return Err(at.error(Some(ms.span()), "ready_timeout_ms is 0: the target could never be ready"));
        }
        target.ready_timeout = Duration::from_millis(*ms.get_ref());
    }
    target.framing = at.framing(&t.framing)?;
    check_framed(&at, t, &target.framing)?;
    target.env = t.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    target.cwd = t.cwd.as_deref().map(resolve);
    target.run_as = t.run_as.as_ref().map(|s| at.identity(s)).transpose()?;
    for name in &t.create_accounts {
        #[cfg(unix)]
        crate::unix::creds::check_account_name(name.get_ref())
            .map_err(|e| at.error(Some(name.span()), e.to_string()))?;
        target.create_accounts.push(name.get_ref().clone());
    }
    target.published_in = t.published_in.clone();
    target.ping = exchange(&t.ping);
    target.privileged = exchange(&t.privileged);
    target.session = t
        .session
        .iter()
        .map(|s| crate::target::SessionStep {
            send: s.send.get_ref().as_bytes().to_vec(),
            expect: s.expect.as_ref().map(|e| e.get_ref().as_bytes().to_vec()),
            capture: s.capture.as_ref().map(|c| crate::target::Capture { offset: c.offset, len: c.len }),
        })
        .collect();
    target.message_prefix = t.message_prefix.as_ref().map_or("", |p| p.get_ref().as_str()).as_bytes().to_vec();
    target.coverage = t.coverage;
    for (key, v) in [("memory_limit_mb", &t.memory_limit_mb), ("process_limit", &t.process_limit)] {
        if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
            return Err(at.error(Some(v.span()), format!("{key} is 0: the server could not start")));
        }
    }
    target.limits = crate::target::Limits {
        memory_bytes: t.memory_limit_mb.as_ref().map(|m| m.get_ref().saturating_mul(1024 * 1024)),
        processes: t.process_limit.as_ref().map(|p| *p.get_ref()),
        cgroup: t.cgroup.unwrap_or(true),
    };
    target.client_under_test =
        t.client.as_ref().map(|c| ClientProgram { program: resolve(&c.program), args: c.args.clone() });
    for f in &t.files {
        // Only in the folder the harness makes for each start: no predictable path, nothing
        // another user could plant, and removed after.
        let name = f
            .path
            .get_ref()
            .strip_prefix("{dir}/")
            .filter(|n| !n.is_empty() && *n != "." && *n != ".." && !n.contains(['/', '\\', '{', '}']));
        let Some(name) = name else {
            return Err(at.error(
                Some(f.path.span()),
                "a file's path is \"{dir}/NAME\": the harness writes it in a fresh folder it makes for each start of the server (and removes after), {dir} in args and in the file's text",
            ));
        };
        if target.program.as_os_str().is_empty() {
            return Err(at.error(
                Some(f.path.span()),
                "[[target.files]] are written before the harness starts the server's program: this plan gives no program",
            ));
        }
        target.files.push(crate::target::FileTemplate { name: name.to_string(), text: f.text.clone() });
    }
    let program_given = t.program.as_ref().map(|p| p.get_ref().clone());
    for (what, v) in
        [("name", Some(&t.name)), ("program", program_given.as_ref()), ("endpoint", Some(endpoint.get_ref()))]
    {
        let Some(v) = v else { continue };
        if v.trim().is_empty() {
            return Err(at.error(None, format!("[target] {what} is empty")));
        }
    }
    let p = &plan.policy;
    let protection = match &p.protection {
        Some(prot) => Some(crate::protection::Protection::parse(prot.get_ref()).map_err(|e| {
            let why = match e {
                Error::InvalidInput { why, .. } => why,
                other => other.to_string(),
            };
            at.error(Some(prot.span()), format!("protection: {why}"))
        })?),
        None => None,
    };
    let allowed = p.allowed_users.iter().map(|s| at.identity(s)).collect::<Result<Vec<_>>>()?;
    let denied = p.denied_users.iter().map(|s| at.identity(s)).collect::<Result<Vec<_>>>()?;
    // A policy that contradicts itself: the same identity both allowed and denied.
    for (who, at_span) in denied.iter().zip(&p.denied_users) {
        if allowed.contains(who) {
            return Err(at.error(
                Some(at_span.span()),
                format!("{:?} is in both allowed_users and denied_users", who.to_string()),
            ));
        }
    }
    // The fuzzer's cases and ping connect as a client the policy allows (else as the server's
    // own identity: `Target::client_identity`).
    target.client_as = allowed.first().cloned();
    let defaults = Policy::default();
    let policy = Policy {
        protection,
        refuse_taken_name: p.refuse_taken_name.unwrap_or(defaults.refuse_taken_name),
        min_privileged_level: at.level(&p.min_privileged_level, defaults.min_privileged_level)?,
        client_max_level: at.level(&p.client_max_level, defaults.client_max_level)?,
        reject_remote: p.reject_remote.unwrap_or(defaults.reject_remote),
        allowed_users: allowed,
        denied_users: denied,
        other_sessions: p.other_sessions,
        peer_check: p.peer_check.unwrap_or(defaults.peer_check),
    };
    Ok((target, policy))
}

/// Where a file is for SARIF's locations ([`SourceFile`](crate::engine::report::SourceFile)):
/// relative to the root of the repository it is in (the nearest folder above it with a `.git`),
/// else to the current folder; an absolute `file:` URI when it is under neither. `line` is the
/// line results point at (1 for a plan).
pub fn source_file(file: &Path, line: u32) -> crate::engine::report::SourceFile {
    let cwd = std::env::current_dir().unwrap_or_default();
    let absolute = std::fs::canonicalize(file).unwrap_or_else(|_| cwd.join(file));
    let root = absolute
        .ancestors()
        .skip(1)
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
        .or_else(|| std::fs::canonicalize(&cwd).ok())
        .unwrap_or(cwd);
    source_in(&absolute, &root, line)
}

/// `absolute` as a [`SourceFile`](crate::engine::report::SourceFile) relative to `root`.
fn source_in(absolute: &Path, root: &Path, line: u32) -> crate::engine::report::SourceFile {
    use crate::engine::report::SourceFile;
    match absolute.strip_prefix(root) {
        Ok(relative) => SourceFile {
            uri: uri_path(relative),
            base: Some(format!("{}/", file_uri(root).trim_end_matches('/'))),
            line: line.max(1),
        },
        Err(_) => SourceFile { uri: file_uri(absolute), base: None, line: line.max(1) },
    }
}

/// A path's components, percent-encoded where a URI needs it, joined by `/`.
fn uri_path(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(part) => Some(percent_encode(&part.to_string_lossy())),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// An absolute path as a `file:` URI (`file:///work/x`, `file:///C:/work/x`).
fn file_uri(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("//?/").unwrap_or(&text);
    let encoded: Vec<String> =
        text.split('/').map(|p| if p.ends_with(':') { p.to_string() } else { percent_encode(p) }).collect();
    let joined = encoded.join("/");
    if joined.starts_with('/') {
        format!("file://{joined}")
    } else {
        format!("file:///{joined}")
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(part: &str) -> String {
    part.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Reads and parses a plan file, and checks the program it names: a file that exists
/// (relative to the plan's folder), so that a typo is an error at its place, not a server
/// that cannot start in every check.
pub fn load(file: &Path) -> Result<(Target, Policy)> {
    let text = read(file)?;
    let (target, policy) = parse(file, &text)?;
    check_program(file, &text, &target)?;
    Ok((target, policy))
}

/// Reads and parses a plan file without checking its program: for a caller that starts its
/// own (the facade's `Audit::program`).
pub fn load_unchecked(file: &Path) -> Result<(Target, Policy)> {
    parse(file, &read(file)?)
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file)
        .map_err(|e| Error::InvalidInput { what: "plan", why: format!("{}: cannot read it: {e}", file.display()) })
}

/// The target's program, as the plan resolved it, is a file (on Windows, also with `.exe`
/// added, as process creation does); the error points at the plan's `program`.
fn check_program(file: &Path, text: &str, target: &Target) -> Result<()> {
    if target.program.as_os_str().is_empty() || target.attach.is_some() || target.managed.is_some() {
        return Ok(());
    }
    let program = &target.program;
    let exe = program.extension().is_none().then(|| program.with_extension(std::env::consts::EXE_EXTENSION));
    if program.is_file() || (cfg!(windows) && exe.is_some_and(|e| e.is_file())) {
        return Ok(());
    }
    // The place of `program = ...`: the span of its value.
    let span = toml::from_str::<SpanOfProgram>(text).ok().map(|p| p.target.program.span());
    let why = if program.is_dir() { "is a folder, not a program" } else { "does not exist" };
    let base = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    Err(Located { file, text }.error(
        span,
        format!(
            "program {} {why} (a relative program is relative to the plan's folder, {})",
            program.display(),
            base.display()
        ),
    ))
}

/// Just the span of `[target] program`.
#[derive(Deserialize)]
struct SpanOfProgram {
    target: SpanOfProgramTarget,
}

#[derive(Deserialize)]
struct SpanOfProgramTarget {
    program: Spanned<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const GOOD: &str = r#"
[target]
name = "svc"
program = "bin/svc"
args = ["--pipe", "{pipe}"]
endpoint = "svc-{unique}"
ready = "line:READY"
framing = "length:2:le"
ping = { request = "PING", success = "PONG" }
privileged = { request = "PRIV x", success = "OK" }

[policy]
protection = "D:P(A;;GA;;;SY)"
min_privileged_level = "identification"
denied_users = ["61001"]
other_sessions = false
"#;

    #[test]
    fn a_plan_becomes_a_target_and_a_policy() {
        let (t, p) = parse(Path::new("/plans/svc.toml"), GOOD).expect("valid plan");
        assert_eq!(t.program, PathBuf::from("/plans/bin/svc"));
        assert_eq!(t.readiness, Readiness::Line("READY".into()));
        assert_eq!(t.framing, FramingSpec::Length { width: 2, little_endian: true });
        assert_eq!(t.privileged.as_ref().map(|e| e.success_prefix.clone()), Some(b"OK".to_vec()));
        assert_eq!(p.min_privileged_level, ImpersonationLevel::Identification);
        assert_eq!(p.other_sessions, Some(false));
        assert!(p.refuse_taken_name, "defaults fill what the plan leaves out");
    }

    #[test]
    fn a_ready_line_names_the_endpoint_only_where_the_plan_marks_it() {
        let ready =
            |form: &str| parse(Path::new("/p.toml"), &GOOD.replace("line:READY", form)).map(|(t, _)| t.readiness);
        assert_eq!(ready("line:unix:").expect("prefix"), Readiness::Line("unix:".into()));
        assert_eq!(
            ready("line:unix:path={endpoint},").expect("marked"),
            Readiness::LineNamingEndpoint { prefix: "unix:path=".into(), until: ",".into() }
        );
        assert_eq!(
            ready("line:READY {endpoint}").expect("to the end"),
            Readiness::LineNamingEndpoint { prefix: "READY ".into(), until: String::new() }
        );
        for bad in ["line:{endpoint}", "line:a{endpoint}b{endpoint}"] {
            let e = ready(bad).expect_err(bad).to_string();
            assert!(e.contains("{endpoint} once, after the text the line starts with"), "{e}");
        }
    }

    #[test]
    fn the_fuzzers_client_is_the_first_allowed_user_else_the_servers_identity() {
        let (t, _) = parse(Path::new("/p.toml"), GOOD).expect("plan");
        assert_eq!(t.client_identity(), None, "neither: the harness's own");
        let run_as = GOOD.replace("framing =", "run_as = \"61000\"\nframing =");
        let (t, _) = parse(Path::new("/p.toml"), &run_as).expect("plan");
        assert_eq!(t.client_identity(), Some(Identity::uid(61000)));
        let allowed = run_as.replace("denied_users", "allowed_users = [\"61002\", \"61003\"]\ndenied_users");
        let (t, _) = parse(Path::new("/p.toml"), &allowed).expect("plan");
        assert_eq!(t.client_identity(), Some(Identity::uid(61002)));
    }

    #[rstest]
    #[case(GOOD.replace("protection =", "protectoin ="), "plan.toml:13:1: unknown field `protectoin`: did you mean `protection`?")]
    #[case(GOOD.replace("ready =", "redy ="), "plan.toml:7:1: unknown field `redy`: did you mean `ready`?")]
    #[case(GOOD.replace("framing = \"length:2:le\"", "framing = \"lines\"").replace("\"PING\"", "\"PI\\nNG\""), "plan.toml:9:20: ping: \"PI\\nNG\" cannot be sent with framing \"lines\": cannot encode: the frame contains the delimiter")]
    #[case(GOOD.replace("framing = \"length:2:le\"", "framing = \"lines\"").replace("\"OK\"", "\"OK\\n\""), "plan.toml:10:46: privileged: \"OK\\n\" holds a newline, the delimiter of framing \"lines\"")]
    #[case(GOOD.replace("framing = \"length:2:le\"", "framing = \"length:1:le\"").replace("\"PRIV x\"", &format!("\"{}\"", "x".repeat(300))), "plan.toml:10:26: privileged: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" (300 bytes) cannot be sent with framing \"length:1:le\": cannot encode: a 300-byte payload does not fit the length field")]
    #[case(GOOD.replace("svc-{unique}", "{private_dir:b b}/s.sock"), "plan.toml:6:12: endpoint \"{private_dir:b b}/s.sock\", column 1: {private_dir:b b}: expected UID")]
    #[case(GOOD.replace("endpoint = \"svc-{unique}\"", "attach = \"/run/svc.sock\""), "plan.toml:6:10: attach names a server already running")]
    #[case(GOOD.replace("program = \"bin/svc\"\n", ""), "plan.toml: [target] needs a program (the harness starts the server), start/stop commands")]
    #[case(GOOD.replace("svc-{unique}", "{private_dir:61000/s.sock"), "is not closed with '}'")]
    #[case(GOOD.replace("program = \"bin/svc\"", "start = [\"svc-ctl\", \"start\"]"), "plan.toml:4:9: start needs stop")]
    #[case(GOOD.replace("program = \"bin/svc\"", "start = [\"s\"]\nstop = [\"t\"]"), "plan.toml:4:9: start needs pid_file")]
    #[case(GOOD.replace("program = \"bin/svc\"", "start = []\nstop = [\"t\"]"), "plan.toml:4:9: start is empty")]
    #[case(GOOD.replace("program = \"bin/svc\"", "stop = [\"t\"]"), "plan.toml:4:8: stop belongs with start")]
    #[case(GOOD.replace("name = \"svc\"", "name = \"svc\"\nunit = \"svc\""), "plan.toml:5:11: program and unit both say how the server starts")]
    #[case(GOOD.replace("program = \"bin/svc\"", "unit = \"a/b\""), "plan.toml:4:8: unit \"a/b\" is not a unit name")]
    #[case(GOOD.replace("name = \"svc\"", "name = \"svc\"\nmemory_limit_mb = 0"), "plan.toml:4:19: memory_limit_mb is 0")]
    #[case(GOOD.replace("length:2:le", "length:3:le"), "plan.toml:8:11: unknown framing \"length:3:le\"")]
    #[case(GOOD.replace("\"identification\"", "\"root\""), "plan.toml:14:24: unknown impersonation level \"root\"")]
    #[case(GOOD.replace("line:READY", "stdout"), "plan.toml:7:9: unknown readiness \"stdout\"")]
    #[case(GOOD.replace("name = \"svc\"\n", ""), "missing field `name`")]
    #[case("[target\nname = 1".to_string(), "plan.toml:1:")]
    #[case(GOOD.replace("denied_users = [\"61001\"]", "allowed_users = [\"61001\"]\ndenied_users = [\"61001\"]"), "plan.toml:16:17: \"61001\" is in both allowed_users and denied_users")]
    #[case(GOOD.replace("protection = \"D:P(A;;GA;;;SY)\"", "protection = \"0600\""), "plan.toml:13:14: protection: \"0600\" is neither SDDL")]
    #[case(GOOD.replace("protection = \"D:P(A;;GA;;;SY)\"", "protection = \"D:P(A;;GA;;;nobody)\""), "plan.toml:13:14: protection: ACE (A;;GA;;;nobody): \"nobody\" is not a SID")]
    #[case(GOOD.replace("ready = \"line:READY\"", "ready = \"line:READY\"\nready_timeout_ms = 0"), "plan.toml:8:20: ready_timeout_ms is 0")]
    #[case(GOOD.replace("program = \"bin/svc\"", "program = \" \""), "plan.toml: [target] program is empty")]
    #[case("[target]\nname = \"\u{e9}\u{e9}\"\nprogram = 1".to_string(), "plan.toml:3:11:")]
    fn mistakes_are_reported_with_line_column_and_expectation(#[case] text: String, #[case] want: &str) {
        let err = parse(Path::new("plan.toml"), &text).expect_err("bad plan").to_string();
        assert!(err.contains(want), "{err}");
    }

    #[test]
    fn a_service_manager_may_start_the_server() {
        let (key, endpoint, want) = if cfg!(windows) {
            ("service = \"Svc\"", "svc", Managed::WindowsService("Svc".into()))
        } else {
            ("unit = \"svc\"", "/run/svc.sock", Managed::Unit("svc.service".into()))
        };
        let text = format!("[target]\nname = \"svc\"\n{key}\nendpoint = \"{endpoint}\"\n");
        let (t, _) = parse(Path::new("plan.toml"), &text).expect("service plan");
        assert_eq!(t.managed, Some(want));
        let text = "[target]\nname = \"svc\"\nendpoint = \"{dir}/s-{unique}.sock\"\nstart = [\"ctl\", \"start\", \"{pipe}\"]\nstop = [\"ctl\", \"stop\"]\npid_file = \"run/s.pid\"\n";
        let (t, _) = parse(Path::new("/plans/plan.toml"), text).expect("commands plan");
        let want = Managed::Commands {
            start: vec!["ctl".into(), "start".into(), "{pipe}".into()],
            stop: vec!["ctl".into(), "stop".into()],
            pid_file: Some(Path::new("/plans").join("run/s.pid")),
            status: None,
        };
        assert_eq!(t.managed, Some(want));
    }

    /// A unit on Linux, a service on Windows: each listens at a fixed endpoint, and the other
    /// platform's manager is refused, naming this one's.
    #[test]
    fn a_service_manager_is_this_platforms_and_has_a_fixed_endpoint() {
        let (ours, shown, theirs, refused) = if cfg!(windows) {
            ("service = \"Svc\"", "the Windows service Svc", "unit = \"svc\"", "unit names a systemd unit: Linux only")
        } else {
            (
                "unit = \"svc\"",
                "the systemd unit svc.service",
                "service = \"Svc\"",
                "service names a Windows service: Windows only",
            )
        };
        let err = parse(Path::new("plan.toml"), &GOOD.replace("program = \"bin/svc\"", ours)).expect_err("{unique}");
        let want = format!("plan.toml:6:12: {shown} listens where its configuration says");
        assert!(err.to_string().contains(&want), "{err}");
        let err = parse(Path::new("plan.toml"), &GOOD.replace("program = \"bin/svc\"", theirs)).expect_err("theirs");
        assert!(err.to_string().contains(&format!(": {refused}")), "{err}");
    }

    #[test]
    fn a_plan_may_attach_to_a_running_server_instead_of_starting_one() {
        let text = "[target]\nname = \"svc\"\nattach = \"/run/svc.sock\"\n";
        let (t, _) = parse(Path::new("plan.toml"), text).expect("attach plan");
        assert_eq!((t.attach.as_deref(), t.endpoint.as_str()), (Some("/run/svc.sock"), "/run/svc.sock"));
    }

    /// A plan in a repository is located relative to the repository's root (SARIF's
    /// `%SRCROOT%`); names that need it are percent-encoded; a file outside it is a `file:` URI.
    #[cfg(unix)]
    #[test]
    fn a_plan_is_located_relative_to_its_repository() {
        let src = source_in(Path::new("/repo/ci/my plans/svc.toml"), Path::new("/repo"), 1);
        assert_eq!((src.uri.as_str(), src.base.as_deref()), ("ci/my%20plans/svc.toml", Some("file:///repo/")));
        let src = source_in(Path::new("/elsewhere/svc.toml"), Path::new("/repo"), 0);
        assert_eq!((src.uri.as_str(), src.base, src.line), ("file:///elsewhere/svc.toml", None, 1));
        // This repository's own plans, from this package's folder (where cargo runs the test).
        let src = source_file(Path::new("../fixtures/plans/unix-hardened.toml"), 1);
        if src.base.is_some() {
            assert_eq!(src.uri, "fixtures/plans/unix-hardened.toml");
        }
    }

    /// A typo far from every key gets no guess.
    #[test]
    fn an_unknown_key_like_no_known_one_gets_no_guess() {
        let err = parse(Path::new("plan.toml"), &GOOD.replace("protection =", "zzzzzzzzzz =")).expect_err("bad key");
        assert!(!err.to_string().contains("did you mean"), "{err}");
    }

    /// The program a plan names must exist, relative to the plan's folder, and the error
    /// points at `program`; `load_unchecked` (a caller with its own program) does not ask.
    #[test]
    fn a_program_that_does_not_exist_is_an_error_at_its_place() {
        let dir = std::env::temp_dir();
        let plan = dir.join(format!("ph-plan-program-{}-{:?}.toml", std::process::id(), std::thread::current().id()));
        let text = GOOD.replace("bin/svc", "no-such-dir/svc");
        std::fs::write(&plan, &text).expect("plan");
        let err = load(&plan).expect_err("no such program").to_string();
        let unchecked = load_unchecked(&plan).map(|_| ());
        std::fs::remove_file(&plan).ok();
        let want = format!(
            "{}:4:11: program {} does not exist (a relative program is relative to the plan's folder, {})",
            plan.display(),
            dir.join("no-such-dir/svc").display(),
            // The plan's folder as the error says it (Windows' temp_dir ends in a separator).
            plan.parent().expect("its folder").display()
        );
        assert!(err.contains(&want), "{err}\nwanted: {want}");
        assert!(unchecked.is_ok(), "{unchecked:?}");
    }

    #[test]
    fn an_unreadable_plan_says_which_file() {
        let err = load(Path::new("/no/such/plan.toml")).expect_err("missing").to_string();
        assert!(err.contains("/no/such/plan.toml: cannot read it"), "{err}");
    }
}
