//! Shared set-ups of the hot-path benchmarks: the criterion benches in `benches/` and the
//! instruction-count scenarios of the `lbcore-icount` binary (the CI gate, `.ci/bench-gate.sh`)
//! build their balancers and frames here, so both measure the same thing.
//!
//! Everything here is set-up code: it allocates freely, and panics on a set-up mistake.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::balancer::{Balancer, BalancerConfig, Frame, RxMeta, Service, Verdict};
use lbcore::conn::Conn;
use lbcore::service::{DestConfig, Forward, Sched, ServiceConfig};
use lbcore::time::{Duration, Instant};

pub mod icount;
pub mod maglev;
pub mod naive;

/// Our MAC address.
pub const LB_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// The client-side router's MAC address (source of client frames, NAT reply next hop).
pub const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 9];
/// The virtual IPv4 address.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// The virtual IPv6 address.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// The virtual port.
pub const VPORT: u16 = 80;
/// The real servers' port (NAT/FULLNAT rewrite to it).
pub const RPORT: u16 = 8080;
/// The FULLNAT local address.
pub const LOCAL4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
/// The FULLNAT local IPv6 address.
pub const LOCAL6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1);
/// Bytes of headroom before each frame (`lbcore::wire::HEADROOM`).
pub const HEADROOM: usize = lbcore::wire::HEADROOM;
/// Receive-buffer size of the benchmark frames: headroom + a 64-byte (IPv4) or 84-byte (IPv6)
/// frame + slack.
pub const BUF: usize = 192;

/// A small receive buffer.
pub type SmallFrame = Frame<[u8; BUF]>;

/// TCP flags of a generated segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tcp {
    /// SYN.
    Syn,
    /// ACK with 10 bytes of payload.
    Ack,
}

/// One TCP segment's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seg {
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
}

/// Builds a TCP segment with 10 bytes of payload: a 64-byte Ethernet frame for IPv4 (84 for
/// IPv6), or the bare IP packet when `ethernet` is false.
pub fn segment(seg: Seg, flags: Tcp, ethernet: bool) -> Vec<u8> {
    use etherparse::PacketBuilder;
    let mut v = Vec::new();
    macro_rules! finish {
        ($b:expr) => {{
            let b = $b.tcp(seg.sport, seg.dport, 1, 64240);
            let b = match flags {
                Tcp::Syn => b.syn(),
                Tcp::Ack => b.ack(1),
            };
            b.write(&mut v, &[0u8; 10]).expect("Vec write");
        }};
    }
    match (seg.src, seg.dst, ethernet) {
        (IpAddr::V4(s), IpAddr::V4(d), true) => {
            finish!(PacketBuilder::ethernet2(GW_MAC, LB_MAC).ipv4(s.octets(), d.octets(), 64))
        }
        (IpAddr::V4(s), IpAddr::V4(d), false) => finish!(PacketBuilder::ipv4(s.octets(), d.octets(), 64)),
        (IpAddr::V6(s), IpAddr::V6(d), true) => {
            finish!(PacketBuilder::ethernet2(GW_MAC, LB_MAC).ipv6(s.octets(), d.octets(), 64))
        }
        (IpAddr::V6(s), IpAddr::V6(d), false) => finish!(PacketBuilder::ipv6(s.octets(), d.octets(), 64)),
        _ => panic!("mixed families"),
    }
    v
}

/// Puts `packet` into a small receive buffer after the headroom.
pub fn small_frame(packet: &[u8], meta: RxMeta) -> SmallFrame {
    let mut buf = [0u8; BUF];
    buf[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    Frame {
        buf,
        start: HEADROOM,
        len: packet.len(),
        meta,
    }
}

/// The address of client `i` (IPv4: 10.128.0.0/9 and up; IPv6: fd00:c::/64).
pub fn client_addr(i: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xc, 0, 0, 0, 0, (i >> 16) as u16, i as u16))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a80_0000 + (i >> 4)))
    }
}

/// The source port of client flow `i` (16 ports per IPv4 address).
pub fn client_port(i: u32) -> u16 {
    1024 + (i as u16 & 0xf) * 3000 + (i >> 20) as u16
}

/// The address of real server `i`.
pub fn rip(i: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0xd, 0, 0, 0, 0, 0, i as u16 + 1))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8 + 1))
    }
}

/// The MAC address of real server `i`.
pub fn rs_mac(i: u32) -> [u8; 6] {
    [2, 0, 0, 1, (i >> 8) as u8, i as u8]
}

/// What a benchmark service looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Connection-table capacity.
    pub capacity: usize,
    /// Number of real servers.
    pub dests: u32,
    /// Scheduler.
    pub sched: Sched,
    /// Forwarding method of every real server.
    pub forward: Forward,
    /// IPv6 service and real servers.
    pub v6: bool,
    /// Persistence timeout, if any.
    pub persistence: Option<Duration>,
    /// Multiplies the weights 1, 2, 3, ...: `ovf` gives a destination only `weight + 1` active
    /// connections, so a bench of many SYNs needs large weights to time scheduling, not drops.
    pub weight_scale: i32,
}

impl Setup {
    /// A DR service (wlc, 8 servers) over IPv4 with room for `capacity` connections.
    pub const fn dr(capacity: usize) -> Self {
        Setup {
            capacity,
            dests: 8,
            sched: Sched::Wlc,
            forward: Forward::DirectRouting,
            v6: false,
            persistence: None,
            weight_scale: 1,
        }
    }

    /// Whether frames are Ethernet (everything but TUN input, which we also feed as Ethernet).
    pub fn vip(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(VIP6)
        } else {
            IpAddr::V4(VIP4)
        }
    }

    /// The balancer with one TCP service on the VIP and `dests` real servers (weights 1, 2, 3,
    /// 1, 2, 3, ... times `weight_scale`).
    pub fn balancer(&self) -> Balancer<'static> {
        let lb = Balancer::new(self.config()).expect("config");
        self.with_service(lb)
    }

    /// [`Setup::balancer`] over caller-provided storage, e.g. a connection table in huge pages
    /// (`conns.len()` is the capacity).
    pub fn balancer_over<'a>(&self, services: &'a mut [Service], conns: &'a mut [Conn]) -> Balancer<'a> {
        let lb = Balancer::with_storage(self.config(), services, conns).expect("config");
        self.with_service(lb)
    }

    fn config(&self) -> BalancerConfig {
        let mut local_addrs = heapless::Vec::new();
        local_addrs
            .push(if self.v6 {
                IpAddr::V6(LOCAL6)
            } else {
                IpAddr::V4(LOCAL4)
            })
            .expect("one local address");
        BalancerConfig {
            conn_capacity: self.capacity,
            mac: LB_MAC,
            gateway_mac: Some(GW_MAC),
            tunnel_source_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            tunnel_source_v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            local_addrs,
            ..Default::default()
        }
    }

    fn with_service<'a>(&self, mut lb: Balancer<'a>) -> Balancer<'a> {
        let mut svc = ServiceConfig::tcp(self.vip(), VPORT).scheduler(self.sched);
        if let Some(t) = self.persistence {
            svc = svc.persistent(t);
        }
        let svc = lb.add_service(svc).expect("svc");
        for i in 0..self.dests {
            let d = DestConfig::new(rip(i, self.v6), RPORT)
                .weight((1 + (i % 3) as i32) * self.weight_scale)
                .forward(self.forward)
                .mac(rs_mac(i));
            lb.add_dest(svc, d).expect("dest");
        }
        lb
    }

    /// Client flow `i` towards the VIP.
    pub fn client_seg(&self, i: u32) -> Seg {
        Seg {
            src: client_addr(i, self.v6),
            sport: client_port(i),
            dst: self.vip(),
            dport: VPORT,
        }
    }
}

/// Sends SYN then ACK of flows `0..n` through `lb`, so that they are ESTABLISHED, and returns
/// the reply direction of each flow as the real server sees it (server address and port to
/// the address and port it was rewritten to: the client for NAT, our local address for
/// FULLNAT; for DR/TUN the reply direction is not seen by the balancer but returned anyway).
pub fn establish(lb: &mut Balancer<'_>, setup: &Setup, n: u32, now: Instant) -> Vec<Seg> {
    let mut replies = Vec::with_capacity(n as usize);
    for i in 0..n {
        let seg = setup.client_seg(i);
        let mut f = small_frame(&segment(seg, Tcp::Syn, true), RxMeta::ETHERNET);
        let v = lb.process(now, &mut f);
        assert!(matches!(v, Verdict::Forward(_)), "SYN of flow {i}: {v:?}");
        replies.push(reply_of(f.data(), setup.forward));
        let mut f = small_frame(&segment(seg, Tcp::Ack, true), RxMeta::ETHERNET);
        let v = lb.process(now, &mut f);
        assert!(matches!(v, Verdict::Forward(_)), "ACK of flow {i}: {v:?}");
    }
    replies
}

/// The reply direction of a forwarded (inbound) frame: swaps the rewritten tuple.
fn reply_of(out: &[u8], forward: Forward) -> Seg {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let p = match forward {
        Forward::Tunnel(_) => {
            return Seg {
                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                sport: 0,
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dport: 0,
            };
        }
        Forward::DirectRouting => SlicedPacket::from_ethernet(out),
        Forward::Nat | Forward::FullNat => {
            // Routed output: Ethernet when the destination has a MAC (it does here).
            SlicedPacket::from_ethernet(out)
        }
    }
    .expect("forwarded frame parses");
    let (src, dst) = match p.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::V4(ip.header().source_addr()),
            IpAddr::V4(ip.header().destination_addr()),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
        ),
        _ => panic!("no IP in the forwarded frame"),
    };
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("no TCP in the forwarded frame")
    };
    Seg {
        src: dst,
        sport: t.destination_port(),
        dst: src,
        dport: t.source_port(),
    }
}

/// Frames of `segs` with ACK + 10 bytes, as small receive buffers.
pub fn ack_frames(segs: impl IntoIterator<Item = Seg>) -> Vec<SmallFrame> {
    segs.into_iter()
        .map(|s| small_frame(&segment(s, Tcp::Ack, true), RxMeta::ETHERNET))
        .collect()
}

/// Memory of the connection table, in bytes per connection slot: entry size plus the hash
/// index, measured from the table the balancer built for `capacity` connections.
pub fn table_bytes_per_conn(capacity: usize) -> f64 {
    let lb = Setup::dr(capacity).balancer();
    let t = lb.conn_table();
    t.memory_bytes() as f64 / t.capacity() as f64
}
