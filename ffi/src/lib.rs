//! C ABI for lbcore, following rustls-ffi's conventions. The handle-based API (balancer
//! `_new`/`_free`, process, stats) is built in its own increment; today the library exports
//! only its version so that the build, link and header machinery is in place.

/// The library version as a NUL-terminated string, e.g. `"0.1.0"`.
#[unsafe(no_mangle)]
pub extern "C" fn lbcore_version() -> *const core::ffi::c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}
