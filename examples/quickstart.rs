//! Quickstart: the classic LVS-DR tutorial configuration, driven by synthetic clients.
//!
//! ```text
//! ipvsadm -A -t 172.27.9.100:81 -s wrr -p 50
//! ipvsadm -a -t 172.27.9.100:81 -r 172.27.9.91:81 -g -w 1
//! ipvsadm -a -t 172.27.9.100:81 -r 172.27.9.92:81 -g -w 1
//! ```
//!
//! Run with `cargo run --release --example quickstart [CLIENTS] [CONNS_PER_CLIENT]`. It pushes
//! complete TCP connections (SYN, ACK, data, FIN, ACK) from many client addresses through the
//! balancer as Ethernet frames, checks every verdict, and prints `ipvsadm -Ln --stats` and the
//! per-server split.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Verdict};
use lbcore::service::{DestConfig, Sched, ServiceConfig};
use lbcore::time::{Duration, Instant};

const VIP: Ipv4Addr = Ipv4Addr::new(172, 27, 9, 100);
const ROUTER_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x27, 0x09, 0x01];
const LB_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x27, 0x09, 0x64];

fn tcp_frame(client: Ipv4Addr, cport: u16, flags: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = etherparse::PacketBuilder::ethernet2(ROUTER_MAC, LB_MAC)
        .ipv4(client.octets(), VIP.octets(), 64)
        .tcp(cport, 81, 1000, 64240);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("writing to a Vec cannot fail");
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let clients: u32 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let per_client: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);

    let mut lb = Balancer::new(BalancerConfig {
        conn_capacity: 1 << 16,
        mac: LB_MAC,
        ..Default::default()
    })
    .expect("valid balancer configuration");
    let svc = lb
        .add_service(
            ServiceConfig::tcp(IpAddr::V4(VIP), 81)
                .scheduler(Sched::Wrr)
                .persistent(Duration::from_secs(50)),
        )
        .expect("service");
    let servers = [
        (Ipv4Addr::new(172, 27, 9, 91), [0x52, 0x54, 0, 0x27, 0x09, 0x91]),
        (Ipv4Addr::new(172, 27, 9, 92), [0x52, 0x54, 0, 0x27, 0x09, 0x92]),
    ];
    for (ip, mac) in servers {
        lb.add_dest(
            svc,
            DestConfig::new(IpAddr::V4(ip), 81).weight(1).direct_routing(mac),
        )
        .expect("dest");
    }

    let mut now = Instant::from_secs(1);
    let mut forwarded = 0u64;
    let mut per_server = std::collections::BTreeMap::<[u8; 6], u64>::new();
    let mut conn_server = std::collections::BTreeMap::<Ipv4Addr, [u8; 6]>::new();
    let mut sticky_violations = 0u64;
    for round in 0..per_client {
        for c in 0..clients {
            let client = Ipv4Addr::new(10, (c >> 16) as u8, (c >> 8) as u8, c as u8 | 1);
            let cport = 20000 + (round as u16) * 7 + (c % 5) as u16;
            let mut first_mac = None;
            for (flags, payload) in [
                ("S", &b""[..]),
                ("A", b""),
                ("PA", b"GET / HTTP/1.0\r\n\r\n"),
                ("FA", b""),
                ("A", b""),
            ] {
                let bytes = tcp_frame(client, cport, flags, payload);
                let mut frame = Frame::copy_from(&bytes, RxMeta::ETHERNET).expect("frame fits");
                match lb.process(now, &mut frame) {
                    Verdict::Forward(_) => {
                        forwarded += 1;
                        let out = frame.data();
                        let mut mac = [0u8; 6];
                        mac.copy_from_slice(&out[..6]);
                        assert_eq!(&out[6..12], &LB_MAC, "DR sets our MAC as the source");
                        assert_eq!(&out[14..], &bytes[14..], "DR leaves the IP packet untouched");
                        first_mac.get_or_insert(mac);
                        if flags == "S" {
                            *per_server.entry(mac).or_default() += 1;
                        }
                    }
                    other => {
                        eprintln!("unexpected verdict {other:?} for {client}:{cport} {flags}");
                        return ExitCode::FAILURE;
                    }
                }
                now = now + Duration::from_micros(50);
            }
            if let Some(mac) = first_mac {
                // Persistence: every connection of a client goes to the same real server.
                if *conn_server.entry(client).or_insert(mac) != mac {
                    sticky_violations += 1;
                }
            }
        }
        now = now + Duration::from_secs(1);
    }
    // Let the rate estimator see a few ticks.
    for _ in 0..3 {
        now = now + Duration::from_secs(2);
        let _ = lb.expire(now, 1 << 16);
    }

    print!(
        "{}",
        lbcore::render::list_stats(&lb.table_info(), &lb.service_views())
    );
    println!();
    let total: u64 = per_server.values().sum();
    println!(
        "Per-server split of {total} connections from {clients} clients ({forwarded} packets forwarded):"
    );
    for (ip, mac) in servers {
        let n = per_server.get(&mac).copied().unwrap_or(0);
        println!(
            "  {ip}:81  {n:>6} connections  {:>5.1}%",
            100.0 * n as f64 / total.max(1) as f64
        );
    }
    println!("Persistence violations: {sticky_violations}");
    if sticky_violations != 0 || total != u64::from(clients) * u64::from(per_client) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
