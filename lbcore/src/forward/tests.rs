//! Unit tests of the rewriters on literal frames, against bytes computed independently (see
//! `wire/testdata.rs`). The randomized differential tests against etherparse live in
//! `tests/wire_checksum.rs`.

use core::net::IpAddr;

use super::*;
use crate::service::TunnelType;
use crate::wire::checksum;
use crate::wire::testdata::*;
use crate::wire::{HEADROOM, parse};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ep(s: &str, port: u16) -> Endpoint {
    Endpoint { addr: ip(s), port }
}

#[test]
fn set_macs_rewrites_only_the_macs() {
    let mut f = hex(QINQ_V6_TCP);
    let p = parse(&f, LinkKind::Ethernet).unwrap();
    let before = f.clone();
    set_macs(&mut f, &p, [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]).unwrap();
    assert_eq!(&f[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(&f[12..], &before[12..]);
    assert_eq!(parse(&f, LinkKind::Ethernet).unwrap(), p);

    let mut bare = hex(V4_ICMP_ECHO);
    let p = parse(&bare, LinkKind::Ip).unwrap();
    assert_eq!(
        set_macs(&mut bare, &p, [0; 6], [0; 6]),
        Err(ForwardError::NeedsEthernet)
    );
}

#[test]
fn rewrite_dnat_matches_expected_bytes() {
    let mut f = hex(ETH_V4_TCP_SYN);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    rewrite(&mut f, &mut p, None, Some(ep("10.1.1.2", 8080))).unwrap();
    assert_eq!(f, hex(EXP_DNAT));
    assert_eq!(parse(&f, LinkKind::Ethernet).unwrap(), p);
    assert_eq!((p.dst, p.dport, p.ttl), (ip("10.1.1.2"), 8080, 64));
    // And back (the reply's SNAT in the other direction restores the original).
    rewrite(&mut f, &mut p, None, Some(ep("192.0.2.10", 80))).unwrap();
    assert_eq!(f, hex(ETH_V4_TCP_SYN));
}

#[test]
fn rewrite_fullnat_matches_expected_bytes() {
    let mut f = hex(ETH_V4_TCP_SYN);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    rewrite(
        &mut f,
        &mut p,
        Some(ep("10.9.9.9", 61000)),
        Some(ep("10.1.1.2", 8080)),
    )
    .unwrap();
    assert_eq!(f, hex(EXP_FULLNAT));
    assert_eq!(parse(&f, LinkKind::Ethernet).unwrap(), p);
}

/// Sum of a TCP/UDP segment with its IPv6 pseudo-header: all ones when the checksum is right.
fn v6_transport_ok(f: &[u8], p: &crate::wire::Packet) -> bool {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
        panic!("not v6")
    };
    let seg = &f[usize::from(p.l4)..usize::from(p.ip_end)];
    let sum = u64::from(checksum::pseudo_header_v6(
        &s.octets(),
        &d.octets(),
        p.proto,
        seg.len() as u32,
    )) + u64::from(checksum::sum(seg));
    checksum::fold(sum) == 0xffff
}

#[test]
fn rewrite_ipv6_keeps_transport_checksum_valid() {
    let mut f = hex(QINQ_V6_TCP);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    assert!(v6_transport_ok(&f, &p));
    rewrite(
        &mut f,
        &mut p,
        Some(ep("fd00::7", 1)),
        Some(ep("fd00::1:2", 65535)),
    )
    .unwrap();
    assert!(v6_transport_ok(&f, &p));
    assert_eq!(parse(&f, LinkKind::Ethernet).unwrap(), p);

    // Extension headers and a first fragment: ports and checksum are in this fragment.
    let mut f = hex(V6_FRAG_FIRST);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    let before = u16::from_be_bytes([f[54], f[55]]);
    rewrite(&mut f, &mut p, None, Some(ep("2001:db8:ffff::10", 5353))).unwrap();
    assert_eq!(
        u16::from_be_bytes([f[54], f[55]]),
        checksum::update16(before, 53, 5353)
    );
}

#[test]
fn rewrite_keeps_a_zero_udp_checksum() {
    let mut f = hex(VLAN_V4_UDP_PADDED);
    f[44..46].copy_from_slice(&[0, 0]);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    rewrite(&mut f, &mut p, Some(ep("10.2.2.2", 9)), Some(ep("10.3.3.3", 10))).unwrap();
    assert_eq!(&f[44..46], &[0, 0]);
    assert_eq!(checksum::checksum(&f[18..38]), 0);
}

#[test]
fn rewrite_refusals_leave_the_packet_alone() {
    let mut f = hex(V4_ICMP_ECHO);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    assert_eq!(
        rewrite(&mut f, &mut p, None, Some(ep("10.1.1.2", 1))),
        Err(ForwardError::NotTransport)
    );

    let mut f = hex(V4_FRAG_SECOND);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    assert_eq!(
        rewrite(&mut f, &mut p, None, Some(ep("10.1.1.2", 1))),
        Err(ForwardError::NonFirstFragment)
    );

    let mut f = hex(ETH_V4_TCP_SYN);
    let orig = f.clone();
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    let p0 = p;
    assert_eq!(
        rewrite(
            &mut f,
            &mut p,
            Some(ep("10.9.9.9", 1)),
            Some(ep("2001:db8::2", 1))
        ),
        Err(ForwardError::FamilyMismatch)
    );
    // A Packet that does not describe the slice.
    let mut short = f[..40].to_vec();
    assert_eq!(
        rewrite(&mut short, &mut p, None, Some(ep("10.1.1.2", 1))),
        Err(ForwardError::Mismatch)
    );
    let mut other = hex(V4_ICMP_ECHO);
    assert_eq!(
        rewrite(&mut other, &mut p, None, Some(ep("10.1.1.2", 1))),
        Err(ForwardError::Mismatch)
    );
    assert_eq!(other, hex(V4_ICMP_ECHO));
    assert_eq!((f, p), (orig, p0));
}

#[test]
fn encapsulate_ipip_matches_expected_bytes() {
    let frame = hex(ETH_V4_TCP_SYN);
    let mut buf = std::vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(&frame);
    let p = parse(&frame, LinkKind::Ethernet).unwrap();
    let encap = Encap {
        kind: TunnelType::Ipip,
        src: ip("192.0.2.1"),
        dst: ip("10.1.1.2"),
        udp_sport: 0,
        eth: None,
    };
    let (s, l) = encapsulate(&mut buf, HEADROOM, frame.len(), &p, &encap).unwrap();
    assert_eq!(buf[s..s + l], hex(EXP_IPIP)[..]);
    assert_eq!(s + l, HEADROOM + frame.len());
}

#[test]
fn encapsulate_gue_over_ipv6_matches_expected_bytes() {
    let frame = hex(QINQ_V6_TCP);
    let mut buf = std::vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(&frame);
    let p = parse(&frame, LinkKind::Ethernet).unwrap();
    let encap = Encap {
        kind: TunnelType::Gue { port: 6080 },
        src: ip("2001:db8:aa::1"),
        dst: ip("2001:db8:bb::2"),
        udp_sport: 50000,
        eth: Some(([2, 0, 0, 0, 0, 0xbb], [2, 0, 0, 0, 0, 0xaa])),
    };
    let (s, l) = encapsulate(&mut buf, HEADROOM, frame.len(), &p, &encap).unwrap();
    assert_eq!(buf[s..s + l], hex(EXP_GUE6)[..]);
}

#[test]
fn encapsulate_copies_tos_ttl_df_as_the_kernel() {
    // Inner IPv4 with DSCP 46 + CE, no DF: outer gets DSCP 46 + ECT(0), no DF, the inner id.
    let mut inner = hex(V4_ICMP_ECHO);
    inner[1] = (46 << 2) | 0b11;
    inner[6] = 0;
    inner[8] = 9;
    inner[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&inner[..20]);
    inner[10..12].copy_from_slice(&c.to_be_bytes());
    let p = parse(&inner, LinkKind::Ip).unwrap();
    let mut buf = std::vec![0u8; 20 + inner.len()];
    buf[20..].copy_from_slice(&inner);
    let encap = Encap {
        kind: TunnelType::Ipip,
        src: ip("192.0.2.1"),
        dst: ip("10.1.1.2"),
        udp_sport: 0,
        eth: None,
    };
    let (s, l) = encapsulate(&mut buf, 20, inner.len(), &p, &encap).unwrap();
    assert_eq!((s, l), (0, 20 + inner.len()));
    let o = &buf[..20];
    assert_eq!(o[1], (46 << 2) | 0b10);
    assert_eq!(&o[4..8], &[0x12, 0x34, 0, 0]);
    assert_eq!((o[8], o[9]), (9, 4));
    assert_eq!(checksum::checksum(o), 0);

    // Inner IPv6 in outer IPv4: protocol 41, DF clear, TTL = hop limit.
    let inner = hex(V6_EXT_TCP);
    let p = parse(&inner, LinkKind::Ip).unwrap();
    let mut buf = std::vec![0u8; 20 + inner.len()];
    buf[20..].copy_from_slice(&inner);
    let (s, _) = encapsulate(&mut buf, 20, inner.len(), &p, &encap).unwrap();
    assert_eq!(s, 0);
    assert_eq!((buf[6] & 0x40, buf[8], buf[9]), (0, 64, 41));

    // Not enough headroom: refused, nothing written.
    let mut buf = std::vec![0u8; 19 + inner.len()];
    buf[19..].copy_from_slice(&inner);
    let copy = buf.clone();
    assert_eq!(
        encapsulate(&mut buf, 19, inner.len(), &p, &encap),
        Err(ForwardError::NoHeadroom)
    );
    assert_eq!(buf, copy);
    // Mixed outer families.
    let bad = Encap {
        dst: ip("2001:db8::9"),
        ..encap
    };
    assert_eq!(
        encapsulate(&mut buf, 19, inner.len(), &p, &bad),
        Err(ForwardError::FamilyMismatch)
    );
}

#[test]
fn encapsulate_refuses_a_packet_that_would_exceed_64k() {
    let total = 65535 - 10;
    let mut pkt = std::vec![0u8; total];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    pkt[8] = 64;
    pkt[9] = 253; // experimental protocol: no transport parsing
    let c = checksum::checksum(&pkt[..20]);
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
    let p = parse(&pkt, LinkKind::Ip).unwrap();
    let mut buf = std::vec![0u8; HEADROOM + total];
    buf[HEADROOM..].copy_from_slice(&pkt);
    let encap = Encap {
        kind: TunnelType::Ipip,
        src: ip("192.0.2.1"),
        dst: ip("10.1.1.2"),
        udp_sport: 0,
        eth: None,
    };
    assert_eq!(
        encapsulate(&mut buf, HEADROOM, total, &p, &encap),
        Err(ForwardError::TooBig)
    );
}

#[test]
fn icmp_error_translation_matches_expected_bytes() {
    let mut f = hex(V4_ICMP_FRAG_NEEDED);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    let real = ep("10.1.1.2", 8080);
    rewrite_icmp_error(&mut f, &mut p, None, Some(real.addr), Some(real), None).unwrap();
    assert_eq!(f, hex(EXP_ICMP_NAT));
    assert_eq!(parse(&f, LinkKind::Ethernet).unwrap(), p);
    let q = p.icmp.unwrap().error.unwrap();
    assert_eq!(
        (q.src, q.sport, q.dst, q.dport),
        (real.addr, 8080, ip("10.0.0.1"), 40000)
    );
}

#[test]
fn icmpv6_error_translation_keeps_every_checksum_valid() {
    let mut f = hex(V6_ICMP_PTB);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    let (local, real) = (ep("fd00::1", 44000), ep("fd00::2", 53));
    // FULLNAT, error about a reply sent to the client: goes back to the real server.
    rewrite_icmp_error(
        &mut f,
        &mut p,
        Some(local.addr),
        Some(real.addr),
        Some(real),
        Some(local),
    )
    .unwrap();
    assert_eq!(parse(&f, LinkKind::Ip).unwrap(), p);
    // ICMPv6 checksum with the new outer pseudo-header.
    let (IpAddr::V6(s), IpAddr::V6(d)) = (p.src, p.dst) else {
        unreachable!()
    };
    let msg = &f[40..];
    let sum = u64::from(checksum::pseudo_header_v6(
        &s.octets(),
        &d.octets(),
        58,
        msg.len() as u32,
    )) + u64::from(checksum::sum(msg));
    assert_eq!(checksum::fold(sum), 0xffff);
    // The quoted UDP checksum, complete in the quote.
    let q = p.icmp.unwrap().error.unwrap();
    let qp = crate::wire::Packet {
        src: q.src,
        dst: q.dst,
        l4: q.l4,
        proto: 17,
        ..p
    };
    assert!(v6_transport_ok(&f, &qp));
    assert_eq!(
        (q.src, q.sport, q.dst, q.dport),
        (real.addr, 53, local.addr, 44000)
    );
}

#[test]
fn icmp_error_translation_without_ports_and_refusals() {
    let mut f = hex(V4_ICMP_TE_SHORT);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    rewrite_icmp_error(
        &mut f,
        &mut p,
        Some(ip("10.5.5.5")),
        None,
        None,
        Some(ep("10.6.6.6", 1)),
    )
    .unwrap();
    assert_eq!(checksum::checksum(&f[..20]), 0);
    assert_eq!(checksum::checksum(&f[28..48]), 0);
    assert_eq!(checksum::checksum(&f[20..]), 0);
    let q = p.icmp.unwrap().error.unwrap();
    assert_eq!((q.dst, q.dport), (ip("10.6.6.6"), 0));

    let mut f = hex(V4_ICMP_ECHO);
    let mut p = parse(&f, LinkKind::Ip).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut f, &mut p, None, None, None, None),
        Err(ForwardError::NotIcmpError)
    );
    let mut f = hex(ETH_V4_TCP_SYN);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut f, &mut p, None, None, None, None),
        Err(ForwardError::NotIcmpError)
    );
    let mut f = hex(V4_ICMP_FRAG_NEEDED);
    let mut p = parse(&f, LinkKind::Ethernet).unwrap();
    assert_eq!(
        rewrite_icmp_error(&mut f, &mut p, None, Some(ip("::1")), None, None),
        Err(ForwardError::FamilyMismatch)
    );
}

#[test]
fn error_tables_are_consistent() {
    assert_eq!(ForwardError::ALL.len(), ForwardError::COUNT);
    for (i, e) in ForwardError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
        for f in &ForwardError::ALL[..i] {
            assert_ne!(f.name(), e.name());
        }
    }
}
