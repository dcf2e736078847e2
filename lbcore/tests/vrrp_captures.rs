//! The three adverts captured from keepalived 2.2.7 (tests/data/vrrp, see its README): every
//! field parses as tshark decoded it, a router accepts them, and a router configured like the
//! keepalived that sent them emits the very same bytes.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::service::Family;
use lbcore::time::{Duration, Instant};
use lbcore::vrrp::wire::{self, Advert, Envelope};
use lbcore::vrrp::{Action, AdvertPacket, Config, Reject, Router, Rx, SourceMac, State, Version};

const V2: &str = include_str!("data/vrrp/vrrp_v2_keepalived.hex");
const V3: &str = include_str!("data/vrrp/vrrp_v3_keepalived.hex");
const V3_IPV6: &str = include_str!("data/vrrp/vrrp_v3_ipv6_keepalived.hex");

/// lb1's interface MAC: keepalived without `use_vmac` sends from it.
const LB1_MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b];
const LB1: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 11);
const LB1_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x0aff, 0xfec9, 0x000b);
const VIP4: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 100);
const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x100);

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert_eq!(s.len() % 2, 0);
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The keepalived.conf of the README, as a [`Config`].
fn lb1(version: Version) -> Config {
    let cfg = match version {
        Version::V2 => Config::new(Version::V2, 51, IpAddr::V4(LB1))
            .auth_pass(b"1111")
            .vip(IpAddr::V4(VIP4), 24),
        Version::V3 => Config::new(Version::V3, 51, IpAddr::V4(LB1)).vip(IpAddr::V4(VIP4), 24),
    };
    cfg.priority(100)
        .advert_interval(Duration::from_secs(1))
        .source_mac(SourceMac::Interface(LB1_MAC))
}

fn lb1_v6() -> Config {
    Config::new(Version::V3, 52, IpAddr::V6(LB1_LL))
        .priority(100)
        .vip(IpAddr::V6(VIP6), 64)
        .source_mac(SourceMac::Interface(LB1_MAC))
}

/// Start a lone router and let it become master; return its adverts in order.
fn adverts_of(cfg: Config, count: usize) -> Vec<AdvertPacket> {
    let mut r = Router::new(cfg).unwrap();
    r.start(Instant::ZERO);
    let mut out = Vec::new();
    while out.len() < count {
        let t = r.poll_timeout().expect("a running router always has a timer");
        r.handle_timeout(t);
        while let Some(a) = r.poll_action() {
            if let Action::SendAdvert(p) = a {
                out.push(p);
            }
        }
    }
    assert_eq!(r.state(), State::Master);
    out
}

#[test]
fn v2_capture_parses_field_by_field() {
    let frame = hex(V2);
    assert_eq!(frame.len(), 54);
    // Ethernet: to the 224.0.0.18 group MAC, from lb1's own MAC.
    assert_eq!(&frame[0..6], &wire::MCAST_MAC_V4);
    assert_eq!(&frame[6..12], &LB1_MAC);
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    // IPv4, cross-checked with etherparse.
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
    assert_eq!(ip.ihl(), 5);
    assert_eq!(ip.dcp().value() << 2 | ip.ecn().value(), 0xc0);
    assert_eq!(ip.total_len(), 40);
    assert_eq!(ip.identification(), 1);
    assert!(!ip.dont_fragment() && !ip.more_fragments() && ip.fragments_offset().value() == 0);
    assert_eq!(ip.ttl(), 255);
    assert_eq!(ip.protocol(), etherparse::IpNumber(112));
    assert_eq!(ip.header_checksum(), 0xcfbe);
    assert_eq!(ip.to_header().calc_header_checksum(), 0xcfbe);
    assert_eq!(ip.source_addr(), LB1);
    assert_eq!(ip.destination_addr(), wire::MCAST_V4);
    // VRRP.
    let (env, msg) = wire::parse_envelope(&frame, Rx::Ethernet).unwrap();
    assert_eq!(
        env,
        Envelope {
            src: IpAddr::V4(LB1),
            dst: IpAddr::V4(wire::MCAST_V4),
            ttl: Some(255)
        }
    );
    let adv = Advert::parse(msg, Family::V4).unwrap();
    assert_eq!(adv.version, Version::V2);
    assert_eq!(adv.kind, 1);
    assert_eq!(adv.vrid, 51);
    assert_eq!(adv.priority, 100);
    assert_eq!(adv.count, 1);
    assert_eq!(adv.auth_type, wire::AUTH_PASS);
    assert_eq!(adv.interval, 1);
    assert_eq!(adv.checksum, 0x0c3b);
    assert!(adv.checksum_ok(&env, false));
    assert_eq!(adv.addresses().collect::<Vec<_>>(), vec![IpAddr::V4(VIP4)]);
    assert_eq!(&adv.auth_data, b"1111\0\0\0\0");
    assert_eq!(adv.bytes().len(), 20);
}

#[test]
fn v3_ipv4_capture_parses_field_by_field() {
    let frame = hex(V3);
    assert_eq!(frame.len(), 46);
    assert_eq!(&frame[0..6], &wire::MCAST_MAC_V4);
    assert_eq!(&frame[6..12], &LB1_MAC);
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&frame[14..]).unwrap();
    assert_eq!((ip.total_len(), ip.identification(), ip.ttl()), (32, 1, 255));
    assert!(!ip.dont_fragment());
    assert_eq!(ip.header_checksum(), 0xcfc6);
    assert_eq!(ip.to_header().calc_header_checksum(), 0xcfc6);
    let (env, msg) = wire::parse_envelope(&frame, Rx::Ethernet).unwrap();
    let adv = Advert::parse(msg, Family::V4).unwrap();
    assert_eq!(
        (adv.version, adv.kind, adv.vrid, adv.priority, adv.count),
        (Version::V3, 1, 51, 100, 1)
    );
    assert_eq!((adv.reserved, adv.interval), (0, 100)); // centiseconds
    assert_eq!(adv.checksum, 0x73d7);
    // The checksum covers the IPv4 pseudo-header (RFC 5798), not the message alone.
    assert!(adv.checksum_ok(&env, false));
    assert!(!adv.checksum_ok(&env, true));
    assert_eq!(adv.addresses().collect::<Vec<_>>(), vec![IpAddr::V4(VIP4)]);
    assert_eq!(adv.auth_data, [0; 8]);
}

#[test]
fn v3_ipv6_capture_parses_field_by_field() {
    let frame = hex(V3_IPV6);
    assert_eq!(frame.len(), 78);
    assert_eq!(&frame[0..6], &wire::MCAST_MAC_V6);
    assert_eq!(&frame[6..12], &LB1_MAC);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    let ip = etherparse::Ipv6HeaderSlice::from_slice(&frame[14..]).unwrap();
    assert_eq!(ip.traffic_class(), 0xc0);
    assert_eq!(ip.flow_label().value(), 0x83eb1);
    assert_eq!(ip.payload_length(), 24);
    assert_eq!(ip.next_header(), etherparse::IpNumber(112));
    assert_eq!(ip.hop_limit(), 255);
    assert_eq!(ip.source_addr(), LB1_LL);
    assert_eq!(ip.destination_addr(), wire::MCAST_V6);
    let (env, msg) = wire::parse_envelope(&frame, Rx::Ethernet).unwrap();
    assert_eq!(env.ttl, Some(255));
    let adv = Advert::parse(msg, Family::V6).unwrap();
    assert_eq!(
        (adv.version, adv.kind, adv.vrid, adv.priority, adv.count),
        (Version::V3, 1, 52, 100, 1)
    );
    assert_eq!((adv.reserved, adv.interval, adv.checksum), (0, 100, 0x6272));
    assert!(adv.checksum_ok(&env, false));
    assert_eq!(adv.addresses().collect::<Vec<_>>(), vec![IpAddr::V6(VIP6)]);
}

#[test]
fn v2_router_emits_the_captured_frame_byte_for_byte() {
    let capture = hex(V2);
    let adverts = adverts_of(lb1(Version::V2), 3);
    // keepalived numbers its adverts 1, 2, 3, ... in the IPv4 ID; the capture is the first.
    assert_eq!(adverts[0].frame().unwrap(), &capture[..]);
    assert_eq!(adverts[0].ip(), &capture[14..]);
    assert_eq!(adverts[0].vrrp(), &capture[34..]);
    for (n, a) in adverts.iter().enumerate().skip(1) {
        let f = a.frame().unwrap();
        assert_eq!(u16::from_be_bytes([f[18], f[19]]), n as u16 + 1);
        let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != capture[i]).collect();
        assert!(
            diff.iter().all(|i| [18, 19, 24, 25].contains(i)),
            "only ID and header checksum differ: {diff:?}"
        );
    }
}

#[test]
fn v3_ipv4_router_emits_the_captured_frame_byte_for_byte() {
    let capture = hex(V3);
    let adverts = adverts_of(lb1(Version::V3), 1);
    assert_eq!(adverts[0].frame().unwrap(), &capture[..]);
}

#[test]
fn v3_ipv6_router_emits_the_captured_frame_except_the_kernel_flow_label() {
    let capture = hex(V3_IPV6);
    // The flow label is not keepalived's: the Linux kernel writes the IPv6 header of a raw
    // socket and picks it. With the same label the frames are identical...
    let same = adverts_of(lb1_v6().flow_label(0x83eb1), 1);
    assert_eq!(same[0].frame().unwrap(), &capture[..]);
    // ...with the default (0) exactly the 20 flow-label bits differ: bytes 15..=17.
    let default = adverts_of(lb1_v6(), 1);
    let f = default[0].frame().unwrap();
    let diff: Vec<usize> = (0..f.len()).filter(|&i| f[i] != capture[i]).collect();
    assert_eq!(diff, vec![15, 16, 17]);
    assert_eq!(f[15] & 0xf0, capture[15] & 0xf0);
    // An IPv6 raw socket takes only the VRRP message: identical whatever the label.
    assert_eq!(default[0].vrrp(), &capture[54..]);
}

#[test]
fn virtual_mac_is_the_rfc_default() {
    let adverts = adverts_of(
        Config::new(Version::V3, 51, IpAddr::V4(LB1)).vip(IpAddr::V4(VIP4), 24),
        1,
    );
    assert_eq!(
        &adverts[0].frame().unwrap()[6..12],
        &[0x00, 0x00, 0x5e, 0x00, 0x01, 51]
    );
    let v6 = adverts_of(
        Config::new(Version::V3, 52, IpAddr::V6(LB1_LL)).vip(IpAddr::V6(VIP6), 64),
        1,
    );
    assert_eq!(
        &v6[0].frame().unwrap()[6..12],
        &[0x00, 0x00, 0x5e, 0x00, 0x02, 52]
    );
}

/// lb2 (same configuration, another address) hears lb1's adverts as a backup.
fn lb2_backup(cfg: Config) -> Router {
    let mut r = Router::new(cfg).unwrap();
    r.start(Instant::ZERO);
    assert_eq!(r.state(), State::Backup);
    r
}

#[test]
fn routers_accept_the_captures_in_every_input_form() {
    let lb2 = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 12));
    for (text, cfg) in [
        (
            V2,
            Config::new(Version::V2, 51, lb2)
                .auth_pass(b"1111")
                .vip(IpAddr::V4(VIP4), 24),
        ),
        (V3, Config::new(Version::V3, 51, lb2).vip(IpAddr::V4(VIP4), 24)),
    ] {
        let frame = hex(text);
        let mut r = lb2_backup(cfg);
        let before = r.poll_timeout().unwrap();
        let now = Instant::from_millis(500);
        r.handle_packet(now, &frame, Rx::Ethernet);
        r.handle_packet(now, &frame[14..], Rx::Ip);
        // Ethernet padding to the 60-byte minimum is not part of the packet.
        let mut padded = frame.clone();
        padded.resize(60, 0);
        r.handle_packet(now, &padded, Rx::Ethernet);
        assert_eq!(r.counters().adverts_received, 3, "{:?}", r.counters());
        assert_eq!(r.counters().rejected_total(), 0);
        assert_eq!(r.master(), Some((IpAddr::V4(LB1), 100)));
        // Equal priority keeps us backup, and the master-down timer restarted.
        assert_eq!(r.state(), State::Backup);
        assert!(r.poll_timeout().unwrap() > before);
    }
    // IPv6 as a raw socket delivers it: the message, addresses and hop limit from recvmsg.
    let frame = hex(V3_IPV6);
    let lb2_ll = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x0aff, 0xfec9, 0x000c));
    let mut r = lb2_backup(Config::new(Version::V3, 52, lb2_ll).vip(IpAddr::V6(VIP6), 64));
    let rx = Rx::Payload {
        src: IpAddr::V6(LB1_LL),
        dst: IpAddr::V6(wire::MCAST_V6),
        hop_limit: Some(255),
    };
    r.handle_packet(Instant::from_millis(500), &frame[54..], rx);
    r.handle_packet(Instant::from_millis(600), &frame, Rx::Ethernet);
    assert_eq!(r.counters().adverts_received, 2);
    assert_eq!(r.master(), Some((IpAddr::V6(LB1_LL), 100)));
    // The IPv4 routers refuse it as the wrong family, and the IPv6 one refuses the IPv4 one.
    let mut v4 = lb2_backup(Config::new(Version::V3, 52, IpAddr::V4(LB1)).vip(IpAddr::V4(VIP4), 24));
    v4.handle_packet(Instant::ZERO, &frame, Rx::Ethernet);
    assert_eq!(v4.counters().rejected(Reject::WrongFamily), 1);
    r.handle_packet(Instant::from_millis(700), &hex(V3), Rx::Ethernet);
    assert_eq!(r.counters().rejected(Reject::WrongFamily), 1);
}
