//! cargo-fuzz target `mab_allow_list`: see `harness::mab_allow_list` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::mab_allow_list(data));
