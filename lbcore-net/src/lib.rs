//! lbcore-net: the std side of lbcore. The Linux I/O that runs the sans-IO core on real
//! interfaces (VRRP over raw sockets, VIPs through rtnetlink), loading configuration files
//! from disk into an [`lbcore::config::Plan`], and the `lbd` daemon.
//!
//! Unsafe code lives only in the `sys` module (system calls the safe crates do not cover), each
//! block with a `// SAFETY:` comment; everything else is `#![deny(unsafe_code)]`.
#![deny(unsafe_code)]

pub use lbcore;

pub mod config;
pub mod netlink;
#[allow(unsafe_code)]
mod sys;
pub mod vrrp;
