//! Maglev table of any prime size over up to 2^32 - 1 weighted backends: the fill loop of
//! `lbcore::sched::mh` (IPVS's `ip_vs_mh_populate`, fixed there at M = 4093 and 128
//! destinations) generalized to Katran's and the paper's M = 65537 and N = 1000.
//!
//! It lives here because `lbcore::sched::mh` is a private module and its table is IPVS's; it is
//! written to the core's rules (no allocation: the caller passes the table and a scratch
//! bitmap; no `unsafe`; no panics) so that it can move into `lbcore::sched` as it is.

/// One backend: its permutation `(offset + j * skip) mod M` and how many slots it claims per
/// round (its weight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevBackend {
    offset: u32,
    skip: u32,
    turns: u32,
    next: u32,
}

/// 64-bit finalizer (SplitMix64), keyed by xor with the seed: placement, not security.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl MaglevBackend {
    /// A backend identified by `key` (e.g. address and port) in a table of `m` slots, claiming
    /// `weight` slots per round (0: none).
    pub fn new(key: u64, seed: u64, m: u32, weight: u32) -> Self {
        let m = m.max(2);
        let h1 = mix(key ^ seed);
        let h2 = mix(key ^ seed.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15);
        let offset = (h1 % u64::from(m)) as u32;
        MaglevBackend {
            offset,
            skip: (h2 % u64::from(m - 1)) as u32 + 1,
            turns: weight,
            next: offset,
        }
    }
}

/// Marks an empty slot.
pub const EMPTY: u32 = u32::MAX;

/// A Maglev lookup table over caller-provided storage.
#[derive(Debug)]
pub struct Maglev<T, B> {
    table: T,
    taken: B,
    m: u32,
}

fn is_prime(m: u32) -> bool {
    m >= 2
        && (2..)
            .take_while(|d: &u32| d.saturating_mul(*d) <= m)
            .all(|d| !m.is_multiple_of(d))
}

impl<T: AsRef<[u32]> + AsMut<[u32]>, B: AsMut<[u64]>> Maglev<T, B> {
    /// A table of `table.len()` slots (must be prime, below 2^32 - 1) with a scratch bitmap of at
    /// least `table.len() / 64` rounded up words; `None` otherwise.
    pub fn new(mut table: T, mut taken: B) -> Option<Self> {
        let m = u32::try_from(table.as_ref().len()).ok()?;
        if !is_prime(m) || m == u32::MAX || taken.as_mut().len() < (m as usize).div_ceil(64) {
            return None;
        }
        table.as_mut().fill(EMPTY);
        Some(Maglev { table, taken, m })
    }

    /// Fills the table: backends take turns (in slice order, `turns` slots each per round)
    /// claiming the next free slot of their permutation. Returns the number of slots filled:
    /// M, or 0 when no backend has a weight.
    pub fn build(&mut self, backends: &mut [MaglevBackend]) -> u32 {
        let m = self.m;
        let table = self.table.as_mut();
        let taken = self.taken.as_mut();
        taken.iter_mut().for_each(|w| *w = 0);
        table.fill(EMPTY);
        if !backends.iter().any(|b| b.turns > 0) || backends.len() >= EMPTY as usize {
            return 0;
        }
        for b in backends.iter_mut() {
            b.next = b.offset;
        }
        let mut filled = 0u32;
        loop {
            for (i, b) in backends.iter_mut().enumerate() {
                let (skip, wrap) = (u64::from(b.skip), u64::from(m - b.skip));
                for _ in 0..b.turns {
                    // The probe ends: skip is in 1..M and M is prime, so the permutation visits
                    // every slot, and filled < M means one is free.
                    let mut c = u64::from(b.next);
                    while taken
                        .get((c >> 6) as usize)
                        .is_some_and(|w| (w >> (c & 63)) & 1 != 0)
                    {
                        // The probe chain is the build's critical path: both candidates come
                        // from c at once and a select (not a branch: whether the step wraps is
                        // a coin flip) picks one, two cycles per probe. In 64 bits, as
                        // c + skip may pass 2^32.
                        let (up, down) = (c + skip, c.wrapping_sub(wrap));
                        c = if c >= wrap { down } else { up };
                    }
                    let c = c as u32;
                    b.next = c;
                    if let Some(w) = taken.get_mut(c as usize / 64) {
                        *w |= 1 << (c % 64);
                    }
                    if let Some(s) = table.get_mut(c as usize) {
                        *s = i as u32;
                    }
                    filled += 1;
                    if filled == m {
                        return filled;
                    }
                }
            }
        }
    }

    /// The backend index for a flow hash.
    pub fn lookup(&self, hash: u64) -> Option<u32> {
        let t = self.table.as_ref();
        t.get((hash % u64::from(self.m)) as usize)
            .copied()
            .filter(|&b| b != EMPTY)
    }

    /// The slots.
    pub fn table(&self) -> &[u32] {
        self.table.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper's pseudo-code, written plainly: permutation entry j of backend i is
    /// `(offset + j * skip) mod M`, each backend keeps the index j of its next entry.
    fn reference(m: u32, backends: &[MaglevBackend]) -> Vec<u32> {
        let mut table = vec![EMPTY; m as usize];
        let mut next_j = vec![0u64; backends.len()];
        let mut filled = 0;
        while filled < m {
            for (i, b) in backends.iter().enumerate() {
                for _ in 0..b.turns {
                    let slot = loop {
                        let c = (u64::from(b.offset) + next_j[i] * u64::from(b.skip)) % u64::from(m);
                        next_j[i] += 1;
                        if table[c as usize] == EMPTY {
                            break c as usize;
                        }
                    };
                    table[slot] = i as u32;
                    filled += 1;
                    if filled == m {
                        return table;
                    }
                }
            }
        }
        table
    }

    fn backends(m: u32, n: u32, weighted: bool) -> Vec<MaglevBackend> {
        (0..n)
            .map(|i| {
                MaglevBackend::new(
                    u64::from(i) * 0x1_0001,
                    42,
                    m,
                    if weighted { 1 + i % 3 } else { 1 },
                )
            })
            .collect()
    }

    #[test]
    fn same_table_as_the_plain_algorithm() {
        for &(m, n) in &[(7u32, 3u32), (251, 10), (4093, 100), (65537, 10), (65537, 1000)] {
            for weighted in [false, true] {
                let mut bs = backends(m, n, weighted);
                let want = reference(m, &bs);
                let mut t =
                    Maglev::new(vec![0; m as usize], vec![0; (m as usize).div_ceil(64)]).expect("prime");
                assert_eq!(t.build(&mut bs), m);
                assert!(
                    t.table() == want.as_slice(),
                    "M = {m}, N = {n}, weighted = {weighted}"
                );
            }
        }
    }

    #[test]
    fn every_backend_gets_about_its_share() {
        let mut bs = backends(65537, 100, true);
        let mut t = Maglev::new(vec![0; 65537], vec![0; 65537usize.div_ceil(64)]).expect("prime");
        t.build(&mut bs);
        let total_weight: u32 = bs.iter().map(|b| b.turns).sum();
        let mut count = vec![0u32; bs.len()];
        for &s in t.table() {
            count[s as usize] += 1;
        }
        for (b, &c) in bs.iter().zip(&count) {
            let ideal = 65537.0 * f64::from(b.turns) / f64::from(total_weight);
            assert!(
                (f64::from(c) - ideal).abs() <= ideal * 0.02 + 2.0,
                "{c} slots, ideal {ideal}"
            );
        }
    }
}
