//! lbcore: a sans-IO Layer-4 load-balancer core — Linux IPVS plus keepalived's VRRP, as a
//! library.
//!
//! The core is a pure function of its inputs: packet bytes, the time the caller passes in,
//! configuration, and seeds. It never reads a clock, never touches the OS, never allocates on
//! the packet path, never panics on anything that came off the wire, and contains no `unsafe`.
//! Whatever it wants sent, it hands back to the caller. Drivers (TUN/TAP, AF_PACKET, the `lbd`
//! daemon) live in `lbcore-net`.
//!
//! # Layers
//! - [`wire`]: zero-copy parsing of Ethernet / IPv4 / IPv6 / TCP / UDP / ICMP, and checksums
//!   (full and RFC 1624 incremental).
//! - [`forward`]: in-place rewriting for DR, TUN (IPIP, IPv6-in-IPv6, GUE), NAT and FULLNAT,
//!   and ICMP-error translation.
//! - [`service`]: virtual services and destinations as configuration values.
//! - [`sched`]: every IPVS scheduler with the kernel's exact semantics.
//! - [`conn`]: the connection table, the IPVS TCP state machine and timeouts.
//! - [`balancer`]: the data plane tying them together, with persistence templates, counters
//!   and verdicts.
//! - [`health`] (feature `alloc`): keepalived's health-check state of a virtual server
//!   (retries, alpha, quorum and hysteresis, sorry server, inhibit), sans-IO.
//! - [`stats`]: counters and IPVS's 2-second EWMA rate estimator.
//! - [`render`] (feature `alloc`): exact `ipvsadm -Ln`, `--stats`, `--rate` and `-Lnc` text.
//! - [`vrrp`]: the VRRP v2/v3 router state machine (RFC 3768 / RFC 5798, keepalived-compatible),
//!   sans-IO, and sync groups.
//!
//! # Call protocol
//! ```
//! # #[cfg(feature = "alloc")] {
//! use core::net::IpAddr;
//! use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Verdict};
//! use lbcore::service::{DestConfig, ServiceConfig, Sched};
//! use lbcore::time::{Duration, Instant};
//!
//! let mut lb = Balancer::new(BalancerConfig::default()).unwrap();
//! let vip: IpAddr = "192.0.2.10".parse().unwrap();
//! let svc = lb.add_service(ServiceConfig::tcp(vip, 80).scheduler(Sched::Wlc)).unwrap();
//! lb.add_dest(svc, DestConfig::new("10.0.0.2".parse().unwrap(), 8080).weight(3)).unwrap();
//!
//! let now = Instant::from_secs(1);
//! # let syn: Vec<u8> = Vec::new();
//! if let Some(mut frame) = Frame::copy_from(&syn, RxMeta::IP) {
//!     match lb.process(now, &mut frame) {
//!         Verdict::Forward(to) => { /* send frame.data() towards to.next_hop */ }
//!         Verdict::Drop(_reason) => { /* counted inside */ }
//!         Verdict::Pass => { /* give it to the host stack */ }
//!         Verdict::Consumed => {}
//!     }
//! }
//! let _removed = lb.expire(now, 1024); // bounded timer work; call at least every poll_timeout()
//! # }
//! ```
//!
//! # Features
//! `default = ["std"]`, `std -> alloc`. Without `alloc` the core needs no allocator at all:
//! tables live in caller-provided slices ([`balancer::Balancer::with_storage`]). With `alloc`,
//! [`balancer::Balancer::new`] allocates each table once at construction, and a service that
//! selects lblc, lblcr or mh gets its scheduler's state (its cache or lookup table) on the
//! heap when it is added, instead of inline in every service slot.
//!
//! # Not supported (yet)
//! IP fragment reassembly (non-first fragments to a VIP are dropped and counted), SCTP/AH/ESP,
//! the FTP helper, IPVS connection sync, SYN proxy.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod balancer;
#[cfg(feature = "alloc")]
pub mod config;
pub mod conn;
pub mod forward;
#[cfg(feature = "alloc")]
pub mod health;
#[cfg(feature = "alloc")]
pub mod render;
pub mod rng;
pub mod sched;
pub mod service;
pub mod stats;
pub mod storage;
pub mod time;
pub mod vrrp;
pub mod wire;

pub use balancer::{Balancer, BalancerConfig, DropReason, Frame, RxMeta, Verdict};
pub use time::{Duration, Instant};
