//! The Unix-domain-socket platform layer: sockets on paths and (Linux) abstract names,
//! identities as uids/gids, sessions as namespaces, and the platform probe.
//!
//! The harness runs as root here and acts as other identities per thread: a thread that drops
//! to uid X with the kernel's per-thread `setresuid` (not libc's, which changes every thread)
//! connects as X, and a server's `SO_PEERCRED` sees X. The same way, a thread that unshares
//! its network namespace is a client from another "session" for abstract names. Every raw call
//! goes through `rustix`; the few `unsafe` blocks are here, each with a `// SAFETY:` line.

pub mod backend;
pub mod cgroup;
pub mod creds;
pub mod probe;
pub mod procfs;
pub mod sock_diag;

pub use backend::{RuntimeDirectory, UnixBackend};
