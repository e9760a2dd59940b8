//! cargo-fuzz target `client_hello`: see `harness::client_hello` for what it drives and which invariants it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| certradius_fuzz::harness::client_hello(data));
