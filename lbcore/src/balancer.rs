//! The data plane: classify -> look up or schedule -> rewrite -> verdict.
//!
//! [`Balancer`] owns the virtual services, their destinations, the connection table and the
//! counters. It is a pure function of its inputs (frames, the caller's `now`, configuration and
//! the seed in [`BalancerConfig`]): no clock, no I/O, no allocation on the packet path (with
//! `alloc`, only construction and configuration calls allocate), no panics on packet bytes. Every packet gets a [`Verdict`]; every drop has a [`DropReason`] and
//! a counter.
//!
//! IPVS semantics followed here (`ip_vs_core.c`): an existing connection is found by the
//! client-side tuple (or, for NAT/FULLNAT replies, the server-side tuple) before any service
//! lookup; a new TCP connection is scheduled only on a SYN without RST (other segments without a
//! connection are passed to the host, like NF_ACCEPT); services are matched by firewall mark
//! first, then (protocol, VIP, port), then the VIP's port-zero service; persistent services
//! use templates (`ip_vs_sched_persist`); `conn_reuse_mode` reschedules a SYN that reuses the
//! tuple of a TIME_WAIT/CLOSE connection; `expire_nodest_conn` and `expire_quiescent_template`
//! are options. Destination removal keeps the destination's connections (IPVS's "trash") until
//! they expire; their packets are dropped.
//!
//! Where we deliberately differ: the table has a fixed capacity; when it is full the balancer
//! evicts (see [`Balancer::EVICT_SCAN`] and [`Balancer::EVICT_WINDOWS`]) or drops the new connection, counted — IPVS would keep
//! allocating. Removing a whole service flushes its connections at once.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::conn::table::{NIL, flag};
use crate::conn::{Conn, ConnState, ConnTable, Dir, FwdKind, TcpDirection, Timeouts, tcp_next_state};
use crate::forward::{self, Encap, Endpoint, ForwardError};
use crate::rng::Rng;
use crate::sched::{DestList, DestSlot, MAX_DESTS, SchedDest, SchedPacket, SchedState};
use crate::service::{DestConfig, Family, Forward, Protocol, ServiceConfig, ServiceKey};
use crate::stats::{Counters, Estimator};
use crate::storage::Storage;
use crate::time::{Duration, Instant};
use crate::wire::{self, Fragment, LinkKind, Packet, ParseError};

/// TCP SYN flag bit.
const TCP_SYN: u8 = 0x02;
/// TCP RST flag bit.
const TCP_RST: u8 = 0x04;

/// [`Balancer::process_batch_prefetch`] also prefetches the second entry of a chain whose head
/// is another flow (about half the lookups of a full table) for tables larger than this: the
/// size of a server's last-level cache (32 MiB on the AMD EPYC we measure on). Below it that
/// entry is usually a cache hit and the extra work only costs (BENCHMARKS.md, tuning step 14).
pub const SECOND_PREFETCH_MIN_TABLE_BYTES: usize = 32 * 1024 * 1024;

/// Most FULLNAT local addresses.
pub const MAX_LOCAL_ADDRS: usize = 16;

/// [`Balancer::process_batch`] stages its lookups only for connection tables larger than
/// this ([`ConnTable::memory_bytes`], 64 bytes per connection; 512 KiB is 8,192
/// connections): a smaller table fits in one core's L2 cache (512 KiB on the AMD EPYC we
/// measure on, 1 to 2 MiB on recent x86 and Arm server cores), so there are few misses for the
/// staging to overlap, and it costs about 55 instructions per packet (measured: 75 against
/// 60 ns per packet at 1,000 flows; see BENCHMARKS.md).
pub const STAGED_BATCH_MIN_TABLE_BYTES: usize = 512 * 1024;

/// Starts loading the cache line that holds a value, without waiting for it: a prefetch
/// instruction. lbcore has no `unsafe` code and prefetch instructions need it, so a driver that
/// may use `unsafe` supplies one to [`Balancer::process_batch_prefetch`] (e.g.
/// `lbcore_net::CpuPrefetch`). A hint only: a wrong or missing prefetch costs time, never
/// correctness.
pub trait Prefetch {
    /// Hints that `value` will be read soon.
    fn prefetch<T>(&self, value: &T);
}

/// Balancer-wide settings, fixed at construction.
#[derive(Clone, Debug)]
pub struct BalancerConfig {
    /// Connection-table capacity (connections plus persistence templates).
    pub conn_capacity: usize,
    /// How many services the balancer can hold.
    pub max_services: usize,
    /// Root seed: the hash key and every random choice derive from it.
    pub seed: u64,
    /// Our Ethernet address: the source MAC of frames we send.
    pub mac: [u8; 6],
    /// Next hop towards clients for NAT/FULLNAT replies when output is Ethernet. Without it,
    /// replies are handed back as bare IP packets for the driver to route.
    pub gateway_mac: Option<[u8; 6]>,
    /// Outer source address of IPv4 tunnels.
    pub tunnel_source_v4: Option<Ipv4Addr>,
    /// Outer source address of IPv6 tunnels.
    pub tunnel_source_v6: Option<Ipv6Addr>,
    /// FULLNAT local addresses (the source of packets sent to real servers).
    pub local_addrs: heapless::Vec<IpAddr, MAX_LOCAL_ADDRS>,
    /// FULLNAT local port range (inclusive).
    pub local_ports: (u16, u16),
    /// Protocol timeouts.
    pub timeouts: Timeouts,
    /// `expire_nodest_conn`: a packet for a connection whose destination was removed expires it.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`: a template whose destination has weight 0 is not reused.
    pub expire_quiescent_template: bool,
    /// `conn_reuse_mode` (bit 0: reschedule a SYN reusing a TIME_WAIT/CLOSE connection's tuple;
    /// bit 1: also FIN_WAIT for DR/TUN). IPVS's default is 1.
    pub conn_reuse_mode: u8,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            conn_capacity: 1 << 16,
            max_services: 64,
            seed: 0x6c62_636f_7265_5eed,
            mac: [0x02, 0, 0, 0, 0, 1],
            gateway_mac: None,
            tunnel_source_v4: None,
            tunnel_source_v6: None,
            local_addrs: heapless::Vec::new(),
            local_ports: (1024, 65535),
            timeouts: Timeouts::IPVS_DEFAULT,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
        }
    }
}

/// Metadata the driver attaches to a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// Ethernet frame or bare IP packet.
    pub link: LinkKind,
    /// Firewall mark (0 = none), as iptables `MARK` sets it for IPVS fwmark services.
    pub fwmark: u32,
}

impl RxMeta {
    /// An Ethernet frame without a mark.
    pub const ETHERNET: RxMeta = RxMeta {
        link: LinkKind::Ethernet,
        fwmark: 0,
    };
    /// A bare IP packet without a mark.
    pub const IP: RxMeta = RxMeta {
        link: LinkKind::Ip,
        fwmark: 0,
    };
}

/// A frame in a caller-owned buffer: the packet is `buf[start..start + len]`, and the bytes
/// before `start` are headroom for encapsulation (see [`wire::HEADROOM`]). After a
/// [`Verdict::Forward`], `start`/`len` describe the bytes to send.
#[derive(Clone, Debug)]
pub struct Frame<B> {
    /// The buffer.
    pub buf: B,
    /// Offset of the first byte.
    pub start: usize,
    /// Length of the packet.
    pub len: usize,
    /// Receive metadata.
    pub meta: RxMeta,
}

impl<B: AsRef<[u8]>> Frame<B> {
    /// The packet's bytes.
    pub fn data(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let end = self.start.saturating_add(self.len).min(b.len());
        b.get(self.start.min(end)..end).unwrap_or(&[])
    }
}

impl Frame<[u8; 2048]> {
    /// Copies `packet` into a fresh 2 KiB buffer after [`wire::HEADROOM`] bytes of headroom;
    /// `None` if it does not fit.
    pub fn copy_from(packet: &[u8], meta: RxMeta) -> Option<Self> {
        let mut buf = [0u8; 2048];
        let start = wire::HEADROOM;
        buf.get_mut(start..start + packet.len())?.copy_from_slice(packet);
        Some(Frame {
            buf,
            start,
            len: packet.len(),
            meta,
        })
    }
}

/// Identifies a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u16);

/// Identifies a destination of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId {
    /// Its service.
    pub svc: ServiceId,
    /// Its slot in the service.
    pub slot: DestSlot,
}

/// Where a forwarded packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarded {
    /// What the output bytes are: an Ethernet frame (addressed) or an IP packet to route.
    pub link: LinkKind,
    /// The IP next hop (real server, tunnel endpoint or client) for routed output.
    pub next_hop: IpAddr,
    /// The destination the connection is bound to.
    pub dest: DestId,
}

/// Why a packet was dropped. Each reason has a counter ([`Balancer::drops`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The packet failed to parse.
    Malformed(ParseError),
    /// Rewriting for the forwarding method failed.
    Forward(ForwardError),
    /// A non-first fragment for a virtual address (fragments are not reassembled).
    Fragment,
    /// The service has no usable destination (IPVS replies port unreachable and drops).
    NoDestination,
    /// The connection table is full and nothing could be evicted.
    TableFull,
    /// The connection's destination was removed.
    DestUnavailable,
    /// FULLNAT found no free local address/port.
    NoLocalPort,
}

impl DropReason {
    const OWN: usize = 5;
    /// Number of distinct reasons (size of the counter array).
    pub const COUNT: usize = ParseError::COUNT + ForwardError::COUNT + Self::OWN;

    /// A dense index in `0..COUNT`.
    pub fn index(self) -> usize {
        match self {
            DropReason::Malformed(e) => e.index(),
            DropReason::Forward(e) => ParseError::COUNT + e.index(),
            DropReason::Fragment => ParseError::COUNT + ForwardError::COUNT,
            DropReason::NoDestination => ParseError::COUNT + ForwardError::COUNT + 1,
            DropReason::TableFull => ParseError::COUNT + ForwardError::COUNT + 2,
            DropReason::DestUnavailable => ParseError::COUNT + ForwardError::COUNT + 3,
            DropReason::NoLocalPort => ParseError::COUNT + ForwardError::COUNT + 4,
        }
    }

    /// The reason with index `i`.
    pub fn from_index(i: usize) -> Option<DropReason> {
        if i < ParseError::COUNT {
            return Some(DropReason::Malformed(ParseError::ALL[i]));
        }
        let i = i - ParseError::COUNT;
        if i < ForwardError::COUNT {
            return Some(DropReason::Forward(ForwardError::ALL[i]));
        }
        Some(match i - ForwardError::COUNT {
            0 => DropReason::Fragment,
            1 => DropReason::NoDestination,
            2 => DropReason::TableFull,
            3 => DropReason::DestUnavailable,
            4 => DropReason::NoLocalPort,
            _ => return None,
        })
    }

    /// A stable snake_case name, e.g. `truncated` or `table_full`.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed(e) => e.name(),
            DropReason::Forward(e) => e.name(),
            DropReason::Fragment => "fragment",
            DropReason::NoDestination => "no_destination",
            DropReason::TableFull => "table_full",
            DropReason::DestUnavailable => "dest_unavailable",
            DropReason::NoLocalPort => "no_local_port",
        }
    }
}

/// What to do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Send the frame's (possibly moved) bytes.
    Forward(Forwarded),
    /// Drop it; counted under the reason.
    Drop(DropReason),
    /// Not ours: hand it to the host stack unchanged.
    Pass,
    /// Used up by the core (nothing to send).
    Consumed,
}

/// Global packet counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalCounters {
    /// Packets processed.
    pub rx: u64,
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets passed to the host.
    pub passed: u64,
    /// Packets dropped (sum of the per-reason counters).
    pub dropped: u64,
    /// New connections created.
    pub conns_created: u64,
    /// Connections removed by expiry (including lazily on lookup).
    pub conns_expired: u64,
    /// Entries evicted because the table was full.
    pub evicted: u64,
    /// Persistence templates created.
    pub templates_created: u64,
    /// SYNs that reused a closing connection's tuple and were rescheduled (`conn_reuse_mode`).
    pub reused: u64,
}

/// Errors from configuration calls. The running configuration is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A service with that key exists.
    ServiceExists,
    /// No such service.
    NoSuchService,
    /// The service table is full.
    TooManyServices,
    /// The destination exists in this service.
    DestExists,
    /// No such destination.
    NoSuchDest,
    /// The service already has [`MAX_DESTS`] destinations.
    TooManyDests,
    /// Port 0 is only allowed for persistent services (IPVS: "port zero only supported in
    /// persistent services").
    PortZeroNotPersistent,
    /// Direct routing needs the real server's MAC address.
    DirectRoutingNeedsMac,
    /// The destination's address family does not match the service (only tunnels may differ).
    FamilyMismatch,
    /// Weights and thresholds must not be negative; the lower threshold must not exceed the
    /// upper one.
    BadWeight,
    /// FULLNAT needs a local address of the destination's family.
    NoLocalAddress,
    /// A tunnel needs a tunnel source address of the destination's family.
    NoTunnelSource,
    /// Capacities must be non-zero and storage sizes consistent.
    BadCapacity,
    /// One-packet scheduling is only for UDP services.
    OnePacketNotUdp,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::ServiceExists => "service already exists",
            ConfigError::NoSuchService => "no such service",
            ConfigError::TooManyServices => "service table is full",
            ConfigError::DestExists => "destination already exists",
            ConfigError::NoSuchDest => "no such destination",
            ConfigError::TooManyDests => "too many destinations for this service",
            ConfigError::PortZeroNotPersistent => "port zero only supported in persistent services",
            ConfigError::DirectRoutingNeedsMac => "direct routing needs the real server's MAC address",
            ConfigError::FamilyMismatch => "destination address family differs from the service's",
            ConfigError::BadWeight => "invalid weight or thresholds",
            ConfigError::NoLocalAddress => "FULLNAT needs a local address of the destination's family",
            ConfigError::NoTunnelSource => {
                "tunnelling needs a tunnel source address of the destination's family"
            }
            ConfigError::BadCapacity => "invalid capacity",
            ConfigError::OnePacketNotUdp => "one-packet scheduling is only for UDP services",
        })
    }
}

/// Life cycle of a destination slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    Live,
    /// Removed from the service; kept while connections still refer to it.
    Removed,
}

/// One destination, with its counters.
#[derive(Clone, Debug)]
pub struct Dest {
    state: SlotState,
    sched: SchedDest,
    addr: u128,
    cfg: DestConfig,
    persistent: u32,
    /// Connections and templates bound to this destination.
    refs: u32,
    stats: Counters,
    est: Estimator,
}

impl AsRef<SchedDest> for Dest {
    fn as_ref(&self) -> &SchedDest {
        &self.sched
    }
}

impl Default for Dest {
    fn default() -> Self {
        let unspecified = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        Dest {
            state: SlotState::Free,
            sched: SchedDest::new(unspecified, 0, 0),
            addr: 0,
            cfg: DestConfig::new(unspecified, 0),
            persistent: 0,
            refs: 0,
            stats: Counters::default(),
            est: Estimator::new(Instant::ZERO, &Counters::default()),
        }
    }
}

/// One virtual service: configuration, scheduler state, destinations and counters. Public only
/// so that a caller without an allocator can provide the storage ([`Balancer::with_storage`]).
#[derive(Clone, Debug)]
pub struct Service {
    live: bool,
    cfg: ServiceConfig,
    vaddr: u128,
    sched: SchedState,
    dests: [Dest; MAX_DESTS],
    order: heapless::Vec<DestSlot, MAX_DESTS>,
    stats: Counters,
    est: Estimator,
}

impl Default for Service {
    fn default() -> Self {
        let cfg = ServiceConfig::tcp(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        Service {
            live: false,
            cfg,
            vaddr: 0,
            sched: SchedState::new(cfg.sched, cfg.flags),
            dests: core::array::from_fn(|_| Dest::default()),
            order: heapless::Vec::new(),
            stats: Counters::default(),
            est: Estimator::new(Instant::ZERO, &Counters::default()),
        }
    }
}

/// A destination as reported by [`Balancer::dest_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestInfo {
    /// Its configuration.
    pub config: DestConfig,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates pointing at it.
    pub persistent: u32,
    /// Whether it is overloaded (upper threshold reached).
    pub overloaded: bool,
    /// Whether it was removed but still has connections.
    pub removed: bool,
    /// Its counters.
    pub stats: Counters,
}

/// Masks an address to the 128-bit form the table uses (IPv4 as IPv4-mapped IPv6).
pub(crate) fn addr128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(v.to_ipv6_mapped()),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The address stored by [`addr128`], back in its family.
pub(crate) fn addr_of(a: u128) -> IpAddr {
    let v6 = Ipv6Addr::from(a);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// The keyed flow hash: one per packet. With `alloc`, ahash (seeded from the configuration);
/// without, a folded-multiply mix of our own that needs no allocator.
#[derive(Clone, Debug)]
struct FlowHasher {
    #[cfg(feature = "alloc")]
    state: ahash::RandomState,
    #[cfg(not(feature = "alloc"))]
    keys: [u64; 2],
}

impl FlowHasher {
    fn new(rng: &mut Rng) -> Self {
        #[cfg(feature = "alloc")]
        {
            let k = [rng.next_u64(), rng.next_u64(), rng.next_u64(), rng.next_u64()];
            FlowHasher {
                state: ahash::RandomState::with_seeds(k[0], k[1], k[2], k[3]),
            }
        }
        #[cfg(not(feature = "alloc"))]
        {
            FlowHasher {
                keys: [rng.next_u64(), rng.next_u64()],
            }
        }
    }

    #[inline]
    fn hash(&self, proto: u8, src: u128, sport: u16, dst: u128, dport: u16) -> u64 {
        let ports = (u64::from(sport) << 24) | (u64::from(dport) << 8) | u64::from(proto);
        #[cfg(feature = "alloc")]
        {
            use core::hash::{BuildHasher, Hasher};
            let mut h = self.state.build_hasher();
            h.write_u128(src);
            h.write_u128(dst);
            h.write_u64(ports);
            h.finish()
        }
        #[cfg(not(feature = "alloc"))]
        {
            #[inline]
            fn fold(x: u64, y: u64) -> u64 {
                let m = u128::from(x) * u128::from(y);
                (m as u64) ^ ((m >> 64) as u64)
            }
            let a = fold(
                (src as u64) ^ self.keys[0],
                ((src >> 64) as u64) ^ 0x243f_6a88_85a3_08d3,
            );
            let b = fold(
                (dst as u64) ^ self.keys[1],
                ((dst >> 64) as u64) ^ 0x1319_8a2e_0370_7344,
            );
            fold(a ^ ports, b ^ 0xa409_3822_299f_31d0)
        }
    }
}

/// Key of a packet's flow, as the table compares it.
#[derive(Clone, Copy, Debug)]
struct FlowKey {
    proto: u8,
    src: u128,
    sport: u16,
    dst: u128,
    dport: u16,
}

/// A parsed frame with its flow key and hash; `Ok(None)` when it is not for the balancer.
type Classified = Result<Option<(FlowKey, u64)>, DropReason>;

/// The port a NAT/FULLNAT connection uses on its real server: the destination's port, or the
/// virtual port when the destination's port is 0 (port-zero and fwmark services).
fn real_port(d: &DestConfig, vport: u16) -> u16 {
    if d.port == 0 { vport } else { d.port }
}

fn fwd_kind(f: Forward) -> FwdKind {
    match f {
        Forward::DirectRouting => FwdKind::Dr,
        Forward::Tunnel(_) => FwdKind::Tun,
        Forward::Nat => FwdKind::Nat,
        Forward::FullNat => FwdKind::FullNat,
    }
}

/// The load balancer. See the module docs.
#[derive(Debug)]
pub struct Balancer<'a> {
    cfg: BalancerConfig,
    local: heapless::Vec<u128, MAX_LOCAL_ADDRS>,
    services: Storage<'a, Service>,
    conns: ConnTable<'a>,
    hasher: FlowHasher,
    rng: Rng,
    hand: u32,
    last_now: Instant,
    next_estimate: Instant,
    counters: GlobalCounters,
    drops: [u64; DropReason::COUNT],
}

impl Balancer<'static> {
    /// A balancer with tables sized from `config` (one allocation per table, here and never
    /// again; only a service that selects lblc, lblcr or mh allocates its scheduler's state
    /// when it is added or switched). The hash index lives inside the connection entries
    /// (one bucket per entry), so the table is `conn_capacity × 64` bytes.
    #[cfg(feature = "alloc")]
    pub fn new(config: BalancerConfig) -> Result<Self, ConfigError> {
        if config.conn_capacity == 0
            || config.max_services == 0
            || config.max_services > usize::from(u16::MAX)
        {
            return Err(ConfigError::BadCapacity);
        }
        let services = Storage::owned_with(config.max_services, Service::default);
        let conns = Storage::owned_with(config.conn_capacity, || Conn::EMPTY);
        Self::build(config, services, conns)
    }
}

impl<'a> Balancer<'a> {
    /// How many table entries a full table examines, one window at a time, to find one to
    /// evict.
    pub const EVICT_SCAN: usize = 64;
    /// How many windows of [`Self::EVICT_SCAN`] entries a full table examines at most before
    /// dropping a new connection: a window with nothing evictable (a run of ESTABLISHED
    /// connections) does not doom the SYN, only a run of 512 does; a table of nothing but
    /// ESTABLISHED connections costs a bounded 512-entry (32 KiB) scan per dropped SYN.
    pub const EVICT_WINDOWS: usize = 8;

    /// A balancer over caller-provided storage, for builds without an allocator: `services`
    /// bounds the service count and `conns` the connection capacity (the hash index lives in
    /// the entries). `config.conn_capacity` and `config.max_services` are ignored.
    pub fn with_storage(
        config: BalancerConfig,
        services: &'a mut [Service],
        conns: &'a mut [Conn],
    ) -> Result<Self, ConfigError> {
        if services.is_empty() || services.len() > usize::from(u16::MAX) || conns.is_empty() {
            return Err(ConfigError::BadCapacity);
        }
        for s in services.iter_mut() {
            s.live = false;
            s.order.clear();
            for d in s.dests.iter_mut() {
                d.state = SlotState::Free;
            }
        }
        Self::build(config, services.into(), conns.into())
    }

    fn build(
        config: BalancerConfig,
        services: Storage<'a, Service>,
        conns: Storage<'a, Conn>,
    ) -> Result<Self, ConfigError> {
        let conns = ConnTable::new(conns).map_err(|_| ConfigError::BadCapacity)?;
        if config.local_ports.0 > config.local_ports.1 || config.local_ports.0 == 0 {
            return Err(ConfigError::BadCapacity);
        }
        let root = Rng::new(config.seed);
        let hasher = FlowHasher::new(&mut root.fork(1));
        let local = config.local_addrs.iter().map(|a| addr128(*a)).collect();
        Ok(Balancer {
            local,
            services,
            conns,
            hasher,
            rng: root.fork(2),
            hand: 0,
            last_now: Instant::ZERO,
            next_estimate: Instant::ZERO,
            counters: GlobalCounters::default(),
            drops: [0; DropReason::COUNT],
            cfg: config,
        })
    }

    // ----- getters -----

    /// The configuration.
    pub fn config(&self) -> &BalancerConfig {
        &self.cfg
    }
    /// Global counters.
    pub fn counters(&self) -> &GlobalCounters {
        &self.counters
    }
    /// Drops of one reason.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }
    /// Every non-zero drop counter.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        self.drops
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(i, n)| Some((DropReason::from_index(i)?, *n)))
    }
    /// The connection table (read-only).
    pub fn conn_table(&self) -> &ConnTable<'a> {
        &self.conns
    }
    /// Protocol timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.cfg.timeouts
    }
    /// `ipvsadm --set tcp tcpfin udp` (zero leaves a value unchanged). Applies to new state
    /// changes, as in IPVS.
    pub fn set_timeouts(&mut self, tcp: Duration, tcp_fin: Duration, udp: Duration) {
        self.cfg.timeouts.set(tcp, tcp_fin, udp);
    }
    /// Sets `expire_nodest_conn`.
    pub fn set_expire_nodest_conn(&mut self, on: bool) {
        self.cfg.expire_nodest_conn = on;
    }
    /// Sets `expire_quiescent_template`.
    pub fn set_expire_quiescent_template(&mut self, on: bool) {
        self.cfg.expire_quiescent_template = on;
    }

    /// Ids of live services, in table order.
    pub fn service_ids(&self) -> impl Iterator<Item = ServiceId> + '_ {
        self.services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, _)| ServiceId(i as u16))
    }
    /// A service's configuration.
    pub fn service_config(&self, id: ServiceId) -> Option<&ServiceConfig> {
        self.svc(id).map(|s| &s.cfg)
    }
    /// A service's counters.
    pub fn service_stats(&self, id: ServiceId) -> Option<&Counters> {
        self.svc(id).map(|s| &s.stats)
    }
    /// A service's rate estimator.
    pub fn service_estimator(&self, id: ServiceId) -> Option<&Estimator> {
        self.svc(id).map(|s| &s.est)
    }
    /// The service with `key`.
    pub fn find_service(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.services
            .iter()
            .position(|s| s.live && s.cfg.key == *key)
            .map(|i| ServiceId(i as u16))
    }
    /// Destinations of a service in the kernel's list order (newest first, as `ipvsadm -Ln
    /// --nosort` shows them), live ones only.
    pub fn dest_ids(&self, id: ServiceId) -> impl Iterator<Item = DestId> + '_ {
        let order: &[DestSlot] = self.svc(id).map(|s| &s.order[..]).unwrap_or(&[]);
        order.iter().map(move |&slot| DestId { svc: id, slot })
    }
    /// A destination's state and counters (also for removed destinations that still hold
    /// connections).
    pub fn dest_info(&self, id: DestId) -> Option<DestInfo> {
        let d = self.svc(id.svc)?.dests.get(usize::from(id.slot))?;
        if d.state == SlotState::Free {
            return None;
        }
        Some(DestInfo {
            config: d.cfg,
            active: d.sched.active,
            inactive: d.sched.inactive,
            persistent: d.persistent,
            overloaded: d.sched.overloaded,
            removed: d.state == SlotState::Removed,
            stats: d.stats,
        })
    }
    /// A destination's rate estimator.
    pub fn dest_estimator(&self, id: DestId) -> Option<&Estimator> {
        let d = self.svc(id.svc)?.dests.get(usize::from(id.slot))?;
        (d.state != SlotState::Free).then_some(&d.est)
    }
    /// The destination of `svc` with address `addr` and port `port`.
    pub fn find_dest(&self, svc: ServiceId, addr: IpAddr, port: u16) -> Option<DestId> {
        let s = self.svc(svc)?;
        s.order
            .iter()
            .find(|&&slot| {
                let d = &s.dests[usize::from(slot)];
                d.cfg.addr == addr && d.cfg.port == port
            })
            .map(|&slot| DestId { svc, slot })
    }

    fn svc(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(usize::from(id.0)).filter(|s| s.live)
    }

    // ----- configuration commands -----

    /// Adds a virtual service (`ipvsadm -A`).
    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<ServiceId, ConfigError> {
        Self::check_service(&cfg)?;
        if self.find_service(&cfg.key).is_some() {
            return Err(ConfigError::ServiceExists);
        }
        let idx = self
            .services
            .iter()
            .position(|s| !s.live)
            .ok_or(ConfigError::TooManyServices)?;
        let now = self.last_now;
        let s = &mut self.services[idx];
        s.live = true;
        s.cfg = cfg;
        s.vaddr = match cfg.key {
            ServiceKey::Addr { vip, .. } => addr128(vip),
            ServiceKey::Fwmark { mark, .. } => u128::from(mark),
        };
        s.sched = SchedState::new(cfg.sched, cfg.flags);
        s.order.clear();
        for d in s.dests.iter_mut() {
            *d = Dest::default();
        }
        s.stats = Counters::default();
        s.est = Estimator::new(now, &s.stats);
        Ok(ServiceId(idx as u16))
    }

    fn check_service(cfg: &ServiceConfig) -> Result<(), ConfigError> {
        if let ServiceKey::Addr { port: 0, .. } = cfg.key
            && cfg.persistence.is_none()
        {
            return Err(ConfigError::PortZeroNotPersistent);
        }
        if cfg.one_packet
            && let ServiceKey::Addr {
                proto: Protocol::Tcp, ..
            } = cfg.key
        {
            return Err(ConfigError::OnePacketNotUdp);
        }
        Ok(())
    }

    /// Changes a service (`ipvsadm -E`): scheduler, flags, persistence, one-packet. The key
    /// cannot change. A new scheduler starts from fresh state, as in IPVS.
    pub fn edit_service(&mut self, id: ServiceId, cfg: ServiceConfig) -> Result<(), ConfigError> {
        Self::check_service(&cfg)?;
        let s = self
            .services
            .get_mut(usize::from(id.0))
            .filter(|s| s.live)
            .ok_or(ConfigError::NoSuchService)?;
        if s.cfg.key != cfg.key {
            return Err(ConfigError::NoSuchService);
        }
        if s.cfg.sched != cfg.sched {
            // A new scheduler starts from the current list, as the kernel's init_service.
            s.sched = SchedState::with_list(
                cfg.sched,
                cfg.flags,
                DestList {
                    slots: &s.dests,
                    order: &s.order,
                },
            );
        } else if s.cfg.flags != cfg.flags {
            s.sched.set_flags(cfg.flags);
        }
        s.cfg = cfg;
        Ok(())
    }

    /// Removes a service (`ipvsadm -D`) and flushes its connections and templates.
    pub fn remove_service(&mut self, id: ServiceId) -> Result<(), ConfigError> {
        if self.svc(id).is_none() {
            return Err(ConfigError::NoSuchService);
        }
        // Walk the whole table once; this is a control-plane operation.
        for idx in 0..self.conns.capacity() as u32 {
            let belongs = matches!(self.conns.get(idx), Some(c) if c.in_use() && c.svc == id.0);
            if belongs {
                self.destroy(idx);
            }
        }
        let s = &mut self.services[usize::from(id.0)];
        s.live = false;
        s.order.clear();
        for d in s.dests.iter_mut() {
            d.state = SlotState::Free;
        }
        Ok(())
    }

    /// Adds a destination at the head of the service's list (`ipvsadm -a`). A destination
    /// that was removed but still has connections is revived in place, as IPVS does from its
    /// trash.
    pub fn add_dest(&mut self, svc: ServiceId, cfg: DestConfig) -> Result<DestId, ConfigError> {
        self.check_dest(svc, &cfg)?;
        if self.find_dest(svc, cfg.addr, cfg.port).is_some() {
            return Err(ConfigError::DestExists);
        }
        let now = self.last_now;
        let s = self
            .services
            .get_mut(usize::from(svc.0))
            .filter(|s| s.live)
            .ok_or(ConfigError::NoSuchService)?;
        if s.order.is_full() {
            return Err(ConfigError::TooManyDests);
        }
        let revived = s
            .dests
            .iter()
            .position(|d| d.state == SlotState::Removed && d.cfg.addr == cfg.addr && d.cfg.port == cfg.port);
        let slot = match revived.or_else(|| s.dests.iter().position(|d| d.state == SlotState::Free)) {
            Some(i) => i,
            None => return Err(ConfigError::TooManyDests),
        };
        let d = &mut s.dests[slot];
        if d.state == SlotState::Free {
            *d = Dest::default();
            d.est = Estimator::new(now, &d.stats);
        }
        d.state = SlotState::Live;
        d.addr = addr128(cfg.addr);
        d.sched.addr = cfg.addr;
        d.sched.port = cfg.port;
        Self::apply_dest_config(d, &cfg, true);
        let slot = slot as DestSlot;
        // `is_full` was checked above, so the insertion cannot fail.
        let _ = s.order.insert(0, slot);
        let list = DestList {
            slots: &s.dests,
            order: &s.order,
        };
        s.sched.dest_added(list, slot);
        Ok(DestId { svc, slot })
    }

    fn check_dest(&self, svc: ServiceId, cfg: &DestConfig) -> Result<(), ConfigError> {
        let s = self.svc(svc).ok_or(ConfigError::NoSuchService)?;
        if cfg.weight < 0 || (cfg.l_threshold > cfg.u_threshold && cfg.u_threshold != 0) {
            return Err(ConfigError::BadWeight);
        }
        let fam = Family::of(&cfg.addr);
        let tunnel = matches!(cfg.forward, Forward::Tunnel(_));
        if fam != s.cfg.key.family() && !tunnel {
            return Err(ConfigError::FamilyMismatch);
        }
        match cfg.forward {
            Forward::DirectRouting if cfg.mac.is_none() => return Err(ConfigError::DirectRoutingNeedsMac),
            Forward::FullNat if !self.local.iter().any(|&l| Family::of(&addr_of(l)) == fam) => {
                return Err(ConfigError::NoLocalAddress);
            }
            Forward::Tunnel(_) => {
                let ok = match fam {
                    Family::V4 => self.cfg.tunnel_source_v4.is_some(),
                    Family::V6 => self.cfg.tunnel_source_v6.is_some(),
                };
                if !ok {
                    return Err(ConfigError::NoTunnelSource);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn apply_dest_config(d: &mut Dest, cfg: &DestConfig, add: bool) {
        // IPVS (`__ip_vs_update_dest`) clears OVERLOAD when the upper threshold is removed or
        // raised; otherwise the flag is re-evaluated on the next bind/unbind.
        if cfg.u_threshold == 0 || cfg.u_threshold > d.cfg.u_threshold {
            d.sched.overloaded = false;
        }
        d.cfg = *cfg;
        d.sched.weight = cfg.weight;
        // mh builds its table from the last weight, so quiescing (an edit to 0) keeps it.
        if add || cfg.weight > 0 {
            d.sched.last_weight = cfg.weight;
        }
    }

    /// Changes a destination (`ipvsadm -e`): weight, thresholds, forwarding, MAC. It keeps its
    /// place in the list. Existing connections keep the forwarding method they started with.
    pub fn edit_dest(&mut self, id: DestId, cfg: DestConfig) -> Result<(), ConfigError> {
        self.check_dest(id.svc, &cfg)?;
        let s = self
            .services
            .get_mut(usize::from(id.svc.0))
            .filter(|s| s.live)
            .ok_or(ConfigError::NoSuchService)?;
        let d = s
            .dests
            .get_mut(usize::from(id.slot))
            .filter(|d| d.state == SlotState::Live)
            .ok_or(ConfigError::NoSuchDest)?;
        if d.cfg.addr != cfg.addr || d.cfg.port != cfg.port {
            return Err(ConfigError::NoSuchDest);
        }
        Self::apply_dest_config(d, &cfg, false);
        let list = DestList {
            slots: &s.dests,
            order: &s.order,
        };
        s.sched.dest_updated(list, id.slot);
        Ok(())
    }

    /// Removes a destination (`ipvsadm -d`). Its connections stay until they expire (or, with
    /// `expire_nodest_conn`, until their next packet); their packets are dropped.
    pub fn remove_dest(&mut self, id: DestId) -> Result<(), ConfigError> {
        let s = self
            .services
            .get_mut(usize::from(id.svc.0))
            .filter(|s| s.live)
            .ok_or(ConfigError::NoSuchService)?;
        let pos = s
            .order
            .iter()
            .position(|&x| x == id.slot)
            .ok_or(ConfigError::NoSuchDest)?;
        s.order.remove(pos);
        let d = &mut s.dests[usize::from(id.slot)];
        d.state = if d.refs > 0 {
            SlotState::Removed
        } else {
            SlotState::Free
        };
        let list = DestList {
            slots: &s.dests,
            order: &s.order,
        };
        s.sched.dest_removed(list, id.slot, pos);
        Ok(())
    }

    // ----- the data path -----

    fn clamp_now(&mut self, now: Instant) -> Instant {
        debug_assert!(now >= self.last_now, "time went backwards");
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    fn count(&mut self, v: Verdict) -> Verdict {
        match v {
            Verdict::Forward(_) => self.counters.forwarded += 1,
            Verdict::Drop(r) => {
                self.counters.dropped += 1;
                self.drops[r.index()] += 1;
            }
            Verdict::Pass => self.counters.passed += 1,
            Verdict::Consumed => {}
        }
        v
    }

    /// Processes one frame: rewrites it in place (possibly moving `start`/`len`) and says what
    /// to do with it.
    pub fn process<B: AsMut<[u8]>>(&mut self, now: Instant, frame: &mut Frame<B>) -> Verdict {
        let now = self.clamp_now(now);
        self.counters.rx += 1;
        let mut pkt = Packet::EMPTY;
        let v = match self.classify(frame, &mut pkt) {
            Ok(Some((key, hash))) => self.process_parsed(now, frame, &mut pkt, key, hash),
            Ok(None) => Verdict::Pass,
            Err(reason) => Verdict::Drop(reason),
        };
        self.count(v)
    }

    /// Processes frames in order, with the same result as calling [`Balancer::process`] on
    /// each, but parsing and hashing a group of packets first and touching their hash buckets
    /// so the table's memory loads overlap. `verdicts` must be at least as long as `frames`;
    /// extra frames are left untouched and get no verdict. A connection table of at most
    /// [`STAGED_BATCH_MIN_TABLE_BYTES`] is served packet by packet: it stays in cache, so
    /// there is nothing to overlap.
    pub fn process_batch<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frames: &mut [Frame<B>],
        verdicts: &mut [Verdict],
    ) {
        // Stages per group of packets, so that their cache misses overlap instead of queueing
        // behind each other: (1) parse and hash every packet; (2) load their hash buckets in a
        // tight loop (independent loads: the misses are in flight together), and touch the
        // next group's frames the same way; (3) load the entries at the heads of the chains;
        // (4) the lookups and rewrites proper, on warm lines. Prefetch instructions would not
        // stall on the loads, but need `unsafe`: `process_batch_prefetch` takes a driver's.
        const GROUP: usize = 8;
        let n = frames.len().min(verdicts.len());
        if self.conns.memory_bytes() <= STAGED_BATCH_MIN_TABLE_BYTES {
            // A table this small stays in the core's caches: there are no misses to overlap,
            // and the staging (about 55 instructions per packet) would only add to the cost.
            for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
                *verdict = self.process(now, frame);
            }
            return;
        }
        let now = self.clamp_now(now);
        let mut base = 0;
        while base < n {
            let end = (base + GROUP).min(n);
            let mut parsed: [Option<Classified>; GROUP] = [None; GROUP];
            let mut pkts = [Packet::EMPTY; GROUP];
            let mut hashes = [None; GROUP];
            for i in base..end {
                let c = self.classify(&mut frames[i], &mut pkts[i - base]);
                if let Ok(Some((_, h))) = &c {
                    hashes[i - base] = Some(*h);
                }
                parsed[i - base] = Some(c);
            }
            let mut sink = 0u32;
            for h in hashes.iter().flatten() {
                sink ^= self.conns.touch_bucket(*h);
            }
            for f in frames.iter_mut().take(n).skip(end).take(GROUP) {
                let start = f.start;
                sink ^= f.buf.as_mut().get(start).copied().map_or(0, u32::from);
            }
            for h in hashes.iter().flatten() {
                sink ^= self.conns.touch_head(*h);
            }
            core::hint::black_box(sink);
            for i in base..end {
                self.counters.rx += 1;
                let v = match parsed[i - base] {
                    Some(Ok(Some((key, hash)))) => {
                        self.process_parsed(now, &mut frames[i], &mut pkts[i - base], key, hash)
                    }
                    Some(Ok(None)) | None => Verdict::Pass,
                    Some(Err(reason)) => Verdict::Drop(reason),
                };
                verdicts[i] = self.count(v);
            }
            base = end;
        }
    }

    /// [`Balancer::process_batch`] with real prefetches: the same results (packets are handled
    /// in order, exactly as by [`Balancer::process`]), but a software pipeline over groups of
    /// 8 packets — parse and hash group k and prefetch its hash buckets (and the frames of
    /// group k + 1), prefetch the chain heads of group k − 1 (their buckets are in cache by
    /// now), prefetch the second chain entries of group k − 2 where the head is another flow
    /// (only for tables above [`SECOND_PREFETCH_MIN_TABLE_BYTES`]), handle group k − 3 — so
    /// that no stage waits for memory, where the ordinary loads of [`Balancer::process_batch`]
    /// wait once per stage and group. Tables of at most [`STAGED_BATCH_MIN_TABLE_BYTES`] are
    /// served packet by packet. Measured (BENCHMARKS.md, tuning steps 8, 12–14): within a few
    /// per cent of the staged loads from 64k to 256k flows, 23–27 % faster at 1M.
    pub fn process_batch_prefetch<B: AsMut<[u8]>, P: Prefetch>(
        &mut self,
        now: Instant,
        frames: &mut [Frame<B>],
        verdicts: &mut [Verdict],
        prefetcher: &P,
    ) {
        const GROUP: usize = 8;
        const STAGES: usize = 4;
        let n = frames.len().min(verdicts.len());
        let table = self.conns.memory_bytes();
        if table <= STAGED_BATCH_MIN_TABLE_BYTES {
            return self.process_batch(now, frames, verdicts);
        }
        let now = self.clamp_now(now);
        let deep = table > SECOND_PREFETCH_MIN_TABLE_BYTES;
        // Group k lives in slot k % STAGES from its parse to its handling, three steps later.
        let mut pkts = [[Packet::EMPTY; GROUP]; STAGES];
        let mut parsed: [[Option<Classified>; GROUP]; STAGES] = [[None; GROUP]; STAGES];
        let groups = n.div_ceil(GROUP);
        let range = |k: usize| (k * GROUP, ((k + 1) * GROUP).min(n));
        for k in 0..groups + STAGES - 1 {
            if k < groups {
                let (base, end) = range(k);
                let (next_base, next_end) = range(k + 1);
                for f in frames.get_mut(next_base..next_end).unwrap_or(&mut []) {
                    let start = f.start;
                    if let Some(b) = f.buf.as_mut().get(start) {
                        prefetcher.prefetch(b);
                    }
                }
                let slot = k % STAGES;
                for i in base..end {
                    let c = self.classify(&mut frames[i], &mut pkts[slot][i - base]);
                    if let Ok(Some((_, h))) = &c {
                        prefetcher.prefetch(self.conns.bucket_ref(*h));
                    }
                    parsed[slot][i - base] = Some(c);
                }
            }
            if let Some(k1) = k.checked_sub(1).filter(|&k1| k1 < groups) {
                let (base, end) = range(k1);
                for c in parsed[k1 % STAGES].iter().take(end - base).flatten() {
                    if let Ok(Some((_, h))) = c
                        && let Some(head) = self.conns.head_ref(*h)
                    {
                        prefetcher.prefetch(head);
                    }
                }
            }
            if let Some(k2) = k.checked_sub(2).filter(|&k2| deep && k2 < groups) {
                // The head is in cache now: when it is plainly another flow (a cheap test on the
                // client side; the full match is the handling stage's), fetch the next entry.
                let (base, end) = range(k2);
                for c in parsed[k2 % STAGES].iter().take(end - base).flatten() {
                    if let Ok(Some((key, h))) = c
                        && let Some(second) = self.conns.second_ref(*h, |e, dir| {
                            dir == Dir::In && e.cport == key.sport && e.caddr == key.src
                        })
                    {
                        prefetcher.prefetch(second);
                    }
                }
            }
            if let Some(k3) = k.checked_sub(3).filter(|&k3| k3 < groups) {
                let (base, end) = range(k3);
                let slot = k3 % STAGES;
                for i in base..end {
                    self.counters.rx += 1;
                    let v = match parsed[slot][i - base].take() {
                        Some(Ok(Some((key, hash)))) => {
                            self.process_parsed(now, &mut frames[i], &mut pkts[slot][i - base], key, hash)
                        }
                        Some(Ok(None)) | None => Verdict::Pass,
                        Some(Err(reason)) => Verdict::Drop(reason),
                    };
                    verdicts[i] = self.count(v);
                }
            }
        }
    }

    /// Parses a frame and computes its flow key and hash. `Ok(None)`: not for the balancer.
    fn classify<B: AsMut<[u8]>>(&self, frame: &mut Frame<B>, pkt: &mut Packet) -> Classified {
        let buf = frame.buf.as_mut();
        let end = frame.start.saturating_add(frame.len);
        let Some(data) = buf.get(frame.start..end) else {
            return Err(DropReason::Malformed(ParseError::Truncated));
        };
        match wire::parse_into(data, frame.meta.link, pkt) {
            Ok(()) => {}
            Err(ParseError::NotIp) => return Ok(None),
            Err(e) => return Err(DropReason::Malformed(e)),
        }
        let (proto, src, sport, dst, dport) = match (pkt.proto, &pkt.icmp) {
            (6 | 17, _) => (
                pkt.proto,
                addr128(pkt.src),
                pkt.sport,
                addr128(pkt.dst),
                pkt.dport,
            ),
            (1 | 58, Some(icmp)) => match &icmp.error {
                // An ICMP error is looked up by the quoted packet, reversed.
                Some(q) if q.proto == 6 || q.proto == 17 => {
                    (q.proto, addr128(q.dst), q.dport, addr128(q.src), q.sport)
                }
                _ => return Ok(None),
            },
            _ => return Ok(None),
        };
        let key = FlowKey {
            proto,
            src,
            sport,
            dst,
            dport,
        };
        let hash = self.hasher.hash(proto, src, sport, dst, dport);
        Ok(Some((key, hash)))
    }

    fn process_parsed<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frame: &mut Frame<B>,
        pkt: &mut Packet,
        key: FlowKey,
        hash: u64,
    ) -> Verdict {
        let is_icmp = pkt.proto == 1 || pkt.proto == 58;
        if !is_icmp && pkt.frag == Fragment::NonFirst {
            return if self.is_vip(key.dst) {
                Verdict::Drop(DropReason::Fragment)
            } else {
                Verdict::Pass
            };
        }
        let found = self.lookup(now, &key, hash);
        if is_icmp {
            return match found {
                Some((idx, dir)) => self.forward_icmp(now, frame, pkt, idx, dir),
                None => Verdict::Pass,
            };
        }
        let mut found = found;
        if let Some((idx, Dir::In)) = found
            && self.should_reschedule(idx, pkt)
        {
            self.counters.reused += 1;
            self.destroy(idx);
            found = None;
        }
        match found {
            Some((idx, Dir::In)) => self.forward_in(now, frame, pkt, idx),
            Some((idx, Dir::Out)) => self.forward_out(now, frame, pkt, idx),
            None => self.new_connection(now, frame, pkt, key, hash),
        }
    }

    fn is_vip(&self, addr: u128) -> bool {
        self.services
            .iter()
            .any(|s| s.live && matches!(s.cfg.key, ServiceKey::Addr { .. }) && s.vaddr == addr)
    }

    /// Finds the live connection node for `key`; an expired one is removed on the way.
    fn lookup(&mut self, now: Instant, key: &FlowKey, hash: u64) -> Option<(u32, Dir)> {
        let services = &self.services;
        let local = &self.local;
        let found = self.conns.find(hash, |c, dir| match dir {
            Dir::In => {
                !c.is_template()
                    && c.cport == key.sport
                    && c.vport == key.dport
                    && c.caddr == key.src
                    && c.vaddr == key.dst
                    && c.proto() == key.proto
            }
            Dir::Out => {
                let Some(d) = services
                    .get(usize::from(c.svc))
                    .and_then(|s| s.dests.get(usize::from(c.dest)))
                else {
                    return false;
                };
                let (daddr, dport) = if c.fwd() == FwdKind::FullNat {
                    (local.get(usize::from(c.laddr)).copied().unwrap_or(0), c.lport)
                } else {
                    (c.caddr, c.cport)
                };
                d.addr == key.src
                    && real_port(&d.cfg, c.vport) == key.sport
                    && daddr == key.dst
                    && dport == key.dport
                    && c.proto() == key.proto
            }
        })?;
        let expired = self.conns.get(found.0).is_some_and(|c| c.expired(now));
        if expired {
            self.counters.conns_expired += 1;
            self.destroy(found.0);
            return None;
        }
        Some(found)
    }

    /// IPVS `conn_reuse_mode`: a SYN on the tuple of a closing connection starts a new one.
    fn should_reschedule(&self, idx: u32, pkt: &Packet) -> bool {
        let mode = self.cfg.conn_reuse_mode;
        if mode == 0 || pkt.proto != 6 || pkt.tcp_flags & TCP_SYN == 0 {
            return false;
        }
        let Some(c) = self.conns.get(idx) else {
            return false;
        };
        if self.cfg.expire_nodest_conn
            && let Some(d) = self.dest_of(c)
            && d.state == SlotState::Live
            && d.sched.weight == 0
        {
            return true;
        }
        if c.control != NIL {
            return false;
        }
        match c.state() {
            ConnState::TimeWait | ConnState::Close => true,
            ConnState::FinWait => mode & 2 != 0 && c.has(flag::NOOUTPUT),
            _ => false,
        }
    }

    fn dest_of(&self, c: &Conn) -> Option<&Dest> {
        self.services
            .get(usize::from(c.svc))?
            .dests
            .get(usize::from(c.dest))
    }

    /// Removes an entry: unlinks it, updates its destination's and template's counts, frees it.
    fn destroy(&mut self, idx: u32) {
        let Some(c) = self.conns.get(idx).copied() else {
            return;
        };
        if !c.in_use() {
            return;
        }
        if c.has(flag::IN_HASHED) {
            let h = self.in_hash(&c);
            self.conns.unlink(idx, Dir::In, h);
        }
        if c.has(flag::OUT_HASHED)
            && let Some(h) = self.out_hash(&c)
        {
            self.conns.unlink(idx, Dir::Out, h);
        }
        if !c.is_template()
            && c.control != NIL
            && let Some(t) = self.conns.get_mut(c.control)
            && t.in_use()
            && t.is_template()
        {
            t.control = t.control.saturating_sub(1);
        }
        self.unbind_dest(&c);
        self.conns.release(idx);
    }

    fn in_hash(&self, c: &Conn) -> u64 {
        self.hasher.hash(c.proto(), c.caddr, c.cport, c.vaddr, c.vport)
    }

    fn out_hash(&self, c: &Conn) -> Option<u64> {
        let d = self.dest_of(c)?;
        let rport = real_port(&d.cfg, c.vport);
        let (daddr, dport) = if c.fwd() == FwdKind::FullNat {
            (*self.local.get(usize::from(c.laddr))?, c.lport)
        } else {
            (c.caddr, c.cport)
        };
        Some(self.hasher.hash(c.proto(), d.addr, rport, daddr, dport))
    }

    fn unbind_dest(&mut self, c: &Conn) {
        let Some(s) = self.services.get_mut(usize::from(c.svc)) else {
            return;
        };
        let Some(d) = s.dests.get_mut(usize::from(c.dest)) else {
            return;
        };
        if d.state == SlotState::Free {
            return;
        }
        if c.is_template() {
            d.persistent = d.persistent.saturating_sub(1);
        } else if c.has(flag::INACTIVE) {
            d.sched.inactive = d.sched.inactive.saturating_sub(1);
        } else {
            d.sched.active = d.sched.active.saturating_sub(1);
        }
        if !c.is_template() {
            // ip_vs_unbind_dest: clear OVERLOAD below the lower threshold (or 3/4 of the upper).
            let total = u64::from(d.sched.active) + u64::from(d.sched.inactive);
            if d.cfg.l_threshold != 0 {
                if total < u64::from(d.cfg.l_threshold) {
                    d.sched.overloaded = false;
                }
            } else if d.cfg.u_threshold != 0 {
                if total * 4 < u64::from(d.cfg.u_threshold) * 3 {
                    d.sched.overloaded = false;
                }
            } else {
                d.sched.overloaded = false;
            }
        }
        d.refs = d.refs.saturating_sub(1);
        if d.refs == 0 && d.state == SlotState::Removed {
            d.state = SlotState::Free;
        }
    }

    /// Counts a new connection or template on its destination (ip_vs_bind_dest).
    fn bind_dest(&mut self, svc: u16, slot: DestSlot, template: bool) {
        let Some(d) = self
            .services
            .get_mut(usize::from(svc))
            .and_then(|s| s.dests.get_mut(usize::from(slot)))
        else {
            return;
        };
        d.refs += 1;
        if template {
            d.persistent += 1;
            return;
        }
        // New connections start inactive; the protocol state machine activates them.
        d.sched.inactive += 1;
        let total = u64::from(d.sched.active) + u64::from(d.sched.inactive);
        if d.cfg.u_threshold != 0 && total >= u64::from(d.cfg.u_threshold) {
            d.sched.overloaded = true;
        }
    }

    /// Applies a packet to a connection's protocol state and refreshes its timer.
    fn update_state(&mut self, now: Instant, idx: u32, dir: TcpDirection, tcp_flags: u8) {
        // Borrowed, not copied: `Timeouts` is 12 durations, and a copy per packet was a memcpy
        // call on the established-flow path.
        let timeouts = &self.cfg.timeouts;
        let Some(c) = self.conns.get_mut(idx) else { return };
        let old = c.state();
        let new = if c.proto() == 6 {
            let dir = match dir {
                TcpDirection::Output => {
                    c.set(flag::NOOUTPUT, false);
                    TcpDirection::Output
                }
                _ if c.has(flag::NOOUTPUT) => TcpDirection::InputOnly,
                d => d,
            };
            tcp_next_state(old, dir, tcp_flags)
        } else {
            ConnState::UdpNormal
        };
        c.set_state(new);
        c.set_expiry(now, timeouts.of(new));
        let was_inactive = c.has(flag::INACTIVE);
        let (svc, slot) = (c.svc, c.dest);
        if was_inactive && new.is_active() {
            c.set(flag::INACTIVE, false);
        } else if !was_inactive && !new.is_active() {
            c.set(flag::INACTIVE, true);
        } else {
            return;
        }
        if let Some(d) = self
            .services
            .get_mut(usize::from(svc))
            .and_then(|s| s.dests.get_mut(usize::from(slot)))
        {
            if was_inactive {
                d.sched.inactive = d.sched.inactive.saturating_sub(1);
                d.sched.active += 1;
            } else {
                d.sched.active = d.sched.active.saturating_sub(1);
                d.sched.inactive += 1;
            }
        }
    }

    fn count_in(&mut self, svc: u16, slot: DestSlot, bytes: u64) {
        if let Some(s) = self.services.get_mut(usize::from(svc)) {
            s.stats.inpkts += 1;
            s.stats.inbytes += bytes;
            if let Some(d) = s.dests.get_mut(usize::from(slot)) {
                d.stats.inpkts += 1;
                d.stats.inbytes += bytes;
            }
        }
    }

    fn count_out(&mut self, svc: u16, slot: DestSlot, bytes: u64) {
        if let Some(s) = self.services.get_mut(usize::from(svc)) {
            s.stats.outpkts += 1;
            s.stats.outbytes += bytes;
            if let Some(d) = s.dests.get_mut(usize::from(slot)) {
                d.stats.outpkts += 1;
                d.stats.outbytes += bytes;
            }
        }
    }

    /// Client -> server on an existing connection.
    fn forward_in<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frame: &mut Frame<B>,
        pkt: &mut Packet,
        idx: u32,
    ) -> Verdict {
        let Some(c) = self.conns.get(idx).copied() else {
            return Verdict::Pass;
        };
        let live = self.dest_of(&c).is_some_and(|d| d.state == SlotState::Live);
        if !live {
            if self.cfg.expire_nodest_conn {
                self.destroy(idx);
            }
            return Verdict::Drop(DropReason::DestUnavailable);
        }
        self.update_state(now, idx, TcpDirection::Input, pkt.tcp_flags);
        self.count_in(c.svc, c.dest, u64::from(pkt.ip_len()));
        self.transmit_in(frame, pkt, &c)
    }

    /// Server -> client reply on a NAT/FULLNAT connection.
    fn forward_out<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frame: &mut Frame<B>,
        pkt: &mut Packet,
        idx: u32,
    ) -> Verdict {
        let Some(c) = self.conns.get(idx).copied() else {
            return Verdict::Pass;
        };
        self.update_state(now, idx, TcpDirection::Output, pkt.tcp_flags);
        self.count_out(c.svc, c.dest, u64::from(pkt.ip_len()));
        let vip = Endpoint {
            addr: addr_of(c.vaddr),
            port: c.vport,
        };
        let client = Endpoint {
            addr: addr_of(c.caddr),
            port: c.cport,
        };
        let dst = (c.fwd() == FwdKind::FullNat).then_some(client);
        let (start, len) = (frame.start, frame.len);
        let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
            return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
        };
        if let Err(e) = forward::rewrite(data, pkt, Some(vip), dst) {
            return Verdict::Drop(DropReason::Forward(e));
        }
        self.emit_routed(
            frame,
            pkt,
            self.cfg.gateway_mac,
            client.addr,
            DestId {
                svc: ServiceId(c.svc),
                slot: c.dest,
            },
        )
    }

    /// Sends a routed packet: as an Ethernet frame to `mac` when we have one and the input was
    /// Ethernet, else as a bare IP packet for the driver to route to `next_hop`.
    fn emit_routed<B: AsMut<[u8]>>(
        &self,
        frame: &mut Frame<B>,
        pkt: &Packet,
        mac: Option<[u8; 6]>,
        next_hop: IpAddr,
        dest: DestId,
    ) -> Verdict {
        match (pkt.link, mac) {
            (LinkKind::Ethernet, Some(mac)) => {
                let (start, len) = (frame.start, frame.len);
                let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
                    return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
                };
                if let Err(e) = forward::set_macs(data, pkt, mac, self.cfg.mac) {
                    return Verdict::Drop(DropReason::Forward(e));
                }
                frame.len = usize::from(pkt.ip_end);
                Verdict::Forward(Forwarded {
                    link: LinkKind::Ethernet,
                    next_hop,
                    dest,
                })
            }
            _ => {
                frame.start += usize::from(pkt.l3);
                frame.len = usize::from(pkt.ip_end - pkt.l3);
                Verdict::Forward(Forwarded {
                    link: LinkKind::Ip,
                    next_hop,
                    dest,
                })
            }
        }
    }

    /// Rewrites a client -> server packet for the connection's forwarding method.
    fn transmit_in<B: AsMut<[u8]>>(&self, frame: &mut Frame<B>, pkt: &mut Packet, c: &Conn) -> Verdict {
        let Some(d) = self.dest_of(c) else {
            return Verdict::Drop(DropReason::DestUnavailable);
        };
        let dest = DestId {
            svc: ServiceId(c.svc),
            slot: c.dest,
        };
        let raddr = d.cfg.addr;
        let (start, len) = (frame.start, frame.len);
        match c.fwd() {
            FwdKind::Dr => {
                let Some(mac) = d.cfg.mac else {
                    return Verdict::Drop(DropReason::Forward(ForwardError::NeedsEthernet));
                };
                let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
                    return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
                };
                if let Err(e) = forward::set_macs(data, pkt, mac, self.cfg.mac) {
                    return Verdict::Drop(DropReason::Forward(e));
                }
                Verdict::Forward(Forwarded {
                    link: LinkKind::Ethernet,
                    next_hop: raddr,
                    dest,
                })
            }
            FwdKind::Tun => {
                let kind = match d.cfg.forward {
                    Forward::Tunnel(k) => k,
                    _ => crate::service::TunnelType::Ipip,
                };
                let src = match raddr {
                    IpAddr::V4(_) => self.cfg.tunnel_source_v4.map(IpAddr::V4),
                    IpAddr::V6(_) => self.cfg.tunnel_source_v6.map(IpAddr::V6),
                };
                let Some(src) = src else {
                    return Verdict::Drop(DropReason::Forward(ForwardError::FamilyMismatch));
                };
                let flow = self.hasher.hash(c.proto(), c.caddr, c.cport, c.vaddr, c.vport);
                let eth = match (pkt.link, d.cfg.mac) {
                    (LinkKind::Ethernet, Some(mac)) => Some((mac, self.cfg.mac)),
                    _ => None,
                };
                let encap = Encap {
                    kind,
                    src,
                    dst: raddr,
                    udp_sport: 49152 | (flow as u16 & 0x3fff),
                    eth,
                };
                match forward::encapsulate(frame.buf.as_mut(), start, len, pkt, &encap) {
                    Ok((s, l)) => {
                        frame.start = s;
                        frame.len = l;
                        let link = if eth.is_some() {
                            LinkKind::Ethernet
                        } else {
                            LinkKind::Ip
                        };
                        Verdict::Forward(Forwarded {
                            link,
                            next_hop: raddr,
                            dest,
                        })
                    }
                    Err(e) => Verdict::Drop(DropReason::Forward(e)),
                }
            }
            FwdKind::Nat | FwdKind::FullNat => {
                let real = Endpoint {
                    addr: raddr,
                    port: real_port(&d.cfg, c.vport),
                };
                let src = if c.fwd() == FwdKind::FullNat {
                    let Some(&l) = self.local.get(usize::from(c.laddr)) else {
                        return Verdict::Drop(DropReason::NoLocalPort);
                    };
                    Some(Endpoint {
                        addr: addr_of(l),
                        port: c.lport,
                    })
                } else {
                    None
                };
                let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
                    return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
                };
                if let Err(e) = forward::rewrite(data, pkt, src, Some(real)) {
                    return Verdict::Drop(DropReason::Forward(e));
                }
                self.emit_routed(frame, pkt, d.cfg.mac, raddr, dest)
            }
        }
    }

    /// Translates and forwards an ICMP error about a tracked connection.
    fn forward_icmp<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frame: &mut Frame<B>,
        pkt: &mut Packet,
        idx: u32,
        dir: Dir,
    ) -> Verdict {
        let _ = now;
        let Some(c) = self.conns.get(idx).copied() else {
            return Verdict::Pass;
        };
        let Some(d) = self.dest_of(&c) else {
            return Verdict::Drop(DropReason::DestUnavailable);
        };
        if d.state != SlotState::Live {
            return Verdict::Drop(DropReason::DestUnavailable);
        }
        let dcfg = d.cfg;
        let dest = DestId {
            svc: ServiceId(c.svc),
            slot: c.dest,
        };
        let real = Endpoint {
            addr: dcfg.addr,
            port: real_port(&dcfg, c.vport),
        };
        let vip = Endpoint {
            addr: addr_of(c.vaddr),
            port: c.vport,
        };
        let client = Endpoint {
            addr: addr_of(c.caddr),
            port: c.cport,
        };
        let local = self.local.get(usize::from(c.laddr)).map(|&l| Endpoint {
            addr: addr_of(l),
            port: c.lport,
        });
        let bytes = u64::from(pkt.ip_len());
        if dir == Dir::In {
            self.count_in(c.svc, c.dest, bytes);
            // An error about a packet we sent towards the client: it goes to the real server.
            match c.fwd() {
                FwdKind::Dr | FwdKind::Tun => self.transmit_in(frame, pkt, &c),
                FwdKind::Nat | FwdKind::FullNat => {
                    let (start, len) = (frame.start, frame.len);
                    let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
                        return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
                    };
                    let full = c.fwd() == FwdKind::FullNat;
                    let (outer_src, inner_dst) = match (full, local) {
                        (true, Some(l)) => (Some(l.addr), Some(l)),
                        (true, None) => return Verdict::Drop(DropReason::NoLocalPort),
                        (false, _) => (None, None),
                    };
                    if let Err(e) = forward::rewrite_icmp_error(
                        data,
                        pkt,
                        outer_src,
                        Some(real.addr),
                        Some(real),
                        inner_dst,
                    ) {
                        return Verdict::Drop(DropReason::Forward(e));
                    }
                    self.emit_routed(frame, pkt, dcfg.mac, real.addr, dest)
                }
            }
        } else {
            self.count_out(c.svc, c.dest, bytes);
            // An error about a packet we sent to the real server: it goes to the client.
            let full = c.fwd() == FwdKind::FullNat;
            let (outer_dst, inner_src) = if full {
                (Some(client.addr), Some(client))
            } else {
                (None, None)
            };
            let (start, len) = (frame.start, frame.len);
            let Some(data) = frame.buf.as_mut().get_mut(start..start + len) else {
                return Verdict::Drop(DropReason::Malformed(ParseError::Truncated));
            };
            if let Err(e) =
                forward::rewrite_icmp_error(data, pkt, Some(vip.addr), outer_dst, inner_src, Some(vip))
            {
                return Verdict::Drop(DropReason::Forward(e));
            }
            self.emit_routed(frame, pkt, self.cfg.gateway_mac, client.addr, dest)
        }
    }

    /// Service lookup as `ip_vs_service_find`: fwmark, then (proto, VIP, port), then port 0.
    fn find_service_for(
        &self,
        fwmark: u32,
        proto: u8,
        dst: u128,
        dport: u16,
        family: Family,
    ) -> Option<usize> {
        let proto = Protocol::from_number(proto)?;
        if fwmark != 0 {
            let hit = self.services.iter().position(|s| {
                s.live && matches!(s.cfg.key, ServiceKey::Fwmark { family: f, mark } if mark == fwmark && f == family)
            });
            if hit.is_some() {
                return hit;
            }
        }
        let by_port = |port: u16| {
            self.services.iter().position(|s| {
                s.live && s.vaddr == dst && matches!(s.cfg.key, ServiceKey::Addr { proto: p, port: sp, .. } if p == proto && sp == port)
            })
        };
        by_port(dport).or_else(|| if dport != 0 { by_port(0) } else { None })
    }

    fn new_connection<B: AsMut<[u8]>>(
        &mut self,
        now: Instant,
        frame: &mut Frame<B>,
        pkt: &mut Packet,
        key: FlowKey,
        hash: u64,
    ) -> Verdict {
        if pkt.proto == 6 && (pkt.tcp_flags & TCP_SYN == 0 || pkt.tcp_flags & TCP_RST != 0) {
            // IPVS schedules TCP only on SYN; anything else without a connection is not ours.
            return Verdict::Pass;
        }
        let Some(si) = self.find_service_for(frame.meta.fwmark, key.proto, key.dst, key.dport, pkt.family)
        else {
            return Verdict::Pass;
        };
        let svc_cfg = self.services[si].cfg;
        let sched_pkt = SchedPacket {
            saddr: pkt.src,
            sport: pkt.sport,
            daddr: pkt.dst,
            dport: pkt.dport,
        };
        let mut control = NIL;
        let slot = match svc_cfg.persistence {
            None => match self.schedule(si, &sched_pkt, now) {
                Some(s) => s,
                None => return Verdict::Drop(DropReason::NoDestination),
            },
            Some(p) => match self.schedule_persistent(si, pkt, &key, p, now) {
                Ok((slot, t)) => {
                    control = t;
                    slot
                }
                Err(r) => return Verdict::Drop(r),
            },
        };
        let dcfg = self.services[si].dests[usize::from(slot)].cfg;
        let fwd = fwd_kind(dcfg.forward);
        if fwd == FwdKind::Dr && pkt.link != LinkKind::Ethernet {
            // Checked before anything is created: a connection we could never serve.
            self.release_template_ref(control);
            return Verdict::Drop(DropReason::Forward(ForwardError::NeedsEthernet));
        }
        let one_packet = svc_cfg.one_packet && key.proto == 17;

        let mut c = Conn::EMPTY;
        c.caddr = key.src;
        c.cport = key.sport;
        c.vaddr = key.dst;
        c.vport = key.dport;
        c.svc = si as u16;
        c.dest = slot;
        c.control = control;
        c.set_fwd(fwd);
        c.set(flag::UDP, key.proto == 17);
        c.set(flag::INACTIVE, true);
        c.set(flag::NOOUTPUT, !dcfg.forward.sees_replies());
        c.set_state(if key.proto == 6 {
            ConnState::None
        } else {
            ConnState::UdpNormal
        });
        if fwd == FwdKind::FullNat {
            match self.pick_local(&c, &dcfg) {
                Some((l, port)) => {
                    c.laddr = l;
                    c.lport = port;
                }
                None => {
                    self.release_template_ref(control);
                    return Verdict::Drop(DropReason::NoLocalPort);
                }
            }
        }

        self.services[si].stats.conns += 1;
        self.services[si].dests[usize::from(slot)].stats.conns += 1;
        self.counters.conns_created += 1;

        if one_packet {
            // One-packet scheduling: nothing is tracked; the datagram is sent and forgotten.
            self.release_template_ref(control);
            self.count_in(si as u16, slot, u64::from(pkt.ip_len()));
            return self.transmit_in(frame, pkt, &c);
        }

        let Some(idx) = self.alloc_entry(now, c, hash) else {
            self.release_template_ref(control);
            return Verdict::Drop(DropReason::TableFull);
        };
        self.bind_dest(si as u16, slot, false);
        self.conns.link(idx, Dir::In, hash);
        if (fwd == FwdKind::Nat || fwd == FwdKind::FullNat)
            && let Some(h) = self.conns.get(idx).copied().and_then(|c| self.out_hash(&c))
        {
            self.conns.link(idx, Dir::Out, h);
        }
        self.update_state(now, idx, TcpDirection::Input, pkt.tcp_flags);
        self.count_in(si as u16, slot, u64::from(pkt.ip_len()));
        let Some(c) = self.conns.get(idx).copied() else {
            return Verdict::Pass;
        };
        self.transmit_in(frame, pkt, &c)
    }

    fn release_template_ref(&mut self, template: u32) {
        if template == NIL {
            return;
        }
        if let Some(t) = self.conns.get_mut(template) {
            t.control = t.control.saturating_sub(1);
        }
    }

    /// Runs the service's scheduler.
    fn schedule(&mut self, si: usize, pkt: &SchedPacket, now: Instant) -> Option<DestSlot> {
        let rng = &mut self.rng;
        let s = &mut self.services[si];
        let list = DestList {
            slots: &s.dests,
            order: &s.order,
        };
        s.sched.schedule(list, pkt, now, rng)
    }

    /// `ip_vs_sched_persist`: reuse the client's template or schedule and create one. Returns
    /// the destination and the template index (its control count already taken).
    fn schedule_persistent(
        &mut self,
        si: usize,
        pkt: &Packet,
        key: &FlowKey,
        p: crate::service::Persistence,
        now: Instant,
    ) -> Result<(DestSlot, u32), DropReason> {
        let s = &self.services[si];
        let masked = addr128(p.netmask.apply(pkt.src));
        let (tproto, tvaddr, tvport, fwmark) = match s.cfg.key {
            ServiceKey::Fwmark { mark, .. } => (0u8, u128::from(mark), 0u16, true),
            ServiceKey::Addr { port: 0, .. } => (key.proto, key.dst, 0, false),
            ServiceKey::Addr { .. } => (key.proto, key.dst, key.dport, false),
        };
        let th = self.hasher.hash(tproto, masked, 0, tvaddr, tvport);
        let svc_idx = si as u16;
        let found = self.conns.find(th, |c, dir| {
            dir == Dir::In
                && c.is_template()
                && c.svc == svc_idx
                && c.caddr == masked
                && c.vaddr == tvaddr
                && c.vport == tvport
                && c.proto() == tproto
        });
        let timeout = p.timeout;
        if let Some((tidx, _)) = found {
            let t = self.conns.get(tidx).copied().unwrap_or(Conn::EMPTY);
            let alive = !t.expired(now) || t.control > 0;
            let dest_ok = self.dest_of(&t).is_some_and(|d| {
                d.state == SlotState::Live && !(self.cfg.expire_quiescent_template && d.sched.weight == 0)
            });
            if alive && dest_ok {
                if let Some(tm) = self.conns.get_mut(tidx) {
                    tm.control += 1;
                    tm.set_expiry(now, timeout);
                }
                return Ok((t.dest, tidx));
            }
            // Invalidate: never found again; freed now if nothing depends on it, else when its
            // last connection goes and its timer runs out.
            if t.control == 0 {
                self.destroy(tidx);
            } else {
                self.conns.unlink(tidx, Dir::In, th);
            }
        }
        let sched_pkt = SchedPacket {
            saddr: pkt.src,
            sport: pkt.sport,
            daddr: pkt.dst,
            dport: pkt.dport,
        };
        let slot = self
            .schedule(si, &sched_pkt, now)
            .ok_or(DropReason::NoDestination)?;
        let mut t = Conn::EMPTY;
        t.caddr = masked;
        t.vaddr = tvaddr;
        t.vport = tvport;
        t.svc = svc_idx;
        t.dest = slot;
        t.control = 1;
        t.set_expiry(now, timeout);
        t.set_state(ConnState::Template);
        t.set(flag::TEMPLATE, true);
        t.set(flag::FWMARK, fwmark);
        t.set(flag::UDP, tproto == 17);
        let tidx = self.alloc_entry(now, t, th).ok_or(DropReason::TableFull)?;
        self.bind_dest(svc_idx, slot, true);
        self.conns.link(tidx, Dir::In, th);
        self.counters.templates_created += 1;
        Ok((slot, tidx))
    }

    /// Picks a FULLNAT local address (of the destination's family) and port whose reply tuple
    /// is free: addresses are tried from a random one onwards, each with a bounded port probe.
    fn pick_local(&mut self, c: &Conn, d: &DestConfig) -> Option<(u8, u16)> {
        let fam = Family::of(&d.addr);
        let rport = real_port(d, c.vport);
        let raddr = addr128(d.addr);
        let (lo, hi) = self.cfg.local_ports;
        let span = u32::from(hi - lo) + 1;
        let usable: heapless::Vec<u8, MAX_LOCAL_ADDRS> = (0..self.local.len())
            .filter(|&i| Family::of(&addr_of(self.local[i])) == fam)
            .map(|i| i as u8)
            .collect();
        if usable.is_empty() {
            return None;
        }
        let first = self.rng.below(usable.len() as u32) as usize;
        for k in 0..usable.len() {
            let li = usable[(first + k) % usable.len()];
            if let Some(p) = self.probe_port(usize::from(li), raddr, rport, c.proto(), lo, span) {
                return Some((li, p));
            }
        }
        None
    }

    /// A free local port on local address `li` for replies from `raddr:rport`, starting at a
    /// random port and probing linearly a bounded number of times.
    fn probe_port(
        &mut self,
        li: usize,
        raddr: u128,
        rport: u16,
        proto: u8,
        lo: u16,
        span: u32,
    ) -> Option<u16> {
        let laddr = *self.local.get(li)?;
        let start = self.rng.below(span);
        for k in 0..256u32 {
            let port = lo + ((start + k) % span) as u16;
            let h = self.hasher.hash(proto, raddr, rport, laddr, port);
            let services = &self.services;
            let taken = self.conns.find(h, |e, dir| {
                dir == Dir::Out
                    && e.fwd() == FwdKind::FullNat
                    && e.lport == port
                    && usize::from(e.laddr) == li
                    && e.proto() == proto
                    && services
                        .get(usize::from(e.svc))
                        .and_then(|s| s.dests.get(usize::from(e.dest)))
                        .is_some_and(|d| d.addr == raddr && real_port(&d.cfg, e.vport) == rport)
            });
            if taken.is_none() {
                return Some(port);
            }
        }
        None
    }

    /// Allocates a table entry, evicting one if the table is full (see [`Self::EVICT_SCAN`]).
    ///
    /// Eviction policy: the entries under the sweep hand are examined in windows of
    /// `EVICT_SCAN` (the hand refills the table in order, so the entries it meets are the
    /// oldest: a young half-open connection is not evicted before its handshake can
    /// complete); an expired entry is taken at once; otherwise, at the end of the first
    /// window that has one, the entry closest to expiry among those that are not ESTABLISHED
    /// TCP connections and are not templates still controlling connections. If
    /// `EVICT_WINDOWS` windows have none the new connection is dropped (`TableFull`).
    /// A free entry for `c`, whose in node will be linked with `hash`; a full table evicts
    /// one first (see [`Self::EVICT_SCAN`]).
    fn alloc_entry(&mut self, now: Instant, c: Conn, hash: u64) -> Option<u32> {
        if let Some(i) = self.conns.alloc(c, hash) {
            return Some(i);
        }
        let cap = self.conns.capacity() as u32;
        let mut best: Option<(i32, u32)> = None;
        let scan = (Self::EVICT_SCAN * Self::EVICT_WINDOWS).min(cap as usize) as u32;
        for n in 0..scan {
            if n > 0 && n % Self::EVICT_SCAN as u32 == 0 && best.is_some() {
                break;
            }
            let i = self.hand % cap;
            self.hand = (self.hand + 1) % cap;
            let Some(e) = self.conns.get(i) else { continue };
            if !e.in_use() || (e.is_template() && e.control > 0) {
                continue;
            }
            if e.expired(now) {
                best = Some((0, i));
                break;
            }
            let evictable = e.is_template() || e.state() != ConnState::Established;
            let left = e.ticks_left(now);
            if evictable && best.is_none_or(|(best_left, _)| left < best_left) {
                best = Some((left, i));
            }
        }
        let (_, victim) = best?;
        self.destroy(victim);
        self.counters.evicted += 1;
        self.conns.alloc(c, hash)
    }

    // ----- timers -----

    /// Bounded timer work: examines up to `budget` table entries under the sweep hand and
    /// removes the expired ones (a template still controlling connections is re-armed for its
    /// timeout, as IPVS does), and runs the rate estimators when their 2-second tick is due.
    /// Returns the number of entries removed. Packets never see an expired connection whatever
    /// the sweep's progress: lookups check expiry themselves.
    pub fn expire(&mut self, now: Instant, budget: usize) -> usize {
        let now = self.clamp_now(now);
        let cap = self.conns.capacity() as u32;
        let mut removed = 0;
        for _ in 0..budget.min(cap as usize) {
            let i = self.hand % cap;
            self.hand = (self.hand + 1) % cap;
            let Some(e) = self.conns.get(i).copied() else {
                continue;
            };
            if !e.in_use() || !e.expired(now) {
                continue;
            }
            if e.is_template() && e.control > 0 {
                let timeout = self
                    .services
                    .get(usize::from(e.svc))
                    .and_then(|s| s.cfg.persistence)
                    .map_or(Duration::ZERO, |p| p.timeout);
                if let Some(t) = self.conns.get_mut(i) {
                    t.set_expiry(now, timeout);
                }
                continue;
            }
            self.destroy(i);
            self.counters.conns_expired += 1;
            removed += 1;
        }
        if now >= self.next_estimate {
            self.estimate(now);
        }
        removed
    }

    /// Updates every rate estimator (normally done by [`Balancer::expire`]).
    pub fn estimate(&mut self, now: Instant) {
        for s in self.services.iter_mut().filter(|s| s.live) {
            s.est.update(now, &s.stats);
            for d in s.dests.iter_mut().filter(|d| d.state != SlotState::Free) {
                d.est.update(now, &d.stats);
            }
        }
        self.next_estimate = now + Duration::from_secs(2);
    }

    /// When the caller should next call [`Balancer::expire`] (the next estimator tick; call it
    /// at least that often so that the sweep keeps pace with the connection rate).
    pub fn poll_timeout(&self) -> Instant {
        self.next_estimate
    }

    /// The connections and templates in the table, for listing (`ipvsadm -Lnc`).
    pub fn conns(&self) -> impl Iterator<Item = ConnInfo> + '_ {
        self.conns.iter_used().filter_map(move |(_, c)| {
            let d = self.dest_of(c)?;
            let fwmark = c.has(flag::FWMARK);
            Some(ConnInfo {
                proto: c.proto(),
                state: c.state(),
                template: c.is_template(),
                expires: c.expires_at(self.last_now),
                client: (addr_of(c.caddr), c.cport),
                virt: if fwmark {
                    None
                } else {
                    Some((addr_of(c.vaddr), c.vport))
                },
                fwmark: if fwmark { Some(c.vaddr as u32) } else { None },
                dest: (
                    d.cfg.addr,
                    if c.is_template() {
                        d.cfg.port
                    } else {
                        real_port(&d.cfg, c.vport)
                    },
                ),
                service: ServiceId(c.svc),
            })
        })
    }
}

/// A connection or template as listed by [`Balancer::conns`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// IP protocol number (6, 17; 0 for fwmark templates, which `ipvsadm -Lnc` shows as IP).
    pub proto: u8,
    /// Protocol state (templates: NONE).
    pub state: ConnState,
    /// Whether this is a persistence template.
    pub template: bool,
    /// When it expires.
    pub expires: Instant,
    /// Client address and port (masked address and port 0 for templates).
    pub client: (IpAddr, u16),
    /// Virtual address and port (None for fwmark templates).
    pub virt: Option<(IpAddr, u16)>,
    /// The firewall mark of a fwmark template.
    pub fwmark: Option<u32>,
    /// Real server address and port.
    pub dest: (IpAddr, u16),
    /// Its service.
    pub service: ServiceId,
}

#[cfg(feature = "alloc")]
mod views {
    //! Snapshots of the balancer in the shapes `crate::render` prints.
    use alloc::vec::Vec;

    use super::{Balancer, SlotState};
    use crate::render::{ConnView, DestView, ServiceView, TableInfo};
    use crate::time::Instant;

    impl Balancer<'_> {
        /// The header information of `ipvsadm -Ln` (the hash index size stands for IPVS's
        /// connection table size).
        pub fn table_info(&self) -> TableInfo {
            TableInfo {
                conn_tab_size: u32::try_from(self.conns.bucket_count()).unwrap_or(u32::MAX),
            }
        }

        /// Every live service with its live destinations, for [`crate::render::list`] and friends.
        pub fn service_views(&self) -> Vec<ServiceView> {
            self.services
                .iter()
                .filter(|s| s.live)
                .map(|s| ServiceView {
                    key: s.cfg.key,
                    sched: s.cfg.sched,
                    flags: s.cfg.flags,
                    persistence: s.cfg.persistence,
                    one_packet: s.cfg.one_packet,
                    stats: s.stats,
                    rates: s.est.rates(),
                    dests: s
                        .order
                        .iter()
                        .map(|&slot| &s.dests[usize::from(slot)])
                        .filter(|d| d.state == SlotState::Live)
                        .map(|d| DestView {
                            addr: d.cfg.addr,
                            port: d.cfg.port,
                            forward: d.cfg.forward,
                            weight: d.cfg.weight,
                            active: d.sched.active,
                            inactive: d.sched.inactive,
                            persistent: d.persistent,
                            stats: d.stats,
                            rates: d.est.rates(),
                        })
                        .collect(),
                })
                .collect()
        }

        /// Every connection and template as `ipvsadm -Lnc` lists them, expiry counted from `now`.
        pub fn conn_views(&self, now: Instant) -> Vec<ConnView> {
            self.conns()
                .map(|c| ConnView {
                    proto: match c.proto {
                        6 => "TCP",
                        17 => "UDP",
                        _ => "IP",
                    },
                    expires_in: c.expires.saturating_duration_since(now),
                    state: c.state.name(),
                    client: c.client,
                    virt: c.virt.unwrap_or((
                        core::net::IpAddr::V4(core::net::Ipv4Addr::from(c.fwmark.unwrap_or(0))),
                        0,
                    )),
                    dest: c.dest,
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    //! The allocator-free path: a balancer over caller-provided storage (these tests also run
    //! under `--no-default-features`).
    use super::*;

    fn syn_frame(buf: &mut [u8; 256], sport: u16) -> Frame<&mut [u8; 256]> {
        // Ethernet + IPv4 + TCP SYN, 192.0.2.7:sport -> 192.0.2.10:80, checksums valid.
        let mut p = [0u8; 54];
        p[12] = 0x08;
        p[14..34].copy_from_slice(&[
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 7, 192, 0, 2, 10,
        ]);
        let c = crate::wire::checksum::checksum(&p[14..34]);
        p[24..26].copy_from_slice(&c.to_be_bytes());
        p[34..36].copy_from_slice(&sport.to_be_bytes());
        p[36..38].copy_from_slice(&80u16.to_be_bytes());
        p[46] = 0x50;
        p[47] = 0x02;
        p[48..50].copy_from_slice(&1024u16.to_be_bytes());
        let start = crate::wire::HEADROOM;
        buf[start..start + p.len()].copy_from_slice(&p);
        Frame {
            buf,
            start,
            len: p.len(),
            meta: RxMeta::ETHERNET,
        }
    }

    #[test]
    fn works_over_caller_storage_without_an_allocator() {
        // An array expression, not `core::array::from_fn`: unoptimised, from_fn keeps several
        // copies of the ~90 KiB allocator-less services in its frames (1.7 MB of stack).
        let mut services = [Service::default(), Service::default()];
        let mut conns = [Conn::EMPTY; 8];
        let cfg = BalancerConfig::default();
        let mut lb = Balancer::with_storage(cfg, &mut services, &mut conns).unwrap();
        let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
        let svc = lb
            .add_service(ServiceConfig::tcp(vip, 80).scheduler(crate::service::Sched::Rr))
            .unwrap();
        let rs = [[2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]];
        for (i, mac) in rs.iter().enumerate() {
            let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1));
            lb.add_dest(svc, DestConfig::new(addr, 80).direct_routing(*mac))
                .unwrap();
        }
        let mut seen = [0usize; 2];
        for sport in 1000..1010u16 {
            let mut buf = [0u8; 256];
            let mut f = syn_frame(&mut buf, sport);
            let v = lb.process(Instant::from_secs(1), &mut f);
            assert!(matches!(v, Verdict::Forward(_)), "{v:?}");
            let mac = &f.data()[..6];
            seen[rs.iter().position(|m| m == mac).unwrap()] += 1;
        }
        assert_eq!(seen, [5, 5]);
        // Eight entries of capacity: the last two SYNs evicted older SYN_RECV entries.
        assert_eq!(lb.conn_table().len(), 8);
        assert_eq!(lb.counters().evicted, 2);
        assert_eq!(lb.add_service(ServiceConfig::udp(vip, 53)).map(|_| ()), Ok(()));
        assert_eq!(
            lb.add_service(ServiceConfig::udp(vip, 54)),
            Err(ConfigError::TooManyServices)
        );
    }

    #[test]
    fn drop_reason_indices_are_dense_and_named() {
        for i in 0..DropReason::COUNT {
            let r = DropReason::from_index(i).unwrap();
            assert_eq!(r.index(), i);
            assert!(!r.name().is_empty());
        }
        assert_eq!(DropReason::from_index(DropReason::COUNT), None);
    }
}
