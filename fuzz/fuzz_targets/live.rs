#![no_main]
// The stateful C fixture, live: build it first with
//   target/debug/pipe-harness cc -O1 -o target/stateful-bugs-c fixtures/c/stateful-bugs.c
// Logic: pipe_harness_core::engine::live::libfuzzer (unit tested by cargo test).
pipe_harness_core::live_fuzz_target!("../fixtures/plans/stateful-bugs-c.toml");
