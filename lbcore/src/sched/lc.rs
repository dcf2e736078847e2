//! `lc`: least connections (`ip_vs_lc.c`).
//!
//! The destination with the smallest `overhead = (active << 8) + inactive`; weights only
//! matter in that weight 0 (and OVERLOAD) excludes a destination. Ties go to the earlier
//! destination in the list (the comparison is strictly "less than").

use super::{DestList, DestSlot, SchedDest};

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> Option<DestSlot> {
    let mut least: Option<(DestSlot, u64)> = None;
    for (slot, d) in list.iter() {
        if d.overloaded || d.weight == 0 {
            continue;
        }
        let doh = d.overhead();
        if least.is_none_or(|(_, loh)| doh < loh) {
            least = Some((slot, doh));
        }
    }
    least.map(|(slot, _)| slot)
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn least_overhead_ignoring_weights() {
        let mut svc = Svc::new(Sched::Lc, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 100);
        let b = svc.add("10.0.0.2", 80, 1);
        // Order B, A. A has 1 active = 256; B has 255 inactive = 255: B is less loaded.
        svc.counters(a, 1, 0);
        svc.counters(b, 0, 255);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        // 256 inactive on B ties with A's 256: the earlier one (B) keeps it.
        svc.counters(b, 0, 256);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        svc.counters(b, 0, 257);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
    }

    #[test]
    fn ties_go_to_the_list_head_and_exclusions_apply() {
        let mut svc = Svc::new(Sched::Lc, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 1);
        let c = svc.add("10.0.0.3", 80, 1);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(c));
        svc.set_weight(c, 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(b));
        svc.update(b, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), Some(a));
        // Connections spread evenly when every new one counts as active.
        svc.update(b, |d| d.overloaded = false);
        svc.set_weight(c, 1);
        let mut count = [0u32; 3];
        for i in 0..300 {
            count[usize::from(svc.connect(&Svc::client(i)).unwrap())] += 1;
        }
        assert_eq!(count, [100, 100, 100]);
    }
}
