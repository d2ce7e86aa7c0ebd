//! Platform-neutral identity vocabulary shared by the engine and the scenarios: who a process
//! runs as or a client connects as ([`Identity`]), and how far a server may use a client's
//! identity ([`ImpersonationLevel`]).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a server runs as, or a client connects as: a numeric uid (and gid), or an account by
/// name, resolved on the machine where it is used (Unix: `/etc/passwd` and `/etc/group`).
/// Parsed from a plan's `run_as`, `allowed_users` and `denied_users`.
///
/// ```
/// use pipe_harness_core::identity::Identity;
///
/// assert_eq!("61000".parse::<Identity>().unwrap(), Identity::uid(61000));
/// assert_eq!("61000:5".parse::<Identity>().unwrap(), Identity::Uid { uid: 61000, gid: Some(5) });
/// let svc: Identity = "messagebus".parse().unwrap();
/// assert_eq!(svc, Identity::Account { name: "messagebus".into(), group: None });
/// assert_eq!(svc.to_string(), "messagebus");
/// assert!("".parse::<Identity>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Identity {
    /// A Unix uid, and a gid (`None`: the uid's number, or the account's primary group).
    Uid {
        /// User id.
        uid: u32,
        /// Group id.
        gid: Option<u32>,
    },
    /// An account by name, with a group by name or number (`None`: its primary group). It
    /// must exist where the check runs.
    Account {
        /// The account.
        name: String,
        /// The group.
        group: Option<String>,
    },
}

impl Identity {
    /// A numeric uid, its gid the same number.
    pub fn uid(uid: u32) -> Identity {
        Identity::Uid { uid, gid: None }
    }
}

/// What is wrong with an identity's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("identity {text:?}: {why}")]
pub struct BadIdentity {
    /// The text.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl std::str::FromStr for Identity {
    type Err = BadIdentity;

    /// `UID`, `UID:GID`, `ACCOUNT` or `ACCOUNT:GROUP`.
    fn from_str(text: &str) -> Result<Identity, BadIdentity> {
        let bad = |why| BadIdentity { text: text.to_string(), why };
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u.trim(), Some(g.trim())),
            None => (text.trim(), None),
        };
        let name_ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace) && !s.contains(':');
        if !name_ok(user) || group.is_some_and(|g| !name_ok(g)) {
            return Err(bad("expected UID, UID:GID, ACCOUNT or ACCOUNT:GROUP"));
        }
        Ok(match (user.parse::<u32>(), group) {
            (Ok(uid), None) => Identity::Uid { uid, gid: None },
            (Ok(uid), Some(g)) => match g.parse::<u32>() {
                Ok(gid) => Identity::Uid { uid, gid: Some(gid) },
                Err(_) => return Err(bad("a numeric uid takes a numeric gid")),
            },
            (Err(_), group) => Identity::Account { name: user.to_string(), group: group.map(str::to_string) },
        })
    }
}

impl fmt::Display for Identity {
    /// As a plan writes it (`61000`, `61000:5`, `svc`, `svc:grp`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Uid { uid, gid: None } => write!(f, "{uid}"),
            Identity::Uid { uid, gid: Some(g) } => write!(f, "{uid}:{g}"),
            Identity::Account { name, group: None } => f.write_str(name),
            Identity::Account { name, group: Some(g) } => write!(f, "{name}:{g}"),
        }
    }
}

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
