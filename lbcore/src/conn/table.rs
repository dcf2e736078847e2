//! The connection table: fixed-capacity entries, chained hash index, O(1) free list.
//!
//! Guarantees: no allocation after construction, no panics on any index the table handed out,
//! one hash computation per lookup (done by the caller), and entries of exactly one cache line
//! (64 bytes; checked at compile time). Each entry can sit on two hash chains: its *in* node
//! (keyed by the client-side tuple) and, for NAT/FULLNAT, its *out* node (keyed by the
//! server-side tuple of replies), so one lookup in one table finds either direction.
//! Persistence templates are entries too (IPVS does the same), keyed by the masked client.
//!
//! The table knows nothing of services: the caller computes hashes and matches nodes with a
//! predicate, and the [`crate::Balancer`] implements the IPVS semantics on top.

use super::state::ConnState;
use crate::storage::Storage;

/// "No entry" in chains and the free list.
pub(crate) const NIL: u32 = u32::MAX;

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

/// One tracked connection or persistence template. Addresses are stored as 128-bit values,
/// IPv4 as IPv4-mapped IPv6, so one comparison covers both families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Conn {
    /// Client address (masked, for templates).
    pub caddr: u128,
    /// Virtual address the client used (the firewall mark, for fwmark templates).
    pub vaddr: u128,
    /// When the entry expires, in nanoseconds of the caller's clock.
    pub expires: u64,
    /// Next node on the in / out chains.
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
    core::mem::size_of::<Conn>() == 64,
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

impl Conn {
    /// An unused entry.
    pub const EMPTY: Conn = Conn {
        caddr: 0,
        vaddr: 0,
        expires: 0,
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
    buckets: Storage<'a, u32>,
    mask: u32,
    free_head: u32,
    len: u32,
}

impl<'a> ConnTable<'a> {
    /// A table over `entries` (its capacity) and `buckets` (whose length must be a power of
    /// two; a larger one shortens chains). Both are reset.
    pub fn new(mut entries: Storage<'a, Conn>, mut buckets: Storage<'a, u32>) -> Result<Self, &'static str> {
        if buckets.is_empty() || !buckets.len().is_power_of_two() || buckets.len() > 1 << 31 {
            return Err("bucket count must be a power of two");
        }
        if entries.len() >= NIL as usize {
            return Err("too many entries");
        }
        buckets.iter_mut().for_each(|b| *b = NIL);
        let n = entries.len();
        for (i, e) in entries.iter_mut().enumerate() {
            *e = Conn::EMPTY;
            // Free list threaded through next[0].
            e.next[0] = if i + 1 < n { (i + 1) as u32 } else { NIL };
        }
        let mask = (buckets.len() - 1) as u32;
        Ok(ConnTable {
            entries,
            buckets,
            mask,
            free_head: if n > 0 { 0 } else { NIL },
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
    /// Number of hash buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }
    /// Bytes of the entries and the hash index together: the whole memory of the table, fixed
    /// at construction.
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * core::mem::size_of::<Conn>() + self.buckets.len() * core::mem::size_of::<u32>()
    }

    /// The entry at `idx` (any index; unused entries are returned as they are).
    pub fn get(&self, idx: u32) -> Option<&Conn> {
        self.entries.get(idx as usize)
    }
    pub(crate) fn get_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        self.entries.get_mut(idx as usize)
    }

    /// Takes a free entry, marks it in use and returns its index; `None` when full.
    pub(crate) fn alloc(&mut self, init: Conn) -> Option<u32> {
        let idx = self.free_head;
        let e = self.entries.get_mut(idx as usize)?;
        self.free_head = e.next[0];
        *e = init;
        e.next = [NIL, NIL];
        e.flags |= flag::IN_USE;
        e.flags &= !(flag::IN_HASHED | flag::OUT_HASHED);
        self.len += 1;
        Some(idx)
    }

    /// Returns an entry (already unlinked from both chains) to the free list.
    pub(crate) fn release(&mut self, idx: u32) {
        let head = self.free_head;
        if let Some(e) = self.entries.get_mut(idx as usize) {
            if !e.in_use() {
                return;
            }
            debug_assert!(!e.has(flag::IN_HASHED) && !e.has(flag::OUT_HASHED));
            *e = Conn::EMPTY;
            e.next[0] = head;
            self.free_head = idx;
            self.len -= 1;
        }
    }

    /// The bucket a hash falls in (also the prefetch target of the batch path).
    pub fn bucket_of(&self, hash: u64) -> usize {
        (hash as u32 & self.mask) as usize
    }

    /// Links node `dir` of entry `idx` at the head of the chain for `hash`.
    pub(crate) fn link(&mut self, idx: u32, dir: Dir, hash: u64) {
        let b = self.bucket_of(hash);
        let f = if dir == Dir::In {
            flag::IN_HASHED
        } else {
            flag::OUT_HASHED
        };
        let head = self.buckets[b];
        if let Some(e) = self.entries.get_mut(idx as usize) {
            if e.has(f) {
                return;
            }
            e.next[dir as usize] = head;
            e.set(f, true);
            self.buckets[b] = (idx << 1) | dir as u32;
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
        let mut cur = self.buckets[b];
        // Chains are acyclic and every node on them is in use, so this walk ends; the step
        // bound only guards against a corrupted table turning into an endless loop.
        let mut steps = self.entries.len() * 2 + 1;
        while cur != NIL && steps > 0 {
            steps -= 1;
            let (ci, cd) = (cur >> 1, (cur & 1) as usize);
            let next = self.entries[ci as usize].next[cd];
            if cur == node {
                match prev {
                    None => self.buckets[b] = next,
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
        let mut cur = self.buckets[self.bucket_of(hash)];
        let mut steps = self.entries.len() * 2 + 1;
        while cur != NIL && steps > 0 {
            steps -= 1;
            let (ci, cd) = (cur >> 1, cur & 1);
            let e = self.entries.get(ci as usize)?;
            let dir = if cd == 0 { Dir::In } else { Dir::Out };
            if matches(e, dir) {
                return Some((ci, dir));
            }
            cur = e.next[cd as usize];
        }
        None
    }

    /// A read-only hint for the batch path: touching the bucket and its first entry early lets
    /// the memory loads of the next packets overlap the work on this one.
    #[inline]
    pub fn touch(&self, hash: u64) -> u32 {
        let head = self.buckets[self.bucket_of(hash)];
        if head != NIL {
            if let Some(e) = self.entries.get((head >> 1) as usize) {
                return e.cport as u32 ^ head;
            }
        }
        head
    }

    /// The batch path's stage 2: loads the hash bucket of `hash` (an ordinary load: a
    /// prefetch instruction needs `unsafe`, which a driver supplies to
    /// `Balancer::process_batch_prefetch`). Issued for a whole group in a tight loop, the cache
    /// misses overlap.
    #[inline]
    pub fn touch_bucket(&self, hash: u64) -> u32 {
        self.buckets[self.bucket_of(hash)]
    }

    /// The batch path's stage 3: loads the first entry on the chain of `hash` (whose bucket
    /// stage 2 brought into the cache).
    #[inline]
    pub fn touch_head(&self, hash: u64) -> u32 {
        let head = self.buckets[self.bucket_of(hash)];
        match self.entries.get((head >> 1) as usize) {
            Some(e) if head != NIL => u32::from(e.cport),
            _ => head,
        }
    }

    /// The hash bucket of `hash`, for a prefetch ([`crate::balancer::Prefetch`]).
    #[inline]
    pub fn bucket_ref(&self, hash: u64) -> &u32 {
        &self.buckets[self.bucket_of(hash)]
    }

    /// The first entry on the chain of `hash`, if any, for a prefetch (reads the bucket).
    #[inline]
    pub fn head_ref(&self, hash: u64) -> Option<&Conn> {
        let head = self.buckets[self.bucket_of(hash)];
        if head == NIL {
            return None;
        }
        self.entries.get((head >> 1) as usize)
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

    fn table(n: usize, b: usize) -> ConnTable<'static> {
        let e: &'static mut [Conn] = Box::leak(vec![Conn::EMPTY; n].into_boxed_slice());
        let k: &'static mut [u32] = Box::leak(vec![0u32; b].into_boxed_slice());
        ConnTable::new(e.into(), k.into()).unwrap()
    }

    #[test]
    fn alloc_link_find_unlink_release() {
        let mut t = table(4, 2);
        let mut ids = vec![];
        for p in 0..4u16 {
            let id = t
                .alloc(Conn {
                    cport: p,
                    ..Conn::EMPTY
                })
                .unwrap();
            t.link(id, Dir::In, u64::from(p));
            ids.push(id);
        }
        assert!(t.alloc(Conn::EMPTY).is_none(), "full");
        assert_eq!(t.len(), 4);
        for p in 0..4u16 {
            let (i, d) = t.find(u64::from(p), |c, d| d == Dir::In && c.cport == p).unwrap();
            assert_eq!((i, d), (ids[p as usize], Dir::In));
        }
        // Unlink from the middle of a chain (bucket 0 holds ports 0 and 2).
        assert!(t.unlink(ids[0], Dir::In, 0));
        assert!(!t.unlink(ids[0], Dir::In, 0), "already unlinked");
        assert!(t.find(0, |c, _| c.cport == 0 && c.in_use()).is_none());
        assert!(t.find(2, |c, _| c.cport == 2).is_some());
        t.release(ids[0]);
        assert_eq!(t.len(), 3);
        let again = t.alloc(Conn::EMPTY).unwrap();
        assert_eq!(again, ids[0], "free list reuses the released entry");
    }

    #[test]
    fn rejects_bad_bucket_count() {
        let e: &'static mut [Conn] = Box::leak(vec![Conn::EMPTY; 4].into_boxed_slice());
        let k: &'static mut [u32] = Box::leak(vec![0u32; 3].into_boxed_slice());
        assert!(ConnTable::new(e.into(), k.into()).is_err());
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
