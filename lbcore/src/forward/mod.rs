//! In-place packet rewriting for the forwarding methods: DR (MAC rewrite), NAT and FULLNAT
//! (address/port rewrite), TUN (IPIP, IPv6-in-IPv6, GUE; see [`encapsulate`]) and the
//! translation of ICMP errors about NAT connections.
//!
//! Every function takes the slice that [`crate::wire::parse`] parsed together with the
//! resulting [`Packet`], and keeps the two consistent (the `&mut Packet` reflects the new
//! addresses and ports afterwards).
//!
//! Guarantees:
//! - No panics and no allocation, whatever the slice and the `Packet` say. A `Packet` that
//!   does not describe the slice is refused with [`ForwardError::Mismatch`]; all checks
//!   happen before the first byte is written, so a refused packet is left untouched.
//! - Checksums are updated incrementally (RFC 1624), never recomputed from scratch: a packet
//!   with a valid checksum keeps a valid one, and a corrupt one stays corrupt so that the
//!   receiver still drops it. A UDP checksum of 0 ("none") stays 0.
//! - TTL / hop limit are never touched. This follows IPVS: `ip_vs_nat_xmit`,
//!   `ip_vs_dr_xmit` and `handle_response` rewrite addresses (and `ip_send_check`) without
//!   `ip_decrease_ttl`; the kernel decrements TTL only where the packet is IP-forwarded,
//!   which is the host's business, not the balancer's.
//!
//! Limitation: for IPv6, the transport checksum is updated as if the pseudo-header
//! destination were the IPv6 destination field, which is wrong only for packets carrying a
//! routing header with segments left (the final destination is then in that header).

use core::net::IpAddr;

use crate::service::Family;
use crate::wire::checksum::Delta;
use crate::wire::field::{self, chunk, chunk_mut, ethernet, icmp, ipv4, ipv6, proto, tcp, udp};
use crate::wire::{Fragment, LinkKind, Packet};

#[cfg(test)]
mod tests;
mod tunnel;

pub use tunnel::{Encap, encapsulate};

/// An address and port: one end of a rewritten flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IP address (must be of the packet's family).
    pub addr: IpAddr,
    /// TCP/UDP port.
    pub port: u16,
}

/// Why a rewrite was refused. The packet is left unchanged in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ForwardError {
    /// DR (and MAC rewriting in general) needs an Ethernet frame.
    NeedsEthernet,
    /// Not enough bytes before the frame for the encapsulation headers (see
    /// [`crate::wire::HEADROOM`]).
    NoHeadroom,
    /// An address is not of the packet's family (or a tunnel's source and destination
    /// differ in family).
    FamilyMismatch,
    /// Address/port rewriting needs a TCP or UDP packet.
    NotTransport,
    /// A non-first fragment has no ports and its transport checksum lives in another
    /// fragment, so it cannot be rewritten.
    NonFirstFragment,
    /// ICMP-error translation needs an ICMP / ICMPv6 error with a quoted packet.
    NotIcmpError,
    /// The encapsulated packet would exceed 65535 bytes.
    TooBig,
    /// The `Packet` does not describe the slice (offsets out of range, other IP version):
    /// a caller bug, refused rather than trusted.
    Mismatch,
}

impl ForwardError {
    /// Number of variants.
    pub const COUNT: usize = 8;

    /// Every variant, in [`ForwardError::index`] order.
    pub const ALL: [ForwardError; Self::COUNT] = [
        ForwardError::NeedsEthernet,
        ForwardError::NoHeadroom,
        ForwardError::FamilyMismatch,
        ForwardError::NotTransport,
        ForwardError::NonFirstFragment,
        ForwardError::NotIcmpError,
        ForwardError::TooBig,
        ForwardError::Mismatch,
    ];

    /// A dense index in `0..COUNT`, for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name, for counters and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ForwardError::NeedsEthernet => "needs_ethernet",
            ForwardError::NoHeadroom => "no_headroom",
            ForwardError::FamilyMismatch => "family_mismatch",
            ForwardError::NotTransport => "not_transport",
            ForwardError::NonFirstFragment => "non_first_fragment",
            ForwardError::NotIcmpError => "not_icmp_error",
            ForwardError::TooBig => "too_big",
            ForwardError::Mismatch => "mismatch",
        }
    }
}

impl core::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// DR: sets the destination and source MAC addresses of an Ethernet frame. Everything else,
/// VLAN tags included, is left as it is (IPVS's `ip_vs_dr_xmit` only re-routes).
pub fn set_macs(data: &mut [u8], pkt: &Packet, dst: [u8; 6], src: [u8; 6]) -> Result<(), ForwardError> {
    if pkt.link != LinkKind::Ethernet {
        return Err(ForwardError::NeedsEthernet);
    }
    let h: &mut [u8; ethernet::HEADER_LEN] = chunk_mut(data, 0).ok_or(ForwardError::Mismatch)?;
    let (d, s) = h.split_at_mut(ethernet::SRC);
    d.copy_from_slice(&dst);
    s.get_mut(..6)
        .ok_or(ForwardError::Mismatch)?
        .copy_from_slice(&src);
    Ok(())
}

/// NAT / FULLNAT: replaces the source and/or destination address and port of a TCP or UDP
/// packet, updating the IPv4 header checksum and the TCP/UDP checksum (pseudo-header
/// included) incrementally. `None` leaves that end alone; DNAT is `(None, Some(real))`,
/// SNAT of a reply `(Some(vip), None)`, FULLNAT both.
///
/// A first fragment is fine (its transport checksum covers the whole datagram, which the
/// incremental update respects); a non-first fragment is refused.
pub fn rewrite(
    data: &mut [u8],
    pkt: &mut Packet,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
) -> Result<(), ForwardError> {
    let csum_at = match pkt.proto {
        proto::TCP => tcp::CHECKSUM,
        proto::UDP => udp::CHECKSUM,
        _ => return Err(ForwardError::NotTransport),
    };
    if pkt.frag == Fragment::NonFirst {
        return Err(ForwardError::NonFirstFragment);
    }
    for e in [src, dst].iter().flatten() {
        if Family::of(&e.addr) != pkt.family {
            return Err(ForwardError::FamilyMismatch);
        }
    }
    let l3 = usize::from(pkt.l3);
    let l4 = usize::from(pkt.l4);
    check_ip(data, pkt)?;
    if l4 + csum_at + 2 > usize::from(pkt.ip_end) {
        return Err(ForwardError::Mismatch);
    }

    // Validation done: from here on every access is in bounds, and `?` cannot fire.
    let addrs = set_addrs(data, l3, pkt.family, src.map(|e| e.addr), dst.map(|e| e.addr))
        .ok_or(ForwardError::Mismatch)?;
    if pkt.family == Family::V4 {
        fix_ipv4_checksum(data, l3, addrs).ok_or(ForwardError::Mismatch)?;
    }
    let ports =
        set_ports(data, l4, src.map(|e| e.port), dst.map(|e| e.port)).ok_or(ForwardError::Mismatch)?;
    let delta = addrs.and(ports);
    let old = field::be16(data, l4 + csum_at).ok_or(ForwardError::Mismatch)?;
    // A zero UDP checksum means "none" (IPv4) and stays zero; over IPv6 it is invalid
    // (RFC 8200) except for RFC 6935 tunnels, and is left as it came either way.
    let new = if pkt.proto == proto::UDP {
        delta.apply_udp(old)
    } else {
        delta.apply(old)
    };
    field::set_be16(data, l4 + csum_at, new).ok_or(ForwardError::Mismatch)?;

    if let Some(e) = src {
        pkt.src = e.addr;
        pkt.sport = e.port;
    }
    if let Some(e) = dst {
        pkt.dst = e.addr;
        pkt.dport = e.port;
    }
    Ok(())
}

/// ICMP-error translation for NAT / FULLNAT (what IPVS's `ip_vs_nat_icmp` does): rewrites
/// the outer source/destination addresses and the quoted packet's source/destination
/// address and port, then fixes, incrementally,
/// - the outer IPv4 header checksum,
/// - the quoted IPv4 header checksum,
/// - the quoted TCP/UDP checksum when its field is within the quote (`ip_vs_nat_icmp` leaves
///   it stale; keeping it right costs two words and spares receivers that look at it),
/// - the ICMP checksum over the message, or the ICMPv6 checksum including its pseudo-header.
///
/// Ports are only written when the quote carries them (TCP/UDP, at least 4 transport bytes,
/// not a non-first fragment); otherwise the endpoints' ports are ignored.
pub fn rewrite_icmp_error(
    data: &mut [u8],
    pkt: &mut Packet,
    outer_src: Option<IpAddr>,
    outer_dst: Option<IpAddr>,
    inner_src: Option<Endpoint>,
    inner_dst: Option<Endpoint>,
) -> Result<(), ForwardError> {
    let Some(mut info) = pkt.icmp else {
        return Err(ForwardError::NotIcmpError);
    };
    let Some(mut q) = info.error else {
        return Err(ForwardError::NotIcmpError);
    };
    let addrs = [
        outer_src,
        outer_dst,
        inner_src.map(|e| e.addr),
        inner_dst.map(|e| e.addr),
    ];
    if addrs.iter().flatten().any(|a| Family::of(a) != pkt.family) {
        return Err(ForwardError::FamilyMismatch);
    }
    let (l3, l4, end) = (usize::from(pkt.l3), usize::from(pkt.l4), usize::from(pkt.ip_end));
    let (ql3, ql4) = (usize::from(q.l3), usize::from(q.l4));
    check_ip(data, pkt)?;
    let ip_hlen = match pkt.family {
        Family::V4 => ipv4::HEADER_LEN,
        Family::V6 => ipv6::HEADER_LEN,
    };
    // The quoted header, complete, after the ICMP header, within the packet.
    if l4 + icmp::HEADER_LEN > ql3 || ql3 + ip_hlen > ql4 || ql4 > end {
        return Err(ForwardError::Mismatch);
    }
    if chunk::<1>(data, ql3).map(|b| b[0] >> 4) != Some(ip_version(pkt.family)) {
        return Err(ForwardError::Mismatch);
    }
    let has_ports = q.has_ports(pkt.ip_end);
    let qcsum_at = match q.proto {
        proto::TCP if has_ports => Some(ql4 + tcp::CHECKSUM),
        proto::UDP if has_ports => Some(ql4 + udp::CHECKSUM),
        _ => None,
    }
    .filter(|&at| at + 2 <= end);

    // Validation done: from here on every access is in bounds.
    let mismatch = ForwardError::Mismatch;
    // Outer header. Its addresses are in the ICMPv6 pseudo-header, not in ICMPv4's sum.
    let outer = set_addrs(data, l3, pkt.family, outer_src, outer_dst).ok_or(mismatch)?;
    let mut icmp_delta = match pkt.family {
        Family::V4 => {
            fix_ipv4_checksum(data, l3, outer).ok_or(mismatch)?;
            Delta::new()
        }
        Family::V6 => outer,
    };

    // Quoted header: its addresses (and, for IPv4, its checksum) are ICMP payload.
    let qaddrs = set_addrs(
        data,
        ql3,
        pkt.family,
        inner_src.map(|e| e.addr),
        inner_dst.map(|e| e.addr),
    )
    .ok_or(mismatch)?;
    icmp_delta = icmp_delta.and(qaddrs);
    if pkt.family == Family::V4 {
        let (old, new) = fix_ipv4_checksum(data, ql3, qaddrs).ok_or(mismatch)?;
        icmp_delta = icmp_delta.word(old, new);
    }

    // Quoted ports and transport checksum.
    let mut qports = Delta::new();
    if has_ports {
        qports =
            set_ports(data, ql4, inner_src.map(|e| e.port), inner_dst.map(|e| e.port)).ok_or(mismatch)?;
        icmp_delta = icmp_delta.and(qports);
    }
    if let Some(at) = qcsum_at {
        let old = field::be16(data, at).ok_or(mismatch)?;
        let d = qaddrs.and(qports);
        let new = if q.proto == proto::UDP {
            d.apply_udp(old)
        } else {
            d.apply(old)
        };
        field::set_be16(data, at, new).ok_or(mismatch)?;
        icmp_delta = icmp_delta.word(old, new);
    }

    let at = l4 + icmp::CHECKSUM;
    let old = field::be16(data, at).ok_or(mismatch)?;
    field::set_be16(data, at, icmp_delta.apply(old)).ok_or(mismatch)?;

    // Keep the Packet in step.
    if let Some(a) = outer_src {
        pkt.src = a;
    }
    if let Some(a) = outer_dst {
        pkt.dst = a;
    }
    if let Some(e) = inner_src {
        q.src = e.addr;
        if has_ports {
            q.sport = e.port;
        }
    }
    if let Some(e) = inner_dst {
        q.dst = e.addr;
        if has_ports {
            q.dport = e.port;
        }
    }
    info.error = Some(q);
    pkt.icmp = Some(info);
    Ok(())
}

/// The version nibble of a family.
const fn ip_version(f: Family) -> u8 {
    match f {
        Family::V4 => 4,
        Family::V6 => 6,
    }
}

/// Checks that the slice holds the packet `pkt` describes: IP end within the slice, a
/// complete fixed IP header of the right version at `l3`, and `l3 <= l4 <= ip_end`.
fn check_ip(data: &[u8], pkt: &Packet) -> Result<(), ForwardError> {
    let (l3, l4, end) = (usize::from(pkt.l3), usize::from(pkt.l4), usize::from(pkt.ip_end));
    let hlen = match pkt.family {
        Family::V4 => ipv4::HEADER_LEN,
        Family::V6 => ipv6::HEADER_LEN,
    };
    let ok = end <= data.len()
        && l3 + hlen <= l4
        && l4 <= end
        && data.get(l3).map(|b| b >> 4) == Some(ip_version(pkt.family));
    if ok { Ok(()) } else { Err(ForwardError::Mismatch) }
}

/// Writes the source and/or destination address of the IP header at `l3` and returns the
/// checksum delta of the change, for the IPv4 header checksum and the pseudo-headers.
/// `None` if the header is not in the slice (callers validate first).
fn set_addrs(
    data: &mut [u8],
    l3: usize,
    family: Family,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
) -> Option<Delta> {
    let mut delta = Delta::new();
    match family {
        Family::V4 => {
            let h: &mut [u8; ipv4::HEADER_LEN] = chunk_mut(data, l3)?;
            for (addr, at) in [(src, ipv4::SRC), (dst, ipv4::DST)] {
                let Some(IpAddr::V4(a)) = addr else { continue };
                let slot: &mut [u8; 4] = chunk_mut(h, at)?;
                delta = delta.bytes(slot, &a.octets());
                *slot = a.octets();
            }
        }
        Family::V6 => {
            let h: &mut [u8; ipv6::HEADER_LEN] = chunk_mut(data, l3)?;
            for (addr, at) in [(src, ipv6::SRC), (dst, ipv6::DST)] {
                let Some(IpAddr::V6(a)) = addr else { continue };
                let slot: &mut [u8; 16] = chunk_mut(h, at)?;
                delta = delta.bytes(slot, &a.octets());
                *slot = a.octets();
            }
        }
    }
    Some(delta)
}

/// Applies `delta` to the IPv4 header checksum of the header at `l3`; returns the old and new
/// checksum values.
fn fix_ipv4_checksum(data: &mut [u8], l3: usize, delta: Delta) -> Option<(u16, u16)> {
    let at = l3 + ipv4::CHECKSUM;
    let old = field::be16(data, at)?;
    let new = delta.apply(old);
    field::set_be16(data, at, new)?;
    Some((old, new))
}

/// Writes the source and/or destination port of the TCP/UDP header at `l4` and returns the
/// checksum delta.
fn set_ports(data: &mut [u8], l4: usize, src: Option<u16>, dst: Option<u16>) -> Option<Delta> {
    let p: &mut [u8; 4] = chunk_mut(data, l4)?;
    let mut delta = Delta::new();
    for (port, at) in [(src, tcp::SRC_PORT), (dst, tcp::DST_PORT)] {
        let Some(port) = port else { continue };
        let slot: &mut [u8; 2] = chunk_mut(p, at)?;
        delta = delta.word(u16::from_be_bytes(*slot), port);
        *slot = port.to_be_bytes();
    }
    Some(delta)
}
