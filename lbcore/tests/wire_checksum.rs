//! Differential checksum tests for `lbcore::forward`: thousands of random TCP/UDP packets
//! and ICMP errors (IPv4 and IPv6, Ethernet with 0-2 VLAN tags or bare IP, IPv4 options /
//! IPv6 extension headers, payloads of 0..1400 bytes) are built with etherparse, rewritten by
//! lbcore (NAT source, destination, FULLNAT, DR MACs, IPIP / IPv6-in-IPv6 / GUE
//! encapsulation, ICMP-error translation), and then every IPv4 header, TCP, UDP, ICMP and
//! ICMPv6 checksum is compared with etherparse's full recomputation, and etherparse's decoding
//! of the result with the expected addresses, ports and header fields.

#[path = "wire_gen.rs"]
mod wire_gen;

use std::net::IpAddr;

use etherparse::{
    Icmpv4Header, Icmpv6Header, Ipv4HeaderSlice, LaxNetSlice, LaxSlicedPacket, NetSlice, TransportSlice,
};
use lbcore::forward::{self, Encap, Endpoint, ForwardError};
use lbcore::service::{Family, TunnelType};
use lbcore::wire::{self, HEADROOM, LinkKind, Packet};
use wire_gen::*;

const CASES: usize = 2500;

/// What etherparse sees in a frame.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
    sport: u16,
    dport: u16,
}

/// Decodes `frame` with etherparse, asserts that the IPv4 header checksum and the TCP / UDP /
/// ICMP / ICMPv6 checksum equal etherparse's full recomputation, and returns what it saw.
fn check(frame: &[u8], link: LinkKind, ctx: &str) -> Seen {
    let sp = sliced(frame, link);
    let (src, dst, proto, ttl) = match sp.net.as_ref().expect("an IP packet") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            assert_eq!(
                h.header_checksum(),
                h.to_header().calc_header_checksum(),
                "{ctx}: IPv4 header checksum"
            );
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                ip.payload_ip_number().0,
                h.ttl(),
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                ip.payload().ip_number.0,
                h.hop_limit(),
            )
        }
        NetSlice::Arp(_) => panic!("{ctx}: ARP"),
    };
    let (mut sport, mut dport) = (0, 0);
    match sp.transport {
        Some(TransportSlice::Tcp(t)) => {
            let c = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => t.calc_checksum_ipv4(s.octets(), d.octets()),
                (IpAddr::V6(s), IpAddr::V6(d)) => t.calc_checksum_ipv6(s.octets(), d.octets()),
                _ => unreachable!(),
            }
            .unwrap();
            assert_eq!(t.checksum(), c, "{ctx}: TCP checksum");
            (sport, dport) = (t.source_port(), t.destination_port());
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            match (src, dst) {
                // Zero means "no checksum" over IPv4 and must stay so.
                (IpAddr::V4(_), _) if u.checksum() == 0 => {}
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    let c = h
                        .calc_checksum_ipv4_raw(s.octets(), d.octets(), u.payload())
                        .unwrap();
                    assert_eq!(u.checksum(), c, "{ctx}: UDP checksum");
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    let c = h
                        .calc_checksum_ipv6_raw(s.octets(), d.octets(), u.payload())
                        .unwrap();
                    assert_eq!(u.checksum(), c, "{ctx}: UDP checksum");
                }
                _ => unreachable!(),
            }
            (sport, dport) = (u.source_port(), u.destination_port());
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let c = Icmpv4Header::with_checksum(i.icmp_type(), i.payload()).checksum;
            assert_eq!(i.checksum(), c, "{ctx}: ICMP checksum");
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let (s, d) = (v6(src), v6(dst));
            assert!(i.is_checksum_valid(s, d), "{ctx}: ICMPv6 checksum");
            let c = Icmpv6Header::with_checksum(i.icmp_type(), s, d, i.payload())
                .unwrap()
                .checksum;
            assert_eq!(i.checksum(), c, "{ctx}: ICMPv6 checksum");
        }
        _ => {}
    }
    Seen {
        src,
        dst,
        proto,
        ttl,
        sport,
        dport,
    }
}

fn ep(addr: IpAddr, port: u16) -> Endpoint {
    Endpoint { addr, port }
}

/// The kinds of frames the transport tests iterate over.
fn kinds() -> impl Iterator<Item = (Family, L4, bool)> {
    [Family::V4, Family::V6].into_iter().flat_map(|f| {
        [L4::Tcp, L4::Udp]
            .into_iter()
            .flat_map(move |l| [true, false].into_iter().map(move |e| (f, l, e)))
    })
}

#[test]
fn nat_and_fullnat_rewrites_match_full_recompute() {
    let mut rng = Rng::new(0x5eed_0001);
    for (family, l4, eth) in kinds() {
        for case in 0..CASES / 4 {
            let spec = Spec::random(&mut rng, family, l4, eth);
            let mut frame = spec.build();
            let zero_udp = family == Family::V4 && l4 == L4::Udp && rng.chance(5);
            if zero_udp {
                // A UDP/IPv4 datagram sent without checksum.
                let p = wire::parse(&frame, spec.link()).unwrap();
                let at = usize::from(p.l4) + 6;
                frame[at..at + 2].copy_from_slice(&[0, 0]);
            }
            let ctx = format!("{family:?} {l4:?} eth={eth} case {case}");
            let before = check(&frame, spec.link(), &ctx);
            let mut pkt = wire::parse(&frame, spec.link()).unwrap();

            let new_src = ep(rng.addr(family), rng.u16());
            let new_dst = ep(rng.addr(family), rng.u16());
            let (src, dst) = match rng.below(3) {
                0 => (Some(new_src), None),
                1 => (None, Some(new_dst)),
                _ => (Some(new_src), Some(new_dst)),
            };
            forward::rewrite(&mut frame, &mut pkt, src, dst).unwrap();

            let after = check(&frame, spec.link(), &ctx);
            let want_src = src.unwrap_or(ep(before.src, before.sport));
            let want_dst = dst.unwrap_or(ep(before.dst, before.dport));
            assert_eq!(
                after,
                Seen {
                    src: want_src.addr,
                    dst: want_dst.addr,
                    sport: want_src.port,
                    dport: want_dst.port,
                    ..before
                },
                "{ctx}"
            );
            if zero_udp {
                let at = usize::from(pkt.l4) + 6;
                assert_eq!(&frame[at..at + 2], &[0, 0], "{ctx}: zero UDP checksum kept");
            }
            // The Packet was kept in step with the bytes.
            assert_eq!(wire::parse(&frame, spec.link()).unwrap(), pkt, "{ctx}");
            // The payload is untouched.
            let p = usize::from(pkt.payload);
            assert_eq!(&frame[p..p + spec.payload.len()], &spec.payload[..], "{ctx}");
        }
    }
}

#[test]
fn set_macs_changes_only_the_macs() {
    let mut rng = Rng::new(0x5eed_0002);
    for case in 0..CASES / 2 {
        let (family, l4) = (rng.family(), if rng.chance(2) { L4::Tcp } else { L4::Udp });
        let spec = Spec::random(&mut rng, family, l4, true);
        let mut frame = spec.build();
        let orig = frame.clone();
        let pkt = wire::parse(&frame, LinkKind::Ethernet).unwrap();
        let (dmac, smac) = (rng.bytes(6).try_into().unwrap(), rng.bytes(6).try_into().unwrap());
        forward::set_macs(&mut frame, &pkt, dmac, smac).unwrap();
        let ctx = format!("case {case}");
        assert_eq!(
            check(&frame, LinkKind::Ethernet, &ctx),
            check(&orig, LinkKind::Ethernet, &ctx)
        );
        let sp = sliced(&frame, LinkKind::Ethernet);
        let eth = sp.link.unwrap().to_header().unwrap();
        let eth = match eth {
            etherparse::LinkHeader::Ethernet2(e) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!((eth.destination, eth.source), (dmac, smac));
        assert_eq!(&frame[12..], &orig[12..]);
        assert_eq!(wire::parse(&frame, LinkKind::Ethernet).unwrap(), pkt);
    }
}

#[test]
fn encapsulation_matches_full_recompute() {
    let mut rng = Rng::new(0x5eed_0003);
    for case in 0..CASES {
        let inner_family = rng.family();
        let l4 = if rng.chance(2) { L4::Tcp } else { L4::Udp };
        let eth_in = rng.chance(2);
        let spec = Spec::random(&mut rng, inner_family, l4, eth_in);
        let frame = spec.build();
        let pkt = wire::parse(&frame, spec.link()).unwrap();
        let inner_ip = frame[usize::from(pkt.l3)..usize::from(pkt.ip_end)].to_vec();

        // IPIP / IPv6-in-IPv6 mostly, cross-family sometimes; GUE over both.
        let outer = if rng.chance(4) { rng.family() } else { inner_family };
        let kind = if rng.chance(2) {
            TunnelType::Ipip
        } else {
            TunnelType::Gue { port: rng.u16() }
        };
        let eth = if rng.chance(2) {
            Some((rng.bytes(6).try_into().unwrap(), rng.bytes(6).try_into().unwrap()))
        } else {
            None
        };
        let encap = Encap {
            kind,
            src: rng.addr(outer),
            dst: rng.addr(outer),
            udp_sport: rng.u16(),
            eth,
        };
        let mut buf = vec![0u8; HEADROOM + frame.len()];
        buf[HEADROOM..].copy_from_slice(&frame);
        let (start, len) = forward::encapsulate(&mut buf, HEADROOM, frame.len(), &pkt, &encap).unwrap();
        let out = &buf[start..start + len];
        let link = if eth.is_some() {
            LinkKind::Ethernet
        } else {
            LinkKind::Ip
        };
        let ctx = format!(
            "case {case}: {inner_family:?} in {outer:?} {kind:?} eth={}",
            eth.is_some()
        );

        let seen = check(out, link, &ctx);
        let inner_proto = match inner_family {
            Family::V4 => 4,
            Family::V6 => 41,
        };
        let want_proto = match kind {
            TunnelType::Ipip => inner_proto,
            TunnelType::Gue { .. } => 17,
        };
        assert_eq!(
            (seen.src, seen.dst, seen.proto, seen.ttl),
            (encap.src, encap.dst, want_proto, spec.ttl),
            "{ctx}"
        );

        let sp = sliced(out, link);
        if let Some((dmac, smac)) = eth {
            assert_eq!(&out[..12], [dmac, smac].concat(), "{ctx}");
        }
        // Outer TOS / traffic class: DSCP and ECN copied, CE turned into ECT(0).
        let want_tos = if spec.tos & 3 == 3 {
            spec.tos & !1
        } else {
            spec.tos
        };
        let payload = match sp.net.as_ref().unwrap() {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!((h.dcp().value() << 2) | h.ecn().value(), want_tos, "{ctx}: TOS");
                let df = inner_family == Family::V4 && spec.df;
                assert_eq!(h.dont_fragment(), df, "{ctx}: DF");
                assert!(!h.more_fragments() && h.fragments_offset().value() == 0, "{ctx}");
                if df {
                    assert_eq!(h.identification(), 0, "{ctx}: id of a DF packet");
                } else if inner_family == Family::V4 {
                    assert_eq!(h.identification(), spec.ident, "{ctx}: id copied");
                }
                ip.payload().payload
            }
            NetSlice::Ipv6(ip) => {
                let h = ip.header();
                assert_eq!(h.traffic_class(), want_tos, "{ctx}: traffic class");
                assert_eq!(h.flow_label().value(), 0, "{ctx}: flow label");
                assert_eq!(h.next_header().0, want_proto, "{ctx}");
                ip.payload().payload
            }
            NetSlice::Arp(_) => unreachable!(),
        };
        let inner = match kind {
            TunnelType::Ipip => payload,
            TunnelType::Gue { port } => {
                let Some(TransportSlice::Udp(u)) = sp.transport else {
                    panic!("{ctx}: no UDP")
                };
                assert_eq!(
                    (u.source_port(), u.destination_port()),
                    (encap.udp_sport, port),
                    "{ctx}"
                );
                assert_eq!(usize::from(u.length()), 8 + 4 + inner_ip.len(), "{ctx}");
                if outer == Family::V4 {
                    assert_eq!(u.checksum(), 0, "{ctx}: IPv4 GUE without checksum (NOCSUM)");
                } else {
                    assert_ne!(u.checksum(), 0, "{ctx}: IPv6 needs a UDP checksum");
                }
                let gue = u.payload();
                assert_eq!(&gue[..4], &[0, inner_proto, 0, 0], "{ctx}: GUE header");
                &gue[4..]
            }
        };
        assert_eq!(inner, &inner_ip[..], "{ctx}: inner packet untouched");
        // The inner packet still checks out on its own.
        assert_eq!(
            check(inner, LinkKind::Ip, &ctx),
            check(&inner_ip, LinkKind::Ip, &ctx)
        );
        // lbcore reads the output back.
        let outp = wire::parse(out, link).unwrap();
        assert_eq!(
            (outp.src, outp.dst, outp.proto),
            (encap.src, encap.dst, want_proto),
            "{ctx}"
        );
    }
}

#[test]
fn encapsulation_without_headroom_is_refused() {
    let mut rng = Rng::new(0x5eed_0004);
    for _ in 0..200 {
        let inner_family = rng.family();
        let spec = Spec::random(&mut rng, inner_family, L4::Tcp, false);
        let frame = spec.build();
        let pkt = wire::parse(&frame, LinkKind::Ip).unwrap();
        let family = rng.family();
        let kind = if rng.chance(2) {
            TunnelType::Ipip
        } else {
            TunnelType::Gue { port: 6080 }
        };
        let encap = Encap {
            kind,
            src: rng.addr(family),
            dst: rng.addr(family),
            udp_sport: 1,
            eth: None,
        };
        let need = match family {
            Family::V4 => 20,
            Family::V6 => 40,
        } + if kind == TunnelType::Ipip { 0 } else { 12 };
        let mut buf = vec![0u8; need - 1 + frame.len()];
        buf[need - 1..].copy_from_slice(&frame);
        let copy = buf.clone();
        assert_eq!(
            forward::encapsulate(&mut buf, need - 1, frame.len(), &pkt, &encap),
            Err(ForwardError::NoHeadroom)
        );
        assert_eq!(buf, copy);
    }
}

/// What etherparse sees in an ICMP error's quote: addresses, ports (when 4 transport bytes are
/// there) and, checked on the way, the quoted IPv4 header checksum.
fn check_quote(quote: &[u8], family: Family, ctx: &str) -> (IpAddr, IpAddr, Option<(u16, u16)>) {
    let lax = LaxSlicedPacket::from_ip(quote).expect("etherparse reads the quote");
    let (src, dst, transport) = match lax.net.expect("quoted IP") {
        LaxNetSlice::Ipv4(ip) => {
            assert_eq!(family, Family::V4);
            let h = ip.header();
            let full = Ipv4HeaderSlice::from_slice(h.slice()).unwrap();
            assert_eq!(
                full.header_checksum(),
                full.to_header().calc_header_checksum(),
                "{ctx}: quoted IPv4 header"
            );
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                ip.payload().payload,
            )
        }
        LaxNetSlice::Ipv6(ip) => {
            assert_eq!(family, Family::V6);
            let h = ip.header();
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                ip.payload().payload,
            )
        }
        LaxNetSlice::Arp(_) => unreachable!(),
    };
    let ports = (transport.len() >= 4).then(|| {
        (
            u16::from_be_bytes([transport[0], transport[1]]),
            u16::from_be_bytes([transport[2], transport[3]]),
        )
    });
    (src, dst, ports)
}

#[test]
fn icmp_error_translation_matches_full_recompute() {
    let mut rng = Rng::new(0x5eed_0005);
    for case in 0..CASES {
        let family = rng.family();
        let l4 = if rng.chance(2) { L4::Tcp } else { L4::Udp };
        let eth = rng.chance(2);
        let e = icmp_error(&mut rng, family, l4, eth);
        let ctx = format!(
            "case {case}: {family:?} {l4:?} type {} quote {}/{}",
            e.typ,
            e.quote_len,
            e.original_bytes.len()
        );
        let mut frame = e.frame.clone();
        let outer_before = check(&frame, e.link, &ctx);
        let mut pkt: Packet = wire::parse(&frame, e.link).unwrap();
        let q = pkt.icmp.unwrap().error.unwrap();
        let quote_at = usize::from(q.l3);
        let (qsrc, qdst, qports) = check_quote(&frame[quote_at..], family, &ctx);
        assert_eq!((qsrc, qdst), (e.original.src, e.original.dst), "{ctx}");

        // As the balancer uses it: NAT (outer destination + quoted source), FULLNAT (both
        // ends), or the reverse direction; any combination must keep every checksum right.
        let pick = |rng: &mut Rng| {
            if rng.chance(2) {
                Some(rng.addr(family))
            } else {
                None
            }
        };
        let outer_src = pick(&mut rng);
        let outer_dst = pick(&mut rng);
        let inner_src = pick(&mut rng).map(|a| ep(a, rng.u16()));
        let inner_dst = pick(&mut rng).map(|a| ep(a, rng.u16()));
        forward::rewrite_icmp_error(&mut frame, &mut pkt, outer_src, outer_dst, inner_src, inner_dst)
            .unwrap();

        let outer = check(&frame, e.link, &ctx);
        assert_eq!(
            outer,
            Seen {
                src: outer_src.unwrap_or(outer_before.src),
                dst: outer_dst.unwrap_or(outer_before.dst),
                ..outer_before
            },
            "{ctx}"
        );
        let (nsrc, ndst, nports) = check_quote(&frame[quote_at..], family, &ctx);
        assert_eq!(nsrc, inner_src.map_or(qsrc, |x| x.addr), "{ctx}");
        assert_eq!(ndst, inner_dst.map_or(qdst, |x| x.addr), "{ctx}");
        let want_ports =
            qports.map(|(s, d)| (inner_src.map_or(s, |x| x.port), inner_dst.map_or(d, |x| x.port)));
        assert_eq!(nports, want_ports, "{ctx}");
        if e.quote_complete() {
            // The whole quoted packet is there: its own TCP/UDP checksum must be right too.
            let quoted = check(&frame[quote_at..], LinkKind::Ip, &ctx);
            assert_eq!((quoted.src, quoted.dst), (nsrc, ndst), "{ctx}");
        }
        assert_eq!(
            wire::parse(&frame, e.link).unwrap(),
            pkt,
            "{ctx}: Packet kept in step"
        );
    }
}
