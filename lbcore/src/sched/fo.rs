//! `fo`: weighted failover (`ip_vs_fo.c`).
//!
//! All new connections go to the non-overloaded destination with the highest weight; a tie
//! goes to the earlier destination in the list. Weight 0 never wins (the bar starts at 0).

use super::{DestList, DestSlot, SchedDest};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    let mut best: Option<DestSlot> = None;
    let mut hw = 0;
    for (slot, d) in list.iter() {
        if !d.overloaded && d.weight > hw {
            best = Some(slot);
            hw = d.weight;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn highest_weight_then_failover() {
        let mut svc = Svc::new(Sched::Fo, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 10);
        let b = svc.add("10.0.0.2", 80, 5);
        let c = svc.add("10.0.0.3", 80, 10);
        // Order C, B, A; C and A tie at 10 -> C (earlier), however loaded.
        svc.counters(c, 1000, 1000);
        for i in 0..10 {
            assert_eq!(svc.connect(&Svc::client(i)), Some(c));
        }
        svc.update(c, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        svc.set_weight(a, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        svc.set_weight(b, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), None);
    }
}
