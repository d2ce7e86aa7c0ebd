//! The one error type of the `pipe_harness_core` crate boundary.
//!
//! `Err` means the harness could not do what it was asked (the OS refused, the input was bad,
//! a deadline passed). It never carries a security finding: findings are ordinary values.

use std::fmt;
use std::time::Duration;

/// An operating-system error code, kept exactly as the OS gave it.
///
/// On Windows this is the Win32 error (`GetLastError`, e.g. `ERROR_ACCESS_DENIED` = 5,
/// `ERROR_PIPE_BUSY` = 231); on Unix it is `errno`. Scenarios compare codes, so the code is
/// never folded into a string or mapped onto a coarser kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct OsCode(pub u32);

impl OsCode {
    /// `ERROR_FILE_NOT_FOUND` (2): no instance of the pipe name exists.
    pub const FILE_NOT_FOUND: OsCode = OsCode(2);
    /// `ERROR_ACCESS_DENIED` (5): a DACL refused, or a create collided with the first-instance
    /// flag or with the existing instances' settings (see `docs/windows-rules.md`, rule 2).
    pub const ACCESS_DENIED: OsCode = OsCode(5);
    /// `ERROR_BROKEN_PIPE` (109): the other end closed.
    pub const BROKEN_PIPE: OsCode = OsCode(109);
    /// `ERROR_SEM_TIMEOUT` (121): `WaitNamedPipe` timed out.
    pub const SEM_TIMEOUT: OsCode = OsCode(121);
    /// `ERROR_PIPE_BUSY` (231): every instance is busy, or `nMaxInstances` is reached.
    pub const PIPE_BUSY: OsCode = OsCode(231);
    /// `ERROR_NO_DATA` (232): the pipe is being closed.
    pub const NO_DATA: OsCode = OsCode(232);
    /// `ERROR_PIPE_NOT_CONNECTED` (233): no client is connected to this instance.
    pub const PIPE_NOT_CONNECTED: OsCode = OsCode(233);
    /// `ERROR_MORE_DATA` (234): a message-mode read returned part of a message.
    pub const MORE_DATA: OsCode = OsCode(234);
    /// `ERROR_PIPE_CONNECTED` (535): a client connected before `ConnectNamedPipe` was called.
    pub const PIPE_CONNECTED: OsCode = OsCode(535);
    /// `ERROR_LOGON_FAILURE` (1326): bad user name or password.
    pub const LOGON_FAILURE: OsCode = OsCode(1326);
    /// `ERROR_BAD_IMPERSONATION_LEVEL` (1346): the token's level does not allow the operation.
    pub const BAD_IMPERSONATION_LEVEL: OsCode = OsCode(1346);
    /// `ERROR_CANNOT_IMPERSONATE` (1368): the server tried to impersonate before reading.
    pub const CANNOT_IMPERSONATE: OsCode = OsCode(1368);
    /// `ERROR_NOT_ALL_ASSIGNED` (1300): a privilege the caller asked to enable is not held.
    pub const NOT_ALL_ASSIGNED: OsCode = OsCode(1300);

    /// The Win32 name of a code the harness knows (`ERROR_ACCESS_DENIED`), for reports and
    /// evidence about named pipes.
    pub fn win32_name(self) -> Option<&'static str> {
        Some(match self {
            OsCode(0) => "ERROR_SUCCESS",
            OsCode(1) => "ERROR_INVALID_FUNCTION",
            OsCode::FILE_NOT_FOUND => "ERROR_FILE_NOT_FOUND",
            OsCode(3) => "ERROR_PATH_NOT_FOUND",
            OsCode::ACCESS_DENIED => "ERROR_ACCESS_DENIED",
            OsCode(6) => "ERROR_INVALID_HANDLE",
            OsCode(50) => "ERROR_NOT_SUPPORTED",
            OsCode(53) => "ERROR_BAD_NETPATH",
            OsCode(66) => "ERROR_BAD_DEV_TYPE",
            OsCode(87) => "ERROR_INVALID_PARAMETER",
            OsCode::BROKEN_PIPE => "ERROR_BROKEN_PIPE",
            OsCode::SEM_TIMEOUT => "ERROR_SEM_TIMEOUT",
            OsCode(123) => "ERROR_INVALID_NAME",
            OsCode(161) => "ERROR_BAD_PATHNAME",
            OsCode(183) => "ERROR_ALREADY_EXISTS",
            OsCode::PIPE_BUSY => "ERROR_PIPE_BUSY",
            OsCode::NO_DATA => "ERROR_NO_DATA",
            OsCode::PIPE_NOT_CONNECTED => "ERROR_PIPE_NOT_CONNECTED",
            OsCode::MORE_DATA => "ERROR_MORE_DATA",
            OsCode::PIPE_CONNECTED => "ERROR_PIPE_CONNECTED",
            OsCode(995) => "ERROR_OPERATION_ABORTED",
            OsCode(997) => "ERROR_IO_PENDING",
            OsCode(1314) => "ERROR_PRIVILEGE_NOT_HELD",
            OsCode::NOT_ALL_ASSIGNED => "ERROR_NOT_ALL_ASSIGNED",
            OsCode::LOGON_FAILURE => "ERROR_LOGON_FAILURE",
            OsCode(1332) => "ERROR_NONE_MAPPED",
            OsCode(1336) => "ERROR_INVALID_ACL",
            OsCode(1338) => "ERROR_INVALID_SECURITY_DESCR",
            OsCode::BAD_IMPERSONATION_LEVEL => "ERROR_BAD_IMPERSONATION_LEVEL",
            OsCode::CANNOT_IMPERSONATE => "ERROR_CANNOT_IMPERSONATE",
            OsCode(1008) => "ERROR_NO_TOKEN",
            _ => return None,
        })
    }
}

impl fmt::Display for OsCode {
    /// Windows: the Win32 name and number (`ERROR_ACCESS_DENIED (5)`). Unix: the `errno`
    /// message and number (`No such file or directory (errno 2)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(windows) {
            match self.win32_name() {
                Some(name) => write!(f, "{name} ({})", self.0),
                None => write!(f, "error {}", self.0),
            }
        } else {
            let msg = std::io::Error::from_raw_os_error(self.0 as i32).to_string();
            let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
            write!(f, "{msg} (errno {})", self.0)
        }
    }
}

/// Everything that can go wrong inside the harness, as one `#[non_exhaustive]` enum.
///
/// The variants keep apart "the OS refused" ([`Error::Os`]), "the caller gave bad input"
/// ([`Error::InvalidInput`]), "a deadline passed" ([`Error::Timeout`]) and "the peer sent
/// something the harness cannot take" ([`Error::Peer`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An OS call failed. `call` names the API (`CreateNamedPipeW`, `connect(2)`, ...), `code`
    /// keeps the exact OS code, `context` says what the harness was doing.
    #[error("{call} failed with {code} while {context}")]
    Os {
        /// The OS function that failed.
        call: &'static str,
        /// The exact error code it reported.
        code: OsCode,
        /// What the harness was doing, e.g. `creating \\.\pipe\x`.
        context: String,
    },
    /// An argument was rejected before any OS call was made.
    #[error("invalid {what}: {why}")]
    InvalidInput {
        /// Which input (a pipe name, an SDDL string, a buffer size...).
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A wait reached its deadline; the operation was cancelled.
    #[error("timed out after {after:?} while {context}")]
    Timeout {
        /// What the harness was waiting for.
        context: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The other end did something the harness cannot accept (a message larger than allowed...).
    #[error("peer misbehaved: {0}")]
    Peer(String),
    /// The requested operation does not exist on this platform or build.
    #[error("unsupported here: {0}")]
    Unsupported(String),
}

impl Error {
    /// The OS code, when the error came from the OS.
    pub fn os_code(&self) -> Option<OsCode> {
        match self {
            Error::Os { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the OS said `ERROR_ACCESS_DENIED`.
    pub fn is_access_denied(&self) -> bool {
        self.os_code() == Some(OsCode::ACCESS_DENIED)
    }

    /// True when the OS refused for lack of rights: `ERROR_ACCESS_DENIED` on Windows, `EACCES`
    /// or `EPERM` on Unix (codes are per platform, so this asks the platform it runs on).
    pub fn is_permission_denied(&self) -> bool {
        #[cfg(windows)]
        let denied = [OsCode::ACCESS_DENIED];
        #[cfg(not(windows))]
        let denied = [OsCode(13), OsCode(1)];
        self.os_code().is_some_and(|c| denied.contains(&c))
    }

    /// True when the peer reset the connection (Unix `ECONNRESET`: it closed with data of
    /// ours unread, or its listening socket went away with our connection never accepted).
    /// Named pipes have no such code: always false there.
    pub fn is_connection_reset(&self) -> bool {
        cfg!(unix) && self.os_code() == Some(OsCode(104))
    }

    /// True when the OS said `ERROR_PIPE_BUSY`.
    pub fn is_pipe_busy(&self) -> bool {
        self.os_code() == Some(OsCode::PIPE_BUSY)
    }

    /// True for [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    pub(crate) fn invalid(what: &'static str, why: impl Into<String>) -> Self {
        Error::InvalidInput { what, why: why.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_and_pipe_busy_stay_distinct() {
        let denied = Error::Os { call: "CreateNamedPipeW", code: OsCode(5), context: "x".into() };
        let busy = Error::Os { call: "CreateNamedPipeW", code: OsCode(231), context: "x".into() };
        assert!(denied.is_access_denied() && !denied.is_pipe_busy());
        assert!(busy.is_pipe_busy() && !busy.is_access_denied());
        if cfg!(windows) {
            assert_eq!(denied.to_string(), "CreateNamedPipeW failed with ERROR_ACCESS_DENIED (5) while x");
            assert_eq!(OsCode(4242).to_string(), "error 4242");
        } else {
            assert_eq!(OsCode(2).to_string(), "No such file or directory (errno 2)");
        }
        assert_eq!(OsCode::PIPE_BUSY.win32_name(), Some("ERROR_PIPE_BUSY"));
    }

    #[test]
    fn permission_denied_is_read_in_the_platforms_codes() {
        let e = |code| Error::Os { call: "bind", code: OsCode(code), context: "x".into() };
        let (yes, no): (&[u32], &[u32]) = if cfg!(windows) { (&[5], &[13, 2, 231]) } else { (&[13, 1], &[5, 2, 98]) };
        assert!(yes.iter().all(|c| e(*c).is_permission_denied()));
        assert!(no.iter().all(|c| !e(*c).is_permission_denied()));
        assert!(!Error::Unsupported("x".into()).is_permission_denied());
    }
}
