//! Fuzz target `vrrp_sim`: see `fuzz/harness/vrrp_sim.rs` for the input layout and the properties checked;
//! the same code runs under stable `cargo test` in `lbcore/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../harness/input.rs"]
mod input;
#[path = "../harness/vrrp_sim.rs"]
mod vrrp_sim;

libfuzzer_sys::fuzz_target!(|data: &[u8]| vrrp_sim::vrrp_sim(data));
