//! Random packet generator shared by the wire tests (`wire_checksum.rs`,
//! `wire_robustness.rs` include it with `#[path]`). Packets are built with etherparse's
//! `PacketBuilder`, never with lbcore, so that lbcore is checked against an independent
//! implementation. Randomness comes from a small deterministic PRNG (SplitMix64), so every
//! failure reproduces from its seed.
//!
//! Compiled on its own, this file is a test target that checks the generator itself.
#![allow(dead_code)]

use std::net::IpAddr;

use etherparse::{
    IpDscp, IpEcn, IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv4Options, Ipv6Extensions,
    Ipv6FlowLabel, Ipv6Header, Ipv6RawExtHeader, PacketBuilder, PacketBuilderStep, SlicedPacket,
    TcpOptionElement, VlanId,
};
use lbcore::service::Family;
use lbcore::wire::LinkKind;

/// SplitMix64: tiny, fast, good enough to drive test generation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    pub fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }
    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }
    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
    pub fn addr(&mut self, family: Family) -> IpAddr {
        match family {
            Family::V4 => IpAddr::from(self.u32().to_be_bytes()),
            Family::V6 => {
                IpAddr::from((u128::from(self.next_u64()) << 64 | u128::from(self.next_u64())).to_be_bytes())
            }
        }
    }
    pub fn family(&mut self) -> Family {
        if self.chance(2) { Family::V4 } else { Family::V6 }
    }
}

pub const MAC_SRC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 1];
pub const MAC_DST: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 1];

pub fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("expected IPv4"),
    }
}

pub fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => panic!("expected IPv6"),
    }
}

/// Transport of a generated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    pub fn number(self) -> u8 {
        match self {
            L4::Tcp => 6,
            L4::Udp => 17,
        }
    }
}

/// Everything about a generated TCP/UDP packet.
#[derive(Clone, Debug)]
pub struct Spec {
    pub family: Family,
    pub l4: L4,
    /// Ethernet framing, with 0, 1 or 2 VLAN tags.
    pub eth: bool,
    pub vlans: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    /// DSCP << 2 | ECN (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    pub df: bool,
    pub ident: u16,
    pub flow: u32,
    /// IPv4 options (8 bytes of NOPs) / IPv6 hop-by-hop + destination options headers.
    pub ip_opts: bool,
    pub tcp_opts: bool,
    pub tcp_flags: u8,
    pub payload: Vec<u8>,
}

impl Spec {
    pub fn random(rng: &mut Rng, family: Family, l4: L4, eth: bool) -> Spec {
        let plen = if rng.chance(8) {
            rng.below(16)
        } else {
            rng.below(1401)
        };
        Spec {
            family,
            l4,
            eth,
            vlans: if eth { rng.below(3) as u8 } else { 0 },
            src: rng.addr(family),
            dst: rng.addr(family),
            sport: rng.u16(),
            dport: rng.u16(),
            ttl: rng.u8().max(1),
            tos: rng.u8(),
            df: rng.chance(2),
            ident: rng.u16(),
            flow: rng.u32() & 0xf_ffff,
            ip_opts: rng.chance(4),
            tcp_opts: rng.chance(2),
            tcp_flags: rng.u8() & 0x1f,
            payload: rng.bytes(plen),
        }
    }

    pub fn link(&self) -> LinkKind {
        if self.eth {
            LinkKind::Ethernet
        } else {
            LinkKind::Ip
        }
    }

    pub fn ip_headers(&self, proto: u8) -> IpHeaders {
        ip_headers(
            self.family,
            self.src,
            self.dst,
            proto,
            self.ttl,
            self.tos,
            self.df,
            self.ident,
            self.flow,
            self.ip_opts,
        )
    }

    /// The frame's bytes.
    pub fn build(&self) -> Vec<u8> {
        let b = framing(self.eth, self.vlans, self.ip_headers(self.l4.number()));
        let mut out = Vec::new();
        match self.l4 {
            L4::Tcp => {
                let mut t = b.tcp(self.sport, self.dport, u32::from(self.ident) * 7919, 65535);
                let f = self.tcp_flags;
                if f & 1 != 0 {
                    t = t.fin();
                }
                if f & 2 != 0 {
                    t = t.syn();
                }
                if f & 4 != 0 {
                    t = t.rst();
                }
                if f & 8 != 0 {
                    t = t.psh();
                }
                if f & 16 != 0 {
                    t = t.ack(0x0102_0304);
                }
                if self.tcp_opts {
                    use TcpOptionElement::*;
                    t = t
                        .options(&[MaximumSegmentSize(1460), Noop, WindowScale(7)])
                        .unwrap();
                }
                t.write(&mut out, &self.payload).unwrap();
            }
            L4::Udp => b
                .udp(self.sport, self.dport)
                .write(&mut out, &self.payload)
                .unwrap(),
        }
        out
    }
}

/// IP headers with every field the tests care about set explicitly.
#[allow(clippy::too_many_arguments)]
pub fn ip_headers(
    family: Family,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
    tos: u8,
    df: bool,
    ident: u16,
    flow: u32,
    opts: bool,
) -> IpHeaders {
    match family {
        Family::V4 => {
            let h = Ipv4Header {
                dscp: IpDscp::try_new(tos >> 2).unwrap(),
                ecn: IpEcn::try_new(tos & 3).unwrap(),
                identification: ident,
                dont_fragment: df,
                time_to_live: ttl,
                protocol: IpNumber(proto),
                source: v4(src),
                destination: v4(dst),
                options: if opts {
                    Ipv4Options::try_from(&[1u8; 8][..]).unwrap()
                } else {
                    Ipv4Options::default()
                },
                ..Default::default()
            };
            IpHeaders::Ipv4(h, Ipv4Extensions::default())
        }
        Family::V6 => {
            let h = Ipv6Header {
                traffic_class: tos,
                flow_label: Ipv6FlowLabel::try_new(flow).unwrap(),
                hop_limit: ttl,
                next_header: IpNumber(proto),
                source: v6(src),
                destination: v6(dst),
                ..Default::default()
            };
            let mut exts = Ipv6Extensions::default();
            if opts {
                // PadN options filling 6 bytes: the smallest legal option headers.
                let pad = [1u8, 4, 0, 0, 0, 0];
                exts.hop_by_hop_options = Some(Ipv6RawExtHeader::new_raw(IpNumber(0), &pad).unwrap());
                exts.destination_options = Some(Ipv6RawExtHeader::new_raw(IpNumber(0), &pad).unwrap());
            }
            IpHeaders::Ipv6(h, exts)
        }
    }
}

/// A builder at the IP step, with Ethernet (and VLAN tags) or bare.
pub fn framing(eth: bool, vlans: u8, ip: IpHeaders) -> PacketBuilderStep<IpHeaders> {
    let e = || PacketBuilder::ethernet2(MAC_SRC, MAC_DST);
    match (eth, vlans) {
        (false, _) => PacketBuilder::ip(ip),
        (true, 0) => e().ip(ip),
        (true, 1) => e().single_vlan(VlanId::try_new(100).unwrap()).ip(ip),
        (true, _) => e()
            .double_vlan(VlanId::try_new(5).unwrap(), VlanId::try_new(6).unwrap())
            .ip(ip),
    }
}

/// An ICMP / ICMPv6 error about a TCP/UDP packet.
pub struct IcmpError {
    pub frame: Vec<u8>,
    pub link: LinkKind,
    /// The complete packet the error is about (bare IP).
    pub original: Spec,
    pub original_bytes: Vec<u8>,
    /// How many bytes of it the error quotes.
    pub quote_len: usize,
    pub typ: u8,
    pub code: u8,
}

impl IcmpError {
    pub fn quote_complete(&self) -> bool {
        self.quote_len == self.original_bytes.len()
    }
}

/// A random error type/code with the bytes 5..8 that etherparse would write for it (so that
/// its checksum recomputation, which re-encodes the header, is a fair oracle).
fn icmp_kind(rng: &mut Rng, family: Family) -> (u8, u8, [u8; 4]) {
    match (family, rng.below(4)) {
        (Family::V4, 0) => (3, 4, [0, 0, 0x05, 0x78]),
        (Family::V4, 1) => (3, rng.below(4) as u8, [0; 4]),
        (Family::V4, 2) => (11, rng.below(2) as u8, [0; 4]),
        (Family::V4, _) => (12, 0, [20, 0, 0, 0]),
        (Family::V6, 0) => (2, 0, 1280u32.to_be_bytes()),
        (Family::V6, 1) => (1, rng.below(7) as u8, [0; 4]),
        (Family::V6, 2) => (3, rng.below(2) as u8, [0; 4]),
        (Family::V6, _) => (4, rng.below(3) as u8, 40u32.to_be_bytes()),
    }
}

/// An ICMP error from a random router to `original.src`, quoting some or all of `original`.
pub fn icmp_error(rng: &mut Rng, family: Family, l4: L4, eth: bool) -> IcmpError {
    let mut original = Spec::random(rng, family, l4, false);
    // Keep the quote within the minimum MTU as routers do.
    original.payload.truncate(rng.below(400));
    let original_bytes = original.build();
    let ip_hlen = match family {
        Family::V4 => 20 + if original.ip_opts { 8 } else { 0 },
        Family::V6 => 40 + if original.ip_opts { 16 } else { 0 },
    };
    let quote_len = match rng.below(4) {
        0 => original_bytes.len(),
        1 => ip_hlen + 8,
        _ => ip_hlen + rng.below(original_bytes.len() - ip_hlen + 1),
    };
    let router = rng.addr(family);
    let (typ, code, rest) = icmp_kind(rng, family);
    let proto = match family {
        Family::V4 => 1,
        Family::V6 => 58,
    };
    let vlans = if eth { rng.below(3) as u8 } else { 0 };
    let ip = ip_headers(
        family,
        router,
        original.src,
        proto,
        rng.u8().max(1),
        0,
        false,
        rng.u16(),
        0,
        false,
    );
    let b = framing(eth, vlans, ip);
    let mut frame = Vec::new();
    let quote = &original_bytes[..quote_len];
    match family {
        Family::V4 => b.icmpv4_raw(typ, code, rest).write(&mut frame, quote).unwrap(),
        Family::V6 => b.icmpv6_raw(typ, code, rest).write(&mut frame, quote).unwrap(),
    }
    IcmpError {
        frame,
        link: if eth { LinkKind::Ethernet } else { LinkKind::Ip },
        original,
        original_bytes,
        quote_len,
        typ,
        code,
    }
}

/// Decodes a frame with etherparse.
pub fn sliced(frame: &[u8], link: LinkKind) -> SlicedPacket<'_> {
    match link {
        LinkKind::Ethernet => SlicedPacket::from_ethernet(frame).expect("etherparse decodes the frame"),
        LinkKind::Ip => SlicedPacket::from_ip(frame).expect("etherparse decodes the packet"),
    }
}

#[test]
fn generator_builds_frames_lbcore_and_etherparse_both_read() {
    let mut rng = Rng::new(1);
    for i in 0..400 {
        let family = if i % 2 == 0 { Family::V4 } else { Family::V6 };
        let l4 = if i % 4 < 2 { L4::Tcp } else { L4::Udp };
        let spec = Spec::random(&mut rng, family, l4, i % 8 < 4);
        let frame = spec.build();
        let _ = sliced(&frame, spec.link());
        let p = lbcore::wire::parse(&frame, spec.link()).unwrap();
        assert_eq!(
            (p.src, p.dst, p.sport, p.dport, p.ttl),
            (spec.src, spec.dst, spec.sport, spec.dport, spec.ttl)
        );
        let e = icmp_error(&mut rng, family, l4, i % 3 == 0);
        let _ = sliced(&e.frame, e.link);
        let p = lbcore::wire::parse(&e.frame, e.link).unwrap();
        let q = p.icmp.unwrap().error.unwrap();
        assert_eq!((q.src, q.dst), (e.original.src, e.original.dst));
    }
}
