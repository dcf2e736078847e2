//! Fuzz target `config`: see `fuzz/harness/config.rs` for the input layout and the properties checked;
//! the same code runs under stable `cargo test` in `lbcore/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../harness/config.rs"]
mod config;

libfuzzer_sys::fuzz_target!(|data: &[u8]| config::config(data));
