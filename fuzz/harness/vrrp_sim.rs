//! The `vrrp_sim` fuzz target: two to four VRRP routers of one virtual router on a simulated
//! LAN (every advert a live router sends reaches the others at once, as in
//! `lbcore/tests/vrrp_sim.rs`), driven by a fuzzer-chosen sequence of timer steps, forged
//! adverts (well-formed with fuzzed fields, or raw bytes), crashes and restarts, priority
//! changes, interface down/up and shutdowns.
//!
//! Checked: no panic; time never goes back in `poll_timeout`; a router never adds a VIP it holds
//! or removes one it does not; VIPs are held exactly while in Master; and after the forging
//! stops and the LAN runs undisturbed for long enough to converge, **at most one** live router
//! is Master (and exactly one if any live router has not shut down and has no fault condition:
//! interface down, or a failed track of weight 0, which keepalived also treats as a fault).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::service::Family;
use lbcore::time::{Duration, Instant};
use lbcore::vrrp::wire::{Advert, AdvertRepr, TxEnvelope, emit_advert, parse_envelope};
use lbcore::vrrp::{Action, Auth, Config, Router, Rx, State, Version};

use crate::input::Input;

const VRID: u8 = 51;

struct Node {
    router: Router,
    alive: bool,
    down: bool,
    shut: bool,
    vips: BTreeSet<IpAddr>,
}

struct Lan {
    now: Instant,
    nodes: Vec<Node>,
}

impl Lan {
    /// Drains every router's actions and delivers every advert, until nothing moves.
    fn settle(&mut self) {
        for _ in 0..200 {
            let mut wire: Vec<(usize, Vec<u8>, bool)> = Vec::new();
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some(action) = n.router.poll_action() {
                    if !n.alive {
                        continue;
                    }
                    match action {
                        Action::AddVip(v) => {
                            assert!(n.vips.insert(v.addr), "router {i} added {v:?} twice")
                        }
                        Action::RemoveVip(v) => {
                            assert!(n.vips.remove(&v.addr), "router {i} removed {v:?} it did not hold")
                        }
                        Action::SendAdvert(p) => match p.frame() {
                            Some(f) => wire.push((i, f.to_vec(), true)),
                            None => wire.push((i, p.ip().to_vec(), false)),
                        },
                        Action::StateChanged { .. } | Action::SendGratuitous(_) => {}
                    }
                }
            }
            if wire.is_empty() {
                return;
            }
            let now = self.now;
            for (from, bytes, frame) in wire {
                let rx = if frame { Rx::Ethernet } else { Rx::Ip };
                for (j, n) in self.nodes.iter_mut().enumerate() {
                    if j != from && n.alive {
                        n.router.handle_packet(now, &bytes, rx);
                    }
                }
            }
        }
        panic!("the LAN did not settle: adverts bounce forever");
    }

    /// Fires timers in order until `until`.
    fn run_until(&mut self, until: Instant) {
        self.settle();
        for _ in 0..100_000 {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.router.poll_timeout())
                .min();
            match next {
                Some(t) if t <= until => {
                    let t = t.max(self.now);
                    self.now = t;
                    for n in self.nodes.iter_mut().filter(|n| n.alive) {
                        if n.router.poll_timeout().is_some_and(|d| d <= t) {
                            n.router.handle_timeout(t);
                        }
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    fn check_vips(&self) {
        for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            let master = n.router.state() == State::Master;
            assert_eq!(
                !n.vips.is_empty(),
                master,
                "router {i} in {:?} holds VIPs {:?}",
                n.router.state(),
                n.vips
            );
        }
    }
}

fn addr(v6: bool, i: u8) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1 + u16::from(i)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i))
    }
}

/// The `vrrp_sim` target.
pub fn vrrp_sim(data: &[u8]) {
    let mut inp = Input::new(data);
    let ctl = inp.u8();
    let v6 = ctl & 1 == 1;
    let version = if v6 || ctl & 2 == 2 {
        Version::V3
    } else {
        Version::V2
    };
    let interval = match version {
        Version::V2 => Duration::from_secs(1 + u64::from(inp.u8() % 3)),
        Version::V3 => Duration::from_millis(10 * (10 + u64::from(inp.u8() % 200))),
    };
    let vip = if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100))
    };
    let count = 2 + inp.below(3);
    let mut lan = Lan {
        now: Instant::from_secs(100),
        nodes: Vec::new(),
    };
    for i in 0..count {
        let mut c = Config::new(version, VRID, addr(v6, i as u8))
            .priority(1 + inp.u8() % 254)
            .advert_interval(interval)
            .vip(vip, if v6 { 64 } else { 24 })
            .track(i16::from(inp.u8() % 64) - 32);
        if version == Version::V2 {
            c = c.auth_pass(b"secret");
        }
        let opts = inp.u8();
        if opts & 1 != 0 {
            c = c.nopreempt();
        }
        if opts & 2 != 0 {
            c = c.preempt_delay(Duration::from_secs(u64::from(opts >> 5)));
        }
        if opts & 4 != 0 {
            c = c.lower_prio_no_advert();
        }
        if opts & 8 != 0 {
            c = c.higher_prio_send_advert();
        }
        if opts & 16 != 0 {
            c = c.start_state(lbcore::vrrp::StartState::Master);
        }
        let Ok(router) = Router::new(c) else {
            continue;
        };
        lan.nodes.push(Node {
            router,
            alive: true,
            down: false,
            shut: false,
            vips: BTreeSet::new(),
        });
    }
    if lan.nodes.is_empty() {
        return;
    }
    for n in &mut lan.nodes {
        n.router.start(lan.now);
    }
    lan.settle();

    // The longest advertisement interval a backup may have learned (VRRPv3 backups adopt the
    // master's, forged or not): it bounds the master-down timer, and so how long the LAN
    // needs to converge at the end.
    let mut learned = interval;
    let mut ops = 0;
    while !inp.is_empty() && ops < 64 {
        ops += 1;
        let i = inp.below(lan.nodes.len());
        match inp.below(9) {
            0..=2 => {
                // Up to 8 s, and at most 40 advert intervals: longer steps at a short interval
                // only repeat the steady state, advert after advert.
                let cap = (interval * 40).as_millis().min(8000) as u64;
                let d = Duration::from_millis(u64::from(inp.u16()) % cap);
                lan.run_until(lan.now + d);
            }
            // A forged advert with fuzzed fields, from a router's address or a stranger's.
            3 | 4 => {
                let src = addr(v6, inp.u8() % 6);
                let dst = if v6 {
                    IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12))
                } else {
                    IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18))
                };
                let addrs = [vip];
                let repr = AdvertRepr {
                    version,
                    vrid: if inp.u8() < 240 { VRID } else { inp.u8() },
                    priority: inp.u8(),
                    interval: if inp.bool() {
                        match version {
                            Version::V2 => interval.as_secs() as u16,
                            Version::V3 => (interval.as_millis() / 10) as u16,
                        }
                    } else {
                        inp.u16()
                    },
                    addrs: &addrs[..inp.below(2)],
                    auth: if inp.u8() < 240 {
                        Auth::pass(b"secret")
                    } else {
                        Auth::None
                    },
                };
                let tx = TxEnvelope {
                    src_mac: [0x02, 0, 0, 0, 0, 0x99],
                    dst_mac: [0x01, 0, 0x5e, 0, 0, 0x12],
                    src,
                    dst,
                    ip_id: 7,
                    flow_label: 0,
                    v3_checksum_as_v2: false,
                };
                if version == Version::V3 {
                    // The field has 12 bits: the emitter keeps the low 12 (at most 40.95 s).
                    let cs = repr.interval & 0x0fff;
                    learned = learned.max(Duration::from_millis(10 * u64::from(cs)));
                }
                let mut buf = [0u8; 128];
                if let Some(len) = emit_advert(&repr, &tx, &mut buf) {
                    let now = lan.now;
                    for n in lan.nodes.iter_mut().filter(|n| n.alive) {
                        n.router.handle_packet(now, &buf[..len], Rx::Ethernet);
                    }
                    lan.settle();
                }
            }
            // Raw bytes at one router.
            5 => {
                let raw = inp.bytes(96);
                let rx = if inp.bool() { Rx::Ethernet } else { Rx::Ip };
                // The bytes may be a valid advert: a backup learns its interval.
                if let Ok((env, msg)) = parse_envelope(raw, rx)
                    && let Ok(adv) = Advert::parse(msg, Family::of(&env.src))
                    && adv.version == Version::V3
                {
                    learned = learned.max(Duration::from_millis(10 * u64::from(adv.interval)));
                }
                let now = lan.now;
                if lan.nodes[i].alive {
                    lan.nodes[i].router.handle_packet(now, raw, rx);
                }
                lan.settle();
            }
            // Crash (falls silent, keeps its VIPs) or restart with a fresh router.
            6 => {
                let n = &mut lan.nodes[i];
                if n.alive {
                    n.alive = false;
                } else {
                    let cfg = n.router.config().clone();
                    n.router = Router::new(cfg).expect("a config accepted once is accepted again");
                    n.alive = true;
                    n.down = false;
                    n.shut = false;
                    n.vips.clear();
                    n.router.start(lan.now);
                    lan.settle();
                }
            }
            // Priority changes through tracking.
            7 => {
                let now = lan.now;
                let ok = inp.bool();
                if lan.nodes[i].alive {
                    lan.nodes[i].router.set_track(now, lbcore::vrrp::TrackId(0), ok);
                    lan.settle();
                }
            }
            // Interface down/up, or a clean shutdown.
            _ => {
                let now = lan.now;
                let n = &mut lan.nodes[i];
                if n.alive && !n.shut {
                    match inp.below(3) {
                        0 => {
                            n.router.interface_down(now);
                            n.down = true;
                        }
                        1 => {
                            n.router.interface_up(now);
                            n.down = false;
                        }
                        _ => {
                            n.router.shutdown(now);
                            n.shut = true;
                        }
                    }
                    lan.settle();
                }
            }
        }
        lan.check_vips();
    }

    // Converge undisturbed: long enough for the master-down timer (3 x the learned interval
    // + skew, skew < 1 interval), a preempt delay (<= 7 s) and a few adverts. Bounding it by
    // what was learned instead of the worst case (40.95 s) keeps most inputs short.
    let converge = learned * 4 + Duration::from_secs(9) + interval * 8;
    lan.run_until(lan.now + converge);
    lan.check_vips();
    let masters: Vec<usize> = (0..lan.nodes.len())
        .filter(|&i| lan.nodes[i].alive && lan.nodes[i].router.state() == State::Master)
        .collect();
    let dump = || {
        lan.nodes
            .iter()
            .map(|n| {
                format!(
                    "{{alive {} down {} shut {} {:?} prio {} master {:?}}}",
                    n.alive,
                    n.down,
                    n.shut,
                    n.router.state(),
                    n.router.priority(),
                    n.router.master()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        masters.len() <= 1,
        "after convergence {} masters: {}",
        masters.len(),
        dump()
    );
    // A router in a fault condition (interface down, or a failed weight-0 track) cannot be master.
    let eligible = lan
        .nodes
        .iter()
        .any(|n| n.alive && !n.shut && !n.router.fault_condition());
    if eligible {
        assert_eq!(
            masters.len(),
            1,
            "after convergence no master among eligible routers: {}",
            dump()
        );
    }
}
