//! `sh`: source hashing (`ip_vs_sh.c`), with the `sh-fallback` and `sh-port` flags.
//!
//! A 256-bucket table filled by walking the list from the head: each destination takes
//! `weight` consecutive buckets (the fill moves on once `++count >= weight`, so a weight-0
//! destination still takes one bucket per cycle), wrapping until all buckets are filled. It
//! is rebuilt on every add, edit and delete; changing a weight from 1 to 0 therefore keeps the
//! table. A client maps to bucket `hash_32(port + ntohl(saddr), 8)` (IPv6: the XOR of the four
//! address words; `port` is the source port with `sh-port`, else 0). If that destination has
//! weight 0 or is overloaded there is no destination, unless `sh-fallback` is set: then the
//! kernel probes `hashkey(offset = ihash + k)` for k = 0, 1, ..., 255, i.e. bucket
//! `(2 * ihash + k) & 255` because the key already contains `ihash`.

use super::hash::{fold_addr, hash_32};
use super::{DestList, DestSlot, SchedDest, SchedPacket};
use crate::service::SchedFlags;

/// `IP_VS_SH_TAB_BITS` (Kconfig default).
const TAB_BITS: u32 = 8;
/// Number of buckets.
pub(crate) const TAB_SIZE: usize = 1 << TAB_BITS;
/// Marks an empty bucket (slots are below `MAX_DESTS` = 128).
pub(crate) const EMPTY: DestSlot = 0xFF;

/// The source-hashing table.
#[derive(Clone, Debug)]
pub(crate) struct Sh {
    buckets: [DestSlot; TAB_SIZE],
}

/// `ip_vs_sh_hashkey`.
fn hashkey(addr: &core::net::IpAddr, port: u16, offset: u32) -> usize {
    let h = hash_32(u32::from(port).wrapping_add(fold_addr(addr)), TAB_BITS);
    (offset.wrapping_add(h) as usize) & (TAB_SIZE - 1)
}

/// The destination is usable for a new connection (`!is_unavailable`).
fn usable<D: AsRef<SchedDest>>(list: DestList<'_, D>, slot: DestSlot) -> bool {
    list.slot_data(slot).is_some_and(SchedDest::available)
}

/// `ip_vs_sh_reassign` (and dh's `ip_vs_dh_reassign` with `weighted = false`): tile the
/// buckets over the list, `weight` buckets per destination per cycle, or one when unweighted.
pub(crate) fn fill<D: AsRef<SchedDest>>(table: &mut [DestSlot], list: DestList<'_, D>, weighted: bool) {
    let n = list.len();
    if n == 0 {
        table.fill(EMPTY);
        return;
    }
    let mut pos = 0;
    let mut count = 0i64;
    for b in table.iter_mut() {
        let (slot, weight) = list.get(pos).map_or((EMPTY, 0), |(s, d)| (s, d.weight));
        *b = slot;
        count += 1;
        if !weighted || count >= i64::from(weight) {
            pos = (pos + 1) % n;
            count = 0;
        }
    }
}

impl Sh {
    /// An empty table (`init_service` on a service without destinations).
    pub(crate) const fn new() -> Self {
        Sh {
            buckets: [EMPTY; TAB_SIZE],
        }
    }

    /// The add/edit/delete hook: rebuild from the current list.
    pub(crate) fn reassign<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        fill(&mut self.buckets, list, true);
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(
        &self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
        flags: SchedFlags,
    ) -> Option<DestSlot> {
        let port = if flags.contains(SchedFlags::PORT) {
            pkt.sport
        } else {
            0
        };
        let ihash = hashkey(&pkt.saddr, port, 0);
        let dest = self.buckets[ihash];
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
            let roffset = (offset + ihash as u32) % TAB_SIZE as u32;
            let dest = self.buckets[hashkey(&pkt.saddr, port, roffset)];
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

    fn table(svc: &Svc) -> &[DestSlot; TAB_SIZE] {
        match &svc.state.algo {
            crate::sched::Algo::Sh(t) => &t.buckets,
            _ => unreachable!(),
        }
    }

    /// A weight 3, B weight 1, C weight 2, added in that order: list C, B, A, so the buckets
    /// repeat C C B A A A.
    fn cba(flags: SchedFlags) -> (Svc, [DestSlot; 3]) {
        let mut svc = Svc::new(Sched::Sh, flags);
        let a = svc.add("10.1.0.1", 80, 3);
        let b = svc.add("10.1.0.2", 80, 1);
        let c = svc.add("10.1.0.3", 80, 2);
        (svc, [a, b, c])
    }

    #[test]
    fn buckets_tile_by_weight_in_list_order() {
        let (svc, [a, b, c]) = cba(SchedFlags::NONE);
        let period = [c, c, b, a, a, a];
        for (i, &got) in table(&svc).iter().enumerate() {
            assert_eq!(got, period[i % 6], "bucket {i}");
        }
        // 256 = 42 * 6 + 4: the last partial cycle is C C B A.
        let count = |s| table(&svc).iter().filter(|&&x| x == s).count();
        assert_eq!((count(a), count(b), count(c)), (127, 43, 86));
    }

    #[test]
    fn concrete_clients_hash_to_concrete_buckets() {
        let (mut svc, [a, b, c]) = cba(SchedFlags::NONE);
        // hash_32(ntohl(addr), 8), worked out in hash.rs: 10.0.0.1 -> 39 (39 % 6 = 3: A),
        // 10.0.0.3 -> 235 (235 % 6 = 1: C), 255.255.255.255 -> 158 (158 % 6 = 2: B),
        // 0.0.0.0 -> 0 (C).
        for (client, bucket, want) in [
            ("10.0.0.1", 39, a),
            ("10.0.0.3", 235, c),
            ("255.255.255.255", 158, b),
            ("0.0.0.0", 0, c),
        ] {
            assert_eq!(hashkey(&v4(client), 0, 0), bucket, "{client}");
            assert_eq!(svc.pick(&pkt(client, 5555)), Some(want), "{client}");
        }
        // IPv6: 2001:db8::1:2 folds to 0x20010db8 ^ 0x00010002 = 0x20000dba -> bucket 26 (B).
        assert_eq!(hashkey(&v4("2001:db8::1:2"), 0, 0), 26);
        assert_eq!(table(&svc)[26], b);
    }

    #[test]
    fn sh_port_adds_the_source_port() {
        let (mut svc, [a, _b, c]) = cba(SchedFlags::PORT);
        // 0x0a000001 + 2 = 10.0.0.3's key -> bucket 235 (C); port 0 -> 39 (A).
        assert_eq!(svc.pick(&pkt("10.0.0.1", 2)), Some(c));
        assert_eq!(svc.pick(&pkt("10.0.0.1", 0)), Some(a));
        // hash_32(0x0a000001 + 8080, 8) = 112 -> A.
        assert_eq!(hashkey(&v4("10.0.0.1"), 8080, 0), 112);
        // Without the flag the port is ignored.
        let (mut plain, [a, ..]) = cba(SchedFlags::NONE);
        assert_eq!(plain.pick(&pkt("10.0.0.1", 2)), Some(a));
    }

    #[test]
    fn fallback_probes_twice_the_hash_plus_k() {
        let (mut svc, [a, b, c]) = cba(SchedFlags::FALLBACK);
        svc.update(a, |d| d.overloaded = true);
        // 10.0.0.4 -> bucket 77 (A, unavailable). Probes (2 * 77 + k) & 255 = 154 (A),
        // 155 (A), 156 (C) -> C.
        assert_eq!(hashkey(&v4("10.0.0.4"), 0, 0), 77);
        assert_eq!(svc.pick(&pkt("10.0.0.4", 1)), Some(c));
        // With C out too (overloaded, so the table stays): 157 (C), 158 (B) -> B.
        svc.update(c, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt("10.0.0.4", 1)), Some(b));
        // 10.0.0.1 -> 39 (A): probes 78 (C), 79 (C), 80 (B) -> B.
        assert_eq!(svc.pick(&pkt("10.0.0.1", 1)), Some(b));
        // An available hashed destination is used directly: 255.255.255.255 -> 158 (B).
        assert_eq!(svc.pick(&pkt("255.255.255.255", 1)), Some(b));
        // Nothing available: every probe fails.
        svc.set_weight(b, 0);
        assert_eq!(svc.pick(&pkt("10.0.0.4", 1)), None);
        // Without the flag an unavailable bucket means no destination.
        let (mut plain, [a, ..]) = cba(SchedFlags::NONE);
        plain.update(a, |d| d.overloaded = true);
        assert_eq!(plain.pick(&pkt("10.0.0.4", 1)), None);
    }

    #[test]
    fn weight_one_to_zero_keeps_the_table() {
        let mut svc = Svc::new(Sched::Sh, SchedFlags::NONE);
        let a = svc.add("10.1.0.1", 80, 1);
        let b = svc.add("10.1.0.2", 80, 1);
        let c = svc.add("10.1.0.3", 80, 1);
        let before = *table(&svc);
        svc.set_weight(b, 0);
        assert_eq!(*table(&svc), before);
        // B's clients get nothing (no fallback); the others keep their destination.
        let mut seen = [0u32; 3];
        for i in 0..600 {
            match svc.pick(&Svc::client(i)) {
                Some(s) => seen[usize::from(s)] += 1,
                None => seen[usize::from(b)] += 1,
            }
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
        // A weight change 1 -> 2 re-tiles.
        svc.set_weight(a, 2);
        assert_ne!(*table(&svc), before);
        let _ = c;
    }

    #[test]
    fn deleting_re_tiles_and_empty_list_clears() {
        let (mut svc, [a, b, c]) = cba(SchedFlags::NONE);
        svc.remove(b);
        let period = [c, c, a, a, a];
        for (i, &got) in table(&svc).iter().enumerate() {
            assert_eq!(got, period[i % 5], "bucket {i}");
        }
        svc.remove(a);
        svc.remove(c);
        assert!(table(&svc).iter().all(|&s| s == EMPTY));
        assert_eq!(svc.pick(&pkt("10.0.0.1", 1)), None);
    }

    #[test]
    fn distribution_follows_bucket_shares() {
        let (mut svc, [a, b, c]) = cba(SchedFlags::NONE);
        let mut count = [0u32; 3];
        let n = 60_000u32;
        for i in 0..n {
            count[usize::from(svc.pick(&Svc::client(i)).unwrap())] += 1;
        }
        for (slot, buckets) in [(a, 127.0), (b, 43.0), (c, 86.0)] {
            let share = f64::from(count[usize::from(slot)]) / f64::from(n);
            assert!((share - buckets / 256.0).abs() < 0.02, "{count:?}");
        }
        // The same client always lands on the same destination.
        let p = pkt("203.0.113.9", 1);
        let first = svc.pick(&p);
        assert!((0..10).all(|_| svc.pick(&p) == first));
    }
}
