//! The Windows platform layer: named pipes, security descriptors, tokens, impersonation,
//! processes in job objects, and the platform probe.
//!
//! Every raw Win32 call lives here (and only here), each `unsafe` block with a `// SAFETY:` line.
//! Handles are owned by [`std::os::windows::io::OwnedHandle`] or by a drop type of this module;
//! none leaks, on error paths included. Every wait takes a deadline: pipe handles are always
//! opened for overlapped I/O, and an operation that misses its deadline is cancelled
//! (`CancelIoEx`) and waited out before the call returns [`crate::Error::Timeout`].
//!
//! Every function maps a Win32 failure to [`crate::Error::Os`] with the exact code, so
//! `ERROR_ACCESS_DENIED` and `ERROR_PIPE_BUSY` stay apart.

pub mod backend;
pub mod flush;
pub mod helper;
pub mod mapping;
pub mod pipe;
pub mod probe;
pub mod process;
pub mod query;
pub mod scm;
pub mod security;
mod sys;
pub mod token;
pub mod trace;

pub use backend::WindowsBackend;
pub use pipe::PipeInfo;
pub use pipe::{
    ClientOptions, PipeAccess, PipeClient, PipeName, PipeServer, PipeType, ReadMode, ReadOutcome, SecuritySpec,
    ServerOptions, Sqos,
};
pub use process::{Child, ProcessSpec};
pub use security::SecurityDescriptor;
pub use token::{ImpersonationLevel, IntegrityLevel, Token, TokenInfo, TokenKind};
