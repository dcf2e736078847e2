//! Header field offsets and sizes (relative to the start of each header), and the bounds-checked
//! byte accessors every parser and rewriter in lbcore goes through.
//!
//! Guarantees: the accessors never panic; a read or write that would leave the slice returns
//! `None` instead. Fixed-size headers are borrowed as `&[u8; N]` arrays so that constant
//! offsets into them are checked at compile time.

/// Ethernet II.
pub mod ethernet {
    /// Destination MAC.
    pub const DST: usize = 0;
    /// Source MAC.
    pub const SRC: usize = 6;
    /// EtherType (or a VLAN TPID).
    pub const ETHERTYPE: usize = 12;
    /// Header length without VLAN tags.
    pub const HEADER_LEN: usize = 14;
    /// Length of one 802.1Q / 802.1ad tag (TCI + inner EtherType).
    pub const VLAN_TAG_LEN: usize = 4;
    /// EtherType of IPv4.
    pub const TYPE_IPV4: u16 = 0x0800;
    /// EtherType of IPv6.
    pub const TYPE_IPV6: u16 = 0x86dd;
    /// TPID of an 802.1Q (C-VLAN) tag.
    pub const TYPE_VLAN: u16 = 0x8100;
    /// TPID of an 802.1ad (S-VLAN, QinQ) tag.
    pub const TYPE_QINQ: u16 = 0x88a8;
}

/// IPv4 (RFC 791).
pub mod ipv4 {
    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP and ECN.
    pub const TOS: usize = 1;
    /// Total length of the datagram.
    pub const TOTAL_LEN: usize = 2;
    /// Identification.
    pub const IDENT: usize = 4;
    /// Flags (3 bits) and fragment offset (13 bits, in 8-byte units).
    pub const FLAGS_FRAG: usize = 6;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTO: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: usize = 10;
    /// Source address.
    pub const SRC: usize = 12;
    /// Destination address.
    pub const DST: usize = 16;
    /// Length of a header without options.
    pub const HEADER_LEN: usize = 20;
    /// Don't Fragment, within the `FLAGS_FRAG` word.
    pub const FLAG_DF: u16 = 0x4000;
    /// More Fragments, within the `FLAGS_FRAG` word.
    pub const FLAG_MF: u16 = 0x2000;
    /// Fragment offset mask, within the `FLAGS_FRAG` word.
    pub const FRAG_OFFSET: u16 = 0x1fff;
}

/// IPv6 (RFC 8200).
pub mod ipv6 {
    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: usize = 0;
    /// Payload length (everything after the fixed header).
    pub const PAYLOAD_LEN: usize = 4;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: usize = 8;
    /// Destination address.
    pub const DST: usize = 24;
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;
    /// Next-header value of the hop-by-hop options header.
    pub const NH_HOP_BY_HOP: u8 = 0;
    /// Next-header value of the routing header.
    pub const NH_ROUTING: u8 = 43;
    /// Next-header value of the fragment header.
    pub const NH_FRAGMENT: u8 = 44;
    /// Next-header value of the destination options header.
    pub const NH_DEST_OPTS: u8 = 60;
    /// Length of the fragment header.
    pub const FRAGMENT_LEN: usize = 8;
}

/// TCP (RFC 9293).
pub mod tcp {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Data offset (high nibble, in 32-bit words).
    pub const DATA_OFF: usize = 12;
    /// Flags (CWR ECE URG ACK PSH RST SYN FIN).
    pub const FLAGS: usize = 13;
    /// Checksum.
    pub const CHECKSUM: usize = 16;
    /// Length of a header without options.
    pub const HEADER_LEN: usize = 20;
}

/// UDP (RFC 768).
pub mod udp {
    /// Source port.
    pub const SRC_PORT: usize = 0;
    /// Destination port.
    pub const DST_PORT: usize = 2;
    /// Length of header plus payload.
    pub const LENGTH: usize = 4;
    /// Checksum (0 = none, IPv4 only).
    pub const CHECKSUM: usize = 6;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

/// ICMP (RFC 792) and ICMPv6 (RFC 4443): the common 8-byte header.
pub mod icmp {
    /// Type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: usize = 2;
    /// Header length (type, code, checksum and the 4-byte rest of header); an error
    /// message's quoted packet starts here.
    pub const HEADER_LEN: usize = 8;
}

/// GUE variant 0 (draft-ietf-intarea-gue): `ver(2) C(1) hlen(5) | proto/ctype(8) | flags(16)`.
pub mod gue {
    /// Version, control flag and header-extension length.
    pub const VER_C_HLEN: usize = 0;
    /// Protocol of the encapsulated packet (4 = IPv4, 41 = IPv6).
    pub const PROTO: usize = 1;
    /// Flags.
    pub const FLAGS: usize = 2;
    /// Header length without extensions.
    pub const HEADER_LEN: usize = 4;
}

/// IP protocol numbers used by the wire module.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 encapsulation (IPIP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation.
    pub const IPV6: u8 = 41;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

/// `N` bytes of `d` at `off`, as an array reference.
#[inline(always)]
pub(crate) fn chunk<const N: usize>(d: &[u8], off: usize) -> Option<&[u8; N]> {
    d.get(off..)?.first_chunk::<N>()
}

/// `N` mutable bytes of `d` at `off`, as an array reference.
#[inline(always)]
pub(crate) fn chunk_mut<const N: usize>(d: &mut [u8], off: usize) -> Option<&mut [u8; N]> {
    d.get_mut(off..)?.first_chunk_mut::<N>()
}

/// The big-endian `u16` at `off`.
#[inline(always)]
pub(crate) fn be16(d: &[u8], off: usize) -> Option<u16> {
    chunk::<2>(d, off).map(|b| u16::from_be_bytes(*b))
}

/// Stores `v` big-endian at `off`.
#[inline(always)]
pub(crate) fn set_be16(d: &mut [u8], off: usize, v: u16) -> Option<()> {
    *chunk_mut::<2>(d, off)? = v.to_be_bytes();
    Some(())
}

/// The big-endian `u16` at a constant offset of a fixed-size header (`&[u8; N]`). Only ever
/// used with the field constants above, so an out-of-range offset is a compile-time error
/// (`unconditional_panic`), never a run-time one.
macro_rules! get16 {
    ($h:expr, $off:expr) => {
        u16::from_be_bytes([$h[$off], $h[$off + 1]])
    };
}
pub(crate) use get16;
