//! Hot-path benchmarks: established-flow DR forwarding (single and batch API, several table
//! sizes) and the new-connection path (wlc scheduling plus table insert and expiry).
//!
//! `cargo bench -p lbcore-benches --bench dataplane`; `-- --test` runs each once (CI smoke).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Service, Verdict};
use lbcore::conn::Conn;
use lbcore::service::{DestConfig, Sched, ServiceConfig};
use lbcore::time::Instant;
use lbcore_net::HugePageSlice;

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VIP: [u8; 4] = [192, 0, 2, 10];

fn syn_or_ack(client: u32, port: u16, syn: bool) -> Vec<u8> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], LB_MAC)
        .ipv4(client.to_be_bytes(), VIP, 64)
        .tcp(port, 80, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    // 64-byte frames: 14 + 20 + 20 + 10 bytes of payload.
    b.write(&mut v, &[0u8; 10]).expect("Vec write");
    v
}

fn balancer(capacity: usize, dests: u32, sched: Sched) -> Balancer<'static> {
    let lb = Balancer::new(BalancerConfig {
        conn_capacity: capacity,
        mac: LB_MAC,
        ..Default::default()
    })
    .expect("config");
    with_service(lb, dests, sched)
}

fn with_service(mut lb: Balancer<'_>, dests: u32, sched: Sched) -> Balancer<'_> {
    let svc = lb
        .add_service(ServiceConfig::tcp(IpAddr::V4(Ipv4Addr::from(VIP)), 80).scheduler(sched))
        .expect("svc");
    for i in 0..dests {
        let rip = IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8 + 1));
        lb.add_dest(
            svc,
            DestConfig::new(rip, 80)
                .weight(1 + (i % 3) as i32)
                .direct_routing([2, 0, 0, 1, 0, i as u8]),
        )
        .expect("dest");
    }
    lb
}

fn flows(n: usize) -> Vec<(u32, u16)> {
    (0..n)
        .map(|i| {
            (
                0x0a80_0000 + (i as u32 >> 4),
                1024 + (i as u16 & 0xf) * 3000 + (i >> 20) as u16,
            )
        })
        .collect()
}

fn established(c: &mut Criterion) {
    for &(n, huge) in &[
        (1_000usize, false),
        (65_536, false),
        (131_072, false),
        (262_144, false),
        (262_144, true),
        (1_048_576, false),
        (1_048_576, true),
    ] {
        let mut services = vec![Service::default(); 1];
        // The connection table in memory the kernel backs with 2 MiB pages, as lbd does.
        let mut table = huge.then(|| HugePageSlice::new(n + n / 8, Conn::EMPTY).expect("mmap"));
        if let Some(t) = &table {
            eprintln!(
                "{n} flows: connection table {} MiB, {} MiB of it in huge pages",
                (t.len() * size_of::<Conn>()) >> 20,
                t.huge_page_bytes() >> 20
            );
        }
        let mut lb = match table.as_deref_mut() {
            Some(conns) => {
                let cfg = BalancerConfig {
                    mac: LB_MAC,
                    ..Default::default()
                };
                let lb = Balancer::with_storage(cfg, &mut services, conns).expect("config");
                with_service(lb, 8, Sched::Wlc)
            }
            None => balancer(n + n / 8, 8, Sched::Wlc),
        };
        let fl = flows(n);
        let now = Instant::from_secs(1);
        for &(client, port) in &fl {
            let mut f = Frame::copy_from(&syn_or_ack(client, port, true), RxMeta::ETHERNET).expect("fits");
            assert!(matches!(lb.process(now, &mut f), Verdict::Forward(_)));
        }
        // 64 Ki small receive buffers holding packets of flows scattered over the whole table;
        // each iteration handles the next 256 of them (one NIC ring's worth), so at 1M flows
        // the table entries are cold, as they are under real traffic. DR only rewrites the
        // MACs, so the frames can be processed again without copies.
        let mut frames: Vec<Frame<[u8; 160]>> = (0..65_536usize)
            .map(|k| {
                let (client, port) = fl[(k * 2_654_435_761usize) % n];
                let pkt = syn_or_ack(client, port, false);
                let mut buf = [0u8; 160];
                buf[80..80 + pkt.len()].copy_from_slice(&pkt);
                Frame {
                    buf,
                    start: 80,
                    len: pkt.len(),
                    meta: RxMeta::ETHERNET,
                }
            })
            .collect();
        let name = if huge {
            format!("dr_established/{n}_flows_huge_pages")
        } else {
            format!("dr_established/{n}_flows")
        };
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(256));
        let mut window = 0usize;
        g.bench_function("single", |b| {
            b.iter(|| {
                window = (window + 256) % frames.len();
                for f in frames[window..window + 256].iter_mut() {
                    let _ = black_box(lb.process(now, f));
                }
            })
        });
        let mut verdicts = vec![Verdict::Consumed; 256];
        g.bench_function("batch", |b| {
            b.iter(|| {
                window = (window + 256) % frames.len();
                lb.process_batch(now, &mut frames[window..window + 256], &mut verdicts);
                black_box(&verdicts);
            })
        });
        g.bench_function("batch_prefetch", |b| {
            b.iter(|| {
                window = (window + 256) % frames.len();
                lb.process_batch_prefetch(
                    now,
                    &mut frames[window..window + 256],
                    &mut verdicts,
                    &lbcore_net::CpuPrefetch,
                );
                black_box(&verdicts);
            })
        });
        g.finish();
    }
}

fn new_connections(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_connection");
    for &(sched, dests) in &[
        (Sched::Wlc, 8u32),
        (Sched::Wlc, 64),
        (Sched::Rr, 64),
        (Sched::Mh, 64),
    ] {
        let mut lb = balancer(1 << 16, dests, sched);
        let frames: Vec<Frame<[u8; 2048]>> = (0..4096u32)
            .map(|i| {
                Frame::copy_from(
                    &syn_or_ack(0x0b00_0000 + i, 1024 + (i % 50_000) as u16, true),
                    RxMeta::ETHERNET,
                )
                .expect("fits")
            })
            .collect();
        let mut t = 1u64;
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function(format!("{}_{dests}_dests", sched.name()), |b| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: start from an empty table (expire the last round) and fresh frames.
                    t += 1000;
                    let _ = lb.expire(Instant::from_secs(t), 1 << 16);
                    let mut fs = frames.clone();
                    let now = Instant::from_secs(t);
                    let start = std::time::Instant::now();
                    for f in fs.iter_mut() {
                        let _ = black_box(lb.process(now, f));
                    }
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, established, new_connections);
criterion_main!(benches);
