//! Packet drivers end to end, in network namespaces the tests create (skipped without root,
//! failing instead with `LBCORE_REQUIRE_NETNS=1`; see `netns/mod.rs`).
//!
//! The drivers run in the test process: a thread moves itself into a namespace with
//! `driver::enter_netns` (`setns(2)`) and opens the driver there; clients and servers are
//! threads in the other namespaces, so no helper binaries are needed. Traffic only goes to
//! addresses inside the namespaces created here.
//!
//! `afpacket_forward_rate` is a throughput probe, ignored by default:
//! `cargo test -p lbcore-net --release --test driver_netns -- --ignored --nocapture`.
#![cfg(all(feature = "afpacket", feature = "tun", feature = "tap"))]

mod netns;

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use lbcore::wire::LinkKind;
use lbcore_net::driver::afpacket::{AfPacket, AfPacketConfig};
use lbcore_net::driver::tap::{Tap, TapConfig};
use lbcore_net::driver::tun::Tun;
use lbcore_net::driver::{self, FrameIo, PassPolicy, neigh};

/// Run `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    let path = netns::ns_path(ns);
    thread::spawn(move || {
        driver::enter_netns(&path).expect("setns");
        f()
    })
}

fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
    v.try_into().unwrap()
}

/// Check the IP header and L4 checksums of an Ethernet frame; returns the parsed packet.
fn checked(frame: &[u8]) -> SlicedPacket<'_> {
    let p = SlicedPacket::from_ethernet(frame).expect("parse");
    let (src, dst): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            )
        }
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => return p,
    };
    match (&p.transport, src, dst) {
        (Some(TransportSlice::Tcp(t)), IpAddr::V4(s), IpAddr::V4(d)) => {
            assert_eq!(
                t.calc_checksum_ipv4(s.octets(), d.octets()).unwrap(),
                t.checksum(),
                "TCP checksum"
            )
        }
        (Some(TransportSlice::Tcp(t)), IpAddr::V6(s), IpAddr::V6(d)) => {
            assert_eq!(
                t.calc_checksum_ipv6(s.octets(), d.octets()).unwrap(),
                t.checksum(),
                "TCP checksum"
            )
        }
        (Some(TransportSlice::Udp(u)), IpAddr::V4(s), IpAddr::V4(d)) => {
            let h = u.to_header();
            assert_eq!(
                h.calc_checksum_ipv4_raw(s.octets(), d.octets(), u.payload())
                    .unwrap(),
                h.checksum,
                "UDP checksum"
            )
        }
        (Some(TransportSlice::Udp(u)), IpAddr::V6(s), IpAddr::V6(d)) => {
            let h = u.to_header();
            assert_eq!(
                h.calc_checksum_ipv6_raw(s.octets(), d.octets(), u.payload())
                    .unwrap(),
                h.checksum,
                "UDP checksum"
            )
        }
        _ => {}
    }
    p
}

#[test]
fn check_methods_refuses_dr_on_tun() {
    use driver::{DriverKind, check_methods};
    use lbcore::service::Forward;
    let err = check_methods(DriverKind::Tun, &[Forward::Nat, Forward::DirectRouting]).unwrap_err();
    assert!(
        err.contains("DR needs Ethernet frames: use the afpacket or tap driver"),
        "{err}"
    );
    assert!(check_methods(DriverKind::Tun, &[Forward::Nat, Forward::FullNat]).is_ok());
    assert!(check_methods(DriverKind::AfPacket, &[Forward::DirectRouting]).is_ok());
    assert!(check_methods(DriverKind::Tap, &[Forward::DirectRouting]).is_ok());
}

/// UDP datagrams from `a` arrive through the ring in batches with completed checksums; the
/// driver sends each back with addresses and ports swapped, and `a` receives them all.
#[test]
fn afpacket_udp_batches_and_replies() {
    const N: usize = 1000;
    let Some(mut lab) = netns::Lab::new("drv_afp_udp") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    netns::veth_pair(&a, "eth0", &["10.1.0.1/24"], &b, "eth0", &["10.1.0.2/24"]);
    let (ready_tx, ready_rx) = mpsc::channel();
    let drv = in_ns(&b, move || {
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        assert_eq!(io.link(), LinkKind::Ethernet);
        ready_tx.send(()).unwrap();
        let mut frames = driver::new_frames(32, 1500);
        let (mut got, mut bytes, mut max_batch) = (0usize, 0u64, 0usize);
        let end = Instant::now() + Duration::from_secs(10);
        let mut reply = Vec::new();
        while got < N && Instant::now() < end {
            let n = io
                .recv_batch(&mut frames, Some(Duration::from_millis(100)))
                .unwrap();
            max_batch = max_batch.max(n);
            for f in &frames[..n] {
                assert_eq!(f.start, lbcore::wire::HEADROOM);
                let p = checked(f.data());
                let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) = (&p.net, &p.transport) else {
                    continue;
                };
                if u.destination_port() != 9999 {
                    continue;
                }
                got += 1;
                bytes += f.len as u64;
                let eth = p.link.as_ref().and_then(|l| l.to_header()).unwrap();
                let eth = match eth {
                    etherparse::LinkHeader::Ethernet2(e) => e,
                    _ => unreachable!(),
                };
                reply.clear();
                PacketBuilder::ethernet2(eth.destination, eth.source)
                    .ipv4(ip.header().destination(), ip.header().source(), 64)
                    .udp(9999, u.source_port())
                    .write(&mut reply, u.payload())
                    .unwrap();
                io.send(&reply).unwrap();
            }
            io.flush().unwrap();
        }
        (got, bytes, max_batch, io.stats())
    });
    ready_rx.recv().unwrap();
    let client = in_ns(&a, move || {
        let s = UdpSocket::bind("10.1.0.1:5555").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let r = s.try_clone().unwrap();
        let rx = thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (mut n, mut bytes) = (0usize, 0usize);
            while let Ok((len, from)) = r.recv_from(&mut buf) {
                assert_eq!(from, "10.1.0.2:9999".parse::<SocketAddr>().unwrap());
                n += 1;
                bytes += len;
            }
            (n, bytes)
        });
        let mut sent_bytes = 0;
        for i in 0..N {
            let len = 1 + (i * 7) % 1400;
            let payload = vec![i as u8; len];
            s.send_to(&payload, "10.1.0.2:9999").unwrap();
            sent_bytes += len;
            if i % 50 == 49 {
                thread::sleep(Duration::from_millis(2));
            }
        }
        (sent_bytes, rx.join().unwrap())
    });
    let (sent_bytes, (back, back_bytes)) = client.join().unwrap();
    let (got, bytes, max_batch, st) = drv.join().unwrap();
    eprintln!("udp: got {got} frames ({bytes} bytes), max batch {max_batch}, replies {back}; {st:?}");
    assert_eq!(got, N);
    // Ethernet + IPv4 + UDP headers around each payload.
    assert_eq!(bytes, (sent_bytes + N * 42) as u64);
    assert!(max_batch > 1, "frames came one at a time");
    assert!(
        st.rx_csum_completed > 0,
        "veth should hand over CHECKSUM_PARTIAL UDP frames"
    );
    // Every reply reached `a`'s socket, or `a`'s kernel counts it as dropped for want of
    // socket buffer (a busy machine can starve the receiving thread): nothing lost on the way.
    let snmp = String::from_utf8_lossy(&lab.exec(&a, "cat", &["/proc/net/snmp"]).stdout).into_owned();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let field = |name: &str| -> usize {
        let i = udp[0].split_whitespace().position(|w| w == name).unwrap();
        udp[1].split_whitespace().nth(i).unwrap().parse().unwrap()
    };
    let rcvbuf_errors = field("RcvbufErrors");
    assert_eq!(back + rcvbuf_errors, N, "replies lost: {snmp}");
    assert!(back >= N / 2, "only {back} replies received");
    if rcvbuf_errors == 0 {
        assert_eq!(back_bytes, sent_bytes);
    }
    assert_eq!(st.tx_frames, N as u64);
    assert_eq!(st.tx_dropped, 0);
}

/// A TCP transfer with TSO on the sender's veth (the default): the driver gets super-frames
/// and segments them (IPv4 and IPv6).
#[test]
fn afpacket_tcp_gso_segmentation() {
    let Some(mut lab) = netns::Lab::new("drv_afp_tcp") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    netns::veth_pair(
        &a,
        "eth0",
        &["10.1.0.1/24", "fd01::1/64"],
        &b,
        "eth0",
        &["10.1.0.2/24", "fd01::2/64"],
    );
    for (server, port) in [("10.1.0.2", 8080u16), ("fd01::2", 8086)] {
        let st = tcp_case(&a, &b, server, port);
        assert!(
            st.rx_gso_frames > 0,
            "expected TSO super-frames from the veth peer"
        );
        assert!(st.rx_gso_segments > st.rx_gso_frames);
    }
}

/// The same with the sender's offloads off (`ethtool -K eth0 tx off tso off gso off`) and
/// GRO on at the driver's interface: the kernel aggregates MTU-sized segments into
/// super-frames before the packet socket sees them; they are segmented back. Needs ethtool.
#[test]
fn afpacket_tcp_gro_segmentation() {
    if !netns::cmd("ethtool", &["--version"]).status.success() {
        netns::skip("afpacket_tcp_gro_segmentation", "ethtool is not installed");
        return;
    }
    let Some(mut lab) = netns::Lab::new("drv_afp_gro") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    netns::veth_pair(
        &a,
        "eth0",
        &["10.1.0.1/24", "fd01::1/64"],
        &b,
        "eth0",
        &["10.1.0.2/24", "fd01::2/64"],
    );
    lab.exec(
        &a,
        "ethtool",
        &["-K", "eth0", "tx", "off", "tso", "off", "gso", "off"],
    );
    let out = lab.exec(&b, "ethtool", &["-K", "eth0", "gro", "on"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (server, port) in [("10.1.0.2", 8080u16), ("fd01::2", 8086)] {
        let st = tcp_case(&a, &b, server, port);
        eprintln!("gro {server}: {st:?}");
        assert!(st.rx_gso_frames > 0, "expected GRO super-frames");
    }
}

/// Transfer 2 MiB from `a` to `server:port` in `b` while the driver in `b` watches: it must
/// deliver segments no larger than 1514 bytes, with correct checksums, that reassemble to
/// exactly the bytes sent. Returns the driver's counters.
fn tcp_case(a: &str, b: &str, server: &str, port: u16) -> driver::DriverStats {
    const LEN: usize = 2 << 20;
    let data: Arc<Vec<u8>> = Arc::new((0..LEN).map(|i| (i % 251) as u8).collect());
    let server_addr: SocketAddr = SocketAddr::new(server.parse().unwrap(), port);
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop2 = stop.clone();
    let drv = in_ns(b, move || {
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        let listener = TcpListener::bind(server_addr).unwrap();
        ready_tx.send(()).unwrap();
        let srv = thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut c, &mut v).unwrap();
            v.len()
        });
        // Fewer frames than a super-frame has segments: segmentation resumes across calls.
        let mut frames = driver::new_frames(7, 1500);
        let mut stream = vec![0u8; LEN];
        let mut covered = vec![false; LEN];
        let mut isn = None;
        let mut max_len = 0;
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            let n = io
                .recv_batch(&mut frames, Some(Duration::from_millis(50)))
                .unwrap();
            if n == 0 && stop2.load(Ordering::SeqCst) {
                break;
            }
            for f in &frames[..n] {
                let p = checked(f.data());
                let Some(TransportSlice::Tcp(t)) = &p.transport else {
                    continue;
                };
                if t.destination_port() != port {
                    continue;
                }
                max_len = max_len.max(f.len);
                if t.syn() {
                    isn = Some(t.sequence_number());
                }
                let Some(isn) = isn else { continue };
                let off = t.sequence_number().wrapping_sub(isn).wrapping_sub(1) as usize;
                let pay = t.payload();
                if !pay.is_empty() && off + pay.len() <= LEN {
                    stream[off..off + pay.len()].copy_from_slice(pay);
                    covered[off..off + pay.len()].iter_mut().for_each(|c| *c = true);
                }
            }
        }
        (
            srv.join().unwrap(),
            stream,
            covered.iter().all(|c| *c),
            max_len,
            io.stats(),
        )
    });
    ready_rx.recv().unwrap();
    let data2 = data.clone();
    in_ns(a, move || {
        let mut c = TcpStream::connect(server_addr).unwrap();
        std::io::Write::write_all(&mut c, &data2).unwrap();
    })
    .join()
    .unwrap();
    // Let the driver see the tail, then stop it.
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (received, stream, all, max_len, st) = drv.join().unwrap();
    eprintln!("tcp {server}: max frame {max_len}; {st:?}");
    assert_eq!(received, LEN);
    assert!(
        st.rx_gso_frames > 0,
        "expected TSO super-frames from the veth peer"
    );
    assert!(st.rx_gso_segments > st.rx_gso_frames);
    assert_eq!(st.rx_gso_dropped, 0);
    assert!(max_len <= 1514, "segment of {max_len} bytes");
    assert!(all, "stream not fully covered");
    assert!(stream == *data, "reassembled stream differs");
    st
}

/// `neigh::resolve` finds the peer's MAC (IPv4 and IPv6), and routed output through the
/// neighbour cache reaches the peer.
#[test]
fn neighbour_resolution_and_routed_output() {
    let Some(mut lab) = netns::Lab::new("drv_neigh") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    netns::veth_pair(
        &a,
        "eth0",
        &["10.1.0.1/24", "fd01::1/64"],
        &b,
        "eth0",
        &["10.1.0.2/24", "fd01::2/64"],
    );
    let peer_mac = parse_mac(&netns::mac_of(&a, "eth0"));
    let index = netns::ifindex(&b, "eth0");
    let sink = in_ns(&a, || {
        let s = UdpSocket::bind("10.1.0.1:5556").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf).map(|(n, from)| (buf[..n].to_vec(), from))
    });
    let found = in_ns(&b, move || {
        let v4 = neigh::resolve(index, "10.1.0.1".parse().unwrap(), Duration::from_secs(3)).unwrap();
        let v6 = neigh::resolve(index, "fd01::1".parse().unwrap(), Duration::from_secs(3)).unwrap();
        let none = neigh::resolve(index, "10.1.0.77".parse().unwrap(), Duration::from_millis(300)).unwrap();
        // Routed output: a bare IPv4/UDP packet for next hop 10.1.0.1.
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        let mut pkt = Vec::new();
        PacketBuilder::ipv4([10, 1, 0, 2], [10, 1, 0, 1], 64)
            .udp(4444, 5556)
            .write(&mut pkt, b"routed")
            .unwrap();
        io.send_routed(&pkt, "10.1.0.1".parse().unwrap()).unwrap();
        io.flush().unwrap();
        (v4, v6, none, io.stats())
    })
    .join()
    .unwrap();
    assert_eq!(found.0, Some(peer_mac));
    assert_eq!(found.1, Some(peer_mac));
    assert_eq!(found.2, None);
    assert_eq!(found.3.tx_frames, 1, "{:?}", found.3);
    let (payload, from) = sink.join().unwrap().expect("routed packet not received");
    assert_eq!(payload, b"routed");
    assert_eq!(from, "10.1.0.2:4444".parse::<SocketAddr>().unwrap());
}

/// TUN: a packet routed into the device is read as bare IP; one written back reaches the
/// sender's socket.
#[test]
fn tun_reads_and_writes_bare_ip() {
    let Some(mut lab) = netns::Lab::new("drv_tun") else {
        return;
    };
    let t = lab.ns("t");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let drv = in_ns(&t, move || {
        let mut io = Tun::open("lbtun0", PassPolicy::Drop).unwrap();
        assert_eq!(io.name(), "lbtun0");
        assert_eq!(io.link(), LinkKind::Ip);
        ready_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let mut frames = driver::new_frames(8, 1500);
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            let n = io
                .recv_batch(&mut frames, Some(Duration::from_millis(100)))
                .unwrap();
            for f in &frames[..n] {
                assert_eq!(f.meta.link, LinkKind::Ip);
                let p = SlicedPacket::from_ip(f.data()).unwrap();
                let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) = (&p.net, &p.transport) else {
                    continue;
                };
                if u.destination_port() != 7777 {
                    continue;
                }
                assert_eq!(u.payload(), b"to tun");
                let mut reply = Vec::new();
                PacketBuilder::ipv4(ip.header().destination(), ip.header().source(), 64)
                    .udp(7777, u.source_port())
                    .write(&mut reply, b"from tun")
                    .unwrap();
                io.send(&reply).unwrap();
                io.flush().unwrap();
                return io.stats();
            }
        }
        panic!("no packet through the tun");
    });
    ready_rx.recv().unwrap();
    netns::must("ip", &["-n", &t, "link", "set", "dev", "lbtun0", "up"]);
    netns::must("ip", &["-n", &t, "addr", "add", "10.2.0.1/24", "dev", "lbtun0"]);
    netns::must("ip", &["-n", &t, "route", "add", "10.3.0.0/24", "dev", "lbtun0"]);
    go_tx.send(()).unwrap();
    let got = in_ns(&t, || {
        let s = UdpSocket::bind("10.2.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.send_to(b"to tun", "10.3.0.5:7777").unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf).map(|(n, from)| (buf[..n].to_vec(), from))
    })
    .join()
    .unwrap();
    let st = drv.join().unwrap();
    let (payload, from) = got.expect("reply from the tun not received");
    assert_eq!(payload, b"from tun");
    assert_eq!(from, "10.3.0.5:7777".parse::<SocketAddr>().unwrap());
    assert_eq!(st.tx_frames, 1);
}

/// TAP: the host's ARP request and IPv6 neighbour solicitation for a VIP are answered with
/// the balancer's MAC; the UDP datagram that follows is delivered.
#[test]
fn tap_answers_arp_and_nd_for_vips() {
    let Some(mut lab) = netns::Lab::new("drv_tap") else {
        return;
    };
    let x = lab.ns("x");
    let lb_mac = [0x02, 0x6c, 0x62, 0, 0, 0x01];
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let seen = Arc::new(AtomicU64::new(0));
    let seen2 = seen.clone();
    let drv = in_ns(&x, move || {
        let cfg = TapConfig {
            mac: lb_mac,
            addresses: vec!["10.4.0.100".parse().unwrap(), "fd04::100".parse().unwrap()],
            pass: PassPolicy::Drop,
        };
        let mut io = Tap::open("lbtap0", cfg).unwrap();
        ready_tx.send(()).unwrap();
        let mut frames = driver::new_frames(8, 1500);
        while !stop2.load(Ordering::SeqCst) {
            let n = io
                .recv_batch(&mut frames, Some(Duration::from_millis(50)))
                .unwrap();
            for f in &frames[..n] {
                let p = SlicedPacket::from_ethernet(f.data()).unwrap();
                if let Some(TransportSlice::Udp(u)) = &p.transport
                    && u.destination_port() == 9
                    && u.payload() == b"hello vip"
                {
                    seen2.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        // Routed output to the host, through the MAC learnt from its ARP request.
        let mut pkt = Vec::new();
        PacketBuilder::ipv4([10, 4, 0, 100], [10, 4, 0, 1], 64)
            .udp(9, 5557)
            .write(&mut pkt, b"routed via tap")
            .unwrap();
        io.send_routed(&pkt, "10.4.0.1".parse().unwrap()).unwrap();
        (io.stats(), io.neighbour("10.4.0.1".parse().unwrap()))
    });
    ready_rx.recv().unwrap();
    netns::must("ip", &["-n", &x, "addr", "add", "10.4.0.1/24", "dev", "lbtap0"]);
    netns::must(
        "ip",
        &["-n", &x, "addr", "add", "fd04::1/64", "dev", "lbtap0", "nodad"],
    );
    netns::must("ip", &["-n", &x, "link", "set", "dev", "lbtap0", "up"]);
    let host_mac = parse_mac(&netns::mac_of(&x, "lbtap0"));
    let want = "02:6c:62:00:00:01".to_string();
    for vip in ["10.4.0.100", "fd04::100"] {
        let vip2 = vip.to_string();
        let ok = netns::wait_until(Duration::from_secs(5), || {
            let v = vip2.clone();
            in_ns(&x, move || {
                let s = UdpSocket::bind(if v.contains(':') { "[::]:0" } else { "0.0.0.0:0" }).unwrap();
                let _ = s.send_to(b"hello vip", SocketAddr::new(v.parse().unwrap(), 9));
            })
            .join()
            .unwrap();
            thread::sleep(Duration::from_millis(50));
            netns::neighbour_mac(&x, &vip2).as_deref() == Some(want.as_str())
        });
        assert!(ok.is_some(), "no neighbour entry with the LB's MAC for {vip}");
    }
    let delivered = netns::wait_until(Duration::from_secs(3), || seen.load(Ordering::SeqCst) >= 2);
    let (bound_tx, bound_rx) = mpsc::channel();
    let sink = in_ns(&x, move || {
        let s = UdpSocket::bind("10.4.0.1:5557").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        bound_tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        s.recv_from(&mut buf).map(|(n, from)| (buf[..n].to_vec(), from))
    });
    bound_rx.recv().unwrap();
    stop.store(true, Ordering::SeqCst);
    let (st, learnt) = drv.join().unwrap();
    let (payload, from) = sink
        .join()
        .unwrap()
        .expect("routed packet from the tap not received");
    assert_eq!(payload, b"routed via tap");
    assert_eq!(from, "10.4.0.100:9".parse::<SocketAddr>().unwrap());
    eprintln!("tap: {st:?}");
    assert!(st.arp_replies >= 1 && st.nd_replies >= 1, "{st:?}");
    assert_eq!(learnt, Some(host_mac));
    assert!(delivered.is_some(), "UDP to the VIPs not delivered");
}

/// VLAN-tagged frames are not supported: counted and not delivered (the kernel keeps its
/// copy); untagged traffic on the same interface still is.
#[test]
fn afpacket_counts_vlan_frames() {
    let Some(mut lab) = netns::Lab::new("drv_afp_vlan") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    netns::veth_pair(&a, "eth0", &["10.1.0.1/24"], &b, "eth0", &["10.1.0.2/24"]);
    let b_mac = parse_mac(&netns::mac_of(&b, "eth0"));
    let a_mac = parse_mac(&netns::mac_of(&a, "eth0"));
    let (ready_tx, ready_rx) = mpsc::channel();
    let drv = in_ns(&b, move || {
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        ready_tx.send(()).unwrap();
        let mut frames = driver::new_frames(16, 1500);
        let mut untagged = 0;
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && (untagged == 0 || io.stats().rx_vlan == 0) {
            let n = io
                .recv_batch(&mut frames, Some(Duration::from_millis(50)))
                .unwrap();
            for f in &frames[..n] {
                let d = f.data();
                assert!(
                    !matches!([d[12], d[13]], [0x81, 0x00] | [0x88, 0xa8]),
                    "tagged frame delivered"
                );
                if SlicedPacket::from_ethernet(d).is_ok_and(
                    |p| matches!(p.transport, Some(TransportSlice::Udp(u)) if u.destination_port() == 4242),
                ) {
                    untagged += 1;
                }
            }
        }
        (untagged, io.stats())
    });
    ready_rx.recv().unwrap();
    // The kernel here has no 802.1Q module: send tagged frames (VLAN 5) by hand.
    in_ns(&a, move || {
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        let mut plain = Vec::new();
        PacketBuilder::ethernet2(a_mac, b_mac)
            .ipv4([10, 1, 0, 1], [10, 1, 0, 2], 64)
            .udp(4000, 4242)
            .write(&mut plain, b"plain")
            .unwrap();
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        for _ in 0..5 {
            io.send(&tagged).unwrap();
            io.send(&plain).unwrap();
            io.flush().unwrap();
            thread::sleep(Duration::from_millis(100));
        }
    })
    .join()
    .unwrap();
    let (untagged, st) = drv.join().unwrap();
    assert!(st.rx_vlan > 0, "{st:?}");
    assert!(untagged > 0, "{st:?}");
}

/// Throughput probe: raw driver forwarding (recv_batch -> send unchanged -> flush, no core)
/// from `c` through `lb` (in on eth0, out on eth1) towards `s`. The blaster in `c` sends
/// pre-built 64-byte UDP frames with the `AF_PACKET` driver itself (batches of 256), addressed
/// to a MAC nobody has, so the kernels on the way drop them at once (`PACKET_OTHERHOST`) and
/// only the drivers do work. `LBCORE_RATE_SECS` (default 3) and `LBCORE_RATE_TX_BATCH` (the
/// forwarder's send batch, default 256; 1 = one system call per frame) tune it.
#[test]
#[ignore = "throughput probe; run with --ignored --nocapture, preferably --release"]
fn afpacket_forward_rate() {
    let Some(mut lab) = netns::Lab::new("drv_rate") else {
        return;
    };
    let c = lab.ns("c");
    let lb = lab.ns("lb");
    let s = lab.ns("s");
    netns::veth_pair(&c, "eth0", &["10.5.0.1/24"], &lb, "eth0", &["10.5.0.2/24"]);
    netns::veth_pair(&lb, "eth1", &["10.6.0.2/24"], &s, "eth0", &["10.6.0.1/24"]);
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let secs = env("LBCORE_RATE_SECS", 3);
    let tx_batch = env("LBCORE_RATE_TX_BATCH", 256) as usize;
    let c_mac = parse_mac(&netns::mac_of(&c, "eth0"));
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let stop2 = stop.clone();
    let fwd = in_ns(&lb, move || {
        let mut rx = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        let cfg = AfPacketConfig {
            tx_batch,
            ..AfPacketConfig::default()
        };
        let mut tx = AfPacket::open("eth1", cfg).unwrap();
        let mut frames = driver::new_frames(256, 1500);
        ready_tx.send(()).unwrap();
        let mut first = None;
        let mut last = Instant::now();
        while !stop2.load(Ordering::Relaxed) {
            let n = rx
                .recv_batch(&mut frames, Some(Duration::from_millis(20)))
                .unwrap();
            if n > 0 {
                if first.is_none() {
                    first = Some((Instant::now(), rx.stats().rx_frames - n as u64));
                }
                last = Instant::now();
            }
            for f in &frames[..n] {
                tx.send(f.data()).unwrap();
            }
            tx.flush().unwrap();
        }
        (first, last, rx.stats(), tx.stats())
    });
    ready_rx.recv().unwrap();
    let stop3 = stop.clone();
    let blaster = in_ns(&c, move || {
        let mut io = AfPacket::open("eth0", AfPacketConfig::default()).unwrap();
        let mut frame = Vec::new();
        PacketBuilder::ethernet2(c_mac, [0x02, 0, 0, 0, 0, 0x99])
            .ipv4([10, 5, 0, 1], [10, 5, 0, 2], 64)
            .udp(1234, 9)
            .write(&mut frame, &[0u8; 18])
            .unwrap();
        assert_eq!(frame.len(), 60);
        while !stop3.load(Ordering::Relaxed) {
            for _ in 0..256 {
                io.send(&frame).unwrap();
            }
            io.flush().unwrap();
        }
        io.stats()
    });
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::SeqCst);
    let bst = blaster.join().unwrap();
    let (first, last, rxs, txs) = fwd.join().unwrap();
    let sink = netns::rx_packets(&s, "eth0");
    let (t0, base) = first.expect("nothing forwarded");
    let secs = last.duration_since(t0).as_secs_f64();
    let pps = (txs.tx_frames.saturating_sub(base)) as f64 / secs;
    eprintln!(
        "forward rate (tx batch {tx_batch}): blaster sent {} (dropped {}), driver received {} (ring drops {}) and sent {} (dropped {}), sink saw {sink}: {pps:.0} pps over {secs:.2} s",
        bst.tx_frames, bst.tx_dropped, rxs.rx_frames, rxs.rx_ring_drops, txs.tx_frames, txs.tx_dropped,
    );
    assert!(txs.tx_frames > 0);
}
