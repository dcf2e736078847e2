//! The fixed-size destination-address cache behind lblc and lblcr.
//!
//! The kernel keeps an unbounded chained hash table (garbage-collected above 16 × 1024
//! entries) of `destination address -> destination` (lblc) or `-> set of destinations`
//! (lblcr). Here the table is inline: 1024 entries, 8-way set associative (128 sets indexed by
//! `hash_32` of the folded address). Replacement when a set is full: an expired entry if there
//! is one, otherwise the least recently used entry of the set (smallest `lastuse`, the first
//! such way on a tie). Entries expire lazily: an entry whose `lastuse + expiration` has passed
//! is treated as absent when it is next looked up (the kernel removes it on its next periodic
//! check, which runs every 30 minutes).
//!
//! # Removed destinations
//! A kernel cache entry holds a reference to its destination, so a destination deleted from
//! the service stays in the "trash" while entries refer to it: lblc treats it as unavailable,
//! lblcr keeps it in its sets (it counts toward the set size and can be shed as the most
//! loaded member), and re-adding the same address and port revives that very destination,
//! making the entries valid again. Slots, in contrast, are reused for other destinations. So
//! on removal every reference to the slot becomes a reference to a *ghost* (address, port,
//! weight; its counters are read from the old slot until the slot is reused, after which the
//! kernel's trash copy has no connections left, since the balancer only frees slots without
//! connections). Re-adding a ghost's address and port, in any slot, turns its references back
//! into live ones. At most [`GHOSTS`] ghosts exist at once; beyond that (after reclaiming
//! unreferenced ones) references become anonymous ghosts that can no longer be revived.
//!
//! A reference is one byte: `0..MAX_DESTS` a live slot, `0x80 + id` a ghost, and two
//! anonymous values for ghosts with a positive or a zero weight.

use core::net::IpAddr;

use super::hash::{fold_addr, hash_32};
use super::{DestList, DestSlot, MAX_DESTS, SchedDest};
use crate::time::{Duration, Instant};

/// Ways per set.
const WAYS: usize = 8;
/// log2 of the number of sets.
const SET_BITS: u32 = 7;
/// Entries in the cache.
pub(crate) const ENTRIES: usize = WAYS << SET_BITS;

/// A reference to a destination, live or removed (see the module docs).
pub(crate) type DestRef = u8;
/// First ghost reference.
const GHOST_BASE: u8 = 0x80;
/// How many removed destinations can be remembered by identity at once.
pub(crate) const GHOSTS: usize = 64;
/// A removed destination with weight > 0 that can no longer be revived.
const ANON_WEIGHTED: DestRef = 0xFE;
/// A removed destination with weight <= 0 that can no longer be revived.
const ANON_ZERO: DestRef = 0xFF;

/// Whether `r` names a live slot.
pub(crate) fn is_live(r: DestRef) -> bool {
    usize::from(r) < MAX_DESTS
}

/// A cached value: the destination references it holds.
pub(crate) trait Refs: Copy {
    /// The value of a never-used entry.
    const EMPTY: Self;
    /// The references held.
    fn refs(&self) -> &[DestRef];
    /// The references held, for rewriting.
    fn refs_mut(&mut self) -> &mut [DestRef];
}

/// What the scheduler may know of a referenced destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct View {
    /// In the service (`IP_VS_DEST_F_AVAILABLE`).
    pub live: bool,
    pub weight: i32,
    pub overhead: u64,
}

/// One cache entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<V> {
    pub lastuse: Instant,
    /// The destination address; `None` for an unused way.
    pub key: Option<IpAddr>,
    pub val: V,
}

/// A removed destination that cache entries still refer to.
#[derive(Clone, Copy, Debug)]
struct Ghost {
    /// Address and port; `None` for a free ghost.
    key: Option<(IpAddr, u16)>,
    /// Weight when removed (it cannot change afterwards).
    weight: i32,
    /// The slot still holding its data and counters, until the slot is reused.
    data: Option<DestSlot>,
}

const FREE_GHOST: Ghost = Ghost {
    key: None,
    weight: 0,
    data: None,
};

/// The cache, with its ghost registry.
#[derive(Clone, Debug)]
pub(crate) struct Cache<V> {
    entries: [Entry<V>; ENTRIES],
    ghosts: [Ghost; GHOSTS],
    /// `lblc_expiration` / `lblcr_expiration`.
    pub expiration: Duration,
}

impl<V: Refs> Cache<V> {
    pub(crate) const fn new(expiration: Duration) -> Self {
        Cache {
            entries: [Entry {
                lastuse: Instant::ZERO,
                key: None,
                val: V::EMPTY,
            }; ENTRIES],
            ghosts: [FREE_GHOST; GHOSTS],
            expiration,
        }
    }

    fn set_of(key: &IpAddr) -> core::ops::Range<usize> {
        let set = hash_32(fold_addr(key), SET_BITS) as usize;
        set * WAYS..(set + 1) * WAYS
    }

    fn expired(&self, e: &Entry<V>, now: Instant) -> bool {
        now >= e.lastuse.saturating_add(self.expiration)
    }

    /// The live entry for `key`, as an index. An expired entry for `key` is dropped.
    pub(crate) fn find(&mut self, key: &IpAddr, now: Instant) -> Option<usize> {
        let i = Self::set_of(key).find(|&i| self.entries[i].key.as_ref() == Some(key))?;
        if self.expired(&self.entries[i], now) {
            self.entries[i].key = None;
            return None;
        }
        Some(i)
    }

    /// The entry at `idx` (from [`Cache::find`] or [`Cache::insert`]).
    pub(crate) fn entry_mut(&mut self, idx: usize) -> &mut Entry<V> {
        &mut self.entries[idx % ENTRIES]
    }

    /// Stores a new entry for `key` (which must not be present), replacing an empty, an
    /// expired, or else the least recently used way of its set. Returns its index.
    pub(crate) fn insert(&mut self, key: IpAddr, now: Instant, val: V) -> usize {
        let ways = Self::set_of(&key);
        let idx = ways
            .clone()
            .find(|&i| self.entries[i].key.is_none())
            .or_else(|| ways.clone().find(|&i| self.expired(&self.entries[i], now)))
            .or_else(|| ways.clone().min_by_key(|&i| self.entries[i].lastuse))
            .unwrap_or(ways.start);
        self.entries[idx] = Entry {
            lastuse: now,
            key: Some(key),
            val,
        };
        idx
    }

    /// What is known of the destination behind `r`.
    pub(crate) fn view<D: AsRef<SchedDest>>(&self, r: DestRef, list: DestList<'_, D>) -> Option<View> {
        let from = |d: &SchedDest, live| View {
            live,
            weight: d.weight,
            overhead: d.overhead(),
        };
        if is_live(r) {
            return list.slot_data(r).map(|d| from(d, true));
        }
        match r {
            ANON_WEIGHTED => Some(View {
                live: false,
                weight: 1,
                overhead: 0,
            }),
            ANON_ZERO => Some(View {
                live: false,
                weight: 0,
                overhead: 0,
            }),
            _ => {
                let g = self.ghosts.get(usize::from(r - GHOST_BASE))?;
                g.key?;
                match g.data.and_then(|s| list.slot_data(s)) {
                    Some(d) => Some(from(d, false)),
                    None => Some(View {
                        live: false,
                        weight: g.weight,
                        overhead: 0,
                    }),
                }
            }
        }
    }

    fn refs_mut(&mut self) -> impl Iterator<Item = &mut DestRef> {
        self.entries
            .iter_mut()
            .filter(|e| e.key.is_some())
            .flat_map(|e| e.val.refs_mut().iter_mut())
    }

    fn replace(&mut self, from: DestRef, to: DestRef) {
        for r in self.refs_mut() {
            if *r == from {
                *r = to;
            }
        }
    }

    fn free_ghost(&mut self) -> Option<usize> {
        if let Some(g) = self.ghosts.iter().position(|g| g.key.is_none()) {
            return Some(g);
        }
        // Reclaim ghosts no entry refers to any more.
        let mut used = [false; GHOSTS];
        for e in self.entries.iter().filter(|e| e.key.is_some()) {
            for &r in e.val.refs() {
                if let Some(u) = r
                    .checked_sub(GHOST_BASE)
                    .and_then(|g| used.get_mut(usize::from(g)))
                {
                    *u = true;
                }
            }
        }
        for (g, u) in self.ghosts.iter_mut().zip(used) {
            if !u {
                *g = FREE_GHOST;
            }
        }
        self.ghosts.iter().position(|g| g.key.is_none())
    }

    /// The destination in `slot` left the service (its data is still in `list.slots`).
    pub(crate) fn dest_removed<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        if !is_live(slot) {
            return;
        }
        let referenced = self
            .entries
            .iter()
            .any(|e| e.key.is_some() && e.val.refs().contains(&slot));
        if !referenced {
            return;
        }
        let (key, weight) = match list.slot_data(slot) {
            Some(d) => (Some((d.addr, d.port)), d.weight),
            None => (None, 1),
        };
        match (key, self.free_ghost()) {
            (Some(key), Some(g)) => {
                self.ghosts[g] = Ghost {
                    key: Some(key),
                    weight,
                    data: Some(slot),
                };
                // `g < GHOSTS = 64`, so the reference stays below the anonymous values.
                self.replace(slot, GHOST_BASE + g as u8);
            }
            _ => self.replace(slot, if weight > 0 { ANON_WEIGHTED } else { ANON_ZERO }),
        }
    }

    /// A destination was added in `slot`: ghosts whose data lived there lose it, and a ghost
    /// with the new destination's address and port comes back to life in `slot`.
    pub(crate) fn dest_added<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        for g in self.ghosts.iter_mut() {
            if g.data == Some(slot) {
                g.data = None;
            }
        }
        let Some(d) = list.slot_data(slot) else { return };
        if !is_live(slot) {
            return;
        }
        let key = Some((d.addr, d.port));
        if let Some(g) = self.ghosts.iter().position(|g| g.key == key) {
            self.ghosts[g] = FREE_GHOST;
            self.replace(GHOST_BASE + g as u8, slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::v4;

    #[derive(Clone, Copy, Debug, PartialEq)]
    struct One(DestRef);
    impl Refs for One {
        const EMPTY: Self = One(0);
        fn refs(&self) -> &[DestRef] {
            core::slice::from_ref(&self.0)
        }
        fn refs_mut(&mut self) -> &mut [DestRef] {
            core::slice::from_mut(&mut self.0)
        }
    }

    /// `n` distinct IPv4 keys that fall into the same set.
    fn same_set_keys(n: usize) -> std::vec::Vec<IpAddr> {
        let target = Cache::<One>::set_of(&v4("10.0.0.0"));
        (0u32..)
            .map(|i| IpAddr::V4(core::net::Ipv4Addr::from(0x0a00_0000 + i)))
            .filter(|k| Cache::<One>::set_of(k) == target)
            .take(n)
            .collect()
    }

    #[test]
    fn full_set_replaces_expired_then_least_recently_used() {
        let mut c: Cache<One> = Cache::new(Duration::from_secs(100));
        let keys = same_set_keys(WAYS + 2);
        for (i, k) in keys.iter().take(WAYS).enumerate() {
            c.insert(*k, Instant::from_secs(10 + i as u64), One(i as u8));
        }
        // Touch the oldest so the second oldest becomes the LRU victim.
        let i0 = c.find(&keys[0], Instant::from_secs(50)).unwrap();
        c.entry_mut(i0).lastuse = Instant::from_secs(50);
        c.insert(keys[WAYS], Instant::from_secs(51), One(99));
        assert!(c.find(&keys[1], Instant::from_secs(51)).is_none());
        assert!(c.find(&keys[0], Instant::from_secs(51)).is_some());
        assert!(c.find(&keys[WAYS], Instant::from_secs(51)).is_some());
        // At t = 113 the entry used at 12 has expired (12 + 100 <= 113) and goes first, even
        // though nothing else is older.
        c.insert(keys[WAYS + 1], Instant::from_secs(113), One(98));
        assert!(c.find(&keys[2], Instant::from_secs(60)).is_none());
        assert!(c.find(&keys[3], Instant::from_secs(60)).is_some());
    }

    #[test]
    fn expiry_is_lazy_and_exact() {
        let mut c: Cache<One> = Cache::new(Duration::from_secs(100));
        let k = v4("192.0.2.7");
        c.insert(k, Instant::from_secs(0), One(1));
        assert!(c.find(&k, Instant::from_millis(99_999)).is_some());
        assert!(c.find(&k, Instant::from_secs(100)).is_none());
        // Dropped, not just hidden.
        assert!(c.find(&k, Instant::from_secs(0)).is_none());
    }

    #[test]
    fn ghosts_overflow_to_anonymous_references() {
        let mut c: Cache<One> = Cache::new(Duration::from_secs(100));
        let mut slots = std::vec![SchedDest::new(v4("10.0.0.1"), 80, 3); MAX_DESTS];
        for (i, d) in slots.iter_mut().enumerate() {
            d.addr = IpAddr::V4(core::net::Ipv4Addr::from(0x0a00_0100 + i as u32));
        }
        // One entry per destination, then remove them all (nothing is re-added).
        let mut idx = std::vec::Vec::new();
        for s in 0..100u8 {
            idx.push(c.insert(
                IpAddr::V4(core::net::Ipv4Addr::from(0xc000_0200 + u32::from(s))),
                Instant::ZERO,
                One(s),
            ));
        }
        let order: std::vec::Vec<u8> = std::vec::Vec::new();
        let list = DestList {
            slots: &slots[..],
            order: &order[..],
        };
        for s in 0..100u8 {
            c.dest_removed(list, s);
        }
        let vals: std::vec::Vec<_> = idx.iter().map(|&i| c.entry_mut(i).val.0).collect();
        assert!(
            vals[..GHOSTS]
                .iter()
                .all(|&r| (GHOST_BASE..GHOST_BASE + GHOSTS as u8).contains(&r))
        );
        assert!(vals[GHOSTS..].iter().all(|&r| r == ANON_WEIGHTED));
        assert_eq!(
            c.view(ANON_WEIGHTED, list),
            Some(View {
                live: false,
                weight: 1,
                overhead: 0
            })
        );
        assert_eq!(c.view(ANON_ZERO, list).map(|v| v.weight), Some(0));
        // A ghost still reads its old slot's counters.
        assert_eq!(
            c.view(GHOST_BASE, list),
            Some(View {
                live: false,
                weight: 3,
                overhead: 0
            })
        );
    }
}
