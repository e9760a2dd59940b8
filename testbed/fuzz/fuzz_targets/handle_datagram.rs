//! cargo-fuzz target `handle_datagram`: see `harness::handle_datagram` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::handle_datagram(data));
