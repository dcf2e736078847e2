//! TUN forwarding: encapsulation of the inner IP packet in IPIP (IPv4 or IPv6 in IPv4),
//! IPv6-in-IPv6 (or IPv4 in IPv6), or GUE over either, written in place into the headroom in
//! front of the packet.
//!
//! Header choices follow IPVS's `ip_vs_tunnel_xmit` / `ip_vs_tunnel_xmit_v6` and
//! `ip_vs_prepare_tunneled_skb` (Linux 6.x, default sysctls):
//! - TTL / hop limit: copied from the inner packet (not decremented).
//! - TOS / traffic class: the inner DSCP, with ECN per `INET_ECN_encapsulate`: the inner ECN
//!   bits are copied, except that CE becomes ECT(0) (congestion is not re-signalled twice).
//! - DF (outer IPv4): copied from an inner IPv4 packet (`pmtu_disc = 1`, the default); clear
//!   for an inner IPv6 packet. Fragment offset and MF are zero.
//! - Identification (outer IPv4): 0 when DF is set (as `ip_select_ident` does for DF
//!   packets, RFC 6864). Without DF the kernel draws from a per-destination counter; being
//!   stateless, we copy the inner IPv4 identification, or for an inner IPv6 packet fold the
//!   first 20 bytes after its fixed header (ports, sequence numbers, checksum: they vary per
//!   packet).
//! - IPv6 flow label: 0, as the kernel writes it.
//! - GUE (variant 0, no extensions): `udph.source` is the caller's flow-hash port
//!   ([`Encap::udp_sport`], the kernel's `udp_flow_src_port`), `udph.dest` the tunnel port,
//!   GUE `proto_ctype` 4 or 41. UDP checksum: 0 over IPv4 (the default `NOCSUM` tunnel flag);
//!   over IPv6 a zero checksum is not allowed (RFC 8200), so the full checksum is computed.
//!
//! Guarantees: no panic, no allocation; the inner packet's bytes are not modified (its IPv4
//! header checksum was verified by the parser, so the kernel's `ip_send_check` on it would be
//! a no-op); on error nothing is written.

use core::net::IpAddr;

use super::ForwardError;
use crate::service::{Family, TunnelType};
use crate::wire::Packet;
use crate::wire::checksum;
use crate::wire::field::{self, chunk, chunk_mut, ethernet, gue, ipv4, ipv6, proto, udp};

/// A tunnel to encapsulate into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Encap {
    /// IPIP / IPv6-in-IPv6, or GUE to a UDP port.
    pub kind: TunnelType,
    /// Outer source address (the balancer's tunnel address).
    pub src: IpAddr,
    /// Outer destination address (the real server). Its family is the outer family.
    pub dst: IpAddr,
    /// GUE outer UDP source port, chosen by the caller from the flow hash so that ECMP and
    /// RSS on the path spread flows (ignored for IPIP).
    pub udp_sport: u16,
    /// When set, an Ethernet header `(dst MAC, src MAC)` is written in front of the outer IP
    /// header and the output is an Ethernet frame; otherwise it is a bare IP packet.
    pub eth: Option<([u8; 6], [u8; 6])>,
}

/// TUN: encapsulates the IP packet of the frame `buf[start..start + len]` (parsed as `pkt`)
/// and returns the output's `(start, len)` within `buf`.
///
/// The inner IP packet `buf[start + pkt.l3 .. start + pkt.ip_end]` stays where it is; the
/// headers (optional Ethernet, outer IPv4/IPv6, for GUE UDP + 4-byte GUE) are written in the
/// bytes just before it, over the old link header and into the headroom. Trailing Ethernet
/// padding is dropped; VLAN tags of the input are not carried over (the outer frame is for
/// the output interface).
pub fn encapsulate(
    buf: &mut [u8],
    start: usize,
    len: usize,
    pkt: &Packet,
    encap: &Encap,
) -> Result<(usize, usize), ForwardError> {
    let outer = Family::of(&encap.dst);
    if Family::of(&encap.src) != outer {
        return Err(ForwardError::FamilyMismatch);
    }
    let (l3, ip_end) = (usize::from(pkt.l3), usize::from(pkt.ip_end));
    let frame_end = start.checked_add(len).ok_or(ForwardError::Mismatch)?;
    if frame_end > buf.len() || ip_end > len || l3 >= ip_end {
        return Err(ForwardError::Mismatch);
    }
    let (inner_start, inner_end) = (start + l3, start + ip_end);
    let inner_len = ip_end - l3;
    let inner = Inner::read(
        buf.get(inner_start..inner_end).ok_or(ForwardError::Mismatch)?,
        pkt.family,
    )?;

    let ip_hlen = match outer {
        Family::V4 => ipv4::HEADER_LEN,
        Family::V6 => ipv6::HEADER_LEN,
    };
    let udp_len = match encap.kind {
        TunnelType::Ipip => 0,
        TunnelType::Gue { .. } => udp::HEADER_LEN + gue::HEADER_LEN,
    };
    let eth_len = if encap.eth.is_some() {
        ethernet::HEADER_LEN
    } else {
        0
    };
    // IPv4 total length and IPv6 payload length are both 16 bits.
    let ip_len_field = match outer {
        Family::V4 => ip_hlen + udp_len + inner_len,
        Family::V6 => udp_len + inner_len,
    };
    let ip_len_field = u16::try_from(ip_len_field).map_err(|_| ForwardError::TooBig)?;
    let new_start = inner_start
        .checked_sub(eth_len + ip_hlen + udp_len)
        .ok_or(ForwardError::NoHeadroom)?;

    // Validation done; all writes below are within buf[new_start..inner_start].
    let mismatch = ForwardError::Mismatch;
    let mut at = new_start;
    if let Some((dst_mac, src_mac)) = encap.eth {
        let h: &mut [u8; ethernet::HEADER_LEN] = chunk_mut(buf, at).ok_or(mismatch)?;
        *chunk_mut::<6>(h, ethernet::DST).ok_or(mismatch)? = dst_mac;
        *chunk_mut::<6>(h, ethernet::SRC).ok_or(mismatch)? = src_mac;
        let ty = match outer {
            Family::V4 => ethernet::TYPE_IPV4,
            Family::V6 => ethernet::TYPE_IPV6,
        };
        field::set_be16(h, ethernet::ETHERTYPE, ty).ok_or(mismatch)?;
        at += ethernet::HEADER_LEN;
    }

    let inner_proto = match pkt.family {
        Family::V4 => proto::IPIP,
        Family::V6 => proto::IPV6,
    };
    let next = if udp_len == 0 { inner_proto } else { proto::UDP };
    match (encap.src, encap.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let h: &mut [u8; ipv4::HEADER_LEN] = chunk_mut(buf, at).ok_or(mismatch)?;
            let ident = if inner.df { 0 } else { inner.ident };
            *h = [0; ipv4::HEADER_LEN];
            h[ipv4::VER_IHL] = 0x45;
            h[ipv4::TOS] = inner.dsfield;
            field::set_be16(h, ipv4::TOTAL_LEN, ip_len_field).ok_or(mismatch)?;
            field::set_be16(h, ipv4::IDENT, ident).ok_or(mismatch)?;
            field::set_be16(h, ipv4::FLAGS_FRAG, if inner.df { ipv4::FLAG_DF } else { 0 }).ok_or(mismatch)?;
            h[ipv4::TTL] = inner.ttl;
            h[ipv4::PROTO] = next;
            *chunk_mut::<4>(h, ipv4::SRC).ok_or(mismatch)? = s.octets();
            *chunk_mut::<4>(h, ipv4::DST).ok_or(mismatch)? = d.octets();
            let c = checksum::checksum(h);
            field::set_be16(h, ipv4::CHECKSUM, c).ok_or(mismatch)?;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h: &mut [u8; ipv6::HEADER_LEN] = chunk_mut(buf, at).ok_or(mismatch)?;
            let vtf = (6u32 << 28) | (u32::from(inner.dsfield) << 20);
            *chunk_mut::<4>(h, ipv6::VER_TC_FLOW).ok_or(mismatch)? = vtf.to_be_bytes();
            field::set_be16(h, ipv6::PAYLOAD_LEN, ip_len_field).ok_or(mismatch)?;
            h[ipv6::NEXT_HEADER] = next;
            h[ipv6::HOP_LIMIT] = inner.ttl;
            *chunk_mut::<16>(h, ipv6::SRC).ok_or(mismatch)? = s.octets();
            *chunk_mut::<16>(h, ipv6::DST).ok_or(mismatch)? = d.octets();
        }
        // Checked at the top: source and destination are of one family.
        _ => return Err(ForwardError::FamilyMismatch),
    }
    at += ip_hlen;

    if let TunnelType::Gue { port } = encap.kind {
        let seg_len = u16::try_from(udp_len + inner_len).map_err(|_| ForwardError::TooBig)?;
        let h: &mut [u8; udp::HEADER_LEN + gue::HEADER_LEN] = chunk_mut(buf, at).ok_or(mismatch)?;
        field::set_be16(h, udp::SRC_PORT, encap.udp_sport).ok_or(mismatch)?;
        field::set_be16(h, udp::DST_PORT, port).ok_or(mismatch)?;
        field::set_be16(h, udp::LENGTH, seg_len).ok_or(mismatch)?;
        field::set_be16(h, udp::CHECKSUM, 0).ok_or(mismatch)?;
        // GUE variant 0: version 0, C = 0, hlen = 0; proto/ctype; no flags.
        *chunk_mut::<4>(h, udp::HEADER_LEN).ok_or(mismatch)? = [0, inner_proto, 0, 0];
        if let (IpAddr::V6(s), IpAddr::V6(d)) = (encap.src, encap.dst) {
            let seg = buf.get(at..inner_end).ok_or(mismatch)?;
            let sum = u64::from(checksum::pseudo_header_v6(
                &s.octets(),
                &d.octets(),
                proto::UDP,
                seg_len.into(),
            )) + u64::from(checksum::sum(seg));
            let c = match checksum::finish(sum) {
                0 => 0xffff,
                c => c,
            };
            field::set_be16(buf, at + udp::CHECKSUM, c).ok_or(mismatch)?;
        }
    }
    Ok((new_start, inner_end - new_start))
}

/// What the outer header copies from the inner one.
struct Inner {
    dsfield: u8,
    ttl: u8,
    df: bool,
    ident: u16,
}

impl Inner {
    fn read(ip: &[u8], family: Family) -> Result<Inner, ForwardError> {
        let mismatch = ForwardError::Mismatch;
        match family {
            Family::V4 => {
                let h: &[u8; ipv4::HEADER_LEN] = chunk(ip, 0).ok_or(mismatch)?;
                if h[ipv4::VER_IHL] >> 4 != 4 {
                    return Err(mismatch);
                }
                let ff = field::be16(h, ipv4::FLAGS_FRAG).ok_or(mismatch)?;
                Ok(Inner {
                    dsfield: ecn_encapsulate(h[ipv4::TOS]),
                    ttl: h[ipv4::TTL],
                    df: ff & ipv4::FLAG_DF != 0,
                    ident: field::be16(h, ipv4::IDENT).ok_or(mismatch)?,
                })
            }
            Family::V6 => {
                let h: &[u8; ipv6::HEADER_LEN] = chunk(ip, 0).ok_or(mismatch)?;
                if h[ipv6::VER_TC_FLOW] >> 4 != 6 {
                    return Err(mismatch);
                }
                let tc = (h[0] << 4) | (h[1] >> 4);
                let after = ip.get(ipv6::HEADER_LEN..).unwrap_or(&[]);
                let mix = after.get(..20).unwrap_or(after);
                Ok(Inner {
                    dsfield: ecn_encapsulate(tc),
                    ttl: h[ipv6::HOP_LIMIT],
                    df: false,
                    ident: checksum::fold(u64::from(checksum::sum(mix))),
                })
            }
        }
    }
}

/// The outer TOS / traffic class for an inner one (`INET_ECN_encapsulate(x, x)`): DSCP and
/// ECN copied, except that CE (0b11) becomes ECT(0) (0b10).
const fn ecn_encapsulate(inner: u8) -> u8 {
    let ecn = inner & 0b11;
    (inner & !0b11) | if ecn == 0b11 { 0b10 } else { ecn }
}
