//! Platform-neutral identity vocabulary shared by the engine and the scenarios.

use serde::{Deserialize, Serialize};

/// How far a server may use a client's identity (Windows `SECURITY_IMPERSONATION_LEVEL`; on
/// Unix sockets every peer is at most "identified" by its credentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpersonationLevel {
    /// The server cannot even identify the client.
    Anonymous = 0,
    /// The server can read the client's SIDs and run access checks, but not act as it.
    Identification = 1,
    /// The server can act as the client on this machine.
    Impersonation = 2,
    /// The server can act as the client on other machines too.
    Delegation = 3,
}

impl ImpersonationLevel {
    /// All levels, lowest first.
    pub const ALL: [ImpersonationLevel; 4] = [
        ImpersonationLevel::Anonymous,
        ImpersonationLevel::Identification,
        ImpersonationLevel::Impersonation,
        ImpersonationLevel::Delegation,
    ];

    /// The name used in plans and reports (`identification`).
    pub fn id(self) -> &'static str {
        match self {
            ImpersonationLevel::Anonymous => "anonymous",
            ImpersonationLevel::Identification => "identification",
            ImpersonationLevel::Impersonation => "impersonation",
            ImpersonationLevel::Delegation => "delegation",
        }
    }
}
