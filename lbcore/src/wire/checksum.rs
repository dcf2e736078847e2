//! The Internet checksum (RFC 1071): full sums over byte slices, the IPv4/IPv6 pseudo-header
//! sums of TCP, UDP and ICMPv6, and RFC 1624 incremental updates.
//!
//! Guarantees: every function is total (no panics, no allocation) and works on any slice
//! length, an odd trailing byte being padded with zero as RFC 1071 says. Sums are carried in
//! `u64` accumulators, so no realistic input can overflow them. An incremental update of a
//! valid checksum yields exactly the value a full recomputation would give (RFC 1624 eqn. 3
//! never produces the `0xffff` form of zero that eqn. 2 could), so the differential tests
//! against etherparse can compare bit for bit.
//!
//! Vocabulary: a *sum* is the one's-complement sum of big-endian 16-bit words, not yet
//! complemented; a *checksum* is the complement of the folded sum, as stored in a header.

/// One's-complement sum of `data` as big-endian 16-bit words, folded to 16 bits (returned in
/// a `u32` so that sums can be added before the final [`fold`]).
///
/// Words are summed four bytes at a time: since 2^16 ≡ 1 (mod 2^16 − 1), the sum of 32-bit
/// words folds to the same value as the sum of their 16-bit halves, at half the additions.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        // `chunks_exact(4)` yields 4-byte chunks only, so this conversion cannot fail.
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a] => acc += u64::from(a) << 8,
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        _ => {}
    }
    u32::from(fold(acc))
}

/// Folds a wide one's-complement sum to 16 bits (end-around carry).
pub const fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum to store for a sum: the complement of its 16-bit fold.
pub const fn finish(sum: u64) -> u16 {
    !fold(sum)
}

/// The Internet checksum of `data` (e.g. an IPv4 header with its checksum field zeroed, or
/// an ICMPv4 message). Over data that already contains a correct checksum, this returns 0.
pub fn checksum(data: &[u8]) -> u16 {
    finish(u64::from(sum(data)))
}

/// Sum of the IPv4 pseudo-header of TCP/UDP: source, destination, protocol and the
/// transport length (header plus payload).
pub fn pseudo_header_v4(src: &[u8; 4], dst: &[u8; 4], proto: u8, len: u16) -> u32 {
    let s = u64::from(u32::from_be_bytes(*src)) + u64::from(u32::from_be_bytes(*dst));
    u32::from(fold(s + u64::from(proto) + u64::from(len)))
}

/// Sum of the IPv6 pseudo-header (RFC 8200 §8.1) of TCP/UDP/ICMPv6: source, destination,
/// the 32-bit upper-layer length and the next-header value.
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], proto: u8, len: u32) -> u32 {
    let s = u64::from(sum(src)) + u64::from(sum(dst));
    u32::from(fold(
        s + u64::from(proto) + u64::from(len >> 16) + u64::from(len & 0xffff),
    ))
}

/// An accumulated set of 16-bit word replacements, applied to a checksum at once with
/// RFC 1624 eqn. 3 (`HC' = ~(~HC + ~m + m')`). Recording several changes and applying them
/// once is equivalent to applying them one by one, and cheaper.
///
/// Offsets do not matter except for *parity*: every replaced word must start at an even
/// distance from the start of the checksummed data. All the fields lbcore rewrites
/// (addresses, ports, checksums) satisfy this.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    /// No change.
    pub const fn new() -> Self {
        Delta(0)
    }

    /// Records that a 16-bit word changed from `old` to `new`.
    pub const fn word(self, old: u16, new: u16) -> Self {
        Delta(self.0 + (!old) as u64 + new as u64)
    }

    /// Records that a 32-bit word (two 16-bit words) changed from `old` to `new`.
    pub const fn word32(self, old: u32, new: u32) -> Self {
        self.word((old >> 16) as u16, (new >> 16) as u16)
            .word(old as u16, new as u16)
    }

    /// Records that the bytes `old` were replaced by `new` (e.g. a 4- or 16-byte address).
    /// Both must have the same even length; extra bytes of the longer one are ignored and an
    /// odd trailing byte counts as the high half of a word, as in [`sum`].
    pub fn bytes(self, old: &[u8], new: &[u8]) -> Self {
        // ~m summed word by word equals (words × 0xffff) − Σm, so we add the complement of
        // the folded old sum once instead of complementing every word.
        let n = old.len().min(new.len());
        let (old, new) = (old.get(..n).unwrap_or(&[]), new.get(..n).unwrap_or(&[]));
        Delta(self.0 + u64::from(!(sum(old) as u16)) + u64::from(sum(new)))
    }

    /// Merges two sets of changes.
    pub const fn and(self, other: Delta) -> Self {
        Delta(self.0 + other.0)
    }

    /// The raw (unfolded) sum of the changes, to add to a pseudo-header or other sum.
    pub const fn sum(self) -> u64 {
        self.0
    }

    /// Applies the changes to a stored checksum (IPv4 header, TCP, ICMP, ICMPv6).
    pub const fn apply(self, check: u16) -> u16 {
        !fold((!check) as u64 + self.0)
    }

    /// Applies the changes to a UDP checksum: 0 ("no checksum", legal over IPv4) stays 0,
    /// and a result of 0 is sent as `0xffff` (RFC 768).
    pub const fn apply_udp(self, check: u16) -> u16 {
        if check == 0 {
            return 0;
        }
        match self.apply(check) {
            0 => 0xffff,
            c => c,
        }
    }
}

/// RFC 1624 update of `check` after a 16-bit word changed from `old` to `new`.
pub const fn update16(check: u16, old: u16, new: u16) -> u16 {
    Delta::new().word(old, new).apply(check)
}

/// RFC 1624 update of `check` after a 32-bit word (e.g. an IPv4 address) changed.
pub const fn update32(check: u16, old: u32, new: u32) -> u16 {
    Delta::new().word32(old, new).apply(check)
}

/// RFC 1624 update of `check` after a 16-byte IPv6 address changed.
pub fn update_addr16(check: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    Delta::new().bytes(old, new).apply(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
        // Every remainder length.
        assert_eq!(sum(&d[..7]), u32::from(fold(0x0001 + 0xf203 + 0xf4f5 + 0xf600)));
        assert_eq!(sum(&d[..6]), u32::from(fold(0x0001 + 0xf203 + 0xf4f5)));
        assert_eq!(sum(&d[..5]), u32::from(fold(0x0001 + 0xf203 + 0xf400)));
        assert_eq!(sum(&[]), 0);
    }

    /// A real IPv4 header (from Wikipedia's checksum example): checksum b861.
    #[test]
    fn ipv4_header_example() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
            0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    /// RFC 1624 §4: a header checksum of 0xdd2f, a word changing from 0x5555 to 0x3285, gives
    /// 0x0000 with eqn. 3 (eqn. 2 would give the wrong 0xffff).
    #[test]
    fn rfc1624_example() {
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for _ in 0..2000 {
            let mut data = [0u8; 40];
            for b in data.iter_mut() {
                *b = next() as u8;
            }
            let before = checksum(&data);
            let at = (next() as usize % 18) * 2;
            let old = [data[at], data[at + 1], data[at + 2], data[at + 3]];
            let new = next().to_be_bytes();
            data[at..at + 4].copy_from_slice(&new);
            let full = checksum(&data);
            assert_eq!(
                update32(before, u32::from_be_bytes(old), u32::from_be_bytes(new)),
                full
            );
            assert_eq!(Delta::new().bytes(&old, &new).apply(before), full);
            let w = Delta::new()
                .word(
                    u16::from_be_bytes([old[0], old[1]]),
                    u16::from_be_bytes([new[0], new[1]]),
                )
                .word(
                    u16::from_be_bytes([old[2], old[3]]),
                    u16::from_be_bytes([new[2], new[3]]),
                );
            assert_eq!(w.apply(before), full);
        }
    }

    #[test]
    fn udp_zero_rules() {
        assert_eq!(Delta::new().word(1, 2).apply_udp(0), 0);
        // A change that makes the sum all-ones yields 0, which UDP sends as 0xffff.
        let check = 0x1234;
        let d = Delta::new().word(0, check);
        assert_eq!(d.apply(check), 0);
        assert_eq!(d.apply_udp(check), 0xffff);
    }

    #[test]
    fn pseudo_headers() {
        let s4 = [192, 0, 2, 1];
        let d4 = [198, 51, 100, 7];
        let mut buf = [0u8; 12];
        buf[..4].copy_from_slice(&s4);
        buf[4..8].copy_from_slice(&d4);
        buf[9] = 6;
        buf[10..12].copy_from_slice(&1234u16.to_be_bytes());
        assert_eq!(pseudo_header_v4(&s4, &d4, 6, 1234), sum(&buf));
        let s6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let d6 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2];
        let mut buf = [0u8; 40];
        buf[..16].copy_from_slice(&s6);
        buf[16..32].copy_from_slice(&d6);
        buf[32..36].copy_from_slice(&70000u32.to_be_bytes());
        buf[39] = 17;
        assert_eq!(pseudo_header_v6(&s6, &d6, 17, 70000), sum(&buf));
    }
}
