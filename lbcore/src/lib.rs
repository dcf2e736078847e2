//! lbcore: a sans-IO Layer-4 load-balancer core (work in progress skeleton).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod conn;
pub mod forward;
#[cfg(feature = "alloc")]
pub mod render;
pub mod rng;
pub mod sched;
pub mod service;
pub mod stats;
pub mod time;
pub mod vrrp;
pub mod wire;
