//! Configuration of one VRRP instance, mirroring keepalived's `vrrp_instance` keywords, with
//! keepalived 2.2.7's defaults.
//!
//! A [`Config`] is a plain value built with chained setters; [`super::Router::new`] validates
//! it (returning a [`ConfigError`]) and applies keepalived's own normalisations (listed on
//! [`Config`]). Capacities are fixed so that no allocator is needed: [`MAX_VIPS`],
//! [`MAX_PEERS`], [`MAX_TRACKS`].

use core::net::IpAddr;

use super::wire::{Auth, Version};
use crate::service::Family;
use crate::time::Duration;

/// Most VIPs one instance advertises. keepalived packs up to 255 (the count field is 8 bits)
/// as far as the MTU allows and moves the rest to unadvertised "excluded" VIPs; 20 keeps an
/// IPv6 advert at 382 bytes and the router free of an allocator.
pub const MAX_VIPS: usize = 20;
/// Most unicast peers of one instance.
pub const MAX_PEERS: usize = 8;
/// Most tracked objects (scripts, interfaces, files) of one instance.
pub const MAX_TRACKS: usize = 16;

/// A virtual IP address with the prefix length the driver installs it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vip {
    /// The address, advertised in every advert.
    pub addr: IpAddr,
    /// Prefix length for the interface address (`/24` in `10.201.0.100/24`).
    pub prefix_len: u8,
}

/// A unicast peer (`unicast_peer { ... }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The peer's address: adverts go there instead of to the multicast group.
    pub addr: IpAddr,
    /// The peer's MAC, if the driver knows it; without it only the IP packet of an advert to
    /// this peer is available (the driver routes it), not an Ethernet frame.
    pub mac: Option<[u8; 6]>,
}

/// `state MASTER` or `state BACKUP`: how the instance starts (keepalived's initial state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartState {
    /// Start as backup and wait a full master-down interval (the default).
    Backup,
    /// Start as backup but take over after one advert interval plus the minimum skew if no
    /// master is heard; an address owner (priority 255) becomes master at once.
    Master,
}

/// The Ethernet source address of adverts and gratuitous ARPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceMac {
    /// The virtual router MAC 00-00-5E-00-01-{VRID} (IPv6: 00-00-5E-00-02-{VRID}), as RFC 5798
    /// §7.3 requires and keepalived does with `use_vmac`.
    Virtual,
    /// The interface's own MAC: what keepalived does without `use_vmac` (the captures).
    Interface([u8; 6]),
}

/// Gratuitous ARP / unsolicited NA timing. Defaults are keepalived's (`global_data.c`
/// `set_vrrp_defaults`, `vrrp.h`): a burst of 5 per VIP on becoming master and a second
/// burst 5 s later, no periodic refresh, and (from `vrrp_complete_init`) the lower-priority
/// burst defaulting to the master values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GarpConfig {
    /// `garp_master_delay`: delay of the second burst after becoming master (0 = none).
    pub master_delay: Duration,
    /// `garp_master_repeat`: frames per VIP in each master burst.
    pub master_repeat: u16,
    /// `garp_master_refresh`: period of refresh bursts while master (0 = off).
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: frames per VIP in a refresh burst.
    pub master_refresh_repeat: u16,
    /// `garp_lower_prio_delay`: delay of the second burst after a master hears a
    /// lower-priority advert (0 = none).
    pub lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat`: frames per VIP sent when a master hears a lower-priority
    /// advert (0 = none).
    pub lower_prio_repeat: u16,
    /// `vrrp_garp_interval` / `vrrp_gna_interval`: gap between two frames (0 = back to back).
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            interval: Duration::ZERO,
        }
    }
}

/// The configuration of one VRRP instance. Build with [`Config::new`] and the setters.
///
/// keepalived's normalisations, applied by [`super::Router::new`] exactly as keepalived 2.2.7
/// does in `vrrp_complete_instance` (it logs and carries on):
/// - priority 255 with `nopreempt`: `nopreempt` is cleared;
/// - priority 255 without `nopreempt`: the instance acts as `state MASTER`;
/// - `state MASTER`: `nopreempt` and `preempt_delay` are cleared;
/// - `nopreempt` with `preempt_delay`: the delay is cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Protocol version (keepalived `vrrp_version`, default 2; IPv6 requires 3).
    pub version: Version,
    /// `virtual_router_id`, 1..=255.
    pub vrid: u8,
    /// `priority`, 1..=255 (255 = address owner). Default 100.
    pub priority: u8,
    /// `advert_int`. Default 1 s. v2: whole seconds 1..=255; v3: whole centiseconds up to
    /// 40.95 s.
    pub advert_interval: Duration,
    /// The router's primary address: the source of adverts (keepalived: the interface's first
    /// IPv4 address or IPv6 link-local, or `unicast_src_ip`), and the tie-breaker between
    /// equal priorities.
    pub src: IpAddr,
    /// `virtual_ipaddress`, all of the family of `src`.
    pub vips: heapless::Vec<Vip, MAX_VIPS>,
    /// `authentication { auth_type PASS; auth_pass ... }` (VRRPv2 only).
    pub auth: Auth,
    /// `state`.
    pub start_state: StartState,
    /// `nopreempt`: never take over from a lower-priority master.
    pub nopreempt: bool,
    /// `preempt_delay`: wait this long after start, or after first hearing a lower-priority
    /// master, before preempting it.
    pub preempt_delay: Duration,
    /// `accept` / `no_accept`: whether a non-owner master accepts traffic to the VIPs.
    /// keepalived defaults to accept outside strict mode.
    pub accept: bool,
    /// `unicast_peer`: send adverts to these instead of the multicast group.
    pub unicast_peers: heapless::Vec<Peer, MAX_PEERS>,
    /// `check_unicast_src`: refuse adverts from addresses that are not peers.
    pub check_unicast_src: bool,
    /// Weights of tracked objects, indexed by [`TrackId`] (see [`Config::track`]).
    pub track_weights: heapless::Vec<i16, MAX_TRACKS>,
    /// `v3_checksum_as_v2`: VRRPv3 over IPv4 without the pseudo-header in the checksum.
    pub v3_checksum_as_v2: bool,
    /// Gratuitous ARP / NA timing.
    pub garp: GarpConfig,
    /// `lower_prio_no_advert`: a master does not answer a lower-priority advert with one.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: a master sends one advert before yielding to a higher one.
    pub higher_prio_send_advert: bool,
    /// `down_timer_adverts`: adverts missed before the master is declared down, 1..=100
    /// (default 3, as the RFCs say).
    pub down_timer_adverts: u8,
    /// Ethernet source of adverts and gratuitous frames. Default [`SourceMac::Virtual`].
    pub source_mac: SourceMac,
    /// IPv6 flow label of adverts (the kernel picks it for keepalived). Default 0.
    pub flow_label: u32,
    /// Set the Router flag in unsolicited NAs (keepalived: when IPv6 forwarding is on).
    pub ipv6_router: bool,
    overflow: bool,
}

/// A tracked object of a router: the index of its weight in [`Config::track_weights`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub u8);

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfigError {
    /// VRID 0.
    VridZero,
    /// Priority 0 (reserved for a master stepping down).
    PriorityZero,
    /// The advert interval does not fit the version's field (see [`Config::advert_interval`]).
    BadInterval,
    /// IPv6 needs VRRPv3.
    Ipv6NeedsV3,
    /// Authentication exists only in VRRPv2.
    AuthNeedsV2,
    /// A VIP or peer is not of the family of `src`.
    FamilyMismatch,
    /// More VIPs, peers or tracks than the fixed capacities.
    TooMany,
    /// A track weight outside -254..=254.
    BadWeight,
    /// `down_timer_adverts` outside 1..=100.
    BadDownTimerAdverts,
}

impl Config {
    /// keepalived's defaults for an instance with this version, VRID and primary address.
    pub fn new(version: Version, vrid: u8, src: IpAddr) -> Config {
        Config {
            version,
            vrid,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            src,
            vips: heapless::Vec::new(),
            auth: Auth::None,
            start_state: StartState::Backup,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            accept: true,
            unicast_peers: heapless::Vec::new(),
            check_unicast_src: false,
            track_weights: heapless::Vec::new(),
            v3_checksum_as_v2: false,
            garp: GarpConfig::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            down_timer_adverts: 3,
            source_mac: SourceMac::Virtual,
            flow_label: 0,
            ipv6_router: false,
            overflow: false,
        }
    }

    /// Set `priority`.
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// Set `advert_int`.
    pub fn advert_interval(mut self, interval: Duration) -> Self {
        self.advert_interval = interval;
        self
    }

    /// Add a VIP (beyond [`MAX_VIPS`], `Router::new` fails with [`ConfigError::TooMany`]).
    pub fn vip(mut self, addr: IpAddr, prefix_len: u8) -> Self {
        self.overflow |= self.vips.push(Vip { addr, prefix_len }).is_err();
        self
    }

    /// `auth_type PASS` with `auth_pass` (first 8 bytes used).
    pub fn auth_pass(mut self, secret: &[u8]) -> Self {
        self.auth = Auth::pass(secret);
        self
    }

    /// Set `state`.
    pub fn start_state(mut self, state: StartState) -> Self {
        self.start_state = state;
        self
    }

    /// Set `nopreempt`.
    pub fn nopreempt(mut self) -> Self {
        self.nopreempt = true;
        self
    }

    /// Set `preempt_delay`.
    pub fn preempt_delay(mut self, delay: Duration) -> Self {
        self.preempt_delay = delay;
        self
    }

    /// Set `accept` (true) or `no_accept` (false).
    pub fn accept(mut self, accept: bool) -> Self {
        self.accept = accept;
        self
    }

    /// Add a `unicast_peer` (whose MAC is unknown).
    pub fn unicast_peer(self, addr: IpAddr) -> Self {
        self.unicast_peer_with_mac(addr, None)
    }

    /// Add a `unicast_peer`, with its MAC if known.
    pub fn unicast_peer_with_mac(mut self, addr: IpAddr, mac: Option<[u8; 6]>) -> Self {
        self.overflow |= self.unicast_peers.push(Peer { addr, mac }).is_err();
        self
    }

    /// Set `check_unicast_src`.
    pub fn check_unicast_src(mut self) -> Self {
        self.check_unicast_src = true;
        self
    }

    /// Add a tracked object with keepalived's weight semantics: a positive weight is added
    /// to the priority while the object is OK, a negative one is added while it fails, and
    /// weight 0 puts the instance in Fault while it fails. Tracks are numbered from 0 in the
    /// order they are added ([`TrackId`]) and start OK.
    pub fn track(mut self, weight: i16) -> Self {
        self.overflow |= self.track_weights.push(weight).is_err();
        self
    }

    /// Set `v3_checksum_as_v2`.
    pub fn v3_checksum_as_v2(mut self) -> Self {
        self.v3_checksum_as_v2 = true;
        self
    }

    /// Set the gratuitous ARP / NA timing.
    pub fn garp(mut self, garp: GarpConfig) -> Self {
        self.garp = garp;
        self
    }

    /// Set `lower_prio_no_advert`.
    pub fn lower_prio_no_advert(mut self) -> Self {
        self.lower_prio_no_advert = true;
        self
    }

    /// Set `higher_prio_send_advert`.
    pub fn higher_prio_send_advert(mut self) -> Self {
        self.higher_prio_send_advert = true;
        self
    }

    /// Set `down_timer_adverts`.
    pub fn down_timer_adverts(mut self, adverts: u8) -> Self {
        self.down_timer_adverts = adverts;
        self
    }

    /// Set the Ethernet source address.
    pub fn source_mac(mut self, mac: SourceMac) -> Self {
        self.source_mac = mac;
        self
    }

    /// Set the IPv6 flow label of adverts.
    pub fn flow_label(mut self, label: u32) -> Self {
        self.flow_label = label & 0x000f_ffff;
        self
    }

    /// Set the Router flag of unsolicited NAs.
    pub fn ipv6_router(mut self, router: bool) -> Self {
        self.ipv6_router = router;
        self
    }

    /// The address family of the instance.
    pub fn family(&self) -> Family {
        Family::of(&self.src)
    }

    /// Check the configuration, and return the advert interval in centiseconds.
    pub(crate) fn validate(&self) -> Result<u16, ConfigError> {
        if self.overflow {
            return Err(ConfigError::TooMany);
        }
        if self.vrid == 0 {
            return Err(ConfigError::VridZero);
        }
        if self.priority == 0 {
            return Err(ConfigError::PriorityZero);
        }
        let family = self.family();
        if family == Family::V6 && self.version == Version::V2 {
            return Err(ConfigError::Ipv6NeedsV3);
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(ConfigError::AuthNeedsV2);
        }
        let same = |a: &IpAddr| Family::of(a) == family;
        if !self.vips.iter().all(|v| same(&v.addr)) || !self.unicast_peers.iter().all(|p| same(&p.addr)) {
            return Err(ConfigError::FamilyMismatch);
        }
        if self.track_weights.iter().any(|w| !(-254..=254).contains(w)) {
            return Err(ConfigError::BadWeight);
        }
        if !(1..=100).contains(&self.down_timer_adverts) {
            return Err(ConfigError::BadDownTimerAdverts);
        }
        let nanos = self.advert_interval.as_nanos();
        let centis = nanos / 10_000_000;
        let (whole, max) = match self.version {
            Version::V2 => (nanos.is_multiple_of(1_000_000_000), 25_500),
            Version::V3 => (nanos.is_multiple_of(10_000_000), 4095),
        };
        if !whole || centis == 0 || centis > max {
            return Err(ConfigError::BadInterval);
        }
        // In range: at most 25 500.
        Ok(centis as u16)
    }
}
