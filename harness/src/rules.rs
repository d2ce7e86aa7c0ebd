//! The rules the scenarios rest on and the probe's report of them: the platform-neutral types
//! every layer shares (the platform probes fill them in, the scenarios read them). The
//! measuring itself is [`crate::probe`].

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A rule of the platform that one or more scenarios rest on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// A second `CreateNamedPipeW` with `FILE_FLAG_FIRST_PIPE_INSTANCE` fails with
    /// `ERROR_ACCESS_DENIED` while an instance of the name exists.
    FirstInstanceFlagEnforced,
    /// A client open is refused when the pipe's DACL grants the client nothing.
    ClientOpenDaclEnforced,
    /// Creating another instance is refused when the DACL withholds `FILE_CREATE_PIPE_INSTANCE`.
    InstanceCreateDaclEnforced,
    /// A pipe created with a NULL security descriptor gets the default DACL (owner, DACL present).
    NullSdGetsDefaultDacl,
    /// All instances of a name share the security descriptor the first instance set.
    SdSharedAcrossInstances,
    /// When the last instance closes the name's SD goes with it; the next first instance sets anew.
    SdReleasedWithLastInstance,
    /// `ImpersonateNamedPipeClient` fails with `ERROR_CANNOT_IMPERSONATE` before the server read.
    ImpersonationRequiresRead,
    /// The server's impersonation token carries the level the client's SQOS asked for.
    SqosLevelHonoured,
    /// A second identity (the anonymous token) used by a client is the identity the server sees.
    DistinctIdentityReachesServer,
    /// A restricted token (Administrators deny-only) is denied by `AccessCheck` where the
    /// unrestricted token is granted.
    RestrictedTokenHonoured,
    /// Lowering a token's integrity level takes effect (reads back as Low).
    IntegrityLevelSettable,
    /// `LogonUserW` refuses a user name and password that do not exist.
    LogonChecksCredentials,
    /// A token can be moved into another session (`SeTcbPrivilege`) and a process started with it
    /// runs in that session.
    SessionIdsReal,
    /// `PIPE_REJECT_REMOTE_CLIENTS` refuses a client that arrives over the network redirector
    /// (`\\localhost\pipe\...`), where the same open succeeds without the flag.
    RemoteClientsRejected,
    /// Listing `\\.\pipe\` shows a pipe the probe created, with its instance count (what
    /// `pipe-harness list` and the instance-count checks need).
    PipeEnumeration,
    /// A job object's limits hold: a second process is refused by `ActiveProcessLimit` 1, and a
    /// commit past `JobMemoryLimit` fails (the memory and process limits of the server under
    /// test).
    JobLimitsEnforced,
    /// `FlushFileBuffers` on a client's end of a pipe returns only once the server has read
    /// everything written (documented for the server's end): the live fuzzer ends a case over
    /// a pipe as soon as the server has read it, instead of waiting a fixed settle.
    FlushWaitsForReader,
    /// Unix: the harness can act as other uids (it is root), and a server sees the uid it took
    /// through `SO_PEERCRED`.
    UnixDistinctIdentities,
    /// Unix: connecting to a path socket needs write permission on the socket file.
    UnixSocketModeEnforced,
    /// Unix: `bind(2)` on a path that exists fails with `EADDRINUSE` (the name is not taken
    /// over unless the server unlinks it).
    UnixBindExclusive,
    /// Unix (Linux): abstract socket names live in the network namespace: a client in a fresh
    /// one cannot reach them.
    UnixAbstractPerNetns,
    /// Unix (Linux): the harness can put each server in a cgroup of its own (killed as one
    /// whatever its processes do), with memory and process limits.
    UnixCgroupContainment,
}

impl Rule {
    /// The Windows named-pipe rules.
    pub const WINDOWS: [Rule; 17] = [
        Rule::FirstInstanceFlagEnforced,
        Rule::ClientOpenDaclEnforced,
        Rule::InstanceCreateDaclEnforced,
        Rule::NullSdGetsDefaultDacl,
        Rule::SdSharedAcrossInstances,
        Rule::SdReleasedWithLastInstance,
        Rule::ImpersonationRequiresRead,
        Rule::SqosLevelHonoured,
        Rule::DistinctIdentityReachesServer,
        Rule::RestrictedTokenHonoured,
        Rule::IntegrityLevelSettable,
        Rule::LogonChecksCredentials,
        Rule::SessionIdsReal,
        Rule::RemoteClientsRejected,
        Rule::PipeEnumeration,
        Rule::JobLimitsEnforced,
        Rule::FlushWaitsForReader,
    ];

    /// The Unix-domain-socket rules.
    pub const UNIX: [Rule; 5] = [
        Rule::UnixDistinctIdentities,
        Rule::UnixSocketModeEnforced,
        Rule::UnixBindExclusive,
        Rule::UnixAbstractPerNetns,
        Rule::UnixCgroupContainment,
    ];

    /// Every rule, in the order the probe measures and prints them: the Windows rules, then the
    /// Unix ones (built from those two lists, so they cannot drift apart).
    pub const ALL: [Rule; Rule::WINDOWS.len() + Rule::UNIX.len()] = {
        let mut all = [Rule::FirstInstanceFlagEnforced; Rule::WINDOWS.len() + Rule::UNIX.len()];
        let mut i = 0;
        while i < Rule::WINDOWS.len() {
            all[i] = Rule::WINDOWS[i];
            i += 1;
        }
        while i < all.len() {
            all[i] = Rule::UNIX[i - Rule::WINDOWS.len()];
            i += 1;
        }
        all
    };

    /// True for a Unix-socket rule, false for a Windows named-pipe rule.
    pub fn is_unix(self) -> bool {
        Rule::UNIX.contains(&self)
    }

    /// The stable identifier used in JSON and on the command line (`first_instance_flag_enforced`).
    pub fn id(self) -> &'static str {
        match self {
            Rule::FirstInstanceFlagEnforced => "first_instance_flag_enforced",
            Rule::ClientOpenDaclEnforced => "client_open_dacl_enforced",
            Rule::InstanceCreateDaclEnforced => "instance_create_dacl_enforced",
            Rule::NullSdGetsDefaultDacl => "null_sd_gets_default_dacl",
            Rule::SdSharedAcrossInstances => "sd_shared_across_instances",
            Rule::SdReleasedWithLastInstance => "sd_released_with_last_instance",
            Rule::ImpersonationRequiresRead => "impersonation_requires_read",
            Rule::SqosLevelHonoured => "sqos_level_honoured",
            Rule::DistinctIdentityReachesServer => "distinct_identity_reaches_server",
            Rule::RestrictedTokenHonoured => "restricted_token_honoured",
            Rule::IntegrityLevelSettable => "integrity_level_settable",
            Rule::LogonChecksCredentials => "logon_checks_credentials",
            Rule::SessionIdsReal => "session_ids_real",
            Rule::RemoteClientsRejected => "remote_clients_rejected",
            Rule::PipeEnumeration => "pipe_enumeration",
            Rule::JobLimitsEnforced => "job_limits_enforced",
            Rule::FlushWaitsForReader => "flush_waits_for_reader",
            Rule::UnixDistinctIdentities => "unix_distinct_identities",
            Rule::UnixSocketModeEnforced => "unix_socket_mode_enforced",
            Rule::UnixBindExclusive => "unix_bind_exclusive",
            Rule::UnixAbstractPerNetns => "unix_abstract_per_netns",
            Rule::UnixCgroupContainment => "unix_cgroup_containment",
        }
    }

    /// One line saying what the rule is, for tables and reports.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::FirstInstanceFlagEnforced => "FILE_FLAG_FIRST_PIPE_INSTANCE refuses a taken name",
            Rule::ClientOpenDaclEnforced => "pipe DACL refuses a client it grants nothing",
            Rule::InstanceCreateDaclEnforced => "pipe DACL refuses a new instance without CREATE_PIPE_INSTANCE",
            Rule::NullSdGetsDefaultDacl => "NULL security descriptor gives the default DACL",
            Rule::SdSharedAcrossInstances => "instances share the first instance's SD",
            Rule::SdReleasedWithLastInstance => "SD goes away with the last instance",
            Rule::ImpersonationRequiresRead => "impersonation fails before the first read",
            Rule::SqosLevelHonoured => "server gets the SQOS level the client chose",
            Rule::DistinctIdentityReachesServer => "server sees the client's (other) identity",
            Rule::RestrictedTokenHonoured => "restricted token (admins deny-only) is denied",
            Rule::IntegrityLevelSettable => "a token's integrity level can be lowered",
            Rule::LogonChecksCredentials => "LogonUser refuses bad credentials",
            Rule::SessionIdsReal => "a token and process can be put in another session",
            Rule::RemoteClientsRejected => "PIPE_REJECT_REMOTE_CLIENTS refuses a remote open",
            Rule::PipeEnumeration => r"\\.\pipe\ lists pipes and instance counts",
            Rule::JobLimitsEnforced => "a job's process and memory limits are enforced",
            Rule::FlushWaitsForReader => "a client's flush returns once the server has read all",
            Rule::UnixDistinctIdentities => "the harness can connect as other uids, seen by SO_PEERCRED",
            Rule::UnixSocketModeEnforced => "a socket file's mode refuses other users",
            Rule::UnixBindExclusive => "bind on an existing socket path fails",
            Rule::UnixAbstractPerNetns => "abstract names are per network namespace",
            Rule::UnixCgroupContainment => "servers run in cgroups of their own, with limits",
        }
    }

    /// Parses a rule from its [`Rule::id`].
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// What the probe found for one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Measured, and the platform behaves as the rule says.
    Holds,
    /// Measured, and the platform does not behave as the rule says: checks resting on it are
    /// unverifiable here.
    DoesNotHold,
    /// The measurement could not be made (a privilege or a peer is missing); the evidence says
    /// why. Checks resting on it are unverifiable here too.
    Untestable,
    /// The rule belongs to another platform (a Windows rule on Linux).
    NotApplicable,
}

impl Status {
    /// The word printed in tables.
    pub fn label(self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::DoesNotHold => "DOES NOT HOLD",
            Status::Untestable => "untestable",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One measured rule with its evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    /// Which rule.
    pub rule: Rule,
    /// What was found.
    pub status: Status,
    /// What was done and what was seen, in order: the calls, their results, the values read back.
    pub evidence: Vec<String>,
}

/// Where the probe ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformInfo {
    /// `windows`, `linux`, ...
    pub os: String,
    /// Wine's version when the process runs under Wine (ntdll exports `wine_get_version`).
    /// For information only: every verdict comes from behaviour.
    pub wine_version: Option<String>,
    /// The harness's own user SID (Windows) or uid (Unix).
    pub user: Option<String>,
    /// The harness's session id (Windows) where known.
    pub session_id: Option<u32>,
}

/// The probe's full answer: a result for every rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Version of this JSON shape.
    pub schema_version: u32,
    /// Where it ran.
    pub platform: PlatformInfo,
    /// One result per rule, in [`Rule::ALL`] order.
    pub results: Vec<RuleResult>,
}

impl ProbeReport {
    /// The result for `rule`.
    pub fn result(&self, rule: Rule) -> Option<&RuleResult> {
        self.results.iter().find(|r| r.rule == rule)
    }

    /// The status for `rule` (`Untestable` when the report has no entry for it).
    pub fn status(&self, rule: Rule) -> Status {
        self.result(rule).map_or(Status::Untestable, |r| r.status)
    }

    /// True when `rule` was measured to hold.
    pub fn holds(&self, rule: Rule) -> bool {
        self.status(rule) == Status::Holds
    }

    /// The report as the human table `pipe-harness probe` prints.
    pub fn to_table(&self) -> String {
        self.table(false)
    }

    /// The table for an 80-column terminal: each rule, its status, what it says and the
    /// evidence, wrapped; the rules not applicable for one reason (the other platform's) as
    /// one line, unless `verbose`.
    pub fn table(&self, verbose: bool) -> String {
        use crate::wrap::{wrap, COLUMNS};
        let mut out = String::new();
        let p = &self.platform;
        let _ = write!(out, "platform: {}", p.os);
        if let Some(w) = &p.wine_version {
            let _ = write!(out, " (Wine {w})");
        }
        if let Some(u) = &p.user {
            let _ = write!(out, ", user {u}");
        }
        if let Some(s) = p.session_id {
            let _ = write!(out, ", session {s}");
        }
        out.push('\n');
        let width = self.results.iter().map(|r| r.rule.id().len()).max().unwrap_or(0);
        // The reasons shared by several rules not applicable here, each said once.
        let mut grouped: Vec<(&str, Vec<Rule>)> = Vec::new();
        for r in self.results.iter().filter(|r| r.status == Status::NotApplicable && !verbose) {
            let why = r.evidence.first().map_or("", String::as_str);
            match grouped.iter_mut().find(|(w, _)| *w == why) {
                Some((_, rules)) => rules.push(r.rule),
                None => grouped.push((why, vec![r.rule])),
            }
        }
        grouped.retain(|(_, rules)| rules.len() > 1);
        for r in &self.results {
            let why = r.evidence.first().map_or("", String::as_str);
            if r.status == Status::NotApplicable && grouped.iter().any(|(w, _)| *w == why) {
                continue;
            }
            let _ = writeln!(out, "{:<width$}  {}", r.rule.id(), r.status.label());
            let _ = writeln!(out, "{}", wrap(r.rule.summary(), COLUMNS, "    ", "    "));
            for e in &r.evidence {
                let _ = writeln!(out, "{}", wrap(e, COLUMNS, "    - ", "      "));
            }
        }
        for (why, rules) in &grouped {
            let text = format!("{} rules not applicable: {why} (--verbose lists them)", rules.len());
            let _ = writeln!(out, "{}", wrap(&text, COLUMNS, "", "    "));
        }
        let count = |s: Status| self.results.iter().filter(|r| r.status == s).count();
        let _ = writeln!(
            out,
            "{} rules: {} hold, {} do not hold, {} untestable, {} not applicable",
            self.results.len(),
            count(Status::Holds),
            count(Status::DoesNotHold),
            count(Status::Untestable),
            count(Status::NotApplicable)
        );
        out
    }

    /// The report as pretty JSON (the `--format json` output; `schema_version` 1).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Results for the rules of the other platform: not applicable here.
pub(crate) fn not_applicable(rules: &[Rule], why: &str) -> Vec<RuleResult> {
    rules
        .iter()
        .map(|&rule| RuleResult { rule, status: Status::NotApplicable, evidence: vec![why.to_string()] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_parse_back() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(r));
            assert_eq!(serde_json::to_value(r).ok(), Some(serde_json::Value::String(r.id().into())));
        }
        assert_eq!(Rule::from_id("no_such_rule"), None);
    }

    #[test]
    fn table_and_json_carry_every_result_and_its_evidence() {
        let report = ProbeReport {
            schema_version: 1,
            platform: PlatformInfo {
                os: "windows".into(),
                wine_version: Some("8.0".into()),
                user: None,
                session_id: Some(1),
            },
            results: vec![
                RuleResult {
                    rule: Rule::FirstInstanceFlagEnforced,
                    status: Status::DoesNotHold,
                    evidence: vec!["second create: ok".into()],
                },
                RuleResult { rule: Rule::SdSharedAcrossInstances, status: Status::Holds, evidence: vec![] },
            ],
        };
        let table = report.to_table();
        assert!(table.contains("platform: windows (Wine 8.0), session 1"));
        assert!(table.contains("first_instance_flag_enforced") && table.contains("DOES NOT HOLD"));
        assert!(table.contains("- second create: ok"));
        assert!(table.contains("2 rules: 1 hold, 1 do not hold, 0 untestable, 0 not applicable"));
        let back: ProbeReport = serde_json::from_str(&report.to_json()).expect("json round trip");
        assert_eq!(back, report);
        assert!(!report.holds(Rule::FirstInstanceFlagEnforced));
        assert!(report.holds(Rule::SdSharedAcrossInstances));
        assert_eq!(report.status(Rule::SessionIdsReal), Status::Untestable);
    }
}
