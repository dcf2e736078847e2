//! Deterministic virtual-time stories: a small LAN delivers every advert a router sends to the
//! others at once (zero latency), and time jumps from timer to timer. Each test reads as a
//! story: who starts when, who fails, and at which exact instant who becomes master.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::time::{Duration, Instant};
use lbcore::vrrp::{Action, Config, Router, Rx, State, SyncGroup, TrackId, Version};

// ----- the LAN -----

/// One box on the LAN: a lone router or a sync group.
enum Machine {
    Single(Box<Router>),
    Group(Box<SyncGroup<4>>),
}

impl Machine {
    fn handle_packet(&mut self, now: Instant, bytes: &[u8], rx: Rx) {
        match self {
            Machine::Single(r) => r.handle_packet(now, bytes, rx),
            Machine::Group(g) => g.handle_packet(now, bytes, rx),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.handle_timeout(now),
            Machine::Group(g) => g.handle_timeout(now),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Machine::Single(r) => r.poll_timeout(),
            Machine::Group(g) => g.poll_timeout(),
        }
    }
    fn poll_action(&mut self) -> Option<(usize, Action)> {
        match self {
            Machine::Single(r) => r.poll_action().map(|a| (0, a)),
            Machine::Group(g) => g.poll_action(),
        }
    }
    fn start(&mut self, now: Instant) {
        match self {
            Machine::Single(r) => r.start(now),
            Machine::Group(g) => g.start(now),
        }
    }
    fn router(&self, member: usize) -> &Router {
        match self {
            Machine::Single(r) => r,
            Machine::Group(g) => g.member(member).unwrap(),
        }
    }
    fn addrs(&self) -> Vec<IpAddr> {
        match self {
            Machine::Single(r) => vec![r.config().src],
            Machine::Group(g) => g.members().iter().map(|r| r.config().src).collect(),
        }
    }
}

struct Node {
    name: &'static str,
    machine: Machine,
    alive: bool,
    vips: BTreeSet<IpAddr>,
}

/// Something that happened on the LAN, for assertions and for the determinism check.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Event {
    State {
        at: Instant,
        node: &'static str,
        member: usize,
        from: State,
        to: State,
    },
    Advert {
        at: Instant,
        node: &'static str,
        vrid: u8,
        priority: u8,
    },
}

struct Lan {
    now: Instant,
    nodes: Vec<Node>,
    events: Vec<Event>,
    gratuitous: usize,
}

impl Lan {
    fn new() -> Lan {
        Lan {
            now: Instant::ZERO,
            nodes: Vec::new(),
            events: Vec::new(),
            gratuitous: 0,
        }
    }

    /// Plug in a router (not started).
    fn add(&mut self, name: &'static str, cfg: Config) -> usize {
        self.plug(name, Machine::Single(Box::new(Router::new(cfg).unwrap())))
    }

    /// Plug in a sync group of routers (not started).
    fn add_group(&mut self, name: &'static str, cfgs: Vec<Config>) -> usize {
        let mut g = SyncGroup::<4>::new();
        for c in cfgs {
            g.add(Router::new(c).unwrap()).unwrap();
        }
        self.plug(name, Machine::Group(Box::new(g)))
    }

    fn plug(&mut self, name: &'static str, machine: Machine) -> usize {
        self.nodes.push(Node {
            name,
            machine,
            alive: true,
            vips: BTreeSet::new(),
        });
        self.nodes.len() - 1
    }

    fn start(&mut self, node: usize) {
        let now = self.now;
        self.nodes[node].machine.start(now);
        self.settle();
    }

    /// SIGKILL: the box falls silent at once, holding whatever it held.
    fn crash(&mut self, node: usize) {
        self.nodes[node].alive = false;
    }

    /// Run a command on a router (or a group) now, then let the LAN settle.
    fn with(&mut self, node: usize, f: impl FnOnce(&mut Machine, Instant)) {
        let now = self.now;
        f(&mut self.nodes[node].machine, now);
        self.settle();
    }

    fn router(&self, node: usize) -> &Router {
        self.nodes[node].machine.router(0)
    }

    fn member(&self, node: usize, member: usize) -> &Router {
        self.nodes[node].machine.router(member)
    }

    fn state(&self, node: usize) -> State {
        self.router(node).state()
    }

    /// Advance virtual time to `until`, firing every timer on the way.
    fn run_until(&mut self, until: Instant) {
        self.settle();
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.machine.poll_timeout())
                .min();
            match next {
                Some(t) if t <= until => {
                    assert!(t >= self.now, "timers never go back in time");
                    self.now = t;
                    for n in self.nodes.iter_mut().filter(|n| n.alive) {
                        if n.machine.poll_timeout().is_some_and(|d| d <= t) {
                            n.machine.handle_timeout(t);
                        }
                    }
                    self.settle();
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Drain every output and deliver every packet, until nothing moves.
    fn settle(&mut self) {
        for _round in 0..100 {
            let mut wire: Vec<(usize, Vec<u8>, IpAddr, bool)> = Vec::new();
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some((member, action)) = n.machine.poll_action() {
                    if !n.alive {
                        continue;
                    }
                    match action {
                        Action::StateChanged { from, to } => self.events.push(Event::State {
                            at: self.now,
                            node: n.name,
                            member,
                            from,
                            to,
                        }),
                        Action::AddVip(v) => assert!(n.vips.insert(v.addr), "{} added {:?} twice", n.name, v),
                        Action::RemoveVip(v) => assert!(n.vips.remove(&v.addr), "{} removed {:?}", n.name, v),
                        Action::SendAdvert(p) => {
                            let vrrp = p.vrrp();
                            self.events.push(Event::Advert {
                                at: self.now,
                                node: n.name,
                                vrid: vrrp[1],
                                priority: p.priority(),
                            });
                            match p.frame() {
                                Some(f) => wire.push((i, f.to_vec(), p.dst(), true)),
                                None => wire.push((i, p.ip().to_vec(), p.dst(), false)),
                            }
                        }
                        Action::SendGratuitous(_) => self.gratuitous += 1,
                    }
                }
            }
            if wire.is_empty() {
                return;
            }
            let now = self.now;
            for (from, bytes, dst, is_frame) in wire {
                let rx = if is_frame { Rx::Ethernet } else { Rx::Ip };
                let multicast = match dst {
                    IpAddr::V4(a) => a.is_multicast(),
                    IpAddr::V6(a) => a.is_multicast(),
                };
                for (j, n) in self.nodes.iter_mut().enumerate() {
                    if j == from || !n.alive || !(multicast || n.machine.addrs().contains(&dst)) {
                        continue;
                    }
                    n.machine.handle_packet(now, &bytes, rx);
                }
            }
        }
        panic!("the LAN did not settle: adverts bounce forever");
    }

    fn masters(&self) -> Vec<&'static str> {
        self.nodes
            .iter()
            .filter(|n| n.alive && n.machine.router(0).state() == State::Master)
            .map(|n| n.name)
            .collect()
    }

    /// When `node` last entered `to`.
    fn entered(&self, node: &str, to: State) -> Option<Instant> {
        self.entered_member(node, 0, to)
    }

    fn entered_member(&self, node: &str, member: usize, to: State) -> Option<Instant> {
        self.events.iter().rev().find_map(|e| match e {
            Event::State {
                at,
                node: n,
                member: m,
                to: t,
                ..
            } if *n == node && *m == member && *t == to => Some(*at),
            _ => None,
        })
    }

    /// When `node` last sent an advert (at or before `before`).
    fn last_advert(&self, node: &str, before: Instant) -> Instant {
        self.events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Advert { at, node: n, .. } if *n == node && *at <= before => Some(*at),
                _ => None,
            })
            .expect("an advert")
    }
}

// ----- configurations -----

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn v6(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last))
}

const VIP4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
const VIP6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100));

/// VRRPv2 with keepalived's PASS authentication, or VRRPv3, over IPv4.
fn cfg(version: Version, last: u8, priority: u8) -> Config {
    let c = Config::new(version, 51, v4(last))
        .priority(priority)
        .vip(VIP4, 24);
    match version {
        Version::V2 => c.auth_pass(b"secret"),
        Version::V3 => c,
    }
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn at_micros(us: u64) -> Instant {
    Instant::from_nanos(us * 1000)
}

/// keepalived's skew for a 1 s interval: (256 - priority) / 256 s, to the microsecond.
fn skew_us(priority: u8) -> u64 {
    (256 - u64::from(priority)) * 1_000_000 / 256
}

/// Master_Down_Interval for a 1 s interval, in microseconds.
fn down_us(priority: u8) -> u64 {
    3_000_000 + skew_us(priority)
}

const VERSIONS: [Version; 2] = [Version::V2, Version::V3];

// ----- stories -----

#[test]
fn two_routers_converge_to_the_higher_priority() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 200));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(secs(60));

        // a's master-down timer (3 s + 56/256 s) runs out first; b hears a and stays backup.
        assert_eq!(lan.entered("a", State::Master), Some(at_micros(down_us(200))));
        assert_eq!(lan.entered("b", State::Master), None);
        assert_eq!(lan.masters(), vec!["a"]);
        assert_eq!(lan.state(b), State::Backup);
        assert_eq!(lan.nodes[a].vips, BTreeSet::from([VIP4]));
        assert!(lan.nodes[b].vips.is_empty());
        assert_eq!(lan.router(b).master(), Some((v4(1), 200)));
        // One advert a second, all accepted.
        let sent = lan.router(a).counters().adverts_sent;
        assert_eq!(sent, 57, "{version:?}");
        assert_eq!(lan.router(b).counters().adverts_received, sent);
        assert_eq!(lan.router(b).counters().rejected_total(), 0);
        // Becoming master: 5 gratuitous ARPs, and 5 more after garp_master_delay (5 s).
        assert_eq!(lan.gratuitous, 10);
    }
}

#[test]
fn three_routers_converge_to_the_highest_priority() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let low = lan.add("low", cfg(version, 1, 50));
        let high = lan.add("high", cfg(version, 2, 250));
        let mid = lan.add("mid", cfg(version, 3, 150));
        for n in [low, high, mid] {
            lan.start(n);
        }
        lan.run_until(secs(30));
        assert_eq!(lan.masters(), vec!["high"]);
        assert_eq!(lan.entered("high", State::Master), Some(at_micros(down_us(250))));
        for n in [low, mid] {
            assert_eq!(lan.state(n), State::Backup);
            assert_eq!(lan.router(n).master(), Some((v4(2), 250)));
        }
    }
}

#[test]
fn master_crash_backup_takes_over_after_exactly_the_master_down_interval() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 200));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(Instant::from_millis(20_500));
        lan.crash(a);
        let last = lan.last_advert("a", lan.now);
        lan.run_until(secs(40));

        // b heard a last at `last`: it waits 3 × 1 s + (256 - 100)/256 s = 3.609375 s.
        assert_eq!(
            lan.router(b).master_down_interval(),
            Duration::from_micros(3_609_375)
        );
        let took_over = lan.entered("b", State::Master).unwrap();
        assert_eq!(took_over, last + Duration::from_micros(down_us(100)));
        assert_eq!(lan.masters(), vec!["b"]);
        assert_eq!(lan.nodes[b].vips, BTreeSet::from([VIP4]));
    }
}

#[test]
fn priority_zero_release_hands_over_after_the_skew_time() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 200));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(Instant::from_millis(10_300));

        // a shuts down: a priority-0 advert, its VIP removed.
        lan.with(a, |m, now| match m {
            Machine::Single(r) => r.shutdown(now),
            Machine::Group(_) => unreachable!(),
        });
        assert!(lan.events.contains(&Event::Advert {
            at: lan.now,
            node: "a",
            vrid: 51,
            priority: 0
        }));
        assert!(lan.nodes[a].vips.is_empty());
        assert_eq!(lan.state(a), State::Initialize);
        let released = lan.now;
        lan.run_for(Duration::from_secs(5));

        // b takes over after its skew time alone: 156/256 s = 609 375 µs.
        assert_eq!(
            lan.entered("b", State::Master),
            Some(released + Duration::from_micros(skew_us(100)))
        );
        assert_eq!(lan.router(b).counters().priority_zero_received, 1);
        assert_eq!(lan.nodes[b].vips, BTreeSet::from([VIP4]));
    }
}

#[test]
fn a_higher_priority_router_preempts_a_running_master() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let low = lan.add("low", cfg(version, 1, 100));
        let high = lan.add("high", cfg(version, 2, 200));
        lan.start(low);
        lan.run_until(secs(10));
        assert_eq!(lan.masters(), vec!["low"]);

        // high starts at 10 s, discards low's lower-priority adverts, and takes over when its
        // own master-down timer runs out; low hears it and steps back.
        lan.start(high);
        lan.run_until(secs(30));
        let t = secs(10) + Duration::from_micros(down_us(200));
        assert_eq!(lan.entered("high", State::Master), Some(t));
        assert_eq!(lan.entered("low", State::Backup), Some(t));
        assert_eq!(lan.masters(), vec!["high"]);
        assert!(lan.router(high).counters().lower_priority_ignored >= 3);
        assert!(lan.nodes[low].vips.is_empty());
        assert_eq!(lan.nodes[high].vips, BTreeSet::from([VIP4]));
    }
}

#[test]
fn nopreempt_leaves_a_lower_priority_master_alone() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let low = lan.add("low", cfg(version, 1, 100));
        let high = lan.add("high", cfg(version, 2, 200).nopreempt());
        lan.start(low);
        lan.run_until(secs(10));
        lan.start(high);
        lan.run_until(secs(100));
        assert_eq!(lan.masters(), vec!["low"]);
        assert_eq!(lan.entered("high", State::Master), None);

        // Only when the master dies does the nopreempt router take over.
        lan.crash(low);
        let last = lan.last_advert("low", lan.now);
        lan.run_until(secs(110));
        assert_eq!(
            lan.entered("high", State::Master),
            Some(last + Duration::from_micros(down_us(200)))
        );
    }
}

#[test]
fn preempt_delay_tolerates_a_lower_priority_master_for_a_while() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let low = lan.add("low", cfg(version, 1, 100));
        let high = lan.add(
            "high",
            cfg(version, 2, 200).preempt_delay(Duration::from_secs(30)),
        );
        lan.start(low);
        lan.run_until(secs(10));
        lan.start(high);
        lan.run_until(secs(60));

        // low became master at 3.609375 s and advertises every second after. high started at
        // 10 s with preempt_delay 30 s: it accepts low's adverts until 40 s (the last at
        // 39.609375 s), ignores the next, and takes over a master-down interval later.
        let last_accepted = at_micros(39_609_375);
        let t = last_accepted + Duration::from_micros(down_us(200));
        assert_eq!(t, at_micros(42_828_125));
        assert_eq!(lan.entered("high", State::Master), Some(t));
        assert_eq!(lan.masters(), vec!["high"]);
    }
}

#[test]
fn equal_priorities_are_resolved_by_the_higher_address() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 100));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(secs(20));
        // Both time out at the same instant and become master; 10.0.0.2 > 10.0.0.1 wins.
        let t = at_micros(down_us(100));
        assert_eq!(lan.entered("a", State::Master), Some(t));
        assert_eq!(lan.entered("b", State::Master), Some(t));
        assert_eq!(lan.entered("a", State::Backup), Some(t));
        assert_eq!(lan.masters(), vec!["b"]);
        assert!(lan.nodes[a].vips.is_empty());
        assert_eq!(lan.nodes[b].vips, BTreeSet::from([VIP4]));
    }
}

#[test]
fn the_address_owner_takes_over_at_once() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let backup = lan.add("backup", cfg(version, 1, 100));
        let owner = lan.add("owner", cfg(version, 2, 255));
        lan.start(backup);
        lan.run_until(secs(10));
        assert_eq!(lan.masters(), vec!["backup"]);

        // Priority 255 starts as master without waiting, and the other router yields.
        lan.start(owner);
        assert_eq!(lan.entered("owner", State::Master), Some(secs(10)));
        assert_eq!(lan.entered("backup", State::Backup), Some(secs(10)));
        lan.run_until(secs(30));
        assert_eq!(lan.masters(), vec!["owner"]);
        assert!(lan.router(owner).accepts_vip_traffic());
        assert_eq!(lan.router(owner).priority(), 255);
    }
}

#[test]
fn a_weight_zero_track_failure_drops_to_fault_and_releases_the_vips() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 200).track(0));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(Instant::from_millis(10_250));
        assert_eq!(lan.masters(), vec!["a"]);

        // The tracked script fails: a goes to Fault with a priority-0 advert and drops its VIP;
        // b takes over after its skew time.
        lan.with(a, |m, now| match m {
            Machine::Single(r) => r.set_track(now, TrackId(0), false),
            Machine::Group(_) => unreachable!(),
        });
        let failed = lan.now;
        assert_eq!(lan.state(a), State::Fault);
        assert!(lan.nodes[a].vips.is_empty());
        lan.run_for(Duration::from_secs(10));
        assert_eq!(
            lan.entered("b", State::Master),
            Some(failed + Duration::from_micros(skew_us(100)))
        );
        // In Fault nothing is heard.
        assert!(
            lan.router(a)
                .counters()
                .rejected(lbcore::vrrp::Reject::NotRunning)
                >= 9
        );

        // The script recovers: a comes back as backup and preempts b a master-down later.
        lan.with(a, |m, now| match m {
            Machine::Single(r) => r.set_track(now, TrackId(0), true),
            Machine::Group(_) => unreachable!(),
        });
        let recovered = lan.now;
        assert_eq!(lan.state(a), State::Backup);
        lan.run_for(Duration::from_secs(10));
        assert_eq!(
            lan.entered("a", State::Master),
            Some(recovered + Duration::from_micros(down_us(200)))
        );
        assert_eq!(lan.masters(), vec!["a"]);
    }
}

#[test]
fn a_negative_track_weight_lowers_the_priority_below_the_backup() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 150).track(-60));
        let b = lan.add("b", cfg(version, 2, 100));
        lan.start(a);
        lan.start(b);
        lan.run_until(Instant::from_millis(10_250));
        lan.with(a, |m, now| match m {
            Machine::Single(r) => r.set_track(now, TrackId(0), false),
            Machine::Group(_) => unreachable!(),
        });
        assert_eq!(lan.router(a).priority(), 90);
        assert_eq!(lan.state(a), State::Master);
        let failed = lan.now;
        lan.run_for(Duration::from_secs(10));

        // a keeps advertising, now with 90; b (100) ignores those and times out.
        let last_150 = lan
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Advert {
                    at,
                    node: "a",
                    priority: 150,
                    ..
                } if *at <= failed => Some(*at),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            lan.entered("b", State::Master),
            Some(last_150 + Duration::from_micros(down_us(100)))
        );
        assert_eq!(lan.masters(), vec!["b"]);
        assert_eq!(lan.state(a), State::Backup);

        // A positive weight raises it while OK: 100 + 60 = 160 > 150.
        let mut solo = Router::new(cfg(version, 3, 100).track(60)).unwrap();
        assert_eq!(solo.priority(), 160);
        solo.set_track(Instant::ZERO, TrackId(0), false);
        assert_eq!(solo.priority(), 100);
        solo.set_priority_delta(Instant::ZERO, 200);
        assert_eq!(solo.priority(), 254, "kept within 1..=254");
        solo.set_priority_delta(Instant::ZERO, -200);
        assert_eq!(solo.priority(), 1);
    }
}

#[test]
fn interface_down_is_a_fault() {
    let mut lan = Lan::new();
    let a = lan.add("a", cfg(Version::V3, 1, 200));
    let b = lan.add("b", cfg(Version::V3, 2, 100));
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    lan.with(b, |m, now| match m {
        Machine::Single(r) => r.interface_down(now),
        Machine::Group(_) => unreachable!(),
    });
    assert_eq!(lan.state(b), State::Fault);
    lan.with(b, |m, now| match m {
        Machine::Single(r) => r.interface_up(now),
        Machine::Group(_) => unreachable!(),
    });
    assert_eq!(lan.state(b), State::Backup);
    lan.run_until(secs(20));
    assert_eq!(lan.masters(), vec!["a"]);
}

fn group_cfgs(version: Version, base: u8, priority: u8) -> Vec<Config> {
    vec![
        Config::new(version, 1, v4(base))
            .priority(priority)
            .vip(v4(101), 24)
            .track(0),
        Config::new(version, 2, v4(base + 100))
            .priority(priority)
            .vip(v4(102), 24),
    ]
}

#[test]
fn a_sync_group_fails_over_and_back_together() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let x = lan.add_group("x", group_cfgs(version, 1, 200));
        let y = lan.add_group("y", group_cfgs(version, 2, 100));
        lan.start(x);
        lan.start(y);
        lan.run_until(secs(10));
        let t = at_micros(down_us(200));
        for m in 0..2 {
            assert_eq!(lan.entered_member("x", m, State::Master), Some(t));
            assert_eq!(lan.member(y, m).state(), State::Backup);
        }
        assert_eq!(lan.nodes[x].vips, BTreeSet::from([v4(101), v4(102)]));

        // Member 0's tracked object fails: the whole group goes to Fault, both masters send
        // priority 0, and y takes both over after its skew time, together.
        lan.with(x, |m, now| match m {
            Machine::Group(g) => g.set_track(now, 0, TrackId(0), false),
            Machine::Single(_) => unreachable!(),
        });
        let failed = lan.now;
        for m in 0..2 {
            assert_eq!(lan.member(x, m).state(), State::Fault);
        }
        assert!(lan.nodes[x].vips.is_empty());
        lan.run_for(Duration::from_secs(5));
        for m in 0..2 {
            assert_eq!(
                lan.entered_member("y", m, State::Master),
                Some(failed + Duration::from_micros(skew_us(100)))
            );
        }
        assert_eq!(lan.nodes[y].vips, BTreeSet::from([v4(101), v4(102)]));

        // It recovers: both leave Fault together and preempt y together.
        lan.with(x, |m, now| match m {
            Machine::Group(g) => g.set_track(now, 0, TrackId(0), true),
            Machine::Single(_) => unreachable!(),
        });
        let recovered = lan.now;
        lan.run_for(Duration::from_secs(10));
        let back = recovered + Duration::from_micros(down_us(200));
        for m in 0..2 {
            assert_eq!(lan.entered_member("x", m, State::Backup), Some(recovered));
            assert_eq!(lan.entered_member("x", m, State::Master), Some(back));
            assert_eq!(lan.entered_member("y", m, State::Backup), Some(back));
        }
    }
}

#[test]
fn a_sync_group_member_stepping_down_takes_the_others_along() {
    let mut lan = Lan::new();
    let x = lan.add_group("x", group_cfgs(Version::V3, 1, 200));
    lan.start(x);
    lan.run_until(secs(10));
    assert_eq!(lan.nodes[x].vips.len(), 2);

    // A better router for VRID 1 alone appears: x's member 0 yields, and member 1 with it.
    let z = lan.add(
        "z",
        Config::new(Version::V3, 1, v4(3)).priority(255).vip(v4(101), 24),
    );
    lan.start(z);
    for m in 0..2 {
        assert_eq!(lan.entered_member("x", m, State::Backup), Some(secs(10)));
    }
    assert!(lan.nodes[x].vips.is_empty());
}

#[test]
fn a_sync_group_waits_until_every_member_wants_master() {
    let mut lan = Lan::new();
    let x = lan.add_group("x", group_cfgs(Version::V3, 1, 200));
    // Someone masters VRID 2 only (higher priority): x's member 1 keeps hearing it.
    let z = lan.add(
        "z",
        Config::new(Version::V3, 2, v4(3)).priority(250).vip(v4(102), 24),
    );
    lan.start(z);
    lan.start(x);
    lan.run_until(secs(30));
    // Member 0's timer ran out long ago, but the group prefers backup to thrashing.
    assert_eq!(lan.member(x, 0).state(), State::Backup);
    assert_eq!(lan.member(x, 1).state(), State::Backup);
    assert_eq!(lan.masters(), vec!["z"]);
    // z dies: member 1 wants master too, and both go.
    lan.crash(z);
    let last = lan.last_advert("z", lan.now);
    lan.run_until(secs(40));
    let t1 = lan.entered_member("x", 1, State::Master).unwrap();
    assert_eq!(t1, last + Duration::from_micros(down_us(200)));
    assert_eq!(lan.entered_member("x", 0, State::Master), Some(t1));
}

#[test]
fn a_v3_backup_learns_the_masters_advert_interval() {
    let mut lan = Lan::new();
    let fast = lan.add(
        "fast",
        cfg(Version::V3, 1, 200).advert_interval(Duration::from_millis(500)),
    );
    let slow = lan.add("slow", cfg(Version::V3, 2, 100));
    lan.start(fast);
    lan.start(slow);
    lan.run_until(secs(10));
    assert_eq!(lan.masters(), vec!["fast"]);
    assert_eq!(
        lan.router(slow).master_advert_interval(),
        Duration::from_millis(500)
    );
    // Skew = (256 - 100) × 50 cs / 256 = 304 687.5 µs, truncated as keepalived does.
    assert_eq!(lan.router(slow).skew_time(), Duration::from_micros(304_687));
    lan.crash(fast);
    let last = lan.last_advert("fast", lan.now);
    lan.run_until(secs(20));
    assert_eq!(
        lan.entered("slow", State::Master),
        Some(last + Duration::from_micros(1_500_000 + 304_687))
    );
    // As master it advertises its own interval again.
    assert_eq!(lan.router(slow).master_advert_interval(), Duration::from_secs(1));
}

#[test]
fn a_v2_router_ignores_a_different_interval() {
    let mut lan = Lan::new();
    let a = lan.add(
        "a",
        cfg(Version::V2, 1, 200).advert_interval(Duration::from_secs(2)),
    );
    let b = lan.add("b", cfg(Version::V2, 2, 100));
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(20));
    // RFC 3768: discard. So both end up master (the misconfiguration keepalived warns about).
    assert_eq!(lan.masters(), vec!["a", "b"]);
    assert!(
        lan.router(b)
            .counters()
            .rejected(lbcore::vrrp::Reject::IntervalMismatch)
            > 0
    );
}

#[test]
fn unicast_peers_fail_over_too() {
    for version in VERSIONS {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(version, 1, 200).unicast_peer(v4(2)).check_unicast_src());
        let b = lan.add("b", cfg(version, 2, 100).unicast_peer(v4(1)).check_unicast_src());
        lan.start(a);
        lan.start(b);
        lan.run_until(Instant::from_millis(10_500));
        assert_eq!(lan.masters(), vec!["a"]);
        assert!(lan.router(b).counters().adverts_received >= 7);
        assert_eq!(lan.router(b).counters().rejected_total(), 0);
        lan.crash(a);
        let last = lan.last_advert("a", lan.now);
        lan.run_until(secs(20));
        assert_eq!(
            lan.entered("b", State::Master),
            Some(last + Duration::from_micros(down_us(100)))
        );
    }
}

#[test]
fn ipv6_routers_converge_and_fail_over() {
    let mut lan = Lan::new();
    let a = lan.add(
        "a",
        Config::new(Version::V3, 52, v6(1)).priority(200).vip(VIP6, 64),
    );
    let b = lan.add(
        "b",
        Config::new(Version::V3, 52, v6(2)).priority(100).vip(VIP6, 64),
    );
    lan.start(a);
    lan.start(b);
    lan.run_until(secs(10));
    assert_eq!(lan.masters(), vec!["a"]);
    assert_eq!(lan.nodes[a].vips, BTreeSet::from([VIP6]));
    assert_eq!(lan.gratuitous, 10, "unsolicited NAs: 5 now, 5 after 5 s");
    lan.crash(a);
    let last = lan.last_advert("a", lan.now);
    lan.run_until(secs(20));
    assert_eq!(
        lan.entered("b", State::Master),
        Some(last + Duration::from_micros(down_us(100)))
    );
}

#[test]
fn state_master_without_being_owner_waits_one_interval() {
    let mut lan = Lan::new();
    let a = lan.add(
        "a",
        cfg(Version::V2, 1, 100).start_state(lbcore::vrrp::StartState::Master),
    );
    lan.start(a);
    lan.run_until(secs(5));
    // keepalived: advert interval + the minimum skew (1/256 s).
    assert_eq!(
        lan.entered("a", State::Master),
        Some(at_micros(1_000_000 + 3_906))
    );
}

/// The whole story, twice: same events to the nanosecond.
#[test]
fn the_same_story_gives_the_same_log() {
    let run = || {
        let mut lan = Lan::new();
        let a = lan.add("a", cfg(Version::V3, 1, 150));
        let b = lan.add("b", cfg(Version::V3, 2, 150));
        let c = lan.add("c", cfg(Version::V3, 3, 100));
        for n in [a, b, c] {
            lan.start(n);
        }
        lan.run_until(secs(15));
        lan.crash(b);
        lan.run_until(secs(30));
        lan.events
    };
    let first = run();
    assert!(first.len() > 30, "{}", first.len());
    assert_eq!(first, run());
}
