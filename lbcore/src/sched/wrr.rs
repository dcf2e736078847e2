//! `wrr`: weighted round robin (`ip_vs_wrr.c`).
//!
//! State: the cursor `cl` (a list position or the head), the current weight `cw`, `mw` = max
//! weight − (gcd − 1) and `di` = gcd of the positive weights. A call walks on from the cursor;
//! each time the walk passes the list head `cw` drops by `di`, and below 1 it restarts at
//! `mw`. The first destination that is not overloaded and has `weight >= cw` wins. Every
//! add/edit/delete puts the cursor back on the head and recomputes `mw`/`di`, keeping `cw`
//! unless it is 0 or now above `mw` (then it becomes `mw`); with `di > 1` it is rounded to
//! `(cw / di) * di + 1`. A weight-0 destination is never picked; the walk gives up after one
//! full pass at `cw <= di` (the kernel's `last_pass`/`stop` logic, reproduced step by step).

use super::{DestList, DestSlot, SchedDest};

/// Weighted round-robin mark (`struct ip_vs_wrr_mark`).
#[derive(Clone, Debug)]
pub(crate) struct Wrr {
    /// Current destination as a list position; `None` is the list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `ip_vs_wrr_gcd_weight`: gcd of the positive weights, 1 if there are none.
fn gcd_weight<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> i64 {
    let g = list
        .iter()
        .map(|(_, d)| i64::from(d.weight))
        .filter(|&w| w > 0)
        .fold(0, gcd);
    if g > 0 { g } else { 1 }
}

/// `ip_vs_wrr_max_weight`: the largest weight, 0 if none is positive.
fn max_weight<D: AsRef<SchedDest>>(list: DestList<'_, D>) -> i64 {
    list.iter().map(|(_, d)| i64::from(d.weight)).fold(0, i64::max)
}

impl Wrr {
    /// `ip_vs_wrr_init_svc` on an empty service.
    pub(crate) const fn new() -> Self {
        Wrr {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
        }
    }

    /// `ip_vs_wrr_init_svc` on a service that already has destinations.
    pub(crate) fn init<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        self.cl = None;
        self.di = gcd_weight(list);
        self.mw = max_weight(list) - (self.di - 1);
        self.cw = self.mw;
    }

    /// `ip_vs_wrr_dest_changed`, the add, edit and delete hook.
    pub(crate) fn dest_changed<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        self.cl = None;
        self.di = gcd_weight(list);
        self.mw = max_weight(list) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) -> Option<DestSlot> {
        if self.mw == 0 {
            return None;
        }
        let n = list.len();
        // A cursor past the end can only come from a list changed without a hook; the head
        // is the kernel's own fallback position.
        let mut dest = self.cl.filter(|&p| p < n);
        let last = dest;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            // list_for_each_entry_continue: the entries after `dest`, up to the head.
            let from = dest.map_or(0, |p| p + 1);
            for pos in from..n {
                dest = Some(pos);
                let cw = self.cw;
                if let Some((slot, _)) = list
                    .get(pos)
                    .filter(|(_, d)| !d.overloaded && i64::from(d.weight) >= cw)
                {
                    self.cl = Some(pos);
                    return Some(slot);
                }
                if dest == stop {
                    self.cl = dest;
                    return None;
                }
            }
            dest = None;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                // Give up if the last pass (cw <= di) already covered every destination, or
                // if the walk started at the head so its only traversal was such a pass.
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                // The first traversal was for weight >= 1 but only after `last`; now check
                // the destinations up to `last` as well.
                stop = last;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn kernel_observed_sequence_for_4_3_2() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 4);
        let b = svc.add("10.0.0.2", 80, 3);
        let c = svc.add("10.0.0.3", 80, 2);
        let got: Vec<_> = svc.picks(3 + 9 * 4).into_iter().map(|s| s.unwrap()).collect();
        // First pass at cw = 1: C B A, then the period A B A C B A C B A (real 6.1 kernel).
        assert_eq!(got[..3], [c, b, a]);
        let period = [a, b, a, c, b, a, c, b, a];
        for chunk in got[3..].chunks(9) {
            assert_eq!(chunk, period);
        }
    }

    #[test]
    fn changes_reset_cursor_and_keep_cw() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 4);
        let b = svc.add("10.0.0.2", 80, 3);
        let c = svc.add("10.0.0.3", 80, 2);
        // Run into the period: C B A | A | B A (cw is now 3, cursor on A).
        assert_eq!(
            svc.picks(6),
            [Some(c), Some(b), Some(a), Some(a), Some(b), Some(a)]
        );
        assert_eq!((svc_wrr(&svc).cw, svc_wrr(&svc).mw, svc_wrr(&svc).di), (3, 4, 1));
        // An edit puts the cursor back on the head; cw = 3 stays.
        svc.set_weight(b, 3);
        assert_eq!(svc_wrr(&svc).cl, None);
        assert_eq!(svc.picks(2), [Some(b), Some(a)]);
        // Deleting the weight-4 destination drops mw to 3; cw = 3 is not above it and stays.
        svc.remove(a);
        assert_eq!((svc_wrr(&svc).cw, svc_wrr(&svc).mw), (3, 3));
        // Passes at cw = 3, 2, 1, 3: B | C B | C B | B.
        assert_eq!(
            svc.picks(6),
            [Some(b), Some(c), Some(b), Some(c), Some(b), Some(b)]
        );
    }

    #[test]
    fn gcd_rounding_of_cw() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 4);
        // First add: cw was 0 -> mw = 4 - (4 - 1) = 1.
        assert_eq!((svc_wrr(&svc).cw, svc_wrr(&svc).mw, svc_wrr(&svc).di), (1, 1, 4));
        let b = svc.add("10.0.0.2", 80, 8);
        // di = 4, mw = 8 - 3 = 5; cw = 1 <= mw, so it is rounded: (1 / 4) * 4 + 1 = 1.
        assert_eq!((svc_wrr(&svc).cw, svc_wrr(&svc).mw, svc_wrr(&svc).di), (1, 5, 4));
        // Passes at cw = 1, then 5, then 1: B A | B | B A | B ...
        assert_eq!(
            svc.picks(6),
            [Some(b), Some(a), Some(b), Some(b), Some(a), Some(b)]
        );
    }

    #[test]
    fn weight_zero_and_overloaded_are_never_picked() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 2);
        let b = svc.add("10.0.0.2", 80, 0);
        let c = svc.add("10.0.0.3", 80, 3);
        svc.update(c, |d| d.overloaded = true);
        assert!(svc.picks(20).iter().all(|&s| s == Some(a)));
        svc.set_weight(a, 0);
        assert_eq!(svc.picks(3), [None, None, None]);
        svc.update(c, |d| d.overloaded = false);
        assert!(svc.picks(5).iter().all(|&s| s == Some(c)));
        let _ = b;
    }

    #[test]
    fn all_overloaded_gives_none_from_any_cursor() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 5);
        let b = svc.add("10.0.0.2", 80, 2);
        assert_eq!(svc.picks(2), [Some(b), Some(a)]);
        // Overload without a hook (the flag flips on connection binding, not via -e).
        svc.slots[usize::from(a)].overloaded = true;
        svc.slots[usize::from(b)].overloaded = true;
        assert_eq!(svc.picks(3), [None, None, None]);
        svc.slots[usize::from(b)].overloaded = false;
        assert_eq!(svc.picks(2), [Some(b), Some(b)]);
    }

    #[test]
    fn distribution_follows_weights() {
        let mut svc = Svc::new(Sched::Wrr, SchedFlags::NONE);
        let w = [5, 1, 3, 7];
        for (i, &wt) in w.iter().enumerate() {
            svc.add(&std::format!("10.0.0.{}", i + 1), 80, wt);
        }
        let mut count = [0u32; 4];
        // Skip the initial cw = 1 pass, then count whole periods of 16.
        svc.picks(4);
        for _ in 0..16 * 100 {
            count[usize::from(svc.pick(&pkt("1.1.1.1", 1)).unwrap())] += 1;
        }
        assert_eq!(count, w.map(|x| x as u32 * 100));
    }

    fn svc_wrr(svc: &Svc) -> &super::Wrr {
        match &svc.state.algo {
            crate::sched::Algo::Wrr(w) => w,
            _ => unreachable!(),
        }
    }
}
