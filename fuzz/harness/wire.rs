//! The `wire` fuzz target: the frame parser (`lbcore::wire::parse`) against etherparse, and the
//! VRRP parser against its emitter (`lbcore::vrrp::wire`: parse -> emit -> parse).
//!
//! Input layout: byte 0 selects the parser (bit 0: link kind for the frame parser / `Rx::Ip`
//! instead of `Rx::Ethernet` for VRRP; bit 1: `v3_checksum_as_v2`), the rest is the bytes.
//! Both parsers run on every input.
//!
//! Checked, frame parser: no panic; every offset of an accepted packet is ordered and inside
//! the slice (`l3 <= l4 <= payload <= ip_end <= len`); the addresses, protocol and TTL agree
//! with etherparse's reading of the IP header at `l3`; the ports are the first four bytes at
//! `l4`; an accepted IPv4 header has a valid checksum.
//!
//! Checked, VRRP: no panic; an accepted advert is re-emitted from its fields
//! (`emit_advert`) and the emitted frame parses back to the same fields with a valid checksum;
//! when the original is a canonical advert (right checksum, type 1, reserved bits 0, known
//! authentication), the emitted message is byte-for-byte the original (the checksum field up to
//! the two encodings of one's-complement zero).

#![allow(dead_code)]

use std::net::IpAddr;

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice};
use lbcore::service::Family;
use lbcore::vrrp::wire::{
    AUTH_NONE, AUTH_PASS, Advert, AdvertRepr, TYPE_ADVERT, TxEnvelope, emit_advert, parse_envelope,
};
use lbcore::vrrp::{Auth, Rx, Version};
use lbcore::wire::{Fragment, LinkKind, parse};

/// The frame parser's properties.
pub fn frame(data: &[u8], link: LinkKind) {
    let Ok(p) = parse(data, link) else {
        return;
    };
    let (l3, l4, pl, end) = (
        usize::from(p.l3),
        usize::from(p.l4),
        usize::from(p.payload),
        usize::from(p.ip_end),
    );
    assert!(
        l3 <= l4 && l4 <= pl && pl <= end && end <= data.len(),
        "offsets out of order or outside the frame: {p:?} len {}",
        data.len()
    );
    let ip = &data[l3..end];
    match p.family {
        Family::V4 => {
            let h = Ipv4HeaderSlice::from_slice(ip).expect("etherparse reads an accepted IPv4 header");
            assert_eq!(p.src, IpAddr::V4(h.source_addr()));
            assert_eq!(p.dst, IpAddr::V4(h.destination_addr()));
            assert_eq!(p.ttl, h.ttl());
            assert_eq!(p.proto, h.protocol().0);
            // Over the raw bytes: etherparse's Ipv4Header drops the reserved flag bit.
            let sum = etherparse::checksum::Sum16BitWords::new()
                .add_slice(h.slice())
                .ones_complement();
            assert_eq!(sum, 0, "accepted a bad IPv4 header checksum");
            assert_eq!(
                usize::from(h.total_len()),
                end - l3,
                "ip_end follows the total length"
            );
        }
        Family::V6 => {
            let h = Ipv6HeaderSlice::from_slice(ip).expect("etherparse reads an accepted IPv6 header");
            assert_eq!(p.src, IpAddr::V6(h.source_addr()));
            assert_eq!(p.dst, IpAddr::V6(h.destination_addr()));
            assert_eq!(p.ttl, h.hop_limit());
            assert_eq!(
                40 + usize::from(h.payload_length()),
                end - l3,
                "ip_end follows the payload length"
            );
        }
    }
    if p.has_ports() {
        let port = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
        assert!(l4 + 4 <= end, "ports outside the packet");
        assert_eq!((p.sport, p.dport), (port(l4), port(l4 + 2)));
    } else if matches!(p.frag, Fragment::NonFirst) {
        assert_eq!((p.sport, p.dport), (0, 0));
    }
}

/// The VRRP parse -> emit -> parse round trip.
pub fn vrrp(data: &[u8], rx: Rx, v3_as_v2: bool) {
    let Ok((env, msg)) = parse_envelope(data, rx) else {
        return;
    };
    let family = Family::of(&env.src);
    let Ok(adv) = Advert::parse(msg, family) else {
        return;
    };
    let addrs: Vec<IpAddr> = adv.addresses().collect();
    assert_eq!(
        addrs.len(),
        usize::from(adv.count),
        "count addresses in a parsed advert"
    );
    let auth = match (adv.version, adv.auth_type) {
        (Version::V3, _) | (Version::V2, AUTH_NONE) => Auth::None,
        (Version::V2, AUTH_PASS) => Auth::Pass(adv.auth_data),
        _ => return, // AH or unknown: not something we emit
    };
    let repr = AdvertRepr {
        version: adv.version,
        vrid: adv.vrid,
        priority: adv.priority,
        interval: adv.interval,
        addrs: &addrs,
        auth,
    };
    let tx = TxEnvelope {
        src_mac: [0x02, 0, 0, 0, 0, 1],
        dst_mac: [0x01, 0x00, 0x5e, 0, 0, 0x12],
        src: env.src,
        dst: env.dst,
        ip_id: 1,
        flow_label: 0,
        v3_checksum_as_v2: v3_as_v2,
    };
    let mut buf = vec![0u8; 14 + 40 + msg.len() + 16];
    let Some(n) = emit_advert(&repr, &tx, &mut buf) else {
        // Only a family mismatch refuses: the parsed envelope has one family throughout.
        assert!(
            Family::of(&env.dst) != family,
            "emit_advert refused a parsed advert: {adv:?}"
        );
        return;
    };
    let (env2, msg2) = parse_envelope(&buf[..n], Rx::Ethernet).expect("an emitted advert parses");
    assert_eq!((env2.src, env2.dst), (env.src, env.dst));
    let adv2 = Advert::parse(msg2, family).expect("an emitted advert parses");
    assert_eq!(
        (
            adv2.version,
            adv2.kind,
            adv2.vrid,
            adv2.priority,
            adv2.count,
            adv2.interval
        ),
        (
            adv.version,
            TYPE_ADVERT,
            adv.vrid,
            adv.priority,
            adv.count,
            adv.interval
        )
    );
    assert_eq!(adv2.addresses().collect::<Vec<_>>(), addrs);
    assert!(
        adv2.checksum_ok(&env2, v3_as_v2),
        "an emitted advert has a valid checksum"
    );
    let canonical = adv.checksum_ok(&env, v3_as_v2)
        && adv.kind == TYPE_ADVERT
        && adv.reserved == 0
        && (adv.version == Version::V3 || adv.auth_type == AUTH_PASS || adv.auth_data == [0; 8]);
    if canonical {
        // The checksum field may differ between the two encodings of one's-complement zero
        // (0x0000 and 0xffff both verify); everything else is byte for byte.
        let (c1, c2) = (adv.checksum, adv2.checksum);
        assert!(
            c1 == c2 || (c1 | c2 == 0xffff && c1 & c2 == 0),
            "checksums {c1:#06x} and {c2:#06x} of one message"
        );
        assert_eq!(
            (&msg2[..6], &msg2[8..]),
            (&msg[..6], &msg[8..]),
            "a canonical advert re-emits byte for byte"
        );
    }
}

/// The `wire` target.
pub fn wire(data: &[u8]) {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let ip = ctl & 1 == 1;
    frame(bytes, if ip { LinkKind::Ip } else { LinkKind::Ethernet });
    vrrp(bytes, if ip { Rx::Ip } else { Rx::Ethernet }, ctl & 2 == 2);
}
