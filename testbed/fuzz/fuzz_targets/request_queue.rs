//! cargo-fuzz target `request_queue`: see `harness::request_queue` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::request_queue(data));
