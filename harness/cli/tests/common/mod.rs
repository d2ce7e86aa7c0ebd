//! What the command's integration tests share.

use std::path::{Path, PathBuf};

/// A workspace binary built beside the command (`cargo test --workspace` builds them all).
pub fn beside_cli(name: &str) -> PathBuf {
    let cli = Path::new(env!("CARGO_BIN_EXE_pipe-harness"));
    let bin = cli.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "{} is not built: run cargo test --workspace", bin.display());
    bin
}

/// `beside_cli(name)`, absolute in the platform's own terms (under Wine, cargo's paths are Unix
/// paths, which Windows reads as relative to the current drive), for a plan's TOML literal.
pub fn program_for_plan(name: &str) -> String {
    let program = std::fs::canonicalize(beside_cli(name)).expect("canonical path").display().to_string();
    program.strip_prefix(r"\\?\").unwrap_or(&program).to_string()
}
