//! `wlc`: weighted least connections (`ip_vs_wlc.c`), also the service-wide pass of lblc and
//! lblcr.
//!
//! Start from the first destination in list order that is not overloaded and has weight > 0;
//! move to a later destination `d` only when `overhead(least) * weight(d) > overhead(d) *
//! weight(least)` — strictly greater, so ties stay with the earlier destination, and a weight
//! 0 destination can never win (its side of the comparison is 0). The products are computed
//! in 128 bits so no counter or weight can overflow them.

use super::{DestList, DestSlot, SchedDest, more_loaded};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    // Indexes the list order directly (the loop runs over every destination for every new
    // connection, so the per-destination cost is the scheduler's cost).
    let (slots, order) = (list.slots, list.order);
    let mut i = 0;
    let (mut least, mut lw, mut loh) = loop {
        let &slot = order.get(i)?;
        i += 1;
        if let Some(d) = slots.get(usize::from(slot)).map(AsRef::as_ref)
            && !d.overloaded
            && d.weight > 0
        {
            break (slot, d.weight, d.overhead());
        }
    };
    for &slot in &order[i..] {
        let Some(d) = slots.get(usize::from(slot)).map(AsRef::as_ref) else {
            continue;
        };
        if d.overloaded {
            continue;
        }
        let doh = d.overhead();
        if more_loaded(loh, lw, doh, d.weight) {
            (least, lw, loh) = (slot, d.weight, doh);
        }
    }
    Some(least)
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn weighted_comparison_hand_worked() {
        let mut svc = Svc::new(Sched::Wlc, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 3);
        let b = svc.add("10.0.0.2", 80, 1);
        // Order B, A. B: 1 active = 256 / 1; A: 2 active + 100 inactive = 612 / 3 = 204.
        svc.counters(b, 1, 0);
        svc.counters(a, 2, 100);
        // least = B (256, w1); A: 256 * 3 = 768 > 612 * 1 -> A.
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        // A at 3 active = 768: 256 * 3 = 768 is not > 768 * 1 -> tie stays on B.
        svc.counters(a, 3, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        // Idle destinations: all overheads 0, the head wins whatever the weights.
        svc.counters(a, 0, 0);
        svc.counters(b, 0, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
    }

    #[test]
    fn zero_weight_never_wins_even_when_idle() {
        let mut svc = Svc::new(Sched::Wlc, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 2);
        let b = svc.add("10.0.0.2", 80, 0);
        svc.counters(a, 50, 50);
        // B (weight 0, idle) is first in the list but skipped as a start, and loses the
        // comparison: 0 * 2 ... least=A(overhead 12850, w2); B: 12850 * 0 > 0 * 2 is false.
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        svc.update(a, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), None);
        let _ = b;
    }

    #[test]
    fn no_overflow_with_huge_counters() {
        let mut svc = Svc::new(Sched::Wlc, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, i32::MAX);
        let b = svc.add("10.0.0.2", 80, i32::MAX - 1);
        svc.counters(a, u32::MAX, u32::MAX);
        svc.counters(b, u32::MAX, u32::MAX - 1);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
    }

    #[test]
    fn distribution_follows_weights() {
        let mut svc = Svc::new(Sched::Wlc, SchedFlags::NONE);
        let w = [1, 2, 3, 4];
        for (i, &wt) in w.iter().enumerate() {
            svc.add(&std::format!("10.0.0.{}", i + 1), 80, wt);
        }
        let mut count = [0u32; 4];
        for i in 0..10_000 {
            count[usize::from(svc.connect(&Svc::client(i)).unwrap())] += 1;
        }
        // Every new connection is active, so the counts track the weights exactly.
        assert_eq!(count, [1000, 2000, 3000, 4000]);
    }
}
