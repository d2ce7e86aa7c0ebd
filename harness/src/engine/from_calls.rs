//! Verdicts from calls: what Microsoft's documented rules say a program's calls mean, for the
//! checks whose effect a platform cannot show (Wine: `docs/platforms.md`).
//!
//! Every verdict here begins its evidence with [`FROM_CALLS`] and names the calls it rests on.
//! A run in which the program made none of the calls a verdict needs (it used an API the trace
//! does not cover, or never got that far) is unverifiable, as without a trace.

use super::{Finding, Severity, Verdict};
use crate::calls::{pipe_key, Call, CallTrace, Namespace, SqosLevel, TracedCall};
use crate::rules::Rule;

/// The first line of every verdict's evidence from calls, in every report format.
pub const FROM_CALLS: &str = "from calls, not from effect";

fn lead(what: &str) -> String {
    format!("{FROM_CALLS}: {what}")
}

fn cite(n: usize, c: &TracedCall) -> String {
    format!("call {n} (pid {}, thread {}): {}", c.pid, c.tid, c.call)
}

fn unverifiable(rules: &[Rule], reason: String, evidence: Vec<String>) -> Verdict {
    Verdict::Unverifiable { reason, rules: rules.to_vec(), evidence }
}

fn fail(title: &str, severity: Severity, evidence: Vec<String>) -> Verdict {
    Verdict::Fail(Finding { title: title.into(), severity, evidence, seed: None, replay: None })
}

/// The `CreateNamedPipe` calls on `pipe`, numbered as in the trace (from 1).
fn creates<'a>(trace: &'a CallTrace, pipe: &str) -> Vec<(usize, &'a TracedCall)> {
    let key = pipe_key(pipe);
    trace
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(&c.call, Call::CreateNamedPipe { name, .. } if pipe_key(name) == key))
        .map(|(i, c)| (i + 1, c))
        .collect()
}

/// Creates the trace cannot name (`NtCreateNamedPipeFile` called by the program itself).
fn unnamed_creates(trace: &CallTrace) -> Vec<(usize, &TracedCall)> {
    trace
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.call, Call::NtCreateNamedPipeFile { .. }))
        .map(|(i, c)| (i + 1, c))
        .collect()
}

fn no_creates(rule: Rule, trace: &CallTrace, pipe: &str) -> Option<Verdict> {
    let named = creates(trace, pipe);
    let unnamed = unnamed_creates(trace);
    if !unnamed.is_empty() {
        let mut evidence =
            vec![lead("the program creates pipes through NtCreateNamedPipeFile, whose name the trace does not read")];
        evidence.extend(unnamed.iter().map(|(n, c)| cite(*n, c)));
        return Some(unverifiable(
            &[rule],
            "the program creates pipe instances through an API the trace does not cover".into(),
            evidence,
        ));
    }
    named.is_empty().then(|| {
        unverifiable(
            &[rule],
            format!("the trace shows no CreateNamedPipe call for {pipe}"),
            vec![lead(&format!("{} traced calls, none creating {pipe}", trace.calls.len()))],
        )
    })
}

/// First-instance defence: the server's first instance of `pipe` must carry
/// `FILE_FLAG_FIRST_PIPE_INSTANCE`, so that a squatter's earlier instance makes the create fail
/// with `ERROR_ACCESS_DENIED` instead of joining it (*CreateNamedPipeA*, `dwOpenMode`); a
/// finding only when the policy requires refusing a taken name (`required`).
pub fn first_instance_defence(trace: &CallTrace, pipe: &str, required: bool) -> Verdict {
    if let Some(v) = no_creates(Rule::FirstInstanceFlagEnforced, trace, pipe) {
        return v;
    }
    let all = creates(trace, pipe);
    let (n, first) = all[0];
    let flagged = matches!(&first.call, Call::CreateNamedPipe { open_mode, .. } if open_mode.first_pipe_instance());
    let mut evidence = vec![
        lead(&format!("the server's first CreateNamedPipe of {pipe} is call {n}")),
        cite(n, first),
        "rule: with FILE_FLAG_FIRST_PIPE_INSTANCE the create fails with ERROR_ACCESS_DENIED (5) if an instance of the name exists (CreateNamedPipeA, dwOpenMode)".into(),
    ];
    if flagged {
        evidence
            .push("held: a squatter's earlier instance would make the server's first create fail, not join it".into());
        Verdict::Pass { evidence }
    } else if !required {
        evidence.push("the policy does not require refusing a taken name".into());
        Verdict::Pass { evidence }
    } else {
        evidence.push(
            "so a squatter that created the name first gets the server's clients: the create joins its instance".into(),
        );
        fail("the server's first instance is created without FILE_FLAG_FIRST_PIPE_INSTANCE", Severity::High, evidence)
    }
}

/// Remote exposure: every instance of `pipe` must carry `PIPE_REJECT_REMOTE_CLIENTS`; an
/// instance without it can be opened over SMB (*CreateNamedPipeA*, `dwPipeMode`); a finding
/// only when the policy requires it (`required`).
pub fn remote_exposure(trace: &CallTrace, pipe: &str, required: bool) -> Verdict {
    if let Some(v) = no_creates(Rule::RemoteClientsRejected, trace, pipe) {
        return v;
    }
    let all = creates(trace, pipe);
    let open: Vec<&(usize, &TracedCall)> = all
        .iter()
        .filter(
            |(_, c)| matches!(&c.call, Call::CreateNamedPipe { pipe_mode, .. } if !pipe_mode.rejects_remote_clients()),
        )
        .collect();
    let mut evidence = vec![lead(&format!(
        "{} CreateNamedPipe call(s) of {pipe} in the run; {} without PIPE_REJECT_REMOTE_CLIENTS",
        all.len(),
        open.len()
    ))];
    evidence.push("rule: PIPE_REJECT_REMOTE_CLIENTS applies to the instance it is given to; one without it is reachable over SMB (CreateNamedPipeA, dwPipeMode)".into());
    if open.is_empty() {
        evidence.extend(all.iter().map(|(n, c)| cite(*n, c)));
        evidence.push(
            "held for every instance the run created (later instances are judged only if the run made them)".into(),
        );
        Verdict::Pass { evidence }
    } else if !required {
        evidence.extend(open.iter().map(|(n, c)| cite(*n, c)));
        evidence.push("the policy does not require refusing remote clients".into());
        Verdict::Pass { evidence }
    } else {
        evidence.extend(open.iter().map(|(n, c)| cite(*n, c)));
        fail("a server instance is created without PIPE_REJECT_REMOTE_CLIENTS", Severity::Medium, evidence)
    }
}

/// Client impersonation: a client's opens of `pipe` must offer at most `max` (the policy's
/// `client_max_level`, by default Identification: `SECURITY_SQOS_PRESENT |
/// SECURITY_IDENTIFICATION`); without SQOS the server may impersonate the client fully
/// (*CreateFileA*, `dwFlagsAndAttributes`; *Impersonation Levels*).
pub fn client_impersonation(trace: &CallTrace, pipe: &str, max: SqosLevel) -> Verdict {
    let key = pipe_key(pipe);
    let opens: Vec<(usize, &TracedCall)> = trace
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(&c.call, Call::OpenPipe { name, .. } if pipe_key(name) == key))
        .map(|(i, c)| (i + 1, c))
        .collect();
    if opens.is_empty() {
        return unverifiable(
            &[Rule::SqosLevelHonoured],
            format!("the trace shows no CreateFile call on {pipe} (the client may open it through an API the trace does not cover)"),
            vec![lead(&format!("{} traced calls, none opening {pipe}", trace.calls.len()))],
        );
    }
    let level = |c: &TracedCall| match &c.call {
        Call::OpenPipe { flags, .. } => flags.offered_level(),
        _ => SqosLevel::Delegation,
    };
    let too_much: Vec<&(usize, &TracedCall)> = opens.iter().filter(|(_, c)| level(c) > max).collect();
    let mut evidence = vec![
        lead(&format!("{} CreateFile call(s) on {pipe}; {} offer more than {max:?}, the policy's most", opens.len(), too_much.len())),
        "rule: without SECURITY_SQOS_PRESENT a client lets the server impersonate it fully (SecurityImpersonation); with it, the level named (CreateFileA, dwFlagsAndAttributes)".into(),
    ];
    if too_much.is_empty() {
        evidence.extend(opens.iter().map(|(n, c)| cite(*n, c)));
        evidence.push(format!("held: the client offers at most {max:?}"));
        Verdict::Pass { evidence }
    } else {
        evidence.extend(too_much.iter().map(|(n, c)| cite(*n, c)));
        fail(&format!("the client offers the server more than {max:?}, the policy's most"), Severity::High, evidence)
    }
}

/// Cross-session visibility, as far as calls show it: where the server publishes its pipe's
/// name. A `Local\` (or unprefixed) mapping lives in the creator's session, so a client in
/// another session cannot find it; `Global\` is one namespace for all sessions (*Kernel Object
/// Namespaces*). With `must_reach = true`, a `Local\` publication is a finding and `Global\`
/// passes (whether the pipe's DACL then admits that session is not in the calls). With
/// `must_reach = false`, calls cannot decide: the pipe name is machine-wide whatever publishes it.
pub fn cross_session_visibility(trace: &CallTrace, must_reach: Option<bool>) -> Verdict {
    let rules = [Rule::SessionIdsReal];
    let Some(must_reach) = must_reach else {
        return Verdict::not_applicable(
            "the policy does not say whether other sessions may reach the endpoint",
            "[policy] other_sessions = true (a service that serves other sessions) or false",
        );
    };
    let published: Vec<(usize, &TracedCall)> = trace
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.call, Call::FileMapping { create: true, .. }))
        .map(|(i, c)| (i + 1, c))
        .collect();
    if published.is_empty() {
        return unverifiable(
            &rules,
            "the trace shows no named file mapping: nothing to judge from calls".into(),
            vec![lead(&format!("{} traced calls, no CreateFileMapping with a name", trace.calls.len()))],
        );
    }
    let mut evidence = vec![
        lead("where the server publishes its pipe's name"),
        "rule: a Local\\ (or unprefixed) object lives in its creator's session; Global\\ is shared by all sessions (Kernel Object Namespaces)".into(),
    ];
    evidence.extend(published.iter().map(|(n, c)| cite(*n, c)));
    if !must_reach {
        return unverifiable(
            &rules,
            "the policy keeps other sessions out, which depends on the pipe's DACL and sessions, not on where its name is published".into(),
            evidence,
        );
    }
    let local = published.iter().any(|(_, c)| matches!(c.call, Call::FileMapping { namespace: Namespace::Local, .. }));
    evidence.push("the policy says other sessions must reach it".into());
    if local {
        fail(
            "the pipe's name is published in a Local\\ object: a client in another session cannot find it",
            Severity::Medium,
            evidence,
        )
    } else {
        evidence.push("held: the name is in Global\\, which other sessions can open (whether the pipe's DACL admits them is not in the calls)".into());
        Verdict::Pass { evidence }
    }
}

/// Whether a verdict was decided from calls: a pass or a finding whose evidence begins with
/// [`FROM_CALLS`] (an unverifiable verdict the calls could not decide is not one).
pub fn is_from_calls(v: &Verdict) -> bool {
    let evidence = match v {
        Verdict::Pass { evidence } => evidence,
        Verdict::Fail(f) => &f.evidence,
        _ => return false,
    };
    evidence.first().is_some_and(|e| e.starts_with(FROM_CALLS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::tests::NODE;
    use crate::calls::{FileFlags, OpenMode, PipeMode, Width};

    fn traced(calls: Vec<Call>) -> CallTrace {
        CallTrace {
            calls: calls.into_iter().map(|call| TracedCall { pid: 1, tid: 2, call, returned: Some(1) }).collect(),
        }
    }

    fn create(first: bool, reject: bool) -> Call {
        Call::CreateNamedPipe {
            width: Width::W,
            name: r"\\.\pipe\p".into(),
            open_mode: OpenMode(3 | if first { OpenMode::FIRST_PIPE_INSTANCE } else { 0 }),
            pipe_mode: PipeMode(if reject { PipeMode::REJECT_REMOTE_CLIENTS } else { 0 }),
            max_instances: 255,
            security_attributes: true,
        }
    }

    fn open(flags: u32) -> Call {
        Call::OpenPipe { width: Width::W, name: r"\\.\PIPE\p".into(), flags: FileFlags(flags) }
    }

    #[test]
    fn the_flag_on_the_first_instance_decides_both_ways() {
        let hardened = traced(vec![create(true, true), create(false, true)]);
        let prone = traced(vec![create(false, true), create(false, true)]);
        let late = traced(vec![create(false, true), create(true, true)]);
        assert_eq!(first_instance_defence(&hardened, r"\\.\pipe\p", true).kind(), "pass");
        assert_eq!(first_instance_defence(&prone, r"\\.\pipe\p", true).kind(), "fail");
        assert_eq!(
            first_instance_defence(&late, r"\\.\pipe\p", true).kind(),
            "fail",
            "the flag on a later instance is too late"
        );
        assert_eq!(first_instance_defence(&hardened, r"\\.\pipe\other", true).kind(), "unverifiable");
        let nt = traced(vec![Call::NtCreateNamedPipeFile { disposition: 2 }]);
        assert_eq!(
            first_instance_defence(&nt, r"\\.\pipe\p", true).kind(),
            "unverifiable",
            "a create the trace cannot name"
        );
        assert!(is_from_calls(&first_instance_defence(&prone, r"\\.\pipe\p", true)));
        assert_eq!(first_instance_defence(&prone, r"\\.\pipe\p", false).kind(), "pass", "the policy does not ask");
        let open_later = traced(vec![create(true, true), create(false, false)]);
        assert_eq!(remote_exposure(&open_later, r"\\.\pipe\p", false).kind(), "pass", "the policy does not ask");
        assert_eq!(
            client_impersonation(&traced(vec![open(0)]), r"\\.\pipe\p", SqosLevel::Impersonation).kind(),
            "pass",
            "the policy allows full impersonation"
        );
    }

    #[test]
    fn every_instance_must_reject_remote_clients() {
        assert_eq!(
            remote_exposure(&traced(vec![create(true, true), create(false, true)]), r"\\.\pipe\p", true).kind(),
            "pass"
        );
        let v = remote_exposure(&traced(vec![create(true, true), create(false, false)]), r"\\.\pipe\p", true);
        match &v {
            Verdict::Fail(f) => assert!(f.evidence.iter().any(|e| e.starts_with("call 2 ")), "{f:?}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn a_client_offering_more_than_identification_fails() {
        let id = FileFlags::SQOS_PRESENT | 0x1_0000;
        assert_eq!(
            client_impersonation(&traced(vec![open(id)]), r"\\.\pipe\p", SqosLevel::Identification).kind(),
            "pass"
        );
        assert_eq!(
            client_impersonation(&traced(vec![open(0)]), r"\\.\pipe\p", SqosLevel::Identification).kind(),
            "fail",
            "no SQOS: full impersonation"
        );
        assert_eq!(
            client_impersonation(
                &traced(vec![open(FileFlags::SQOS_PRESENT | 0x2_0000)]),
                r"\\.\pipe\p",
                SqosLevel::Identification
            )
            .kind(),
            "fail"
        );
        assert_eq!(
            client_impersonation(&traced(vec![]), r"\\.\pipe\p", SqosLevel::Identification).kind(),
            "unverifiable"
        );
    }

    #[test]
    fn where_the_name_is_published_against_the_policy() {
        let mapping =
            |name: &str| Call::FileMapping { create: true, name: name.into(), namespace: Namespace::of(name) };
        assert_eq!(cross_session_visibility(&traced(vec![mapping(r"Local\m")]), Some(true)).kind(), "fail");
        assert_eq!(cross_session_visibility(&traced(vec![mapping(r"Global\m")]), Some(true)).kind(), "pass");
        assert_eq!(cross_session_visibility(&traced(vec![mapping(r"Global\m")]), Some(false)).kind(), "unverifiable");
        assert_eq!(cross_session_visibility(&traced(vec![]), Some(true)).kind(), "unverifiable");
        assert_eq!(cross_session_visibility(&traced(vec![mapping("m")]), None).kind(), "not_applicable");
    }

    #[test]
    fn node_is_judged_from_its_recorded_calls() {
        let t = CallTrace::parse_relay(NODE, Some(0x20));
        assert_eq!(first_instance_defence(&t, r"\\.\pipe\ph-node-test", true).kind(), "pass");
        assert_eq!(remote_exposure(&t, r"\\.\pipe\ph-node-test", true).kind(), "fail");
    }
}
