//! # pipe-harness
//!
//! A security test harness and fuzzer for pipe servers: Windows named pipes, and Unix-domain
//! sockets for the same products on Linux and macOS. Scenarios start the server under test
//! under different identities and attack it the way real attackers do (instance squatting,
//! DACL drift across instance churn, impersonation-level abuse, cross-session exposure, hostile
//! frames), and every verdict is pass, fail with evidence, or unverifiable with the reason.
//!
//! This crate is the library: the platform layers, the platform [`probe`], the framing codecs,
//! the scenario engine and the live fuzzer, supervision of what the harness starts, and the
//! machine's endpoint inventory. `unsafe` code lives only in the platform modules (`windows`,
//! `unix`).

#![deny(unsafe_code)]

pub mod backend;
pub mod calls;
pub mod cmdline;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod inventory;
pub mod probe;
pub mod protection;
pub mod rules;
pub mod sd_layout;
pub mod sddl;
pub mod supervise;
pub mod target;
pub mod tree;
pub mod wrap;

#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows;

#[cfg(unix)]
#[allow(unsafe_code)]
pub mod unix;

pub use error::{Error, OsCode, Result};

/// The backend of the platform this was built for: named pipes on Windows, Unix-domain sockets
/// elsewhere.
#[cfg(windows)]
pub type NativeBackend = windows::WindowsBackend;
/// The backend of the platform this was built for: named pipes on Windows, Unix-domain sockets
/// elsewhere.
#[cfg(unix)]
pub type NativeBackend = unix::UnixBackend;

/// This platform's backend, with the platform probed (Unix: and the run's folder made).
pub fn native_backend() -> Result<NativeBackend> {
    #[cfg(windows)]
    return Ok(windows::WindowsBackend::new());
    #[cfg(unix)]
    return unix::UnixBackend::new();
}
