//! The naive baseline of issue 7: what a user would write without thinking about the hot path.
//! A `std::collections::HashMap` (SipHash-1-3, randomly keyed) from the 5-tuple to the real
//! server, a full `etherparse` parse of every frame, the destination MAC rewritten, and the IPv4
//! header and TCP checksums recomputed from scratch (instead of incrementally, or not at all as
//! DR allows).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// The 5-tuple key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// Client address.
    pub src: IpAddr,
    /// Virtual address.
    pub dst: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual port.
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
}

/// The naive balancer: a flow map and the real servers' MACs.
#[derive(Debug, Default)]
pub struct NaiveLb<S = RandomState> {
    /// Flow -> real server index.
    pub flows: HashMap<FiveTuple, u32, S>,
    /// Real server MAC addresses.
    pub macs: Vec<[u8; 6]>,
    /// Our MAC.
    pub mac: [u8; 6],
}

impl NaiveLb {
    /// A map (randomly keyed SipHash-1-3) with room for `capacity` flows over `macs`.
    pub fn new(capacity: usize, mac: [u8; 6], macs: Vec<[u8; 6]>) -> Self {
        Self::with_hasher(capacity, mac, macs, RandomState::new())
    }
}

impl<S: BuildHasher> NaiveLb<S> {
    /// The same with the map's hasher given.
    pub fn with_hasher(capacity: usize, mac: [u8; 6], macs: Vec<[u8; 6]>, hasher: S) -> Self {
        NaiveLb {
            flows: HashMap::with_capacity_and_hasher(capacity, hasher),
            macs,
            mac,
        }
    }

    /// Handles one frame in place; `Some(server)` if it was forwarded. New flows go round-robin.
    pub fn process(&mut self, frame: &mut [u8]) -> Option<u32> {
        let key = {
            let p = SlicedPacket::from_ethernet(frame).ok()?;
            let (src, dst, proto) = match p.net? {
                NetSlice::Ipv4(ip) => (
                    IpAddr::V4(ip.header().source_addr()),
                    IpAddr::V4(ip.header().destination_addr()),
                    ip.header().protocol().0,
                ),
                NetSlice::Ipv6(ip) => (
                    IpAddr::V6(ip.header().source_addr()),
                    IpAddr::V6(ip.header().destination_addr()),
                    ip.header().next_header().0,
                ),
                _ => return None,
            };
            let (sport, dport) = match p.transport? {
                TransportSlice::Tcp(t) => (t.source_port(), t.destination_port()),
                TransportSlice::Udp(u) => (u.source_port(), u.destination_port()),
                _ => return None,
            };
            FiveTuple {
                src,
                dst,
                sport,
                dport,
                proto,
            }
        };
        let n = self.flows.len() as u32;
        let servers = self.macs.len() as u32;
        let server = *self.flows.entry(key).or_insert(n % servers.max(1));
        let mac = *self.macs.get(server as usize)?;
        frame.get_mut(0..6)?.copy_from_slice(&mac);
        frame.get_mut(6..12)?.copy_from_slice(&self.mac);
        recompute_checksums(frame);
        Some(server)
    }
}

/// Recomputes the IPv4 header checksum and the TCP checksum of an Ethernet/IPv4/TCP frame.
pub fn recompute_checksums(frame: &mut [u8]) {
    let (ip_sum, tcp_sum, ihl) = {
        let Ok(p) = SlicedPacket::from_ethernet(frame) else {
            return;
        };
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) = (&p.net, &p.transport) else {
            return;
        };
        let ip_h = ip.header().to_header();
        let tcp_h = tcp.to_header();
        let Ok(tcp_sum) = tcp_h.calc_checksum_ipv4(&ip_h, tcp.payload()) else {
            return;
        };
        (ip_h.calc_header_checksum(), tcp_sum, usize::from(ip_h.ihl()) * 4)
    };
    let ip_off = 14;
    let tcp_off = ip_off + ihl;
    frame[ip_off + 10..ip_off + 12].copy_from_slice(&ip_sum.to_be_bytes());
    frame[tcp_off + 16..tcp_off + 18].copy_from_slice(&tcp_sum.to_be_bytes());
}
