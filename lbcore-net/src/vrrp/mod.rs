//! The Linux VRRP runner: [`lbcore::vrrp`] routers driven on real interfaces, like
//! `keepalived -P` (VRRP only).
//!
//! # What runs
//! [`Runner::new`] takes a [`lbcore::config::Plan`], looks up each instance's interface over
//! rtnetlink (index, MAC, the primary IPv4 address or the IPv6 link-local address; an
//! instance's `unicast_src_ip` overrides it), maps every `vrrp_instance` to the core's
//! [`Config`](lbcore::vrrp::Config) ([`map`]) and opens the sockets ([`io`]). [`Runner::run`]
//! then turns a single-threaded `poll(2)` loop until SIGTERM / SIGINT:
//! - inputs: VRRP packets from the raw sockets, router timers (`poll_timeout`), link changes
//!   (rtnetlink `RTMGRP_LINK`), `vrrp_script` results, signals (a signal-hook self-pipe);
//! - actions: `AddVip` / `RemoveVip` over rtnetlink (IPv6 with `IFA_F_NODAD`),
//!   `SendAdvert` / `SendGratuitous` as the exact Ethernet frames the core built, through an
//!   `AF_PACKET` socket (adverts to a unicast peer whose MAC is unknown go through the raw IP
//!   socket and the kernel's routing instead), `StateChanged` as keepalived's log line
//!   (`(VI_1) Entering MASTER STATE`) and notify scripts (`notify_master` / `_backup` /
//!   `_fault`, and `notify` with `INSTANCE NAME STATE PRIORITY`);
//! - sync groups through [`lbcore::vrrp::SyncGroup`] (group notify scripts get
//!   `GROUP NAME STATE`);
//! - `vrrp_script`: run every `interval` through `/bin/sh -c`, killed (with its process
//!   group) at `timeout`, `rise` / `fall` counted as keepalived does; a changed verdict goes to
//!   `set_track` of every instance tracking it (weight 0: fault; `reverse` flips the weight's
//!   sign, or with weight 0 the verdict);
//! - the instance's interface going down puts it in Fault (`interface_down`), as do
//!   `track_interface` entries with weight 0; a nonzero weight moves the priority.
//!
//! Child processes (notify scripts, vrrp_scripts) never block the loop: they are spawned,
//! and reaped when SIGCHLD wakes the loop.
//!
//! On SIGTERM / SIGINT every router shuts down (a master sends its priority-0 advert and
//! removes its VIPs), `notify_stop` scripts and `notify ... STOP` run (waited for up to 5 s),
//! and `run` returns. SIGHUP is logged: reload is not supported yet.
//!
//! # Not yet
//! - `use_vmac` / `use_ipvlan` (adverts always use the interface MAC, with a warning);
//! - `no_accept` enforcement (keepalived's nftables rules), strict-mode checks;
//! - `script_user`, `user` of scripts (scripts run as the daemon's user);
//! - `virtual_routes`, `virtual_rules`, `track_file`, `track_process`, `track_bfd`;
//! - VIPs on another interface are installed there, but adverts only go out of the
//!   instance's interface;
//! - reload on SIGHUP.

pub mod io;
pub mod map;
pub mod proc;
mod runner;
pub mod rx;

pub use map::{IfaceInfo, MapError, Mapped, TrackSource, instance_config};
#[cfg(feature = "afpacket")]
pub(crate) use runner::state_name;
pub use runner::{RunError, Runner, StateSink, check_plan};
