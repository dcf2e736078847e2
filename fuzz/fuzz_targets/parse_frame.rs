//! Fuzz target `parse_frame`: arbitrary bytes into lbcore. The property lives in
//! `fuzz/harness.rs`, shared with the stable replay test `lbcore/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::parse_frame(data));
