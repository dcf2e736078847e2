//! Throughput: lbd forwarding UDP by direct routing over AF_PACKET between namespaces, next to
//! the kernel's own IP forwarding through the same veth topology, in the same run.
//!
//! ```text
//!   client 10.3.0.10 --+                       (UDP sender: 18-byte payloads, 64-byte frames)
//!   lb     10.3.0.1  --+-- br0                 (lbd DR, VIP 10.3.0.100; or kernel forwarding
//!   rs     10.3.0.2  --+                        to 10.3.9.9, routed via 10.3.0.1)
//! ```
//!
//! The load generator is a thread of this test moved into the client namespace
//! ([`lbcore_net::driver::enter_netns`]) that sends 18-byte UDP datagrams (64-byte Ethernet
//! frames) as fast as one core can for a few seconds; the packets counted are those the real
//! server's interface received (its `rx_packets`). Both paths carry the same stream over the
//! same veths. Printed as `THROUGHPUT ...` lines (run with `--nocapture`); this is a
//! measurement, not a timing gate: the test fails only if no traffic gets through.
//!
//! Needs root and nft; skipped without them, failed with `LBCORE_REQUIRE_NETNS=1`.

mod netns;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use netns::{Lab, wait_until};

fn lbd() -> String {
    std::env::var("LBCORE_LBD").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lbd").to_string())
}

const BLAST: Duration = Duration::from_secs(3);

fn rx_packets(lab: &Lab, ns: &str) -> u64 {
    let out = lab.exec(ns, "cat", &["/sys/class/net/eth0/statistics/rx_packets"]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// Sends 18-byte UDP datagrams from the client namespace to `target:9` for [`BLAST`];
/// returns (sent, received at the real server).
fn blast(lab: &Lab, client: &str, rs: &str, target: &str) -> (u64, u64) {
    let before = rx_packets(lab, rs);
    let ns_path = format!("/run/netns/{client}");
    let target = format!("{target}:9");
    let sent = std::thread::spawn(move || {
        lbcore_net::driver::enter_netns(std::path::Path::new(&ns_path)).expect("enter the client namespace");
        let sock = UdpSocket::bind("10.3.0.10:0").unwrap();
        sock.connect(&target).unwrap();
        let payload = [0x5au8; 18];
        let end = Instant::now() + BLAST;
        let mut sent = 0u64;
        while Instant::now() < end {
            for _ in 0..256 {
                if sock.send(&payload).is_ok() {
                    sent += 1;
                }
            }
        }
        sent
    })
    .join()
    .unwrap();
    // Let the last frames drain.
    std::thread::sleep(Duration::from_millis(300));
    (sent, rx_packets(lab, rs) - before)
}

#[test]
fn dr_over_afpacket_next_to_kernel_forwarding() {
    let Some(mut lab) = Lab::new("throughput") else {
        return;
    };
    if !netns::cmd("nft", &["--version"]).status.success() {
        netns::skip("throughput", "nft is not installed (apt-get install nftables)");
        return;
    }
    let sw = lab.ns("sw");
    lab.bridge(&sw, "br0");
    let client = lab.ns("client");
    lab.veth(&client, "eth0", &sw, "br0", &["10.3.0.10/24"]);
    let lb = lab.ns("lb");
    lab.veth(&lb, "eth0", &sw, "br0", &["10.3.0.1/24"]);
    let rs = lab.ns("rs");
    lab.veth(&rs, "eth0", &sw, "br0", &["10.3.0.2/24"]);
    // DR: the VIP on the director's interface, and on the real server's lo (not announced).
    netns::must("ip", &["-n", &lb, "addr", "add", "10.3.0.100/32", "dev", "eth0"]);
    netns::must("ip", &["-n", &rs, "addr", "add", "10.3.0.100/32", "dev", "lo"]);
    for key in [
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
    ] {
        netns::must("ip", &["netns", "exec", &rs, "sysctl", "-qw", key]);
    }
    // Kernel path: 10.3.9.9 lives on the real server, routed through the director.
    netns::must("ip", &["-n", &rs, "addr", "add", "10.3.9.9/32", "dev", "lo"]);
    netns::must(
        "ip",
        &["-n", &client, "route", "add", "10.3.9.9/32", "via", "10.3.0.1"],
    );
    netns::must(
        "ip",
        &["-n", &lb, "route", "add", "10.3.9.9/32", "via", "10.3.0.2"],
    );
    netns::must(
        "ip",
        &["netns", "exec", &lb, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
    );
    // No ICMP redirects: the client must keep sending through the director.
    for key in [
        "net.ipv4.conf.all.send_redirects=0",
        "net.ipv4.conf.eth0.send_redirects=0",
    ] {
        netns::must("ip", &["netns", "exec", &lb, "sysctl", "-qw", key]);
    }
    let rules = lab.write(
        "lb.rules",
        "-A -u 10.3.0.100:9 -s rr\n-a -u 10.3.0.100:9 -r 10.3.0.2:9 -g -w 1\n",
    );
    let sock = lab.path("lb.sock");
    let lbd_proc = lab.spawn(
        &lb,
        &lbd(),
        &[
            "--ipvsadm-rules",
            rules.to_str().unwrap(),
            "-i",
            "eth0",
            "--control",
            sock.to_str().unwrap(),
        ],
        "lb.log",
    );
    let show = || {
        String::from_utf8_lossy(&netns::cmd(&lbd(), &["show", "--control", sock.to_str().unwrap()]).stdout)
            .into_owned()
    };
    assert!(
        wait_until(Duration::from_secs(5), || show().contains("-> 10.3.0.2:9")).is_some(),
        "lbd up:\n{}",
        lab.logs()
    );

    // Warm the neighbour tables (ARP) on both paths.
    let _ = lab.exec(&client, "ping", &["-c", "1", "-W", "1", "10.3.9.9"]);
    let _ = lab.exec(&client, "ping", &["-c", "1", "-W", "1", "10.3.0.100"]);
    let (k_sent, k_recv) = blast(&lab, &client, &rs, "10.3.9.9");
    let (l_sent, l_recv) = blast(&lab, &client, &rs, "10.3.0.100");
    let secs = BLAST.as_secs_f64();
    let (k_pps, l_pps) = (k_recv as f64 / secs, l_recv as f64 / secs);
    println!(
        "THROUGHPUT kernel forwarding: sent {k_sent}, received {k_recv} in {secs} s = {:.0} packets/s",
        k_pps
    );
    println!(
        "THROUGHPUT lbd DR over AF_PACKET: sent {l_sent}, received {l_recv} in {secs} s = {:.0} packets/s",
        l_pps
    );
    println!("THROUGHPUT ratio lbd/kernel: {:.2}", l_pps / k_pps.max(1.0));
    println!("{}", show());
    let counters = String::from_utf8_lossy(
        &netns::cmd(
            &lbd(),
            &["show", "--counters", "--control", sock.to_str().unwrap()],
        )
        .stdout,
    )
    .into_owned();
    println!("{counters}");
    assert!(k_recv > 0, "kernel path carried traffic");
    assert!(l_recv > 0, "lbd carried traffic\n{}", lab.logs());

    lab.proc(lbd_proc).signal("TERM");
    assert!(
        lab.proc(lbd_proc)
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}
