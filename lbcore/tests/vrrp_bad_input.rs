//! Hostile input: random bytes and mutated real adverts never panic a router, every packet is
//! either accepted or counted under exactly one refusal reason, and each kind of corruption of
//! a real keepalived advert is refused for its own reason.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::rng::Rng;
use lbcore::time::{Duration, Instant};
use lbcore::vrrp::{Config, Reject, Router, Rx, State, Version};

const V2: &str = include_str!("data/vrrp/vrrp_v2_keepalived.hex");
const V3: &str = include_str!("data/vrrp/vrrp_v3_keepalived.hex");
const V3_IPV6: &str = include_str!("data/vrrp/vrrp_v3_ipv6_keepalived.hex");

const LB2: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 12));
const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 100));
const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x201, 0, 0, 0, 0, 0, 0x100));
const LB2_LL: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0x0aff, 0xfec9, 0x000c));

fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn started(cfg: Config) -> Router {
    let mut r = Router::new(cfg).unwrap();
    r.start(Instant::ZERO);
    assert_eq!(r.state(), State::Backup);
    r
}

/// lb2 of the captures' setup, listening as a backup.
fn v2_router() -> Router {
    started(Config::new(Version::V2, 51, LB2).auth_pass(b"1111").vip(VIP4, 24))
}

fn v3_router() -> Router {
    started(Config::new(Version::V3, 51, LB2).vip(VIP4, 24))
}

fn v6_router() -> Router {
    started(Config::new(Version::V3, 52, LB2_LL).vip(VIP6, 64))
}

// ----- checksum repair, so that a corruption reaches the check it is aimed at -----

fn csum(acc: u64, data: &[u8]) -> u16 {
    let mut sum = acc;
    for w in data.chunks(2) {
        sum += u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Recompute the IPv4 header checksum of an Ethernet frame (IHL 5).
fn fix_ip(f: &mut [u8]) {
    f[24] = 0;
    f[25] = 0;
    let c = csum(0, &f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// Recompute the VRRP checksum of an IPv4 Ethernet frame by the rules of its version nibble.
fn fix_vrrp(f: &mut [u8]) {
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let end = 14 + total;
    f[40] = 0;
    f[41] = 0;
    let msg_len = (total - 20) as u64;
    let acc = if f[34] >> 4 == 3 {
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 112]);
        pseudo.extend_from_slice(&(msg_len as u16).to_be_bytes());
        pseudo
            .chunks(2)
            .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
            .sum()
    } else {
        0
    };
    let c = csum(acc, &f[34..end]);
    f[40..42].copy_from_slice(&c.to_be_bytes());
}

/// Change the IPv4 total length by `delta` bytes, resizing the frame to match.
fn resize_ip(f: &mut Vec<u8>, delta: isize) {
    let total = u16::from_be_bytes([f[16], f[17]]) as isize + delta;
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f.resize((14 + total) as usize, 0);
}

// ----- one reason per corruption -----

/// Feed `frame` to `router` and check that exactly the `expected` counter moved.
fn refused_for(mut router: Router, frame: &[u8], expected: Reject) {
    let before = router.counters().clone();
    router.handle_packet(Instant::from_millis(100), frame, lbcore::vrrp::Rx::Ethernet);
    let after = router.counters();
    assert_eq!(
        after.adverts_received, before.adverts_received,
        "accepted, expected {expected:?}"
    );
    for r in Reject::ALL {
        let moved = after.rejected(r) - before.rejected(r);
        assert_eq!(
            moved,
            u64::from(r == expected),
            "{:?} moved by {moved}, expected {:?}",
            r,
            expected
        );
    }
}

fn accepted(mut router: Router, frame: &[u8]) {
    router.handle_packet(Instant::from_millis(100), frame, Rx::Ethernet);
    assert_eq!(router.counters().adverts_received, 1, "{:?}", router.counters());
    assert_eq!(router.counters().rejected_total(), 0);
}

#[test]
fn the_untouched_captures_are_accepted() {
    accepted(v2_router(), &hex(V2));
    accepted(v3_router(), &hex(V3));
    accepted(v6_router(), &hex(V3_IPV6));
}

#[test]
fn each_corruption_of_a_v2_advert_is_refused_for_its_own_reason() {
    let good = hex(V2);
    type Mutation = fn(&mut Vec<u8>);
    let cases: Vec<(&str, Mutation, Reject)> = vec![
        ("cut inside the IP header", |f| f.truncate(20), Reject::Truncated),
        (
            "IP length beyond the frame",
            |f| f.truncate(50),
            Reject::Truncated,
        ),
        (
            "an ARP frame",
            |f| f[12..14].copy_from_slice(&[0x08, 0x06]),
            Reject::NotVrrp,
        ),
        (
            "a TCP packet",
            |f| {
                f[23] = 6;
                fix_ip(f)
            },
            Reject::NotVrrp,
        ),
        ("IP header checksum", |f| f[24] ^= 0x01, Reject::IpHeader),
        (
            "IHL below 5",
            |f| {
                f[14] = 0x44;
                fix_ip(f)
            },
            Reject::IpHeader,
        ),
        (
            "a fragment",
            |f| {
                f[20] = 0x20;
                fix_ip(f)
            },
            Reject::IpHeader,
        ),
        (
            "TTL 64 (routed)",
            |f| {
                f[22] = 64;
                fix_ip(f)
            },
            Reject::Ttl,
        ),
        (
            "VRRP header cut short",
            |f| {
                resize_ip(f, -13);
                fix_ip(f)
            },
            Reject::TooShort,
        ),
        (
            "count 2 but one address",
            |f| {
                f[37] = 2;
                fix_vrrp(f)
            },
            Reject::TooShort,
        ),
        (
            "version 4",
            |f| {
                f[34] = 0x41;
                fix_vrrp(f)
            },
            Reject::Version,
        ),
        (
            "a trailing byte",
            |f| {
                resize_ip(f, 1);
                fix_ip(f);
                fix_vrrp(f)
            },
            Reject::Length,
        ),
        (
            "type 2",
            |f| {
                f[34] = 0x22;
                fix_vrrp(f)
            },
            Reject::PacketType,
        ),
        ("VRRP checksum", |f| f[41] ^= 0x80, Reject::Checksum),
        (
            "a bit of the VIP, checksum left",
            |f| f[45] ^= 0x01,
            Reject::Checksum,
        ),
        (
            "VRID 52",
            |f| {
                f[35] = 52;
                fix_vrrp(f)
            },
            Reject::VridMismatch,
        ),
        (
            "two addresses",
            |f| {
                f[37] = 2;
                f.splice(46..46, [10, 201, 0, 101]);
                f[16..18].copy_from_slice(&44u16.to_be_bytes());
                fix_ip(f);
                fix_vrrp(f)
            },
            Reject::AddrCount,
        ),
        (
            "auth type 3",
            |f| {
                f[38] = 3;
                fix_vrrp(f)
            },
            Reject::AuthTypeInvalid,
        ),
        (
            "auth type none",
            |f| {
                f[38] = 0;
                fix_vrrp(f)
            },
            Reject::AuthTypeMismatch,
        ),
        (
            "auth type AH",
            |f| {
                f[38] = 2;
                fix_vrrp(f)
            },
            Reject::AuthTypeMismatch,
        ),
        (
            "password 1112",
            |f| {
                f[49] = b'2';
                fix_vrrp(f)
            },
            Reject::AuthFailure,
        ),
        (
            "password padding",
            |f| {
                f[53] = b'x';
                fix_vrrp(f)
            },
            Reject::AuthFailure,
        ),
        (
            "interval 2 s",
            |f| {
                f[39] = 2;
                fix_vrrp(f)
            },
            Reject::IntervalMismatch,
        ),
        (
            "unicast destination",
            |f| {
                f[30..34].copy_from_slice(&[10, 201, 0, 12]);
                fix_ip(f);
                fix_vrrp(f)
            },
            Reject::DstMismatch,
        ),
        (
            "another VIP",
            |f| {
                f[45] = 101;
                fix_vrrp(f)
            },
            Reject::AddrList,
        ),
    ];
    for (what, mutate, reason) in cases {
        let mut f = good.clone();
        mutate(&mut f);
        eprintln!("{what}");
        refused_for(v2_router(), &f, reason);
    }
    // Other versions and families.
    refused_for(v2_router(), &hex(V3), Reject::Version);
    refused_for(v2_router(), &hex(V3_IPV6), Reject::WrongFamily);
    refused_for(v6_router(), &good, Reject::WrongFamily);
    refused_for(
        Router::new(Config::new(Version::V2, 51, LB2)).unwrap(),
        &good,
        Reject::NotRunning,
    );
}

#[test]
fn each_corruption_of_a_v3_advert_is_refused_for_its_own_reason() {
    let good = hex(V3);
    let mut f = good.clone();
    f[38..40].copy_from_slice(&[0, 0]);
    fix_vrrp(&mut f);
    refused_for(v3_router(), &f, Reject::BadInterval);

    // Reserved bits are ignored, as keepalived masks them; another interval is learned.
    let mut f = good.clone();
    f[38] |= 0xf0;
    fix_vrrp(&mut f);
    accepted(v3_router(), &f);
    let mut f = good.clone();
    f[39] = 50;
    fix_vrrp(&mut f);
    let mut r = v3_router();
    r.handle_packet(Instant::from_millis(100), &f, Rx::Ethernet);
    assert_eq!(r.master_advert_interval(), Duration::from_millis(500));

    // The pseudo-header is part of the checksum: the v2 rule does not verify it...
    let mut f = good.clone();
    f[34] = 0x21;
    refused_for(v3_router(), &f, Reject::Version);
    let mut plain = good.clone();
    plain[40] = 0;
    plain[41] = 0;
    let c = csum(0, &plain[34..46]);
    plain[40..42].copy_from_slice(&c.to_be_bytes());
    refused_for(v3_router(), &plain, Reject::Checksum);
    // ...unless the router is configured with v3_checksum_as_v2 (which then refuses keepalived's).
    let as_v2 = || {
        started(
            Config::new(Version::V3, 51, LB2)
                .vip(VIP4, 24)
                .v3_checksum_as_v2(),
        )
    };
    accepted(as_v2(), &plain);
    refused_for(as_v2(), &good, Reject::Checksum);

    // IPv6: hop limit and checksum (with the IPv6 pseudo-header).
    let mut f = hex(V3_IPV6);
    f[21] = 64;
    refused_for(v6_router(), &f, Reject::Ttl);
    let mut f = hex(V3_IPV6);
    f[77] ^= 1;
    refused_for(v6_router(), &f, Reject::Checksum);
    let mut f = hex(V3_IPV6);
    f[20] = 6;
    refused_for(v6_router(), &f, Reject::NotVrrp);
    let mut f = hex(V3_IPV6);
    f[19] = 25;
    refused_for(v6_router(), &f, Reject::Truncated);
}

#[test]
fn unicast_routers_check_the_source_and_not_the_ttl() {
    // keepalived's advert sent to us (10.201.0.12) by unicast, TTL decremented by a router.
    let mut f = hex(V3);
    f[30..34].copy_from_slice(&[10, 201, 0, 12]);
    f[22] = 63;
    fix_ip(&mut f);
    fix_vrrp(&mut f);
    let peer = |addr: [u8; 4]| {
        started(
            Config::new(Version::V3, 51, LB2)
                .vip(VIP4, 24)
                .unicast_peer(IpAddr::V4(Ipv4Addr::from(addr)))
                .check_unicast_src(),
        )
    };
    accepted(peer([10, 201, 0, 11]), &f);
    refused_for(peer([10, 201, 0, 13]), &f, Reject::UnicastSrc);
    // And a multicast advert is not for a unicast router.
    refused_for(peer([10, 201, 0, 11]), &hex(V3), Reject::DstMismatch);
}

// ----- random input -----

/// Feed `frames` to `router` with a little time passing, and check the bookkeeping.
fn feed_all(router: &mut Router, frames: impl Iterator<Item = (Vec<u8>, Rx)>) -> u64 {
    let mut fed = 0u64;
    let mut now = Instant::from_millis(1);
    for (bytes, rx) in frames {
        router.handle_packet(now, &bytes, rx);
        fed += 1;
        now = now + Duration::from_micros(997);
        if router.poll_timeout().is_some_and(|t| t <= now) {
            router.handle_timeout(now);
        }
        while router.poll_action().is_some() {}
    }
    let c = router.counters();
    assert_eq!(
        c.adverts_received + c.rejected_total(),
        fed,
        "every packet accounted for once: {c:?}"
    );
    fed
}

fn random_bytes(rng: &mut Rng, max: u32) -> Vec<u8> {
    let len = rng.below(max) as usize;
    (0..len).map(|_| rng.next_u32() as u8).collect()
}

fn random_rx(rng: &mut Rng) -> Rx {
    match rng.below(3) {
        0 => Rx::Ethernet,
        1 => Rx::Ip,
        _ => Rx::Payload {
            src: IpAddr::V4(Ipv4Addr::from(rng.next_u32())),
            dst: if rng.below(2) == 0 {
                IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18))
            } else {
                LB2
            },
            hop_limit: [None, Some(255), Some(rng.next_u32() as u8)][rng.below(3) as usize],
        },
    }
}

#[test]
fn random_bytes_never_panic_and_are_all_counted() {
    let mut rng = Rng::new(0x5eed_0001);
    for mut router in [v2_router(), v3_router(), v6_router()] {
        let frames: Vec<(Vec<u8>, Rx)> = (0..20_000)
            .map(|_| {
                let rx = random_rx(&mut rng);
                (random_bytes(&mut rng, 160), rx)
            })
            .collect();
        feed_all(&mut router, frames.into_iter());
    }
}

#[test]
fn random_vrrp_behind_valid_headers_reaches_every_check() {
    // Valid Ethernet + IPv4 (TTL 255, protocol 112, right checksum), random VRRP message
    // whose first bytes are biased towards plausible values so that deep checks are hit.
    let mut rng = Rng::new(0x5eed_0002);
    let template = hex(V2);
    let mut router = v2_router();
    let frames: Vec<(Vec<u8>, Rx)> = (0..30_000)
        .map(|_| {
            let mut f = template[..34].to_vec();
            let mut msg = template[34..].to_vec();
            let len = [0, 7, 8, 12, 20, 20, 20, 21, 24, 28][rng.below(10) as usize];
            msg.resize(len, 0);
            for _ in 0..rng.below(3) {
                if !msg.is_empty() {
                    let i = rng.below(msg.len() as u32) as usize;
                    msg[i] = rng.next_u32() as u8;
                }
            }
            f.extend_from_slice(&msg);
            f[16..18].copy_from_slice(&((20 + msg.len()) as u16).to_be_bytes());
            fix_ip(&mut f);
            if rng.below(2) == 0 && msg.len() >= 8 {
                fix_vrrp(&mut f);
            }
            (f, Rx::Ethernet)
        })
        .collect();
    feed_all(&mut router, frames.into_iter());
    let c = router.counters();
    for r in [
        Reject::TooShort,
        Reject::Version,
        Reject::Length,
        Reject::PacketType,
        Reject::Checksum,
        Reject::VridMismatch,
        Reject::AddrCount,
        Reject::AuthTypeInvalid,
        Reject::AuthTypeMismatch,
        Reject::AuthFailure,
        Reject::IntervalMismatch,
        Reject::AddrList,
    ] {
        assert!(c.rejected(r) > 0, "{r:?} never hit: {c:?}");
    }
    assert!(c.adverts_received > 0);
}

#[test]
fn mutated_captures_never_panic_and_are_all_counted() {
    let mut rng = Rng::new(0x5eed_0003);
    for (text, mut router) in [(V2, v2_router()), (V3, v3_router()), (V3_IPV6, v6_router())] {
        let good = hex(text);
        let frames: Vec<(Vec<u8>, Rx)> = (0..20_000)
            .map(|_| {
                let mut f = good.clone();
                match rng.below(4) {
                    // Flip one to three bits.
                    0 | 1 => {
                        for _ in 0..=rng.below(3) {
                            let i = rng.below(f.len() as u32) as usize;
                            f[i] ^= 1 << rng.below(8);
                        }
                    }
                    // Cut or extend.
                    2 => {
                        let len = rng.below(f.len() as u32 + 16) as usize;
                        f.resize(len, rng.next_u32() as u8);
                    }
                    // Overwrite a byte with anything.
                    _ => {
                        let i = rng.below(f.len() as u32) as usize;
                        f[i] = rng.next_u32() as u8;
                    }
                }
                if rng.below(2) == 0 && f.len() >= 34 && f[12..14] == [0x08, 0x00] {
                    fix_ip(&mut f);
                }
                let rx = match rng.below(2) {
                    0 => Rx::Ethernet,
                    _ => {
                        f.drain(..f.len().min(14));
                        Rx::Ip
                    }
                };
                (f, rx)
            })
            .collect();
        let fed = feed_all(&mut router, frames.into_iter());
        let c = router.counters();
        // Flipping a bit of a checksummed packet almost always breaks it; a few flips land in
        // bits no check covers (IPv4 ID, TOS, Ethernet source, the v3 reserved bits, ...).
        assert!(c.adverts_received < fed / 2, "{c:?}");
        assert!(
            c.rejected(Reject::Checksum) > 0 && c.rejected(Reject::Truncated) > 0,
            "{c:?}"
        );
    }
}
