//! lbcore-net: the std side of lbcore. Parsers for the configuration files operators already
//! have (keepalived.conf, ipvsadm-save rules) into a [`plan::Plan`], the Linux I/O that runs the
//! sans-IO core on real interfaces (VRRP over raw sockets, VIPs through rtnetlink), and the
//! `lbd` daemon.
//!
//! Unsafe code lives only in the `sys` module (system calls the safe crates do not cover), each
//! block with a `// SAFETY:` comment; everything else is `#![deny(unsafe_code)]`.
#![deny(unsafe_code)]

pub use lbcore;

pub mod plan;
