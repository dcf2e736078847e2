//! Generates the C header with cbindgen into `$OUT_DIR/lbcore.h` on every build, and into the
//! committed `include/lbcore.h` only when `LBCORE_WRITE_HEADER=1`. CI diffs the two (`.ci/test`,
//! job "ffi"), so a change to the C ABI without a regenerated header fails there.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    println!("cargo::rerun-if-changed=src");
    println!("cargo::rerun-if-changed=cbindgen.toml");
    println!("cargo::rerun-if-changed=Cargo.toml");
    println!("cargo::rerun-if-env-changed=LBCORE_WRITE_HEADER");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("ffi/cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate lbcore.h: {e}"));
    bindings.write_to_file(out_dir.join("lbcore.h"));
    if env::var_os("LBCORE_WRITE_HEADER").is_some_and(|v| v == "1") {
        bindings.write_to_file(crate_dir.join("include").join("lbcore.h"));
    }
}
