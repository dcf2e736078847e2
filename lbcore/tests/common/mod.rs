//! Shared helpers for the balancer integration tests: packet builders (etherparse) and
//! decoders used as an independent oracle.
#![allow(dead_code)]

use std::net::IpAddr;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use lbcore::balancer::{Frame, RxMeta};

pub const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 1];
pub const LB_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 1];

#[derive(Clone, Copy, Debug)]
pub struct Flags(pub &'static str);
pub const SYN: Flags = Flags("S");
pub const ACK: Flags = Flags("A");
pub const SYNACK: Flags = Flags("SA");
pub const FIN: Flags = Flags("FA");
pub const RST: Flags = Flags("R");
pub const PSH: Flags = Flags("PA");

/// A TCP packet src:sport -> dst:dport, as an Ethernet frame (eth = true) or bare IP.
pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: Flags, payload: &[u8], eth: bool) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let b = match (eth, s, d) {
        (true, IpAddr::V4(s), IpAddr::V4(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv4(s.octets(), d.octets(), 64)
        }
        (true, IpAddr::V6(s), IpAddr::V6(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv6(s.octets(), d.octets(), 64)
        }
        (false, IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (false, IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut t = b.tcp(sport, dport, 1000, 64240);
    for f in flags.0.chars() {
        t = match f {
            'S' => t.syn(),
            'A' => t.ack(1),
            'F' => t.fin(),
            'R' => t.rst(),
            'P' => t.psh(),
            _ => t,
        };
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).unwrap();
    out
}

/// A UDP datagram.
pub fn udp(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8], eth: bool) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let b = match (eth, s, d) {
        (true, IpAddr::V4(s), IpAddr::V4(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv4(s.octets(), d.octets(), 64)
        }
        (true, IpAddr::V6(s), IpAddr::V6(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv6(s.octets(), d.octets(), 64)
        }
        (false, IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (false, IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut out = Vec::new();
    b.udp(sport, dport).write(&mut out, payload).unwrap();
    out
}

pub fn frame(bytes: &[u8], eth: bool) -> Frame<[u8; 2048]> {
    Frame::copy_from(bytes, if eth { RxMeta::ETHERNET } else { RxMeta::IP }).unwrap()
}

/// What an independent decoder (etherparse) sees in an output packet, after checking every
/// checksum against a full recompute.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

pub fn decode(bytes: &[u8], eth: bool) -> Seen {
    let p = if eth {
        SlicedPacket::from_ethernet(bytes)
    } else {
        SlicedPacket::from_ip(bytes)
    }
    .expect("etherparse decodes the output");
    let (src, dst): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
            )
        }
        Some(NetSlice::Ipv6(v6)) => (
            IpAddr::V6(v6.header().source_addr()),
            IpAddr::V6(v6.header().destination_addr()),
        ),
        _ => panic!("no IP layer"),
    };
    let (sport, dport) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let payload = t.payload();
            let h = t.to_header();
            let want = match &p.net {
                Some(NetSlice::Ipv4(v4)) => h.calc_checksum_ipv4(&v4.header().to_header(), payload).unwrap(),
                Some(NetSlice::Ipv6(v6)) => h.calc_checksum_ipv6(&v6.header().to_header(), payload).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(h.checksum, want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            if !(h.checksum == 0 && matches!(p.net, Some(NetSlice::Ipv4(_)))) {
                let want = match &p.net {
                    Some(NetSlice::Ipv4(v4)) => h
                        .calc_checksum_ipv4(&v4.header().to_header(), u.payload())
                        .unwrap(),
                    Some(NetSlice::Ipv6(v6)) => h
                        .calc_checksum_ipv6(&v6.header().to_header(), u.payload())
                        .unwrap(),
                    _ => unreachable!(),
                };
                assert_eq!(h.checksum, want, "UDP checksum");
            }
            (u.source_port(), u.destination_port())
        }
        _ => (0, 0),
    };
    Seen {
        src,
        dst,
        sport,
        dport,
    }
}

pub fn seen(src: &str, sport: u16, dst: &str, dport: u16) -> Seen {
    Seen {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        sport,
        dport,
    }
}
