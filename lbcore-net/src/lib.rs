//! lbcore-net: the std side of lbcore. The Linux I/O that runs the sans-IO core on real
//! interfaces, configuration files from disk, and the `lbd` daemon.
//!
//! - [`config`]: keepalived.conf / `ipvsadm-save` files into an [`lbcore::config::Plan`].
//! - [`vrrp`]: the VRRP runner (raw sockets for protocol 112, VIPs through rtnetlink, GARP/NA,
//!   notify scripts, track_script).
//! - [`driver`]: packet drivers (AF_PACKET with a TPACKET_V3 ring, TUN, TAP) behind one
//!   [`driver::FrameIo`] interface.
//! - [`check`]: keepalived's health checkers (TCP_CHECK, HTTP_GET, MISC_CHECK) feeding
//!   [`lbcore::health`].
//! - `lb` (feature `afpacket`): the load-balancing half of `lbd` (data-plane thread, manager, host filter), and
//!   [`control`], its control socket (`lbd show`).
//! - [`ipvs`]: the kernel IPVS offload over generic netlink.
//! - [`netlink`]: the rtnetlink calls the runners need.
//!
//! Unsafe code lives only in the `sys` module (system calls the safe crates do not cover), each
//! block with a `// SAFETY:` comment; everything else is `#![deny(unsafe_code)]`.
#![deny(unsafe_code)]

pub use lbcore;

pub mod check;
pub mod config;
pub mod control;
pub mod driver;
pub mod ipvs;
#[cfg(feature = "afpacket")]
pub mod lb;
pub mod netlink;
#[allow(unsafe_code)]
mod sys;
pub mod vrrp;

pub use sys::{CpuPrefetch, HUGE_PAGE_BYTES, HugePageSlice};
