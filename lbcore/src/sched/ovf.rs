//! `ovf`: weighted overflow (`ip_vs_ovf.c`).
//!
//! Skip destinations that are overloaded, have weight 0, or have more active connections than
//! their weight (so each one takes `weight + 1` active connections); among the rest the
//! highest weight wins, ties to the earlier in the list. None left means no destination.

use super::{DestList, DestSlot, SchedDest};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    let mut best: Option<(DestSlot, i32)> = None;
    for (slot, d) in list.iter() {
        let w = d.weight;
        if d.overloaded || i64::from(d.active) > i64::from(w) || w == 0 {
            continue;
        }
        if best.is_none_or(|(_, hw)| w > hw) {
            best = Some((slot, w));
        }
    }
    best.map(|(slot, _)| slot)
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn each_takes_weight_plus_one_active() {
        let mut svc = Svc::new(Sched::Ovf, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 3);
        let b = svc.add("10.0.0.2", 80, 1);
        let c = svc.add("10.0.0.3", 80, 3);
        // Order C, B, A: C (3, earlier) takes 4, then A takes 4, then B takes 2, then none.
        let got: std::vec::Vec<_> = (0..11).map(|i| svc.connect(&Svc::client(i))).collect();
        let mut want = std::vec![Some(c); 4];
        want.extend([Some(a); 4]);
        want.extend([Some(b); 2]);
        want.push(None);
        assert_eq!(got, want);
        // Inactive connections do not count; a closing connection frees room.
        svc.counters(c, 3, 100);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(c));
    }

    #[test]
    fn skips_overloaded_and_weight_zero() {
        let mut svc = Svc::new(Sched::Ovf, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 0);
        let c = svc.add("10.0.0.3", 80, 9);
        svc.update(c, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        svc.counters(a, 2, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), None);
        let _ = b;
    }
}
