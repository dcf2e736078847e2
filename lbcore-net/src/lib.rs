//! lbcore-net: std drivers around the sans-IO core. Drivers (TUN/TAP, AF_PACKET, netlink IPVS
//! offload, VRRP I/O) and the `lbd` daemon land here in later increments; today the crate only
//! re-exports the core so that dependants can already name it.
#![forbid(unsafe_code)]

pub use lbcore;
