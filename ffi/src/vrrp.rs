//! VRRP: `lbcore_vrrp_config` (a builder) and `lbcore_vrrp_router`, one keepalived
//! `vrrp_instance` as a sans-IO state machine: no sockets, no clock.
//!
//! Call protocol (as `lbcore::vrrp`):
//! 1. `lbcore_vrrp_router_start(r, now)`;
//! 2. for every received packet `lbcore_vrrp_router_handle_packet` (or `_handle_payload` for
//!    the bare VRRP message of an IPv6 raw socket); when the time from
//!    `lbcore_vrrp_router_poll_timeout` is reached, `lbcore_vrrp_router_handle_timeout`
//!    (calling it early is harmless);
//! 3. after every input or command, `lbcore_vrrp_router_poll_action` until it gives
//!    `LBCORE_VRRP_ACTION_KIND_NONE`, carrying out each action in order (state change
//!    notification, VIP to add or remove, advert or gratuitous ARP/NA to send).
//!
//! Guarantees: an action is never lost to a buffer that is too small (it stays queued and
//! the call says how many bytes it needs; `LBCORE_VRRP_PACKET_MAX` always suffices); every
//! received packet is either accepted or counted under one reject reason
//! (`lbcore_vrrp_counters.rejected`).

use core::ffi::c_char;

use lbcore::time::Instant;
use lbcore::vrrp::{
    ADVERT_CAPACITY, Action, Config, GarpConfig, MAX_PEERS, MAX_TRACKS, MAX_VIPS, Reject, Router, Rx,
    SourceMac, StartState, State, TrackId, Version,
};

use crate::guard::{
    HandlePtr, Res, free, guard, guard_void, impl_opaque, in_ref, in_slice, into_raw, out_ptr, out_slice,
    write_text,
};
use crate::result::lbcore_result;
use crate::types::{duration, lbcore_addr, lbcore_link, mac_in, nanos};

/// Bytes that always hold a VRRP action's packet (`lbcore_vrrp_router_poll_action`).
pub const LBCORE_VRRP_PACKET_MAX: usize = 382;
const _: () = assert!(LBCORE_VRRP_PACKET_MAX == ADVERT_CAPACITY);
/// Most VIPs of one instance.
pub const LBCORE_VRRP_MAX_VIPS: usize = 20;
const _: () = assert!(LBCORE_VRRP_MAX_VIPS == MAX_VIPS);
/// Most unicast peers of one instance.
pub const LBCORE_VRRP_MAX_PEERS: usize = 8;
const _: () = assert!(LBCORE_VRRP_MAX_PEERS == MAX_PEERS);
/// Most tracked objects of one instance.
pub const LBCORE_VRRP_MAX_TRACKS: usize = 16;
const _: () = assert!(LBCORE_VRRP_MAX_TRACKS == MAX_TRACKS);
/// Number of reasons a received packet is refused (`lbcore_vrrp_counters.rejected`).
pub const LBCORE_VRRP_REJECT_COUNT: usize = 21;
const _: () = assert!(LBCORE_VRRP_REJECT_COUNT == Reject::COUNT);
/// `lbcore_vrrp_router_poll_timeout` when no timer is armed (Initialize or Fault).
pub const LBCORE_VRRP_NO_TIMEOUT: u64 = u64::MAX;

/// VRRP protocol version (`lbcore_vrrp_config_new`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_vrrp_version {
    /// VRRPv2 (RFC 3768), IPv4 only; keepalived's default.
    V2 = 2,
    /// VRRPv3 (RFC 5798), IPv4 and IPv6.
    V3 = 3,
}

/// Router state.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_vrrp_state {
    /// Not started, or shut down.
    Initialize = 0,
    /// Listening to the master.
    Backup = 1,
    /// Owning the VIPs and advertising.
    Master = 2,
    /// A tracked object with weight 0 failed, or the interface is down.
    Fault = 3,
}

impl lbcore_vrrp_state {
    fn from_core(s: State) -> lbcore_vrrp_state {
        match s {
            State::Initialize => lbcore_vrrp_state::Initialize,
            State::Backup => lbcore_vrrp_state::Backup,
            State::Master => lbcore_vrrp_state::Master,
            State::Fault => lbcore_vrrp_state::Fault,
        }
    }
}

/// keepalived's `state` keyword (`lbcore_vrrp_config_set_start_state`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_vrrp_start_state {
    /// `state BACKUP`: wait a whole master-down interval (the default).
    Backup = 0,
    /// `state MASTER`: take over after one advert interval if no master is heard.
    Master = 1,
}

/// What the bytes given to `lbcore_vrrp_router_handle_packet` start with.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_vrrp_rx {
    /// An Ethernet frame (AF_PACKET, TAP).
    Ethernet = 0,
    /// A bare IPv4 or IPv6 packet (an IPv4 raw socket).
    Ip = 1,
}

/// The kind of an action from `lbcore_vrrp_router_poll_action`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_vrrp_action_kind {
    /// No action left: wait for `lbcore_vrrp_router_poll_timeout` or a packet.
    None = 0,
    /// The state changed from `from` to `to` (run notify scripts here).
    StateChanged = 1,
    /// Install VIP `addr`/`prefix_len` on the interface.
    AddVip = 2,
    /// Remove VIP `addr`/`prefix_len` from the interface.
    RemoveVip = 3,
    /// Send the advert in the buffer (to `addr`, with `priority`).
    SendAdvert = 4,
    /// Send the gratuitous ARP / unsolicited NA frame in the buffer (announcing `addr`).
    SendGratuitous = 5,
}

/// Gratuitous ARP / NA timing (keepalived's `garp_*` keywords); start from
/// `lbcore_vrrp_garp_default()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_garp {
    /// `garp_master_delay`: delay of the second burst after becoming master (0 = none).
    pub master_delay_ns: u64,
    /// `garp_master_repeat`: frames per VIP in each master burst.
    pub master_repeat: u16,
    /// `garp_master_refresh`: period of refresh bursts while master (0 = off).
    pub master_refresh_ns: u64,
    /// `garp_master_refresh_repeat`: frames per VIP in a refresh burst.
    pub master_refresh_repeat: u16,
    /// `garp_lower_prio_delay`: delay of the second burst after hearing a lower priority.
    pub lower_prio_delay_ns: u64,
    /// `garp_lower_prio_repeat`: frames per VIP when a master hears a lower priority.
    pub lower_prio_repeat: u16,
    /// `vrrp_garp_interval`: gap between two frames (0 = back to back).
    pub interval_ns: u64,
}

/// A router's state and timers.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_status {
    /// The state.
    pub state: lbcore_vrrp_state,
    /// Effective priority (configured priority plus track weights and delta).
    pub priority: u8,
    /// Configured priority.
    pub base_priority: u8,
    /// Whether a master is known (`master`, `master_priority` valid).
    pub has_master: bool,
    /// The current master's address (ourselves when Master).
    pub master: lbcore_addr,
    /// The current master's priority.
    pub master_priority: u8,
    /// Whether traffic to the VIPs should be accepted (Master with accept mode or owner).
    pub accepts_vip_traffic: bool,
    /// Whether a fault holds the router (interface down, failed weight-0 track).
    pub fault: bool,
    /// Our advert interval, nanoseconds.
    pub advert_interval_ns: u64,
    /// The master's advert interval (VRRPv3 learns it), nanoseconds.
    pub master_advert_interval_ns: u64,
    /// The master-down interval, nanoseconds.
    pub master_down_interval_ns: u64,
}

/// A router's counters.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_counters {
    /// Adverts that passed every check.
    pub adverts_received: u64,
    /// Accepted adverts with priority 0.
    pub priority_zero_received: u64,
    /// Adverts sent (one per advert, whatever the number of unicast peers).
    pub adverts_sent: u64,
    /// Of those, priority-0 adverts.
    pub priority_zero_sent: u64,
    /// Gratuitous ARP / NA frames handed out.
    pub gratuitous_sent: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Transitions out of Master.
    pub released_master: u64,
    /// Lower-priority adverts a preempting backup discarded.
    pub lower_priority_ignored: u64,
    /// Actions lost because the queue was not drained.
    pub actions_dropped: u64,
    /// Refused packets per reason (`lbcore_vrrp_reject_name`).
    pub rejected: [u64; LBCORE_VRRP_REJECT_COUNT],
}

/// One output of a router. Which fields mean something depends on `kind`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_vrrp_action {
    /// What to do.
    pub kind: lbcore_vrrp_action_kind,
    /// `STATE_CHANGED`: the previous state.
    pub from: lbcore_vrrp_state,
    /// `STATE_CHANGED`: the new state.
    pub to: lbcore_vrrp_state,
    /// `ADD_VIP`, `REMOVE_VIP`, `SEND_GRATUITOUS`: the VIP; `SEND_ADVERT`: the IP destination
    /// (multicast group or unicast peer).
    pub addr: lbcore_addr,
    /// `ADD_VIP`, `REMOVE_VIP`: the VIP's prefix length.
    pub prefix_len: u8,
    /// `SEND_ADVERT`: the advertised priority (0 when stepping down).
    pub priority: u8,
    /// `SEND_ADVERT`, `SEND_GRATUITOUS`: what the buffer holds: an Ethernet frame, or (an
    /// advert to a unicast peer whose MAC is unknown) an IP packet to route.
    pub link: lbcore_link,
    /// `SEND_ADVERT`: offset of the IP header in the buffer (14 or 0).
    pub ip_offset: usize,
    /// `SEND_ADVERT`: offset of the VRRP message in the buffer (for an IPv6 raw socket).
    pub vrrp_offset: usize,
}

/// A VRRP instance configuration under construction (keepalived's defaults: priority 100,
/// advert interval 1 s, preempt, accept, virtual MAC source, 5+5 gratuitous ARPs).
#[allow(non_camel_case_types)]
pub struct lbcore_vrrp_config {
    inner: Config,
    poisoned: bool,
}
impl_opaque!(lbcore_vrrp_config, Config);

/// The router and the action taken out of its queue but not yet delivered (its buffer was
/// too small).
pub(crate) struct RouterState {
    router: Router,
    pending: Option<Action>,
}

impl RouterState {
    pub(crate) fn new(router: Router) -> RouterState {
        RouterState {
            router,
            pending: None,
        }
    }
}

/// One VRRP instance. Not thread-safe: one thread at a time.
#[allow(non_camel_case_types)]
pub struct lbcore_vrrp_router {
    inner: RouterState,
    poisoned: bool,
}
impl_opaque!(lbcore_vrrp_router, RouterState);

fn garp_out(g: &GarpConfig) -> lbcore_vrrp_garp {
    lbcore_vrrp_garp {
        master_delay_ns: nanos(g.master_delay),
        master_repeat: g.master_repeat,
        master_refresh_ns: nanos(g.master_refresh),
        master_refresh_repeat: g.master_refresh_repeat,
        lower_prio_delay_ns: nanos(g.lower_prio_delay),
        lower_prio_repeat: g.lower_prio_repeat,
        interval_ns: nanos(g.interval),
    }
}

/// keepalived's gratuitous ARP defaults: 5 per VIP on becoming master and 5 more after 5 s,
/// the same on hearing a lower priority as master, no refresh, no gap.
#[unsafe(no_mangle)]
pub extern "C" fn lbcore_vrrp_garp_default() -> lbcore_vrrp_garp {
    garp_out(&GarpConfig::default())
}

/// Writes the name of reject reason `reason` (below `LBCORE_VRRP_REJECT_COUNT`, e.g.
/// `"vrid_mismatch"`) into `buf`, NUL-terminated, and its length into `*out_n`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an unknown reason and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `buf` must be NULL or valid for writing `len` bytes; `out_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_reject_name(
    reason: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a writable `size_t`.
        let out_n = unsafe { out_ptr(out_n)? };
        let r = Reject::ALL
            .get(reason as usize)
            .ok_or(lbcore_result::InvalidParameter)?;
        // SAFETY: the caller passes NULL or `len` writable bytes.
        unsafe { write_text(r.name(), buf, len, out_n) }
    })
}

// ----- lbcore_vrrp_config -----

/// Creates an instance configuration for `version` (an `lbcore_vrrp_version`), virtual router
/// id `vrid` and primary address `*src` (the advert source; its family is the instance's).
/// Validation happens in `lbcore_vrrp_router_new`.
///
/// # Safety
/// `src` must be NULL or readable; `out` NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_new(
    version: u32,
    vrid: u8,
    src: *const lbcore_addr,
    out: *mut *mut lbcore_vrrp_config,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or valid pointers.
        let (src, out) = unsafe { (in_ref(src)?, out_ptr(out)?) };
        let version = match version {
            2 => Version::V2,
            3 => Version::V3,
            _ => return Err(lbcore_result::InvalidParameter),
        };
        let cfg = Config::new(version, vrid, src.to_ip()?);
        out.write(into_raw::<lbcore_vrrp_config>(cfg));
        Ok(())
    })
}

/// Frees a VRRP configuration; NULL is fine.
///
/// # Safety
/// `cfg` must be NULL or from `lbcore_vrrp_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_free(cfg: *mut lbcore_vrrp_config) {
    // SAFETY: forwarded contract.
    guard_void(|| unsafe { free(cfg) })
}

/// Runs `f` on a configuration.
fn on_cfg(cfg: HandlePtr<lbcore_vrrp_config>, f: impl FnOnce(&mut Config) -> Res) -> lbcore_result {
    guard(|| cfg.with(f))
}

/// Sets `priority` (1..255; 255 = address owner).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_priority(
    cfg: *mut lbcore_vrrp_config,
    priority: u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.priority = priority;
        Ok(())
    })
}

/// Sets `advert_int` in nanoseconds (v2: whole seconds; v3: whole centiseconds).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_advert_interval(
    cfg: *mut lbcore_vrrp_config,
    interval_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.advert_interval = duration(interval_ns);
        Ok(())
    })
}

/// Adds a VIP (`virtual_ipaddress`) with its prefix length.
///
/// Returns `LBCORE_RESULT_VRRP_TOO_MANY` beyond `LBCORE_VRRP_MAX_VIPS` and
/// `LBCORE_RESULT_INVALID_PARAMETER` for a prefix longer than the address.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `addr` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_add_vip(
    cfg: *mut lbcore_vrrp_config,
    addr: *const lbcore_addr,
    prefix_len: u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        // SAFETY: the caller passes NULL or a readable address.
        let ip = unsafe { in_ref(addr)? }.to_ip()?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(lbcore_result::InvalidParameter);
        }
        if c.vips.len() >= MAX_VIPS {
            return Err(lbcore_result::VrrpTooMany);
        }
        *c = c.clone().vip(ip, prefix_len);
        Ok(())
    })
}

/// `authentication { auth_type PASS; auth_pass ... }` (VRRPv2): the first 8 bytes of
/// `secret[0..len]`.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `secret` NULL or valid for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_auth_pass(
    cfg: *mut lbcore_vrrp_config,
    secret: *const u8,
    len: usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        // SAFETY: the caller passes NULL or `len` readable bytes.
        let secret = unsafe { in_slice(secret, len)? };
        c.auth = lbcore::vrrp::Auth::pass(secret);
        Ok(())
    })
}

/// Sets `state` (an `lbcore_vrrp_start_state`).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_start_state(
    cfg: *mut lbcore_vrrp_config,
    state: u32,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.start_state = match state {
            0 => StartState::Backup,
            1 => StartState::Master,
            _ => return Err(lbcore_result::InvalidParameter),
        };
        Ok(())
    })
}

/// Sets `nopreempt` (never take over from a lower-priority master).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_nopreempt(
    cfg: *mut lbcore_vrrp_config,
    on: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.nopreempt = on;
        Ok(())
    })
}

/// Sets `preempt_delay` in nanoseconds.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_preempt_delay(
    cfg: *mut lbcore_vrrp_config,
    delay_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.preempt_delay = duration(delay_ns);
        Ok(())
    })
}

/// Sets `accept` (true) or `no_accept` (false).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_accept(
    cfg: *mut lbcore_vrrp_config,
    on: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.accept = on;
        Ok(())
    })
}

/// Adds a `unicast_peer`; `mac` (6 bytes) is its MAC if known, or NULL (adverts to it then
/// come out as IP packets to route).
///
/// Returns `LBCORE_RESULT_VRRP_TOO_MANY` beyond `LBCORE_VRRP_MAX_PEERS`.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `addr` NULL or readable; `mac` NULL or
/// valid for reading 6 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_add_unicast_peer(
    cfg: *mut lbcore_vrrp_config,
    addr: *const lbcore_addr,
    mac: *const u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        // SAFETY: the caller passes NULL or a readable address.
        let ip = unsafe { in_ref(addr)? }.to_ip()?;
        let mac = if mac.is_null() {
            None
        } else {
            // SAFETY: non-null: the caller passes 6 readable bytes.
            Some(unsafe { mac_in(mac)? })
        };
        if c.unicast_peers.len() >= MAX_PEERS {
            return Err(lbcore_result::VrrpTooMany);
        }
        *c = c.clone().unicast_peer_with_mac(ip, mac);
        Ok(())
    })
}

/// Sets `check_unicast_src` (refuse adverts from addresses that are not peers).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_check_unicast_src(
    cfg: *mut lbcore_vrrp_config,
    on: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.check_unicast_src = on;
        Ok(())
    })
}

/// Adds a tracked object with keepalived's weight semantics (positive: added while OK;
/// negative: added while failed; 0: Fault while failed) and writes its id (0, 1, ... in
/// order) into `*out_id` for `lbcore_vrrp_router_set_track`. Tracks start OK.
///
/// Returns `LBCORE_RESULT_VRRP_TOO_MANY` beyond `LBCORE_VRRP_MAX_TRACKS`.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_add_track(
    cfg: *mut lbcore_vrrp_config,
    weight: i16,
    out_id: *mut u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        // SAFETY: the caller passes NULL or a writable byte.
        let out_id = unsafe { out_ptr(out_id)? };
        let id = c.track_weights.len();
        if id >= MAX_TRACKS {
            return Err(lbcore_result::VrrpTooMany);
        }
        *c = c.clone().track(weight);
        // Below MAX_TRACKS (16).
        out_id.write(id as u8);
        Ok(())
    })
}

/// Sets the Ethernet source of adverts and gratuitous frames: the interface's MAC (6 bytes,
/// as keepalived without `use_vmac`), or NULL for the virtual router MAC 00-00-5E-00-01-VRID
/// (RFC 5798, the default).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `mac` NULL or valid for reading 6 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_source_mac(
    cfg: *mut lbcore_vrrp_config,
    mac: *const u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.source_mac = if mac.is_null() {
            SourceMac::Virtual
        } else {
            // SAFETY: non-null: the caller passes 6 readable bytes.
            SourceMac::Interface(unsafe { mac_in(mac)? })
        };
        Ok(())
    })
}

/// Sets `down_timer_adverts` (adverts missed before the master is declared down, 1..100).
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_down_timer_adverts(
    cfg: *mut lbcore_vrrp_config,
    adverts: u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.down_timer_adverts = adverts;
        Ok(())
    })
}

/// Sets the gratuitous ARP / NA timing.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `garp` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_garp(
    cfg: *mut lbcore_vrrp_config,
    garp: *const lbcore_vrrp_garp,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        // SAFETY: the caller passes NULL or a readable struct.
        let g = unsafe { in_ref(garp)? };
        c.garp = GarpConfig {
            master_delay: duration(g.master_delay_ns),
            master_repeat: g.master_repeat,
            master_refresh: duration(g.master_refresh_ns),
            master_refresh_repeat: g.master_refresh_repeat,
            lower_prio_delay: duration(g.lower_prio_delay_ns),
            lower_prio_repeat: g.lower_prio_repeat,
            interval: duration(g.interval_ns),
        };
        Ok(())
    })
}

/// Sets `lower_prio_no_advert` and `higher_prio_send_advert`.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_config_set_advert_policy(
    cfg: *mut lbcore_vrrp_config,
    lower_prio_no_advert: bool,
    higher_prio_send_advert: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    on_cfg(cfg, |c| {
        c.lower_prio_no_advert = lower_prio_no_advert;
        c.higher_prio_send_advert = higher_prio_send_advert;
        Ok(())
    })
}

// ----- lbcore_vrrp_router -----

/// Creates a router from a configuration (copied) in state Initialize.
///
/// Returns the `LBCORE_RESULT_VRRP_*` code naming what is wrong with the configuration.
///
/// # Safety
/// `cfg` must be NULL or a live VRRP configuration; `out` NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_new(
    cfg: *const lbcore_vrrp_config,
    out: *mut *mut lbcore_vrrp_router,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new_const(cfg) };
    guard(|| {
        // SAFETY: the caller passes NULL or a writable pointer.
        let out = unsafe { out_ptr(out)? };
        let config = cfg.with_ref(|c| Ok(c.clone()))?;
        let router = Router::new(config)?;
        out.write(into_raw::<lbcore_vrrp_router>(RouterState::new(router)));
        Ok(())
    })
}

/// Frees a router; NULL is fine.
///
/// # Safety
/// `router` must be NULL or from `lbcore_vrrp_router_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_free(router: *mut lbcore_vrrp_router) {
    // SAFETY: forwarded contract.
    guard_void(|| unsafe { free(router) })
}

fn on_router(r: HandlePtr<lbcore_vrrp_router>, f: impl FnOnce(&mut RouterState) -> Res) -> lbcore_result {
    guard(|| r.with(f))
}

/// The RFC "Startup" event: leave Initialize (for Backup, Master at once for an address
/// owner, or Fault). Does nothing if already running.
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_start(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        s.router.start(Instant::from_nanos(now_ns));
        Ok(())
    })
}

/// The RFC "Shutdown" event: a master sends a priority-0 advert and removes its VIPs; every
/// state returns to Initialize.
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_shutdown(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        s.router.shutdown(Instant::from_nanos(now_ns));
        Ok(())
    })
}

/// A packet arrived: `buf[0..len]` is an Ethernet frame or an IP packet (`rx`, an
/// `lbcore_vrrp_rx`). Any bytes are fine: a packet that is not a valid advert for this router
/// is counted under its reject reason.
///
/// # Safety
/// `router` must be NULL or a live router; `buf` NULL or valid for reading `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_handle_packet(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
    buf: *const u8,
    len: usize,
    rx: u32,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        // SAFETY: the caller passes NULL or `len` readable bytes.
        let bytes = unsafe { in_slice(buf, len)? };
        let rx = match rx {
            0 => Rx::Ethernet,
            1 => Rx::Ip,
            _ => return Err(lbcore_result::InvalidParameter),
        };
        s.router.handle_packet(Instant::from_nanos(now_ns), bytes, rx);
        Ok(())
    })
}

/// A bare VRRP message arrived (an IPv6 raw socket): `buf[0..len]`, with the packet's source
/// and destination addresses and hop limit from `recvmsg` (`hop_limit` < 0 if unknown: the
/// TTL check is then skipped).
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for a hop limit above 255.
///
/// # Safety
/// `router` must be NULL or a live router; `buf` NULL or valid for reading `len` bytes; `src`
/// and `dst` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_handle_payload(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
    buf: *const u8,
    len: usize,
    src: *const lbcore_addr,
    dst: *const lbcore_addr,
    hop_limit: i32,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        // SAFETY: the caller passes NULL or valid pointers.
        let (bytes, src, dst) = unsafe { (in_slice(buf, len)?, in_ref(src)?, in_ref(dst)?) };
        let hop_limit = match hop_limit {
            h if h < 0 => None,
            h => Some(u8::try_from(h).map_err(|_| lbcore_result::InvalidParameter)?),
        };
        let rx = Rx::Payload {
            src: src.to_ip()?,
            dst: dst.to_ip()?,
            hop_limit,
        };
        s.router.handle_packet(Instant::from_nanos(now_ns), bytes, rx);
        Ok(())
    })
}

/// Time passed: acts on the timers due at `now_ns`. Safe to call at any time.
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_handle_timeout(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        s.router.handle_timeout(Instant::from_nanos(now_ns));
        Ok(())
    })
}

/// Writes when `lbcore_vrrp_router_handle_timeout` next has work (nanoseconds) into
/// `*out_ns`, or `LBCORE_VRRP_NO_TIMEOUT` if no timer is armed.
///
/// # Safety
/// `router` must be NULL or a live router; `out_ns` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_poll_timeout(
    router: *const lbcore_vrrp_router,
    out_ns: *mut u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new_const(router) };
    guard(|| {
        r.with_ref(|s| {
            // SAFETY: the caller passes NULL or a writable `uint64_t`.
            let out = unsafe { out_ptr(out_ns)? };
            out.write(
                s.router
                    .poll_timeout()
                    .map_or(LBCORE_VRRP_NO_TIMEOUT, Instant::as_nanos),
            );
            Ok(())
        })
    })
}

/// Sets a priority adjustment computed by the caller (added to the priority with the track
/// weights; the result stays within 1..254, an owner at 255).
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_set_priority_delta(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
    delta: i16,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        s.router.set_priority_delta(Instant::from_nanos(now_ns), delta);
        Ok(())
    })
}

/// A tracked object (from `lbcore_vrrp_config_add_track`) is now OK or failed.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an unknown track id.
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_set_track(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
    track: u8,
    ok: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        if usize::from(track) >= s.router.config().track_weights.len() {
            return Err(lbcore_result::InvalidParameter);
        }
        s.router
            .set_track(Instant::from_nanos(now_ns), TrackId(track), ok);
        Ok(())
    })
}

/// The interface went up (`up` true) or down (false: the router goes to Fault).
///
/// # Safety
/// `router` must be NULL or a live router.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_set_interface(
    router: *mut lbcore_vrrp_router,
    now_ns: u64,
    up: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        let now = Instant::from_nanos(now_ns);
        if up {
            s.router.interface_up(now);
        } else {
            s.router.interface_down(now);
        }
        Ok(())
    })
}

/// Writes the router's state, priority, master and timers into `*out`.
///
/// # Safety
/// `router` must be NULL or a live router; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_status(
    router: *const lbcore_vrrp_router,
    out: *mut lbcore_vrrp_status,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new_const(router) };
    guard(|| {
        r.with_ref(|s| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let r = &s.router;
            let master = r.master();
            out.write(lbcore_vrrp_status {
                state: lbcore_vrrp_state::from_core(r.state()),
                priority: r.priority(),
                base_priority: r.base_priority(),
                has_master: master.is_some(),
                master: lbcore_addr::from_ip(master.map_or(r.config().src, |m| m.0)),
                master_priority: master.map_or(0, |m| m.1),
                accepts_vip_traffic: r.accepts_vip_traffic(),
                fault: r.fault_condition(),
                advert_interval_ns: nanos(r.advert_interval()),
                master_advert_interval_ns: nanos(r.master_advert_interval()),
                master_down_interval_ns: nanos(r.master_down_interval()),
            });
            Ok(())
        })
    })
}

/// Writes the router's counters into `*out`.
///
/// # Safety
/// `router` must be NULL or a live router; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_counters(
    router: *const lbcore_vrrp_router,
    out: *mut lbcore_vrrp_counters,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new_const(router) };
    guard(|| {
        r.with_ref(|s| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let c = s.router.counters();
            out.write(lbcore_vrrp_counters {
                adverts_received: c.adverts_received,
                priority_zero_received: c.priority_zero_received,
                adverts_sent: c.adverts_sent,
                priority_zero_sent: c.priority_zero_sent,
                gratuitous_sent: c.gratuitous_sent,
                became_master: c.became_master,
                released_master: c.released_master,
                lower_priority_ignored: c.lower_priority_ignored,
                actions_dropped: c.actions_dropped,
                rejected: c.rejected,
            });
            Ok(())
        })
    })
}

fn empty_action() -> lbcore_vrrp_action {
    lbcore_vrrp_action {
        kind: lbcore_vrrp_action_kind::None,
        from: lbcore_vrrp_state::Initialize,
        to: lbcore_vrrp_state::Initialize,
        addr: lbcore_addr {
            family: 0,
            bytes: [0; 16],
        },
        prefix_len: 0,
        priority: 0,
        link: lbcore_link::Ethernet,
        ip_offset: 0,
        vrrp_offset: 0,
    }
}

/// The C description of an action and the bytes that go with it.
fn describe(action: &Action) -> (lbcore_vrrp_action, &[u8]) {
    let mut a = empty_action();
    let bytes: &[u8] = match action {
        Action::StateChanged { from, to } => {
            a.kind = lbcore_vrrp_action_kind::StateChanged;
            a.from = lbcore_vrrp_state::from_core(*from);
            a.to = lbcore_vrrp_state::from_core(*to);
            &[]
        }
        Action::AddVip(v) | Action::RemoveVip(v) => {
            a.kind = if matches!(action, Action::AddVip(_)) {
                lbcore_vrrp_action_kind::AddVip
            } else {
                lbcore_vrrp_action_kind::RemoveVip
            };
            a.addr = lbcore_addr::from_ip(v.addr);
            a.prefix_len = v.prefix_len;
            &[]
        }
        Action::SendAdvert(p) => {
            a.kind = lbcore_vrrp_action_kind::SendAdvert;
            a.addr = lbcore_addr::from_ip(p.dst());
            a.priority = p.priority();
            let (ip, vrrp) = (p.ip(), p.vrrp());
            match p.frame() {
                Some(frame) => {
                    a.link = lbcore_link::Ethernet;
                    a.ip_offset = frame.len() - ip.len();
                    a.vrrp_offset = frame.len() - vrrp.len();
                    frame
                }
                None => {
                    a.link = lbcore_link::Ip;
                    a.vrrp_offset = ip.len() - vrrp.len();
                    ip
                }
            }
        }
        Action::SendGratuitous(f) => {
            a.kind = lbcore_vrrp_action_kind::SendGratuitous;
            a.addr = lbcore_addr::from_ip(f.vip());
            f.frame()
        }
    };
    (a, bytes)
}

/// Takes the next action: writes it into `*out`, its packet (for `SEND_ADVERT` and
/// `SEND_GRATUITOUS`) into `buf[0..len]`, and the packet's length (0 for the other kinds)
/// into `*out_n`. When nothing is left, `out->kind` is `LBCORE_VRRP_ACTION_KIND_NONE`.
///
/// Returns `LBCORE_RESULT_BUFFER_TOO_SMALL`, with the size needed in `*out_n`, when the
/// packet does not fit: the action stays first in line for the next call.
/// `LBCORE_VRRP_PACKET_MAX` bytes always suffice.
///
/// # Safety
/// `router` must be NULL or a live router; `out` and `out_n` NULL or writable; `buf` NULL or
/// valid for writing `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_vrrp_router_poll_action(
    router: *mut lbcore_vrrp_router,
    out: *mut lbcore_vrrp_action,
    buf: *mut u8,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live router.
    let r = unsafe { HandlePtr::new(router) };
    on_router(r, |s| {
        // SAFETY: the caller passes NULL or valid pointers.
        let (out, buf, out_n) = unsafe { (out_ptr(out)?, out_slice(buf, len)?, out_ptr(out_n)?) };
        let Some(action) = s.pending.take().or_else(|| s.router.poll_action()) else {
            out.write(empty_action());
            out_n.write(0);
            return Ok(());
        };
        let (a, bytes) = describe(&action);
        if bytes.len() > buf.len() {
            out_n.write(bytes.len());
            s.pending = Some(action);
            return Err(lbcore_result::BufferTooSmall);
        }
        for (o, b) in buf.iter_mut().zip(bytes) {
            o.write(*b);
        }
        out_n.write(bytes.len());
        out.write(a);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use core::ptr;

    fn addr(s: &str) -> lbcore_addr {
        lbcore_addr::from_ip(s.parse().unwrap())
    }

    #[test]
    fn a_lone_router_becomes_master_and_actions_survive_small_buffers() {
        // SAFETY: every pointer is NULL or points at a live local or handle.
        unsafe {
            let mut cfg = ptr::null_mut();
            let me = addr("10.0.0.11");
            assert_eq!(lbcore_vrrp_config_new(3, 51, &me, &mut cfg), lbcore_result::Ok);
            assert_eq!(
                lbcore_vrrp_config_new(4, 51, &me, &mut cfg),
                lbcore_result::InvalidParameter
            );
            assert_eq!(lbcore_vrrp_config_set_priority(cfg, 150), lbcore_result::Ok);
            assert_eq!(
                lbcore_vrrp_config_add_vip(cfg, &addr("10.0.0.100"), 24),
                lbcore_result::Ok
            );
            assert_eq!(
                lbcore_vrrp_config_add_vip(cfg, &addr("10.0.0.101"), 33),
                lbcore_result::InvalidParameter
            );
            let mut r = ptr::null_mut();
            assert_eq!(lbcore_vrrp_router_new(cfg, &mut r), lbcore_result::Ok);
            lbcore_vrrp_config_free(cfg);
            assert_eq!(lbcore_vrrp_router_start(r, 0), lbcore_result::Ok);
            let mut t = 0u64;
            assert_eq!(lbcore_vrrp_router_poll_timeout(r, &mut t), lbcore_result::Ok);
            assert!(t > 3_000_000_000 && t < 4_000_000_000, "{t}");
            assert_eq!(lbcore_vrrp_router_handle_timeout(r, t), lbcore_result::Ok);

            let mut kinds = Vec::new();
            let mut a = MaybeUninit::uninit();
            let mut n = 0usize;
            let mut small = [0u8; 8];
            let mut big = [0u8; LBCORE_VRRP_PACKET_MAX];
            loop {
                let rc = lbcore_vrrp_router_poll_action(
                    r,
                    a.as_mut_ptr(),
                    small.as_mut_ptr(),
                    small.len(),
                    &mut n,
                );
                if rc == lbcore_result::BufferTooSmall {
                    assert!(n > small.len() && n <= LBCORE_VRRP_PACKET_MAX);
                    let need = n;
                    let rc = lbcore_vrrp_router_poll_action(
                        r,
                        a.as_mut_ptr(),
                        big.as_mut_ptr(),
                        big.len(),
                        &mut n,
                    );
                    assert_eq!(rc, lbcore_result::Ok);
                    assert_eq!(n, need, "the same action came back");
                } else {
                    assert_eq!(rc, lbcore_result::Ok);
                }
                let act = a.assume_init();
                if act.kind == lbcore_vrrp_action_kind::None {
                    break;
                }
                kinds.push(act.kind);
            }
            assert_eq!(kinds[0], lbcore_vrrp_action_kind::StateChanged);
            assert!(kinds.contains(&lbcore_vrrp_action_kind::AddVip));
            assert!(kinds.contains(&lbcore_vrrp_action_kind::SendAdvert));
            assert!(kinds.contains(&lbcore_vrrp_action_kind::SendGratuitous));
            let mut st = MaybeUninit::uninit();
            assert_eq!(lbcore_vrrp_router_status(r, st.as_mut_ptr()), lbcore_result::Ok);
            assert_eq!(st.assume_init().state, lbcore_vrrp_state::Master);
            assert_eq!(
                lbcore_vrrp_router_set_track(r, 0, 0, false),
                lbcore_result::InvalidParameter
            );
            lbcore_vrrp_router_free(r);
        }
    }
}
