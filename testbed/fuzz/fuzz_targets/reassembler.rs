//! cargo-fuzz target `reassembler`: see `harness::reassembler` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::reassembler(data));
