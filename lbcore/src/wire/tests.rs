//! Unit tests of [`super::parse`] on literal frames (see `testdata.rs`): one test per frame
//! kind checking every field, then one per refusal reason.

use core::net::IpAddr;

use super::testdata::*;
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse_hex(s: &str, link: LinkKind) -> Result<Packet, ParseError> {
    parse(&hex(s), link)
}

#[test]
fn parse_ethernet_ipv4_tcp_syn() {
    let p = parse_hex(ETH_V4_TCP_SYN, LinkKind::Ethernet).unwrap();
    assert_eq!(p.link, LinkKind::Ethernet);
    assert_eq!((p.l3, p.l4, p.payload, p.ip_end), (14, 34, 58, 58));
    assert_eq!(p.family, Family::V4);
    assert_eq!(p.proto, 6);
    assert_eq!((p.src, p.dst), (ip("10.0.0.1"), ip("192.0.2.10")));
    assert_eq!((p.sport, p.dport), (40000, 80));
    assert_eq!(p.tcp_flags, 0x02);
    assert_eq!(p.frag, Fragment::None);
    assert_eq!(p.ttl, 64);
    assert_eq!(p.icmp, None);
    assert_eq!(p.ip_len(), 44);
    assert_eq!(p.l4_payload_len(), 0);
    assert_eq!(p.l4_len(), 24);
}

#[test]
fn parse_vlan_ipv4_udp_excludes_padding() {
    let data = hex(VLAN_V4_UDP_PADDED);
    assert_eq!(data.len(), 64);
    let p = parse(&data, LinkKind::Ethernet).unwrap();
    assert_eq!((p.l3, p.l4, p.payload, p.ip_end), (18, 38, 46, 49));
    assert_eq!((p.proto, p.sport, p.dport, p.tcp_flags), (17, 5353, 53, 0));
    assert_eq!(p.ttl, 7);
    assert_eq!(p.l4_payload_len(), 3);
    // The same IP packet, bare.
    let bare = parse(&data[18..49], LinkKind::Ip).unwrap();
    assert_eq!(
        (bare.l3, bare.l4, bare.ip_end, bare.link),
        (0, 20, 31, LinkKind::Ip)
    );
}

#[test]
fn parse_qinq_ipv6_tcp() {
    let p = parse_hex(QINQ_V6_TCP, LinkKind::Ethernet).unwrap();
    assert_eq!((p.l3, p.l4, p.payload, p.ip_end), (22, 62, 82, 87));
    assert_eq!(p.family, Family::V6);
    assert_eq!((p.src, p.dst), (ip("2001:db8::1"), ip("2001:db8:ffff::10")));
    assert_eq!(
        (p.proto, p.sport, p.dport, p.tcp_flags, p.ttl),
        (6, 1234, 443, 0x10, 33)
    );
    assert_eq!(p.l4_payload_len(), 5);
}

#[test]
fn parse_ipv4_icmp_echo() {
    let p = parse_hex(V4_ICMP_ECHO, LinkKind::Ip).unwrap();
    assert_eq!((p.proto, p.sport, p.dport), (1, 0, 0));
    assert_eq!((p.l4, p.payload, p.ip_end), (20, 28, 32));
    assert_eq!(
        p.icmp,
        Some(IcmpInfo {
            typ: 8,
            code: 0,
            error: None
        })
    );
}

#[test]
fn parse_ipv6_extension_headers() {
    let p = parse_hex(V6_EXT_TCP, LinkKind::Ip).unwrap();
    assert_eq!((p.l3, p.l4), (0, 56));
    assert_eq!((p.proto, p.sport, p.dport, p.tcp_flags), (6, 5555, 80, 0x18));
    assert_eq!(p.frag, Fragment::None);
    assert_eq!(p.l4_payload_len(), 3);
}

#[test]
fn parse_ipv6_fragments() {
    let p = parse_hex(V6_FRAG_FIRST, LinkKind::Ip).unwrap();
    assert_eq!(p.frag, Fragment::First);
    assert_eq!((p.proto, p.l4, p.sport, p.dport), (17, 48, 7000, 53));
    let p = parse_hex(V6_FRAG_SECOND, LinkKind::Ip).unwrap();
    assert_eq!(p.frag, Fragment::NonFirst);
    assert_eq!((p.proto, p.l4, p.payload, p.sport, p.dport), (17, 48, 48, 0, 0));
    // An atomic fragment (offset 0, no M) is not a fragment (RFC 6946).
    let mut atomic = hex(V6_FRAG_FIRST);
    atomic[43] = 0;
    // Make the UDP length match what is present so that the datagram is complete.
    atomic[52..54].copy_from_slice(&16u16.to_be_bytes());
    let p = parse(&atomic, LinkKind::Ip).unwrap();
    assert_eq!(p.frag, Fragment::None);
}

#[test]
fn parse_ipv4_fragments() {
    let p = parse_hex(V4_FRAG_FIRST, LinkKind::Ip).unwrap();
    assert_eq!(p.frag, Fragment::First);
    assert_eq!((p.sport, p.dport, p.tcp_flags, p.payload), (40000, 80, 0x18, 40));
    let p = parse_hex(V4_FRAG_SECOND, LinkKind::Ip).unwrap();
    assert_eq!(p.frag, Fragment::NonFirst);
    assert_eq!(
        (p.proto, p.l4, p.payload, p.sport, p.dport, p.tcp_flags),
        (6, 20, 20, 0, 0, 0)
    );
}

#[test]
fn parse_icmp_frag_needed_quoting_tcp() {
    let p = parse_hex(V4_ICMP_FRAG_NEEDED, LinkKind::Ethernet).unwrap();
    assert_eq!(
        (p.src, p.dst, p.proto, p.ttl),
        (ip("198.51.100.1"), ip("192.0.2.10"), 1, 250)
    );
    assert_eq!((p.l4, p.payload, p.ip_end), (34, 42, 70));
    let icmp = p.icmp.unwrap();
    assert_eq!((icmp.typ, icmp.code), (3, 4));
    let q = icmp.error.unwrap();
    assert_eq!((q.l3, q.l4, q.proto), (42, 62, 6));
    assert_eq!(
        (q.src, q.dst, q.sport, q.dport),
        (ip("192.0.2.10"), ip("10.0.0.1"), 80, 40000)
    );
    assert_eq!(q.frag, Fragment::None);
    assert!(q.has_ports(p.ip_end));
}

#[test]
fn parse_icmpv6_packet_too_big_quoting_udp() {
    let p = parse_hex(V6_ICMP_PTB, LinkKind::Ip).unwrap();
    assert_eq!((p.proto, p.l4, p.ip_end), (58, 40, 100));
    let icmp = p.icmp.unwrap();
    assert_eq!((icmp.typ, icmp.code), (2, 0));
    let q = icmp.error.unwrap();
    assert_eq!((q.l3, q.l4, q.proto), (48, 88, 17));
    assert_eq!((q.src, q.dst), (ip("2001:db8:ffff::10"), ip("2001:db8::1")));
    assert_eq!((q.sport, q.dport), (53, 7000));
}

#[test]
fn parse_icmp_error_with_short_transport_quote_has_no_ports() {
    let p = parse_hex(V4_ICMP_TE_SHORT, LinkKind::Ip).unwrap();
    let q = p.icmp.unwrap().error.unwrap();
    assert_eq!((q.proto, q.sport, q.dport), (17, 0, 0));
    assert!(!q.has_ports(p.ip_end));
}

#[test]
fn refuses_with_a_reason() {
    use ParseError::*;
    assert_eq!(parse_hex(ARP, LinkKind::Ethernet), Err(NotIp));
    assert_eq!(parse(&[], LinkKind::Ip), Err(Truncated));
    assert_eq!(parse(&[], LinkKind::Ethernet), Err(Truncated));
    assert_eq!(
        parse(&hex(ETH_V4_TCP_SYN)[..13], LinkKind::Ethernet),
        Err(Truncated)
    );
    assert_eq!(
        parse(&hex(ETH_V4_TCP_SYN)[..33], LinkKind::Ethernet),
        Err(Truncated)
    );
    assert_eq!(
        parse(&hex(ETH_V4_TCP_SYN)[..57], LinkKind::Ethernet),
        Err(BadTotalLength)
    );
    assert_eq!(parse_hex(V4_ICMP_BAD_QUOTE, LinkKind::Ip), Err(BadIcmpQuote));
    // A third VLAN tag is not looked through.
    let mut f = hex(ETH_V4_TCP_SYN);
    f.splice(12..12, [0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3]);
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(NotIp));

    let v4 = hex(V4_ICMP_ECHO);
    let with = |at: usize, b: u8| {
        let mut d = v4.clone();
        d[at] = b;
        parse(&d, LinkKind::Ip)
    };
    assert_eq!(with(0, 0x55), Err(BadIpVersion));
    assert_eq!(with(0, 0x44), Err(BadIpv4HeaderLength));
    assert_eq!(with(0, 0x4f), Err(BadIpv4HeaderLength));
    assert_eq!(with(3, 0x13), Err(BadTotalLength));
    assert_eq!(with(3, 0x21), Err(BadTotalLength));
    assert_eq!(with(8, 63), Err(BadIpv4Checksum));
    // IPv6 in an IPv4 EtherType.
    let mut f = hex(ETH_V4_TCP_SYN);
    f[14] = 0x65;
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(BadIpVersion));

    // TCP data offset below 5 (checksum of IPv4 unaffected: the TCP header is not in it).
    let mut f = hex(ETH_V4_TCP_SYN);
    f[46] = 0x40;
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(BadTcpHeader));
    f[46] = 0x70;
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(BadTcpHeader));
    // UDP length below 8, and beyond the packet.
    let mut f = hex(VLAN_V4_UDP_PADDED);
    f[42..44].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(BadUdpLength));
    f[42..44].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(parse(&f, LinkKind::Ethernet), Err(BadUdpLength));

    // IPv6: hop-by-hop not first, an extension header past the end, payload past the slice.
    let mut f = hex(V6_EXT_TCP);
    f[40] = 0; // destination options -> hop-by-hop
    assert_eq!(parse(&f, LinkKind::Ip), Err(BadIpv6Extension));
    let mut f = hex(V6_EXT_TCP);
    f[49] = 200;
    assert_eq!(parse(&f, LinkKind::Ip), Err(BadIpv6Extension));
    let f = hex(V6_EXT_TCP);
    assert_eq!(parse(&f[..f.len() - 1], LinkKind::Ip), Err(BadTotalLength));
    // ICMP too short for its header.
    let mut f = hex(V4_ICMP_ECHO);
    f.truncate(24);
    f[3] = 24;
    f[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&f[..20]);
    f[10..12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(parse(&f, LinkKind::Ip), Err(BadIcmpHeader));
    // More than 65535 bytes from the slice start.
    let mut big = std::vec![0u8; 14 + 65535];
    big[12..14].copy_from_slice(&[0x86, 0xdd]);
    big[14] = 0x60;
    big[18..20].copy_from_slice(&(65535u16 - 40).to_be_bytes());
    big[20] = 59;
    assert_eq!(parse(&big, LinkKind::Ethernet), Err(TooLong));
    assert!(parse(&big[14..], LinkKind::Ip).is_ok());
}

#[test]
fn error_tables_are_consistent() {
    assert_eq!(ParseError::ALL.len(), ParseError::COUNT);
    for (i, e) in ParseError::ALL.iter().enumerate() {
        assert_eq!(e.index(), i);
        assert!(
            e.name()
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
        );
        for f in &ParseError::ALL[..i] {
            assert_ne!(f.name(), e.name());
        }
    }
}

#[test]
fn headroom_fits_the_largest_encapsulation() {
    const { assert!(HEADROOM >= 14 + 40 + 8 + 4) };
}
