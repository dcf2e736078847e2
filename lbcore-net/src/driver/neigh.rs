//! Next-hop MAC addresses from the kernel's neighbour table (rtnetlink `RTM_GETNEIGH`), for
//! drivers that send routed IP packets out of an Ethernet interface with `AF_PACKET`.
//!
//! The kernel does the resolving (ARP, IPv6 neighbour discovery, its timers and retries); we
//! only read its table. To make it resolve an address it does not know yet we send one UDP
//! datagram (one zero byte) to the discard port 9 of that address from a socket bound to the
//! interface (`SO_BINDTODEVICE`): the kernel resolves the next hop before it can send it. The
//! address then receives that datagram (a host without a discard service answers with an ICMP
//! port unreachable, which is harmless).
//!
//! [`NeighCache`] is the data-plane cache: lookups are a hash-map read; a miss starts
//! resolution (at most once per address per [`PROBE_INTERVAL`]) and the caller drops and
//! counts the packet. [`NeighCache::maintain`] re-reads the kernel's table every
//! [`REFRESH_INTERVAL`], or soon after a miss. Entries the kernel marks incomplete or failed
//! are not used; stale ones are (the kernel re-validates them itself when it uses them).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr as NlAddr};
use socket2::{Domain, Protocol, Type};

/// How often the whole table is re-read.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Re-read this soon after a miss.
pub const MISS_REFRESH: Duration = Duration::from_millis(20);
/// At most one resolution probe per address this often.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// One neighbour-table entry with a usable link-layer address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// The IP address.
    pub ip: IpAddr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// The kernel's state for it.
    pub state: NeighbourState,
}

/// The usable entries of interface `ifindex` in the kernel's neighbour table (IPv4 and
/// IPv6; incomplete and failed ones left out).
pub fn dump(ifindex: u32) -> io::Result<Vec<Neighbour>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&NlAddr::new(0, 0))?;
    dump_on(&mut sock, ifindex, &mut vec![0u8; 64 * 1024])
}

fn dump_on(sock: &mut Socket, ifindex: u32, buf: &mut [u8]) -> io::Result<Vec<Neighbour>> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Unspec;
    let mut packet = NetlinkMessage::new(
        NetlinkHeader::default(),
        NetlinkPayload::from(RouteNetlinkMessage::GetNeighbour(msg)),
    );
    packet.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    packet.header.sequence_number = 1;
    packet.finalize();
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    sock.send(&out, 0)?;
    let mut found = Vec::new();
    loop {
        let n = sock.recv(&mut &mut buf[..], 0)?;
        let mut offset = 0;
        while offset < n {
            let bytes = buf.get(offset..n).unwrap_or(&[]);
            let msg: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::Done(_) => return Ok(found),
                NetlinkPayload::Error(e) => {
                    if let Some(code) = e.code {
                        return Err(io::Error::from_raw_os_error(-code.get()));
                    }
                }
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(m))
                    if m.header.ifindex == ifindex =>
                {
                    if let Some(nb) = usable(&m) {
                        found.push(nb);
                    }
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

fn usable(m: &NeighbourMessage) -> Option<Neighbour> {
    let state = m.header.state;
    if matches!(
        state,
        NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
    ) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => ip = Some(IpAddr::V4(*v4)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => ip = Some(IpAddr::V6(*v6)),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(l.as_slice()).ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        ip: ip?,
        mac: mac?,
        state,
    })
}

/// Sends resolution probes (UDP to port 9) out of one interface.
struct Prober {
    ifindex: u32,
    v4: Option<socket2::Socket>,
    v6: Option<socket2::Socket>,
}

impl Prober {
    fn new(ifindex: u32) -> io::Result<Prober> {
        let name = crate::netlink::Rtnl::new()?
            .links()?
            .into_iter()
            .find(|l| l.index == ifindex)
            .map(|l| l.name)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no interface with index {ifindex}"),
                )
            })?;
        let open = |d: Domain| -> Option<socket2::Socket> {
            let s = socket2::Socket::new(d, Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP)).ok()?;
            s.bind_device(Some(name.as_bytes())).ok()?;
            Some(s)
        };
        Ok(Prober {
            ifindex,
            v4: open(Domain::IPV4),
            v6: open(Domain::IPV6),
        })
    }

    fn probe(&self, ip: IpAddr) {
        let (sock, to) = match ip {
            IpAddr::V4(_) => (&self.v4, SocketAddr::new(ip, 9)),
            IpAddr::V6(v6) => {
                let scope = if v6.is_unicast_link_local() {
                    self.ifindex
                } else {
                    0
                };
                (&self.v6, SocketAddr::V6(SocketAddrV6::new(v6, 9, 0, scope)))
            }
        };
        if let Some(s) = sock {
            // Best effort: errors (no route, unreachable) just mean no resolution.
            let _ = s.send_to(&[0], &to.into());
        }
    }
}

/// Resolve `ip` on interface `ifindex` to a MAC address through the kernel: read the
/// neighbour table, start resolution if needed, and re-read every 10 ms until it is there or
/// `timeout` passed (`Ok(None)`).
pub fn resolve(ifindex: u32, ip: IpAddr, timeout: Duration) -> io::Result<Option<[u8; 6]>> {
    let end = Instant::now() + timeout;
    let prober = Prober::new(ifindex)?;
    let mut last_probe: Option<Instant> = None;
    loop {
        if let Some(n) = dump(ifindex)?.into_iter().find(|n| n.ip == ip) {
            return Ok(Some(n.mac));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(None);
        }
        if last_probe.is_none_or(|t| now.duration_since(t) >= PROBE_INTERVAL) {
            prober.probe(ip);
            last_probe = Some(now);
        }
        std::thread::sleep(Duration::from_millis(10).min(end - now));
    }
}

/// A data-plane cache of the kernel's neighbour table for one interface.
pub struct NeighCache {
    ifindex: u32,
    sock: Socket,
    buf: Vec<u8>,
    prober: Prober,
    entries: HashMap<IpAddr, [u8; 6]>,
    probed: HashMap<IpAddr, Instant>,
    next_refresh: Instant,
}

impl NeighCache {
    /// A cache for interface `ifindex`, filled from the kernel's table.
    pub fn new(ifindex: u32) -> io::Result<NeighCache> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        let mut c = NeighCache {
            ifindex,
            sock,
            buf: vec![0u8; 64 * 1024],
            prober: Prober::new(ifindex)?,
            entries: HashMap::new(),
            probed: HashMap::new(),
            next_refresh: Instant::now(),
        };
        c.refresh()?;
        Ok(c)
    }

    /// The MAC address of `ip`, if known. A miss starts resolution (rate-limited) and
    /// schedules an early refresh; the caller drops the packet.
    pub fn lookup(&mut self, ip: IpAddr) -> Option<[u8; 6]> {
        if let Some(m) = self.entries.get(&ip) {
            return Some(*m);
        }
        let now = Instant::now();
        let due = self
            .probed
            .get(&ip)
            .is_none_or(|t| now.duration_since(*t) >= PROBE_INTERVAL);
        if due && self.probed.len() < 4096 {
            self.prober.probe(ip);
            self.probed.insert(ip, now);
            self.next_refresh = self.next_refresh.min(now + MISS_REFRESH);
        }
        None
    }

    /// Re-read the kernel's table now.
    pub fn refresh(&mut self) -> io::Result<()> {
        // On failure, try again a little later rather than on every call.
        self.next_refresh = Instant::now() + MISS_REFRESH;
        let found = dump_on(&mut self.sock, self.ifindex, &mut self.buf)?;
        self.entries.clear();
        for n in found {
            self.entries.insert(n.ip, n.mac);
            self.probed.remove(&n.ip);
        }
        let now = Instant::now();
        self.probed
            .retain(|_, t| now.duration_since(*t) < PROBE_INTERVAL * 4);
        self.next_refresh = now
            + if self.probed.is_empty() {
                REFRESH_INTERVAL
            } else {
                MISS_REFRESH
            };
        Ok(())
    }

    /// Refresh if due (call from the data-plane loop; cheap when not due). On an error the
    /// cache keeps its entries and tries again [`MISS_REFRESH`] later.
    pub fn maintain(&mut self) -> io::Result<()> {
        if Instant::now() >= self.next_refresh {
            self.refresh()?;
        }
        Ok(())
    }

    /// Number of known entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
