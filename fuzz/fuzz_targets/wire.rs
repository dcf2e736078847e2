//! Fuzz target `wire`: see `fuzz/harness/wire.rs` for the input layout and the properties checked;
//! the same code runs under stable `cargo test` in `lbcore/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../harness/wire.rs"]
mod wire;

libfuzzer_sys::fuzz_target!(|data: &[u8]| wire::wire(data));
