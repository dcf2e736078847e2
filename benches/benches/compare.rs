//! Issue 7's side-by-side comparisons, in one run:
//! - established DR at 1k / 64k / 1M flows: ours (single and batch) next to the naive baseline
//!   (std `HashMap` + SipHash on the 5-tuple, full etherparse parse, full checksum recompute);
//! - new connections: every scheduler over 8 and 64 destinations, including the table insert;
//!   persistence template hit and miss;
//! - NAT / FULLNAT in both directions, TUN IPIP / GUE, IPv6 variants (established flows);
//! - Maglev table build, M = 65537, N = 10 / 100 / 1000, ours next to the `maglev` crate, and
//!   IPVS's `mh` (M = 4093); disruption when one destination leaves, printed once;
//! - VRRP advert validation and state update;
//! - memory per tracked connection, printed once.
//!
//! `cargo bench -p lbcore-benches --bench compare`; `-- --test` runs each once (CI smoke).

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use lbcore::balancer::{Balancer, Frame, RxMeta, Service, Verdict};
use lbcore::conn::Conn;
use lbcore::sched::DestList;
use lbcore::service::{Forward, Sched, TunnelType};
use lbcore::time::{Duration, Instant};
use lbcore_benches::icount::{self, Scenario};
use lbcore_benches::maglev::{Maglev, MaglevBackend};
use lbcore_benches::naive::NaiveLb;
use lbcore_benches::{
    Seg, Setup, SmallFrame, Tcp, client_port, establish, rs_mac, segment, small_frame, table_bytes_per_conn,
};
use lbcore_net::{CpuPrefetch, HugePageSlice};

/// Whether criterion runs in `--test` mode (each bench once): the set-ups are shrunk.
fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Times `run` only, calling `prepare` before each iteration and `check` after it.
fn time_scenario(b: &mut criterion::Bencher<'_>, s: &mut dyn Scenario) {
    b.iter_custom(|iters| {
        let mut spent = StdDuration::ZERO;
        for _ in 0..iters {
            s.prepare();
            let start = StdInstant::now();
            s.run();
            spent += start.elapsed();
            // Here rather than after `bench_function`, which a name filter may skip.
            s.check().unwrap_or_else(|e| panic!("{e}"));
        }
        spent
    })
}

fn dr_vs_naive(c: &mut Criterion) {
    let sizes: &[u32] = if test_mode() {
        &[1_000]
    } else {
        &[1_000, 65_536, 1_048_576]
    };
    for &n in sizes {
        let setup = Setup::dr(n as usize + n as usize / 8);
        let mut lb = setup.balancer();
        let now = Instant::from_secs(1);
        establish(&mut lb, &setup, n, now);
        // The same balancer with its connection table in 2 MiB pages, as lbd builds it for
        // tables of 8 MiB and more.
        let mut services = vec![Service::default(); 1];
        let mut huge_table =
            (n >= 65_536).then(|| HugePageSlice::new(setup.capacity, Conn::EMPTY).expect("mmap"));
        let mut lb_huge = huge_table.as_deref_mut().map(|conns| {
            let mut lb = setup.balancer_over(&mut services, conns);
            establish(&mut lb, &setup, n, now);
            lb
        });
        let mut naive = NaiveLb::new(n as usize, lbcore_benches::LB_MAC, (0..8).map(rs_mac).collect());
        // 64 Ki receive buffers of flows scattered over the whole table; 256 per iteration.
        let pool = if test_mode() { 1024 } else { 65_536usize };
        let mut frames: Vec<SmallFrame> = (0..pool)
            .map(|k| {
                let i = ((k as u64 * 2_654_435_761) % u64::from(n)) as u32;
                small_frame(&segment(setup.client_seg(i), Tcp::Ack, true), RxMeta::ETHERNET)
            })
            .collect();
        for i in 0..n {
            let mut f = small_frame(&segment(setup.client_seg(i), Tcp::Ack, true), RxMeta::ETHERNET);
            naive.process(&mut f.buf[f.start..f.start + f.len]);
        }
        let mut g = c.benchmark_group(format!("dr_vs_naive/{n}_flows"));
        g.throughput(Throughput::Elements(256));
        let mut window = 0usize;
        g.bench_function("ours_single", |b| {
            b.iter(|| {
                window = (window + 256) % pool;
                for f in frames[window..window + 256].iter_mut() {
                    let _ = black_box(lb.process(now, f));
                }
            })
        });
        let mut verdicts = vec![Verdict::Consumed; 256];
        g.bench_function("ours_batch", |b| {
            b.iter(|| {
                window = (window + 256) % pool;
                lb.process_batch(now, &mut frames[window..window + 256], &mut verdicts);
                black_box(&verdicts);
            })
        });
        let mut prefetch_bench = |name: &str, lb: &mut Balancer<'_>| {
            g.bench_function(name, |b| {
                b.iter(|| {
                    window = (window + 256) % pool;
                    lb.process_batch_prefetch(
                        now,
                        &mut frames[window..window + 256],
                        &mut verdicts,
                        &CpuPrefetch,
                    );
                    black_box(&verdicts);
                })
            });
        };
        prefetch_bench("ours_batch_prefetch", &mut lb);
        if let Some(lb) = lb_huge.as_mut() {
            prefetch_bench("ours_batch_prefetch_huge_pages", lb);
        }
        g.bench_function("naive", |b| {
            b.iter(|| {
                window = (window + 256) % pool;
                for f in frames[window..window + 256].iter_mut() {
                    let (s, l) = (f.start, f.len);
                    black_box(naive.process(&mut f.buf[s..s + l]));
                }
            })
        });
        g.finish();
    }
}

/// `count` SYNs from distinct clients (or `ports` new ports of the same 256 clients).
fn syns(setup: &Setup, count: u32) -> Vec<Frame<[u8; lbcore_benches::BUF]>> {
    (0..count)
        .map(|i| {
            let seg = Seg {
                sport: client_port(i),
                ..setup.client_seg(0x10_0000 + i)
            };
            small_frame(&segment(seg, Tcp::Syn, true), RxMeta::ETHERNET)
        })
        .collect()
}

/// New connections into an emptied table: every iteration expires the last one's entries
/// (untimed) and handles `SYNS` SYNs of new clients.
fn new_connections(c: &mut Criterion) {
    const SYNS: u32 = 1024;
    let mut g = c.benchmark_group("new_connection");
    g.throughput(Throughput::Elements(u64::from(SYNS)));
    let scheds: &[Sched] = if test_mode() {
        &[Sched::Wlc, Sched::Mh]
    } else {
        &Sched::ALL
    };
    for &dests in &[8u32, 64] {
        for &sched in scheds {
            let setup = Setup {
                dests,
                sched,
                capacity: 1 << 14,
                weight_scale: if sched == Sched::Ovf { 1000 } else { 1 },
                ..Setup::dr(0)
            };
            let mut lb = setup.balancer();
            let frames = syns(&setup, SYNS);
            let mut t = 1u64;
            g.bench_function(BenchmarkId::new(sched.name(), format!("{dests}_dests")), |b| {
                b.iter_custom(|iters| {
                    let mut spent = StdDuration::ZERO;
                    for _ in 0..iters {
                        t += 10_000;
                        let _ = lb.expire(Instant::from_secs(t), 1 << 16);
                        let mut fs = frames.clone();
                        let now = Instant::from_secs(t);
                        let forwarded = lb.counters().forwarded;
                        let start = StdInstant::now();
                        for f in fs.iter_mut() {
                            let _ = black_box(lb.process(now, f));
                        }
                        spent += start.elapsed();
                        // A scheduler that finds no destination would be timing drops.
                        assert_eq!(
                            lb.counters().forwarded - forwarded,
                            u64::from(SYNS),
                            "{}: every SYN is scheduled and forwarded",
                            sched.name()
                        );
                    }
                    spent
                })
            });
        }
    }
    g.finish();
}

/// Persistence (wlc, 8 destinations, 3600 s): a SYN whose client has a template (hit: a new
/// source port of a known client) and one whose client has none (miss: template + connection).
fn persistence(c: &mut Criterion) {
    const CLIENTS: u32 = 256;
    let setup = Setup {
        persistence: Some(Duration::from_secs(3600)),
        capacity: 1 << 14,
        ..Setup::dr(0)
    };
    let mut g = c.benchmark_group("persistence");
    g.throughput(Throughput::Elements(u64::from(CLIENTS)));
    // Hit: templates made once; every iteration, new ports of the same clients, 121 s later, so
    // the previous iteration's SYN_RECV connections (60 s) expire while the templates, used
    // again, stay.
    let mut lb = setup.balancer();
    let mut t = 1u64;
    let client_syn = |client: u32, port: u16| {
        let seg = Seg {
            sport: port,
            ..setup.client_seg(client << 4)
        };
        small_frame(&segment(seg, Tcp::Syn, true), RxMeta::ETHERNET)
    };
    for k in 0..CLIENTS {
        let mut f = client_syn(k, 1000);
        assert!(matches!(
            lb.process(Instant::from_secs(t), &mut f),
            Verdict::Forward(_)
        ));
    }
    let mut port = 1001u16;
    g.bench_function("template_hit", |b| {
        b.iter_custom(|iters| {
            let mut spent = StdDuration::ZERO;
            for _ in 0..iters {
                t += 121;
                port = if port == u16::MAX { 1001 } else { port + 1 };
                let now = Instant::from_secs(t);
                let _ = lb.expire(now, 1 << 16);
                let mut fs: Vec<_> = (0..CLIENTS).map(|k| client_syn(k, port)).collect();
                let start = StdInstant::now();
                for f in fs.iter_mut() {
                    let _ = black_box(lb.process(now, f));
                }
                spent += start.elapsed();
            }
            spent
        })
    });
    let hits_ok = lb.counters().forwarded > 0 && lb.counters().dropped == 0;
    assert!(hits_ok, "persistence hit run dropped packets");
    // Miss: new clients into an emptied table.
    let mut lb = setup.balancer();
    let frames: Vec<_> = (0..CLIENTS).map(|k| client_syn(0x1000 + k, 1000)).collect();
    g.bench_function("template_miss", |b| {
        b.iter_custom(|iters| {
            let mut spent = StdDuration::ZERO;
            for _ in 0..iters {
                t += 10_000;
                let now = Instant::from_secs(t);
                let _ = lb.expire(now, 1 << 16);
                let mut fs = frames.clone();
                let start = StdInstant::now();
                for f in fs.iter_mut() {
                    let _ = black_box(lb.process(now, f));
                }
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
}

/// Established flows per forwarding method and family (1,000 flows, 256 packets per iteration).
fn forwarding(c: &mut Criterion) {
    let dr = Setup::dr(1 << 12);
    let nat = Setup {
        forward: Forward::Nat,
        ..dr
    };
    let fnat = Setup {
        forward: Forward::FullNat,
        ..dr
    };
    let ipip = Setup {
        forward: Forward::Tunnel(TunnelType::Ipip),
        ..dr
    };
    let gue = Setup {
        forward: Forward::Tunnel(TunnelType::Gue { port: 6080 }),
        ..dr
    };
    let v6 = |s: Setup| Setup { v6: true, ..s };
    let cases: Vec<(&str, Box<dyn Scenario>)> = vec![
        ("dr", Box::new(icount::Established::new(dr, 1000, false))),
        ("nat_in", Box::new(icount::Established::new(nat, 1000, false))),
        ("nat_out", Box::new(icount::Established::replies(nat, 1000))),
        (
            "fullnat_in",
            Box::new(icount::Established::new(fnat, 1000, false)),
        ),
        ("fullnat_out", Box::new(icount::Established::replies(fnat, 1000))),
        ("tun_ipip", Box::new(icount::Established::new(ipip, 1000, false))),
        ("tun_gue", Box::new(icount::Established::new(gue, 1000, false))),
        ("dr_v6", Box::new(icount::Established::new(v6(dr), 1000, false))),
        (
            "nat_v6_in",
            Box::new(icount::Established::new(v6(nat), 1000, false)),
        ),
        (
            "nat_v6_out",
            Box::new(icount::Established::replies(v6(nat), 1000)),
        ),
        (
            "fullnat_v6_in",
            Box::new(icount::Established::new(v6(fnat), 1000, false)),
        ),
        (
            "fullnat_v6_out",
            Box::new(icount::Established::replies(v6(fnat), 1000)),
        ),
        (
            "tun_ip6ip6",
            Box::new(icount::Established::new(v6(ipip), 1000, false)),
        ),
        (
            "tun_gue_v6",
            Box::new(icount::Established::new(v6(gue), 1000, false)),
        ),
    ];
    let mut g = c.benchmark_group("forwarding");
    g.throughput(Throughput::Elements(icount::BATCH as u64));
    for (name, mut s) in cases {
        g.bench_function(name, |b| time_scenario(b, s.as_mut()));
    }
    g.finish();
}

/// Slots whose backend changed when backend `gone` leaves, over M (ideal: its share, ~1/N).
fn disruption_ours(m: u32, n: u32) -> (f64, f64) {
    let backends = icount::maglev_backends(m, n);
    let mut t = Maglev::new(vec![0; m as usize], vec![0; (m as usize).div_ceil(64)]).expect("prime");
    let mut all = backends.clone();
    t.build(&mut all);
    let before = t.table().to_vec();
    let gone = n / 2;
    let mut rest: Vec<MaglevBackend> = backends.clone();
    rest.remove(gone as usize);
    t.build(&mut rest);
    let renumber = |i: u32| if i >= gone { i + 1 } else { i };
    let moved = before
        .iter()
        .zip(t.table())
        .filter(|&(&a, &b)| a != renumber(b))
        .count();
    let owned = before.iter().filter(|&&a| a == gone).count();
    (moved as f64 / f64::from(m), owned as f64 / f64::from(m))
}

/// The same for the `maglev` crate (unweighted), sampled over 200,000 keys.
fn disruption_crate(m: usize, n: u32) -> f64 {
    let nodes: Vec<u32> = (0..n).collect();
    let a = maglev::Maglev::with_capacity(nodes.clone(), m);
    let gone = n / 2;
    let b = maglev::Maglev::with_capacity(nodes.into_iter().filter(|&x| x != gone), m);
    let keys = 200_000u64;
    let moved = (0..keys).filter(|k| a[k] != b[k]).count();
    moved as f64 / keys as f64
}

fn maglev_build(c: &mut Criterion) {
    const M: u32 = 65_537;
    let ns: &[u32] = if test_mode() { &[10] } else { &[10, 100, 1000] };
    let mut g = c.benchmark_group("maglev_build_m65537");
    g.sample_size(10);
    for &n in ns {
        let mut ours = icount::MaglevBuild::new(M, n);
        g.bench_function(BenchmarkId::new("ours_weighted", n), |b| {
            time_scenario(b, &mut ours)
        });
        // Equal weights, as the crate has none.
        let mut table = Maglev::new(vec![0; M as usize], vec![0; (M as usize).div_ceil(64)]).expect("prime");
        let mut eq: Vec<MaglevBackend> = icount::maglev_backends(M, n)
            .iter()
            .enumerate()
            .map(|(i, _)| MaglevBackend::new(i as u64, 7, M, 1))
            .collect();
        g.bench_function(BenchmarkId::new("ours_equal", n), |b| {
            b.iter(|| black_box(table.build(&mut eq)))
        });
        let nodes: Vec<u32> = (0..n).collect();
        g.bench_function(BenchmarkId::new("maglev_crate", n), |b| {
            b.iter(|| black_box(maglev::Maglev::with_capacity(nodes.iter().copied(), M as usize)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("mh_build_ipvs_m4093");
    for &n in &[10usize, 100] {
        let (dests, order) = icount::sched_dests(n);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let list = DestList {
                    slots: &dests,
                    order: &order,
                };
                black_box(icount::mh_build(list))
            })
        });
    }
    g.finish();
    if !test_mode() {
        for &n in ns {
            let (moved, share) = disruption_ours(M, n);
            let theirs = disruption_crate(M as usize, n);
            eprintln!(
                "maglev disruption M={M} N={n}: ours {:.4} of slots moved (the leaver held {:.4}; 1/N = {:.4}); maglev crate {:.4}",
                moved,
                share,
                1.0 / f64::from(n),
                theirs
            );
        }
    }
}

fn vrrp(c: &mut Criterion) {
    let mut s = icount::VrrpAdvert::new();
    let mut g = c.benchmark_group("vrrp");
    g.throughput(Throughput::Elements(s.units()));
    g.bench_function("advert_backup", |b| time_scenario(b, &mut s));
    g.finish();
}

fn memory(_: &mut Criterion) {
    for cap in [1usize << 10, 1 << 16, 1 << 20, 3 << 19] {
        eprintln!(
            "memory: conn table of capacity {cap}: {:.1} bytes per connection (64-byte entries holding the hash index)",
            table_bytes_per_conn(cap)
        );
    }
    // Coalesced placement: how many connections sit in their own bucket's slot (their lookup
    // reads one cache line), at the load factor of the established-flow benches (8/9).
    for flows in [1u32 << 16, 1 << 20] {
        let setup = Setup::dr(flows as usize + flows as usize / 8);
        let mut lb = setup.balancer();
        establish(&mut lb, &setup, flows, Instant::from_secs(1));
        let t = lb.conn_table();
        eprintln!(
            "placement: {flows} flows in {} entries: {:.1} % in their own bucket's slot",
            t.capacity(),
            100.0 * t.in_own_bucket() as f64 / t.len() as f64
        );
    }
}

criterion_group!(
    benches,
    memory,
    dr_vs_naive,
    new_connections,
    persistence,
    forwarding,
    maglev_build,
    vrrp
);
criterion_main!(benches);
