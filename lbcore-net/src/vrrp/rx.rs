//! Turning what a raw socket delivered into the core's input: the bytes and their [`Rx`].
//!
//! - IPv4 raw sockets deliver the whole IP packet, header included: [`Rx::Ip`], and the core
//!   reads the TTL, source and destination from the header.
//! - IPv6 raw sockets deliver only the VRRP message: the source comes from `recvmsg`'s address,
//!   the destination from the `IPV6_PKTINFO` control message and the hop limit from
//!   `IPV6_HOPLIMIT` ([`parse_cmsgs`], [`ipv6_rx`]).
//!
//! All of it is safe code over byte slices that never panics, whatever the kernel (or a test)
//! hands it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use lbcore::vrrp::Rx;

/// What the IPv6 control messages said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cmsgs {
    /// `IPV6_HOPLIMIT`.
    pub hop_limit: Option<u8>,
    /// `IPV6_PKTINFO`: the destination address.
    pub dst: Option<Ipv6Addr>,
    /// `IPV6_PKTINFO`: the receiving interface.
    pub ifindex: Option<u32>,
}

/// Size of `struct cmsghdr` on Linux: `size_t cmsg_len; int cmsg_level; int cmsg_type`.
const CMSG_HDR: usize = size_of::<usize>() + 8;

fn align(n: usize) -> usize {
    let a = size_of::<usize>();
    n.div_ceil(a) * a
}

fn ne_usize(b: &[u8]) -> Option<usize> {
    Some(usize::from_ne_bytes(
        b.get(..size_of::<usize>())?.try_into().ok()?,
    ))
}

fn ne_i32(b: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// Walk the control messages `recvmsg` wrote (the `control_len` first bytes of the control
/// buffer) as `CMSG_FIRSTHDR` / `CMSG_NXTHDR` do, picking out the IPv6 hop limit and packet
/// info. Unknown messages are skipped; a malformed one ends the walk.
pub fn parse_cmsgs(control: &[u8]) -> Cmsgs {
    let mut out = Cmsgs::default();
    let mut off = 0usize;
    while let Some(hdr) = control.get(off..off.saturating_add(CMSG_HDR)) {
        let (Some(len), Some(level), Some(kind)) = (
            ne_usize(hdr),
            ne_i32(&hdr[size_of::<usize>()..]),
            ne_i32(&hdr[size_of::<usize>() + 4..]),
        ) else {
            break;
        };
        if len < CMSG_HDR {
            break;
        }
        let Some(data) = control.get(off + align(CMSG_HDR)..off.saturating_add(len)) else {
            break;
        };
        if level == libc::IPPROTO_IPV6 {
            match kind {
                libc::IPV6_HOPLIMIT => {
                    out.hop_limit = ne_i32(data).and_then(|h| u8::try_from(h).ok());
                }
                libc::IPV6_PKTINFO => {
                    if let Some(a) = data.get(..16).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                        out.dst = Some(Ipv6Addr::from(a));
                        out.ifindex = data
                            .get(16..20)
                            .and_then(|i| <[u8; 4]>::try_from(i).ok())
                            .map(u32::from_ne_bytes);
                    }
                }
                _ => {}
            }
        }
        off = off.saturating_add(align(len));
    }
    out
}

/// The core's [`Rx`] for a message from an IPv6 raw socket, or `None` when the kernel did not
/// report the addresses (the packet cannot be validated and is dropped).
pub fn ipv6_rx(src: Option<SocketAddr>, cmsgs: &Cmsgs) -> Option<Rx> {
    let src = match src? {
        SocketAddr::V6(s) => IpAddr::V6(*s.ip()),
        SocketAddr::V4(_) => return None,
    };
    Some(Rx::Payload {
        src,
        dst: IpAddr::V6(cmsgs.dst?),
        hop_limit: cmsgs.hop_limit,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddrV6;

    use lbcore::Instant;
    use lbcore::service::Family;
    use lbcore::vrrp::{Config, Router, State, Version, wire};

    use super::*;

    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let len = CMSG_HDR + data.len();
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align(len), 0);
        v
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s.trim()[i..i + 2], 16).unwrap())
            .collect()
    }

    const V6_ADVERT: &str = include_str!("../../../lbcore/tests/data/vrrp/vrrp_v3_ipv6_keepalived.hex");
    const V4_ADVERT: &str = include_str!("../../../lbcore/tests/data/vrrp/vrrp_v3_keepalived.hex");

    fn pktinfo(dst: Ipv6Addr, ifindex: u32) -> Vec<u8> {
        let mut d = dst.octets().to_vec();
        d.extend_from_slice(&ifindex.to_ne_bytes());
        cmsg(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &d)
    }

    #[test]
    fn hop_limit_and_pktinfo_are_read_in_any_order_and_others_skipped() {
        let group: Ipv6Addr = "ff02::12".parse().unwrap();
        let mut control = cmsg(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[1; 16]);
        control.extend(pktinfo(group, 9));
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        let c = parse_cmsgs(&control);
        assert_eq!(
            c,
            Cmsgs {
                hop_limit: Some(255),
                dst: Some(group),
                ifindex: Some(9)
            }
        );
    }

    #[test]
    fn malformed_control_bytes_never_panic() {
        let good = {
            let mut v = pktinfo("ff02::12".parse().unwrap(), 3);
            v.extend(cmsg(
                libc::IPPROTO_IPV6,
                libc::IPV6_HOPLIMIT,
                &64i32.to_ne_bytes(),
            ));
            v
        };
        for cut in 0..good.len() {
            let _ = parse_cmsgs(&good[..cut]);
        }
        // A length shorter than the header, a length past the end, a huge length.
        for len in [0usize, 3, 1000, usize::MAX] {
            let mut v = good.clone();
            v[..size_of::<usize>()].copy_from_slice(&len.to_ne_bytes());
            let _ = parse_cmsgs(&v);
        }
        assert_eq!(parse_cmsgs(&[]), Cmsgs::default());
        // A hop limit that does not fit a byte is not reported.
        let c = parse_cmsgs(&cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &300i32.to_ne_bytes(),
        ));
        assert_eq!(c.hop_limit, None);
    }

    #[test]
    fn an_ipv6_message_with_its_cmsgs_is_a_valid_advert_for_the_core() {
        // The keepalived capture, as an IPv6 raw socket would deliver it: the VRRP message
        // alone, the addresses and hop limit beside it.
        let frame = hex(V6_ADVERT);
        let message = &frame[14 + 40..];
        let src: Ipv6Addr = "fe80::aff:fec9:b".parse().unwrap();
        let mut control = pktinfo("ff02::12".parse().unwrap(), 2);
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &255i32.to_ne_bytes(),
        ));
        let rx = ipv6_rx(
            Some(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 2))),
            &parse_cmsgs(&control),
        )
        .unwrap();
        assert_eq!(wire::peek_vrid(message, rx), Some((Family::V6, 52)));

        // A backup with priority 99 hears it and stays backup (its timer restarts).
        let me: IpAddr = "fe80::aff:fec9:c".parse().unwrap();
        let cfg = Config::new(Version::V3, 52, me)
            .priority(99)
            .vip("fd00:201::100".parse().unwrap(), 64);
        let mut r = Router::new(cfg).unwrap();
        r.start(Instant::ZERO);
        r.handle_packet(Instant::from_secs(1), message, rx);
        assert_eq!(r.counters().adverts_received, 1, "{:?}", r.counters());
        assert_eq!(r.state(), State::Backup);

        // Hop limit 64: refused (RFC 5798 §7.1), counted.
        let mut control = pktinfo("ff02::12".parse().unwrap(), 2);
        control.extend(cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_HOPLIMIT,
            &64i32.to_ne_bytes(),
        ));
        let rx = ipv6_rx(
            Some(SocketAddr::V6(SocketAddrV6::new(src, 0, 0, 2))),
            &parse_cmsgs(&control),
        )
        .unwrap();
        r.handle_packet(Instant::from_secs(2), message, rx);
        assert_eq!(r.counters().adverts_received, 1);
    }

    #[test]
    fn ipv6_without_addresses_is_dropped() {
        assert_eq!(ipv6_rx(None, &Cmsgs::default()), None);
        let src = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0));
        assert_eq!(ipv6_rx(Some(src), &Cmsgs::default()), None);
        assert_eq!(
            ipv6_rx(Some("10.0.0.1:0".parse().unwrap()), &Cmsgs::default()),
            None
        );
    }

    #[test]
    fn an_ipv4_raw_socket_packet_is_the_ip_packet() {
        let frame = hex(V4_ADVERT);
        let ip = &frame[14..];
        assert_eq!(wire::peek_vrid(ip, Rx::Ip), Some((Family::V4, 51)));
        // Truncated reads never panic and are refused.
        for cut in 0..ip.len() {
            let _ = wire::peek_vrid(&ip[..cut], Rx::Ip);
        }
    }
}
