//! Integration tests for pipe-harness (in `tests/`), and the helper programs they start.
//!
//! The `ph-test-child` binary is started by the tests as a server, client or supervisor
//! under chosen tokens; see `src/bin/ph-test-child.rs`.

#![forbid(unsafe_code)]
