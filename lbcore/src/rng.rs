//! Deterministic pseudo-random numbers from a caller-supplied seed.
//!
//! The core never asks the OS for randomness: every random choice (the `twos` scheduler, FULLNAT
//! port choice) comes from a [`Rng`] seeded from the configuration, so one root seed replays a
//! whole run bit for bit. Not cryptographic.

/// SplitMix64: tiny, fast, and good enough for load spreading. Child generators are derived
/// with [`Rng::fork`] so that adding one consumer does not shift the sequence of another.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A value uniformly distributed in `0..bound` (`bound` > 0), by Lemire's multiply-shift.
    pub fn below(&mut self, bound: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(bound)) >> 32) as u32
    }

    /// A child generator for an independent consumer, labelled so that children differ.
    pub fn fork(&self, label: u64) -> Rng {
        let mut child = Rng::new(self.state ^ label.wrapping_mul(0xd6e8_feb8_6659_fd93));
        child.next_u64();
        child
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounded() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_ne!(Rng::new(7).fork(1).next_u64(), Rng::new(7).fork(2).next_u64());
    }
}
