//! Properties checked on arbitrary bytes, shared by the fuzz targets (`fuzz/fuzz_targets/`) and
//! the stable corpus replay (`lbcore/tests/fuzz_corpus.rs`, via `#[path]`), so that both run the
//! very same code. Each function panics when a property is violated.
//!
//! `parse_frame` feeds the bytes through the whole data plane: a balancer with one service of
//! every forwarding method (DR, IPIP and GUE tunnels, NAT, FULLNAT; IPv4 and IPv6; TCP, UDP,
//! fwmark and a persistent port-0 service) processes the frame, then a copy of it a second later
//! (the established path), and then expires everything. Checked: no panic; every packet gets
//! exactly one verdict, counted once; a forwarded frame stays inside its buffer and is at least
//! an IP header long; the counters add up.
//!
//! Input layout: byte 0 picks the link kind (bit 0: bare IP instead of Ethernet) and the fwmark
//! (bits 1-2: none, 7, 8, none); the rest is the frame.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Verdict};
use lbcore::service::{
    DestConfig, Family, Forward, Netmask, Sched, SchedFlags, ServiceConfig, ServiceKey, TunnelType,
};
use lbcore::time::{Duration, Instant};
use lbcore::wire::LinkKind;

/// The virtual addresses the harness configures (the seed corpus targets them).
pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// The IPv6 virtual address.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100);

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, last))
}

/// The balancer every input runs against: small tables so that a frame can also fill them.
pub fn balancer() -> Balancer<'static> {
    let mut cfg = BalancerConfig {
        conn_capacity: 8,
        max_services: 16,
        seed: 1,
        gateway_mac: Some([0x02, 0xee, 0, 0, 0, 1]),
        tunnel_source_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        tunnel_source_v6: Some(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        local_ports: (40000, 40003),
        ..BalancerConfig::default()
    };
    cfg.local_addrs
        .push(IpAddr::V4(Ipv4Addr::new(10, 0, 2, 1)))
        .unwrap();
    cfg.local_addrs
        .push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1)))
        .unwrap();
    let mut lb = Balancer::new(cfg).expect("valid balancer config");
    let vip4 = IpAddr::V4(VIP4);
    let vip6 = IpAddr::V6(VIP6);
    let mac = [0x02, 0x5e, 0, 0, 0, 9];
    let gue = Forward::Tunnel(TunnelType::Gue { port: 6080 });
    let services: [(ServiceConfig, [DestConfig; 2]); 10] = [
        (
            ServiceConfig::tcp(vip4, 80).scheduler(Sched::Wlc),
            [
                DestConfig::new(v4(1), 80).direct_routing(mac),
                DestConfig::new(v4(2), 80).direct_routing(mac),
            ],
        ),
        (
            ServiceConfig::udp(vip4, 53).scheduler(Sched::Rr).one_packet(true),
            [
                DestConfig::new(v4(1), 53).forward(Forward::Nat),
                DestConfig::new(v4(2), 5353).forward(Forward::Nat),
            ],
        ),
        (
            ServiceConfig::tcp(vip4, 443)
                .scheduler(Sched::Mh)
                .flags(SchedFlags::PORT),
            [
                DestConfig::new(v4(1), 443).forward(Forward::FullNat),
                DestConfig::new(v4(2), 443).forward(Forward::FullNat),
            ],
        ),
        (
            ServiceConfig::tcp(vip4, 8080).scheduler(Sched::Sh),
            [
                DestConfig::new(v4(1), 8080).forward(Forward::Tunnel(TunnelType::Ipip)),
                DestConfig::new(v4(2), 8080).forward(gue),
            ],
        ),
        (
            ServiceConfig::tcp(vip4, 0)
                .scheduler(Sched::Lc)
                .persistent(Duration::from_secs(300))
                .netmask(Netmask::V4(0xffff_ff00)),
            [
                DestConfig::new(v4(1), 0).forward(Forward::Nat),
                DestConfig::new(v4(2), 0).forward(Forward::Nat),
            ],
        ),
        (
            ServiceConfig::new(ServiceKey::Fwmark {
                family: Family::V4,
                mark: 7,
            })
            .scheduler(Sched::Wrr)
            .persistent(Duration::from_secs(60)),
            [
                DestConfig::new(v4(1), 0).direct_routing(mac).weight(3),
                DestConfig::new(v4(2), 0).direct_routing(mac).weight(0),
            ],
        ),
        (
            ServiceConfig::tcp(vip6, 80).scheduler(Sched::Sed),
            [
                DestConfig::new(v6(1), 80).direct_routing(mac),
                DestConfig::new(v6(2), 80).forward(Forward::Nat),
            ],
        ),
        (
            ServiceConfig::udp(vip6, 53).scheduler(Sched::Nq),
            [
                DestConfig::new(v6(1), 53).forward(Forward::FullNat),
                DestConfig::new(v6(2), 53).forward(Forward::Tunnel(TunnelType::Ipip)),
            ],
        ),
        (
            ServiceConfig::tcp(vip6, 443).scheduler(Sched::Twos),
            [
                DestConfig::new(v6(1), 443).forward(gue),
                DestConfig::new(v6(2), 443).thresholds(1, 0),
            ],
        ),
        (
            ServiceConfig::new(ServiceKey::Fwmark {
                family: Family::V6,
                mark: 8,
            })
            .scheduler(Sched::Dh)
            .persistent(Duration::from_secs(60))
            .netmask(Netmask::V6Prefix(64)),
            [
                DestConfig::new(v6(1), 0).direct_routing(mac),
                DestConfig::new(v6(2), 0).direct_routing(mac),
            ],
        ),
    ];
    for (svc, dests) in services {
        let id = lb.add_service(svc).expect("valid service");
        for d in dests {
            lb.add_dest(id, d).expect("valid destination");
        }
    }
    lb
}

/// Splits an input into its receive metadata and frame bytes.
pub fn split_input(data: &[u8]) -> (RxMeta, &[u8]) {
    let Some((&ctl, frame)) = data.split_first() else {
        return (RxMeta::ETHERNET, &[]);
    };
    let link = if ctl & 1 == 0 {
        LinkKind::Ethernet
    } else {
        LinkKind::Ip
    };
    let fwmark = match (ctl >> 1) & 3 {
        1 => 7,
        2 => 8,
        _ => 0,
    };
    (RxMeta { link, fwmark }, frame)
}

/// Processes one frame and checks what the verdict promises.
fn process_checked(lb: &mut Balancer<'_>, now: Instant, meta: RxMeta, bytes: &[u8]) {
    let Some(mut frame) = Frame::copy_from(bytes, meta) else {
        return; // longer than a 2 KiB buffer: not a frame a driver would hand over
    };
    let before = *lb.counters();
    let verdict = lb.process(now, &mut frame);
    let after = *lb.counters();
    assert_eq!(after.rx, before.rx + 1, "rx counts every packet");
    let (fwd, pass, drop) = (
        after.forwarded - before.forwarded,
        after.passed - before.passed,
        after.dropped - before.dropped,
    );
    match verdict {
        Verdict::Forward(_) => {
            assert_eq!((fwd, pass, drop), (1, 0, 0));
            assert!(
                frame
                    .start
                    .checked_add(frame.len)
                    .is_some_and(|end| end <= frame.buf.len())
            );
            assert!(
                frame.len >= 20,
                "forwarded {} bytes: shorter than an IP header",
                frame.len
            );
        }
        Verdict::Pass => {
            assert_eq!((fwd, pass, drop), (0, 1, 0));
            assert_eq!(frame.data(), bytes, "a passed packet is handed over unchanged");
        }
        Verdict::Drop(reason) => {
            assert_eq!((fwd, pass, drop), (0, 0, 1));
            assert!(
                lb.drops(reason) > 0,
                "the drop reason {} is counted",
                reason.name()
            );
        }
        Verdict::Consumed => assert_eq!((fwd, pass, drop), (0, 0, 0)),
    }
}

/// The `parse_frame` fuzz target.
pub fn parse_frame(data: &[u8]) {
    let (meta, bytes) = split_input(data);
    let mut lb = balancer();
    let t0 = Instant::from_secs(1000);
    process_checked(&mut lb, t0, meta, bytes);
    // Again a second later: the established path (or a second new connection).
    process_checked(&mut lb, t0 + Duration::from_secs(1), meta, bytes);

    let c = *lb.counters();
    assert_eq!(c.dropped, lb.drop_counts().map(|(_, n)| n).sum::<u64>());
    assert!(lb.conn_table().len() <= 8);

    // Everything expires eventually, and expiry returns every FULLNAT port and every entry.
    // A template still controlling connections is re-armed once, so it takes a second pass.
    for pass in 1..=3 {
        lb.expire(t0 + Duration::from_secs(100_000 * pass), 8);
    }
    assert_eq!(lb.conn_table().len(), 0, "all connections expired");
}
