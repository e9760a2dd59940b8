//! The fuzz harness shared by the targets in `fuzz_targets/`. The main crate's
//! `tests/corpus_replay.rs` compiles the same `harness.rs` (via `#[path]`) to replay the committed
//! corpus and regressions under plain `cargo test`.

pub use certradius_testkit::fuzz as harness;
