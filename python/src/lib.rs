//! Python bindings for lbcore (module `lbcore._native`, built by maturin; the `lbcore` Python
//! package re-exports it).
//!
//! The binding is thin: it converts Python values to core values and back, and owns nothing but
//! buffers. Every decision (scheduling, rewriting, VRRP) is the core's.
//!
//! - `types`: the configuration values (`Service`, `Dest`) and the enums.
//! - `balancer`: `Balancer` and `Verdict`; the batch call releases the GIL.
//! - `vrrp`: `Vrrp`, one VRRP instance, and its actions.
//! - `pcap`: reading and writing pcap files, and replaying one through a balancer.
//! - `errors`: the exception hierarchy under `LbError`, mapped from every core error.
//! - `config`: `from_keepalived_conf` / `from_ipvsadm_rules`.
#![forbid(unsafe_code)]

use pyo3::prelude::*;

mod balancer;
mod config;
mod convert;
mod errors;
mod pcap;
mod types;
mod vrrp;

/// The version of the lbcore core this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The native module, `lbcore._native`; the `lbcore` Python package re-exports it.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add("HEADROOM", lbcore::wire::HEADROOM)?;
    errors::register(m)?;
    types::register(m)?;
    balancer::register(m)?;
    vrrp::register(m)?;
    pcap::register(m)?;
    config::register(m)?;
    Ok(())
}
