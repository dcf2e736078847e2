//! Traffic counters and IPVS's rate estimator, with the kernel's exact fixed-point arithmetic.
//!
//! [`Counters`] are the five cumulative IPVS counters kept per service and per destination
//! (`conns, inpkts, outpkts, inbytes, outbytes`). They wrap on overflow like the kernel's `u64`
//! counters and never panic.
//!
//! [`Estimator`] reproduces `net/netfilter/ipvs/ip_vs_est.c`, driven by the caller's clock
//! instead of a kernel timer. Every 2 seconds (one *tick*) it takes the counter deltas since
//! the previous tick and folds them into exponentially weighted averages with W = 2^-2:
//!
//! ```text
//! rate   = delta << 9        (conns, packets: scaled by 2^10, divided by the 2-s tick)
//! rate   = delta << 4        (bytes: scaled by 2^5, divided by the 2-s tick)
//! avg   += (s64)(rate - avg) >> 2          (arithmetic shift: rounds towards -infinity)
//! ```
//!
//! and exports per-second rates as `ip_vs_read_estimator` does: `(avg + 0x1FF) >> 10` for
//! cps/pps and `(avg + 0xF) >> 5` for bps. All values are `u64` with wrapping arithmetic, as in
//! the 64-bit estimator of current kernels.
//!
//! Guarantees: no allocation, no panics, bounded work per call (at most
//! [`Estimator::MAX_CATCH_UP_TICKS`] steps), and time going backwards never runs a step or
//! moves the schedule back.

use crate::time::{Duration, Instant};

/// The cumulative counters IPVS keeps for a service or destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets received from clients (the IN direction).
    pub inpkts: u64,
    /// Packets sent back to clients through the balancer (the OUT direction; NAT/FULLNAT only).
    pub outpkts: u64,
    /// Bytes of [`Counters::inpkts`].
    pub inbytes: u64,
    /// Bytes of [`Counters::outpkts`].
    pub outbytes: u64,
}

impl Counters {
    /// All counters zero.
    pub const ZERO: Counters = Counters {
        conns: 0,
        inpkts: 0,
        outpkts: 0,
        inbytes: 0,
        outbytes: 0,
    };

    /// Counts one scheduled connection.
    pub fn add_conn(&mut self) {
        self.conns = self.conns.wrapping_add(1);
    }

    /// Counts one inbound packet of `bytes` bytes.
    pub fn add_in(&mut self, bytes: u64) {
        self.inpkts = self.inpkts.wrapping_add(1);
        self.inbytes = self.inbytes.wrapping_add(bytes);
    }

    /// Counts one outbound packet of `bytes` bytes.
    pub fn add_out(&mut self, bytes: u64) {
        self.outpkts = self.outpkts.wrapping_add(1);
        self.outbytes = self.outbytes.wrapping_add(bytes);
    }

    /// Adds every counter of `other` to `self` (e.g. to total several destinations).
    pub fn accumulate(&mut self, other: &Counters) {
        self.conns = self.conns.wrapping_add(other.conns);
        self.inpkts = self.inpkts.wrapping_add(other.inpkts);
        self.outpkts = self.outpkts.wrapping_add(other.outpkts);
        self.inbytes = self.inbytes.wrapping_add(other.inbytes);
        self.outbytes = self.outbytes.wrapping_add(other.outbytes);
    }
}

/// Per-second rates, as the kernel exports them (`IPVS_STATS_ATTR_CPS` ... `OUTBPS`) after
/// unscaling the estimator's averages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Inbound packets per second.
    pub inpps: u64,
    /// Outbound packets per second.
    pub outpps: u64,
    /// Inbound bytes per second.
    pub inbps: u64,
    /// Outbound bytes per second.
    pub outbps: u64,
}

/// Nanoseconds in one estimator tick.
const TICK_NANOS: u64 = 2_000_000_000;

/// IPVS's rate estimator for one set of [`Counters`], driven by the caller's time.
///
/// Ticks fall every [`Estimator::TICK`] after the instant given to [`Estimator::new`].
/// Call [`Estimator::update`] at or after [`Estimator::poll_at`]; an update exactly at each
/// tick reproduces the kernel step for step.
///
/// If several ticks are due at once (the caller was late), one step runs per due tick and
/// the counter growth observed since the last update is spread evenly over them (integer
/// split, so the pieces add up exactly): uniform traffic then gives the same averages as
/// punctual updates would have. At most [`Estimator::MAX_CATCH_UP_TICKS`] steps run; older
/// due ticks are skipped, which is harmless because after that many steps of W = 1/4 nothing
/// of the earlier history is left in a 64-bit average beyond the estimator's own ±3 (scaled)
/// convergence band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimator {
    last: Counters,
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
    next_tick: Instant,
}

impl Estimator {
    /// The estimation interval: 2 seconds, as in the kernel.
    pub const TICK: Duration = Duration::from_secs(2);
    /// The most estimation steps one [`Estimator::update`] call runs. (3/4)^160 * 2^64 < 1, so
    /// skipped older ticks cannot influence the result.
    pub const MAX_CATCH_UP_TICKS: u64 = 160;

    /// An estimator whose first tick is [`Estimator::TICK`] after `now`, measuring growth from
    /// `current`; all averages start at zero.
    pub const fn new(now: Instant, current: &Counters) -> Self {
        Estimator {
            last: *current,
            cps: 0,
            inpps: 0,
            outpps: 0,
            inbps: 0,
            outbps: 0,
            next_tick: Instant::from_nanos(now.as_nanos().saturating_add(TICK_NANOS)),
        }
    }

    /// Restarts the averages from zero and measures growth from `current` on
    /// (`ip_vs_zero_estimator`). Call it whenever the counters themselves are reset
    /// (`ipvsadm -Z`); the tick schedule is kept.
    pub fn zero(&mut self, current: &Counters) {
        *self = Estimator {
            next_tick: self.next_tick,
            ..Estimator::new(Instant::ZERO, current)
        };
    }

    /// The next instant at which [`Estimator::update`] has a step to run.
    pub const fn poll_at(&self) -> Instant {
        self.next_tick
    }

    /// Runs one estimation step for every tick due at `now` (bounded by
    /// [`Estimator::MAX_CATCH_UP_TICKS`]), reading the counters' growth from `current`.
    /// Does nothing before [`Estimator::poll_at`], including when time went backwards.
    pub fn update(&mut self, now: Instant, current: &Counters) {
        if now < self.next_tick {
            return;
        }
        let due = (now.as_nanos() - self.next_tick.as_nanos()) / TICK_NANOS + 1;
        let first = due - due.min(Self::MAX_CATCH_UP_TICKS);
        let delta = Counters {
            conns: current.conns.wrapping_sub(self.last.conns),
            inpkts: current.inpkts.wrapping_sub(self.last.inpkts),
            outpkts: current.outpkts.wrapping_sub(self.last.outpkts),
            inbytes: current.inbytes.wrapping_sub(self.last.inbytes),
            outbytes: current.outbytes.wrapping_sub(self.last.outbytes),
        };
        if delta == Counters::default() {
            // No growth: every step decays towards zero, and once all averages are zero the
            // remaining steps change nothing (a long idle gap costs a few steps, not 160).
            for _ in first..due {
                if self.averages_zero() {
                    break;
                }
                self.step(&Counters::default());
            }
        } else {
            for i in first + 1..=due {
                let d = |total: u64| share(total, i, due).wrapping_sub(share(total, i - 1, due));
                self.step(&Counters {
                    conns: d(delta.conns),
                    inpkts: d(delta.inpkts),
                    outpkts: d(delta.outpkts),
                    inbytes: d(delta.inbytes),
                    outbytes: d(delta.outbytes),
                });
            }
        }
        self.last = *current;
        self.next_tick = Instant::from_nanos(
            self.next_tick
                .as_nanos()
                .saturating_add(due.saturating_mul(TICK_NANOS)),
        );
    }

    fn averages_zero(&self) -> bool {
        self.cps | self.inpps | self.outpps | self.inbps | self.outbps == 0
    }

    /// One kernel estimation step for counter growth `delta` over one 2-second tick.
    fn step(&mut self, delta: &Counters) {
        // conns and packets: scaled by 2^10, divided by 2 seconds.
        ewma(&mut self.cps, delta.conns << 9);
        ewma(&mut self.inpps, delta.inpkts << 9);
        ewma(&mut self.outpps, delta.outpkts << 9);
        // bytes: scaled by 2^5, divided by 2 seconds.
        ewma(&mut self.inbps, delta.inbytes << 4);
        ewma(&mut self.outbps, delta.outbytes << 4);
    }

    /// The current per-second rates, rounded as `ip_vs_read_estimator` rounds them.
    pub const fn rates(&self) -> Rates {
        Rates {
            cps: self.cps.wrapping_add(0x1FF) >> 10,
            inpps: self.inpps.wrapping_add(0x1FF) >> 10,
            outpps: self.outpps.wrapping_add(0x1FF) >> 10,
            inbps: self.inbps.wrapping_add(0xF) >> 5,
            outbps: self.outbps.wrapping_add(0xF) >> 5,
        }
    }
}

/// `avg += ((s64)rate - (s64)avg) >> 2`, with the kernel's two's-complement wrapping.
fn ewma(avg: &mut u64, rate: u64) {
    // The casts reinterpret bits exactly as the kernel's (s64) casts do.
    let diff = (rate as i64).wrapping_sub(*avg as i64) >> 2;
    *avg = avg.wrapping_add(diff as u64);
}

/// `floor(total * i / n)`: the part of `total` attributed to the first `i` of `n` ticks.
fn share(total: u64, i: u64, n: u64) -> u64 {
    let n = n.max(1);
    // Usual case in 64 bits (a 128-bit division is a slow library call); i <= n, so the
    // quotient always fits in u64.
    match total.checked_mul(i) {
        Some(product) => product / n,
        None => (u128::from(total) * u128::from(i) / u128::from(n)) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counters after `secs` seconds of `cps` connections and `pps` packets of `size` bytes
    /// per second, both directions.
    fn traffic(secs: u64, cps: u64, pps: u64, size: u64) -> Counters {
        Counters {
            conns: secs * cps,
            inpkts: secs * pps,
            outpkts: secs * pps,
            inbytes: secs * pps * size,
            outbytes: secs * pps * size,
        }
    }

    #[test]
    fn counters_helpers_count_and_wrap() {
        let mut c = Counters::default();
        c.add_conn();
        c.add_in(60);
        c.add_in(1500);
        c.add_out(40);
        assert_eq!(
            c,
            Counters {
                conns: 1,
                inpkts: 2,
                outpkts: 1,
                inbytes: 1560,
                outbytes: 40
            }
        );
        let mut total = Counters::ZERO;
        total.accumulate(&c);
        total.accumulate(&c);
        assert_eq!(total.inbytes, 3120);
        let mut w = Counters {
            inbytes: u64::MAX,
            ..Counters::ZERO
        };
        w.add_in(2);
        assert_eq!((w.inpkts, w.inbytes), (1, 1));
    }

    #[test]
    fn estimator_constant_traffic_converges_to_true_rate() {
        let mut e = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let mut t = 0;
        while t < 60 {
            t += 2;
            e.update(Instant::from_secs(t), &traffic(t, 1000, 20_000, 500));
        }
        // After 30 ticks from zero, (3/4)^30 = 1.8e-4 of the rate is still missing: within 1 of
        // 1000 cps, and within that fraction (plus rounding) for the larger rates.
        let r = e.rates();
        assert!(r.cps.abs_diff(1000) <= 1, "{r:?}");
        let tolerance = |rate: u64| (u128::from(rate) * 3u128.pow(30) / 4u128.pow(30)) as u64 + 1;
        assert!(r.inpps.abs_diff(20_000) <= tolerance(20_000), "{r:?}");
        assert!(r.outbps.abs_diff(10_000_000) <= tolerance(10_000_000), "{r:?}");
        assert!(
            r.inpps < 20_000 && r.inbps < 10_000_000,
            "converges from below: {r:?}"
        );
        // Long enough and the kernel arithmetic settles exactly (from below, within 3 scaled
        // units of 1000 * 2^10, which rounds to 1000).
        while t < 200 {
            t += 2;
            e.update(Instant::from_secs(t), &traffic(t, 1000, 20_000, 500));
        }
        assert_eq!(
            e.rates(),
            Rates {
                cps: 1000,
                inpps: 20_000,
                outpps: 20_000,
                inbps: 10_000_000,
                outbps: 10_000_000
            }
        );
        assert!((1000 << 10) - e.cps <= 3);
    }

    #[test]
    fn estimator_step_change_decays_by_quarter_per_tick() {
        // 100 conns/s from t=0 to t=8, then nothing.
        let mut e = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let mut cps = [0u64; 6];
        let mut raw = [0u64; 6];
        for k in 1..=6u64 {
            let conns = 200 * k.min(4);
            e.update(
                Instant::from_secs(2 * k),
                &Counters {
                    conns,
                    ..Counters::ZERO
                },
            );
            cps[k as usize - 1] = e.rates().cps;
            raw[k as usize - 1] = e.cps;
        }
        // rate = 200 << 9 = 102400; avg += (rate - avg) / 4, then (avg + 511) >> 10.
        assert_eq!(raw, [25_600, 44_800, 59_200, 70_000, 52_500, 39_375]);
        assert_eq!(cps, [25, 44, 58, 68, 51, 38]);
    }

    #[test]
    fn estimator_decay_rounds_towards_minus_infinity() {
        // Three connections in the first tick, then silence: the kernel's signed shift floors.
        let mut e = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let c = Counters {
            conns: 3,
            ..Counters::ZERO
        };
        let mut raw = [0u64; 5];
        for (k, slot) in raw.iter_mut().enumerate() {
            e.update(Instant::from_secs(2 * (k as u64 + 1)), &c);
            *slot = e.cps;
        }
        // 1536/4 = 384; 384 - 96; 288 - 72; 216 - 54; 162 + floor(-162/4) = 162 - 41.
        assert_eq!(raw, [384, 288, 216, 162, 121]);
        assert_eq!(e.rates().cps, 0);
        // bps rounding: (avg + 15) >> 5.
        let mut b = Estimator::new(Instant::ZERO, &Counters::ZERO);
        b.update(
            Instant::from_secs(2),
            &Counters {
                inbytes: 7,
                ..Counters::ZERO
            },
        );
        assert_eq!(b.inbps, 28); // (7 << 4) / 4
        assert_eq!(b.rates().inbps, 1); // (28 + 15) >> 5
    }

    #[test]
    fn estimator_catches_up_on_missed_ticks() {
        let c = |t| traffic(t, 1000, 3000, 100);
        let mut punctual = Estimator::new(Instant::ZERO, &Counters::ZERO);
        let mut late = punctual;
        for t in (2..=40).step_by(2) {
            punctual.update(Instant::from_secs(t), &c(t));
            if t % 10 == 0 {
                // Updated only every 10 s, half a second after the tick: 5 ticks at once.
                late.update(Instant::from_millis(t * 1000 + 500), &c(t));
            }
        }
        assert_eq!(late, punctual);
        assert_eq!(late.poll_at(), Instant::from_secs(42));

        // A long silence: each missed tick decays the average once.
        let mut quiet = punctual;
        quiet.update(Instant::from_secs(40 + 2 * 6), &c(40));
        let mut by_hand = punctual;
        for k in 1..=6 {
            by_hand.update(Instant::from_secs(40 + 2 * k), &c(40));
        }
        assert_eq!(quiet, by_hand);

        // Far more ticks than the bound: bounded work, schedule still advances, average gone.
        let mut idle = punctual;
        idle.update(Instant::from_secs(40 + 2 * 10_000), &c(40));
        assert_eq!(idle.rates(), Rates::default());
        assert_eq!(idle.poll_at(), Instant::from_secs(40 + 2 * 10_001));
    }

    #[test]
    fn estimator_idle_gap_shortcut_matches_every_step() {
        // Heavy traffic leaves large averages; 120 idle ticks (fewer than the bound) in one
        // update must equal 120 punctual updates, including the ticks after they reach zero.
        let busy = traffic(20, 1_000_000, 9_000_000, 1500);
        let mut start = Estimator::new(Instant::ZERO, &Counters::ZERO);
        start.update(Instant::from_secs(20), &busy);
        assert_ne!(start.rates(), Rates::default());
        let mut at_once = start;
        at_once.update(Instant::from_secs(20 + 2 * 120), &busy);
        let mut by_hand = start;
        for k in 1..=120 {
            by_hand.update(Instant::from_secs(20 + 2 * k), &busy);
        }
        assert_eq!(at_once, by_hand);
        assert_eq!(at_once.rates(), Rates::default());
    }

    #[test]
    fn share_splits_exactly_without_overflow() {
        for total in [0, 1, 7, 1 << 40, u64::MAX / 3, u64::MAX] {
            for n in [1u64, 2, 5, 160, 1 << 33] {
                for i in [0, 1, n / 2, n] {
                    let want = (u128::from(total) * u128::from(i) / u128::from(n)) as u64;
                    assert_eq!(share(total, i, n), want, "{total} {i} {n}");
                }
                assert_eq!(share(total, n, n), total);
            }
        }
    }

    #[test]
    fn estimator_ignores_early_calls_and_backwards_time() {
        let mut e = Estimator::new(Instant::from_secs(10), &Counters::ZERO);
        assert_eq!(e.poll_at(), Instant::from_secs(12));
        let before = e;
        e.update(Instant::from_secs(11), &traffic(1, 500, 0, 0));
        e.update(Instant::from_secs(3), &traffic(1, 500, 0, 0));
        assert_eq!(e, before);
        e.update(Instant::from_secs(12), &traffic(2, 500, 0, 0));
        assert_eq!(e.cps, (1000 << 9) / 4);
        let after = e;
        e.update(Instant::from_secs(5), &traffic(3, 500, 0, 0));
        assert_eq!(e, after);
        assert_eq!(e.poll_at(), Instant::from_secs(14));
    }

    #[test]
    fn estimator_zero_restarts_averages_and_keeps_schedule() {
        let mut e = Estimator::new(Instant::ZERO, &Counters::ZERO);
        e.update(Instant::from_secs(2), &traffic(2, 100, 100, 100));
        assert_ne!(e.rates(), Rates::default());
        e.zero(&Counters::ZERO);
        assert_eq!(e.rates(), Rates::default());
        assert_eq!(e.poll_at(), Instant::from_secs(4));
        e.update(Instant::from_secs(4), &Counters::ZERO);
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn estimator_far_future_saturates() {
        let mut e = Estimator::new(Instant::FAR_FUTURE, &Counters::ZERO);
        assert_eq!(e.poll_at(), Instant::FAR_FUTURE);
        e.update(Instant::FAR_FUTURE, &traffic(2, 1, 1, 1));
        assert_eq!(e.poll_at(), Instant::FAR_FUTURE);
        assert_eq!(e.cps, 1 << 8);
    }
}
