//! `lbcore::config::apply`: a reload converges the balancer with the fewest changes, and what
//! did not change keeps its connections.

mod common;

use std::net::IpAddr;

use common::*;
use lbcore::balancer::{Balancer, BalancerConfig, Verdict};
use lbcore::config::{ApplyReport, DesiredService, apply, apply::check};
use lbcore::service::{DestConfig, Sched, ServiceConfig};
use lbcore::time::{Duration, Instant};

const RS_MAC: [u8; 6] = [0x02, 0x55, 0, 0, 0, 1];

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn lb() -> Balancer<'static> {
    Balancer::new(BalancerConfig {
        conn_capacity: 1024,
        max_services: 4,
        mac: LB_MAC,
        ..Default::default()
    })
    .unwrap()
}

fn dr(rip: &str, weight: i32) -> DestConfig {
    DestConfig::new(ip(rip), 80).weight(weight).direct_routing(RS_MAC)
}

fn web(vip: &str, sched: Sched, dests: &[(&str, i32)]) -> DesiredService {
    DesiredService {
        service: ServiceConfig::tcp(ip(vip), 80).scheduler(sched),
        dests: dests.iter().map(|(r, w)| dr(r, *w)).collect(),
    }
}

fn syn(lb: &mut Balancer<'_>, client: &str, vip: &str) -> Verdict {
    let mut f = frame(&tcp(client, 40000, vip, 80, SYN, b"", true), true);
    lb.process(Instant::from_secs(1), &mut f)
}

fn active(lb: &Balancer<'_>, vip: &str, rip: &str) -> u32 {
    let svc = lb
        .find_service(&ServiceConfig::tcp(ip(vip), 80).key)
        .expect("service");
    let d = lb.find_dest(svc, ip(rip), 80).expect("dest");
    let info = lb.dest_info(d).unwrap();
    info.active + info.inactive
}

#[test]
fn first_apply_adds_everything_second_changes_nothing() {
    let mut lb = lb();
    let want = vec![
        web("192.0.2.1", Sched::Wrr, &[("10.0.0.1", 1), ("10.0.0.2", 2)]),
        web("192.0.2.2", Sched::Rr, &[("10.0.0.3", 1)]),
    ];
    let r = apply(&mut lb, &want).unwrap();
    assert_eq!(
        r,
        ApplyReport {
            services_added: 2,
            dests_added: 3,
            ..Default::default()
        }
    );
    let r = apply(&mut lb, &want).unwrap();
    assert!(!r.changed(), "{r}");
    assert_eq!(r.services_unchanged, 2);
}

#[test]
fn a_weight_change_edits_one_dest_and_keeps_every_connection() {
    let mut lb = lb();
    let mut want = vec![
        web("192.0.2.1", Sched::Wlc, &[("10.0.0.1", 1), ("10.0.0.2", 1)]),
        web("192.0.2.2", Sched::Rr, &[("10.0.0.3", 1)]),
    ];
    apply(&mut lb, &want).unwrap();
    for i in 0..10 {
        let client = format!("198.51.100.{}", i + 1);
        assert!(matches!(syn(&mut lb, &client, "192.0.2.1"), Verdict::Forward(_)));
        assert!(matches!(syn(&mut lb, &client, "192.0.2.2"), Verdict::Forward(_)));
    }
    let before = (
        active(&lb, "192.0.2.1", "10.0.0.1"),
        active(&lb, "192.0.2.1", "10.0.0.2"),
        active(&lb, "192.0.2.2", "10.0.0.3"),
    );
    assert_eq!(before, (5, 5, 10));

    want[0].dests[1].weight = 5;
    let r = apply(&mut lb, &want).unwrap();
    assert_eq!(
        r,
        ApplyReport {
            services_unchanged: 1,
            dests_edited: 1,
            ..Default::default()
        }
    );
    let after = (
        active(&lb, "192.0.2.1", "10.0.0.1"),
        active(&lb, "192.0.2.1", "10.0.0.2"),
        active(&lb, "192.0.2.2", "10.0.0.3"),
    );
    assert_eq!(after, before, "connections survive the reload");
    let svc = lb.find_service(&want[0].service.key).unwrap();
    let d = lb.find_dest(svc, ip("10.0.0.2"), 80).unwrap();
    assert_eq!(lb.dest_info(d).unwrap().config.weight, 5);
}

#[test]
fn services_and_dests_come_and_go_and_edits_stay_in_place() {
    let mut lb = lb();
    apply(
        &mut lb,
        &[
            web("192.0.2.1", Sched::Rr, &[("10.0.0.1", 1), ("10.0.0.2", 1)]),
            web("192.0.2.2", Sched::Rr, &[("10.0.0.3", 1)]),
        ],
    )
    .unwrap();
    let kept = lb
        .find_service(&ServiceConfig::tcp(ip("192.0.2.1"), 80).key)
        .unwrap();
    let mut persistent = web("192.0.2.1", Sched::Sh, &[("10.0.0.2", 1), ("10.0.0.4", 1)]);
    persistent.service = persistent.service.persistent(Duration::from_secs(50));
    let r = apply(
        &mut lb,
        &[
            persistent.clone(),
            web("192.0.2.9", Sched::Lc, &[("10.0.0.5", 1)]),
        ],
    )
    .unwrap();
    assert_eq!(
        r,
        ApplyReport {
            services_added: 1,
            services_edited: 1,
            services_removed: 1,
            dests_added: 2,
            dests_removed: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        lb.find_service(&persistent.service.key),
        Some(kept),
        "edited in place, not re-added"
    );
    assert_eq!(lb.service_config(kept), Some(&persistent.service));
    assert!(
        lb.find_service(&ServiceConfig::tcp(ip("192.0.2.2"), 80).key)
            .is_none()
    );
    let live: Vec<IpAddr> = lb
        .dest_ids(kept)
        .filter_map(|d| lb.dest_info(d))
        .filter(|i| !i.removed)
        .map(|i| i.config.addr)
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.contains(&ip("10.0.0.2")) && live.contains(&ip("10.0.0.4")));
}

#[test]
fn check_refuses_what_apply_would_fail_on_and_changes_nothing() {
    let mut lb = lb();
    let good = vec![web("192.0.2.1", Sched::Rr, &[("10.0.0.1", 1)])];
    apply(&mut lb, &good).unwrap();

    // Five services do not fit a table of four.
    let too_many: Vec<DesiredService> = (1..=5)
        .map(|i| web(&format!("192.0.2.{i}"), Sched::Rr, &[("10.0.0.1", 1)]))
        .collect();
    let e = check(&lb, &too_many).unwrap_err();
    assert_eq!(e.to_string(), "service TCP 192.0.2.5:80: service table is full");

    // DR without a MAC.
    let mut no_mac = good.clone();
    no_mac[0]
        .dests
        .push(DestConfig::new(ip("10.0.0.7"), 80).forward(lbcore::service::Forward::DirectRouting));
    let e = check(&lb, &no_mac).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service TCP 192.0.2.1:80 destination 10.0.0.7:80: direct routing needs the real server's MAC address"
    );

    assert!(check(&lb, &good).is_ok());
    let r = apply(&mut lb, &good).unwrap();
    assert!(!r.changed(), "the failed checks changed nothing: {r}");
}
