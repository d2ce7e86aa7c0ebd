//! The one error type of the `pipe_harness_core` crate boundary.
//!
//! `Err` means the harness could not do what it was asked (the OS refused, the input was bad,
//! a deadline passed). It never carries a security finding: findings are ordinary values.

use std::fmt;
use std::time::Duration;

/// An operating-system error code, kept exactly as the OS gave it, and which kind it is.
///
/// A Win32 error (`GetLastError`, e.g. `ERROR_ACCESS_DENIED` = 5, `ERROR_PIPE_BUSY` = 231) and
/// an `errno` (`EACCES` = 13) share numbers but not meanings (5 is `EIO` on Linux), so the kind
/// is part of the value: a Win32 constant never matches an errno. Scenarios compare codes, so
/// the code is never folded into a string or mapped onto a coarser kind.
///
/// ```
/// use pipe_harness_core::OsCode;
///
/// assert_eq!(OsCode::ACCESS_DENIED, OsCode::Win32(5));
/// assert_ne!(OsCode::Errno(5), OsCode::ACCESS_DENIED); // EIO is not ERROR_ACCESS_DENIED
/// assert_eq!(OsCode::ACCESS_DENIED.to_string(), "ERROR_ACCESS_DENIED (5)");
/// assert!(OsCode::EACCES.to_string().contains("errno 13"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OsCode {
    /// A Win32 error code (`GetLastError`, or the low word of an `HRESULT` of facility Win32).
    Win32(u32),
    /// A Unix `errno`.
    Errno(i32),
}

impl OsCode {
    /// `ERROR_FILE_NOT_FOUND` (2): no instance of the pipe name exists.
    pub const FILE_NOT_FOUND: OsCode = OsCode::Win32(2);
    /// `ERROR_ACCESS_DENIED` (5): a DACL refused, or a create collided with the first-instance
    /// flag or with the existing instances' settings (see `docs/windows-rules.md`, rule 2).
    pub const ACCESS_DENIED: OsCode = OsCode::Win32(5);
    /// `ERROR_NO_MORE_FILES` (18): an enumeration is done.
    pub const NO_MORE_FILES: OsCode = OsCode::Win32(18);
    /// `ERROR_BROKEN_PIPE` (109): the other end closed.
    pub const BROKEN_PIPE: OsCode = OsCode::Win32(109);
    /// `ERROR_SEM_TIMEOUT` (121): `WaitNamedPipe` timed out.
    pub const SEM_TIMEOUT: OsCode = OsCode::Win32(121);
    /// `ERROR_PIPE_BUSY` (231): every instance is busy, or `nMaxInstances` is reached.
    pub const PIPE_BUSY: OsCode = OsCode::Win32(231);
    /// `ERROR_NO_DATA` (232): the pipe is being closed.
    pub const NO_DATA: OsCode = OsCode::Win32(232);
    /// `ERROR_PIPE_NOT_CONNECTED` (233): no client is connected to this instance.
    pub const PIPE_NOT_CONNECTED: OsCode = OsCode::Win32(233);
    /// `ERROR_MORE_DATA` (234): a message-mode read returned part of a message.
    pub const MORE_DATA: OsCode = OsCode::Win32(234);
    /// `ERROR_IO_PENDING` (997): an overlapped operation is under way.
    pub const IO_PENDING: OsCode = OsCode::Win32(997);
    /// `ERROR_PIPE_CONNECTED` (535): a client connected before `ConnectNamedPipe` was called.
    pub const PIPE_CONNECTED: OsCode = OsCode::Win32(535);
    /// `ERROR_NO_TOKEN` (1008): the thread is not impersonating.
    pub const NO_TOKEN: OsCode = OsCode::Win32(1008);
    /// `ERROR_LOGON_FAILURE` (1326): bad user name or password.
    pub const LOGON_FAILURE: OsCode = OsCode::Win32(1326);
    /// `ERROR_BAD_IMPERSONATION_LEVEL` (1346): the token's level does not allow the operation.
    pub const BAD_IMPERSONATION_LEVEL: OsCode = OsCode::Win32(1346);
    /// `ERROR_CANNOT_IMPERSONATE` (1368): the server tried to impersonate before reading.
    pub const CANNOT_IMPERSONATE: OsCode = OsCode::Win32(1368);
    /// `ERROR_NOT_ALL_ASSIGNED` (1300): a privilege the caller asked to enable is not held.
    pub const NOT_ALL_ASSIGNED: OsCode = OsCode::Win32(1300);

    /// `EPERM` (1): the operation needs a privilege the caller lacks.
    pub const EPERM: OsCode = OsCode::Errno(1);
    /// `ENOENT` (2): no such file (a socket path that does not exist yet).
    pub const ENOENT: OsCode = OsCode::Errno(2);
    /// `EACCES` (13): permission denied (a socket's mode, or its directory's).
    pub const EACCES: OsCode = OsCode::Errno(13);
    /// `ECONNRESET` (104, Linux): the peer reset the connection.
    pub const ECONNRESET: OsCode = OsCode::Errno(104);

    /// The code of an [`std::io::Error`] from the OS: an errno on Unix, a Win32 code on
    /// Windows; `None` for an error that did not come from the OS.
    pub fn of_io(e: &std::io::Error) -> Option<OsCode> {
        let raw = e.raw_os_error()?;
        Some(if cfg!(windows) { OsCode::Win32(raw as u32) } else { OsCode::Errno(raw) })
    }

    /// The Win32 name of a code the harness knows (`ERROR_ACCESS_DENIED`), for reports and
    /// evidence about named pipes; `None` for an errno or an unknown code.
    pub fn win32_name(self) -> Option<&'static str> {
        let OsCode::Win32(code) = self else { return None };
        Some(match code {
            0 => "ERROR_SUCCESS",
            1 => "ERROR_INVALID_FUNCTION",
            2 => "ERROR_FILE_NOT_FOUND",
            3 => "ERROR_PATH_NOT_FOUND",
            5 => "ERROR_ACCESS_DENIED",
            6 => "ERROR_INVALID_HANDLE",
            18 => "ERROR_NO_MORE_FILES",
            50 => "ERROR_NOT_SUPPORTED",
            53 => "ERROR_BAD_NETPATH",
            66 => "ERROR_BAD_DEV_TYPE",
            87 => "ERROR_INVALID_PARAMETER",
            109 => "ERROR_BROKEN_PIPE",
            121 => "ERROR_SEM_TIMEOUT",
            123 => "ERROR_INVALID_NAME",
            161 => "ERROR_BAD_PATHNAME",
            183 => "ERROR_ALREADY_EXISTS",
            231 => "ERROR_PIPE_BUSY",
            232 => "ERROR_NO_DATA",
            233 => "ERROR_PIPE_NOT_CONNECTED",
            234 => "ERROR_MORE_DATA",
            535 => "ERROR_PIPE_CONNECTED",
            995 => "ERROR_OPERATION_ABORTED",
            997 => "ERROR_IO_PENDING",
            1008 => "ERROR_NO_TOKEN",
            1300 => "ERROR_NOT_ALL_ASSIGNED",
            1314 => "ERROR_PRIVILEGE_NOT_HELD",
            1326 => "ERROR_LOGON_FAILURE",
            1332 => "ERROR_NONE_MAPPED",
            1336 => "ERROR_INVALID_ACL",
            1338 => "ERROR_INVALID_SECURITY_DESCR",
            1346 => "ERROR_BAD_IMPERSONATION_LEVEL",
            1368 => "ERROR_CANNOT_IMPERSONATE",
            _ => return None,
        })
    }
}

impl fmt::Display for OsCode {
    /// A Win32 code: its name and number (`ERROR_ACCESS_DENIED (5)`). An errno: the C
    /// library's message and number (`No such file or directory (errno 2)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OsCode::Win32(code) => match self.win32_name() {
                Some(name) => write!(f, "{name} ({code})"),
                None => write!(f, "Win32 error {code}"),
            },
            OsCode::Errno(errno) if cfg!(unix) => {
                let msg = std::io::Error::from_raw_os_error(errno).to_string();
                let msg = msg.split(" (os error").next().unwrap_or(&msg).to_string();
                write!(f, "{msg} (errno {errno})")
            }
            OsCode::Errno(errno) => write!(f, "errno {errno}"),
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
    /// The plan does not describe a server the harness can talk to: a fresh server's endpoint
    /// was never reached, or its ping never succeeded. Nothing about the server is judged.
    #[error("the plan does not reach its server: {0}")]
    Plan(String),
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

    /// True when the OS refused for lack of rights: `ERROR_ACCESS_DENIED` (Windows), `EACCES`
    /// or `EPERM` (Unix).
    pub fn is_permission_denied(&self) -> bool {
        self.os_code().is_some_and(|c| [OsCode::ACCESS_DENIED, OsCode::EACCES, OsCode::EPERM].contains(&c))
    }

    /// True when the peer reset the connection (Unix `ECONNRESET`: it closed with data of
    /// ours unread, or its listening socket went away with our connection never accepted).
    /// Named pipes have no such code.
    pub fn is_connection_reset(&self) -> bool {
        self.os_code() == Some(OsCode::ECONNRESET)
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
        let denied = Error::Os { call: "CreateNamedPipeW", code: OsCode::Win32(5), context: "x".into() };
        let busy = Error::Os { call: "CreateNamedPipeW", code: OsCode::Win32(231), context: "x".into() };
        assert!(denied.is_access_denied() && !denied.is_pipe_busy());
        assert!(busy.is_pipe_busy() && !busy.is_access_denied());
        assert_eq!(denied.to_string(), "CreateNamedPipeW failed with ERROR_ACCESS_DENIED (5) while x");
        assert_eq!(OsCode::Win32(4242).to_string(), "Win32 error 4242");
        if cfg!(unix) {
            assert_eq!(OsCode::ENOENT.to_string(), "No such file or directory (errno 2)");
        }
        assert_eq!(OsCode::PIPE_BUSY.win32_name(), Some("ERROR_PIPE_BUSY"));
        assert_eq!(OsCode::Errno(231).win32_name(), None);
    }

    #[test]
    fn a_win32_code_never_matches_an_errno_of_the_same_number() {
        let eio = Error::Os { call: "read", code: OsCode::Errno(5), context: "x".into() };
        assert!(!eio.is_access_denied() && !eio.is_permission_denied(), "EIO is not ERROR_ACCESS_DENIED");
        let e = |code| Error::Os { call: "bind", code, context: "x".into() };
        for yes in [OsCode::ACCESS_DENIED, OsCode::EACCES, OsCode::EPERM] {
            assert!(e(yes).is_permission_denied(), "{yes}");
        }
        for no in [OsCode::Win32(13), OsCode::Win32(1), OsCode::ENOENT, OsCode::Errno(98), OsCode::PIPE_BUSY] {
            assert!(!e(no).is_permission_denied(), "{no}");
        }
        assert!(e(OsCode::ECONNRESET).is_connection_reset() && !e(OsCode::Win32(104)).is_connection_reset());
        assert!(!Error::Unsupported("x".into()).is_permission_denied());
    }

    #[test]
    fn an_io_error_takes_the_kind_of_the_platform_it_came_from() {
        let io = std::io::Error::from_raw_os_error(2);
        let want = if cfg!(windows) { OsCode::Win32(2) } else { OsCode::Errno(2) };
        assert_eq!(OsCode::of_io(&io), Some(want));
        assert_eq!(OsCode::of_io(&std::io::Error::other("x")), None);
    }
}
