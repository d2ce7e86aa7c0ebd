//! What fixes each scenario's findings, and how bad they usually are: the rules of the SARIF
//! report (code scanning shows the fix as the rule's help, and ranks by its severity).

use crate::{ScenarioId, SCENARIOS};
use pipe_harness_core::engine::report::RuleDoc;
use pipe_harness_core::engine::Severity;

/// The fix of a scenario's findings, in a few sentences, and their usual severity.
pub fn fix(scenario: ScenarioId) -> (&'static str, Severity) {
    use ScenarioId as S;
    match scenario {
        S::InstanceSquatting => (
            "Create the first instance with FILE_FLAG_FIRST_PIPE_INSTANCE and keep an instance open for the server's whole life, so the name is never free (Windows); keep the socket in a directory only the service may write, created before the server binds (Unix). Clients should check who serves the name before trusting it.",
            Severity::High,
        ),
        S::FirstInstanceDefence => (
            "Refuse a name that is taken: create the first instance with FILE_FLAG_FIRST_PIPE_INSTANCE (Windows) or bind without unlinking a live socket (Unix), and exit non-zero without serving when the create or bind fails.",
            Severity::High,
        ),
        S::InstanceCreateRights => (
            "Grant no broad group (Everyone, Users, Authenticated Users) write access in the pipe's DACL: GENERIC_WRITE and FILE_APPEND_DATA include FILE_CREATE_PIPE_INSTANCE (Windows); keep the socket in a directory only the service may write (Unix).",
            Severity::High,
        ),
        S::DaclChurn => (
            "Pass the same explicit security descriptor to every CreateNamedPipe call, not only the first (Windows); set the socket's mode and owner explicitly (fchmod before listen, or a private directory), not through the umask (Unix).",
            Severity::High,
        ),
        S::ImpersonationLimits => (
            "Check the impersonation level the client granted (GetTokenInformation TokenImpersonationLevel after ImpersonateNamedPipeClient) and refuse privileged requests below the policy's level; never fall back to the service's own identity when impersonation fails.",
            Severity::Critical,
        ),
        S::ClientImpersonation => (
            "Open the pipe with SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION (or SECURITY_ANONYMOUS) in CreateFile's flags, so a rogue server cannot impersonate the client above Identification.",
            Severity::High,
        ),
        S::ClientVerifiesServer => (
            "Before sending anything, check who serves the endpoint: GetNamedPipeServerProcessId and the server process's token or image (Windows), SO_PEERCRED's uid (Unix); refuse a server that is not the expected service.",
            Severity::High,
        ),
        S::ConnectRace => (
            "Authenticate every client by its identity (impersonation, GetNamedPipeClientProcessId, SO_PEERCRED), not by being first to connect, and serve more than one instance so a squatting client cannot lock the legitimate one out.",
            Severity::High,
        ),
        S::RemoteExposure => (
            "Create every instance with PIPE_REJECT_REMOTE_CLIENTS, and deny NETWORK (S-1-5-2) in the pipe's DACL.",
            Severity::High,
        ),
        S::CrossSessionVisibility => (
            "Publish the pipe, and the name that publishes it, only in the sessions the service serves: a Global\\ object and a DACL for other sessions only when they must reach it; a per-session name otherwise.",
            Severity::High,
        ),
        S::FramingRobustness => (
            "Validate every length and field before use, bound allocations and reads, and keep one bad frame from ending the server (handle errors per connection). The finding's replay command and the reproducer show the input.",
            Severity::High,
        ),
        S::PeerCredentials => (
            "Read the peer's credentials (SO_PEERCRED, getpeereid) on every connection and refuse the privileged request from a uid the policy does not allow.",
            Severity::High,
        ),
        S::PermissionWindow => (
            "Close the window between bind and chmod: bind in a directory only allowed users may search (mode 0700 or a group), or set the umask before bind so the socket is created with its final mode.",
            Severity::High,
        ),
    }
}

/// Every registered scenario as a rule of the SARIF report.
pub fn rule_docs() -> Vec<RuleDoc> {
    SCENARIOS
        .iter()
        .map(|s| {
            let (fix, severity) = fix(s.scenario);
            RuleDoc { id: s.id.into(), title: s.title.into(), fix: fix.into(), severity }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_a_fix() {
        for s in SCENARIOS {
            let (fix, _) = fix(s.scenario);
            assert!(fix.len() > 40 && fix.ends_with('.'), "{}: {fix}", s.id);
        }
        assert_eq!(rule_docs().len(), SCENARIOS.len());
    }
}
