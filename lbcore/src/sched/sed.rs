//! `sed`: shortest expected delay (`ip_vs_sed.c`).
//!
//! Like wlc with `overhead = active + 1` (inactive connections ignored): start from the first
//! destination that is not overloaded and has weight > 0, move to `d` only when
//! `(active(least) + 1) * weight(d) > (active(d) + 1) * weight(least)`.

use super::{DestList, DestSlot, SchedDest, more_loaded};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    let mut it = list.iter();
    let (mut least, mut lw, mut loh) = loop {
        let (slot, d) = it.next()?;
        if !d.overloaded && d.weight > 0 {
            break (slot, d.weight, u64::from(d.active) + 1);
        }
    };
    for (slot, d) in it {
        if d.overloaded {
            continue;
        }
        let doh = u64::from(d.active) + 1;
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
    fn expected_delay_hand_worked() {
        let mut svc = Svc::new(Sched::Sed, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 4);
        let b = svc.add("10.0.0.2", 80, 1);
        // Order B, A. Both idle: B = 1/1, A = 1/4: 1 * 4 > 1 * 1 -> A.
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        // A with 3 active: 4/4 = 1 vs B 1/1: 1 * 4 > 4 * 1 is false -> tie stays on B.
        svc.counters(a, 3, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        // Inactive connections do not count.
        svc.counters(a, 2, 1000);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
    }

    #[test]
    fn sequence_from_idle() {
        let mut svc = Svc::new(Sched::Sed, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 2);
        let b = svc.add("10.0.0.2", 80, 1);
        // Order B(1), A(2). Delays (active+1)/w:
        // 1: B 1/1, A 1/2 -> A.  2: B 1, A 2/2=1 tie -> B.  3: B 2, A 1 -> A.
        // 4: B 2/1, A 3/2 -> A.  5: B 2, A 4/2 = 2 tie -> B.  6: B 3, A 2 -> A.
        let got: std::vec::Vec<_> = (0..6).map(|i| svc.connect(&Svc::client(i)).unwrap()).collect();
        assert_eq!(got, [a, b, a, a, b, a]);
    }
}
