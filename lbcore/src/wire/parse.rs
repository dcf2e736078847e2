//! The frame parser behind [`super::parse`].
//!
//! Written for the common case: an Ethernet + IPv4 + TCP frame is a handful of fixed-offset
//! loads from arrays borrowed once (`&[u8; N]`), a 20-byte header checksum and a few
//! comparisons; no loops other than the checksum's, no etherparse. Everything else (VLAN tags,
//! IPv6 extension headers, ICMP quotes) is handled off that path.
//!
//! Guarantees: see the module documentation of [`super`]. In particular every offset stored
//! in a [`Packet`] has been checked against the slice before it is stored.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::field::{self, chunk, ethernet, get16, icmp, ipv4, ipv6, proto, tcp, udp};
use super::{Fragment, IcmpInfo, LinkKind, Packet, ParseError, QuotedPacket};
use crate::service::Family;

/// Longest IPv6 extension-header chain we walk. Real chains have at most four or five
/// (hop-by-hop, destination options, routing, fragment, destination options); a longer one is
/// either an attack or a mistake, and walking it costs time on the packet path.
const MAX_EXT_HEADERS: usize = 8;

/// Parses a frame (see the [module documentation](super)).
///
/// `data` is the whole frame as received; `link` says whether it starts with an Ethernet
/// header or directly with the IP header.
pub fn parse(data: &[u8], link: LinkKind) -> Result<Packet, ParseError> {
    let mut out = Packet::EMPTY;
    parse_into(data, link, &mut out)?;
    Ok(out)
}

/// [`parse`] into `out`, for the balancer's hot path: writing the result in place spares a
/// copy of the [`Packet`] per packet. `out` is unspecified after an error.
#[inline(always)]
pub(crate) fn parse_into(data: &[u8], link: LinkKind, out: &mut Packet) -> Result<(), ParseError> {
    let (l3, family) = match link {
        LinkKind::Ethernet => ethernet_header(data)?,
        LinkKind::Ip => match data.first().map(|b| b >> 4) {
            None => return Err(ParseError::Truncated),
            Some(4) => (0, Family::V4),
            Some(6) => (0, Family::V6),
            Some(_) => return Err(ParseError::BadIpVersion),
        },
    };
    let ip = match family {
        Family::V4 => ipv4_header(data, l3)?,
        Family::V6 => ipv6_header(data, l3)?,
    };
    let t = transport(data, family, &ip)?;
    *out = Packet {
        link,
        l3: off16(l3)?,
        l4: off16(ip.l4)?,
        payload: off16(t.payload)?,
        ip_end: off16(ip.end)?,
        family,
        proto: ip.proto,
        src: ip.src,
        dst: ip.dst,
        sport: t.sport,
        dport: t.dport,
        tcp_flags: t.tcp_flags,
        frag: ip.frag,
        ttl: ip.ttl,
        icmp: t.icmp,
    };
    Ok(())
}

/// An offset as stored in a [`Packet`]. Every offset is at most the IP end, which the IP
/// parsers already bounded by 65535, so this never fails in practice; it is checked anyway
/// rather than truncated.
#[inline(always)]
fn off16(x: usize) -> Result<u16, ParseError> {
    u16::try_from(x).map_err(|_| ParseError::TooLong)
}

/// Skips the Ethernet header and up to two VLAN tags; returns the IP header's offset and
/// family.
#[inline(always)]
fn ethernet_header(data: &[u8]) -> Result<(usize, Family), ParseError> {
    let h: &[u8; ethernet::HEADER_LEN] = chunk(data, 0).ok_or(ParseError::Truncated)?;
    let mut ty = get16!(h, ethernet::ETHERTYPE);
    let mut l3 = ethernet::HEADER_LEN;
    // 802.1ad outer + 802.1Q inner is the deepest stacking seen in practice; a third tag
    // falls through to `NotIp`.
    for _ in 0..2 {
        if ty != ethernet::TYPE_VLAN && ty != ethernet::TYPE_QINQ {
            break;
        }
        // The tag is TCI (2 bytes) then the next EtherType (2 bytes), just before `l3 + 4`.
        ty = field::be16(data, l3 + 2).ok_or(ParseError::Truncated)?;
        l3 += ethernet::VLAN_TAG_LEN;
    }
    match ty {
        ethernet::TYPE_IPV4 => Ok((l3, Family::V4)),
        ethernet::TYPE_IPV6 => Ok((l3, Family::V6)),
        _ => Err(ParseError::NotIp),
    }
}

/// What the IP layer tells the transport parser.
struct IpInfo {
    l4: usize,
    end: usize,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    frag: Fragment,
    ttl: u8,
}

#[inline(always)]
fn ipv4_header(data: &[u8], l3: usize) -> Result<IpInfo, ParseError> {
    let h: &[u8; ipv4::HEADER_LEN] = chunk(data, l3).ok_or(ParseError::Truncated)?;
    if h[ipv4::VER_IHL] >> 4 != 4 {
        return Err(ParseError::BadIpVersion);
    }
    let ihl = usize::from(h[ipv4::VER_IHL] & 0x0f) * 4;
    if ihl < ipv4::HEADER_LEN {
        return Err(ParseError::BadIpv4HeaderLength);
    }
    let total = usize::from(get16!(h, ipv4::TOTAL_LEN));
    if total < ipv4::HEADER_LEN {
        return Err(ParseError::BadTotalLength);
    }
    if total < ihl {
        return Err(ParseError::BadIpv4HeaderLength);
    }
    let end = l3 + total;
    if end > data.len() {
        return Err(ParseError::BadTotalLength);
    }
    if end > usize::from(u16::MAX) {
        return Err(ParseError::TooLong);
    }
    // A correct header sums to all ones. Options are rare: sum the borrowed array directly
    // when there are none.
    let hsum = if ihl == ipv4::HEADER_LEN {
        sum_header20(h)
    } else {
        checksum::sum(data.get(l3..l3 + ihl).ok_or(ParseError::BadIpv4HeaderLength)?)
    };
    if hsum != 0xffff {
        return Err(ParseError::BadIpv4Checksum);
    }
    let ff = get16!(h, ipv4::FLAGS_FRAG);
    let frag = if ff & ipv4::FRAG_OFFSET != 0 {
        Fragment::NonFirst
    } else if ff & ipv4::FLAG_MF != 0 {
        Fragment::First
    } else {
        Fragment::None
    };
    Ok(IpInfo {
        l4: l3 + ihl,
        end,
        proto: h[ipv4::PROTO],
        src: v4(h, ipv4::SRC),
        dst: v4(h, ipv4::DST),
        frag,
        ttl: h[ipv4::TTL],
    })
}

/// [`checksum::sum`] of an option-less IPv4 header: five fixed 32-bit loads and one fold, where
/// the general loop costs about three times the instructions on every packet.
#[inline(always)]
fn sum_header20(h: &[u8; ipv4::HEADER_LEN]) -> u32 {
    let w = |i: usize| u64::from(u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    let acc = w(0) + w(4) + w(8) + w(12) + w(16);
    // Five 32-bit words sum below 2^35: two folds to 17 bits, a third to 16.
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u32
}

fn ipv6_header(data: &[u8], l3: usize) -> Result<IpInfo, ParseError> {
    let h: &[u8; ipv6::HEADER_LEN] = chunk(data, l3).ok_or(ParseError::Truncated)?;
    if h[ipv6::VER_TC_FLOW] >> 4 != 6 {
        return Err(ParseError::BadIpVersion);
    }
    // A payload length of 0 with a hop-by-hop header would be a jumbogram (RFC 2675); we do
    // not support those, and the chain walk below refuses it (the header cannot fit).
    let end = l3 + ipv6::HEADER_LEN + usize::from(get16!(h, ipv6::PAYLOAD_LEN));
    if end > data.len() {
        return Err(ParseError::BadTotalLength);
    }
    if end > usize::from(u16::MAX) {
        return Err(ParseError::TooLong);
    }
    let (proto, l4, frag) = ext_chain(data, h[ipv6::NEXT_HEADER], l3 + ipv6::HEADER_LEN, end)
        .ok_or(ParseError::BadIpv6Extension)?;
    Ok(IpInfo {
        l4,
        end,
        proto,
        src: v6(h, ipv6::SRC),
        dst: v6(h, ipv6::DST),
        frag,
        ttl: h[ipv6::HOP_LIMIT],
    })
}

/// Walks an IPv6 extension-header chain that starts at `off` with next header `nh` and must
/// stay within `end`. Returns the upper-layer protocol, its offset and the fragment status;
/// `None` for a malformed chain. Stops at a non-first fragment's header: what follows it is
/// fragment payload. AH, ESP and unknown values are treated as the upper layer.
fn ext_chain(data: &[u8], mut nh: u8, mut off: usize, end: usize) -> Option<(u8, usize, Fragment)> {
    let mut frag = Fragment::None;
    let mut seen_frag = false;
    for i in 0..=MAX_EXT_HEADERS {
        match nh {
            ipv6::NH_HOP_BY_HOP | ipv6::NH_ROUTING | ipv6::NH_DEST_OPTS => {
                // RFC 8200 §4.1: hop-by-hop options only directly after the IPv6 header.
                if nh == ipv6::NH_HOP_BY_HOP && i != 0 {
                    return None;
                }
                if off + 2 > end {
                    return None;
                }
                let b: &[u8; 2] = chunk(data, off)?;
                let len = (usize::from(b[1]) + 1) * 8;
                if off + len > end {
                    return None;
                }
                nh = b[0];
                off += len;
            }
            ipv6::NH_FRAGMENT => {
                if seen_frag || off + ipv6::FRAGMENT_LEN > end {
                    return None;
                }
                seen_frag = true;
                let b: &[u8; ipv6::FRAGMENT_LEN] = chunk(data, off)?;
                nh = b[0];
                off += ipv6::FRAGMENT_LEN;
                let fo = get16!(b, 2);
                if fo >> 3 != 0 {
                    return Some((nh, off, Fragment::NonFirst));
                }
                if fo & 1 != 0 {
                    frag = Fragment::First;
                }
            }
            _ => return Some((nh, off, frag)),
        }
    }
    None
}

/// What the transport parser found.
struct TransportInfo {
    payload: usize,
    sport: u16,
    dport: u16,
    tcp_flags: u8,
    icmp: Option<IcmpInfo>,
}

#[inline(always)]
fn transport(data: &[u8], family: Family, ip: &IpInfo) -> Result<TransportInfo, ParseError> {
    let mut t = TransportInfo {
        payload: ip.l4,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        icmp: None,
    };
    if ip.frag == Fragment::NonFirst {
        return Ok(t);
    }
    // The IP parsers guarantee l4 <= end <= data.len(); an empty segment is the fallback
    // should that ever not hold, and then every header check below fails cleanly.
    let seg = data.get(ip.l4..ip.end).unwrap_or(&[]);
    match (ip.proto, family) {
        (proto::TCP, _) => {
            let h: &[u8; tcp::HEADER_LEN] = seg.first_chunk().ok_or(ParseError::BadTcpHeader)?;
            let doff = usize::from(h[tcp::DATA_OFF] >> 4) * 4;
            if doff < tcp::HEADER_LEN || doff > seg.len() {
                return Err(ParseError::BadTcpHeader);
            }
            t.sport = get16!(h, tcp::SRC_PORT);
            t.dport = get16!(h, tcp::DST_PORT);
            t.tcp_flags = h[tcp::FLAGS];
            t.payload = ip.l4 + doff;
        }
        (proto::UDP, _) => {
            let h: &[u8; udp::HEADER_LEN] = seg.first_chunk().ok_or(ParseError::BadUdpLength)?;
            let ulen = usize::from(get16!(h, udp::LENGTH));
            // A first fragment holds only part of the datagram the length describes. A length
            // shorter than the IP payload is accepted, as Linux does (it trims the excess).
            if ulen < udp::HEADER_LEN || (ip.frag == Fragment::None && ulen > seg.len()) {
                return Err(ParseError::BadUdpLength);
            }
            t.sport = get16!(h, udp::SRC_PORT);
            t.dport = get16!(h, udp::DST_PORT);
            t.payload = ip.l4 + udp::HEADER_LEN;
        }
        (proto::ICMP, Family::V4) | (proto::ICMPV6, Family::V6) => {
            let h: &[u8; icmp::HEADER_LEN] = seg.first_chunk().ok_or(ParseError::BadIcmpHeader)?;
            let (typ, code) = (h[icmp::TYPE], h[icmp::CODE]);
            let is_error = match family {
                // Destination unreachable, source quench, time exceeded, parameter problem:
                // the types IPVS relates to connections, plus parameter problem.
                Family::V4 => matches!(typ, 3 | 4 | 11 | 12),
                // Destination unreachable, packet too big, time exceeded, parameter problem.
                Family::V6 => matches!(typ, 1..=4),
            };
            t.payload = ip.l4 + icmp::HEADER_LEN;
            let error = if is_error {
                Some(quote(data, family, t.payload, ip.end)?)
            } else {
                None
            };
            t.icmp = Some(IcmpInfo { typ, code, error });
        }
        _ => {}
    }
    Ok(t)
}

/// Parses the packet an ICMP error quotes, starting at `l3` and cut at `end`. Its IP header
/// (with IPv4 options / IPv6 extension headers) must be complete and of the outer family;
/// its transport header may be cut anywhere.
fn quote(data: &[u8], family: Family, l3: usize, end: usize) -> Result<QuotedPacket, ParseError> {
    let bad = ParseError::BadIcmpQuote;
    let quoted = data.get(l3..end).ok_or(bad)?;
    let (l4, proto, src, dst, frag) = match family {
        Family::V4 => {
            let h: &[u8; ipv4::HEADER_LEN] = quoted.first_chunk().ok_or(bad)?;
            let ihl = usize::from(h[ipv4::VER_IHL] & 0x0f) * 4;
            if h[ipv4::VER_IHL] >> 4 != 4 || ihl < ipv4::HEADER_LEN || ihl > quoted.len() {
                return Err(bad);
            }
            let ff = get16!(h, ipv4::FLAGS_FRAG);
            let frag = if ff & ipv4::FRAG_OFFSET != 0 {
                Fragment::NonFirst
            } else if ff & ipv4::FLAG_MF != 0 {
                Fragment::First
            } else {
                Fragment::None
            };
            (l3 + ihl, h[ipv4::PROTO], v4(h, ipv4::SRC), v4(h, ipv4::DST), frag)
        }
        Family::V6 => {
            let h: &[u8; ipv6::HEADER_LEN] = quoted.first_chunk().ok_or(bad)?;
            if h[ipv6::VER_TC_FLOW] >> 4 != 6 {
                return Err(bad);
            }
            let (proto, l4, frag) =
                ext_chain(data, h[ipv6::NEXT_HEADER], l3 + ipv6::HEADER_LEN, end).ok_or(bad)?;
            (l4, proto, v6(h, ipv6::SRC), v6(h, ipv6::DST), frag)
        }
    };
    let mut q = QuotedPacket {
        l3: off16(l3)?,
        l4: off16(l4)?,
        proto,
        src,
        dst,
        sport: 0,
        dport: 0,
        frag,
    };
    if q.has_ports(off16(end)?) {
        // `has_ports` checked that four bytes are present at l4.
        let p: &[u8; 4] = chunk(data, l4).ok_or(bad)?;
        q.sport = get16!(p, 0);
        q.dport = get16!(p, 2);
    }
    Ok(q)
}

#[inline(always)]
fn v4<const N: usize>(h: &[u8; N], off: usize) -> IpAddr {
    // `off` is a field constant with `off + 4 <= N`; the fallback is unreachable.
    IpAddr::V4(Ipv4Addr::from(chunk::<4>(h, off).copied().unwrap_or([0; 4])))
}

#[inline(always)]
fn v6<const N: usize>(h: &[u8; N], off: usize) -> IpAddr {
    // `off` is a field constant with `off + 16 <= N`; the fallback is unreachable.
    IpAddr::V6(Ipv6Addr::from(chunk::<16>(h, off).copied().unwrap_or([0; 16])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_header20_matches_the_general_sum() {
        let mut h = [0u8; ipv4::HEADER_LEN];
        let mut x: u32 = 0x1234_5678;
        for round in 0..2000 {
            for b in h.iter_mut() {
                // xorshift32: varied bytes, including runs of 0xff that carry far.
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = if round % 3 == 0 { 0xff } else { x as u8 };
            }
            assert_eq!(sum_header20(&h), checksum::sum(&h), "{h:02x?}");
        }
        assert_eq!(
            sum_header20(&[0xff; ipv4::HEADER_LEN]),
            checksum::sum(&[0xff; ipv4::HEADER_LEN])
        );
        assert_eq!(sum_header20(&[0; ipv4::HEADER_LEN]), 0);
    }
}
