//! `twos`: power of two choices (`ip_vs_twos.c`).
//!
//! Two weighted random picks: each draws `r` uniformly in `0..=total_weight` (over the
//! destinations that are not overloaded and have weight > 0) and walks the list subtracting
//! weights until `r <= 0` — so the first destination also takes `r = 0`. The second pick
//! replaces the first only when `weight2 * overhead1 > weight1 * overhead2`. The randomness
//! comes from the caller's [`Rng`], so a seed replays the same choices.

use super::{DestList, DestSlot, SchedDest, more_loaded};
use crate::rng::Rng;

pub(crate) fn schedule<D: AsRef<SchedDest>>(list: DestList<'_, D>, rng: &mut Rng) -> Option<DestSlot> {
    let usable = |d: &SchedDest| !d.overloaded && d.weight > 0;
    let total: u64 = list
        .iter()
        .filter(|(_, d)| usable(d))
        .map(|(_, d)| d.weight as u64)
        .sum();
    if total == 0 {
        return None;
    }
    // The kernel draws `prandom_u32() % (total + 1)` twice, in this order.
    let mut r1 = (rng.next_u64() % (total + 1)) as i64;
    let mut r2 = (rng.next_u64() % (total + 1)) as i64;
    let mut c1: Option<(DestSlot, i32, u64)> = None;
    let mut c2: Option<(DestSlot, i32, u64)> = None;
    for (slot, d) in list.iter() {
        if !usable(d) {
            continue;
        }
        r1 -= i64::from(d.weight);
        r2 -= i64::from(d.weight);
        if r1 <= 0 && c1.is_none() {
            c1 = Some((slot, d.weight, d.overhead()));
        }
        if r2 <= 0 && c2.is_none() {
            c2 = Some((slot, d.weight, d.overhead()));
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    // The walk always ends with both picks made: the cumulative weight reaches `total`.
    let (s1, w1, o1) = c1?;
    match c2 {
        Some((s2, w2, o2)) if more_loaded(o1, w1, o2, w2) => Some(s2),
        _ => Some(s1),
    }
}

#[cfg(test)]
mod tests {
    use crate::rng::Rng;
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    fn three() -> Svc {
        let mut svc = Svc::new(Sched::Twos, SchedFlags::NONE);
        svc.add("10.0.0.1", 80, 1);
        svc.add("10.0.0.2", 80, 2);
        svc.add("10.0.0.3", 80, 5);
        svc
    }

    #[test]
    fn deterministic_for_a_seed() {
        let mut x = three();
        let mut y = three();
        x.rng = Rng::new(7);
        y.rng = Rng::new(7);
        let a: std::vec::Vec<_> = (0..200).map(|i| x.connect(&Svc::client(i))).collect();
        let b: std::vec::Vec<_> = (0..200).map(|i| y.connect(&Svc::client(i))).collect();
        assert_eq!(a, b);
        let mut z = three();
        z.rng = Rng::new(8);
        let c: std::vec::Vec<_> = (0..200).map(|i| z.connect(&Svc::client(i))).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn distribution_roughly_by_weight() {
        // Without connection feedback each pick is a weighted draw: the first pick wins when
        // loads are equal (0 > 0 is false). r = 0 also maps to the first destination, so the
        // head (weight 5 here) gets 6 of 9 draws and the others 2 and 1 of 9.
        let mut svc = three();
        let mut count = [0u32; 3];
        let n = 90_000;
        for i in 0..n {
            count[usize::from(svc.pick(&Svc::client(i)).unwrap())] += 1;
        }
        let expect = [1.0 / 9.0, 2.0 / 9.0, 6.0 / 9.0];
        for (c, e) in count.iter().zip(expect) {
            let share = f64::from(*c) / f64::from(n);
            assert!((share - e).abs() < 0.01, "{count:?}");
        }
        // With connections counted, the two-choice rule keeps loads proportional to weights.
        let mut svc = three();
        let mut count = [0u32; 3];
        for i in 0..8000 {
            count[usize::from(svc.connect(&Svc::client(i)).unwrap())] += 1;
        }
        for (slot, w) in [(0usize, 1.0), (1, 2.0), (2, 5.0)] {
            let share = f64::from(count[slot]) / 8000.0;
            assert!((share - w / 8.0).abs() < 0.03, "{count:?}");
        }
    }

    #[test]
    fn less_loaded_second_choice_wins() {
        let mut svc = Svc::new(Sched::Twos, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 1);
        svc.counters(b, 10, 0);
        // Whatever the draws, a pick of B loses against A whenever A is drawn too; B can only
        // win when both draws land on it. Over many draws A must dominate.
        let mut count = [0u32; 2];
        for i in 0..3000 {
            count[usize::from(svc.pick(&Svc::client(i)).unwrap())] += 1;
        }
        // P(both on B) = (2/3)^2 with r in 0..=2 (B, the head, takes r = 0 and r = 1).
        let share_b = f64::from(count[usize::from(b)]) / 3000.0;
        assert!((share_b - 4.0 / 9.0).abs() < 0.03, "{count:?}");
        svc.update(b, |d| d.overloaded = true);
        svc.update(a, |d| d.weight = 0);
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), None);
    }
}
