//! The `pipeline` and `conn_model` fuzz targets: the whole data plane under a fuzzer-chosen
//! configuration and a sequence of frames, replies, time steps, expiry and configuration
//! changes, with a model of what the balancer owes each flow checked after every step.
//!
//! Checked after every packet:
//! - no panic; exactly one verdict, counted once: `rx = forwarded + passed + dropped + consumed`
//!   (the harness counts `Consumed` itself: the core has no counter for it), and `dropped`
//!   is the sum of the per-reason counters;
//! - the connection table never holds more than its capacity, and lists exactly `len()` entries;
//! - a forwarded frame decodes with etherparse (the independent oracle) and every checksum in it
//!   is right: the IPv4 header checksum always, the TCP/UDP checksum when the input's was (the
//!   harness builds its frames with valid checksums; raw fuzz frames only get the IPv4 header
//!   check), recursively through IPIP / IPv6-in-IPv6 / GUE tunnels;
//! - a client packet of a flow that has a live (unexpired, non-template) connection entry, and is
//!   not a SYN (a SYN may reuse a closing entry), goes to that entry's destination;
//! - a NAT / FULLNAT reply from a real server maps back to the original client: source = the
//!   virtual address and port the client used, destination = the client;
//! - FULLNAT never hands out a (local address, local port, server, server port) that a live
//!   connection of another client still holds;
//! - at the end, everything expires with bounded `expire` calls, the table is empty, and a new
//!   FULLNAT connection finds a local port again (no port leaked).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Ipv4HeaderSlice, Ipv6HeaderSlice, PacketBuilder, TcpHeaderSlice, UdpHeaderSlice};
use lbcore::balancer::{Balancer, BalancerConfig, DropReason, Frame, RxMeta, Verdict};
use lbcore::service::{
    DestConfig, Family, Forward, Netmask, Protocol, Sched, SchedFlags, ServiceConfig, ServiceKey, TunnelType,
};
use lbcore::time::{Duration, Instant};
use lbcore::wire::LinkKind;

use crate::input::Input;

/// `FUZZ_TRACE=1` prints every step (to replay a crash: run the target binary on the file).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

const LB_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [0x02, 0xcc, 0, 0, 0, 1];
const RS_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 9];
/// GUE tunnel port used by the configurations.
const GUE_PORT: u16 = 6080;
const MAX_OPS: usize = 96;

const VIPS4: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)];
const VIPS6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100),
    Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x101),
];
const PORTS: [u16; 4] = [80, 53, 443, 0];
const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);
const LOCAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1);

fn rip(family: Family, i: u8) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1 + i)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 1 + u16::from(i))),
    }
}

fn client(family: Family, i: u8) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i)),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + u16::from(i))),
    }
}

/// A configured service as the harness remembers it (to aim packets at it).
#[derive(Clone, Copy, Debug)]
struct Svc {
    id: lbcore::balancer::ServiceId,
    family: Family,
    proto: u8,
    vip: IpAddr,
    port: u16,
    fwmark: u32,
}

/// A client flow: protocol, client address and port, virtual address and port.
type Flow = (u8, IpAddr, u16, IpAddr, u16);
/// The tuple a reply from a real server arrives with: (proto, server, server port, to, to port).
type ReplyKey = (u8, IpAddr, u16, IpAddr, u16);

/// The harness state: the balancer plus the model.
struct World {
    lb: Balancer<'static>,
    svcs: Vec<Svc>,
    now: Instant,
    consumed: u64,
    /// Which client flow each reply tuple belongs to (learned from forwarded NAT/FULLNAT frames).
    replies: BTreeMap<ReplyKey, Flow>,
    /// The reply tuple each flow holds now (a flow rescheduled after eviction or expiry gets a
    /// new one: its old one is forgotten).
    holds: BTreeMap<Flow, ReplyKey>,
    /// NAT reply tuples two live flows share (see `learn`): replies along them are not checked.
    ambiguous: BTreeSet<ReplyKey>,
    /// Whether any FULLNAT service exists (for the final port-leak check).
    fullnat: Option<(Svc, u8)>,
    capacity: usize,
}

/// Decodes a balancer configuration from the input. `fixed` selects the `conn_model` shape:
/// one FULLNAT and one NAT service with a tiny table and port range.
fn configure(inp: &mut Input<'_>, fixed: bool) -> World {
    let capacity = if fixed { 8 } else { [4, 8, 16, 32][inp.below(4)] };
    let ports = if fixed { 4 } else { 1 + inp.below(16) as u16 };
    let mut cfg = BalancerConfig {
        conn_capacity: capacity,
        max_services: 4,
        seed: u64::from(inp.u16()),
        mac: LB_MAC,
        gateway_mac: Some([0x02, 0xee, 0, 0, 0, 1]),
        tunnel_source_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        tunnel_source_v6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        local_ports: (40000, 40000 + ports - 1),
        conn_reuse_mode: inp.below(3) as u8,
        expire_nodest_conn: inp.bool(),
        expire_quiescent_template: inp.bool(),
        ..BalancerConfig::default()
    };
    cfg.local_addrs.push(IpAddr::V4(LOCAL4)).unwrap();
    cfg.local_addrs.push(IpAddr::V6(LOCAL6)).unwrap();
    let lb = Balancer::new(cfg).expect("valid balancer config");
    let mut w = World {
        lb,
        svcs: Vec::new(),
        now: Instant::from_secs(1000),
        consumed: 0,
        replies: BTreeMap::new(),
        holds: BTreeMap::new(),
        ambiguous: BTreeSet::new(),
        fullnat: None,
        capacity,
    };
    if fixed {
        for (proto, fwd) in [(6, Forward::FullNat), (17, Forward::Nat)] {
            let vip = IpAddr::V4(VIPS4[0]);
            let port = if proto == 6 { 80 } else { 53 };
            let sc = if proto == 6 {
                ServiceConfig::tcp(vip, port)
            } else {
                ServiceConfig::udp(vip, port)
            };
            let id = w.lb.add_service(sc.scheduler(Sched::Rr)).unwrap();
            let svc = Svc {
                id,
                family: Family::V4,
                proto,
                vip,
                port,
                fwmark: 0,
            };
            for i in 0..2 {
                w.lb.add_dest(id, DestConfig::new(rip(Family::V4, i), port).forward(fwd))
                    .unwrap();
            }
            if fwd == Forward::FullNat {
                w.fullnat = Some((svc, 0));
            }
            w.svcs.push(svc);
        }
        return w;
    }
    let nsvc = 1 + inp.below(4);
    for _ in 0..nsvc {
        let family = if inp.bool() { Family::V6 } else { Family::V4 };
        let vip = match family {
            Family::V4 => IpAddr::V4(inp.pick(&VIPS4)),
            Family::V6 => IpAddr::V6(inp.pick(&VIPS6)),
        };
        let port = inp.pick(&PORTS);
        let kind = inp.below(4);
        let (key, proto, fwmark) = match kind {
            0 | 1 => (
                ServiceKey::Fwmark {
                    family,
                    mark: 7 + kind as u32,
                },
                6,
                7 + kind as u32,
            ),
            2 => (
                ServiceKey::Addr {
                    proto: Protocol::Udp,
                    vip,
                    port,
                },
                17,
                0,
            ),
            _ => (
                ServiceKey::Addr {
                    proto: Protocol::Tcp,
                    vip,
                    port,
                },
                6,
                0,
            ),
        };
        let mut sc = ServiceConfig::new(key)
            .scheduler(inp.pick(&Sched::ALL))
            .flags(SchedFlags::NONE.union(if inp.bool() {
                SchedFlags::PORT
            } else {
                SchedFlags::NONE
            }));
        if inp.bool() {
            sc = sc.persistent(Duration::from_secs(u64::from(1 + inp.below(300) as u16)));
            if inp.bool() {
                sc = sc.netmask(match family {
                    Family::V4 => Netmask::V4(0xffff_ff00),
                    Family::V6 => Netmask::V6Prefix(64),
                });
            }
        }
        if proto == 17 && inp.bool() {
            sc = sc.one_packet(true);
        }
        let Ok(id) = w.lb.add_service(sc) else {
            continue; // a duplicate key: refused, nothing changed
        };
        let svc = Svc {
            id,
            family,
            proto,
            vip,
            port,
            fwmark,
        };
        trace!("service {svc:?} {sc:?}");
        let ndest = 1 + inp.below(3);
        for i in 0..ndest {
            let fwd = match inp.below(5) {
                0 => Forward::DirectRouting,
                1 => Forward::Tunnel(TunnelType::Ipip),
                2 => Forward::Tunnel(TunnelType::Gue { port: GUE_PORT }),
                3 => Forward::Nat,
                _ => Forward::FullNat,
            };
            let rport = if inp.bool() { port } else { 8000 + i as u16 };
            let mut d = DestConfig::new(rip(family, i as u8), rport)
                .forward(fwd)
                .weight(i32::from(inp.u8() % 4));
            if fwd == Forward::DirectRouting {
                d = d.mac(RS_MAC);
            }
            if inp.u8() > 224 {
                d = d.thresholds(u32::from(1 + inp.u8() % 4), 0);
            }
            let added = w.lb.add_dest(id, d);
            trace!("  dest {d:?}: {added:?}");
            if added.is_ok() && fwd == Forward::FullNat && w.fullnat.is_none() && fwmark == 0 {
                w.fullnat = Some((svc, i as u8));
            }
        }
        w.svcs.push(svc);
    }
    w
}

/// Builds a TCP or UDP packet with valid checksums.
#[allow(clippy::too_many_arguments)]
fn build(
    eth: bool,
    proto: u8,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let b = match (eth, src, dst) {
        (true, IpAddr::V4(s), IpAddr::V4(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv4(s.octets(), d.octets(), 64)
        }
        (true, IpAddr::V6(s), IpAddr::V6(d)) => {
            PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC).ipv6(s.octets(), d.octets(), 64)
        }
        (false, IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
        (false, IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), 64),
        _ => return None,
    };
    let mut out = Vec::new();
    if proto == 17 {
        b.udp(sport, dport).write(&mut out, payload).ok()?;
    } else {
        let mut t = b.tcp(sport, dport, 1000, 64240);
        if flags & 0x02 != 0 {
            t = t.syn();
        }
        if flags & 0x10 != 0 {
            t = t.ack(1);
        }
        if flags & 0x01 != 0 {
            t = t.fin();
        }
        if flags & 0x04 != 0 {
            t = t.rst();
        }
        if flags & 0x08 != 0 {
            t = t.psh();
        }
        t.write(&mut out, payload).ok()?;
    }
    Some(out)
}

/// What the oracle saw in a forwarded frame: the innermost IP packet's addresses and ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    proto: u8,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
}

/// Checks every checksum of an IP packet with etherparse and returns its innermost tuple.
/// `l4` = whether the transport checksums are expected to be right.
fn check_ip(ip: &[u8], l4: bool, depth: u8) -> Option<Seen> {
    assert!(depth < 4, "tunnels nested too deep");
    let (proto, src, dst, payload, pseudo): (u8, IpAddr, IpAddr, &[u8], _) = match ip.first()? >> 4 {
        4 => {
            let h = Ipv4HeaderSlice::from_slice(ip).ok()?;
            let hdr = h.to_header();
            // Over the raw bytes: etherparse's Ipv4Header drops the reserved flag bit.
            let sum = etherparse::checksum::Sum16BitWords::new()
                .add_slice(h.slice())
                .ones_complement();
            assert_eq!(sum, 0, "IPv4 header checksum of a forwarded packet");
            let end = usize::from(h.total_len()).min(ip.len());
            let start = h.slice().len();
            if h.is_fragmenting_payload() || start > end {
                return None;
            }
            (
                h.protocol().0,
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                &ip[start..end],
                Pseudo::V4(hdr),
            )
        }
        6 => {
            let h = Ipv6HeaderSlice::from_slice(ip).ok()?;
            let hdr = h.to_header();
            // Only plain IPv6 (no extension headers) is checked at the transport layer.
            let end = (40 + usize::from(h.payload_length())).min(ip.len());
            (
                h.next_header().0,
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                &ip[40..end],
                Pseudo::V6(hdr),
            )
        }
        _ => return None,
    };
    match proto {
        // IPIP / IPv6-in-IP: the inner packet is the payload.
        4 | 41 => check_ip(payload, l4, depth + 1),
        6 => {
            let t = TcpHeaderSlice::from_slice(payload).ok()?;
            let h = t.to_header();
            let data = &payload[t.slice().len()..];
            if l4 {
                let want = match &pseudo {
                    Pseudo::V4(p) => h.calc_checksum_ipv4(p, data).ok()?,
                    Pseudo::V6(p) => h.calc_checksum_ipv6(p, data).ok()?,
                };
                assert_eq!(h.checksum, want, "TCP checksum of a forwarded packet");
            }
            Some(Seen {
                proto,
                src,
                sport: t.source_port(),
                dst,
                dport: t.destination_port(),
            })
        }
        17 => {
            let u = UdpHeaderSlice::from_slice(payload).ok()?;
            let h = u.to_header();
            let data = payload.get(8..usize::from(u.length()).max(8).min(payload.len()))?;
            let gue = u.destination_port() == GUE_PORT && data.len() >= 4;
            // A GUE outer header is written by the core: its checksum is checked always.
            if (l4 || gue) && !(h.checksum == 0 && matches!(pseudo, Pseudo::V4(_))) {
                let want = match &pseudo {
                    Pseudo::V4(p) => h.calc_checksum_ipv4(p, data).ok()?,
                    Pseudo::V6(p) => h.calc_checksum_ipv6(p, data).ok()?,
                };
                assert_eq!(h.checksum, want, "UDP checksum of a forwarded packet");
            }
            if gue && let Some(inner) = check_ip(&data[4..], l4, depth + 1) {
                return Some(inner);
            }
            Some(Seen {
                proto,
                src,
                sport: u.source_port(),
                dst,
                dport: u.destination_port(),
            })
        }
        _ => Some(Seen {
            proto,
            src,
            sport: 0,
            dst,
            dport: 0,
        }),
    }
}

enum Pseudo {
    V4(etherparse::Ipv4Header),
    V6(etherparse::Ipv6Header),
}

/// The IP packet inside a forwarded frame.
fn ip_of(bytes: &[u8], link: LinkKind) -> Option<&[u8]> {
    match link {
        LinkKind::Ip => Some(bytes),
        LinkKind::Ethernet => {
            let et = u16::from_be_bytes([*bytes.get(12)?, *bytes.get(13)?]);
            match et {
                0x0800 | 0x86dd => bytes.get(14..),
                _ => None,
            }
        }
    }
}

/// A live (unexpired) non-template connection entry for `flow` whose destination is still
/// configured, and that destination.
fn live_entry(w: &World, flow: &Flow) -> Option<(IpAddr, u16)> {
    let c = unexpired_entry(w, flow)?;
    let d = w.lb.find_dest(c.service, c.dest.0, c.dest.1)?;
    let info = w.lb.dest_info(d)?;
    (!info.removed).then_some(c.dest)
}

/// The flow's unexpired connection entry, even if its destination was removed: replies along
/// it are still forwarded (as in IPVS, where a removed destination's connections live on).
fn unexpired_entry(w: &World, flow: &Flow) -> Option<lbcore::balancer::ConnInfo> {
    w.lb.conns().find(|c| {
        !c.template
            && c.proto == flow.0
            && c.client == (flow.1, flow.2)
            && c.virt == Some((flow.3, flow.4))
            && c.expires > w.now
    })
}

/// Processes one frame and checks every invariant. `flow` is the client flow the harness built
/// (None for raw fuzz frames and replies); `valid_l4` whether the input's checksums are right.
/// Returns the verdict and what the oracle saw in the output.
fn step(
    w: &mut World,
    meta: RxMeta,
    bytes: &[u8],
    flow: Option<(Flow, u8)>,
    valid_l4: bool,
) -> Option<(Verdict, Option<Seen>)> {
    let mut frame = Frame::copy_from(bytes, meta)?;
    let expect_dest = match flow {
        Some((f, flags)) if flags & 0x02 == 0 => live_entry(w, &f),
        _ => None,
    };
    let before = *w.lb.counters();
    let verdict = w.lb.process(w.now, &mut frame);
    let after = *w.lb.counters();
    if verdict == Verdict::Consumed {
        w.consumed += 1;
    }
    let c = after;
    assert_eq!(after.rx, before.rx + 1, "rx counts every packet");
    assert_eq!(
        c.rx,
        c.forwarded + c.passed + c.dropped + w.consumed,
        "rx = forwarded + passed + dropped + consumed: {c:?}"
    );
    assert_eq!(
        c.dropped,
        w.lb.drop_counts().map(|(_, n)| n).sum::<u64>(),
        "dropped is the sum of the drop reasons"
    );
    let len = w.lb.conn_table().len();
    assert!(
        len <= w.capacity,
        "{len} connections in a table of {}",
        w.capacity
    );
    assert_eq!(w.lb.conns().count(), len, "conns() lists len() entries");

    let mut seen = None;
    match verdict {
        Verdict::Forward(to) => {
            assert_eq!(after.forwarded, before.forwarded + 1);
            let end = frame.start.checked_add(frame.len).expect("frame end");
            assert!(end <= frame.buf.len(), "forwarded frame inside its buffer");
            let out = frame.data();
            let ip = ip_of(out, to.link).expect("a forwarded frame carries IP");
            seen = check_ip(ip, valid_l4, 0);
            if valid_l4 || flow.is_some() {
                assert!(seen.is_some(), "etherparse decodes the forwarded frame");
            }
            if let Some(want) = expect_dest {
                let info = w.lb.dest_info(to.dest).expect("forwarded to a known destination");
                assert_eq!(
                    (info.config.addr, info.config.port),
                    want,
                    "an established flow keeps its destination"
                );
            }
        }
        Verdict::Pass => {
            assert_eq!(after.passed, before.passed + 1);
            assert_eq!(frame.data(), bytes, "a passed packet is handed over unchanged");
        }
        Verdict::Drop(reason) => {
            assert_eq!(after.dropped, before.dropped + 1);
            assert!(w.lb.drops(reason) > 0, "drop reason {} counted", reason.name());
        }
        Verdict::Consumed => {}
    }
    Some((verdict, seen))
}

/// Records what a forwarded client packet teaches about replies, and checks FULLNAT never gives
/// a reply tuple of a live connection to another flow.
fn learn(w: &mut World, flow: Flow, dest: lbcore::balancer::DestId, seen: Seen) {
    let Some(info) = w.lb.dest_info(dest) else {
        return;
    };
    // DR and tunnels keep the client as source: replies do not come through us.
    let fwd = info.config.forward;
    let key: Option<ReplyKey> = (matches!(fwd, Forward::Nat | Forward::FullNat) && seen.proto == flow.0)
        .then_some((flow.0, seen.dst, seen.dport, seen.src, seen.sport));
    // The flow no longer holds the tuple it held before (rescheduled after expiry or eviction,
    // perhaps to a DR or tunnel destination).
    if let Some(prev) = w.holds.get(&flow).copied()
        && Some(prev) != key
    {
        w.holds.remove(&flow);
        if w.replies.get(&prev) == Some(&flow) {
            w.replies.remove(&prev);
        }
    }
    let Some(key) = key else {
        return;
    };
    if let Some(old) = w.replies.get(&key).copied()
        && old != flow
        && unexpired_entry(w, &old).is_some()
    {
        // FULLNAT chooses the local port: it must never choose a tuple in use. NAT keeps the
        // client's tuple: one client ip:port reaching the same server ip:port through two
        // virtual ports (fwmark, port-0 services) is ambiguous for replies, in IPVS too.
        assert!(
            fwd != Forward::FullNat,
            "FULLNAT reply tuple {key:?} given to {flow:?} while {old:?} still holds it"
        );
        w.ambiguous.insert(key);
    }
    w.holds.insert(flow, key);
    w.replies.insert(key, flow);
}

/// Sends a reply from a real server along a learned reply tuple and checks it reaches the client.
fn reply(w: &mut World, key: ReplyKey, flow: Flow, flags: u8, eth: bool) {
    let (proto, server, sport, to, dport) = key;
    let Some(bytes) = build(eth, proto, server, sport, to, dport, flags, b"reply") else {
        return;
    };
    let meta = if eth { RxMeta::ETHERNET } else { RxMeta::IP };
    let Some((verdict, seen)) = step(w, meta, &bytes, None, true) else {
        return;
    };
    if let Verdict::Forward(_) = verdict {
        let seen = seen.expect("a forwarded reply decodes");
        if w.ambiguous.contains(&key) {
            return;
        }
        // The entry may be gone and the tuple reused by a newer flow: the model follows.
        let current = w.replies.get(&key).copied().unwrap_or(flow);
        if unexpired_entry(w, &current).is_none() {
            // The model's flow lost its entry (expired or evicted) and the tuple went to a flow
            // the model never learned: a raw fuzz frame's. The reply must still reach the
            // client of a live connection to this server, from that connection's virtual
            // address.
            assert!(
                w.lb.conns().any(|c| !c.template
                    && c.proto == proto
                    && c.dest == (server, sport)
                    && c.client == (seen.dst, seen.dport)
                    && c.virt == Some((seen.src, seen.sport))
                    && c.expires > w.now),
                "a NAT/FULLNAT reply for {key:?} went to {seen:?}, which no live connection explains"
            );
            return;
        }
        assert_eq!(
            (seen.src, seen.sport, seen.dst, seen.dport),
            (current.3, current.4, current.1, current.2),
            "a NAT/FULLNAT reply goes back to the client, from the virtual address"
        );
    }
}

const FLAGS: [u8; 7] = [0x02, 0x10, 0x18, 0x11, 0x04, 0x12, 0x00];

/// Runs the program in `data` (see the module docs). `fixed`: the `conn_model` configuration.
pub fn run(data: &[u8], fixed: bool) {
    let mut inp = Input::new(data);
    let mut w = configure(&mut inp, fixed);
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS {
        ops += 1;
        match inp.below(if fixed { 8 } else { 10 }) {
            // A client packet of a configured service (or near one).
            0..=3 => {
                if w.svcs.is_empty() {
                    continue;
                }
                let svc = w.svcs[inp.below(w.svcs.len())];
                let c = client(svc.family, inp.u8() % 8);
                let cport = 10000 + u16::from(inp.u8() % 8);
                let vport = if svc.port == 0 || svc.fwmark != 0 {
                    inp.pick(&[80, 25, 443])
                } else {
                    svc.port
                };
                let flags = if svc.proto == 6 { inp.pick(&FLAGS) } else { 0 };
                let eth = fixed || inp.u8() < 192;
                let payload = inp.bytes(32);
                let Some(bytes) = build(eth, svc.proto, c, cport, svc.vip, vport, flags, payload) else {
                    continue;
                };
                let meta = RxMeta {
                    link: if eth { LinkKind::Ethernet } else { LinkKind::Ip },
                    fwmark: svc.fwmark,
                };
                let flow: Flow = (svc.proto, c, cport, svc.vip, vport);
                let result = step(&mut w, meta, &bytes, Some((flow, flags)), true);
                trace!(
                    "{:?} client {flow:?} mark {} flags {flags:#x}: {result:?}",
                    w.now, svc.fwmark
                );
                if let Some((Verdict::Forward(to), Some(seen))) = result {
                    learn(&mut w, flow, to.dest, seen);
                }
            }
            // A reply from a real server along a learned NAT/FULLNAT tuple.
            4 | 5 => {
                if w.replies.is_empty() {
                    continue;
                }
                let i = inp.below(w.replies.len());
                let (key, flow) = w
                    .replies
                    .iter()
                    .map(|(k, f)| (*k, *f))
                    .nth(i)
                    .expect("index below len");
                let flags = if key.0 == 6 { inp.pick(&FLAGS) | 0x10 } else { 0 };
                let eth = fixed || inp.bool();
                trace!(
                    "{:?} reply {key:?} (model: flow {flow:?}) flags {flags:#x}",
                    w.now
                );
                reply(&mut w, key, flow, flags, eth);
            }
            // Time passes: a little, a timeout's worth, or a lot.
            6 => {
                let d = match inp.below(4) {
                    0 => Duration::from_millis(u64::from(inp.u8())),
                    1 => Duration::from_secs(u64::from(inp.u8())),
                    2 => Duration::from_secs(120 + u64::from(inp.u16() % 1024)),
                    _ => Duration::from_secs(u64::from(inp.u16()) * 60),
                };
                w.now = w.now + d;
                trace!("time +{d:?}");
            }
            // Bounded expiry.
            7 => {
                let budget = 1 + inp.below(16);
                let n = w.lb.expire(w.now, budget);
                trace!("expire budget {budget}: {n}");
                assert!(n <= budget, "expire did {n} > budget {budget} units of work");
            }
            // Configuration changes: drain, re-weight or remove a destination.
            8 => {
                if w.svcs.is_empty() {
                    continue;
                }
                let svc = w.svcs[inp.below(w.svcs.len())];
                let dests: Vec<_> = w.lb.dest_ids(svc.id).collect();
                if dests.is_empty() {
                    continue;
                }
                let d = dests[inp.below(dests.len())];
                if inp.bool() {
                    let r = w.lb.remove_dest(d);
                    trace!("remove {d:?}: {r:?}");
                } else if let Some(info) = w.lb.dest_info(d) {
                    let r = w.lb.edit_dest(d, info.config.weight(i32::from(inp.u8() % 4)));
                    trace!("edit {d:?} {:?}: {r:?}", info.config);
                }
            }
            // A raw frame: arbitrary bytes into the same checks (no transport checksum promise).
            _ => {
                let ctl = inp.u8();
                let meta = RxMeta {
                    link: if ctl & 1 == 0 {
                        LinkKind::Ethernet
                    } else {
                        LinkKind::Ip
                    },
                    fwmark: [0, 7, 8, 0][usize::from((ctl >> 1) & 3)],
                };
                let raw = inp.bytes(255);
                let r = step(&mut w, meta, raw, None, false);
                trace!("raw {meta:?} {raw:02x?}: {r:?}");
            }
        }
    }

    // Everything expires, with bounded work per call.
    // A template still controlling connections is re-armed for its timeout when the sweep meets
    // it first: it goes on a later pass, at a later time.
    let mut far = w.now;
    for _ in 0..4 {
        far = far + Duration::from_secs(10_000_000);
        w.lb.expire(far, w.capacity);
    }
    assert_eq!(w.lb.conn_table().len(), 0, "all connections expired");
    w.now = far;

    // No FULLNAT local port leaked: a new connection finds one again (if its dest still exists).
    if let Some((svc, _)) = w.fullnat {
        let usable =
            w.lb.dest_ids(svc.id)
                .filter_map(|d| w.lb.dest_info(d))
                .any(|i| i.config.forward == Forward::FullNat && !i.removed);
        if usable {
            let c = client(svc.family, 200);
            let vport = if svc.port == 0 { 80 } else { svc.port };
            let flags = if svc.proto == 6 { 0x02 } else { 0 };
            if let Some(bytes) = build(true, svc.proto, c, 999, svc.vip, vport, flags, b"")
                && let Some((v, _)) = step(&mut w, RxMeta::ETHERNET, &bytes, None, true)
            {
                assert_ne!(
                    v,
                    Verdict::Drop(DropReason::NoLocalPort),
                    "no FULLNAT port free after everything expired: a port leaked"
                );
            }
        }
    }
}

/// The `pipeline` target.
pub fn pipeline(data: &[u8]) {
    run(data, false);
}

/// The `conn_model` target.
pub fn conn_model(data: &[u8]) {
    run(data, true);
}
