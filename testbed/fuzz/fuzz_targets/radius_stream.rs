//! cargo-fuzz target `radius_stream`: see `harness::radius_stream` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::radius_stream(data));
