//! Integration tests for pipe-harness (in `tests/`), and the helper programs they start.
//!
//! The `ph-test-child` binary is started by the tests as a server, client or supervisor
//! under chosen tokens; see `src/bin/ph-test-child.rs`.

#![forbid(unsafe_code)]

/// A workspace binary built beside the test executable (`cargo test --workspace` builds them
/// all): `target/<profile>/NAME` (with `.exe` on Windows); a missing one fails the test, saying so.
pub fn bundled(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is not built: run cargo test --workspace", bin.display());
    bin
}
