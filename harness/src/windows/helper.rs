//! The cross-session helper, inside the library: whatever executable links pipe-harness (a
//! product's test binary, the `pipe-harness` command) can be started again as the helper, so a
//! product's `cargo test` needs nothing beside its own test binary.
//!
//! [`WindowsBackend`](super::WindowsBackend) starts the running executable again with a token
//! moved to another session and [`PIPE_VAR`] (and [`PUBLISHED_VAR`]) set. An initializer in the
//! `.CRT$XCU` section, which the C runtime runs before `main` (and so before a test harness
//! parses its arguments), sees the variable, tries what a client in that session can do, and
//! exits with the answer ([`encode_reach`]); without the variable it returns and the program
//! runs as usual.

use super::mapping::mapping_exists;
use super::pipe::{ClientOptions, PipeName};
use crate::Result;
use std::time::Duration;

/// The pipe (short name or full path) the helper opens; set only in the helper's environment.
pub const PIPE_VAR: &str = "PIPE_HARNESS_REACH_PIPE";
/// The named object (`Local\NAME`) the helper looks up, if any.
pub const PUBLISHED_VAR: &str = "PIPE_HARNESS_REACH_PUBLISHED";
/// Arguments the helper is started with: should the initializer not be linked in, a test
/// harness given these lists no test and exits 0, which [`decode_reach`] refuses, instead of
/// running the whole suite again in the other session.
pub const FALLBACK_ARGS: [&str; 3] = ["--list", "--exact", "pipe-harness-reach-helper-was-not-linked"];

/// The exit code of the helper: 16, plus 1 when the published name was found, plus 2 when the
/// pipe was opened.
pub fn encode_reach(found_published: bool, connected: bool) -> u8 {
    16 + u8::from(found_published) + 2 * u8::from(connected)
}

/// Inverse of [`encode_reach`]; `None` for any other exit code (the helper failed).
pub fn decode_reach(code: u32) -> Option<(bool, bool)> {
    (16..20).contains(&code).then_some((code & 1 != 0, code & 2 != 0))
}

/// What a client here can do: find the published name (`false` when none is given), and open
/// the pipe within 5 s.
pub fn reach_here(pipe: &str, published: Option<&str>) -> Result<(bool, bool)> {
    let found = match published {
        Some(m) => mapping_exists(m)?,
        None => false,
    };
    let name = if pipe.starts_with(r"\\") { PipeName::from_path(pipe) } else { PipeName::new(pipe) }?;
    let connected = ClientOptions::new().open_wait(&name, Duration::from_secs(5)).is_ok();
    Ok((found, connected))
}

/// Runs before `main`: the helper when [`PIPE_VAR`] is set, else nothing.
extern "C" fn run_if_requested() {
    let Some(pipe) = std::env::var_os(PIPE_VAR) else { return };
    let published = std::env::var(PUBLISHED_VAR).ok();
    let code = match reach_here(&pipe.to_string_lossy(), published.as_deref()) {
        Ok((found, connected)) => encode_reach(found, connected),
        Err(e) => {
            eprintln!("pipe-harness reach helper: {e}");
            1
        }
    };
    std::process::exit(i32::from(code))
}

// Not `unsafe` code, but a link-time contract: the C runtime (mingw-w64's and MSVC's) calls
// every function pointer in `.CRT$XCU` before `main`, with no argument.
#[used]
#[link_section = ".CRT$XCU"]
static RUN_IF_REQUESTED: extern "C" fn() = run_if_requested;

/// Keeps the initializer in the link: called by the backend before it starts the helper, so
/// that any executable that can ask for the helper also contains it.
pub(crate) fn linked() {
    std::hint::black_box(&RUN_IF_REQUESTED);
}
