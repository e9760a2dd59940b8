//! cargo-fuzz target `radius_packet`: see `harness::radius_packet` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::radius_packet(data));
