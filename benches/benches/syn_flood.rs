//! SYN-flood benchmarks (see `lbcore/tests/syn_flood.rs` and FUZZING.md): the cost of a spoofed
//! SYN against a full table (the eviction path: a scan of up to 64 entries under the sweep hand),
//! the cost of a SYN that finds nothing to evict (a table full of ESTABLISHED flows: dropped,
//! `table_full`), and established-flow forwarding while the table is full of half-open entries.
//!
//! `cargo bench -p lbcore-benches --bench syn_flood`; `-- --test` runs each once (CI smoke).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use lbcore::balancer::{Balancer, BalancerConfig, DropReason, Frame, RxMeta, Verdict};
use lbcore::service::{DestConfig, Sched, ServiceConfig};
use lbcore::time::{Duration, Instant};

const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const VIP: [u8; 4] = [192, 0, 2, 10];
const CAPACITY: usize = 1 << 16;

fn packet(client: u32, port: u16, syn: bool) -> Frame<[u8; 160]> {
    let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], LB_MAC)
        .ipv4(client.to_be_bytes(), VIP, 64)
        .tcp(port, 80, 1, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 10]).expect("Vec write");
    let mut buf = [0u8; 160];
    buf[80..80 + v.len()].copy_from_slice(&v);
    Frame {
        buf,
        start: 80,
        len: v.len(),
        meta: RxMeta::ETHERNET,
    }
}

fn balancer() -> Balancer<'static> {
    let mut lb = Balancer::new(BalancerConfig {
        conn_capacity: CAPACITY,
        mac: LB_MAC,
        ..Default::default()
    })
    .expect("config");
    let svc = lb
        .add_service(ServiceConfig::tcp(IpAddr::V4(Ipv4Addr::from(VIP)), 80).scheduler(Sched::Wlc))
        .expect("svc");
    for i in 0..8u8 {
        let rip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i + 1));
        lb.add_dest(svc, DestConfig::new(rip, 80).direct_routing([2, 0, 0, 1, 0, i]))
            .expect("dest");
    }
    lb
}

/// `n` established flows (SYN then ACK) from 10.128.0.0/10.
fn establish(lb: &mut Balancer<'_>, now: Instant, n: usize) -> Vec<Frame<[u8; 160]>> {
    (0..n as u32)
        .map(|i| {
            let (c, p) = (0x0a80_0000 + (i >> 4), 1024 + (i as u16 & 0xf));
            let mut syn = packet(c, p, true);
            let mut ack = packet(c, p, false);
            assert!(matches!(lb.process(now, &mut syn), Verdict::Forward(_)));
            assert!(matches!(lb.process(now, &mut ack), Verdict::Forward(_)));
            ack
        })
        .collect()
}

/// Spoofed SYNs from 198.18.0.0/15, all distinct tuples.
fn spoofed(n: usize) -> Vec<Frame<[u8; 160]>> {
    (0..n as u32)
        .map(|i| packet(0xc612_0000 + (i >> 6), 1024 + (i as u16 & 0x3f), true))
        .collect()
}

fn flood(c: &mut Criterion) {
    let mut g = c.benchmark_group("syn_flood");
    let now0 = Instant::from_secs(10);

    // A quarter of the table established, the rest filled by the flood: every new SYN evicts
    // (or is dropped while the hand crosses the established block).
    let mut lb = balancer();
    let mut est = establish(&mut lb, now0, CAPACITY / 4);
    let mut syns = spoofed(4 * CAPACITY);
    for f in syns.iter_mut().take(CAPACITY) {
        let _ = lb.process(now0, f);
    }
    assert_eq!(lb.conn_table().len(), CAPACITY);
    let mut at = 0usize;
    let mut t = now0;
    g.throughput(Throughput::Elements(256));
    g.bench_function("spoofed_syn_full_table", |b| {
        b.iter(|| {
            at = (at + 256) % syns.len();
            t = t + Duration::from_micros(1);
            for f in syns[at..at + 256].iter_mut() {
                let _ = black_box(lb.process(t, f));
            }
        })
    });
    let mut k = 0usize;
    g.bench_function("established_under_flood", |b| {
        b.iter(|| {
            k = (k + 256) % est.len();
            for f in est[k..k + 256].iter_mut() {
                let _ = black_box(lb.process(t, f));
            }
        })
    });
    eprintln!(
        "syn_flood: {} conns, evicted {}, table_full {}",
        lb.conn_table().len(),
        lb.counters().evicted,
        lb.drops(DropReason::TableFull)
    );

    // A table full of ESTABLISHED flows: each SYN scans 64 entries and is dropped.
    let mut full = balancer();
    let _ = establish(&mut full, now0, CAPACITY);
    let mut at = 0usize;
    g.bench_function("syn_table_full_of_established", |b| {
        b.iter(|| {
            at = (at + 256) % syns.len();
            for f in syns[at..at + 256].iter_mut() {
                let v = full.process(now0, f);
                debug_assert_eq!(v, Verdict::Drop(DropReason::TableFull));
                let _ = black_box(v);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, flood);
criterion_main!(benches);
