//! Bad input: `wire::parse` must refuse with a reason or return a `Packet` whose offsets all
//! lie within the slice, and no `forward` function may panic on any `Ok` packet, whatever the
//! bytes. Inputs: every truncation of real frames of each kind, random garbage up to 1600
//! bytes (raw, and with plausible headers so that parsing gets past the IPv4 checksum), and
//! random byte mutations of valid frames (with and without the IPv4 header checksum fixed
//! up afterwards).

#[path = "wire_gen.rs"]
mod wire_gen;

use std::net::IpAddr;

use lbcore::forward::{self, Encap, Endpoint};
use lbcore::service::{Family, TunnelType};
use lbcore::wire::{self, Fragment, HEADROOM, LinkKind, Packet, checksum};
use wire_gen::*;

/// Checks the guarantees of an `Ok` parse of `data`.
fn check_invariants(data: &[u8], link: LinkKind, p: &Packet) {
    let (l3, l4, pl, end) = (
        usize::from(p.l3),
        usize::from(p.l4),
        usize::from(p.payload),
        usize::from(p.ip_end),
    );
    assert!(
        l3 <= l4 && l4 <= pl && pl <= end && end <= data.len(),
        "{p:?} in {} bytes",
        data.len()
    );
    assert_eq!(p.link, link);
    if link == LinkKind::Ip {
        assert_eq!(l3, 0);
    } else {
        assert!([14, 18, 22].contains(&l3), "{p:?}");
    }
    let (version, hlen) = match p.family {
        Family::V4 => (4, 20),
        Family::V6 => (6, 40),
    };
    assert_eq!(data[l3] >> 4, version);
    assert!(l4 >= l3 + hlen);
    assert_eq!(p.src.is_ipv4(), p.family == Family::V4);
    assert_eq!(p.dst.is_ipv4(), p.family == Family::V4);
    if p.family == Family::V4 {
        assert_eq!(
            checksum::checksum(&data[l3..l4]),
            0,
            "IPv4 header checksum verified"
        );
    }
    let ported = matches!(p.proto, 6 | 17) && p.frag != Fragment::NonFirst;
    if !ported {
        assert_eq!((p.sport, p.dport), (0, 0));
    }
    if p.proto != 6 || p.frag == Fragment::NonFirst {
        assert_eq!(p.tcp_flags, 0);
    }
    if ported {
        assert!(pl - l4 >= if p.proto == 6 { 20 } else { 8 });
    }
    if let Some(icmp) = p.icmp {
        assert!(matches!((p.family, p.proto), (Family::V4, 1) | (Family::V6, 58)));
        assert_eq!(pl, l4 + 8);
        if let Some(q) = icmp.error {
            let (ql3, ql4) = (usize::from(q.l3), usize::from(q.l4));
            assert!(ql3 == l4 + 8 && ql3 + hlen <= ql4 && ql4 <= end, "{q:?}");
            assert_eq!(data[ql3] >> 4, version);
            assert_eq!(q.src.is_ipv4(), p.family == Family::V4);
            if !q.has_ports(p.ip_end) {
                assert_eq!((q.sport, q.dport), (0, 0));
            }
        }
    }
}

fn any_endpoint(rng: &mut Rng, family: Family) -> Option<Endpoint> {
    match rng.below(4) {
        0 => None,
        // Occasionally of the other family: must be refused, not trusted.
        1 => Some(Endpoint {
            addr: rng.addr(match family {
                Family::V4 => Family::V6,
                Family::V6 => Family::V4,
            }),
            port: rng.u16(),
        }),
        _ => Some(Endpoint {
            addr: rng.addr(family),
            port: rng.u16(),
        }),
    }
}

/// Calls every forward function on (copies of) `data` parsed as `p`. They may refuse, but
/// must not panic nor write anything when they refuse; when `p` is `data`'s own parse and
/// they succeed, the result must parse back to the updated `Packet`.
fn exercise_forward(rng: &mut Rng, data: &[u8], link: LinkKind, p: &Packet, own: bool) {
    let family = p.family;

    let mut d = data.to_vec();
    let _ = forward::set_macs(&mut d, p, [1; 6], [2; 6]);

    let mut d = data.to_vec();
    let mut q = *p;
    let (src, dst) = (any_endpoint(rng, family), any_endpoint(rng, family));
    if forward::rewrite(&mut d, &mut q, src, dst).is_ok() {
        assert!(
            !own || wire::parse(&d, link) == Ok(q),
            "rewrite keeps the Packet in step"
        );
    } else {
        assert_eq!(d, data, "a refused rewrite writes nothing");
    }

    let mut d = data.to_vec();
    let mut q = *p;
    let addr = |rng: &mut Rng| any_endpoint(rng, family).map(|e| e.addr);
    let (os, od) = (addr(rng), addr(rng));
    let (is, id) = (any_endpoint(rng, family), any_endpoint(rng, family));
    if forward::rewrite_icmp_error(&mut d, &mut q, os, od, is, id).is_ok() {
        assert!(
            !own || wire::parse(&d, link) == Ok(q),
            "ICMP translation keeps the Packet in step"
        );
    } else {
        assert_eq!(d, data, "a refused translation writes nothing");
    }

    let outer = rng.family();
    let kind = if rng.chance(2) {
        TunnelType::Ipip
    } else {
        TunnelType::Gue { port: rng.u16() }
    };
    let eth = rng.chance(2).then_some(([3; 6], [4; 6]));
    let src: IpAddr = rng.addr(outer);
    let dst_family = if rng.chance(20) { rng.family() } else { outer };
    let dst: IpAddr = rng.addr(dst_family);
    let encap = Encap {
        kind,
        src,
        dst,
        udp_sport: rng.u16(),
        eth,
    };
    let headroom = if rng.chance(4) {
        rng.below(HEADROOM)
    } else {
        HEADROOM
    };
    let mut buf = vec![0u8; headroom + data.len()];
    buf[headroom..].copy_from_slice(data);
    let copy = buf.clone();
    match forward::encapsulate(&mut buf, headroom, data.len(), p, &encap) {
        Ok((s, l)) if own => {
            let out_link = if eth.is_some() {
                LinkKind::Ethernet
            } else {
                LinkKind::Ip
            };
            let o = wire::parse(&buf[s..s + l], out_link).expect("the encapsulated packet parses");
            assert_eq!((o.src, o.dst), (src, dst));
        }
        Ok(_) => {}
        Err(_) => assert_eq!(buf, copy, "a refused encapsulation writes nothing"),
    }
}

/// Parses `data` (and every forward function on it if it parses).
fn run(rng: &mut Rng, data: &[u8], link: LinkKind) -> Result<Packet, wire::ParseError> {
    let r = wire::parse(data, link);
    match &r {
        Ok(p) => {
            check_invariants(data, link, p);
            exercise_forward(rng, data, link, p, true);
        }
        Err(e) => assert!(e.index() < wire::ParseError::COUNT && !e.name().is_empty()),
    }
    r
}

/// Real frames of every kind the generator makes, small payloads so that the exhaustive
/// truncation loop stays quick.
fn sample_frames(rng: &mut Rng) -> Vec<(Vec<u8>, LinkKind)> {
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        for l4 in [L4::Tcp, L4::Udp] {
            for eth in [false, true] {
                for _ in 0..3 {
                    let mut spec = Spec::random(rng, family, l4, eth);
                    spec.payload.truncate(rng.below(120));
                    out.push((spec.build(), spec.link()));
                }
                let e = icmp_error(rng, family, l4, eth);
                out.push((e.frame, e.link));
            }
        }
    }
    out
}

#[test]
fn every_truncation_of_real_frames() {
    let mut rng = Rng::new(0xbad_0001);
    for (frame, link) in sample_frames(&mut rng) {
        assert!(run(&mut rng, &frame, link).is_ok(), "the whole frame parses");
        for len in 0..frame.len() {
            let _ = run(&mut rng, &frame[..len], link);
        }
    }
}

#[test]
fn random_garbage() {
    // Pure noise rarely gets past the IPv4 header checksum; the next test goes deeper.
    let mut rng = Rng::new(0xbad_0002);
    for i in 0..20_000 {
        let len = if i % 10 == 0 {
            rng.below(1601)
        } else {
            rng.below(120)
        };
        let data = rng.bytes(len);
        let link = if rng.chance(2) {
            LinkKind::Ethernet
        } else {
            LinkKind::Ip
        };
        let _ = run(&mut rng, &data, link);
    }
}

/// Random bytes behind a plausible IP header: correct version, lengths that are sometimes
/// consistent, protocols of interest, and a correct IPv4 header checksum, so that parsing
/// reaches the transport, extension-header and ICMP-quote code with hostile contents.
#[test]
fn garbage_behind_plausible_headers() {
    let mut rng = Rng::new(0xbad_0003);
    let mut reached = [0usize; 2];
    for i in 0..30_000 {
        let len = if i % 10 == 0 {
            rng.below(1601)
        } else {
            rng.below(200)
        };
        let mut d = rng.bytes(len.max(60));
        let family = rng.family();
        let l3 = if rng.chance(2) { 0 } else { 14 };
        if l3 == 14 {
            let ty: u16 = if family == Family::V4 { 0x0800 } else { 0x86dd };
            d[12..14].copy_from_slice(&ty.to_be_bytes());
        }
        let ip_len = (d.len() - l3).saturating_sub(if rng.chance(4) { rng.below(8) } else { 0 });
        let protos = [1u8, 6, 17, 58, 0, 43, 44, 60, 4, 41];
        let proto = protos[rng.below(protos.len())];
        match family {
            Family::V4 => {
                let ihl = if rng.chance(4) { 5 + rng.below(3) } else { 5 };
                d[l3] = 0x40 | ihl as u8;
                d[l3 + 2..l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
                if rng.chance(2) {
                    // Mostly unfragmented, sometimes first or later fragments.
                    d[l3 + 6] &= if rng.chance(3) { 0x3f } else { 0x40 };
                    d[l3 + 7] = if d[l3 + 6] & 0x1f != 0 { d[l3 + 7] } else { 0 };
                }
                d[l3 + 9] = proto;
                d[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
                let c = checksum::checksum(&d[l3..l3 + ihl * 4]);
                d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
                // An ICMP error quoting an IPv4 header, sometimes.
                let q = l3 + ihl * 4 + 8;
                if proto == 1 && rng.chance(2) && q + 1 < d.len() {
                    d[l3 + ihl * 4] = [3, 11, 12, 4][rng.below(4)];
                    d[q] = 0x45;
                }
            }
            Family::V6 => {
                d[l3] = 0x60 | (d[l3] & 0x0f);
                d[l3 + 4..l3 + 6].copy_from_slice(&(ip_len.saturating_sub(40) as u16).to_be_bytes());
                d[l3 + 6] = proto;
                if proto == 58 && rng.chance(2) && l3 + 49 < d.len() {
                    d[l3 + 40] = 1 + rng.below(4) as u8;
                    d[l3 + 48] = 0x60;
                }
            }
        }
        let link = if l3 == 0 { LinkKind::Ip } else { LinkKind::Ethernet };
        if run(&mut rng, &d, link).is_ok() {
            reached[usize::from(family == Family::V6)] += 1;
        }
    }
    // Sanity: the generator does get packets through for both families.
    assert!(reached[0] > 1000 && reached[1] > 1000, "{reached:?}");
}

#[test]
fn random_mutations_of_valid_frames() {
    let mut rng = Rng::new(0xbad_0004);
    let frames = sample_frames(&mut rng);
    for i in 0..30_000 {
        let (frame, link) = &frames[i % frames.len()];
        let mut d = frame.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(d.len());
            d[at] = if rng.chance(2) {
                rng.u8()
            } else {
                d[at] ^ (1 << rng.below(8))
            };
        }
        if rng.chance(8) {
            d.truncate(rng.below(d.len() + 1));
        }
        // Half the time, repair the IPv4 header checksum so that the mutation gets past it.
        // `parse(frame)` always succeeds: the frames are valid.
        let p = wire::parse(frame, *link).unwrap();
        if rng.chance(2) && p.family == Family::V4 {
            let l3 = usize::from(p.l3);
            let ihl = d.get(l3).map_or(0, |b| usize::from(b & 0x0f) * 4);
            if ihl >= 20 && l3 + ihl <= d.len() {
                d[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
                let c = checksum::checksum(&d[l3..l3 + ihl]);
                d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
        }
        let _ = run(&mut rng, &d, *link);
    }
}

/// Packets that do not describe the slice handed to the forward functions (a caller bug) are
/// refused, not trusted.
#[test]
fn forward_functions_refuse_a_foreign_packet() {
    let mut rng = Rng::new(0xbad_0005);
    let frames = sample_frames(&mut rng);
    for (i, (a, alink)) in frames.iter().enumerate() {
        let pa = wire::parse(a, *alink).unwrap();
        for (b, _) in frames.iter().skip(i % 7).step_by(5) {
            for cut in [b.len(), b.len() / 2, 10] {
                let b = &b[..cut.min(b.len())];
                exercise_forward(&mut rng, b, *alink, &pa, false);
            }
        }
    }
}
