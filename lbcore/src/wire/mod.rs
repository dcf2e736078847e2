//! Zero-copy parsing of Ethernet / IPv4 / IPv6 / TCP / UDP / ICMP / ICMPv6 frames, and the
//! Internet checksums (full and RFC 1624 incremental) the rewriters in [`crate::forward`] use.
//!
//! [`parse`] reads a frame in place and returns a small [`Packet`] value: header offsets plus
//! the fields the balancer needs (addresses, ports, TCP flags, fragment status, the packet an
//! ICMP error quotes). It copies nothing and allocates nothing.
//!
//! Guarantees:
//! - `parse` never panics, whatever the bytes: every access is bounds-checked (see [`field`]),
//!   and a frame it cannot vouch for is refused with a [`ParseError`] naming the reason.
//! - On `Ok`, every offset of the [`Packet`] lies within the slice that was parsed, in order
//!   (`l3 <= l4 <= payload <= ip_end <= data.len()`, likewise for a quoted packet), the IPv4
//!   header checksum is correct, the IP length field matches the bytes present, and a TCP or
//!   UDP header (when it is not a non-first fragment) is complete and self-consistent.
//! - Offsets are `u16`: a packet ending more than 65535 bytes into the slice is refused
//!   ([`ParseError::TooLong`]).
//!
//! What is *not* verified: TCP/UDP/ICMP checksums (the rewriters update them incrementally,
//! so a corrupt one stays corrupt and the receiver drops it), IPv4 options, and the checksum
//! of an ICMP error's quoted header (routers quote what they received).

use core::net::IpAddr;

use crate::service::Family;

pub mod checksum;
pub mod field;
mod parse;
#[cfg(test)]
pub(crate) mod testdata;
#[cfg(test)]
mod tests;

pub use parse::parse;
pub(crate) use parse::parse_into;

/// Bytes a caller must leave free before a frame so that [`crate::forward::encapsulate`] can
/// always prepend its headers.
///
/// The largest encapsulation is Ethernet (14) + IPv6 (40) + UDP (8) + GUE (4) = 66 bytes,
/// written in front of the inner IP packet (on an Ethernet input, over its old link header,
/// which only helps). 80 is the next multiple of 16: it keeps a 2 KiB buffer able to hold a
/// 1968-byte frame and leaves room for one or two VLAN tags should the output ever add them.
pub const HEADROOM: usize = 80;

/// What the first byte of a frame handed to [`parse`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// An Ethernet II frame, optionally with one or two 802.1Q / 802.1ad VLAN tags (skipped).
    Ethernet,
    /// A bare IPv4 or IPv6 packet (TUN device), told apart by its version nibble.
    Ip,
}

/// Why [`parse`] refused a frame. One variant per reason, so that counters can tell them
/// apart ([`ParseError::index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The slice ends inside the Ethernet / VLAN header or the fixed IP header.
    Truncated,
    /// An Ethernet frame that does not carry IP (ARP, LLDP, a third VLAN tag, ...). Not an
    /// error as such: the frame is simply not the balancer's business.
    NotIp,
    /// The IP version nibble is not 4 or 6, or disagrees with the EtherType.
    BadIpVersion,
    /// IPv4 IHL below 5, or a header longer than the total length.
    BadIpv4HeaderLength,
    /// IPv4 header checksum mismatch.
    BadIpv4Checksum,
    /// The IP length field (IPv4 total length, IPv6 payload length) is below the header
    /// length or runs past the end of the slice.
    BadTotalLength,
    /// The IP packet ends more than 65535 bytes into the slice (offsets are `u16`).
    TooLong,
    /// Malformed IPv6 extension-header chain: a header running past the packet, hop-by-hop
    /// not first, two fragment headers, or more than 8 extension headers.
    BadIpv6Extension,
    /// TCP header incomplete, or its data offset below 5 or past the end of the packet.
    BadTcpHeader,
    /// UDP header incomplete, or its length below 8 or past the end of the packet.
    BadUdpLength,
    /// ICMP / ICMPv6 message shorter than its 8-byte header.
    BadIcmpHeader,
    /// An ICMP / ICMPv6 error whose quoted packet is not a complete IP header of the same
    /// family (the quoted transport header may be truncated).
    BadIcmpQuote,
}

impl ParseError {
    /// Number of variants.
    pub const COUNT: usize = 12;

    /// Every variant, in [`ParseError::index`] order.
    pub const ALL: [ParseError; Self::COUNT] = [
        ParseError::Truncated,
        ParseError::NotIp,
        ParseError::BadIpVersion,
        ParseError::BadIpv4HeaderLength,
        ParseError::BadIpv4Checksum,
        ParseError::BadTotalLength,
        ParseError::TooLong,
        ParseError::BadIpv6Extension,
        ParseError::BadTcpHeader,
        ParseError::BadUdpLength,
        ParseError::BadIcmpHeader,
        ParseError::BadIcmpQuote,
    ];

    /// A dense index in `0..COUNT`, for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name, for counters and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ParseError::Truncated => "truncated",
            ParseError::NotIp => "not_ip",
            ParseError::BadIpVersion => "bad_ip_version",
            ParseError::BadIpv4HeaderLength => "bad_ipv4_header_length",
            ParseError::BadIpv4Checksum => "bad_ipv4_checksum",
            ParseError::BadTotalLength => "bad_total_length",
            ParseError::TooLong => "too_long",
            ParseError::BadIpv6Extension => "bad_ipv6_extension",
            ParseError::BadTcpHeader => "bad_tcp_header",
            ParseError::BadUdpLength => "bad_udp_length",
            ParseError::BadIcmpHeader => "bad_icmp_header",
            ParseError::BadIcmpQuote => "bad_icmp_quote",
        }
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Fragment status of an IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// Not a fragment (an IPv6 "atomic fragment", offset 0 without M, counts as none).
    None,
    /// The first fragment (offset 0, more fragments follow): it carries the transport header.
    First,
    /// A later fragment: no transport header, so no ports.
    NonFirst,
}

/// The IP packet quoted by an ICMP / ICMPv6 error (RFC 792 / RFC 4443): the packet the error
/// is about, as its sender sent it, so source and destination are reversed relative to the
/// error's own flow. Offsets are relative to the parsed slice; the quote ends at the outer
/// packet's [`Packet::ip_end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuotedPacket {
    /// Start of the quoted IP header.
    pub l3: u16,
    /// Start of the quoted transport header (after IPv4 options / IPv6 extension headers);
    /// its bytes may be truncated.
    pub l4: u16,
    /// Transport protocol of the quoted packet (final next header for IPv6).
    pub proto: u8,
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// Source port, when the quote is TCP/UDP with at least 4 transport bytes; else 0.
    pub sport: u16,
    /// Destination port, under the same condition; else 0.
    pub dport: u16,
    /// Fragment status of the quoted packet (a non-first fragment quotes no ports).
    pub frag: Fragment,
}

impl QuotedPacket {
    /// Whether the quote carries its TCP/UDP ports (and `sport`/`dport` are meaningful).
    pub fn has_ports(&self, ip_end: u16) -> bool {
        (self.proto == field::proto::TCP || self.proto == field::proto::UDP)
            && self.frag != Fragment::NonFirst
            && usize::from(self.l4) + 4 <= usize::from(ip_end)
    }
}

/// An ICMP or ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpInfo {
    /// ICMP type.
    pub typ: u8,
    /// ICMP code.
    pub code: u8,
    /// For the error types (ICMP destination unreachable incl. fragmentation needed, source
    /// quench, time exceeded, parameter problem; ICMPv6 destination unreachable, packet too
    /// big, time exceeded, parameter problem): the quoted packet.
    pub error: Option<QuotedPacket>,
}

/// A parsed frame: where its headers are and what the balancer needs from them. All offsets
/// are relative to the start of the slice given to [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Packet {
    /// What the slice starts with.
    pub link: LinkKind,
    /// Start of the IP header.
    pub l3: u16,
    /// Start of the transport header (after IPv4 options / IPv6 extension headers); for a
    /// non-first fragment, the start of the fragment's payload.
    pub l4: u16,
    /// Start of the transport payload: after the TCP header with options, the UDP header, or
    /// the 8-byte ICMP header; equal to `l4` for other protocols and non-first fragments.
    pub payload: u16,
    /// End of the IP packet per its length field (trailing Ethernet padding excluded).
    pub ip_end: u16,
    /// Address family.
    pub family: Family,
    /// Transport protocol (the final next header for IPv6).
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TCP/UDP source port; 0 for other protocols and non-first fragments.
    pub sport: u16,
    /// TCP/UDP destination port; 0 for other protocols and non-first fragments.
    pub dport: u16,
    /// The raw TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN); 0 for non-TCP.
    pub tcp_flags: u8,
    /// Fragment status.
    pub frag: Fragment,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// ICMP / ICMPv6 details (not for a non-first fragment).
    pub icmp: Option<IcmpInfo>,
}

impl Packet {
    /// A placeholder to parse into.
    pub(crate) const EMPTY: Packet = Packet {
        link: LinkKind::Ip,
        l3: 0,
        l4: 0,
        payload: 0,
        ip_end: 0,
        family: Family::V4,
        proto: 0,
        src: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        frag: Fragment::None,
        ttl: 0,
        icmp: None,
    };

    /// Length of the IP packet (header included, Ethernet padding excluded).
    pub const fn ip_len(&self) -> u16 {
        self.ip_end.saturating_sub(self.l3)
    }

    /// Length of the transport payload (see [`Packet::payload`]).
    pub const fn l4_payload_len(&self) -> u16 {
        self.ip_end.saturating_sub(self.payload)
    }

    /// Length of the transport segment, header included.
    pub const fn l4_len(&self) -> u16 {
        self.ip_end.saturating_sub(self.l4)
    }

    /// Whether the packet is TCP or UDP with its ports present.
    pub const fn has_ports(&self) -> bool {
        matches!(self.proto, field::proto::TCP | field::proto::UDP)
            && !matches!(self.frag, Fragment::NonFirst)
    }
}
