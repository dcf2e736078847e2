//! Python bindings for lbcore (module `lbcore._native`, built by maturin). The binding is thin:
//! conversion only, no protocol logic. The balancer API is exposed in its own increment.
#![forbid(unsafe_code)]

use pyo3::prelude::*;

/// The version of the lbcore core this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The native module, `lbcore._native`; the `lbcore` Python package re-exports it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    Ok(())
}
