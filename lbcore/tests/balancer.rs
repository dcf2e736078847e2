//! End-to-end tests of the data plane: each forwarding method in v4 and v6, persistence modes,
//! TCP states and timeouts, table-full behaviour, quiescing, thresholds and the IPVS options.
//! Every output packet is decoded by etherparse and its checksums are recomputed.

mod common;

use std::net::IpAddr;

use common::*;
use lbcore::balancer::{Balancer, BalancerConfig, DestId, DropReason, RxMeta, ServiceId, Verdict};
use lbcore::conn::ConnState;
use lbcore::forward::ForwardError;
use lbcore::service::{DestConfig, Family, Forward, Netmask, Sched, ServiceConfig, TunnelType};
use lbcore::time::{Duration, Instant};
use lbcore::wire::LinkKind;

const RS1_MAC: [u8; 6] = [0x02, 0x51, 0, 0, 0, 1];
const RS2_MAC: [u8; 6] = [0x02, 0x51, 0, 0, 0, 2];
const GW_MAC: [u8; 6] = [0x02, 0x6e, 0, 0, 0, 1];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn lb() -> Balancer<'static> {
    lb_with(BalancerConfig {
        conn_capacity: 1024,
        mac: LB_MAC,
        ..Default::default()
    })
}

fn lb_with(cfg: BalancerConfig) -> Balancer<'static> {
    Balancer::new(cfg).unwrap()
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

/// Sends `bytes` and returns the verdict and the output bytes.
fn send(lb: &mut Balancer<'_>, now: Instant, bytes: &[u8], eth: bool) -> (Verdict, Vec<u8>) {
    let mut f = frame(bytes, eth);
    let v = lb.process(now, &mut f);
    (v, f.data().to_vec())
}

fn send_mark(lb: &mut Balancer<'_>, now: Instant, bytes: &[u8], mark: u32) -> (Verdict, Vec<u8>) {
    let mut f = lbcore::balancer::Frame::copy_from(
        bytes,
        RxMeta {
            link: LinkKind::Ethernet,
            fwmark: mark,
        },
    )
    .unwrap();
    let v = lb.process(now, &mut f);
    (v, f.data().to_vec())
}

fn fwd_dest(v: Verdict) -> DestId {
    match v {
        Verdict::Forward(f) => f.dest,
        other => panic!("expected Forward, got {other:?}"),
    }
}

fn dr_service(lb: &mut Balancer<'_>, vip: &str, sched: Sched) -> (ServiceId, DestId, DestId) {
    let svc = lb
        .add_service(ServiceConfig::tcp(ip(vip), 80).scheduler(sched))
        .unwrap();
    let (r1, r2) = if vip.contains(':') {
        ("2001:db8:1::1", "2001:db8:1::2")
    } else {
        ("10.0.0.1", "10.0.0.2")
    };
    let a = lb
        .add_dest(svc, DestConfig::new(ip(r1), 80).direct_routing(RS1_MAC))
        .unwrap();
    let b = lb
        .add_dest(svc, DestConfig::new(ip(r2), 80).direct_routing(RS2_MAC))
        .unwrap();
    (svc, a, b)
}

#[test]
fn dr_rewrites_only_macs_v4_and_v6() {
    for (vip, client) in [("192.0.2.10", "198.51.100.7"), ("2001:db8::10", "2001:db8:ff::7")] {
        let mut lb = lb();
        let (_, a, b) = dr_service(&mut lb, vip, Sched::Rr);
        let syn = tcp(client, 40000, vip, 80, SYN, b"", true);
        let (v, out) = send(&mut lb, t(1), &syn, true);
        let d = fwd_dest(v);
        let want_mac = if d == a { RS1_MAC } else { RS2_MAC };
        assert_eq!(&out[..6], &want_mac);
        assert_eq!(&out[6..12], &LB_MAC);
        assert_eq!(&out[12..], &syn[12..], "IP packet untouched");
        // The rest of the connection follows the first packet.
        for flags in [ACK, PSH, FIN] {
            let p = tcp(client, 40000, vip, 80, flags, b"x", true);
            let (v, _) = send(&mut lb, t(2), &p, true);
            assert_eq!(fwd_dest(v), d);
        }
        let info = lb.dest_info(d).unwrap();
        assert_eq!(
            (info.active, info.inactive),
            (0, 1),
            "INPUT_ONLY: the client's FIN means FIN_WAIT (inactive)"
        );
        assert_eq!(info.stats.inpkts, 4);
        let other = if d == a { b } else { a };
        assert_eq!(lb.dest_info(other).unwrap().stats.inpkts, 0);
    }
}

#[test]
fn dr_requires_ethernet() {
    let mut lb = lb();
    dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    let syn = tcp("198.51.100.7", 40000, "192.0.2.10", 80, SYN, b"", false);
    let (v, _) = send(&mut lb, t(1), &syn, false);
    assert_eq!(v, Verdict::Drop(DropReason::Forward(ForwardError::NeedsEthernet)));
    assert_eq!(lb.drops(DropReason::Forward(ForwardError::NeedsEthernet)), 1);
    assert_eq!(
        lb.conn_table().len(),
        0,
        "no connection is created for a packet we cannot send"
    );
}

#[test]
fn non_service_traffic_passes_and_non_syn_without_connection_passes() {
    let mut lb = lb();
    dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    let other = tcp("198.51.100.7", 40000, "192.0.2.99", 80, SYN, b"", true);
    assert_eq!(send(&mut lb, t(1), &other, true).0, Verdict::Pass);
    let ack = tcp("198.51.100.7", 40000, "192.0.2.10", 80, ACK, b"", true);
    assert_eq!(
        send(&mut lb, t(1), &ack, true).0,
        Verdict::Pass,
        "IPVS schedules TCP only on SYN"
    );
    let rst_syn = tcp("198.51.100.7", 40000, "192.0.2.10", 80, Flags("SR"), b"", true);
    assert_eq!(send(&mut lb, t(1), &rst_syn, true).0, Verdict::Pass);
    assert_eq!(lb.counters().passed, 3);
    // ARP is not IP: passed to the host.
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&CLIENT_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    assert_eq!(send(&mut lb, t(1), &arp, true).0, Verdict::Pass);
}

fn nat_lb(v6: bool, full: bool) -> (Balancer<'static>, &'static str, &'static str, &'static str) {
    let (vip, rip, lip) = if v6 {
        ("2001:db8::10", "fd00::2", "fd00::100")
    } else {
        ("192.0.2.10", "10.0.0.2", "10.0.0.100")
    };
    let mut cfg = BalancerConfig {
        conn_capacity: 1024,
        mac: LB_MAC,
        gateway_mac: Some(GW_MAC),
        ..Default::default()
    };
    cfg.local_addrs.push(ip(lip)).unwrap();
    let mut lb = lb_with(cfg);
    let svc = lb.add_service(ServiceConfig::tcp(ip(vip), 80)).unwrap();
    let fwd = if full { Forward::FullNat } else { Forward::Nat };
    lb.add_dest(svc, DestConfig::new(ip(rip), 8080).forward(fwd).mac(RS1_MAC))
        .unwrap();
    (lb, vip, rip, lip)
}

#[test]
fn nat_both_directions_v4_and_v6() {
    for v6 in [false, true] {
        let (mut lb, vip, rip, _) = nat_lb(v6, false);
        let client = if v6 { "2001:db8:ff::7" } else { "198.51.100.7" };
        let (v, out) = send(&mut lb, t(1), &tcp(client, 40000, vip, 80, SYN, b"", true), true);
        let d = fwd_dest(v);
        assert_eq!(&out[..6], &RS1_MAC);
        assert_eq!(decode(&out, true), seen(client, 40000, rip, 8080));
        // Reply from the real server: source back to the VIP, sent to the gateway.
        let (v, out) = send(
            &mut lb,
            t(1),
            &tcp(rip, 8080, client, 40000, SYNACK, b"", true),
            true,
        );
        assert!(matches!(v, Verdict::Forward(f) if f.link == LinkKind::Ethernet && f.next_hop == ip(client)));
        assert_eq!(&out[..6], &GW_MAC);
        assert_eq!(decode(&out, true), seen(vip, 80, client, 40000));
        let (_, out) = send(
            &mut lb,
            t(1),
            &tcp(client, 40000, vip, 80, PSH, b"hello world", true),
            true,
        );
        assert_eq!(decode(&out, true), seen(client, 40000, rip, 8080));
        let conns: Vec<_> = lb.conns().collect();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].state, ConnState::Established);
        // Server closes first: FIN out -> FIN_WAIT, client FIN in -> TIME_WAIT.
        let _ = send(
            &mut lb,
            t(2),
            &tcp(rip, 8080, client, 40000, FIN, b"", true),
            true,
        );
        assert_eq!(lb.conns().next().unwrap().state, ConnState::FinWait);
        let _ = send(&mut lb, t(2), &tcp(client, 40000, vip, 80, FIN, b"", true), true);
        assert_eq!(lb.conns().next().unwrap().state, ConnState::TimeWait);
        let info = lb.dest_info(d).unwrap();
        assert_eq!((info.active, info.inactive), (0, 1));
        assert_eq!(
            (info.stats.inpkts, info.stats.outpkts, info.stats.conns),
            (3, 2, 1)
        );
    }
}

#[test]
fn nat_without_next_hop_mac_emits_bare_ip() {
    let (mut lb, vip, rip, _) = nat_lb(false, false);
    let svc = lb.service_ids().next().unwrap();
    let d = lb.dest_ids(svc).next().unwrap();
    let mut cfg = lb.dest_info(d).unwrap().config;
    cfg.mac = None;
    lb.edit_dest(d, cfg).unwrap();
    let (v, out) = send(
        &mut lb,
        t(1),
        &tcp("198.51.100.7", 40000, vip, 80, SYN, b"", true),
        true,
    );
    assert!(matches!(v, Verdict::Forward(f) if f.link == LinkKind::Ip && f.next_hop == ip(rip)));
    assert_eq!(out[0] >> 4, 4, "a bare IPv4 packet");
    assert_eq!(decode(&out, false), seen("198.51.100.7", 40000, rip, 8080));
}

#[test]
fn fullnat_both_directions_v4_and_v6() {
    for v6 in [false, true] {
        let (mut lb, vip, rip, lip) = nat_lb(v6, true);
        let client = if v6 { "2001:db8:ff::7" } else { "198.51.100.7" };
        let (v, out) = send(&mut lb, t(1), &tcp(client, 40000, vip, 80, SYN, b"", true), true);
        fwd_dest(v);
        let s = decode(&out, true);
        assert_eq!((s.src, s.dst, s.dport), (ip(lip), ip(rip), 8080));
        let lport = s.sport;
        let (_, out) = send(
            &mut lb,
            t(1),
            &tcp(rip, 8080, lip, lport, SYNACK, b"", true),
            true,
        );
        assert_eq!(decode(&out, true), seen(vip, 80, client, 40000));
    }
}

#[test]
fn fullnat_ports_are_unique_and_returned_on_expiry() {
    let mut cfg = BalancerConfig {
        conn_capacity: 64,
        mac: LB_MAC,
        local_ports: (5000, 5003),
        ..Default::default()
    };
    cfg.local_addrs.push(ip("10.0.0.100")).unwrap();
    let mut lb = lb_with(cfg);
    let svc = lb.add_service(ServiceConfig::udp(ip("192.0.2.10"), 53)).unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.2"), 53).forward(Forward::FullNat))
        .unwrap();
    let mut ports = std::collections::BTreeSet::new();
    for c in 0..4u16 {
        // Same client port from different clients: FULLNAT must still tell the replies apart.
        let (v, out) = send(
            &mut lb,
            t(1),
            &udp(
                &format!("198.51.100.{}", c + 1),
                5353,
                "192.0.2.10",
                53,
                b"q",
                false,
            ),
            false,
        );
        fwd_dest(v);
        ports.insert(decode(&out, false).sport);
    }
    assert_eq!(ports, (5000..=5003).collect());
    let (v, _) = send(
        &mut lb,
        t(1),
        &udp("198.51.100.99", 5353, "192.0.2.10", 53, b"q", false),
        false,
    );
    assert_eq!(v, Verdict::Drop(DropReason::NoLocalPort));
    // After the UDP timeout (300 s) the ports come back.
    assert_eq!(lb.expire(t(302), 1000), 4);
    let (v, out) = send(
        &mut lb,
        t(302),
        &udp("198.51.100.99", 5353, "192.0.2.10", 53, b"q", false),
        false,
    );
    fwd_dest(v);
    assert!((5000..=5003).contains(&decode(&out, false).sport));
}

#[test]
fn tunnel_encapsulates_ipip_ip6ip6_and_gue() {
    let cases: [(&str, &str, &str, TunnelType); 4] = [
        ("192.0.2.10", "198.51.100.7", "10.0.0.2", TunnelType::Ipip),
        ("2001:db8::10", "2001:db8:ff::7", "fd00::2", TunnelType::Ipip),
        (
            "192.0.2.10",
            "198.51.100.7",
            "10.0.0.2",
            TunnelType::Gue { port: 6080 },
        ),
        (
            "2001:db8::10",
            "2001:db8:ff::7",
            "fd00::2",
            TunnelType::Gue { port: 6080 },
        ),
    ];
    for (vip, client, rip, kind) in cases {
        let cfg = BalancerConfig {
            mac: LB_MAC,
            tunnel_source_v4: Some("10.0.0.1".parse().unwrap()),
            tunnel_source_v6: Some("fd00::1".parse().unwrap()),
            conn_capacity: 64,
            ..Default::default()
        };
        let mut lb = lb_with(cfg);
        let svc = lb.add_service(ServiceConfig::tcp(ip(vip), 80)).unwrap();
        lb.add_dest(svc, DestConfig::new(ip(rip), 80).forward(Forward::Tunnel(kind)))
            .unwrap();
        let inner = tcp(client, 40000, vip, 80, SYN, b"payload", true);
        let (v, out) = send(&mut lb, t(1), &inner, true);
        assert!(
            matches!(v, Verdict::Forward(f) if f.link == LinkKind::Ip && f.next_hop == ip(rip)),
            "{v:?}"
        );
        let p = etherparse::SlicedPacket::from_ip(&out).unwrap();
        let (osrc, odst, proto): (IpAddr, IpAddr, u8) = match &p.net {
            Some(etherparse::NetSlice::Ipv4(h)) => {
                let hh = h.header().to_header();
                assert_eq!(hh.header_checksum, hh.calc_header_checksum());
                (
                    IpAddr::V4(h.header().source_addr()),
                    IpAddr::V4(h.header().destination_addr()),
                    h.header().protocol().0,
                )
            }
            Some(etherparse::NetSlice::Ipv6(h)) => (
                IpAddr::V6(h.header().source_addr()),
                IpAddr::V6(h.header().destination_addr()),
                h.header().next_header().0,
            ),
            _ => panic!("no outer IP"),
        };
        let tsrc = if vip.contains(':') { "fd00::1" } else { "10.0.0.1" };
        assert_eq!((osrc, odst), (ip(tsrc), ip(rip)));
        let inner_ip = &inner[14..];
        match kind {
            TunnelType::Ipip => {
                assert_eq!(proto, if vip.contains(':') { 41 } else { 4 });
                assert!(out.ends_with(inner_ip), "the inner packet is carried unchanged");
            }
            TunnelType::Gue { port } => {
                assert_eq!(proto, 17);
                let Some(etherparse::TransportSlice::Udp(u)) = &p.transport else {
                    panic!("no UDP")
                };
                assert_eq!(u.destination_port(), port);
                assert_eq!(&u.payload()[4..], inner_ip, "GUE header then the inner packet");
            }
        }
    }
}

#[test]
fn persistence_per_port_service_sticks_per_client_and_netmask() {
    let mut lb = lb();
    let svc = lb
        .add_service(
            ServiceConfig::tcp(ip("192.0.2.10"), 80)
                .scheduler(Sched::Rr)
                .persistent(Duration::from_secs(300))
                .netmask(Netmask::V4(0xffff_ff00)),
        )
        .unwrap();
    for (r, mac) in [("10.0.0.1", RS1_MAC), ("10.0.0.2", RS2_MAC)] {
        lb.add_dest(svc, DestConfig::new(ip(r), 80).direct_routing(mac))
            .unwrap();
    }
    let first = fwd_dest(
        send(
            &mut lb,
            t(1),
            &tcp("198.51.100.7", 1000, "192.0.2.10", 80, SYN, b"", true),
            true,
        )
        .0,
    );
    for port in 1001..1010 {
        // Same /24 as the first client: same destination despite round robin.
        let c = format!("198.51.100.{}", port - 990);
        let d = fwd_dest(
            send(
                &mut lb,
                t(2),
                &tcp(&c, port, "192.0.2.10", 80, SYN, b"", true),
                true,
            )
            .0,
        );
        assert_eq!(d, first);
    }
    // A client of another /24 gets the next destination in round robin.
    let other = fwd_dest(
        send(
            &mut lb,
            t(2),
            &tcp("203.0.113.5", 1000, "192.0.2.10", 80, SYN, b"", true),
            true,
        )
        .0,
    );
    assert_ne!(other, first);
    assert_eq!(
        lb.dest_info(first).unwrap().persistent,
        1,
        "one template for the /24"
    );
    assert_eq!(lb.counters().templates_created, 2);
    let templates: Vec<_> = lb.conns().filter(|c| c.template).collect();
    assert_eq!(templates.len(), 2);
    assert!(
        templates
            .iter()
            .any(|c| c.client == (ip("198.51.100.0"), 0) && c.virt == Some((ip("192.0.2.10"), 80)))
    );
}

#[test]
fn persistence_template_outlives_connections_by_its_timeout() {
    let mut lb = lb();
    let svc = lb
        .add_service(
            ServiceConfig::udp(ip("192.0.2.10"), 53)
                .scheduler(Sched::Rr)
                .persistent(Duration::from_secs(50)),
        )
        .unwrap();
    for r in ["10.0.0.1", "10.0.0.2"] {
        lb.add_dest(svc, DestConfig::new(ip(r), 53)).unwrap();
    }
    lb.set_timeouts(Duration::ZERO, Duration::ZERO, Duration::from_secs(10));
    let q = |port| udp("198.51.100.7", port, "192.0.2.10", 53, b"q", false);
    let d = fwd_dest(send(&mut lb, t(0), &q(1000), false).0);
    // The connection expires at 10 s; the template, refreshed when used at 0 s, at 50 s.
    assert_eq!(lb.expire(t(11), 5000), 1);
    assert_eq!(
        fwd_dest(send(&mut lb, t(40), &q(1001), false).0),
        d,
        "template still alive at 40 s"
    );
    // Used again at 40 s: alive until 90 s, but its connection lives until 50 s.
    lb.expire(t(89), 5000);
    assert_eq!(lb.conns().filter(|c| c.template).count(), 1);
    lb.expire(t(91), 5000);
    assert_eq!(
        lb.conns().count(),
        0,
        "template gone 50 s after last use once its connections are gone"
    );
    let next = fwd_dest(send(&mut lb, t(92), &q(1002), false).0);
    assert_ne!(next, d, "rescheduled by round robin after the template expired");
}

#[test]
fn port_zero_service_persists_across_ports_and_requires_persistence() {
    let mut lb = lb();
    assert_eq!(
        lb.add_service(ServiceConfig::tcp(ip("192.0.2.10"), 0))
            .unwrap_err(),
        lbcore::balancer::ConfigError::PortZeroNotPersistent
    );
    let svc = lb
        .add_service(
            ServiceConfig::tcp(ip("192.0.2.10"), 0)
                .scheduler(Sched::Rr)
                .persistent(Duration::from_secs(300)),
        )
        .unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.1"), 0)).unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.2"), 0)).unwrap();
    let (v, out) = send(
        &mut lb,
        t(1),
        &tcp("198.51.100.7", 1000, "192.0.2.10", 80, SYN, b"", false),
        false,
    );
    let d = fwd_dest(v);
    assert_eq!(
        decode(&out, false).dport,
        80,
        "port-zero NAT keeps the client's port"
    );
    let (v, out) = send(
        &mut lb,
        t(1),
        &tcp("198.51.100.7", 1001, "192.0.2.10", 443, SYN, b"", false),
        false,
    );
    assert_eq!(fwd_dest(v), d, "PCC: all ports of the VIP go to the same server");
    assert_eq!(decode(&out, false).dport, 443);
    let tpl: Vec<_> = lb.conns().filter(|c| c.template).collect();
    assert_eq!(tpl.len(), 1);
    assert_eq!(
        tpl[0].virt,
        Some((ip("192.0.2.10"), 0)),
        "PCC template has vport 0"
    );
}

#[test]
fn fwmark_service_groups_vips() {
    let mut lb = lb();
    let svc = lb
        .add_service(
            ServiceConfig::fwmark(Family::V4, 7)
                .scheduler(Sched::Rr)
                .persistent(Duration::from_secs(300)),
        )
        .unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.1"), 0).direct_routing(RS1_MAC))
        .unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.2"), 0).direct_routing(RS2_MAC))
        .unwrap();
    let unmarked = tcp("198.51.100.7", 1000, "192.0.2.10", 80, SYN, b"", true);
    assert_eq!(send(&mut lb, t(1), &unmarked, true).0, Verdict::Pass);
    let d1 = fwd_dest(send_mark(&mut lb, t(1), &unmarked, 7).0);
    let d2 = fwd_dest(
        send_mark(
            &mut lb,
            t(1),
            &tcp("198.51.100.7", 1001, "192.0.2.11", 443, SYN, b"", true),
            7,
        )
        .0,
    );
    assert_eq!(d1, d2, "one fwmark template covers every marked VIP and port");
    let tpl: Vec<_> = lb.conns().filter(|c| c.template).collect();
    assert_eq!((tpl.len(), tpl[0].fwmark, tpl[0].virt), (1, Some(7), None));
    // Established packets are found by their tuple, mark or not.
    assert!(matches!(
        send(
            &mut lb,
            t(1),
            &tcp("198.51.100.7", 1000, "192.0.2.10", 80, ACK, b"", true),
            true
        )
        .0,
        Verdict::Forward(_)
    ));
}

#[test]
fn one_packet_scheduling_tracks_nothing() {
    let mut lb = lb();
    assert!(
        lb.add_service(ServiceConfig::tcp(ip("192.0.2.10"), 80).one_packet(true))
            .is_err()
    );
    let svc = lb
        .add_service(
            ServiceConfig::udp(ip("192.0.2.10"), 53)
                .scheduler(Sched::Rr)
                .one_packet(true),
        )
        .unwrap();
    let a = lb.add_dest(svc, DestConfig::new(ip("10.0.0.1"), 53)).unwrap();
    let b = lb.add_dest(svc, DestConfig::new(ip("10.0.0.2"), 53)).unwrap();
    let mut seen_dests = vec![];
    for _ in 0..4 {
        seen_dests.push(fwd_dest(
            send(
                &mut lb,
                t(1),
                &udp("198.51.100.7", 5000, "192.0.2.10", 53, b"q", false),
                false,
            )
            .0,
        ));
    }
    assert_eq!(
        seen_dests,
        [b, a, b, a],
        "every datagram of the same flow is scheduled on its own"
    );
    assert_eq!(lb.conn_table().len(), 0);
    assert_eq!(lb.service_stats(svc).unwrap().conns, 4);
}

#[test]
fn tcp_timeouts_follow_state_and_are_settable() {
    let mut lb = lb();
    dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    let p = |flags| tcp("198.51.100.7", 40000, "192.0.2.10", 80, flags, b"", true);
    let d = fwd_dest(send(&mut lb, t(0), &p(SYN), true).0);
    assert_eq!(lb.conns().next().unwrap().expires, t(60), "SYN_RECV: 60 s");
    let _ = send(&mut lb, t(1), &p(ACK), true);
    assert_eq!(lb.conns().next().unwrap().expires, t(901), "ESTABLISHED: 900 s");
    lb.set_timeouts(Duration::from_secs(100), Duration::from_secs(7), Duration::ZERO);
    let _ = send(&mut lb, t(2), &p(ACK), true);
    assert_eq!(lb.conns().next().unwrap().expires, t(102));
    let _ = send(&mut lb, t(3), &p(FIN), true);
    assert_eq!(
        lb.conns().next().unwrap().expires,
        t(10),
        "FIN_WAIT: the tcpfin timeout"
    );
    // Still there just before expiry, gone after; a lookup never sees an expired entry.
    assert!(matches!(
        send(&mut lb, Instant::from_millis(9_999), &p(ACK), true).0,
        Verdict::Forward(_)
    ));
    assert_eq!(lb.conns().next().unwrap().expires, Instant::from_millis(16_999));
    assert_eq!(
        send(&mut lb, t(17), &p(ACK), true).0,
        Verdict::Pass,
        "expired: an ACK alone schedules nothing"
    );
    assert_eq!(lb.conn_table().len(), 0);
    assert_eq!(lb.counters().conns_expired, 1);
    let info = lb.dest_info(d).unwrap();
    assert_eq!((info.active, info.inactive), (0, 0));
}

#[test]
fn expire_is_incremental_and_bounded() {
    let mut lb = lb_with(BalancerConfig {
        conn_capacity: 100,
        mac: LB_MAC,
        ..Default::default()
    });
    dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    for i in 0..100u16 {
        let _ = send(
            &mut lb,
            t(0),
            &tcp("198.51.100.7", 1000 + i, "192.0.2.10", 80, SYN, b"", true),
            true,
        );
    }
    assert_eq!(lb.conn_table().len(), 100);
    assert_eq!(lb.expire(t(61), 30), 30, "at most `budget` entries examined");
    assert_eq!(lb.expire(t(61), 30), 30);
    assert_eq!(lb.expire(t(61), 1000), 40);
    assert_eq!(lb.conn_table().len(), 0);
}

#[test]
fn table_full_evicts_unestablished_then_drops() {
    let mut lb = lb_with(BalancerConfig {
        conn_capacity: 4,
        mac: LB_MAC,
        ..Default::default()
    });
    dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    let syn = |port| tcp("198.51.100.7", port, "192.0.2.10", 80, SYN, b"", true);
    for port in 1..=4 {
        fwd_dest(send(&mut lb, t(0), &syn(port), true).0);
    }
    // Full of SYN_RECV entries: a new SYN evicts the one closest to expiry.
    fwd_dest(send(&mut lb, t(1), &syn(5), true).0);
    assert_eq!(lb.counters().evicted, 1);
    assert_eq!(lb.conn_table().len(), 4);
    // Establish all four: nothing may be evicted now, so a new connection is dropped.
    for c in lb.conns().map(|c| c.client.1).collect::<Vec<_>>() {
        let _ = send(
            &mut lb,
            t(2),
            &tcp("198.51.100.7", c, "192.0.2.10", 80, ACK, b"", true),
            true,
        );
    }
    assert_eq!(
        send(&mut lb, t(3), &syn(6), true).0,
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(lb.drops(DropReason::TableFull), 1);
    assert_eq!(lb.conn_table().len(), 4, "never grows past its capacity");
}

#[test]
fn quiesced_destination_keeps_its_connections_but_gets_no_new_ones() {
    let mut lb = lb();
    let (_, a, b) = dr_service(&mut lb, "192.0.2.10", Sched::Rr);
    let p = |port, flags| tcp("198.51.100.7", port, "192.0.2.10", 80, flags, b"", true);
    let mut on_a = None;
    for port in 1..=2 {
        if fwd_dest(send(&mut lb, t(0), &p(port, SYN), true).0) == a {
            on_a = Some(port);
        }
    }
    let on_a = on_a.expect("rr used both");
    let mut cfg = lb.dest_info(a).unwrap().config;
    cfg.weight = 0;
    lb.edit_dest(a, cfg).unwrap();
    for port in 10..20 {
        assert_eq!(fwd_dest(send(&mut lb, t(1), &p(port, SYN), true).0), b);
    }
    assert_eq!(
        fwd_dest(send(&mut lb, t(1), &p(on_a, ACK), true).0),
        a,
        "existing connection continues"
    );
}

#[test]
fn thresholds_overload_and_recover() {
    let mut lb = lb();
    // Weighted failover: everything to the heaviest available destination.
    let svc = lb
        .add_service(ServiceConfig::tcp(ip("192.0.2.10"), 80).scheduler(Sched::Fo))
        .unwrap();
    let spare = lb
        .add_dest(
            svc,
            DestConfig::new(ip("10.0.0.2"), 80)
                .weight(1)
                .direct_routing(RS2_MAC),
        )
        .unwrap();
    let small = lb
        .add_dest(
            svc,
            DestConfig::new(ip("10.0.0.1"), 80)
                .weight(100)
                .thresholds(2, 1)
                .direct_routing(RS1_MAC),
        )
        .unwrap();
    let syn = |port| tcp("198.51.100.7", port, "192.0.2.10", 80, SYN, b"", true);
    assert_eq!(fwd_dest(send(&mut lb, t(0), &syn(1), true).0), small);
    assert_eq!(fwd_dest(send(&mut lb, t(0), &syn(2), true).0), small);
    assert!(lb.dest_info(small).unwrap().overloaded, "u_threshold 2 reached");
    assert_eq!(fwd_dest(send(&mut lb, t(0), &syn(3), true).0), spare);
    // One connection closes (ESTABLISHED, then RST -> CLOSE, 10 s; a RST in SYN_RECV would
    // leave it in SYN_RECV, as the kernel's table says): 1 left, not below l_threshold 1 yet.
    for port in [1, 2] {
        let _ = send(
            &mut lb,
            t(1),
            &tcp("198.51.100.7", port, "192.0.2.10", 80, ACK, b"", true),
            true,
        );
    }
    let _ = send(
        &mut lb,
        t(1),
        &tcp("198.51.100.7", 1, "192.0.2.10", 80, RST, b"", true),
        true,
    );
    lb.expire(t(12), 5000);
    assert!(lb.dest_info(small).unwrap().overloaded);
    let _ = send(
        &mut lb,
        t(13),
        &tcp("198.51.100.7", 2, "192.0.2.10", 80, RST, b"", true),
        true,
    );
    lb.expire(t(24), 5000);
    assert!(
        !lb.dest_info(small).unwrap().overloaded,
        "below l_threshold: available again"
    );
    assert_eq!(fwd_dest(send(&mut lb, t(25), &syn(4), true).0), small);
}

#[test]
fn removed_destination_drops_then_expire_nodest_conn_expires() {
    for expire_nodest in [false, true] {
        let mut lb = lb();
        let (_, a, b) = dr_service(&mut lb, "192.0.2.10", Sched::Rr);
        lb.set_expire_nodest_conn(expire_nodest);
        let p = |flags| tcp("198.51.100.7", 1000, "192.0.2.10", 80, flags, b"", true);
        let d = fwd_dest(send(&mut lb, t(0), &p(SYN), true).0);
        let _ = send(&mut lb, t(0), &p(ACK), true);
        lb.remove_dest(d).unwrap();
        assert!(lb.dest_info(d).unwrap().removed, "kept while it has connections");
        assert_eq!(
            send(&mut lb, t(1), &p(ACK), true).0,
            Verdict::Drop(DropReason::DestUnavailable)
        );
        if expire_nodest {
            assert_eq!(lb.conn_table().len(), 0);
            assert!(lb.dest_info(d).is_none(), "slot freed with its last connection");
            let other = if d == a { b } else { a };
            assert_eq!(fwd_dest(send(&mut lb, t(2), &p(SYN), true).0), other);
        } else {
            assert_eq!(lb.conn_table().len(), 1);
            assert_eq!(
                send(&mut lb, t(2), &p(ACK), true).0,
                Verdict::Drop(DropReason::DestUnavailable)
            );
        }
    }
}

#[test]
fn quiescent_template_is_reused_unless_expire_quiescent_template() {
    for expire_quiescent in [false, true] {
        let mut lb = lb();
        let svc = lb
            .add_service(
                ServiceConfig::tcp(ip("192.0.2.10"), 80)
                    .scheduler(Sched::Rr)
                    .persistent(Duration::from_secs(300)),
            )
            .unwrap();
        let a = lb
            .add_dest(svc, DestConfig::new(ip("10.0.0.1"), 80).direct_routing(RS1_MAC))
            .unwrap();
        let b = lb
            .add_dest(svc, DestConfig::new(ip("10.0.0.2"), 80).direct_routing(RS2_MAC))
            .unwrap();
        lb.set_expire_quiescent_template(expire_quiescent);
        let syn = |port| tcp("198.51.100.7", port, "192.0.2.10", 80, SYN, b"", true);
        let d = fwd_dest(send(&mut lb, t(0), &syn(1), true).0);
        let mut cfg = lb.dest_info(d).unwrap().config;
        cfg.weight = 0;
        lb.edit_dest(d, cfg).unwrap();
        let next = fwd_dest(send(&mut lb, t(1), &syn(2), true).0);
        let other = if d == a { b } else { a };
        assert_eq!(next, if expire_quiescent { other } else { d });
    }
}

#[test]
fn syn_reusing_a_time_wait_tuple_is_rescheduled() {
    let (mut lb, vip, rip, _) = nat_lb(false, false);
    let svc = lb.service_ids().next().unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.3"), 8080).forward(Forward::Nat))
        .unwrap();
    let c = "198.51.100.7";
    let _ = send(&mut lb, t(0), &tcp(c, 1000, vip, 80, SYN, b"", true), true);
    let first = lb.conns().next().unwrap().dest;
    let (r, rp) = first;
    let _ = send(
        &mut lb,
        t(0),
        &tcp(&r.to_string(), rp, c, 1000, SYNACK, b"", true),
        true,
    );
    let _ = send(&mut lb, t(0), &tcp(c, 1000, vip, 80, ACK, b"", true), true);
    let _ = send(
        &mut lb,
        t(1),
        &tcp(&r.to_string(), rp, c, 1000, FIN, b"", true),
        true,
    );
    let _ = send(&mut lb, t(1), &tcp(c, 1000, vip, 80, FIN, b"", true), true);
    assert_eq!(lb.conns().next().unwrap().state, ConnState::TimeWait);
    let _ = send(&mut lb, t(2), &tcp(c, 1000, vip, 80, SYN, b"", true), true);
    assert_eq!(lb.counters().reused, 1);
    let conns: Vec<_> = lb.conns().collect();
    assert_eq!(conns.len(), 1, "the old entry was expired, a new one created");
    assert_eq!(conns[0].state, ConnState::SynRecv);
    let _ = rip;
}

#[test]
fn icmp_frag_needed_is_translated_for_nat() {
    let (mut lb, vip, rip, _) = nat_lb(false, false);
    let c = "198.51.100.7";
    let _ = send(&mut lb, t(0), &tcp(c, 1000, vip, 80, SYN, b"", true), true);
    // A router on the client side says our reply (VIP:80 -> client:1000) was too big.
    let quoted = tcp(vip, 80, c, 1000, SYNACK, b"", false);
    let mut icmp = Vec::new();
    etherparse::PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4([203, 0, 113, 1], [192, 0, 2, 10], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut icmp, &quoted)
        .unwrap();
    let (v, out) = send(&mut lb, t(1), &icmp, true);
    assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
    let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::NetSlice::Ipv4(outer)) = &p.net else {
        panic!()
    };
    assert_eq!(IpAddr::V4(outer.header().destination_addr()), ip(rip));
    let Some(etherparse::TransportSlice::Icmpv4(ic)) = &p.transport else {
        panic!()
    };
    let h = ic.header();
    assert_eq!(
        h.checksum,
        h.icmp_type.calc_checksum(ic.payload()),
        "ICMP checksum"
    );
    let inner = etherparse::Ipv4HeaderSlice::from_slice(ic.payload()).unwrap();
    assert_eq!(
        IpAddr::V4(inner.source_addr()),
        ip(rip),
        "quoted source is now the real server"
    );
    assert_eq!(inner.header_checksum(), inner.to_header().calc_header_checksum());
    let ports = &ic.payload()[inner.slice().len()..];
    assert_eq!(u16::from_be_bytes([ports[0], ports[1]]), 8080);
    // An unrelated ICMP error is passed to the host.
    let mut unrelated = Vec::new();
    etherparse::PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv4([203, 0, 113, 1], [192, 0, 2, 10], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut unrelated, &tcp(vip, 80, c, 9999, SYNACK, b"", false))
        .unwrap();
    assert_eq!(send(&mut lb, t(1), &unrelated, true).0, Verdict::Pass);
}

#[test]
fn wlc_counts_syn_recv_as_active_like_the_kernel() {
    let mut lb = lb();
    let svc = lb
        .add_service(ServiceConfig::tcp(ip("192.0.2.10"), 80).scheduler(Sched::Wlc))
        .unwrap();
    let a = lb
        .add_dest(
            svc,
            DestConfig::new(ip("10.0.0.1"), 80)
                .weight(1)
                .direct_routing(RS1_MAC),
        )
        .unwrap();
    let b = lb
        .add_dest(
            svc,
            DestConfig::new(ip("10.0.0.2"), 80)
                .weight(1)
                .direct_routing(RS2_MAC),
        )
        .unwrap();
    let syn = |port| tcp("198.51.100.7", port, "192.0.2.10", 80, SYN, b"", true);
    // List order is b, a (new at head): the first pick is b, then a (b has one active SYN_RECV).
    assert_eq!(fwd_dest(send(&mut lb, t(0), &syn(1), true).0), b);
    assert_eq!(fwd_dest(send(&mut lb, t(0), &syn(2), true).0), a);
    assert_eq!(lb.dest_info(b).unwrap().active, 1);
}

/// Counts the hints it is given.
#[derive(Default)]
struct CountingPrefetch(std::cell::Cell<usize>);

impl lbcore::balancer::Prefetch for CountingPrefetch {
    fn prefetch<T>(&self, _: &T) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn batch_gives_the_same_verdicts_and_bytes_as_single_calls() {
    use lbcore::balancer::STAGED_BATCH_MIN_TABLE_BYTES;
    // Every path: packet by packet (a small table), staged loads and the prefetch pipeline (a
    // medium and a large table, without and with a prefetcher), and the pipeline's second-entry
    // stage (a table above SECOND_PREFETCH_MIN_TABLE_BYTES: 600,000 entries are 38 MB).
    for capacity in [1024, 16384, 200_000, 600_000] {
        for prefetch in [false, true] {
            let cfg = || BalancerConfig {
                conn_capacity: capacity,
                mac: LB_MAC,
                ..Default::default()
            };
            let (one, many) = (lb_with(cfg()), lb_with(cfg()));
            let small = many.conn_table().memory_bytes() <= STAGED_BATCH_MIN_TABLE_BYTES;
            assert_eq!(small, capacity == 1024, "capacity {capacity}");
            let hints = CountingPrefetch::default();
            batch_matches_single_calls(one, many, |lb, frames, verdicts| {
                if prefetch {
                    lb.process_batch_prefetch(t(1), frames, verdicts, &hints);
                } else {
                    lb.process_batch(t(1), frames, verdicts);
                }
            });
            assert_eq!(hints.0.get() > 0, prefetch && !small, "capacity {capacity}");
        }
    }
}

fn batch_matches_single_calls(
    mut one: Balancer<'static>,
    mut many: Balancer<'static>,
    batch: impl FnOnce(&mut Balancer<'static>, &mut [lbcore::balancer::Frame<[u8; 2048]>], &mut [Verdict]),
) {
    dr_service(&mut one, "192.0.2.10", Sched::Wrr);
    dr_service(&mut many, "192.0.2.10", Sched::Wrr);
    let mut packets = vec![];
    for i in 0..50u16 {
        packets.push(tcp(
            "198.51.100.7",
            1000 + i % 13,
            "192.0.2.10",
            80,
            if i < 13 { SYN } else { ACK },
            b"abc",
            true,
        ));
        packets.push(vec![0u8; (i % 7) as usize]);
        packets.push(tcp("198.51.100.8", 1000, "192.0.2.99", 80, SYN, b"", true));
    }
    let singles: Vec<_> = packets.iter().map(|p| send(&mut one, t(1), p, true)).collect();
    let mut frames: Vec<_> = packets.iter().map(|p| frame(p, true)).collect();
    let mut verdicts = vec![Verdict::Consumed; frames.len()];
    batch(&mut many, &mut frames, &mut verdicts);
    for (i, (v, bytes)) in singles.iter().enumerate() {
        assert_eq!(&verdicts[i], v, "packet {i}");
        assert_eq!(frames[i].data(), &bytes[..], "packet {i}");
    }
    assert_eq!(one.counters(), many.counters());
}

#[test]
fn every_truncation_and_garbage_is_dropped_with_a_reason_never_a_panic() {
    let (mut lb, vip, _, _) = nat_lb(false, false);
    let full = tcp("198.51.100.7", 1000, vip, 80, SYN, &[0x55; 200], true);
    for len in 0..full.len() {
        let (v, _) = send(&mut lb, t(0), &full[..len], true);
        assert!(
            matches!(v, Verdict::Drop(DropReason::Malformed(_))),
            "len {len}: {v:?}"
        );
    }
    let mut rng = lbcore::rng::Rng::new(99);
    for len in 0..=1600usize {
        let mut g: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        if len > 14 && len % 2 == 0 {
            g[12] = 0x08; // make half of them claim IPv4
            g[13] = 0x00;
            g[14] = 0x45;
        }
        for eth in [true, false] {
            let (v, _) = send(&mut lb, t(0), &g, eth);
            assert!(matches!(
                v,
                Verdict::Drop(_) | Verdict::Pass | Verdict::Forward(_)
            ));
        }
    }
    let c = lb.counters();
    assert_eq!(c.rx, c.forwarded + c.passed + c.dropped);
    assert_eq!(
        lb.drop_counts().map(|(_, n)| n).sum::<u64>(),
        c.dropped,
        "every drop has a reason counter"
    );
}

#[test]
fn wrr_through_the_data_plane_picks_what_the_kernel_picks() {
    let mut lb = lb();
    let svc = lb
        .add_service(ServiceConfig::tcp(ip("192.0.2.10"), 80).scheduler(Sched::Wrr))
        .unwrap();
    let mut names = std::collections::HashMap::new();
    for (name, addr, w) in [('A', "10.0.0.1", 4), ('B', "10.0.0.2", 3), ('C', "10.0.0.3", 2)] {
        names.insert(
            lb.add_dest(
                svc,
                DestConfig::new(ip(addr), 80).weight(w).direct_routing(RS1_MAC),
            )
            .unwrap(),
            name,
        );
    }
    let picks: String = (0..3 + 9 * 3)
        .map(|i| {
            names[&fwd_dest(
                send(
                    &mut lb,
                    t(1),
                    &tcp("198.51.100.7", 1000 + i, "192.0.2.10", 80, SYN, b"", true),
                    true,
                )
                .0,
            )]
        })
        .collect();
    assert_eq!(picks, format!("CBA{}", "ABACBACBA".repeat(3)));
}

#[test]
fn ipvsadm_listings_of_a_running_balancer() {
    let mut lb = lb();
    let svc = lb
        .add_service(
            ServiceConfig::tcp(ip("172.27.9.100"), 81)
                .scheduler(Sched::Wrr)
                .persistent(Duration::from_secs(50)),
        )
        .unwrap();
    lb.add_dest(
        svc,
        DestConfig::new(ip("172.27.9.91"), 81).direct_routing(RS1_MAC),
    )
    .unwrap();
    lb.add_dest(
        svc,
        DestConfig::new(ip("172.27.9.92"), 81).direct_routing(RS2_MAC),
    )
    .unwrap();
    let _ = send(
        &mut lb,
        t(10),
        &tcp("192.0.2.1", 51234, "172.27.9.100", 81, SYN, b"", true),
        true,
    );
    let _ = send(
        &mut lb,
        t(10),
        &tcp("192.0.2.1", 51234, "172.27.9.100", 81, ACK, b"", true),
        true,
    );
    let _ = send(
        &mut lb,
        t(10),
        &tcp("192.0.2.77", 40000, "172.27.9.100", 81, SYN, b"", true),
        true,
    );
    assert_eq!(
        lbcore::render::list(&lb.table_info(), &lb.service_views()),
        "IP Virtual Server version 1.2.1 (size=1024)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  172.27.9.100:81 wrr persistent 50\n  \
         -> 172.27.9.91:81               Route   1      1          0         \n  \
         -> 172.27.9.92:81               Route   1      1          0         \n"
    );
    let mut conns = lbcore::render::list_conns(&lb.conn_views(t(12)));
    // Entries come out in table order; sort the lines below the header for a stable comparison.
    let mut lines: Vec<&str> = conns.lines().skip(2).collect();
    lines.sort();
    conns = format!("{}\n", lines.join("\n"));
    assert_eq!(
        conns,
        "TCP 00:48  NONE        192.0.2.1:0        172.27.9.100:81    172.27.9.92:81\n\
         TCP 00:48  NONE        192.0.2.77:0       172.27.9.100:81    172.27.9.91:81\n\
         TCP 00:58  SYN_RECV    192.0.2.77:40000   172.27.9.100:81    172.27.9.91:81\n\
         TCP 14:58  ESTABLISHED 192.0.2.1:51234    172.27.9.100:81    172.27.9.92:81\n"
    );
}

#[test]
fn rates_follow_the_ipvs_estimator() {
    let mut lb = lb();
    let svc = lb.add_service(ServiceConfig::udp(ip("192.0.2.10"), 53)).unwrap();
    lb.add_dest(svc, DestConfig::new(ip("10.0.0.2"), 53)).unwrap();
    lb.set_timeouts(Duration::ZERO, Duration::ZERO, Duration::from_secs(1));
    // 100 new flows per second for two minutes of virtual time, one 29-byte datagram each.
    let mut port = 1u16;
    for ms in (0..120_000u64).step_by(10) {
        let now = Instant::from_millis(ms);
        let _ = send(
            &mut lb,
            now,
            &udp("198.51.100.7", port, "192.0.2.10", 53, b"q", false),
            false,
        );
        port = port.wrapping_add(1).max(1);
        lb.expire(now, 64);
    }
    let r = lb.service_estimator(svc).unwrap().rates();
    assert_eq!((r.cps, r.inpps, r.outpps), (100, 100, 0));
    assert_eq!(r.inbps, 100 * 29);
}

#[test]
fn icmp_errors_from_the_server_side_are_translated_for_fullnat() {
    let (mut lb, vip, rip, lip) = nat_lb(false, true);
    let c = "198.51.100.7";
    let (_, out) = send(&mut lb, t(0), &tcp(c, 1000, vip, 80, SYN, b"", true), true);
    let lport = decode(&out, true).sport;
    // A router between us and the server: our packet LIP:lport -> RIP:8080 was too big.
    let quoted = tcp(lip, lport, rip, 8080, SYN, b"", false);
    let mut icmp = Vec::new();
    etherparse::PacketBuilder::ethernet2(RS1_MAC, LB_MAC)
        .ipv4([10, 0, 0, 254], [10, 0, 0, 100], 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut icmp, &quoted)
        .unwrap();
    let (v, out) = send(&mut lb, t(1), &icmp, true);
    assert!(matches!(v, Verdict::Forward(f) if f.next_hop == ip(c)), "{v:?}");
    let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::NetSlice::Ipv4(outer)) = &p.net else {
        panic!()
    };
    assert_eq!(
        (
            IpAddr::V4(outer.header().source_addr()),
            IpAddr::V4(outer.header().destination_addr())
        ),
        (ip(vip), ip(c)),
        "the client hears it from the VIP"
    );
    let Some(etherparse::TransportSlice::Icmpv4(ic)) = &p.transport else {
        panic!()
    };
    assert_eq!(
        ic.header().checksum,
        ic.header().icmp_type.calc_checksum(ic.payload())
    );
    let inner = etherparse::Ipv4HeaderSlice::from_slice(ic.payload()).unwrap();
    assert_eq!(
        (
            IpAddr::V4(inner.source_addr()),
            IpAddr::V4(inner.destination_addr())
        ),
        (ip(c), ip(vip))
    );
    let ports = &ic.payload()[inner.slice().len()..];
    assert_eq!(
        (
            u16::from_be_bytes([ports[0], ports[1]]),
            u16::from_be_bytes([ports[2], ports[3]])
        ),
        (1000, 80),
        "the quoted packet is the client's own"
    );
}

#[test]
fn icmpv6_packet_too_big_is_translated_for_nat() {
    let (mut lb, vip, rip, _) = nat_lb(true, false);
    let c = "2001:db8:ff::7";
    let _ = send(&mut lb, t(0), &tcp(c, 1000, vip, 80, SYN, b"", true), true);
    let quoted = tcp(vip, 80, c, 1000, SYNACK, b"", false);
    let mut icmp = Vec::new();
    etherparse::PacketBuilder::ethernet2(CLIENT_MAC, LB_MAC)
        .ipv6(
            ip("2001:db8:ee::1")
                .to_string()
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            ip(vip)
                .to_string()
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
        .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
        .write(&mut icmp, &quoted)
        .unwrap();
    let (v, out) = send(&mut lb, t(1), &icmp, true);
    assert!(matches!(v, Verdict::Forward(f) if f.next_hop == ip(rip)), "{v:?}");
    let p = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
    let Some(etherparse::NetSlice::Ipv6(outer)) = &p.net else {
        panic!()
    };
    assert_eq!(IpAddr::V6(outer.header().destination_addr()), ip(rip));
    let Some(etherparse::TransportSlice::Icmpv6(ic)) = &p.transport else {
        panic!()
    };
    let want = ic
        .header()
        .icmp_type
        .calc_checksum(
            outer.header().source_addr().octets(),
            outer.header().destination_addr().octets(),
            ic.payload(),
        )
        .unwrap();
    assert_eq!(
        ic.header().checksum,
        want,
        "ICMPv6 checksum with the pseudo-header"
    );
    let inner = etherparse::Ipv6HeaderSlice::from_slice(ic.payload()).unwrap();
    assert_eq!(IpAddr::V6(inner.source_addr()), ip(rip));
}
