//! Fuzz target `pipeline`: see `fuzz/harness/pipeline.rs` for the input layout and the properties checked;
//! the same code runs under stable `cargo test` in `lbcore/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../harness/input.rs"]
mod input;
#[path = "../harness/pipeline.rs"]
mod pipeline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipeline::pipeline(data));
