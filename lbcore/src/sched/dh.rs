//! `dh`: destination hashing (`ip_vs_dh.c`).
//!
//! A 256-bucket table with one bucket per destination per cycle, in list order — weights are
//! ignored — rebuilt when a destination is added or deleted (the kernel has no edit hook for
//! dh). A packet maps to bucket `hash_32(ntohl(daddr), 8)` (IPv6: XOR of the four words); if
//! that destination has weight 0 or is overloaded there is no destination (no fallback).

use super::hash::{fold_addr, hash_32};
use super::sh::{EMPTY, TAB_SIZE, fill};
use super::{DestList, DestSlot, SchedDest, SchedPacket};

/// The destination-hashing table.
#[derive(Clone, Debug)]
pub(crate) struct Dh {
    buckets: [DestSlot; TAB_SIZE],
}

/// `ip_vs_dh_hashkey`.
fn hashkey(addr: &core::net::IpAddr) -> usize {
    hash_32(fold_addr(addr), 8) as usize & (TAB_SIZE - 1)
}

impl Dh {
    pub(crate) const fn new() -> Self {
        Dh {
            buckets: [EMPTY; TAB_SIZE],
        }
    }

    /// `ip_vs_dh_reassign`, the add and delete hook.
    pub(crate) fn reassign<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) {
        fill(&mut self.buckets, list, false);
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(
        &self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
    ) -> Option<DestSlot> {
        let dest = self.buckets[hashkey(&pkt.daddr)];
        if dest == EMPTY {
            return None;
        }
        list.slot_data(dest).filter(|d| d.available()).map(|_| dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    fn table(svc: &Svc) -> &[DestSlot; TAB_SIZE] {
        match &svc.state.algo {
            crate::sched::Algo::Dh(t) => &t.buckets,
            _ => unreachable!(),
        }
    }

    #[test]
    fn one_bucket_per_destination_and_concrete_lookups() {
        let mut svc = Svc::new(Sched::Dh, SchedFlags::FALLBACK);
        let a = svc.add("10.1.0.1", 80, 5);
        let b = svc.add("10.1.0.2", 80, 1);
        let c = svc.add("10.1.0.3", 80, 3);
        // List C, B, A; weights ignored: C B A C B A ...
        for (i, &got) in table(&svc).iter().enumerate() {
            assert_eq!(got, [c, b, a][i % 3], "bucket {i}");
        }
        // hash_32(ntohl(daddr), 8): 192.0.2.1 -> 50 (50 % 3 = 2: A), 192.0.2.2 -> 148 (B),
        // 192.0.2.3 -> 246 (C). The source address plays no part.
        for (daddr, bucket, want) in [("192.0.2.1", 50, a), ("192.0.2.2", 148, b), ("192.0.2.3", 246, c)] {
            assert_eq!(hashkey(&v4(daddr)), bucket);
            assert_eq!(svc.pick(&pkt_d("1.1.1.1", 1, daddr)), Some(want));
            assert_eq!(svc.pick(&pkt_d("9.9.9.9", 2, daddr)), Some(want));
        }
        // Unavailable means no destination, even with the fallback flag (dh has none).
        svc.update(a, |d| d.overloaded = true);
        assert_eq!(svc.pick(&pkt_d("1.1.1.1", 1, "192.0.2.1")), None);
        // An edit does not re-tile; a weight change is irrelevant anyway.
        svc.update(a, |d| d.overloaded = false);
        svc.set_weight(a, 0);
        assert_eq!(table(&svc)[50], a);
        assert_eq!(svc.pick(&pkt_d("1.1.1.1", 1, "192.0.2.1")), None);
        // Deleting re-tiles: C A C A ...
        svc.remove(b);
        assert_eq!(table(&svc)[..4], [c, a, c, a]);
        svc.remove(a);
        svc.remove(c);
        assert!(table(&svc).iter().all(|&s| s == EMPTY));
    }
}
