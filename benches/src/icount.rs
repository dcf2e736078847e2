//! Instruction-count scenarios: the noise-free half of the benchmarks, run under
//! `valgrind --tool=callgrind` by `.ci/bench-gate.sh` (through the `lbcore-icount` binary).
//!
//! Each scenario builds its state outside the measurement, then [`lbcore_icount_measured`] runs
//! [`Scenario::run`] [`ROUNDS`] times; callgrind collects only inside [`lbcore_icount_measured`]
//! (`--collect-atstart=no --toggle-collect=*lbcore_icount_measured*`), so the count is the
//! hot path alone. Frames are copied back from templates in [`Scenario::prepare`], also outside
//! the measurement. The gate divides by [`Scenario::units`] × [`ROUNDS`]: instructions per
//! packet, per connection, or per table build.

use std::hint::black_box;
use std::net::IpAddr;

use lbcore::balancer::{Balancer, Verdict};
use lbcore::sched::{DestList, DestSlot, SchedDest, SchedState};
use lbcore::service::{Forward, Sched, SchedFlags, TunnelType};
use lbcore::time::{Duration, Instant};
use lbcore::vrrp;

use crate::{Seg, Setup, SmallFrame, Tcp, ack_frames, establish, segment, small_frame};

/// Measured rounds per scenario (after [`WARMUP`] unmeasured ones).
pub const ROUNDS: u64 = 8;
/// Unmeasured rounds first (caches, lazily built state, TCP state transitions).
pub const WARMUP: u64 = 2;
/// Packets per round of the packet scenarios.
pub const BATCH: usize = 256;

/// One instruction-count scenario.
pub trait Scenario {
    /// What one unit is ("packet", "connection", "build", "advert").
    fn unit(&self) -> &'static str;
    /// Units of work per round.
    fn units(&self) -> u64;
    /// Unmeasured: restores the inputs of the next round.
    fn prepare(&mut self);
    /// Measured: one round.
    fn run(&mut self);
    /// Unmeasured, after the last round: whether the last round did what it should.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The measured region: callgrind's `--toggle-collect` names this function. With `extra` (the
/// gate's self-test), every second round runs twice: injected work the gate must catch.
#[inline(never)]
pub fn lbcore_icount_measured(s: &mut dyn Scenario, extra: bool, round: u64) {
    s.run();
    if extra && round.is_multiple_of(2) {
        s.prepare();
        s.run();
    }
}

/// Runs a scenario: warm-up rounds, then the measured rounds. Returns the total units measured.
pub fn drive(s: &mut dyn Scenario, extra: bool) -> u64 {
    for _ in 0..WARMUP {
        s.prepare();
        s.run();
    }
    for round in 0..ROUNDS {
        s.prepare();
        lbcore_icount_measured(s, extra, round);
    }
    s.units() * ROUNDS
}

/// Names of the scenarios, in the order of the gate's table.
pub const NAMES: &[&str] = &[
    "dr_established_1k_single",
    "dr_established_1k_batch",
    "dr_established_64k_batch",
    "dr_established_64k_prefetch",
    "dr_established_v6_single",
    "new_conn_wlc_64",
    "new_conn_mh_64",
    "persist_template_hit",
    "nat_in",
    "nat_out",
    "fullnat_in",
    "fullnat_out",
    "tun_ipip",
    "tun_gue",
    "mh_build_ipvs_m4093_n100",
    "maglev_build_m65537_n100",
    "vrrp_advert_backup",
];

/// Scenarios `lbcore-icount NAME` runs but the gate does not (not lbcore code): the naive
/// baseline of the established DR comparison, for a load-independent ratio.
pub const EXTRA_NAMES: &[&str] = &["naive_dr_1k"];

/// Builds the scenario called `name`.
pub fn scenario(name: &str) -> Option<Box<dyn Scenario>> {
    let dr = Setup::dr(1 << 12);
    Some(match name {
        "naive_dr_1k" => Box::new(Naive::new(1000)),
        "dr_established_1k_single" => Box::new(Established::new(dr, 1000, false)),
        "dr_established_1k_batch" => Box::new(Established::new(dr, 1000, true)),
        "dr_established_64k_batch" => Box::new(Established::new(Setup::dr(1 << 17), 65_536, true)),
        // A 4.5 MiB table: above STAGED_BATCH_MIN_TABLE_BYTES, so the prefetch pipeline runs.
        "dr_established_64k_prefetch" => Box::new(Established::prefetching(Setup::dr(73_728), 65_536)),
        "dr_established_v6_single" => Box::new(Established::new(Setup { v6: true, ..dr }, 1000, false)),
        "new_conn_wlc_64" => Box::new(NewConn::new(Setup {
            dests: 64,
            capacity: 1 << 14,
            ..dr
        })),
        "new_conn_mh_64" => Box::new(NewConn::new(Setup {
            dests: 64,
            capacity: 1 << 14,
            sched: Sched::Mh,
            ..dr
        })),
        "persist_template_hit" => Box::new(NewConn::persistent_hits(Setup {
            persistence: Some(Duration::from_secs(300)),
            capacity: 1 << 14,
            ..dr
        })),
        "nat_in" => Box::new(Established::new(
            Setup {
                forward: Forward::Nat,
                ..dr
            },
            1000,
            false,
        )),
        "nat_out" => Box::new(Established::replies(
            Setup {
                forward: Forward::Nat,
                ..dr
            },
            1000,
        )),
        "fullnat_in" => Box::new(Established::new(
            Setup {
                forward: Forward::FullNat,
                ..dr
            },
            1000,
            false,
        )),
        "fullnat_out" => Box::new(Established::replies(
            Setup {
                forward: Forward::FullNat,
                ..dr
            },
            1000,
        )),
        "tun_ipip" => Box::new(Established::new(
            Setup {
                forward: Forward::Tunnel(TunnelType::Ipip),
                ..dr
            },
            1000,
            false,
        )),
        "tun_gue" => Box::new(Established::new(
            Setup {
                forward: Forward::Tunnel(TunnelType::Gue { port: 6080 }),
                ..dr
            },
            1000,
            false,
        )),
        "mh_build_ipvs_m4093_n100" => Box::new(MhBuild::new(100)),
        "maglev_build_m65537_n100" => Box::new(MaglevBuild::new(65_537, 100)),
        "vrrp_advert_backup" => Box::new(VrrpAdvert::new()),
        _ => return None,
    })
}

/// Established flows: 256 frames of flows scattered over the table, through `process` or
/// `process_batch`.
pub struct Established {
    lb: Balancer<'static>,
    templates: Vec<SmallFrame>,
    frames: Vec<SmallFrame>,
    verdicts: Vec<Verdict>,
    batch: bool,
    /// With `batch`: `process_batch_prefetch` with the CPU's prefetch instruction.
    prefetch: bool,
    now: Instant,
}

impl Established {
    /// As [`Established::new`] with the batch API and real prefetches
    /// (`process_batch_prefetch` with `lbcore_net::CpuPrefetch`).
    pub fn prefetching(setup: Setup, flows: u32) -> Self {
        Established {
            prefetch: true,
            ..Self::new(setup, flows, true)
        }
    }

    /// Client-to-VIP frames of `flows` established flows.
    pub fn new(setup: Setup, flows: u32, batch: bool) -> Self {
        let now = Instant::from_secs(1);
        let mut lb = setup.balancer();
        establish(&mut lb, &setup, flows, now);
        let templates = ack_frames(scatter(flows).map(|i| setup.client_seg(i)));
        Self::with(lb, templates, batch, now)
    }

    /// Server-to-client reply frames (NAT, FULLNAT) of `flows` established flows.
    pub fn replies(setup: Setup, flows: u32) -> Self {
        let now = Instant::from_secs(1);
        let mut lb = setup.balancer();
        let replies = establish(&mut lb, &setup, flows, now);
        let templates = ack_frames(scatter(flows).map(|i| replies[i as usize]));
        Self::with(lb, templates, false, now)
    }

    fn with(lb: Balancer<'static>, templates: Vec<SmallFrame>, batch: bool, now: Instant) -> Self {
        Established {
            lb,
            frames: templates.clone(),
            templates,
            verdicts: vec![Verdict::Consumed; BATCH],
            batch,
            prefetch: false,
            now,
        }
    }
}

/// `BATCH` flow indices spread over `0..flows` (a multiplicative walk).
pub fn scatter(flows: u32) -> impl Iterator<Item = u32> {
    (0..BATCH as u64).map(move |k| ((k * 2_654_435_761) % u64::from(flows)) as u32)
}

impl Scenario for Established {
    fn unit(&self) -> &'static str {
        "packet"
    }
    fn units(&self) -> u64 {
        BATCH as u64
    }
    fn prepare(&mut self) {
        self.frames.clone_from_slice(&self.templates);
    }
    fn run(&mut self) {
        if self.batch && self.prefetch {
            self.lb.process_batch_prefetch(
                self.now,
                &mut self.frames,
                &mut self.verdicts,
                &lbcore_net::CpuPrefetch,
            );
            black_box(&self.verdicts);
        } else if self.batch {
            self.lb
                .process_batch(self.now, &mut self.frames, &mut self.verdicts);
            black_box(&self.verdicts);
        } else {
            for (f, v) in self.frames.iter_mut().zip(self.verdicts.iter_mut()) {
                *v = self.lb.process(self.now, f);
            }
            black_box(&self.verdicts);
        }
    }
    fn check(&self) -> Result<(), String> {
        forwarded(&self.verdicts)
    }
}

fn forwarded(verdicts: &[Verdict]) -> Result<(), String> {
    match verdicts.iter().find(|v| !matches!(v, Verdict::Forward(_))) {
        Some(v) => Err(format!("expected every packet forwarded, got {v:?}")),
        None => Ok(()),
    }
}

/// New connections: 256 SYNs of new clients per round (scheduling + insert), or with
/// persistence, SYNs of new ports of clients that have a template (template hit).
pub struct NewConn {
    lb: Balancer<'static>,
    setup: Setup,
    frames: Vec<SmallFrame>,
    verdicts: Vec<Verdict>,
    round: u32,
    now: Instant,
    template_hits: bool,
}

impl NewConn {
    /// Fresh clients every round.
    pub fn new(setup: Setup) -> Self {
        NewConn {
            lb: setup.balancer(),
            setup,
            frames: Vec::with_capacity(BATCH),
            verdicts: vec![Verdict::Consumed; BATCH],
            round: 0,
            now: Instant::from_secs(1),
            template_hits: false,
        }
    }

    /// The same 256 clients every round, each from a new source port, on a persistent
    /// service: after the first round every SYN finds its client's template.
    pub fn persistent_hits(setup: Setup) -> Self {
        NewConn {
            template_hits: true,
            ..Self::new(setup)
        }
    }

    /// The SYN of client `client` from port `port`.
    fn syn(&self, client: u32, port: u16) -> SmallFrame {
        let seg = Seg {
            src: crate::client_addr(client << 4, self.setup.v6),
            sport: port,
            dst: self.setup.vip(),
            dport: crate::VPORT,
        };
        small_frame(&segment(seg, Tcp::Syn, true), lbcore::RxMeta::ETHERNET)
    }
}

impl Scenario for NewConn {
    fn unit(&self) -> &'static str {
        "connection"
    }
    fn units(&self) -> u64 {
        BATCH as u64
    }
    fn prepare(&mut self) {
        self.round += 1;
        let round = self.round;
        self.frames = (0..BATCH as u32)
            .map(|k| {
                if self.template_hits {
                    self.syn(k, 1024 + round as u16)
                } else {
                    self.syn(round * BATCH as u32 + k, 1024)
                }
            })
            .collect();
    }
    fn run(&mut self) {
        for (f, v) in self.frames.iter_mut().zip(self.verdicts.iter_mut()) {
            *v = self.lb.process(self.now, f);
        }
        black_box(&self.verdicts);
    }
    fn check(&self) -> Result<(), String> {
        forwarded(&self.verdicts)
    }
}

/// The destinations of the table-build scenarios: `n` servers with weights 1, 2, 3, 1, ...
pub fn sched_dests(n: usize) -> (Vec<SchedDest>, Vec<DestSlot>) {
    let dests = (0..n as u32)
        .map(|i| SchedDest::new(crate::rip(i, false), crate::RPORT, 1 + (i % 3) as i32))
        .collect();
    let order = (0..n).map(|i| i as DestSlot).collect();
    (dests, order)
}

/// IPVS `mh` table build (M = 4093): `SchedState::with_list`.
pub struct MhBuild {
    dests: Vec<SchedDest>,
    order: Vec<DestSlot>,
}

impl MhBuild {
    /// `n` destinations (at most `lbcore::sched::MAX_DESTS`).
    pub fn new(n: usize) -> Self {
        let (dests, order) = sched_dests(n);
        MhBuild { dests, order }
    }
}

impl Scenario for MhBuild {
    fn unit(&self) -> &'static str {
        "build"
    }
    fn units(&self) -> u64 {
        1
    }
    fn prepare(&mut self) {}
    fn run(&mut self) {
        let list = DestList {
            slots: &self.dests,
            order: &self.order,
        };
        black_box(mh_build(list));
    }
}

/// Builds an mh table over `list` as the kernel's `init_service` does, and looks one client up:
/// lbcore builds the table lazily, at the first lookup after a change, so the lookup is what
/// makes the build happen (one lookup is noise next to the 4093-slot fill).
pub fn mh_build(list: DestList<'_, SchedDest>) -> Option<DestSlot> {
    let mut state = SchedState::with_list(Sched::Mh, SchedFlags::NONE, list);
    let pkt = lbcore::sched::SchedPacket {
        saddr: IpAddr::from([192, 0, 2, 1]),
        sport: 40000,
        daddr: IpAddr::from([10, 0, 0, 100]),
        dport: 80,
    };
    state.schedule(list, &pkt, Instant::ZERO, &mut lbcore::rng::Rng::new(1))
}

/// Maglev table of any prime size (Katran's and the paper's M = 65537):
/// [`crate::maglev`] (the mh fill loop generalized).
pub struct MaglevBuild {
    table: crate::maglev::Maglev<Vec<u32>, Vec<u64>>,
    backends: Vec<crate::maglev::MaglevBackend>,
}

impl MaglevBuild {
    /// `n` weighted backends over `m` slots.
    pub fn new(m: u32, n: u32) -> Self {
        MaglevBuild {
            table: crate::maglev::Maglev::new(vec![0; m as usize], vec![0; (m as usize).div_ceil(64)])
                .expect("prime size"),
            backends: maglev_backends(m, n),
        }
    }
}

/// `n` backends with weights 1, 2, 3, 1, ... keyed by their address.
pub fn maglev_backends(m: u32, n: u32) -> Vec<crate::maglev::MaglevBackend> {
    (0..n)
        .map(|i| {
            let key = match crate::rip(i, false) {
                IpAddr::V4(a) => u64::from(u32::from(a)) << 16 | u64::from(crate::RPORT),
                IpAddr::V6(_) => unreachable!("IPv4 backends"),
            };
            crate::maglev::MaglevBackend::new(key, 0x6c62_636f_7265_5eed, m, 1 + i % 3)
        })
        .collect()
}

impl Scenario for MaglevBuild {
    fn unit(&self) -> &'static str {
        "build"
    }
    fn units(&self) -> u64 {
        1
    }
    fn prepare(&mut self) {}
    fn run(&mut self) {
        black_box(self.table.build(&mut self.backends));
    }
}

/// A backup router receiving the master's advert: envelope and advert validation, then the
/// state update (master-down timer restart).
pub struct VrrpAdvert {
    router: vrrp::Router,
    advert: Vec<u8>,
    t: u64,
}

impl VrrpAdvert {
    /// VRRPv3 over IPv4, VRID 51, us at priority 100, the master at 150, one VIP.
    pub fn new() -> Self {
        let me: IpAddr = "10.201.0.11".parse().expect("addr");
        let master: IpAddr = "10.201.0.12".parse().expect("addr");
        let vip: IpAddr = "10.201.0.100".parse().expect("addr");
        let cfg = vrrp::Config::new(vrrp::Version::V3, 51, me)
            .priority(100)
            .vip(vip, 24);
        let mut router = vrrp::Router::new(cfg).expect("config");
        router.start(Instant::ZERO);
        while router.poll_action().is_some() {}
        let mut buf = [0u8; 256];
        let repr = vrrp::wire::AdvertRepr {
            version: vrrp::Version::V3,
            vrid: 51,
            priority: 150,
            interval: 100,
            addrs: &[vip],
            auth: vrrp::Auth::None,
        };
        let tx = vrrp::wire::TxEnvelope {
            src_mac: [0, 0, 0x5e, 0, 1, 51],
            dst_mac: [1, 0, 0x5e, 0, 0, 0x12],
            src: master,
            dst: "224.0.0.18".parse().expect("addr"),
            ip_id: 1,
            flow_label: 0,
            v3_checksum_as_v2: false,
        };
        let len = vrrp::wire::emit_advert(&repr, &tx, &mut buf).expect("emit");
        VrrpAdvert {
            router,
            advert: buf[..len].to_vec(),
            t: 0,
        }
    }
}

impl Default for VrrpAdvert {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario for VrrpAdvert {
    fn unit(&self) -> &'static str {
        "advert"
    }
    fn units(&self) -> u64 {
        64
    }
    fn prepare(&mut self) {}
    fn run(&mut self) {
        for _ in 0..64 {
            self.t += 1_000_000_000;
            let now = Instant::from_nanos(self.t);
            self.router.handle_packet(now, &self.advert, vrrp::Rx::Ethernet);
            while let Some(a) = self.router.poll_action() {
                black_box(a);
            }
        }
    }
}

/// The naive baseline ([`crate::naive`]) on the frames of [`Established`] (DR, 1,000 flows),
/// with SipHash-1-3 keyed by zeros (`DefaultHasher::new()`) so that the count is reproducible.
pub struct Naive {
    lb: crate::naive::NaiveLb<std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>>,
    templates: Vec<SmallFrame>,
    frames: Vec<SmallFrame>,
}

impl Naive {
    /// `flows` flows, all seen once.
    pub fn new(flows: u32) -> Self {
        let setup = Setup::dr(0);
        let mut lb = crate::naive::NaiveLb::with_hasher(
            flows as usize,
            crate::LB_MAC,
            (0..8).map(crate::rs_mac).collect(),
            Default::default(),
        );
        for mut f in ack_frames((0..flows).map(|i| setup.client_seg(i))) {
            let (s, l) = (f.start, f.len);
            lb.process(&mut f.buf[s..s + l]);
        }
        let templates = ack_frames(scatter(flows).map(|i| setup.client_seg(i)));
        Naive {
            lb,
            frames: templates.clone(),
            templates,
        }
    }
}

impl Scenario for Naive {
    fn unit(&self) -> &'static str {
        "packet"
    }
    fn units(&self) -> u64 {
        BATCH as u64
    }
    fn prepare(&mut self) {
        self.frames.clone_from_slice(&self.templates);
    }
    fn run(&mut self) {
        for f in self.frames.iter_mut() {
            let (s, l) = (f.start, f.len);
            black_box(self.lb.process(&mut f.buf[s..s + l]));
        }
    }
}
