//! `lblc`: locality-based least connections (`ip_vs_lblc.c`).
//!
//! A cache maps the packet's *destination* address to a destination. A cached destination is
//! kept while it is in the service, has weight > 0 and is not "overloaded" in lblc's own sense:
//! `active > weight` **and** some destination of the service has `active * 2 < weight`. (Like
//! the kernel, the IPVS OVERLOAD flag is not checked for the cached destination.) Otherwise
//! the service-wide weighted least connection destination is chosen and stored in the entry.
//! Every lookup refreshes the entry's `lastuse`; an entry unused for `lblc_expiration` (24 h)
//! expires. See [`super::cache`] for the fixed-size table and for removed destinations.

use super::cache::{Cache, DestRef, Refs, is_live};
use super::{DEFAULT_CACHE_EXPIRATION, DestList, DestSlot, SchedDest, SchedPacket, wlc};
use crate::time::{Duration, Instant};

impl Refs for DestRef {
    const EMPTY: Self = 0;
    fn refs(&self) -> &[DestRef] {
        core::slice::from_ref(self)
    }
    fn refs_mut(&mut self) -> &mut [DestRef] {
        core::slice::from_mut(self)
    }
}

/// lblc and lblcr's `is_overloaded`: more active connections than the weight while some
/// destination of the service is below half its weight.
pub(crate) fn is_overloaded<D: AsRef<SchedDest>>(dest: &SchedDest, list: DestList<'_, D>) -> bool {
    i64::from(dest.active) > i64::from(dest.weight)
        && list
            .iter()
            .any(|(_, d)| i64::from(d.active) * 2 < i64::from(d.weight))
}

/// The lblc cache.
#[derive(Clone, Debug)]
pub(crate) struct Lblc {
    cache: Cache<DestRef>,
}

impl Lblc {
    pub(crate) const fn new() -> Self {
        Lblc {
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
        let found = self.cache.find(&pkt.daddr, now);
        if let Some(i) = found {
            let e = self.cache.entry_mut(i);
            e.lastuse = now;
            let r = e.val;
            let keep = |d: &&SchedDest| d.weight > 0 && !is_overloaded(d, list);
            if is_live(r) && list.slot_data(r).filter(keep).is_some() {
                return Some(r);
            }
        }
        let dest = wlc::schedule(list)?;
        match found {
            Some(i) => self.cache.entry_mut(i).val = dest,
            None => {
                self.cache.insert(pkt.daddr, now, dest);
            }
        }
        Some(dest)
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};
    use crate::time::{Duration, Instant};

    const DAY: u64 = 24 * 60 * 60;

    /// A (weight 4) and B (weight 4), added in that order: list B, A.
    fn two() -> (Svc, u8, u8) {
        let mut svc = Svc::new(Sched::Lblc, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 4);
        let b = svc.add("10.1.0.2", 80, 4);
        (svc, a, b)
    }

    #[test]
    fn cache_hit_keeps_the_destination_for_that_address() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        let y = pkt_d("1.1.1.1", 1, "203.0.113.2");
        // Both idle: wlc picks the head, B, for X.
        assert_eq!(svc.connect(&x), Some(b));
        // Y: B has 1 active, so wlc now picks A.
        assert_eq!(svc.connect(&y), Some(a));
        // X stays on B and Y on A, whoever the client is, up to B's weight (4 active)...
        for i in 0..3 {
            assert_eq!(
                svc.connect(&pkt_d(&std::format!("9.9.9.{i}"), 7, "203.0.113.1")),
                Some(b)
            );
        }
        assert_eq!(svc.slots[usize::from(b)].active, 4);
        // ... and at 4 active (not > 4) still B.
        assert_eq!(svc.connect(&x), Some(b));
    }

    #[test]
    fn overload_rule_switches_only_when_someone_is_below_half() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        assert_eq!(svc.pick(&x), Some(b));
        // B at 5 active > 4, A at 2 active: 2 * 2 < 4 is false -> nobody at half: keep B.
        svc.counters(b, 5, 0);
        svc.counters(a, 2, 0);
        assert_eq!(svc.pick(&x), Some(b));
        // A at 1 active: 1 * 2 < 4 -> overloaded -> wlc (A: 256/4 < B: 1280/4) and cached.
        svc.counters(a, 1, 0);
        assert_eq!(svc.pick(&x), Some(a));
        svc.counters(b, 0, 0);
        svc.counters(a, 3, 0);
        assert_eq!(svc.pick(&x), Some(a));
        // The IPVS OVERLOAD flag does not invalidate the cached destination (kernel source),
        // but weight 0 does.
        svc.update(a, |d| d.overloaded = true);
        assert_eq!(svc.pick(&x), Some(a));
        svc.update(a, |d| d.overloaded = false);
        svc.set_weight(a, 0);
        assert_eq!(svc.pick(&x), Some(b));
    }

    #[test]
    fn entries_expire_after_lblc_expiration() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        assert_eq!(svc.pick(&x), Some(b));
        svc.counters(b, 1, 0);
        // Used just before the day is up: refreshed, kept.
        svc.now = Instant::from_secs(1 + DAY - 1);
        assert_eq!(svc.pick(&x), Some(b));
        // A day after that last use the entry is gone and wlc picks afresh (A is idle).
        svc.now = Instant::from_secs(1 + 2 * DAY - 1);
        assert_eq!(svc.pick(&x), Some(a));
        // A shorter sysctl value applies.
        svc.state.set_cache_expiration(Duration::from_secs(60));
        svc.counters(b, 0, 0);
        svc.counters(a, 1, 0);
        svc.now = svc.now + Duration::from_secs(59);
        assert_eq!(svc.pick(&x), Some(a));
        svc.now = svc.now + Duration::from_secs(60);
        assert_eq!(svc.pick(&x), Some(b));
    }

    #[test]
    fn removed_destination_is_rescheduled_and_stays_rescheduled() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        let y = pkt_d("1.1.1.1", 1, "203.0.113.2");
        assert_eq!(svc.connect(&x), Some(b));
        assert_eq!(svc.connect(&y), Some(a));
        svc.counters(a, 0, 0);
        svc.counters(b, 0, 0);
        // B leaves; X is rescheduled (to A) when next seen, and its entry now says A.
        svc.remove(b);
        assert_eq!(svc.pick(&x), Some(a));
        // Re-adding B does not pull X back, even with A busier.
        svc.counters(a, 3, 0);
        let b2 = svc.add("10.1.0.2", 80, 4);
        assert_eq!(svc.pick(&x), Some(a));
        // A new address goes by wlc: idle B2.
        assert_eq!(svc.pick(&pkt_d("1.1.1.1", 1, "203.0.113.3")), Some(b2));
    }

    #[test]
    fn entries_on_a_removed_destination_revive_with_it() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        assert_eq!(svc.pick(&x), Some(b));
        svc.counters(a, 0, 0);
        svc.counters(b, 3, 0);
        // B is removed and re-added (a health-check flap) before X is seen again: the kernel
        // revives the same destination from the trash and the entry is valid again.
        svc.remove(b);
        let b2 = svc.add("10.1.0.2", 80, 4);
        assert_eq!(b2, b);
        svc.counters(b2, 3, 0);
        assert_eq!(svc.pick(&x), Some(b2));
        // Same when it comes back in another slot.
        svc.remove(b2);
        let c = svc.add("10.1.0.3", 80, 4); // takes the freed slot
        assert_eq!(c, b);
        let b3 = svc.add("10.1.0.2", 80, 4);
        assert_ne!(b3, b);
        // wlc would pick idle A or C; the revived entry still says B.
        svc.counters(c, 0, 0);
        svc.counters(b3, 2, 0);
        assert_eq!(svc.pick(&x), Some(b3));
    }

    #[test]
    fn reused_slot_does_not_inherit_entries() {
        let (mut svc, a, b) = two();
        let x = pkt_d("1.1.1.1", 1, "203.0.113.1");
        assert_eq!(svc.pick(&x), Some(b));
        svc.remove(b);
        // Another destination takes B's slot; X must not silently move to it via the slot.
        let c = svc.add("10.1.0.3", 80, 4);
        assert_eq!(c, b);
        svc.counters(c, 2, 0);
        // wlc: C (list head) 512/4 vs A 0/4 -> A.
        assert_eq!(svc.pick(&x), Some(a));
    }
}
