//! The connection table: fixed-capacity entries of one cache line each, a chained hash index
//! kept inside those entries, and an O(1) free list.
//!
//! Guarantees: no allocation after construction, no panics on any index the table handed out,
//! one hash computation per lookup (done by the caller), and entries of exactly one cache line
//! (64 bytes; checked at compile time) that are the table's whole memory: `capacity × 64`
//! bytes, with no separate bucket array. Each entry can sit on two hash chains: its *in* node
//! (keyed by the client-side tuple) and, for NAT/FULLNAT, its *out* node (keyed by the
//! server-side tuple of replies), so one lookup in one table finds either direction.
//! Persistence templates are entries too (IPVS does the same), keyed by the masked client.
//!
//! There are as many buckets as entries, and bucket `b`'s chain head is a field of entry `b`,
//! whatever that entry holds. A new entry takes the slot of its own bucket when that slot is
//! free (coalesced placement), so most lookups find the chain head and the entry on the same
//! cache line: one memory access where a separate bucket array costs two.
//!
//! Expiry times are 32-bit millisecond ticks compared with wrap-around, as the kernel compares
//! jiffies: this holds while timeouts stay within [`MAX_TIMEOUT`] (24 days; longer ones are
//! capped) and the caller's sweep (`Balancer::expire`) examines every entry at least once in
//! 24 days, which the sweep pace of `Balancer::poll_timeout` does many times over.
//!
//! The table knows nothing of services: the caller computes hashes and matches nodes with a
//! predicate, and the [`crate::Balancer`] implements the IPVS semantics on top.

use super::state::ConnState;
use crate::storage::Storage;
use crate::time::{Duration, Instant};

/// "No entry" in chains and the free list.
pub(crate) const NIL: u32 = u32::MAX;

/// Nanoseconds per expiry tick.
const TICK_NANOS: u64 = 1_000_000;

/// The longest timeout an entry holds: 24 days, within the 2^31 ticks of 1 ms (≈ 24.8 days)
/// that a wrap-around comparison can tell apart. Longer timeouts are capped to it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 86_400);

/// The largest capacity: nodes are encoded as `index << 1 | direction` in 32 bits.
pub const MAX_CAPACITY: usize = (1 << 31) - 1;

/// Entry flag bits.
pub(crate) mod flag {
    /// The entry is in use.
    pub const IN_USE: u8 = 0x01;
    /// UDP (else TCP) — for templates: the service protocol; irrelevant for fwmark templates.
    pub const UDP: u8 = 0x02;
    /// A persistence template.
    pub const TEMPLATE: u8 = 0x04;
    /// Counted as inactive on its destination (IPVS's IP_VS_CONN_F_INACTIVE).
    pub const INACTIVE: u8 = 0x08;
    /// Replies bypass the balancer (DR/TUN): use the INPUT_ONLY TCP table.
    pub const NOOUTPUT: u8 = 0x10;
    /// Linked on its in-direction chain.
    pub const IN_HASHED: u8 = 0x20;
    /// Linked on its out-direction chain.
    pub const OUT_HASHED: u8 = 0x40;
    /// A template of a firewall-mark service (`vaddr` holds the mark).
    pub const FWMARK: u8 = 0x80;
}

/// Which chain a node belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to virtual service.
    In = 0,
    /// Real server to client (NAT/FULLNAT replies).
    Out = 1,
}

impl Dir {
    /// The chain a node reference (`index << 1 | direction`) belongs to.
    fn of_node(node: u32) -> Dir {
        if node & 1 == 0 { Dir::In } else { Dir::Out }
    }
}

/// One tracked connection or persistence template. Addresses are stored as 128-bit values,
/// IPv4 as IPv4-mapped IPv6, so one comparison covers both families. Aligned to the 64-byte
/// cache line, so that a lookup touches one line per entry: with only the 16-byte alignment of
/// its `u128`s, a table from the allocator (glibc returns large blocks 16 bytes past a page
/// boundary) had every entry straddle two lines, its ports and state in the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct Conn {
    /// Client address (masked, for templates).
    pub caddr: u128,
    /// Virtual address the client used (the firewall mark, for fwmark templates).
    pub vaddr: u128,
    /// When the entry expires: a millisecond tick of the caller's clock, modulo 2^32 (see the
    /// module docs; read it with [`Conn::expires_at`]).
    pub(crate) expires: u32,
    /// Head of the hash chain of the bucket with this entry's index (not this entry's own
    /// chain: the table's index, stored here so that it costs no memory of its own).
    pub(crate) head: u32,
    /// Next node on the in / out chains; for a free entry, the next and previous free entries.
    pub(crate) next: [u32; 2],
    /// For a connection: its template's index or NIL. For a template: how many connections
    /// it controls (IPVS's `n_control`).
    pub control: u32,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual port (0 for port-zero and fwmark templates).
    pub vport: u16,
    /// FULLNAT local port.
    pub lport: u16,
    /// Service index.
    pub svc: u16,
    /// Destination slot within the service.
    pub dest: u8,
    /// Low 4 bits: [`ConnState`]; bits 4-5: forwarding kind (see [`FwdKind`]).
    pub(crate) state: u8,
    /// [`flag`] bits.
    pub(crate) flags: u8,
    /// FULLNAT local address index in the pool.
    pub laddr: u8,
}

const _: () = assert!(
    core::mem::size_of::<Conn>() == 64 && core::mem::align_of::<Conn>() == 64,
    "a connection entry is one cache line"
);

/// The forwarding method bound to a connection when it is created (IPVS binds the transmitter
/// once per connection, `ip_vs_bind_xmit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FwdKind {
    /// Direct routing.
    Dr = 0,
    /// Tunnel.
    Tun = 1,
    /// NAT.
    Nat = 2,
    /// Full NAT.
    FullNat = 3,
}

/// The tick `now` falls in (rounded down), modulo 2^32.
fn tick_of(now: Instant) -> u32 {
    (now.as_nanos() / TICK_NANOS) as u32
}

impl Conn {
    /// An unused entry.
    pub const EMPTY: Conn = Conn {
        caddr: 0,
        vaddr: 0,
        expires: 0,
        head: NIL,
        next: [NIL, NIL],
        control: NIL,
        cport: 0,
        vport: 0,
        lport: 0,
        svc: 0,
        dest: 0,
        state: 0,
        flags: 0,
        laddr: 0,
    };

    /// Arms the timer: the entry expires `timeout` after `now` (rounded up to the next tick,
    /// so never early; capped at [`MAX_TIMEOUT`]).
    pub(crate) fn set_expiry(&mut self, now: Instant, timeout: Duration) {
        let at = (now + timeout.min(MAX_TIMEOUT)).as_nanos();
        self.expires = at.div_ceil(TICK_NANOS) as u32;
    }

    /// Whether the timer has run out at `now` (the expiry instant itself counts as expired).
    pub fn expired(&self, now: Instant) -> bool {
        self.ticks_left(now) <= 0
    }

    /// Whole ticks from `now`'s tick to the expiry; zero or less once expired.
    pub(crate) fn ticks_left(&self, now: Instant) -> i32 {
        self.expires.wrapping_sub(tick_of(now)) as i32
    }

    /// When the entry expires, as an instant of the caller's clock (`now` anchors the 32-bit
    /// tick; see the module docs).
    pub fn expires_at(&self, now: Instant) -> Instant {
        let ticks = (now.as_nanos() / TICK_NANOS) as i64 + i64::from(self.ticks_left(now));
        Instant::from_nanos(u64::try_from(ticks).unwrap_or(0).saturating_mul(TICK_NANOS))
    }

    /// The protocol state.
    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state & 0x0f)
    }
    pub(crate) fn set_state(&mut self, s: ConnState) {
        self.state = (self.state & 0xf0) | (s as u8);
    }
    /// The forwarding method bound at creation.
    pub fn fwd(&self) -> FwdKind {
        match (self.state >> 4) & 3 {
            0 => FwdKind::Dr,
            1 => FwdKind::Tun,
            2 => FwdKind::Nat,
            _ => FwdKind::FullNat,
        }
    }
    pub(crate) fn set_fwd(&mut self, f: FwdKind) {
        self.state = (self.state & 0x0f) | ((f as u8) << 4);
    }
    /// Whether the entry holds a connection or template.
    pub fn in_use(&self) -> bool {
        self.flags & flag::IN_USE != 0
    }
    /// Whether the entry is a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flag::TEMPLATE != 0
    }
    /// IP protocol number of the entry (0 for fwmark templates).
    pub fn proto(&self) -> u8 {
        if self.flags & flag::FWMARK != 0 {
            0
        } else if self.flags & flag::UDP != 0 {
            17
        } else {
            6
        }
    }
    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    pub(crate) fn set(&mut self, f: u8, on: bool) {
        if on { self.flags |= f } else { self.flags &= !f }
    }
}

/// The table. See the module docs.
#[derive(Debug)]
pub struct ConnTable<'a> {
    entries: Storage<'a, Conn>,
    free_head: u32,
    len: u32,
}

impl<'a> ConnTable<'a> {
    /// A table over `entries` (its capacity, 1 to [`MAX_CAPACITY`]; also its bucket count),
    /// which are reset.
    pub fn new(mut entries: Storage<'a, Conn>) -> Result<Self, &'static str> {
        let n = entries.len();
        if n == 0 {
            return Err("a connection table needs at least one entry");
        }
        if n > MAX_CAPACITY {
            return Err("too many entries");
        }
        for (i, e) in entries.iter_mut().enumerate() {
            *e = Conn::EMPTY;
            // The free list is doubly linked through next[0] (next) and next[1] (previous),
            // so that `alloc` can take a chosen free entry in O(1).
            e.next[0] = if i + 1 < n { (i + 1) as u32 } else { NIL };
            e.next[1] = if i > 0 { (i - 1) as u32 } else { NIL };
        }
        Ok(ConnTable {
            entries,
            free_head: 0,
            len: 0,
        })
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }
    /// Entries in use (connections and templates).
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of hash buckets (one per entry).
    pub fn bucket_count(&self) -> usize {
        self.entries.len()
    }
    /// Bytes of the table, hash index included: the whole memory of the table, fixed at
    /// construction.
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * core::mem::size_of::<Conn>()
    }

    /// The entry at `idx` (any index; unused entries are returned as they are).
    pub fn get(&self, idx: u32) -> Option<&Conn> {
        self.entries.get(idx as usize)
    }
    /// Mutable access for the balancer's fields; the table's own fields (`head`, `next`,
    /// the in-use and hashed flags) are only changed through the table's methods.
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        self.entries.get_mut(idx as usize)
    }

    /// Takes a free entry, marks it in use and returns its index; `None` when full. The entry
    /// of `hash`'s bucket is taken when it is free, so that the chain head and the entry share
    /// a cache line; pass the hash the entry's in node will be linked with.
    pub(crate) fn alloc(&mut self, init: Conn, hash: u64) -> Option<u32> {
        if self.free_head == NIL {
            return None;
        }
        let own = self.bucket_of(hash);
        let idx = if self.entries[own].in_use() {
            self.free_head
        } else {
            own as u32
        };
        self.unlink_free(idx);
        let e = self.entries.get_mut(idx as usize)?;
        let head = e.head;
        *e = init;
        e.head = head;
        e.next = [NIL, NIL];
        e.flags |= flag::IN_USE;
        e.flags &= !(flag::IN_HASHED | flag::OUT_HASHED);
        self.len += 1;
        Some(idx)
    }

    /// Removes free entry `idx` from the free list.
    fn unlink_free(&mut self, idx: u32) {
        let Some(e) = self.entries.get(idx as usize) else {
            return;
        };
        let [next, prev] = e.next;
        match self.entries.get_mut(prev as usize) {
            Some(p) => p.next[0] = next,
            None => self.free_head = next,
        }
        if let Some(n) = self.entries.get_mut(next as usize) {
            n.next[1] = prev;
        }
    }

    /// Returns an entry (already unlinked from both chains) to the free list.
    pub(crate) fn release(&mut self, idx: u32) {
        let old_head = self.free_head;
        let Some(e) = self.entries.get_mut(idx as usize) else {
            return;
        };
        if !e.in_use() {
            return;
        }
        debug_assert!(!e.has(flag::IN_HASHED) && !e.has(flag::OUT_HASHED));
        let head = e.head;
        *e = Conn::EMPTY;
        e.head = head;
        e.next = [old_head, NIL];
        if let Some(h) = self.entries.get_mut(old_head as usize) {
            h.next[1] = idx;
        }
        self.free_head = idx;
        self.len -= 1;
    }

    /// The bucket a hash falls in: the high half of `(hash mod 2^32) × capacity`, a uniform
    /// map onto any capacity without a division.
    pub fn bucket_of(&self, hash: u64) -> usize {
        ((u64::from(hash as u32) * self.entries.len() as u64) >> 32) as usize
    }

    /// Links node `dir` of entry `idx` at the head of the chain for `hash`.
    pub(crate) fn link(&mut self, idx: u32, dir: Dir, hash: u64) {
        let b = self.bucket_of(hash);
        let f = if dir == Dir::In {
            flag::IN_HASHED
        } else {
            flag::OUT_HASHED
        };
        let head = self.entries[b].head;
        if let Some(e) = self.entries.get_mut(idx as usize) {
            if e.has(f) {
                return;
            }
            e.next[dir as usize] = head;
            e.set(f, true);
            self.entries[b].head = (idx << 1) | dir as u32;
        }
    }

    /// Unlinks node `dir` of entry `idx` from the chain for `hash` (the hash it was linked
    /// with). Returns whether it was found.
    pub(crate) fn unlink(&mut self, idx: u32, dir: Dir, hash: u64) -> bool {
        let f = if dir == Dir::In {
            flag::IN_HASHED
        } else {
            flag::OUT_HASHED
        };
        match self.entries.get(idx as usize) {
            Some(e) if e.has(f) => {}
            _ => return false,
        }
        let node = (idx << 1) | dir as u32;
        let b = self.bucket_of(hash);
        let mut prev: Option<u32> = None;
        let mut cur = self.entries[b].head;
        // Chains are acyclic and every node on them is in use, so this walk ends; the step
        // bound only guards against a corrupted table turning into an endless loop.
        let mut steps = self.entries.len() * 2 + 1;
        while cur != NIL && steps > 0 {
            steps -= 1;
            let (ci, cd) = (cur >> 1, (cur & 1) as usize);
            let next = self.entries[ci as usize].next[cd];
            if cur == node {
                match prev {
                    None => self.entries[b].head = next,
                    Some(p) => {
                        let (pi, pd) = (p >> 1, (p & 1) as usize);
                        self.entries[pi as usize].next[pd] = next;
                    }
                }
                let e = &mut self.entries[idx as usize];
                e.next[dir as usize] = NIL;
                e.set(f, false);
                return true;
            }
            prev = Some(cur);
            cur = next;
        }
        false
    }

    /// The first node on the chain for `hash` that `matches(entry, dir)` accepts.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut matches: impl FnMut(&Conn, Dir) -> bool) -> Option<(u32, Dir)> {
        let mut cur = self.entries[self.bucket_of(hash)].head;
        let mut steps = self.entries.len() * 2 + 1;
        while cur != NIL && steps > 0 {
            steps -= 1;
            let (ci, cd) = (cur >> 1, cur & 1);
            let e = self.entries.get(ci as usize)?;
            let dir = Dir::of_node(cur);
            if matches(e, dir) {
                return Some((ci, dir));
            }
            cur = e.next[cd as usize];
        }
        None
    }

    /// The batch path's stage 2: loads the chain head of `hash`'s bucket (an ordinary load: a
    /// prefetch instruction needs `unsafe`, which a driver supplies to
    /// `Balancer::process_batch_prefetch`). Issued for a whole group in a tight loop, the cache
    /// misses overlap; with coalesced placement, that line is usually the entry itself.
    #[inline]
    pub fn touch_bucket(&self, hash: u64) -> u32 {
        self.entries[self.bucket_of(hash)].head
    }

    /// The batch path's stage 3: loads the first entry on the chain of `hash` (whose bucket
    /// stage 2 brought into the cache).
    #[inline]
    pub fn touch_head(&self, hash: u64) -> u32 {
        let head = self.entries[self.bucket_of(hash)].head;
        match self.entries.get((head >> 1) as usize) {
            Some(e) if head != NIL => u32::from(e.cport),
            _ => head,
        }
    }

    /// The chain head of `hash`'s bucket, for a prefetch ([`crate::balancer::Prefetch`]).
    #[inline]
    pub fn bucket_ref(&self, hash: u64) -> &u32 {
        &self.entries[self.bucket_of(hash)].head
    }

    /// The first entry on the chain of `hash`, if any, for a prefetch (reads the bucket).
    #[inline]
    pub fn head_ref(&self, hash: u64) -> Option<&Conn> {
        let head = self.entries[self.bucket_of(hash)].head;
        if head == NIL {
            return None;
        }
        self.entries.get((head >> 1) as usize)
    }

    /// The second entry on the chain of `hash`, when the first is not the one sought
    /// (`is_first(head, dir)` false), for a prefetch (reads the bucket and the head, which the
    /// caller prefetched before). About half the lookups of a full table go past the head.
    #[inline]
    pub fn second_ref(&self, hash: u64, is_first: impl FnOnce(&Conn, Dir) -> bool) -> Option<&Conn> {
        let head = self.entries[self.bucket_of(hash)].head;
        let e = self.entries.get((head >> 1) as usize).filter(|_| head != NIL)?;
        if is_first(e, Dir::of_node(head)) {
            return None;
        }
        let next = e.next[(head & 1) as usize];
        self.entries.get((next >> 1) as usize).filter(|_| next != NIL)
    }

    /// How many entries in use sit in the slot of their own in-bucket (lookups of those read
    /// one cache line): a diagnostic for benchmarks, O(capacity × chain length).
    pub fn in_own_bucket(&self) -> usize {
        (0..self.entries.len() as u32)
            .filter(|&i| {
                let mut cur = self.entries[i as usize].head;
                let mut steps = self.entries.len() * 2 + 1;
                while cur != NIL && steps > 0 {
                    steps -= 1;
                    if cur == i << 1 {
                        return true;
                    }
                    let Some(e) = self.entries.get((cur >> 1) as usize) else {
                        return false;
                    };
                    cur = e.next[(cur & 1) as usize];
                }
                false
            })
            .count()
    }

    /// Iterates over the indices of entries in use.
    pub fn iter_used(&self) -> impl Iterator<Item = (u32, &Conn)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.in_use())
            .map(|(i, e)| (i as u32, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> ConnTable<'static> {
        let e: &'static mut [Conn] = Box::leak(vec![Conn::EMPTY; n].into_boxed_slice());
        ConnTable::new(e.into()).unwrap()
    }

    /// A hash whose bucket is `b` in a table of `n` entries.
    fn hash_for(b: usize, n: usize) -> u64 {
        ((b as u64) << 32).div_ceil(n as u64)
    }

    #[test]
    fn alloc_link_find_unlink_release() {
        let mut t = table(4);
        let mut ids = vec![];
        for p in 0..4u16 {
            // Ports 0 and 2 share bucket 0; 1 and 3 bucket 1.
            let h = hash_for(usize::from(p % 2), 4);
            let id = t
                .alloc(
                    Conn {
                        cport: p,
                        ..Conn::EMPTY
                    },
                    h,
                )
                .unwrap();
            t.link(id, Dir::In, h);
            ids.push(id);
        }
        assert_eq!(ids, [0, 1, 2, 3], "own slot when free, else the free list's head");
        assert_eq!(t.in_own_bucket(), 2, "ports 0 and 1");
        assert!(t.alloc(Conn::EMPTY, 0).is_none(), "full");
        assert_eq!(t.len(), 4);
        for p in 0..4u16 {
            let h = hash_for(usize::from(p % 2), 4);
            let (i, d) = t.find(h, |c, d| d == Dir::In && c.cport == p).unwrap();
            assert_eq!((i, d), (ids[p as usize], Dir::In));
        }
        // Unlink from the end of a chain (bucket 0 holds ports 2 then 0).
        let h0 = hash_for(0, 4);
        assert!(t.unlink(ids[0], Dir::In, h0));
        assert!(!t.unlink(ids[0], Dir::In, h0), "already unlinked");
        assert!(t.find(h0, |c, _| c.cport == 0 && c.in_use()).is_none());
        assert!(t.find(h0, |c, _| c.cport == 2).is_some());
        t.release(ids[0]);
        assert_eq!(t.len(), 3);
        // Entry 0 is free again but still holds bucket 0's chain (port 2).
        assert!(
            t.find(h0, |c, _| c.cport == 2).is_some(),
            "the chain head survives release"
        );
        let again = t.alloc(Conn::EMPTY, hash_for(3, 4)).unwrap();
        assert_eq!(again, ids[0], "the only free entry");
        assert!(t.find(h0, |c, _| c.cport == 2).is_some(), "and survives alloc");
    }

    #[test]
    fn second_ref_is_the_entry_after_a_head_that_is_not_the_one() {
        let mut t = table(4);
        let h0 = hash_for(0, 4);
        assert!(t.second_ref(h0, |_, _| false).is_none(), "empty chain");
        for p in [10u16, 20, 30] {
            let id = t
                .alloc(
                    Conn {
                        cport: p,
                        ..Conn::EMPTY
                    },
                    h0,
                )
                .unwrap();
            t.link(id, Dir::In, h0);
        }
        // New entries go to the chain's head: 30, 20, 10.
        let second = t.second_ref(h0, |c, _| c.cport == 10).map(|c| c.cport);
        assert_eq!(second, Some(20), "the head (30) is not the one sought");
        assert!(
            t.second_ref(h0, |c, _| c.cport == 30).is_none(),
            "the head is the one"
        );
        let only = hash_for(1, 4);
        let id = t
            .alloc(
                Conn {
                    cport: 40,
                    ..Conn::EMPTY
                },
                only,
            )
            .unwrap();
        t.link(id, Dir::In, only);
        assert!(t.second_ref(only, |_, _| false).is_none(), "a chain of one");
    }

    #[test]
    fn alloc_prefers_the_own_bucket_slot_and_keeps_the_free_list_whole() {
        let n = 16;
        let mut t = table(n);
        // Take slots 5, 9, 0 by preference, then release 9 and take it again by preference.
        for b in [5, 9, 0] {
            assert_eq!(t.alloc(Conn::EMPTY, hash_for(b, n)), Some(b as u32));
        }
        t.release(9);
        assert_eq!(t.alloc(Conn::EMPTY, hash_for(9, n)), Some(9));
        // Slot 5 is taken: the next free entry comes from the list, and every entry is
        // handed out exactly once until the table is full.
        let mut seen = vec![5u32, 9, 0];
        while let Some(i) = t.alloc(Conn::EMPTY, hash_for(5, n)) {
            assert!(!seen.contains(&i), "entry {i} handed out twice");
            seen.push(i);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
        assert_eq!(t.len(), n);
    }

    #[test]
    fn bucket_of_covers_every_bucket_of_any_capacity() {
        // Building (and freeing-list linking) 2^20 entries takes miri over 10 minutes; under
        // miri the largest table is 2^14, which still covers the multiply-shift on a
        // non-trivial capacity.
        let largest = if cfg!(miri) { 1 << 14 } else { 1 << 20 };
        for n in [1usize, 3, 7, 1000, largest] {
            let t = table(n);
            assert_eq!(t.bucket_of(0), 0);
            assert_eq!(t.bucket_of(u64::from(u32::MAX)), n - 1);
            assert_eq!(t.bucket_of(hash_for(n / 2, n)), n / 2);
            assert_eq!(
                t.memory_bytes(),
                n * 64,
                "64 bytes per connection, index included"
            );
        }
    }

    #[test]
    fn rejects_an_empty_table() {
        let e: &'static mut [Conn] = Box::leak(Vec::new().into_boxed_slice());
        assert!(ConnTable::new(e.into()).is_err());
    }

    #[test]
    fn expiry_ticks_round_up_and_wrap() {
        let mut c = Conn::EMPTY;
        let now = Instant::from_nanos(1_500_000); // 1.5 ms
        c.set_expiry(now, Duration::from_millis(10)); // 11.5 ms: tick 12
        assert!(!c.expired(Instant::from_nanos(11_999_999)));
        assert!(c.expired(Instant::from_millis(12)));
        assert_eq!(c.expires_at(now), Instant::from_millis(12));
        // Across the 2^32-tick wrap (≈ 49.7 days of uptime).
        let wrap = Instant::from_millis(u64::from(u32::MAX));
        c.set_expiry(wrap, Duration::from_secs(900));
        assert!(!c.expired(wrap + Duration::from_secs(899)));
        assert!(c.expired(wrap + Duration::from_secs(900)));
        assert_eq!(c.expires_at(wrap), wrap + Duration::from_secs(900));
        // Timeouts are capped below the comparison's range.
        c.set_expiry(now, Duration::from_secs(100 * 86_400));
        assert_eq!(
            c.expires_at(now),
            now + MAX_TIMEOUT + Duration::from_nanos(500_000)
        );
        assert!(!c.expired(now + Duration::from_secs(24 * 86_400)));
    }

    #[test]
    fn state_and_fwd_share_a_byte() {
        let mut c = Conn::EMPTY;
        c.set_fwd(FwdKind::FullNat);
        c.set_state(ConnState::TimeWait);
        assert_eq!((c.state(), c.fwd()), (ConnState::TimeWait, FwdKind::FullNat));
        c.set_state(ConnState::Established);
        assert_eq!(c.fwd(), FwdKind::FullNat);
    }
}
