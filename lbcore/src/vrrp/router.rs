//! One VRRP instance as a state machine: no I/O, no clock. The driver feeds it packets, the
//! time and commands, and carries out the [`Action`]s it hands back.
//!
//! The behaviour is RFC 5798 §6 (and RFC 3768 §6 for VRRPv2) as keepalived 2.2.7 implements
//! it in `vrrp.c` / `vrrp_scheduler.c`; where keepalived departs from the RFC or adds to it,
//! keepalived is followed and the method says so.
//!
//! Guarantees:
//! - No method panics, whatever the packet bytes or the order of calls.
//! - Timers live in the state ([`Phase`]); [`Router::handle_timeout`] only acts on timers
//!   that are due, so calling it early or twice is harmless.
//! - Time only moves through the `now` arguments; the same inputs give the same outputs.
//! - Outputs are queued (bounded, see [`QUEUE_CAPACITY`]); if the caller lets the queue fill,
//!   further outputs are dropped and counted in [`Counters::actions_dropped`].

use core::cmp::Ordering;
use core::net::IpAddr;

use super::action::{Action, AdvertPacket, GratuitousFrame, State};
use super::config::{Config, ConfigError, MAX_VIPS, Peer, SourceMac, StartState, TrackId};
use super::counters::{Counters, Reject};
use super::garp::{emit_garp, emit_unsolicited_na};
use super::wire::{
    self, AUTH_AH, Advert, AdvertRepr, Auth, IPV4_LEN, IPV6_LEN, MCAST_MAC_V4, MCAST_MAC_V6, MCAST_V4,
    MCAST_V6, Rx, TTL, TYPE_ADVERT, TxEnvelope, Version,
};
use crate::service::Family;
use crate::time::{Duration, Instant};

/// Pending outputs a router holds before the caller drains them. One transition queues at
/// most four entries (a burst of gratuitous frames or an advert to every unicast peer is one
/// entry, expanded as it is drained).
pub const QUEUE_CAPACITY: usize = 32;

/// A VRRP instance. See the [module documentation](super) for the call protocol.
#[derive(Clone, Debug)]
pub struct Router {
    cfg: Config,
    vip_addrs: heapless::Vec<IpAddr, MAX_VIPS>,
    /// Our advert interval, centiseconds (v2: a multiple of 100).
    interval_cs: u16,
    phase: Phase,
    /// RFC 5798 Master_Adver_Interval, centiseconds: ours, or the master's once heard (v3).
    master_adver_cs: u16,
    /// Configured priority; an owner lowers it to 254 on meeting another owner.
    base: u8,
    effective: u8,
    delta: i16,
    /// Bit `i` set while track `i` is OK.
    track_ok: u16,
    iface_up: bool,
    /// keepalived `preempt_time`: until then a lower-priority master is tolerated.
    preempt_until: Option<Instant>,
    master: Option<(IpAddr, u8)>,
    ip_id: u16,
    /// Member of a sync group: transitions to Master and out of Fault are the group's call.
    in_group: bool,
    /// In a sync group: the master-down timer expired, we would be master if the group let us.
    want_master: bool,
    queue: heapless::Deque<Pending, QUEUE_CAPACITY>,
    counters: Counters,
}

/// The state together with its timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Initialize,
    Backup {
        master_down_at: Instant,
    },
    Master {
        next_advert_at: Instant,
        garp: GarpTimers,
    },
    Fault,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct GarpTimers {
    /// `garp_master_delay` after becoming master.
    second_burst_at: Option<Instant>,
    /// `garp_lower_prio_delay` after hearing a lower priority.
    lower_prio_burst_at: Option<Instant>,
    /// Next `garp_master_refresh`.
    refresh_at: Option<Instant>,
    /// Frames still to send one `garp_interval` apart.
    paced: Option<Paced>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Paced {
    left: u32,
    next_vip: u8,
    at: Instant,
}

/// A queued output, compact: packets are built only when drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    State { from: State, to: State },
    Vips { add: bool, next: u8 },
    Advert { priority: u8, ip_id: u16, next_peer: u8 },
    Garp { left: u32, next_vip: u8 },
}

/// The parts of a valid advert the state machine looks at.
#[derive(Clone, Copy, Debug)]
struct Heard {
    src: IpAddr,
    priority: u8,
    interval: u16,
}

impl Router {
    /// A router in Initialize state. Fails on an invalid configuration; applies keepalived's
    /// normalisations (see [`Config`]).
    pub fn new(config: Config) -> Result<Router, ConfigError> {
        let interval_cs = config.validate()?;
        let mut cfg = config;
        if cfg.priority == 255 {
            cfg.nopreempt = false;
            cfg.start_state = StartState::Master;
        }
        if cfg.start_state == StartState::Master {
            cfg.nopreempt = false;
            cfg.preempt_delay = Duration::ZERO;
        }
        if cfg.nopreempt {
            cfg.preempt_delay = Duration::ZERO;
        }
        let mut vip_addrs = heapless::Vec::new();
        for v in &cfg.vips {
            // Same capacity as `cfg.vips`: cannot overflow.
            let _ = vip_addrs.push(v.addr);
        }
        let base = cfg.priority;
        let mut router = Router {
            cfg,
            vip_addrs,
            interval_cs,
            phase: Phase::Initialize,
            master_adver_cs: interval_cs,
            base,
            effective: base,
            delta: 0,
            track_ok: u16::MAX,
            iface_up: true,
            preempt_until: None,
            master: None,
            ip_id: 0,
            in_group: false,
            want_master: false,
            queue: heapless::Deque::new(),
            counters: Counters::default(),
        };
        router.recompute_priority();
        Ok(router)
    }

    // ----- getters -----

    /// The current state.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Initialize => State::Initialize,
            Phase::Backup { .. } => State::Backup,
            Phase::Master { .. } => State::Master,
            Phase::Fault => State::Fault,
        }
    }

    /// The configuration, after keepalived's normalisations.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The virtual router identifier.
    pub fn vrid(&self) -> u8 {
        self.cfg.vrid
    }

    /// The effective priority: the configured one adjusted by the delta and the tracked
    /// objects, kept within 1..=254 (an owner stays at 255), as keepalived does.
    pub fn priority(&self) -> u8 {
        self.effective
    }

    /// The configured priority (lowered to 254 if another owner was met).
    pub fn base_priority(&self) -> u8 {
        self.base
    }

    /// Our advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        centis(self.interval_cs)
    }

    /// RFC 5798 Master_Adver_Interval: ours, or (VRRPv3, in Backup) the master's.
    pub fn master_advert_interval(&self) -> Duration {
        centis(self.master_adver_cs)
    }

    /// Skew_Time for the effective priority, to the microsecond as keepalived computes it
    /// (`VRRP_TIMER_SKEW`): v2 (256 - priority) / 256 s; v3 (256 - priority) ×
    /// Master_Adver_Interval / 256.
    pub fn skew_time(&self) -> Duration {
        Duration::from_micros(self.skew_us(256 - u64::from(self.effective)))
    }

    /// Master_Down_Interval: `down_timer_adverts` (3) × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_advert_interval() * u32::from(self.cfg.down_timer_adverts) + self.skew_time()
    }

    /// Source address and priority of the last master heard.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Whether track `id` is currently OK (`None` for an unknown id).
    pub fn track_ok(&self, id: TrackId) -> Option<bool> {
        (usize::from(id.0) < self.cfg.track_weights.len()).then_some(self.track_ok & (1 << id.0) != 0)
    }

    /// Whether the interface is down or a weight-0 tracked object fails.
    pub fn fault_condition(&self) -> bool {
        !self.iface_up
            || self
                .cfg
                .track_weights
                .iter()
                .enumerate()
                .any(|(i, w)| *w == 0 && self.track_ok & (1 << i) == 0)
    }

    /// Whether traffic addressed to the VIPs should be accepted: in Master, with `accept` or
    /// as the address owner (RFC 5798 §6.4.3 Accept_Mode).
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state() == State::Master && (self.cfg.accept || self.effective == 255)
    }

    /// When [`Router::handle_timeout`] next has work to do, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Backup { master_down_at } => Some(master_down_at),
            Phase::Master { next_advert_at, garp } => [
                Some(next_advert_at),
                garp.second_burst_at,
                garp.lower_prio_burst_at,
                garp.refresh_at,
                garp.paced.map(|p| p.at),
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Initialize | Phase::Fault => None,
        }
    }

    // ----- inputs -----

    /// A packet arrived. `rx` says what `bytes` start with. Every packet is either accepted
    /// ([`Counters::adverts_received`]) or refused and counted under its [`Reject`] reason.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8], rx: Rx) {
        match self.check(bytes, rx) {
            Err(reason) => self.counters.reject(reason),
            Ok(heard) => {
                self.counters.adverts_received += 1;
                if heard.priority == 0 {
                    self.counters.priority_zero_received += 1;
                }
                match self.phase {
                    Phase::Backup { .. } => self.backup_rx(now, heard),
                    Phase::Master { .. } => self.master_rx(now, heard),
                    // `check` refuses packets in the other states.
                    Phase::Initialize | Phase::Fault => {}
                }
            }
        }
    }

    /// Time passed. Acts on the timers that are due at `now`; safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Backup { master_down_at } if now >= master_down_at => self.master_down_expired(now),
            Phase::Master {
                next_advert_at,
                mut garp,
            } => {
                let mut next = next_advert_at;
                if now >= next_advert_at {
                    self.queue_advert(self.effective);
                    next = now + self.advert_interval();
                }
                let g = self.cfg.garp;
                let mut repeat = 0u32;
                if garp.second_burst_at.is_some_and(|t| now >= t) {
                    garp.second_burst_at = None;
                    repeat += u32::from(g.master_repeat);
                }
                if garp.lower_prio_burst_at.is_some_and(|t| now >= t) {
                    garp.lower_prio_burst_at = None;
                    repeat += u32::from(g.lower_prio_repeat);
                }
                if garp.refresh_at.is_some_and(|t| now >= t) {
                    garp.refresh_at = Some(now + g.master_refresh);
                    repeat += u32::from(g.master_refresh_repeat);
                }
                self.phase = Phase::Master {
                    next_advert_at: next,
                    garp,
                };
                self.garp_burst(now, repeat);
                self.pace_garp(now);
            }
            _ => {}
        }
    }

    // ----- commands -----

    /// The RFC "Startup" event: leave Initialize. An address owner (priority 255) becomes
    /// master at once; `state MASTER` otherwise waits one advert interval plus the minimum
    /// skew (1/256 of the interval); `state BACKUP` waits a whole master-down interval
    /// (keepalived's `vrrp_init_state`). With a fault condition the router goes to Fault
    /// instead. In a sync group, becoming master is the group's decision. Calling it again
    /// while running does nothing.
    pub fn start(&mut self, now: Instant) {
        if self.phase != Phase::Initialize {
            return;
        }
        self.master_adver_cs = self.interval_cs;
        self.want_master = false;
        // keepalived arms preempt_time when the configuration is read, i.e. at startup.
        self.preempt_until = (!self.cfg.preempt_delay.is_zero()).then(|| now + self.cfg.preempt_delay);
        if self.fault_condition() {
            self.phase = Phase::Fault;
            self.push(Pending::State {
                from: State::Initialize,
                to: State::Fault,
            });
            return;
        }
        let start_master = self.cfg.start_state == StartState::Master;
        let owner = self.base == 255;
        if owner && start_master && !self.in_group {
            self.become_master(now);
            return;
        }
        let wait = if owner && start_master {
            Duration::ZERO
        } else if start_master {
            self.advert_interval() + Duration::from_micros(self.skew_us(1))
        } else {
            self.master_down_interval()
        };
        self.phase = Phase::Backup {
            master_down_at: now + wait,
        };
        self.push(Pending::State {
            from: State::Initialize,
            to: State::Backup,
        });
    }

    /// The RFC "Shutdown" event: a master sends a priority-0 advert (so that a backup takes
    /// over after its skew time) and gives up its VIPs; every state returns to Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        match self.phase {
            Phase::Initialize => return,
            Phase::Master { .. } => self.leave_master(now, State::Initialize),
            Phase::Backup { .. } | Phase::Fault => {
                let from = self.state();
                self.phase = Phase::Initialize;
                self.push(Pending::State {
                    from,
                    to: State::Initialize,
                });
            }
        }
        self.want_master = false;
    }

    /// Set a priority adjustment computed by the driver (added to the configured priority
    /// with the track weights; the sum is kept within 1..=254, an owner stays at 255).
    pub fn set_priority_delta(&mut self, _now: Instant, delta: i16) {
        self.delta = delta;
        self.recompute_priority();
    }

    /// A tracked object (track_script, track_interface, ...) changed. With a nonzero weight
    /// the priority moves; with weight 0 a failure sends the router to Fault (a master first
    /// sends a priority-0 advert and gives up its VIPs) and recovery brings it back. Unknown
    /// ids are ignored.
    pub fn set_track(&mut self, now: Instant, id: TrackId, ok: bool) {
        if usize::from(id.0) >= self.cfg.track_weights.len() {
            return;
        }
        if ok {
            self.track_ok |= 1 << id.0;
        } else {
            self.track_ok &= !(1 << id.0);
        }
        self.recompute_priority();
        self.update_fault(now);
    }

    /// The interface came up: leave Fault if nothing else holds the router there.
    pub fn interface_up(&mut self, now: Instant) {
        self.iface_up = true;
        self.update_fault(now);
    }

    /// The interface went down: go to Fault.
    pub fn interface_down(&mut self, now: Instant) {
        self.iface_up = false;
        self.update_fault(now);
    }

    // ----- outputs -----

    /// The next output, or `None` when there is nothing to do. Call until `None` after every
    /// input and command.
    pub fn poll_action(&mut self) -> Option<Action> {
        loop {
            let item = *self.queue.front()?;
            let (out, rest) = match item {
                Pending::State { from, to } => (Some(Action::StateChanged { from, to }), None),
                Pending::Vips { add, next } => match self.cfg.vips.get(usize::from(next)) {
                    Some(v) => {
                        let a = if add {
                            Action::AddVip(*v)
                        } else {
                            Action::RemoveVip(*v)
                        };
                        (Some(a), Some(Pending::Vips { add, next: next + 1 }))
                    }
                    None => (None, None),
                },
                Pending::Advert {
                    priority,
                    ip_id,
                    next_peer,
                } => {
                    let peers = &self.cfg.unicast_peers;
                    let i = usize::from(next_peer);
                    let last = i + 1 >= peers.len();
                    let pkt = if peers.is_empty() {
                        self.build_advert(priority, ip_id, None)
                    } else {
                        peers
                            .get(i)
                            .and_then(|p| self.build_advert(priority, ip_id, Some(*p)))
                    };
                    let rest = (!last).then_some(Pending::Advert {
                        priority,
                        ip_id,
                        next_peer: next_peer + 1,
                    });
                    (pkt.map(Action::SendAdvert), rest)
                }
                Pending::Garp { left, next_vip } => {
                    let n = self.vip_addrs.len();
                    match self.vip_addrs.get(usize::from(next_vip)) {
                        Some(vip) if left > 0 => {
                            let frame = self.build_gratuitous(*vip);
                            if frame.is_some() {
                                self.counters.gratuitous_sent += 1;
                            }
                            // n <= MAX_VIPS = 20, so the index fits a u8.
                            let next_vip = ((usize::from(next_vip) + 1) % n) as u8;
                            let rest = (left > 1).then_some(Pending::Garp {
                                left: left - 1,
                                next_vip,
                            });
                            (frame.map(Action::SendGratuitous), rest)
                        }
                        _ => (None, None),
                    }
                }
            };
            match rest {
                Some(r) => {
                    if let Some(front) = self.queue.front_mut() {
                        *front = r;
                    }
                }
                None => {
                    self.queue.pop_front();
                }
            }
            if out.is_some() {
                return out;
            }
        }
    }

    // ----- sync group hooks -----

    pub(crate) fn set_in_group(&mut self, yes: bool) {
        self.in_group = yes;
    }

    pub(crate) fn wants_master(&self) -> bool {
        self.want_master && matches!(self.phase, Phase::Backup { .. })
    }

    /// Fault because another member of the group failed (keepalived `vrrp_sync_fault`).
    pub(crate) fn force_fault(&mut self, now: Instant) {
        match self.phase {
            Phase::Master { .. } => self.leave_master(now, State::Fault),
            Phase::Backup { .. } => {
                self.phase = Phase::Fault;
                self.push(Pending::State {
                    from: State::Backup,
                    to: State::Fault,
                });
            }
            Phase::Initialize | Phase::Fault => {}
        }
        self.want_master = false;
    }

    /// The group has no failed member any more: leave Fault.
    pub(crate) fn release_fault(&mut self, now: Instant) {
        if self.phase == Phase::Fault && !self.fault_condition() {
            self.leave_fault(now);
        }
    }

    /// Another member left Master (keepalived `vrrp_sync_backup`).
    pub(crate) fn force_backup(&mut self, now: Instant) {
        if let Phase::Master { .. } = self.phase {
            self.master_adver_cs = self.interval_cs;
            self.leave_master(now, State::Backup);
        }
    }

    /// Another member became Master, or all want to (keepalived `vrrp_sync_master`).
    pub(crate) fn force_master(&mut self, now: Instant) {
        if let Phase::Backup { .. } = self.phase {
            self.become_master(now);
        }
    }

    // ----- internals -----

    /// RFC 5798 §7.1 checks in order, then keepalived's extra ones.
    fn check(&self, bytes: &[u8], rx: Rx) -> Result<Heard, Reject> {
        if !matches!(self.phase, Phase::Backup { .. } | Phase::Master { .. }) {
            return Err(Reject::NotRunning);
        }
        let (env, msg) = wire::parse_envelope(bytes, rx)?;
        let family = self.cfg.family();
        if Family::of(&env.src) != family || Family::of(&env.dst) != family {
            return Err(Reject::WrongFamily);
        }
        let unicast = !self.cfg.unicast_peers.is_empty();
        // keepalived checks the TTL only for multicast: unicast adverts may be routed.
        if !unicast && env.ttl.is_some_and(|t| t != TTL) {
            return Err(Reject::Ttl);
        }
        // The version decides the layout, so it is judged before the length (RFC order too).
        match msg.first() {
            None => return Err(Reject::TooShort),
            Some(b) if b >> 4 != self.cfg.version.number() => return Err(Reject::Version),
            Some(_) => {}
        }
        let adv = Advert::parse(msg, family)?;
        if adv.kind != TYPE_ADVERT {
            return Err(Reject::PacketType);
        }
        if !adv.checksum_ok(&env, self.cfg.v3_checksum_as_v2) {
            return Err(Reject::Checksum);
        }
        if adv.vrid != self.cfg.vrid {
            return Err(Reject::VridMismatch);
        }
        if usize::from(adv.count) != self.vip_addrs.len() {
            return Err(Reject::AddrCount);
        }
        match self.cfg.version {
            Version::V2 => {
                if adv.auth_type > AUTH_AH {
                    return Err(Reject::AuthTypeInvalid);
                }
                if adv.auth_type != self.cfg.auth.type_number() {
                    return Err(Reject::AuthTypeMismatch);
                }
                if let Auth::Pass(pw) = self.cfg.auth {
                    // Constant time, as keepalived's memcmp_constant_time.
                    let diff = pw
                        .iter()
                        .zip(adv.auth_data.iter())
                        .fold(0u8, |d, (a, b)| d | (a ^ b));
                    if diff != 0 {
                        return Err(Reject::AuthFailure);
                    }
                }
                // RFC 3768 §7.1: the interval MUST be ours, else discard.
                if adv.interval != self.interval_cs / 100 {
                    return Err(Reject::IntervalMismatch);
                }
            }
            Version::V3 => {
                if adv.interval == 0 {
                    return Err(Reject::BadInterval);
                }
            }
        }
        if is_multicast(env.dst) == unicast {
            return Err(Reject::DstMismatch);
        }
        if !self.vip_addrs.iter().all(|v| adv.addresses().any(|a| a == *v)) {
            return Err(Reject::AddrList);
        }
        if unicast && self.cfg.check_unicast_src && !self.cfg.unicast_peers.iter().any(|p| p.addr == env.src)
        {
            return Err(Reject::UnicastSrc);
        }
        Ok(Heard {
            src: env.src,
            priority: adv.priority,
            interval: adv.interval,
        })
    }

    /// Backup receiving a valid advert (keepalived `vrrp_state_backup`).
    fn backup_rx(&mut self, now: Instant, heard: Heard) {
        if heard.priority == 0 {
            // The master is stepping down: take over after the skew time.
            self.phase = Phase::Backup {
                master_down_at: now + self.skew_time(),
            };
            return;
        }
        let preempt_held = !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|t| t > now);
        if self.cfg.nopreempt || heard.priority >= self.effective || preempt_held {
            if self.cfg.version == Version::V3 {
                self.master_adver_cs = heard.interval;
            }
            self.phase = Phase::Backup {
                master_down_at: now + self.master_down_interval(),
            };
            self.master = Some((heard.src, heard.priority));
            if !self.cfg.preempt_delay.is_zero() {
                if heard.priority >= self.effective {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                }
            }
            self.want_master = false;
        } else {
            // Preemption: let the master-down timer run out, then take over.
            self.counters.lower_priority_ignored += 1;
            self.master = Some((heard.src, heard.priority));
        }
    }

    /// Master receiving a valid advert (keepalived `vrrp_state_master_rx`).
    fn master_rx(&mut self, now: Instant, heard: Heard) {
        let theirs = compare_addr(heard.src, self.cfg.src);
        let higher = heard.priority > self.effective || (heard.priority == self.effective && theirs.is_gt());
        if heard.priority == 0 || (self.cfg.higher_prio_send_advert && higher) {
            self.send_advert_now(now);
            if heard.priority == 0 {
                return;
            }
        }
        if heard.priority == self.effective && self.effective == 255 && theirs.is_ne() {
            // Two address owners: keepalived reports a configuration error and lowers its own
            // priority to 254; from then on the ordinary rules (and the address tie-break)
            // settle who is master.
            self.base = 254;
            self.recompute_priority();
        }
        let higher = heard.priority > self.effective || (heard.priority == self.effective && theirs.is_gt());
        if heard.priority < self.effective || (heard.priority == self.effective && theirs.is_lt()) {
            // A lower-priority router thinks it is master: assert ourselves.
            if !self.cfg.lower_prio_no_advert {
                self.send_advert_now(now);
            }
            let g = self.cfg.garp;
            if g.lower_prio_repeat > 0 {
                self.garp_burst(now, u32::from(g.lower_prio_repeat));
                if let Phase::Master { garp, .. } = &mut self.phase
                    && !g.lower_prio_delay.is_zero()
                {
                    garp.lower_prio_burst_at = Some(now + g.lower_prio_delay);
                }
            }
        } else if higher {
            if self.cfg.version == Version::V3 {
                self.master_adver_cs = heard.interval;
            }
            self.master = Some((heard.src, heard.priority));
            self.leave_master(now, State::Backup);
        }
    }

    fn master_down_expired(&mut self, now: Instant) {
        if self.in_group {
            // keepalived `vrrp_sync_can_goto_master`: wait for the rest of the group.
            self.want_master = true;
            self.phase = Phase::Backup {
                master_down_at: now + self.master_down_interval(),
            };
        } else {
            self.become_master(now);
        }
    }

    fn become_master(&mut self, now: Instant) {
        let from = self.state();
        self.master_adver_cs = self.interval_cs;
        self.want_master = false;
        self.master = None;
        let g = self.cfg.garp;
        let garp = GarpTimers {
            second_burst_at: (!g.master_delay.is_zero()).then(|| now + g.master_delay),
            lower_prio_burst_at: None,
            refresh_at: (!g.master_refresh.is_zero()).then(|| now + g.master_refresh),
            paced: None,
        };
        self.phase = Phase::Master {
            next_advert_at: now + self.advert_interval(),
            garp,
        };
        self.counters.became_master += 1;
        // keepalived's order: VIPs, gratuitous ARPs, notify, then the advert.
        self.push(Pending::State {
            from,
            to: State::Master,
        });
        self.push(Pending::Vips { add: true, next: 0 });
        self.garp_burst(now, u32::from(g.master_repeat));
        self.queue_advert(self.effective);
    }

    /// Leave Master for `to`: to Fault or Initialize with a priority-0 advert first.
    fn leave_master(&mut self, now: Instant, to: State) {
        self.counters.released_master += 1;
        self.push(Pending::State {
            from: State::Master,
            to,
        });
        if to != State::Backup {
            self.queue_advert(0);
        }
        self.push(Pending::Vips { add: false, next: 0 });
        self.preempt_until = None;
        self.phase = match to {
            State::Backup => Phase::Backup {
                master_down_at: now + self.master_down_interval(),
            },
            State::Fault => Phase::Fault,
            State::Initialize | State::Master => Phase::Initialize,
        };
    }

    fn leave_fault(&mut self, now: Instant) {
        self.master_adver_cs = self.interval_cs;
        self.preempt_until = None;
        let owner_master = self.base == 255 && self.cfg.start_state == StartState::Master;
        if owner_master && !self.in_group {
            self.become_master(now);
            return;
        }
        let wait = if owner_master {
            Duration::ZERO
        } else {
            self.master_down_interval()
        };
        self.phase = Phase::Backup {
            master_down_at: now + wait,
        };
        self.push(Pending::State {
            from: State::Fault,
            to: State::Backup,
        });
    }

    fn update_fault(&mut self, now: Instant) {
        let fault = self.fault_condition();
        match self.phase {
            Phase::Backup { .. } if fault => {
                self.phase = Phase::Fault;
                self.want_master = false;
                self.push(Pending::State {
                    from: State::Backup,
                    to: State::Fault,
                });
            }
            Phase::Master { .. } if fault => self.leave_master(now, State::Fault),
            // In a sync group the group decides when members leave Fault together.
            Phase::Fault if !fault && !self.in_group => self.leave_fault(now),
            _ => {}
        }
    }

    fn recompute_priority(&mut self) {
        let new = if self.base == 255 {
            255
        } else {
            let mut total = i32::from(self.base) + i32::from(self.delta);
            for (i, w) in self.cfg.track_weights.iter().enumerate() {
                let ok = self.track_ok & (1 << i) != 0;
                if (*w > 0 && ok) || (*w < 0 && !ok) {
                    total += i32::from(*w);
                }
            }
            // Clamped to 1..=254 just above.
            total.clamp(1, 254) as u8
        };
        if new == self.effective {
            return;
        }
        let old_skew = self.skew_time();
        self.effective = new;
        let new_skew = self.skew_time();
        if let Phase::Backup { master_down_at } = &mut self.phase {
            // The skew is part of the running master-down timer: move it by the difference.
            let at = master_down_at
                .as_nanos()
                .saturating_add(nanos(new_skew))
                .saturating_sub(nanos(old_skew));
            *master_down_at = Instant::from_nanos(at);
        }
    }

    fn send_advert_now(&mut self, now: Instant) {
        self.queue_advert(self.effective);
        if let Phase::Master { next_advert_at, .. } = &mut self.phase {
            *next_advert_at = now + centis(self.interval_cs);
        }
    }

    fn queue_advert(&mut self, priority: u8) {
        // keepalived: "kernel will fill in ID if left to 0, so we overflow to 1".
        self.ip_id = self.ip_id.wrapping_add(1);
        if self.ip_id == 0 {
            self.ip_id = 1;
        }
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        self.push(Pending::Advert {
            priority,
            ip_id: self.ip_id,
            next_peer: 0,
        });
    }

    /// Queue `repeat` rounds of one frame per VIP, back to back or paced by `garp_interval`.
    fn garp_burst(&mut self, now: Instant, repeat: u32) {
        // At most MAX_VIPS = 20.
        let frames = repeat.saturating_mul(self.vip_addrs.len() as u32);
        if frames == 0 {
            return;
        }
        if self.cfg.garp.interval.is_zero() {
            self.push(Pending::Garp {
                left: frames,
                next_vip: 0,
            });
            return;
        }
        if let Phase::Master { garp, .. } = &mut self.phase {
            match &mut garp.paced {
                Some(p) => p.left = p.left.saturating_add(frames),
                None => {
                    garp.paced = Some(Paced {
                        left: frames,
                        next_vip: 0,
                        at: now,
                    })
                }
            }
        }
        self.pace_garp(now);
    }

    fn pace_garp(&mut self, now: Instant) {
        let n = self.vip_addrs.len();
        let interval = self.cfg.garp.interval;
        let mut due = None;
        if let Phase::Master { garp, .. } = &mut self.phase
            && let Some(p) = &mut garp.paced
            && now >= p.at
            && n > 0
        {
            due = Some(p.next_vip);
            p.left = p.left.saturating_sub(1);
            // n <= MAX_VIPS = 20.
            p.next_vip = ((usize::from(p.next_vip) + 1) % n) as u8;
            p.at = now + interval;
            if p.left == 0 {
                garp.paced = None;
            }
        }
        if let Some(next_vip) = due {
            self.push(Pending::Garp { left: 1, next_vip });
        }
    }

    fn push(&mut self, item: Pending) {
        if self.queue.push_back(item).is_err() {
            self.counters.actions_dropped += 1;
        }
    }

    fn src_mac(&self) -> [u8; 6] {
        match self.cfg.source_mac {
            SourceMac::Interface(mac) => mac,
            SourceMac::Virtual => {
                let kind = match self.cfg.family() {
                    Family::V4 => 0x01,
                    Family::V6 => 0x02,
                };
                [0x00, 0x00, 0x5e, 0x00, kind, self.cfg.vrid]
            }
        }
    }

    fn build_advert(&self, priority: u8, ip_id: u16, peer: Option<Peer>) -> Option<AdvertPacket> {
        let family = self.cfg.family();
        let (dst, dst_mac) = match (peer, family) {
            (Some(p), _) => (p.addr, p.mac),
            (None, Family::V4) => (IpAddr::V4(MCAST_V4), Some(MCAST_MAC_V4)),
            (None, Family::V6) => (IpAddr::V6(MCAST_V6), Some(MCAST_MAC_V6)),
        };
        let interval = match self.cfg.version {
            Version::V2 => self.interval_cs / 100,
            Version::V3 => self.interval_cs,
        };
        let repr = AdvertRepr {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval,
            addrs: &self.vip_addrs,
            auth: self.cfg.auth,
        };
        let tx = TxEnvelope {
            src_mac: self.src_mac(),
            dst_mac: dst_mac.unwrap_or([0; 6]),
            src: self.cfg.src,
            dst,
            ip_id,
            flow_label: self.cfg.flow_label,
            v3_checksum_as_v2: self.cfg.v3_checksum_as_v2,
        };
        let mut pkt = AdvertPacket::empty(dst, priority);
        let len = wire::emit_advert(&repr, &tx, &mut pkt.buf)?;
        pkt.len = u16::try_from(len).ok()?;
        // Both header lengths fit a u8.
        pkt.ip_header_len = match family {
            Family::V4 => IPV4_LEN as u8,
            Family::V6 => IPV6_LEN as u8,
        };
        pkt.link = dst_mac.is_some();
        Some(pkt)
    }

    fn build_gratuitous(&self, vip: IpAddr) -> Option<GratuitousFrame> {
        let mut frame = GratuitousFrame {
            buf: [0; super::garp::NA_LEN],
            len: 0,
            vip,
        };
        let len = match vip {
            IpAddr::V4(v4) => emit_garp(&mut frame.buf, self.src_mac(), v4)?,
            IpAddr::V6(v6) => emit_unsolicited_na(&mut frame.buf, self.src_mac(), v6, self.cfg.ipv6_router)?,
        };
        frame.len = u8::try_from(len).ok()?;
        Some(frame)
    }

    fn skew_us(&self, weight: u64) -> u64 {
        match self.cfg.version {
            Version::V2 => weight * 1_000_000 / 256,
            // (256 - prio) × centiseconds × 10 000 µs / 256, reduced as keepalived does.
            Version::V3 => weight * u64::from(self.master_adver_cs) * 625 / 16,
        }
    }
}

fn centis(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn is_multicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

/// How the sender's address compares with ours, numerically (the tie-break of RFC 5798
/// §6.4.3: the higher primary address wins).
fn compare_addr(theirs: IpAddr, ours: IpAddr) -> Ordering {
    match (theirs, ours) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets().cmp(&b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets().cmp(&b.octets()),
        // `check` refuses the other family; order it arbitrarily but consistently.
        (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use super::*;
    use crate::vrrp::config::{GarpConfig, Vip};
    use crate::vrrp::wire::{MCAST_MAC_V4, emit_advert};

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    const VIP_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    const VIP_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101));

    fn cfg() -> Config {
        Config::new(Version::V3, 7, ME).vip(VIP_A, 24).vip(VIP_B, 24)
    }

    /// An advert for VRID 7 with both VIPs, as another router would send it.
    fn advert(from: IpAddr, priority: u8) -> ([u8; 64], usize) {
        let addrs = [VIP_A, VIP_B];
        let repr = AdvertRepr {
            version: Version::V3,
            vrid: 7,
            priority,
            interval: 100,
            addrs: &addrs,
            auth: Auth::None,
        };
        let tx = TxEnvelope {
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: MCAST_MAC_V4,
            src: from,
            dst: IpAddr::V4(MCAST_V4),
            ip_id: 9,
            flow_label: 0,
            v3_checksum_as_v2: false,
        };
        let mut buf = [0u8; 64];
        let len = emit_advert(&repr, &tx, &mut buf).unwrap();
        (buf, len)
    }

    fn drain(r: &mut Router) -> heapless::Vec<Action, 64> {
        let mut out = heapless::Vec::new();
        while let Some(a) = r.poll_action() {
            out.push(a).unwrap();
        }
        out
    }

    fn master(config: Config) -> (Router, Instant) {
        let mut r = Router::new(config).unwrap();
        r.start(Instant::ZERO);
        if r.state() == State::Master {
            return (r, Instant::ZERO);
        }
        assert_eq!(
            r.poll_action(),
            Some(Action::StateChanged {
                from: State::Initialize,
                to: State::Backup
            })
        );
        let t = r.poll_timeout().unwrap();
        r.handle_timeout(t);
        assert_eq!(r.state(), State::Master);
        (r, t)
    }

    fn kinds(actions: &[Action]) -> heapless::Vec<char, 64> {
        actions
            .iter()
            .map(|a| match a {
                Action::StateChanged { .. } => 'S',
                Action::AddVip(_) => '+',
                Action::RemoveVip(_) => '-',
                Action::SendAdvert(p) if p.priority() == 0 => '0',
                Action::SendAdvert(_) => 'A',
                Action::SendGratuitous(_) => 'g',
            })
            .collect()
    }

    #[test]
    fn becoming_master_follows_keepalived_order() {
        let mut r = Router::new(cfg()).unwrap();
        r.start(Instant::ZERO);
        let started = drain(&mut r);
        assert_eq!(
            started.as_slice(),
            &[Action::StateChanged {
                from: State::Initialize,
                to: State::Backup
            }]
        );
        // 3 s + (256 - 100) × 100 cs × 625 / 16 µs.
        assert_eq!(r.poll_timeout(), Some(Instant::from_nanos(3_609_375_000)));
        r.handle_timeout(Instant::from_nanos(3_609_375_000));
        let out = drain(&mut r);
        assert_eq!(
            kinds(&out).as_slice(),
            &[
                'S', '+', '+', 'g', 'g', 'g', 'g', 'g', 'g', 'g', 'g', 'g', 'g', 'A'
            ]
        );
        assert_eq!(
            out[0],
            Action::StateChanged {
                from: State::Backup,
                to: State::Master
            }
        );
        assert_eq!(
            out[1],
            Action::AddVip(Vip {
                addr: VIP_A,
                prefix_len: 24
            })
        );
        // Rounds over the VIPs: A, B, A, B, ...
        let vips: heapless::Vec<IpAddr, 10> = out[3..13]
            .iter()
            .map(|a| match a {
                Action::SendGratuitous(g) => g.vip(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(&vips[..4], &[VIP_A, VIP_B, VIP_A, VIP_B]);
        assert_eq!(r.counters().became_master, 1);
        assert_eq!(r.counters().gratuitous_sent, 10);
    }

    #[test]
    fn spurious_timeouts_change_nothing() {
        let mut r = Router::new(cfg()).unwrap();
        r.start(Instant::ZERO);
        drain(&mut r);
        let due = r.poll_timeout().unwrap();
        for ms in [0, 1, 1000, 3000, 3609] {
            r.handle_timeout(Instant::from_millis(ms));
            assert_eq!(r.state(), State::Backup);
            assert_eq!(r.poll_action(), None);
            assert_eq!(r.poll_timeout(), Some(due));
        }
        r.handle_timeout(due);
        r.handle_timeout(due);
        let out = drain(&mut r);
        assert_eq!(
            out.iter().filter(|a| matches!(a, Action::SendAdvert(_))).count(),
            1
        );
        // In Master, early calls send nothing either.
        r.handle_timeout(due + Duration::from_millis(999));
        assert_eq!(r.poll_action(), None);
        assert_eq!(r.poll_timeout(), Some(due + Duration::from_secs(1)));
        // Nor does anything happen in Initialize or Fault.
        let mut idle = Router::new(cfg()).unwrap();
        idle.handle_timeout(Instant::FAR_FUTURE);
        assert_eq!(
            (idle.state(), idle.poll_timeout(), idle.poll_action()),
            (State::Initialize, None, None)
        );
    }

    #[test]
    fn the_second_garp_burst_and_refreshes_follow_their_timers() {
        let garp = GarpConfig {
            master_refresh: Duration::from_secs(60),
            ..GarpConfig::default()
        };
        let (mut r, t) = master(cfg().garp(garp));
        drain(&mut r);
        let mut gratuitous_at = heapless::Vec::<(u64, usize), 16>::new();
        let end = t + Duration::from_secs(130);
        while let Some(next) = r.poll_timeout().filter(|n| *n <= end) {
            r.handle_timeout(next);
            let n = drain(&mut r)
                .iter()
                .filter(|a| matches!(a, Action::SendGratuitous(_)))
                .count();
            if n > 0 {
                gratuitous_at.push(((next - t).as_secs(), n)).unwrap();
            }
        }
        // garp_master_delay 5 s: 5 rounds of 2 VIPs; refresh every 60 s: 1 round.
        assert_eq!(gratuitous_at.as_slice(), &[(5, 10), (60, 2), (120, 2)]);
    }

    #[test]
    fn garp_interval_spaces_the_frames() {
        let garp = GarpConfig {
            interval: Duration::from_millis(10),
            master_delay: Duration::ZERO,
            ..Default::default()
        };
        let (mut r, t) = master(cfg().garp(garp));
        let first = drain(&mut r);
        assert_eq!(kinds(&first).as_slice(), &['S', '+', '+', 'g', 'A']);
        let mut times = heapless::Vec::<u64, 16>::new();
        while let Some(next) = r.poll_timeout().filter(|n| *n < t + Duration::from_millis(500)) {
            r.handle_timeout(next);
            for a in drain(&mut r) {
                if let Action::SendGratuitous(_) = a {
                    times.push((next - t).as_millis() as u64).unwrap();
                }
            }
        }
        assert_eq!(times.as_slice(), &[10, 20, 30, 40, 50, 60, 70, 80, 90]);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (mut r, t) = master(cfg());
        for s in 1..200 {
            r.handle_timeout(t + Duration::from_secs(s));
        }
        assert!(r.counters().actions_dropped > 0);
        let out = drain(&mut r);
        assert!(!out.is_empty() && out.len() <= 64);
        assert_eq!(r.poll_action(), None);
    }

    #[test]
    fn a_master_answers_priority_zero_and_lower_priorities() {
        let (mut r, t) = master(cfg());
        drain(&mut r);
        let now = t + Duration::from_millis(300);
        let (zero, len) = advert(PEER, 0);
        r.handle_packet(now, &zero[..len], Rx::Ethernet);
        assert_eq!(kinds(&drain(&mut r)).as_slice(), &['A']);
        assert_eq!(r.poll_timeout(), Some(now + Duration::from_secs(1)));
        assert_eq!(r.counters().priority_zero_received, 1);

        // A lower priority: an advert, 5 rounds of gratuitous ARP now and 5 more in 5 s.
        let (low, len) = advert(PEER, 50);
        r.handle_packet(now, &low[..len], Rx::Ethernet);
        let out = drain(&mut r);
        assert_eq!(
            out.iter()
                .filter(|a| matches!(a, Action::SendGratuitous(_)))
                .count(),
            10
        );
        assert_eq!(kinds(&out)[0], 'A');
        assert_eq!(r.state(), State::Master);

        // A higher priority: step down, VIPs removed, no priority-0 advert.
        let (high, len) = advert(PEER, 200);
        r.handle_packet(now, &high[..len], Rx::Ethernet);
        assert_eq!(kinds(&drain(&mut r)).as_slice(), &['S', '-', '-']);
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.master(), Some((PEER, 200)));
        assert_eq!(r.poll_timeout(), Some(now + r.master_down_interval()));
    }

    #[test]
    fn equal_priority_goes_to_the_higher_address() {
        let (mut r, t) = master(cfg());
        drain(&mut r);
        let (same, len) = advert(PEER, 100);
        r.handle_packet(t, &same[..len], Rx::Ethernet);
        assert_eq!(r.state(), State::Backup, "10.0.0.2 > 10.0.0.1");
        let (mut r, t) = master(
            Config::new(Version::V3, 7, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)))
                .vip(VIP_A, 24)
                .vip(VIP_B, 24),
        );
        drain(&mut r);
        r.handle_packet(t, &same[..len], Rx::Ethernet);
        assert_eq!(r.state(), State::Master, "10.0.0.3 > 10.0.0.2");
    }

    #[test]
    fn two_address_owners_the_lower_address_steps_down_to_254() {
        let (mut r, t) = master(cfg().priority(255));
        assert_eq!(t, Instant::ZERO, "an owner does not wait");
        drain(&mut r);
        let (owner, len) = advert(PEER, 255);
        r.handle_packet(t, &owner[..len], Rx::Ethernet);
        assert_eq!(
            (r.base_priority(), r.priority(), r.state()),
            (254, 254, State::Backup)
        );
    }

    #[test]
    fn shutdown_from_every_state() {
        let (mut r, t) = master(cfg());
        drain(&mut r);
        r.shutdown(t);
        assert_eq!(kinds(&drain(&mut r)).as_slice(), &['S', '0', '-', '-']);
        assert_eq!(r.counters().priority_zero_sent, 1);
        r.shutdown(t);
        assert_eq!(r.poll_action(), None);
        // Restartable.
        r.start(t);
        assert_eq!(r.state(), State::Backup);
        r.shutdown(t);
        assert_eq!(kinds(&drain(&mut r)).as_slice(), &['S', 'S']);
        r.interface_down(t);
        r.start(t);
        assert_eq!(r.state(), State::Fault);
        r.shutdown(t);
        assert_eq!(r.state(), State::Initialize);
    }

    #[test]
    fn priority_changes_move_the_backup_timer_by_the_skew_difference() {
        let mut r = Router::new(cfg().track(50)).unwrap();
        assert_eq!(r.priority(), 150);
        r.start(Instant::ZERO);
        let before = r.poll_timeout().unwrap();
        let old_skew = r.skew_time();
        r.set_track(Instant::ZERO, TrackId(0), false);
        assert_eq!(r.priority(), 100);
        assert_eq!(r.poll_timeout().unwrap(), before + (r.skew_time() - old_skew));
        // Unknown ids are ignored.
        r.set_track(Instant::ZERO, TrackId(9), false);
        assert_eq!(
            (r.priority(), r.track_ok(TrackId(9)), r.track_ok(TrackId(0))),
            (100, None, Some(false))
        );
    }

    #[test]
    fn configuration_errors() {
        let v4 = |c: Config| Router::new(c).map(|_| ());
        assert_eq!(v4(Config::new(Version::V3, 0, ME)), Err(ConfigError::VridZero));
        assert_eq!(v4(cfg().priority(0)), Err(ConfigError::PriorityZero));
        let v2 = Config::new(Version::V2, 1, ME);
        assert_eq!(
            v4(v2.clone().advert_interval(Duration::from_millis(1500))),
            Err(ConfigError::BadInterval)
        );
        assert_eq!(
            v4(v2.clone().advert_interval(Duration::from_secs(256))),
            Err(ConfigError::BadInterval)
        );
        assert_eq!(
            v4(cfg().advert_interval(Duration::ZERO)),
            Err(ConfigError::BadInterval)
        );
        assert_eq!(
            v4(cfg().advert_interval(Duration::from_millis(40_960))),
            Err(ConfigError::BadInterval)
        );
        assert_eq!(v4(cfg().advert_interval(Duration::from_millis(40_950))), Ok(()));
        assert_eq!(
            v4(cfg().advert_interval(Duration::from_millis(15))),
            Err(ConfigError::BadInterval)
        );
        let ll: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(v4(Config::new(Version::V2, 1, ll)), Err(ConfigError::Ipv6NeedsV3));
        assert_eq!(v4(cfg().auth_pass(b"x")), Err(ConfigError::AuthNeedsV2));
        assert_eq!(v4(cfg().vip(ll, 64)), Err(ConfigError::FamilyMismatch));
        assert_eq!(v4(cfg().unicast_peer(ll)), Err(ConfigError::FamilyMismatch));
        let mut many = Config::new(Version::V3, 1, ME);
        for i in 0..=MAX_VIPS as u8 {
            many = many.vip(IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)), 24);
        }
        assert_eq!(v4(many), Err(ConfigError::TooMany));
        assert_eq!(v4(cfg().track(255)), Err(ConfigError::BadWeight));
        assert_eq!(
            v4(cfg().down_timer_adverts(0)),
            Err(ConfigError::BadDownTimerAdverts)
        );
    }

    #[test]
    fn keepalived_normalisations() {
        let r = Router::new(cfg().priority(255).nopreempt()).unwrap();
        assert!(!r.config().nopreempt);
        assert_eq!(r.config().start_state, StartState::Master);
        let r = Router::new(
            cfg()
                .start_state(StartState::Master)
                .nopreempt()
                .preempt_delay(Duration::from_secs(5)),
        )
        .unwrap();
        assert!(!r.config().nopreempt && r.config().preempt_delay.is_zero());
        let r = Router::new(cfg().nopreempt().preempt_delay(Duration::from_secs(5))).unwrap();
        assert!(r.config().nopreempt && r.config().preempt_delay.is_zero());
    }

    #[test]
    fn unicast_adverts_go_to_every_peer_with_one_ip_id() {
        let peer_mac = [2, 0, 0, 0, 0, 9];
        let third = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
        let (mut r, _) = master(
            cfg()
                .unicast_peer_with_mac(PEER, Some(peer_mac))
                .unicast_peer(third),
        );
        let adverts: heapless::Vec<AdvertPacket, 4> = drain(&mut r)
            .into_iter()
            .filter_map(|a| match a {
                Action::SendAdvert(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(adverts.len(), 2);
        assert_eq!((adverts[0].dst(), adverts[1].dst()), (PEER, third));
        assert_eq!(&adverts[0].frame().unwrap()[..6], &peer_mac);
        assert_eq!(adverts[1].frame(), None, "no MAC known: IP packet only");
        assert_eq!(adverts[0].ip()[4..6], adverts[1].ip()[4..6]);
        assert_eq!(adverts[0].ip()[8], 255);
        assert_eq!(r.counters().adverts_sent, 1);
    }
}
