//! cargo-fuzz target `eap_packet`: see `harness::eap_packet` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::eap_packet(data));
