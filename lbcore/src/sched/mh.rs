//! `mh`: Maglev hashing (`ip_vs_mh.c`, NSDI'16 §3.4), with `mh-fallback` and `mh-port`.
//!
//! The lookup table has M = 4093 slots (`CONFIG_IP_VS_MH_TAB_INDEX` = 12). Each destination,
//! in list order, gets a permutation of the slots: `offset = hsiphash(port + ntohl(addr), k1) %
//! M`, `skip = hsiphash(port + ntohl(addr), k2) % (M - 1) + 1` with the kernel's fixed keys.
//! The table is filled round by round; in each round a destination claims `turns` slots,
//! `turns = (last_weight / gcd) >> rshift` (or 1 if that is 0 but the weight is not), where
//! `rshift` keeps the largest turn count within 6 bits (`ip_vs_mh_shift_weight`). The table is
//! rebuilt after every add/edit/delete from `last_weight` (lazily: a change marks it stale and
//! the next [`Mh::schedule`] rebuilds it once, so adding N destinations costs one build, not N;
//! the result is the kernel's, which rebuilds eagerly), so quiescing a destination (weight 0)
//! keeps the table: its clients get no destination, or with `mh-fallback` move elsewhere
//! while everybody else stays. A client maps to slot `hsiphash(port + ntohl(saddr), k1) % M`
//! (`port` = source port with `mh-port`, else 0; IPv6 addresses fold by XOR of their words);
//! the fallback probes `hsiphash(roffset + port + ntohl(saddr), k1) % M` for `roffset = (ihash
//! + k) % M`, k = 0, 1, ... M - 1.

use super::hash::{SipKey, fold_addr, hsiphash_u32};
use super::{DestList, DestSlot, MAX_DESTS, SchedDest, SchedPacket};
use crate::service::SchedFlags;

/// `IP_VS_MH_TAB_SIZE`: `primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]` with the default index 12.
pub(crate) const TAB_SIZE: usize = 4093;
/// `IP_VS_MH_TAB_BITS` = `CONFIG_IP_VS_MH_TAB_INDEX / 2`: turns are kept below 2^6.
const TAB_BITS: u32 = 6;
/// Marks an empty slot (destination slots are below `MAX_DESTS` = 128).
const EMPTY: DestSlot = 0xFF;
/// `generate_hash_secret`: the kernel's fixed keys, both words equal.
const HASH1: SipKey = SipKey(2_654_435_761, 2_654_435_761);
const HASH2: SipKey = SipKey(2_654_446_892, 2_654_446_892);

/// The Maglev lookup table.
#[derive(Clone, Debug)]
pub(crate) struct Mh {
    lookup: [DestSlot; TAB_SIZE],
    gcd: i32,
    rshift: u32,
    /// The destination list changed since `lookup` was built.
    stale: bool,
}

/// `ip_vs_mh_hashkey`: `hsiphash(offset + port + ntohl(fold(addr)))`, all in `unsigned int`.
fn hashkey(addr: &core::net::IpAddr, port: u16, key: SipKey, offset: u32) -> u32 {
    let v = offset.wrapping_add(u32::from(port)).wrapping_add(fold_addr(addr));
    hsiphash_u32(v, key)
}

fn gcd(mut a: i32, mut b: i32) -> i32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `fls`: 1-based index of the highest set bit, 0 for 0.
fn fls(x: i32) -> u32 {
    if x <= 0 { 0 } else { 32 - x.leading_zeros() }
}

/// The destination is usable for a new connection (`!is_unavailable`).
fn usable<D: AsRef<SchedDest>>(list: DestList<'_, D>, slot: DestSlot) -> bool {
    list.slot_data(slot).is_some_and(SchedDest::available)
}

impl Mh {
    pub(crate) const fn new() -> Self {
        Mh {
            lookup: [EMPTY; TAB_SIZE],
            gcd: 0,
            rshift: 0,
            stale: false,
        }
    }

    /// `ip_vs_mh_dest_changed` (also `init_service`): the table must be rebuilt from the
    /// list's last weights before the next lookup. Every change to the list or to a last
    /// weight calls this, so a rebuild at the next lookup sees what an eager one would.
    pub(crate) fn dest_changed(&mut self) {
        self.stale = true;
    }

    /// Recomputes gcd and shift from the last weights and rebuilds the table.
    fn rebuild<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        self.stale = false;
        self.gcd = list
            .iter()
            .map(|(_, d)| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0, gcd);
        self.rshift = if self.gcd < 1 {
            0
        } else {
            let max = list.iter().map(|(_, d)| d.last_weight).fold(0, i32::max);
            fls(max / self.gcd).saturating_sub(TAB_BITS)
        };
        self.reassign(list);
    }

    /// `ip_vs_mh_permutate` + `ip_vs_mh_populate`.
    fn reassign<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        if self.gcd < 1 {
            self.lookup.fill(EMPTY);
            return;
        }
        #[derive(Clone, Copy)]
        struct Setup {
            slot: DestSlot,
            skip: u32,
            perm: u32,
            turns: i32,
        }
        let mut setup = [Setup {
            slot: EMPTY,
            skip: 1,
            perm: 0,
            turns: 0,
        }; MAX_DESTS];
        let mut n_dests = 0;
        for ((slot, d), ds) in list.iter().zip(setup.iter_mut()) {
            let offset = hashkey(&d.addr, d.port, HASH1, 0) % TAB_SIZE as u32;
            let skip = hashkey(&d.addr, d.port, HASH2, 0) % (TAB_SIZE as u32 - 1) + 1;
            let lw = d.last_weight;
            let t = (lw / self.gcd) >> self.rshift;
            let turns = if t != 0 { t } else { i32::from(lw != 0) };
            *ds = Setup {
                slot,
                skip,
                perm: offset,
                turns,
            };
            n_dests += 1;
        }
        let setup = &mut setup[..n_dests];
        // A positive gcd means some destination has turns >= 1, so every round claims at
        // least one slot; checked anyway so that inconsistent input cannot loop forever.
        if !setup.iter().any(|ds| ds.turns >= 1) {
            self.lookup.fill(EMPTY);
            return;
        }
        let mut taken = [0u64; TAB_SIZE.div_ceil(64)];
        let mut filled = 0;
        let mut dt_count = 0;
        'fill: loop {
            let mut i = 0;
            while let Some(ds) = setup.get_mut(i) {
                // A destination added with weight 0 (last weight 0) takes no slot.
                if ds.turns < 1 {
                    i += 1;
                    continue;
                }
                // The probe ends: skip is in 1..M and M is prime, so the permutation visits
                // every slot, and `filled < M` means one is free.
                let (skip, wrap) = (ds.skip, TAB_SIZE as u32 - ds.skip);
                let mut perm = ds.perm;
                while taken[perm as usize / 64] & (1 << (perm % 64)) != 0 {
                    // The probe chain is the build's critical path: both candidates come from
                    // `perm` at once and a select (not a branch: whether the step wraps is a
                    // coin flip) picks one.
                    let (up, down) = (perm + skip, perm.wrapping_sub(wrap));
                    perm = if perm >= wrap { down } else { up };
                }
                ds.perm = perm;
                let c = perm as usize;
                taken[c / 64] |= 1 << (c % 64);
                self.lookup[c] = ds.slot;
                filled += 1;
                if filled == TAB_SIZE {
                    break 'fill;
                }
                dt_count += 1;
                if dt_count >= ds.turns {
                    dt_count = 0;
                    i += 1;
                }
            }
        }
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
        flags: SchedFlags,
    ) -> Option<DestSlot> {
        if self.stale {
            self.rebuild(list);
        }
        let port = if flags.contains(SchedFlags::PORT) {
            pkt.sport
        } else {
            0
        };
        let ihash = hashkey(&pkt.saddr, port, HASH1, 0) % TAB_SIZE as u32;
        let dest = self.lookup[ihash as usize];
        if dest == EMPTY {
            return None;
        }
        if usable(list, dest) {
            return Some(dest);
        }
        if !flags.contains(SchedFlags::FALLBACK) {
            return None;
        }
        for offset in 0..TAB_SIZE as u32 {
            let roffset = (offset + ihash) % TAB_SIZE as u32;
            let hash = hashkey(&pkt.saddr, port, HASH1, roffset) % TAB_SIZE as u32;
            let dest = self.lookup[hash as usize];
            if dest == EMPTY {
                break;
            }
            if usable(list, dest) {
                return Some(dest);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::*;
    use crate::service::Sched;

    /// The table a lookup would use now (built first if a change left it stale).
    fn table(svc: &Svc) -> [DestSlot; TAB_SIZE] {
        match &svc.state.algo {
            crate::sched::Algo::Mh(t) => {
                let mut t = t.clone();
                if t.stale {
                    t.rebuild(svc.list());
                }
                t.lookup
            }
            _ => unreachable!(),
        }
    }

    fn count(t: &[DestSlot], slot: DestSlot) -> usize {
        t.iter().filter(|&&s| s == slot).count()
    }

    /// A, B, C (10.1.0.1-3:80) with weight 1, added in that order: list C, B, A.
    fn abc(flags: SchedFlags) -> (Svc, [DestSlot; 3]) {
        let mut svc = Svc::new(Sched::Mh, flags);
        let a = svc.add("10.1.0.1", 80, 1);
        let b = svc.add("10.1.0.2", 80, 1);
        let c = svc.add("10.1.0.3", 80, 1);
        (svc, [a, b, c])
    }

    #[test]
    fn permutation_parameters_from_hsiphash() {
        // Values from an independent SipHash-1-3 (Python, checked against the same kernel
        // test vectors): offset = h(port + addr, k1) % 4093, skip = h(.., k2) % 4092 + 1.
        for (addr, port, offset, skip) in [
            ("10.1.0.1", 80, 310, 1461),
            ("10.1.0.2", 80, 2769, 572),
            ("10.1.0.3", 80, 2424, 45),
            ("2001:db8::5", 443, 2792, 3490),
        ] {
            let a = v4(addr);
            assert_eq!(hashkey(&a, port, HASH1, 0) % 4093, offset, "{addr}");
            assert_eq!(hashkey(&a, port, HASH2, 0) % 4092 + 1, skip, "{addr}");
        }
        for (client, slot, with_port_1234) in [
            ("10.0.0.1", 3711, 3457),
            ("203.0.113.9", 1189, 1502),
            ("2001:db8::1:2", 2554, 775),
        ] {
            assert_eq!(hashkey(&v4(client), 0, HASH1, 0) % 4093, slot);
            assert_eq!(hashkey(&v4(client), 1234, HASH1, 0) % 4093, with_port_1234);
        }
    }

    #[test]
    fn table_matches_reference_population() {
        let (svc, [a, b, c]) = abc(SchedFlags::NONE);
        let t = table(&svc);
        // First slots and the destinations' own offsets, from the Python reference of
        // ip_vs_mh_populate (each destination's first claim is its offset).
        assert_eq!(t[..12], [c, c, c, a, c, b, c, b, c, a, b, a]);
        assert_eq!((t[310], t[2769], t[2424]), (a, b, c));
        assert_eq!((t[3711], t[1189]), (a, b));
    }

    #[test]
    fn equal_weights_get_floor_or_ceil_of_m_over_n() {
        for n in [1usize, 2, 3, 7, 10, 100, 128] {
            let mut svc = Svc::new(Sched::Mh, SchedFlags::NONE);
            for i in 0..n {
                svc.add(&std::format!("10.2.{}.{}", i / 200, i % 200 + 1), 8080, 5);
            }
            let t = table(&svc);
            // One slot per destination per round, in list order: the first M % N of the list
            // get the extra slot.
            for (pos, &slot) in svc.order.iter().enumerate() {
                let want = TAB_SIZE / n + usize::from(pos < TAB_SIZE % n);
                assert_eq!(count(&t, slot), want, "n = {n}, pos {pos}");
            }
        }
    }

    #[test]
    fn weighted_tables_are_proportional() {
        let mut svc = Svc::new(Sched::Mh, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 1);
        let b = svc.add("10.1.0.2", 80, 2);
        let c = svc.add("10.1.0.3", 80, 3);
        // Turns 3, 2, 1 in list order C, B, A; 4093 = 682 * 6 + 1, the extra slot to C.
        let t = table(&svc);
        assert_eq!((count(&t, a), count(&t, b), count(&t, c)), (682, 1364, 2047));
        // Common factors cancel: 10, 20, 30 is the same table.
        svc.set_weight(a, 10);
        svc.set_weight(b, 20);
        svc.set_weight(c, 30);
        assert_eq!(table(&svc), t);
    }

    #[test]
    fn large_weights_are_shifted() {
        let mut svc = Svc::new(Sched::Mh, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 1);
        let b = svc.add("10.1.0.2", 80, 1000);
        // max / gcd = 1000, fls = 10, rshift = 4: turns 1000 >> 4 = 62 and 1 >> 4 = 0 -> 1.
        // Rounds of 63: 4093 = 64 * 63 + 61, so B gets 64 * 62 + 61.
        let t = table(&svc);
        assert_eq!((count(&t, a), count(&t, b)), (64, 4029));
        // A weight-0 newcomer (last weight 0) takes nothing.
        let z = svc.add("10.1.0.9", 80, 0);
        assert_eq!(count(&table(&svc), z), 0);
    }

    #[test]
    fn quiescing_keeps_the_table_and_fallback_moves_only_its_clients() {
        let (mut svc, [a, b, c]) = abc(SchedFlags::NONE);
        let before = table(&svc);
        svc.set_weight(b, 0);
        assert_eq!(table(&svc), before);
        // Without the fallback B's clients get nothing.
        assert_eq!(svc.pick(&pkt("203.0.113.9", 1)), None);
        assert_eq!(svc.pick(&pkt("10.0.0.1", 1)), Some(a));
        // With it, only B's clients move.
        svc.state.set_flags(SchedFlags::FALLBACK);
        let mut fallback = Svc::new(Sched::Mh, SchedFlags::NONE);
        fallback.add("10.1.0.1", 80, 1);
        fallback.add("10.1.0.2", 80, 1);
        fallback.add("10.1.0.3", 80, 1);
        for i in 0..3000 {
            let p = Svc::client(i);
            let was = fallback.pick(&p).unwrap();
            let now = svc.pick(&p).unwrap();
            if was == b {
                assert!(now == a || now == c);
            } else {
                assert_eq!(now, was);
            }
        }
        // Un-quiescing restores everything.
        svc.set_weight(b, 1);
        assert_eq!(table(&svc), before);
    }

    #[test]
    fn fallback_probe_sequence() {
        let (mut svc, [a, b, c]) = abc(SchedFlags::FALLBACK);
        svc.update(a, |d| d.overloaded = true);
        // 10.0.0.1 -> slot 3711 (A). Probes roffset = 3711 + k: k = 0 hashes to an A slot,
        // k = 1 to a C slot (Python reference) -> C.
        assert_eq!(svc.pick(&pkt("10.0.0.1", 1)), Some(c));
        // 10.0.0.5 -> B, available, used directly; with B out as well its probes go
        // A, A, C -> C.
        assert_eq!(svc.pick(&pkt("10.0.0.5", 1)), Some(b));
        svc.update(b, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("10.0.0.5", 1)), Some(c));
        svc.update(c, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("10.0.0.5", 1)), None);
    }

    #[test]
    fn mh_port_keys_on_the_source_port() {
        let (mut svc, [a, b, _c]) = abc(SchedFlags::PORT);
        let t = table(&svc);
        // 203.0.113.9 -> 1189 (B) with port 0, 1502 with port 1234.
        assert_eq!(svc.pick(&pkt("203.0.113.9", 0)), Some(b));
        assert_eq!(svc.pick(&pkt("203.0.113.9", 1234)), Some(t[1502]));
        // Without the flag the port is ignored.
        let (mut plain, _) = abc(SchedFlags::NONE);
        assert_eq!(plain.pick(&pkt("203.0.113.9", 1234)), Some(b));
        // Ports spread one client over every destination.
        let mut seen = [false; 3];
        for port in 1000..1100 {
            seen[usize::from(svc.pick(&pkt("203.0.113.9", port)).unwrap())] = true;
        }
        assert_eq!(seen, [true; 3]);
        let _ = a;
    }

    #[test]
    fn removing_one_of_ten_moves_about_a_tenth() {
        let mut svc = Svc::new(Sched::Mh, SchedFlags::NONE);
        let slots: std::vec::Vec<_> = (0..10)
            .map(|i| svc.add(&std::format!("10.3.0.{}", i + 1), 80, 1))
            .collect();
        let before = table(&svc);
        let gone = slots[4];
        svc.remove(gone);
        let after = table(&svc);
        let moved = before.iter().zip(after.iter()).filter(|(x, y)| x != y).count();
        let bystanders = before
            .iter()
            .zip(after.iter())
            .filter(|(x, y)| **x != gone && x != y)
            .count();
        std::println!("mh: removing 1 of 10 moved {moved} of {TAB_SIZE} slots, {bystanders} of others");
        // The departing destination's slots must move; few others may.
        assert_eq!(moved - bystanders, count(&before, gone));
        assert!((moved as f64) < TAB_SIZE as f64 * (0.1 + 0.02), "{moved}");
        assert!((bystanders as f64) < TAB_SIZE as f64 * 0.02, "{bystanders}");
        assert_eq!(count(&after, gone), 0);
    }

    #[test]
    fn distribution_over_clients_follows_slot_shares() {
        let mut svc = Svc::new(Sched::Mh, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 1);
        let b = svc.add("10.1.0.2", 80, 2);
        let c = svc.add("10.1.0.3", 80, 3);
        let mut hits = [0u32; 3];
        let n = 60_000u32;
        for i in 0..n {
            hits[usize::from(svc.pick(&Svc::client(i)).unwrap())] += 1;
        }
        for (slot, w) in [(a, 1.0), (b, 2.0), (c, 3.0)] {
            let share = f64::from(hits[usize::from(slot)]) / f64::from(n);
            assert!((share - w / 6.0).abs() < 0.02, "{hits:?}");
        }
    }

    #[test]
    fn empty_and_all_zero_tables() {
        let mut svc = Svc::new(Sched::Mh, SchedFlags::FALLBACK);
        assert!(table(&svc).iter().all(|&s| s == EMPTY));
        let a = svc.add("10.1.0.1", 80, 0);
        // Added with weight 0: last weight 0, gcd 0, empty table.
        assert!(table(&svc).iter().all(|&s| s == EMPTY));
        assert_eq!(svc.pick(&pkt("1.1.1.1", 1)), None);
        svc.set_weight(a, 2);
        assert!(table(&svc).iter().all(|&s| s == a));
        svc.remove(a);
        assert!(table(&svc).iter().all(|&s| s == EMPTY));
        assert_eq!(fls(0), 0);
        assert_eq!(fls(1), 1);
        assert_eq!(fls(1000), 10);
    }
}
