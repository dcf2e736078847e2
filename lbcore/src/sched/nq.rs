//! `nq`: never queue (`ip_vs_nq.c`).
//!
//! The first destination in list order with no active connection (any weight > 0, not
//! overloaded) wins at once; otherwise sed: `(active + 1) / weight`, ties to the earlier.

use super::{DestList, DestSlot, SchedDest, more_loaded};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    let mut least: Option<(DestSlot, i32, u64)> = None;
    for (slot, d) in list.iter() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        if d.active == 0 {
            return Some(slot);
        }
        let doh = u64::from(d.active) + 1;
        if least.is_none_or(|(_, lw, loh)| more_loaded(loh, lw, doh, d.weight)) {
            least = Some((slot, d.weight, doh));
        }
    }
    least.map(|(slot, _, _)| slot)
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn first_idle_destination_wins_whatever_its_weight() {
        let mut svc = Svc::new(Sched::Nq, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 100);
        let b = svc.add("10.0.0.2", 80, 1);
        let c = svc.add("10.0.0.3", 80, 50);
        // Order C, B, A. C busy, B idle (weight 1): B, despite A's weight 100.
        svc.counters(c, 1, 0);
        svc.counters(a, 0, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        // Inactive connections do not make a destination busy.
        svc.counters(b, 0, 500);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        // Nobody idle: sed. C (2/50), B (2/1), A (2/100) -> A.
        svc.counters(c, 1, 0);
        svc.counters(b, 1, 0);
        svc.counters(a, 1, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        // A: 3/100 vs C: 2/50 = 4/100 -> A still; at A 4 active: 5/100 > 4/100 -> C.
        svc.counters(a, 2, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        svc.counters(a, 4, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(c));
        // A tie (A at 3: 4/100 = C's 4/100) stays with the earlier, C.
        svc.counters(a, 3, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(c));
    }

    #[test]
    fn idle_but_unavailable_is_skipped() {
        let mut svc = Svc::new(Sched::Nq, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 0);
        let c = svc.add("10.0.0.3", 80, 1);
        svc.update(c, |d| d.overloaded = true);
        svc.counters(a, 7, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        let _ = b;
    }
}
