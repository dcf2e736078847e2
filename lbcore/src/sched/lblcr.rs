//! `lblcr`: locality-based least connections with replication (`ip_vs_lblcr.c`).
//!
//! A cache maps the packet's destination address to a *set* of destinations (new members at
//! the head). On a hit, in this order, as the kernel does:
//! 1. refresh `lastuse` and take the set's weighted-least-connection member (first member that
//!    is in the service, not overloaded and has weight > 0, then strictly-less-loaded ones);
//! 2. if the set has more than one member and has not changed for longer than
//!    `lblcr_expiration` (24 h), erase its most loaded member (any member with weight > 0,
//!    removed ones included) — after step 1, so the member just chosen may be the one erased
//!    and is still used;
//! 3. use the chosen member unless there is none or it is overloaded in lblc's sense (`active >
//!    weight` while some destination is below half its weight); then take the service-wide
//!    weighted-least-connection destination and add it to the set.
//!
//! A miss creates an entry with the service-wide choice. Sets hold at most [`SET_CAP`]
//! members; adding to a full set is skipped, as the kernel skips it when it cannot allocate
//! the element (the destination is still used for this connection). Entries unused for
//! `lblcr_expiration` expire. See [`super::cache`] for the table and removed destinations.

use super::cache::{Cache, DestRef, Refs, is_live};
use super::lblc::is_overloaded;
use super::{DEFAULT_CACHE_EXPIRATION, DestList, DestSlot, SchedDest, SchedPacket, more_loaded, wlc};
use crate::time::{Duration, Instant};

/// Most members of one destination set.
pub(crate) const SET_CAP: usize = 15;

/// `struct ip_vs_dest_set`: members head first, and the time of the last change.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DestSet {
    lastmod: Instant,
    len: u8,
    members: [DestRef; SET_CAP],
}

impl Refs for DestSet {
    const EMPTY: Self = DestSet {
        lastmod: Instant::ZERO,
        len: 0,
        members: [0; SET_CAP],
    };
    fn refs(&self) -> &[DestRef] {
        &self.members[..usize::from(self.len).min(SET_CAP)]
    }
    fn refs_mut(&mut self) -> &mut [DestRef] {
        &mut self.members[..usize::from(self.len).min(SET_CAP)]
    }
}

impl DestSet {
    fn single(dest: DestSlot, now: Instant) -> Self {
        let mut s = DestSet::EMPTY;
        s.insert(dest, false, now);
        s
    }

    /// `ip_vs_dest_set_insert`: at the head, unless present (with `check`) or full.
    fn insert(&mut self, dest: DestSlot, check: bool, now: Instant) {
        if check && self.refs().contains(&dest) {
            return;
        }
        let len = usize::from(self.len);
        if len >= SET_CAP {
            return;
        }
        self.members.copy_within(0..len, 1);
        self.members[0] = dest;
        self.len += 1;
        self.lastmod = now;
    }

    /// `ip_vs_dest_set_erase` of the member at `idx`.
    fn erase(&mut self, idx: usize, now: Instant) {
        let len = usize::from(self.len).min(SET_CAP);
        if idx >= len {
            return;
        }
        self.members.copy_within(idx + 1..len, idx);
        self.len -= 1;
        self.lastmod = now;
    }

    /// `ip_vs_dest_set_min`: the weighted least loaded member in the service. Removed members
    /// never qualify (they are not `IP_VS_DEST_F_AVAILABLE`).
    fn min<D: AsRef<SchedDest>>(&self, list: DestList<'_, D>) -> Option<DestSlot> {
        let mut it = self
            .refs()
            .iter()
            .filter(|&&r| is_live(r))
            .filter_map(|&r| Some((r, list.slot_data(r)?)));
        let (mut least, mut lw, mut loh) = loop {
            let (r, d) = it.next()?;
            if !d.overloaded && d.weight > 0 {
                break (r, d.weight, d.overhead());
            }
        };
        for (r, d) in it {
            if d.overloaded {
                continue;
            }
            if more_loaded(loh, lw, d.overhead(), d.weight) {
                (least, lw, loh) = (r, d.weight, d.overhead());
            }
        }
        Some(least)
    }

    /// `ip_vs_dest_set_max`: index of the weighted most loaded member with weight > 0,
    /// removed members included.
    fn max<D: AsRef<SchedDest>>(&self, cache: &Cache<DestSet>, list: DestList<'_, D>) -> Option<usize> {
        let mut it = self
            .refs()
            .iter()
            .enumerate()
            .filter_map(|(i, &r)| Some((i, cache.view(r, list)?)));
        let (mut most, mut mw, mut moh) = loop {
            let (i, v) = it.next()?;
            if v.weight > 0 {
                break (i, v.weight, v.overhead);
            }
        };
        for (i, v) in it {
            // moh / mw < doh / dw, i.e. the member is more loaded than the current most.
            if v.weight > 0 && more_loaded(v.overhead, v.weight, moh, mw) {
                (most, mw, moh) = (i, v.weight, v.overhead);
            }
        }
        Some(most)
    }
}

/// The lblcr cache.
#[derive(Clone, Debug)]
pub(crate) struct Lblcr {
    cache: Cache<DestSet>,
}

impl Lblcr {
    pub(crate) const fn new() -> Self {
        Lblcr {
            cache: Cache::new(DEFAULT_CACHE_EXPIRATION),
        }
    }

    pub(crate) fn set_expiration(&mut self, expiration: Duration) {
        self.cache.expiration = expiration;
    }

    pub(crate) fn dest_added<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        self.cache.dest_added(list, slot);
    }

    pub(crate) fn dest_removed<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        self.cache.dest_removed(list, slot);
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
        now: Instant,
    ) -> Option<DestSlot> {
        let Some(i) = self.cache.find(&pkt.daddr, now) else {
            let dest = wlc::schedule(list)?;
            self.cache.insert(pkt.daddr, now, DestSet::single(dest, now));
            return Some(dest);
        };
        self.cache.entry_mut(i).lastuse = now;
        let mut set = self.cache.entry_mut(i).val;
        let dest = set.min(list);
        if set.len > 1
            && now > set.lastmod.saturating_add(self.cache.expiration)
            && let Some(m) = set.max(&self.cache, list)
        {
            set.erase(m, now);
        }
        let chosen = match dest.and_then(|s| Some((s, list.slot_data(s)?))) {
            Some((s, d)) if !is_overloaded(d, list) => Some(s),
            _ => {
                let d = wlc::schedule(list);
                if let Some(d) = d {
                    set.insert(d, true, now);
                }
                d
            }
        };
        self.cache.entry_mut(i).val = set;
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    const DAY: u64 = 24 * 60 * 60;

    fn members(svc: &mut Svc, daddr: &str) -> std::vec::Vec<DestRef> {
        let now = svc.now;
        match &mut svc.state.algo {
            crate::sched::Algo::Lblcr(l) => match l.cache.find(&v4(daddr), now) {
                Some(i) => l.cache.entry_mut(i).val.refs().to_vec(),
                None => std::vec::Vec::new(),
            },
            _ => unreachable!(),
        }
    }

    /// A, B, C with weight 2, added in that order: list C, B, A.
    fn abc() -> (Svc, [DestSlot; 3]) {
        let mut svc = Svc::new(Sched::Lblcr, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 2);
        let b = svc.add("10.1.0.2", 80, 2);
        let c = svc.add("10.1.0.3", 80, 2);
        (svc, [a, b, c])
    }

    const X: &str = "203.0.113.1";

    #[test]
    fn set_grows_when_its_best_member_is_overloaded() {
        let (mut svc, [a, b, c]) = abc();
        let x = pkt_d("1.1.1.1", 1, X);
        assert_eq!(svc.pick(&x), Some(c));
        assert_eq!(members(&mut svc, X), [c]);
        // C at 3 active > 2 while A is idle (0 * 2 < 2): wlc over the service picks B, which
        // joins the set at the head.
        svc.counters(c, 3, 0);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b, c]);
        // Now the set's least loaded member is used; the set does not change.
        svc.counters(b, 1, 0);
        assert_eq!(svc.pick(&x), Some(b));
        svc.counters(c, 0, 0);
        assert_eq!(svc.pick(&x), Some(c));
        assert_eq!(members(&mut svc, X), [b, c]);
        // Both members past their weight and A below half: A joins.
        svc.counters(b, 3, 0);
        svc.counters(c, 3, 0);
        assert_eq!(svc.pick(&x), Some(a));
        assert_eq!(members(&mut svc, X), [a, b, c]);
        // Over the limit but nobody below half: keep using the member.
        svc.counters(a, 3, 0);
        assert_eq!(svc.pick(&x), Some(a));
        assert_eq!(members(&mut svc, X), [a, b, c]);
    }

    #[test]
    fn unchanged_set_sheds_its_most_loaded_member_after_expiration() {
        let (mut svc, [_a, b, c]) = abc();
        let x = pkt_d("1.1.1.1", 1, X);
        svc.pick(&x);
        svc.counters(c, 3, 0);
        assert_eq!(svc.pick(&x), Some(b));
        let t0 = svc.now;
        assert_eq!(members(&mut svc, X), [b, c]);
        svc.counters(b, 1, 0);
        svc.counters(c, 2, 0);
        // The entry is in use (which keeps it from expiring) but the set does not change.
        svc.now = t0 + Duration::from_secs(DAY / 2);
        assert_eq!(svc.pick(&x), Some(b));
        // Exactly lblcr_expiration after the last change: not yet (time_after is strict).
        svc.now = t0 + Duration::from_secs(DAY);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b, c]);
        // One nanosecond later C (512/2 > 256/2) is erased; B is still the choice.
        svc.now = svc.now + Duration::from_nanos(1);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b]);
        // A single member is never shed.
        svc.now = svc.now + Duration::from_secs(DAY / 2);
        assert_eq!(svc.pick(&x), Some(b));
        svc.now = svc.now + Duration::from_secs(DAY / 2 + 1);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b]);
    }

    #[test]
    fn member_chosen_before_shedding_is_used_even_if_shed() {
        let (mut svc, [_a, b, c]) = abc();
        let x = pkt_d("1.1.1.1", 1, X);
        svc.pick(&x);
        svc.counters(c, 3, 0);
        assert_eq!(svc.pick(&x), Some(b));
        // Equal loads: min is the head (B) and so is max (first with weight > 0).
        svc.counters(b, 1, 0);
        svc.counters(c, 1, 0);
        svc.now = svc.now + Duration::from_secs(DAY / 2);
        assert_eq!(svc.pick(&x), Some(b));
        svc.now = svc.now + Duration::from_secs(DAY / 2 + 1);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [c]);
    }

    #[test]
    fn entry_expires_when_unused() {
        let (mut svc, [_a, b, c]) = abc();
        let x = pkt_d("1.1.1.1", 1, X);
        assert_eq!(svc.pick(&x), Some(c));
        svc.counters(c, 1, 0);
        svc.now = svc.now + Duration::from_secs(DAY - 1);
        assert_eq!(svc.pick(&x), Some(c));
        svc.now = svc.now + Duration::from_secs(DAY);
        // Gone: wlc over the service, B is the first idle one after C.
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b]);
    }

    #[test]
    fn removed_member_stays_in_the_set_until_shed_or_revived() {
        let (mut svc, [a, b, c]) = abc();
        let x = pkt_d("1.1.1.1", 1, X);
        svc.pick(&x);
        svc.counters(c, 3, 0);
        assert_eq!(svc.pick(&x), Some(b));
        svc.counters(c, 0, 0);
        svc.counters(b, 1, 0);
        // C leaves: it is skipped by the min (B is used even though C was idle)...
        svc.remove(c);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X).len(), 2);
        // ... and comes back as itself when re-added.
        let c2 = svc.add("10.1.0.3", 80, 2);
        assert_eq!(members(&mut svc, X), [b, c2]);
        assert_eq!(svc.pick(&x), Some(c2));
        // Removed again, with connections still counted on it: after the expiration it is the
        // most loaded (768/2 against B's 256/2) and is shed.
        svc.counters(c2, 3, 0);
        svc.remove(c2);
        svc.now = svc.now + Duration::from_secs(DAY / 2);
        assert_eq!(svc.pick(&x), Some(b));
        svc.now = svc.now + Duration::from_secs(DAY / 2 + 1);
        assert_eq!(svc.pick(&x), Some(b));
        assert_eq!(members(&mut svc, X), [b]);
        let _ = a;
    }

    #[test]
    fn full_set_skips_insertion_but_still_schedules() {
        let mut svc = Svc::new(Sched::Lblcr, SchedFlags::NONE);
        let slots: std::vec::Vec<_> = (0..20)
            .map(|i| svc.add(&std::format!("10.4.0.{}", i + 1), 80, 1))
            .collect();
        let x = pkt_d("1.1.1.1", 1, X);
        // Keep one destination idle (the last added, the list head, gets picked first).
        let idle_probe = *slots.first().unwrap();
        for _ in 0..19 {
            let got = svc.pick(&x).unwrap();
            // Make the chosen member overloaded so the next call grows the set.
            svc.counters(got, 2, 0);
        }
        let m = members(&mut svc, X);
        assert_eq!(m.len(), SET_CAP);
        // The set is full and every member overloaded; the service-wide choice is still made.
        let got = svc.pick(&x).unwrap();
        assert!(!m.contains(&got));
        assert_eq!(members(&mut svc, X), m);
        let _ = idle_probe;
    }
}
