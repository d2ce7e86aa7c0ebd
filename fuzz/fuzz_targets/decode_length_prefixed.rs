#![no_main]
// Logic and properties: pipe_harness_core::fuzzing::decode_length_prefixed (unit tested and replayed by cargo test).
libfuzzer_sys::fuzz_target!(|data: &[u8]| pipe_harness_core::fuzzing::decode_length_prefixed(data));
