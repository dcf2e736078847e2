//! The IPVS schedulers, with the kernel's exact semantics.
//!
//! Destinations of a service live in stable *slots* (`0..MAX_DESTS`); [`DestList::order`]
//! lists the live slots in the kernel's list order (index 0 = list head; `ipvsadm -a` inserts
//! at the head, like `list_add_rcu`). Every tie-break, every cursor and every table fill
//! follows that order, as in Linux 6.1 (`net/netfilter/ipvs/ip_vs_*.c`).
//!
//! [`SchedState`] holds the per-service state of one algorithm inline (no allocation, no
//! `dyn`): cursors for rr/wrr, the 256-bucket tables of sh/dh, the 4093-slot Maglev table of
//! mh and the destination-address caches of lblc/lblcr. The balancer tells it about every
//! change to the list through [`SchedState::dest_added`], [`SchedState::dest_updated`] and
//! [`SchedState::dest_removed`], which reproduce the kernel's `add_dest`/`upd_dest`/`del_dest`
//! hooks, and asks it for a destination with [`SchedState::schedule`].
//!
//! Guarantees: no panics on any packet or counter values, no allocation, bounded work per call
//! (at most a few passes over the list, or one fixed-size table rebuild in a hook).

use core::net::IpAddr;

use crate::rng::Rng;
use crate::service::{Sched, SchedFlags};
use crate::time::{Duration, Instant};

mod cache;
mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
#[cfg(test)]
mod testutil;
mod twos;
mod wlc;
mod wrr;

/// Most destinations one service can hold (slot indices fit a `u8`).
pub const MAX_DESTS: usize = 128;

/// A destination slot index within its service.
pub type DestSlot = u8;

/// Default `lblc_expiration` / `lblcr_expiration` sysctl: 24 hours.
pub const DEFAULT_CACHE_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);

/// What a scheduler knows of one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedDest {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Current weight (0 = quiesced).
    pub weight: i32,
    /// The last non-zero weight (mh builds its table from it so quiescing keeps the table).
    pub last_weight: i32,
    /// Active connections (TCP SYN_SENT, SYN_RECV, SYNACK, ESTABLISHED).
    pub active: u32,
    /// Inactive connections (every other state, and UDP).
    pub inactive: u32,
    /// IPVS's OVERLOAD flag (upper threshold reached).
    pub overloaded: bool,
}

impl SchedDest {
    /// A destination with no connections.
    pub const fn new(addr: IpAddr, port: u16, weight: i32) -> Self {
        SchedDest {
            addr,
            port,
            weight,
            last_weight: weight,
            active: 0,
            inactive: 0,
            overloaded: false,
        }
    }
    /// Weight > 0 and not overloaded.
    pub const fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
    /// `ip_vs_dest_conn_overhead`: `(active << 8) + inactive`.
    pub const fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
}

impl AsRef<SchedDest> for SchedDest {
    fn as_ref(&self) -> &SchedDest {
        self
    }
}

/// The destinations of one service as the scheduler sees them.
#[derive(Debug)]
pub struct DestList<'a, D: AsRef<SchedDest>> {
    /// Destinations by slot; only slots named in `order` are live.
    pub slots: &'a [D],
    /// Live slots in kernel list order (head first).
    pub order: &'a [DestSlot],
}

// Written by hand: the derive would require `D: Copy`, but the list only holds references.
impl<D: AsRef<SchedDest>> Clone for DestList<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: AsRef<SchedDest>> Copy for DestList<'_, D> {}

impl<'a, D: AsRef<SchedDest>> DestList<'a, D> {
    /// Number of live destinations.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether there are no destinations.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// The destination at list position `pos`, with its slot.
    pub fn at(&self, pos: usize) -> (DestSlot, &'a SchedDest) {
        let slot = self.order[pos];
        (slot, self.slots[usize::from(slot)].as_ref())
    }
    /// The destination in `slot`.
    pub fn slot(&self, slot: DestSlot) -> &'a SchedDest {
        self.slots[usize::from(slot)].as_ref()
    }
    /// The destination at list position `pos`, or `None` past the end (or for a slot number
    /// that `slots` does not hold).
    pub fn get(&self, pos: usize) -> Option<(DestSlot, &'a SchedDest)> {
        let slot = *self.order.get(pos)?;
        Some((slot, self.slots.get(usize::from(slot))?.as_ref()))
    }
    /// The destination data stored in `slot`, live or not.
    pub fn slot_data(&self, slot: DestSlot) -> Option<&'a SchedDest> {
        self.slots.get(usize::from(slot)).map(AsRef::as_ref)
    }
    /// The list position of `slot`, if it is live.
    pub fn position(&self, slot: DestSlot) -> Option<usize> {
        self.order.iter().position(|&s| s == slot)
    }
    /// The live destinations in list order, with their slots.
    pub fn iter(&self) -> impl Iterator<Item = (DestSlot, &'a SchedDest)> + use<'a, D> {
        let slots = self.slots;
        self.order
            .iter()
            .filter_map(move |&s| Some((s, slots.get(usize::from(s))?.as_ref())))
    }
}

/// The packet fields a scheduler may key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedPacket {
    /// Client address.
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual address the client connected to.
    pub daddr: IpAddr,
    /// Virtual port.
    pub dport: u16,
}

/// Where the large algorithm states (the lblc/lblcr caches, ~58 KiB; the mh table, 4 KiB)
/// live: on the heap, allocated when a service selects the algorithm, if there is an
/// allocator, so that every other service stays small (each service slot holds one
/// [`SchedState`]); inline otherwise, where the caller's storage has to hold them.
#[cfg(feature = "alloc")]
type Large<T> = alloc::boxed::Box<T>;
#[cfg(not(feature = "alloc"))]
type Large<T> = T;

/// Puts a freshly built large state where [`Large`] says. A macro, not a function: an
/// unoptimised build keeps a by-value argument and result of a function in its own frame,
/// which without an allocator would add two more copies of a ~58 KiB state to the stack of
/// every caller of [`SchedState::new`].
#[cfg(feature = "alloc")]
macro_rules! large {
    ($state:expr) => {
        alloc::boxed::Box::new($state)
    };
}
#[cfg(not(feature = "alloc"))]
macro_rules! large {
    ($state:expr) => {
        $state
    };
}

/// The state of one algorithm. Without an allocator the cache-backed variants make it large:
/// the state then has to live inline, once per service.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Algo {
    Rr(rr::Rr),
    Wrr(wrr::Wrr),
    Lc,
    Wlc,
    Lblc(Large<lblc::Lblc>),
    Lblcr(Large<lblcr::Lblcr>),
    Dh(dh::Dh),
    Sh(sh::Sh),
    Sed,
    Nq,
    Mh(Large<mh::Mh>),
    Fo,
    Ovf,
    Twos,
}

/// Per-service scheduler state.
#[derive(Clone, Debug)]
pub struct SchedState {
    kind: Sched,
    flags: SchedFlags,
    algo: Algo,
}

impl SchedState {
    /// Fresh state for `kind` with `flags`, for a service with no destinations yet (the
    /// kernel's `init_service` on an empty list).
    pub fn new(kind: Sched, flags: SchedFlags) -> Self {
        let algo = match kind {
            Sched::Rr => Algo::Rr(rr::Rr::new()),
            Sched::Wrr => Algo::Wrr(wrr::Wrr::new()),
            Sched::Lc => Algo::Lc,
            Sched::Wlc => Algo::Wlc,
            Sched::Lblc => Algo::Lblc(large!(lblc::Lblc::new())),
            Sched::Lblcr => Algo::Lblcr(large!(lblcr::Lblcr::new())),
            Sched::Dh => Algo::Dh(dh::Dh::new()),
            Sched::Sh => Algo::Sh(sh::Sh::new()),
            Sched::Sed => Algo::Sed,
            Sched::Nq => Algo::Nq,
            Sched::Mh => Algo::Mh(large!(mh::Mh::new())),
            Sched::Fo => Algo::Fo,
            Sched::Ovf => Algo::Ovf,
            Sched::Twos => Algo::Twos,
        };
        SchedState { kind, flags, algo }
    }

    /// State for `kind` bound to a service that already has the destinations of `list`: the
    /// kernel's `init_service`, as run when `ipvsadm -E` switches a service to another
    /// scheduler. This differs from replaying `dest_added` once per destination: wrr starts
    /// its first pass at the maximum weight instead of at 1.
    pub fn with_list<D: AsRef<SchedDest>>(kind: Sched, flags: SchedFlags, list: DestList<'_, D>) -> Self {
        let mut s = SchedState::new(kind, flags);
        match &mut s.algo {
            Algo::Wrr(w) => w.init(list),
            Algo::Sh(t) => t.reassign(list),
            Algo::Dh(t) => t.reassign(list),
            Algo::Mh(t) => t.dest_changed(),
            _ => {}
        }
        s
    }

    /// The algorithm.
    pub fn kind(&self) -> Sched {
        self.kind
    }
    /// The flags.
    pub fn flags(&self) -> SchedFlags {
        self.flags
    }
    /// Changes the flags and keeps the state, as the kernel does when `ipvsadm -E` changes
    /// only the flags (sh and mh read them on every packet).
    pub fn set_flags(&mut self, flags: SchedFlags) {
        self.flags = flags;
    }
    /// Sets how long an unused lblc/lblcr cache entry lives, and how long an lblcr set must be
    /// unchanged before it sheds its most loaded member (sysctls `lblc_expiration` and
    /// `lblcr_expiration`, default [`DEFAULT_CACHE_EXPIRATION`]). Other algorithms ignore it.
    pub fn set_cache_expiration(&mut self, expiration: Duration) {
        match &mut self.algo {
            Algo::Lblc(c) => c.set_expiration(expiration),
            Algo::Lblcr(c) => c.set_expiration(expiration),
            _ => {}
        }
    }
    /// `slot` was just inserted at the head of `list`.
    pub fn dest_added<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        match &mut self.algo {
            Algo::Wrr(w) => w.dest_changed(list),
            Algo::Sh(t) => t.reassign(list),
            Algo::Dh(t) => t.reassign(list),
            Algo::Mh(t) => t.dest_changed(),
            Algo::Lblc(c) => c.dest_added(list, slot),
            Algo::Lblcr(c) => c.dest_added(list, slot),
            // rr has no add hook: a destination added at the head is reached when the walk
            // wraps. The others keep no per-destination state.
            _ => {}
        }
    }
    /// The destination in `slot` changed (weight or thresholds).
    pub fn dest_updated<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        let _ = slot;
        match &mut self.algo {
            Algo::Wrr(w) => w.dest_changed(list),
            Algo::Sh(t) => t.reassign(list),
            Algo::Mh(t) => t.dest_changed(),
            // dh has no upd_dest hook (its table ignores weights); rr none either.
            _ => {}
        }
    }
    /// The destination in `slot`, formerly at list position `old_pos`, was removed; `list` no
    /// longer contains it, but `list.slots[slot]` must still describe it (lblc/lblcr keep
    /// referring to it like the kernel's cache entries keep a removed destination in the
    /// trash, and revive those references if it comes back).
    pub fn dest_removed<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        slot: DestSlot,
        old_pos: usize,
    ) {
        match &mut self.algo {
            Algo::Rr(r) => r.dest_removed(list, slot, old_pos),
            Algo::Wrr(w) => w.dest_changed(list),
            Algo::Sh(t) => t.reassign(list),
            Algo::Dh(t) => t.reassign(list),
            Algo::Mh(t) => t.dest_changed(),
            Algo::Lblc(c) => c.dest_removed(list, slot),
            Algo::Lblcr(c) => c.dest_removed(list, slot),
            _ => {}
        }
    }
    /// Picks a destination for a new connection, or `None` when no destination is usable.
    pub fn schedule<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
        now: Instant,
        rng: &mut Rng,
    ) -> Option<DestSlot> {
        match &mut self.algo {
            Algo::Rr(r) => r.schedule(list),
            Algo::Wrr(w) => w.schedule(list),
            Algo::Lc => lc::schedule(list),
            Algo::Wlc => wlc::schedule(list),
            Algo::Lblc(c) => c.schedule(list, pkt, now),
            Algo::Lblcr(c) => c.schedule(list, pkt, now),
            Algo::Dh(t) => t.schedule(list, pkt),
            Algo::Sh(t) => t.schedule(list, pkt, self.flags),
            Algo::Sed => sed::schedule(list),
            Algo::Nq => nq::schedule(list),
            Algo::Mh(t) => t.schedule(list, pkt, self.flags),
            Algo::Fo => fo::schedule(list),
            Algo::Ovf => ovf::schedule(list),
            Algo::Twos => twos::schedule(list, rng),
        }
    }
}

/// `a_overhead * b_weight > b_overhead * a_weight`, the kernel's division-free "a is more
/// loaded than b", computed wide enough that no counter or weight can overflow it.
#[inline(always)]
fn more_loaded(a_overhead: u64, a_weight: i32, b_overhead: u64, b_weight: i32) -> bool {
    if (a_overhead | b_overhead) >> 32 == 0 {
        // Both products fit in i64 exactly (|overhead × weight| < 2^32 · 2^31): the usual case,
        // without 128-bit multiplies in wlc's per-destination loop.
        (a_overhead as i64) * i64::from(b_weight) > (b_overhead as i64) * i64::from(a_weight)
    } else {
        i128::from(a_overhead) * i128::from(b_weight) > i128::from(b_overhead) * i128::from(a_weight)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn sched_state_size() {
        let size = core::mem::size_of::<SchedState>();
        std::println!("size_of::<SchedState>() = {size} bytes");
        assert!(size <= 64 * 1024, "SchedState is {size} bytes");
    }

    #[test]
    fn every_scheduler_returns_none_without_destinations() {
        for kind in Sched::ALL {
            let mut svc = Svc::new(kind, SchedFlags::FALLBACK);
            assert_eq!(svc.pick(&pkt("1.2.3.4", 1000)), None, "{kind:?}");
        }
    }

    #[test]
    fn every_scheduler_skips_weight_zero_and_overloaded() {
        for kind in Sched::ALL {
            let mut svc = Svc::new(kind, SchedFlags::FALLBACK);
            let a = svc.add("10.0.0.1", 80, 0);
            let b = svc.add("10.0.0.2", 80, 5);
            svc.update(b, |d| d.overloaded = true);
            // lblc keeps an OVERLOAD-flagged cached destination (it only checks its own
            // "active > weight" rule), but a fresh entry comes from the wlc pass which skips it.
            for i in 0..50u16 {
                let p = pkt_d(&std::format!("192.168.{}.{}", i % 7, i), 1000 + i, "10.9.9.9");
                assert_eq!(svc.pick(&p), None, "{kind:?}");
            }
            svc.update(b, |d| d.overloaded = false);
            for i in 0..50u16 {
                let p = pkt_d(&std::format!("192.168.{}.{}", i % 7, i), 1000 + i, "10.9.9.9");
                let got = svc.pick(&p);
                assert_ne!(got, Some(a), "{kind:?} picked a weight-0 destination");
                if !matches!(kind, Sched::Sh | Sched::Dh | Sched::Mh) {
                    assert_eq!(got, Some(b), "{kind:?}");
                }
            }
        }
    }

    #[test]
    fn with_list_matches_kernel_init_service() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        svc.add("10.0.0.1", 80, 4);
        svc.add("10.0.0.2", 80, 3);
        svc.add("10.0.0.3", 80, 2);
        // init_service starts at cw = mw = 4: only the weight-4 destination in the first pass.
        svc.state = SchedState::with_list(Sched::Wrr, SchedFlags::NONE, svc.list());
        let first = svc.pick(&pkt("1.1.1.1", 1));
        assert_eq!(first, Some(0));
        assert_eq!(svc.state.kind(), Sched::Wrr);
        svc.state.set_flags(SchedFlags::PORT);
        assert_eq!(svc.state.flags(), SchedFlags::PORT);
    }

    #[test]
    fn dest_list_accessors_are_bounds_checked() {
        let slots = [SchedDest::new(v4("10.0.0.1"), 80, 1)];
        let order = [0u8, 5];
        let list = DestList {
            slots: &slots[..],
            order: &order[..],
        };
        assert!(list.get(0).is_some());
        assert!(list.get(1).is_none());
        assert!(list.get(2).is_none());
        assert_eq!(list.iter().count(), 1);
        assert_eq!(list.position(5), Some(1));
        assert!(list.slot_data(5).is_none());
        let copy = list;
        assert_eq!(copy.len(), list.len());
    }
}
