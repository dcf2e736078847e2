//! The kernel's hash functions, bit for bit: `hash_32` (sh, dh, and our cache index), the
//! IPv6 address fold the hashing schedulers share, and SipHash-c-d with the 64-bit kernel's
//! `hsiphash` (SipHash-1-3 keyed by two 64-bit words, truncated to 32 bits) used by mh.
//!
//! Everything here is a pure function on integers; nothing can panic or overflow.

use core::net::IpAddr;

/// `GOLDEN_RATIO_32` from `include/linux/hash.h`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// `hash_32(val, bits)`: the top `bits` bits of `val * GOLDEN_RATIO_32 mod 2^32`.
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    // bits == 0 would shift by 32; the kernel never asks for that, and 0 is the right answer.
    val.wrapping_mul(GOLDEN_RATIO_32)
        .checked_shr(32u32.saturating_sub(bits))
        .unwrap_or(0)
}

/// The address as the hashing schedulers see it: `ntohl(addr)` for IPv4, and for IPv6 the
/// XOR of its four 32-bit words (XOR commutes with the byte swap, so folding in network
/// order and then swapping equals swapping each word first).
pub(crate) fn fold_addr(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// A `hsiphash_key_t` on a 64-bit kernel: two machine words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SipKey(pub u64, pub u64);

fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-`c`-`d` of `msg` under `key`, as defined by Aumasson and Bernstein (the message is
/// read as little-endian 64-bit words; the last word carries the length in its top byte).
pub(crate) fn siphash(c: usize, d: usize, key: SipKey, msg: &[u8]) -> u64 {
    let mut v = [
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ];
    let compress = |v: &mut [u64; 4], m: u64| {
        v[3] ^= m;
        for _ in 0..c {
            sipround(v);
        }
        v[0] ^= m;
    };
    let mut words = msg.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        compress(&mut v, u64::from_le_bytes(b));
    }
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    // Only the low byte of the length is kept, as the definition says.
    last[7] = msg.len() as u8;
    compress(&mut v, u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..d {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The 64-bit kernel's `hsiphash(&v, 4, key)` of a native (little-endian, as on x86-64 and
/// arm64) 32-bit value: SipHash-1-3 truncated to its low 32 bits.
pub(crate) fn hsiphash_u32(v: u32, key: SipKey) -> u32 {
    siphash(1, 3, key, &v.to_le_bytes()) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// The key of the reference test vectors (bytes 00..0f), as the kernel's
    /// `lib/siphash_kunit.c` writes it.
    const KEY: SipKey = SipKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);

    fn msg(len: usize) -> std::vec::Vec<u8> {
        (0..len as u8).collect()
    }

    #[test]
    fn siphash_2_4_matches_reference_vectors() {
        // veorq/SipHash vectors (also test_vectors_siphash in the kernel's kunit test).
        // Index = message length, message = 00 01 02 ...
        let vectors: [(usize, u64); 6] = [
            (0, 0x726f_db47_dd0e_0e31),
            (1, 0x74f8_39c5_93dc_67fd),
            (7, 0xab02_00f5_8b01_d137),
            (8, 0x93f5_f579_9a93_2462),
            // The paper's worked example: key 00..0f, message 00..0e.
            (15, 0xa129_ca61_49be_45e5),
            (63, 0x958a_324c_eb06_4572),
        ];
        for (len, want) in vectors {
            assert_eq!(siphash(2, 4, KEY, &msg(len)), want, "len {len}");
        }
    }

    #[test]
    fn hsiphash_is_siphash_1_3_truncated_like_a_64_bit_kernel() {
        // test_vectors_hsiphash for BITS_PER_LONG == 64 in lib/siphash_kunit.c.
        let vectors: [(usize, u32); 7] = [
            (0, 0x050f_c4dc),
            (1, 0x7d57_ca93),
            (3, 0xe7dd_f7fb),
            (4, 0x88d3_8328),
            (8, 0x8d29_9a8e),
            (15, 0x2a51_9956),
            (63, 0xb7bb_b3a8),
        ];
        for (len, want) in vectors {
            assert_eq!(siphash(1, 3, KEY, &msg(len)) as u32, want, "len {len}");
        }
        // hsiphash_1u32(0x03020100) is checked against vector 4 by the kernel too.
        assert_eq!(hsiphash_u32(0x0302_0100, KEY), 0x88d3_8328);
    }

    #[test]
    fn hash_32_by_hand() {
        // (x * 0x61C88647 mod 2^32) >> 24, worked out independently in u64 arithmetic.
        let by_hand = |x: u32| ((u64::from(x) * 0x61C8_8647) % (1u64 << 32)) >> 24;
        for (addr, bucket) in [
            ("10.0.0.1", 39),
            ("10.0.0.2", 137),
            ("192.168.1.1", 136),
            ("1.2.3.4", 52),
            ("0.0.0.0", 0),
        ] {
            let x = u32::from(addr.parse::<Ipv4Addr>().unwrap());
            assert_eq!(u64::from(hash_32(x, 8)), by_hand(x));
            assert_eq!(hash_32(x, 8), bucket, "{addr}");
        }
        // 0xffffffff * 0x61C88647 = 0x61C88646_9E3779B9 -> low word 0x9E3779B9 -> 0x9E = 158.
        assert_eq!(hash_32(u32::MAX, 8), 158);
        assert_eq!(hash_32(12345, 0), 0);
        assert_eq!(hash_32(1, 32), GOLDEN_RATIO_32);
    }

    #[test]
    fn ipv6_fold_is_xor_of_words() {
        let a: IpAddr = "2001:db8::1:2".parse::<Ipv6Addr>().unwrap().into();
        // Words 2001:0db8, 0000:0000, 0000:0000, 0001:0002.
        assert_eq!(fold_addr(&a), 0x2001_0db8 ^ 0x0001_0002);
        let b: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(fold_addr(&b), 0x0a00_0001);
    }
}
