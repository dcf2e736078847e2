//! VRRP v2/v3 (RFC 3768, RFC 5798) as keepalived 2.2.7 speaks it, sans-IO: no I/O, no clock,
//! no allocator. The driver (`lbcore-net`) owns the sockets and the clock.
//!
//! # Layers
//! - [`wire`]: parse and emit adverts, byte for byte as keepalived (IPv4 ID 1, 2, 3, ...; TOS
//!   0xc0; TTL 255; no DF; VRRPv2 checksum over the message, VRRPv3 with the pseudo-header).
//! - [`garp`]: gratuitous ARP and unsolicited neighbour advertisement frames.
//! - [`Router`]: one `vrrp_instance`: states Initialize / Backup / Master / Fault, timers,
//!   preemption, tracking, validation with a counter per refusal reason ([`Reject`]).
//! - [`SyncGroup`]: a `vrrp_sync_group`, routers that change state together.
//!
//! # Call protocol (quinn-proto style)
//! Four kinds of methods, used in this order:
//! 1. getters (`state`, `priority`, `counters`, ...), at any time;
//! 2. inputs: `handle_packet(now, bytes, rx)` for every packet, `handle_timeout(now)` when
//!    `poll_timeout()` is reached (calling it early or twice is harmless);
//! 3. commands: `start`, `shutdown`, `set_priority_delta`, `set_track`, `interface_up/down`;
//! 4. outputs: after every input or command, `poll_action()` until `None`, carrying out each
//!    [`Action`] in order (state change notifications, VIPs to add or remove, adverts and
//!    gratuitous frames to send); then wait until `poll_timeout()`.
//!
//! ```
//! use core::net::IpAddr;
//! use lbcore::time::Instant;
//! use lbcore::vrrp::{Action, Config, Router, Rx, State, Version};
//!
//! let me: IpAddr = "10.201.0.11".parse().unwrap();
//! let cfg = Config::new(Version::V3, 51, me).priority(150).vip("10.201.0.100".parse().unwrap(), 24);
//! let mut router = Router::new(cfg).unwrap();
//! router.start(Instant::ZERO);
//! // Nobody else speaks: after 3 × 1 s + (256 - 150) / 256 s the router takes over.
//! let t = router.poll_timeout().unwrap();
//! router.handle_timeout(t);
//! assert_eq!(router.state(), State::Master);
//! while let Some(action) = router.poll_action() {
//!     match action {
//!         Action::SendAdvert(p) => { let _frame = p.frame(); /* send it */ }
//!         Action::AddVip(_) | Action::RemoveVip(_) => { /* netlink */ }
//!         Action::SendGratuitous(f) => { let _ = f.frame(); }
//!         Action::StateChanged { .. } => { /* notify scripts */ }
//!     }
//! }
//! # let _ = Rx::Ethernet;
//! ```
//!
//! # keepalived defaults used (keepalived 2.2.7 sources)
//! - priority 100, advert_int 1 s, 3 adverts before master down (`vrrp.h`: `VRRP_PRIO_DFL`,
//!   `VRRP_ADVER_DFL`, `VRRP_DOWN_TIMER_ADVERTS`); skew and master-down computed to the
//!   microsecond as `VRRP_TIMER_SKEW` / `VRRP_MS_DOWN_TIMER` do;
//! - preempt on, no preempt delay, accept mode on outside strict mode (`vrrp.c`
//!   `vrrp_complete_instance`);
//! - gratuitous ARP: 5 per VIP on becoming master and 5 more after 5 s
//!   (`VRRP_GARP_REP`, `VRRP_GARP_DELAY`), refresh off (`VRRP_GARP_REFRESH` 0, repeat 1),
//!   no gap between frames (`vrrp_garp_interval` 0), and on hearing a lower priority as master
//!   the same 5 + 5 after 5 s (`vrrp_garp_lower_prio_*` default to the master values in
//!   `vrrp_complete_init`); `lower_prio_no_advert` and `higher_prio_send_advert` off
//!   (`global_data.c` `set_vrrp_defaults`).
//!
//! # Departures and limits
//! - Advert source MAC: RFC 5798 §7.3 wants the virtual MAC; keepalived without `use_vmac`
//!   uses the interface's. Both are offered ([`SourceMac`]); the default is the RFC's.
//! - A VRRPv3 backup that steps down from Master keeps the interval it learned from the new
//!   master (RFC 5798 §6.4.3); keepalived 2.2.7 resets it to its own until the next advert.
//! - A master restarts its advert timer only when it sends an advert early (answering a
//!   priority-0 or lower-priority advert); keepalived 2.2.7 also restarts it on any packet it
//!   receives, which delays adverts under a flood of bad packets.
//! - Checks run in RFC 5798 §7.1 order, each with its own counter; keepalived checks the
//!   length first and files a wrong address count under its length error.
//! - A VRRPv2 interval other than ours is refused ([`Reject::IntervalMismatch`]), as RFC 3768
//!   and keepalived do; VRRPv3 learns the master's interval in Backup.
//! - Not supported: IPsec AH authentication, keepalived's strict mode checks, VMAC interface
//!   management (the driver's business), more than [`MAX_VIPS`] VIPs.

mod action;
mod config;
mod counters;
pub mod garp;
mod router;
mod sync;
pub mod wire;

pub use action::{ADVERT_CAPACITY, Action, AdvertPacket, GratuitousFrame, State};
pub use config::{
    Config, ConfigError, GarpConfig, MAX_PEERS, MAX_TRACKS, MAX_VIPS, Peer, SourceMac, StartState, TrackId,
    Vip,
};
pub use counters::{Counters, Reject};
pub use router::{QUEUE_CAPACITY, Router};
pub use sync::{MAX_GROUP, SyncGroup};
pub use wire::{Auth, Rx, Version};
