//! The attack scenarios of pipe-harness, one module per attack, written against the backend
//! trait of the `pipe-harness` library so they run unchanged on Windows named pipes and on
//! Unix-domain sockets.
//!
//! The scenarios land with the scenario engine; this crate holds them so that each attack stays
//! a small module a reader can review on its own.

#![forbid(unsafe_code)]
