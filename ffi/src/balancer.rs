//! The data plane: `lbcore_balancer_config` (a builder), `lbcore_balancer`, its services and
//! destinations, frame processing, expiry, counters and `ipvsadm` text.
//!
//! Typical use:
//! ```c
//! lbcore_balancer_config *cfg; lbcore_balancer *lb;
//! lbcore_balancer_config_new(&cfg);
//! lbcore_balancer_config_set_mac(cfg, my_mac);
//! lbcore_balancer_new(cfg, &lb);
//! lbcore_balancer_config_free(cfg);            // the balancer keeps its own copy
//!
//! lbcore_service_spec svc = lbcore_service_spec_default();
//! lbcore_addr_parse("192.0.2.10", 10, &svc.vip); svc.port = 80; svc.scheduler = LBCORE_SCHED_WRR;
//! uint16_t id; lbcore_balancer_add_service(lb, &svc, &id);
//!
//! lbcore_frame f = { buf, sizeof buf, LBCORE_HEADROOM, n, LBCORE_LINK_ETHERNET, 0 };
//! lbcore_verdict v;
//! if (lbcore_balancer_process(lb, now_ns, &f, &v) == LBCORE_RESULT_OK && v.kind == LBCORE_VERDICT_KIND_FORWARD)
//!     send(buf + f.start, f.len);
//! ```
//!
//! Guarantees: configuration calls either succeed or leave the running configuration
//! unchanged; `process` and `process_batch` never allocate and never read outside
//! `buf[0..buf_len]`; a frame is only written between `buf` and `buf + buf_len`.

use core::ffi::c_char;
#[cfg(test)]
use core::mem::MaybeUninit;

use lbcore::balancer::{Balancer, BalancerConfig, DestId, DropReason, Frame, RxMeta, ServiceId, Verdict};
use lbcore::render::{self, ListFormat, ListOptions};
use lbcore::service::{
    DestConfig, Family, Forward, Netmask, Persistence, Protocol, Sched, SchedFlags, ServiceConfig,
    ServiceKey, TunnelType,
};
use lbcore::stats::{Counters, Rates};
use lbcore::time::Instant;

use crate::guard::{
    HandlePtr, Res, free, guard, guard_void, impl_opaque, in_ref, in_slice, inout_ref, inout_slice, into_raw,
    out_ptr, out_slice, write_items, write_text,
};
use crate::result::lbcore_result;
use crate::types::{duration, lbcore_addr, lbcore_link, mac_in, nanos};

/// Bytes of headroom to leave before a frame in its buffer (`lbcore_frame.start`), so that
/// tunnel headers can be prepended in place.
pub const LBCORE_HEADROOM: usize = 80;
const _: () = assert!(LBCORE_HEADROOM == lbcore::wire::HEADROOM);

/// Most FULLNAT local addresses (`lbcore_balancer_config_add_local_addr`).
pub const LBCORE_MAX_LOCAL_ADDRS: usize = 16;
const _: () = assert!(LBCORE_MAX_LOCAL_ADDRS == lbcore::balancer::MAX_LOCAL_ADDRS);

/// Number of drop reasons: `lbcore_verdict.drop_reason` is below this.
pub const LBCORE_DROP_REASON_COUNT: u32 = 25;
const _: () = assert!(LBCORE_DROP_REASON_COUNT as usize == DropReason::COUNT);

/// Scheduler flag `sh-fallback` / `mh-fallback` (`lbcore_service_spec.sched_flags`).
pub const LBCORE_SCHED_FLAG_FALLBACK: u32 = 1;
/// Scheduler flag `sh-port` / `mh-port` (`lbcore_service_spec.sched_flags`).
pub const LBCORE_SCHED_FLAG_PORT: u32 = 2;

/// `lbcore_balancer_ipvsadm` flag: `--stats` columns.
pub const LBCORE_IPVSADM_STATS: u32 = 1;
/// `lbcore_balancer_ipvsadm` flag: `--rate` columns.
pub const LBCORE_IPVSADM_RATE: u32 = 2;
/// `lbcore_balancer_ipvsadm` flag: `--persistent-conn` columns.
pub const LBCORE_IPVSADM_PERSISTENT_CONN: u32 = 4;
/// `lbcore_balancer_ipvsadm` flag: `--tun-info` columns.
pub const LBCORE_IPVSADM_TUN_INFO: u32 = 8;
/// `lbcore_balancer_ipvsadm` flag: `--exact` numbers.
pub const LBCORE_IPVSADM_EXACT: u32 = 16;
/// `lbcore_balancer_ipvsadm` flag: `--nosort`.
pub const LBCORE_IPVSADM_NOSORT: u32 = 32;
const IPVSADM_ALL: u32 = 63;

/// Frames handed to the core at once by `lbcore_balancer_process_batch`.
const BATCH_CHUNK: usize = 64;

// ----- enumerations -----

/// Transport protocol of a service (`lbcore_service_spec.protocol`), as IP protocol numbers.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_protocol {
    /// TCP.
    Tcp = 6,
    /// UDP.
    Udp = 17,
}

/// The IPVS schedulers (`lbcore_service_spec.scheduler`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_sched {
    /// Round robin.
    Rr = 0,
    /// Weighted round robin.
    Wrr = 1,
    /// Least connections.
    Lc = 2,
    /// Weighted least connections (the default).
    Wlc = 3,
    /// Locality-based least connections.
    Lblc = 4,
    /// Locality-based least connections with replication.
    Lblcr = 5,
    /// Destination hashing.
    Dh = 6,
    /// Source hashing.
    Sh = 7,
    /// Shortest expected delay.
    Sed = 8,
    /// Never queue.
    Nq = 9,
    /// Maglev hashing.
    Mh = 10,
    /// Weighted failover.
    Fo = 11,
    /// Weighted overflow.
    Ovf = 12,
    /// Power of two choices.
    Twos = 13,
}

const SCHEDS: [(lbcore_sched, Sched); 14] = [
    (lbcore_sched::Rr, Sched::Rr),
    (lbcore_sched::Wrr, Sched::Wrr),
    (lbcore_sched::Lc, Sched::Lc),
    (lbcore_sched::Wlc, Sched::Wlc),
    (lbcore_sched::Lblc, Sched::Lblc),
    (lbcore_sched::Lblcr, Sched::Lblcr),
    (lbcore_sched::Dh, Sched::Dh),
    (lbcore_sched::Sh, Sched::Sh),
    (lbcore_sched::Sed, Sched::Sed),
    (lbcore_sched::Nq, Sched::Nq),
    (lbcore_sched::Mh, Sched::Mh),
    (lbcore_sched::Fo, Sched::Fo),
    (lbcore_sched::Ovf, Sched::Ovf),
    (lbcore_sched::Twos, Sched::Twos),
];

fn sched_in(v: u32) -> Res<Sched> {
    SCHEDS
        .iter()
        .find(|(c, _)| *c as u32 == v)
        .map(|(_, s)| *s)
        .ok_or(lbcore_result::InvalidParameter)
}

fn sched_out(s: Sched) -> lbcore_sched {
    // Every `Sched` is in the table (checked by a test).
    SCHEDS
        .iter()
        .find(|(_, r)| *r == s)
        .map_or(lbcore_sched::Wlc, |(c, _)| *c)
}

/// Forwarding methods (`lbcore_dest_spec.forward`): `ipvsadm -g`, `-i`, `-m`, and FULLNAT.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_forward {
    /// Direct routing (`-g`): only the MACs change; needs Ethernet frames and the server's MAC.
    DirectRouting = 0,
    /// Tunnelling (`-i`), see `lbcore_tunnel_type`; needs a tunnel source address.
    Tunnel = 1,
    /// Masquerading (`-m`).
    Nat = 2,
    /// Full NAT (source from the local address pool).
    FullNat = 3,
}

/// Tunnel encapsulation (`lbcore_dest_spec.tunnel_type`, for `LBCORE_FORWARD_TUNNEL`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_tunnel_type {
    /// IP-in-IP (IPv4 in IPv4, IPv6 in IPv6).
    Ipip = 0,
    /// Generic UDP Encapsulation to `lbcore_dest_spec.gue_port`.
    Gue = 1,
}

/// What to do with a processed frame (`lbcore_verdict.kind`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_verdict_kind {
    /// Send `buf[start..start + len]` (the frame may have moved): see `link` and `next_hop`.
    Forward = 0,
    /// Drop it; counted under `drop_reason`.
    Drop = 1,
    /// Not for the balancer: hand it to the host stack unchanged.
    Pass = 2,
    /// Used up by the balancer (nothing to send).
    Consumed = 3,
}

// ----- plain structs -----

/// A virtual service (`ipvsadm -A`). Start from `lbcore_service_spec_default()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_service_spec {
    /// An `lbcore_protocol` (ignored for firewall-mark services).
    pub protocol: u32,
    /// The virtual IP; for a firewall-mark service only its family counts.
    pub vip: lbcore_addr,
    /// The virtual port; 0 means every port (persistent services only).
    pub port: u16,
    /// Nonzero: a firewall-mark service (`-f mark`) matching frames processed with this mark.
    pub fwmark: u32,
    /// An `lbcore_sched`.
    pub scheduler: u32,
    /// `LBCORE_SCHED_FLAG_*` bits.
    pub sched_flags: u32,
    /// Persistence timeout (`-p`) in nanoseconds; 0 = not persistent.
    pub persistence_timeout_ns: u64,
    /// IPv4 persistence granularity (`-M`), host byte order, e.g. `0xffffff00`.
    pub persistence_netmask_v4: u32,
    /// IPv6 persistence granularity as a prefix length, 0..128.
    pub persistence_prefix_v6: u8,
    /// One-packet scheduling (`-o`, UDP only).
    pub one_packet: bool,
}

/// A destination (real server, `ipvsadm -a`). Start from `lbcore_dest_spec_default()`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_dest_spec {
    /// Real server address.
    pub addr: lbcore_addr,
    /// Real server port (DR and tunnels keep the virtual port, as IPVS does).
    pub port: u16,
    /// Weight; 0 quiesces the destination.
    pub weight: i32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = 3/4 of the upper one).
    pub l_threshold: u32,
    /// An `lbcore_forward`.
    pub forward: u32,
    /// An `lbcore_tunnel_type` (for `LBCORE_FORWARD_TUNNEL`).
    pub tunnel_type: u32,
    /// Destination UDP port of GUE tunnels.
    pub gue_port: u16,
    /// Whether `mac` is set: the real server's MAC for DR, the next hop's for the routed
    /// methods when output is Ethernet.
    pub has_mac: bool,
    /// The MAC address.
    pub mac: [u8; 6],
}

/// Identifies a destination: its service and its slot in the service.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lbcore_dest_id {
    /// The service id.
    pub service: u16,
    /// The slot.
    pub slot: u16,
}

impl lbcore_dest_id {
    fn from_core(id: DestId) -> lbcore_dest_id {
        lbcore_dest_id {
            service: id.svc.0,
            slot: u16::from(id.slot),
        }
    }

    fn to_core(self) -> Res<DestId> {
        Ok(DestId {
            svc: ServiceId(self.service),
            slot: u8::try_from(self.slot).map_err(|_| lbcore_result::NoSuchDest)?,
        })
    }
}

/// A frame in a caller-owned buffer: the packet is `buf[start..start + len]`; the bytes before
/// `start` are headroom (leave `LBCORE_HEADROOM`). Processing rewrites the bytes in place and
/// updates `start` and `len`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct lbcore_frame {
    /// The buffer (NULL only if `buf_len` is 0).
    pub buf: *mut u8,
    /// Its size.
    pub buf_len: usize,
    /// Offset of the packet's first byte.
    pub start: usize,
    /// Length of the packet.
    pub len: usize,
    /// An `lbcore_link`: what the packet starts with.
    pub link: u32,
    /// Firewall mark (0 = none), for firewall-mark services.
    pub fwmark: u32,
}

/// The outcome of processing one frame.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_verdict {
    /// Forward, drop, pass or consumed.
    pub kind: lbcore_verdict_kind,
    /// For `DROP`: the reason, below `LBCORE_DROP_REASON_COUNT` (`lbcore_drop_reason_name`);
    /// 0 otherwise.
    pub drop_reason: u32,
    /// For `FORWARD`: what the output bytes are, an addressed Ethernet frame or an IP packet
    /// to route towards `next_hop`.
    pub link: lbcore_link,
    /// For `FORWARD`: the IP next hop (real server, tunnel endpoint or client).
    pub next_hop: lbcore_addr,
    /// For `FORWARD`: the destination the connection is bound to.
    pub dest: lbcore_dest_id,
}

/// Balancer-wide counters.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lbcore_counters {
    /// Frames processed.
    pub rx: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames passed to the host.
    pub passed: u64,
    /// Frames dropped (the sum of the per-reason counters).
    pub dropped: u64,
    /// Connections created.
    pub conns_created: u64,
    /// Connections removed by expiry.
    pub conns_expired: u64,
    /// Entries evicted because the table was full.
    pub evicted: u64,
    /// Persistence templates created.
    pub templates_created: u64,
    /// SYNs that reused a closing connection's tuple and were rescheduled.
    pub reused: u64,
}

/// Counters and estimated rates of a service or destination (`ipvsadm --stats` / `--rate`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct lbcore_stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in (client to server).
    pub inpkts: u64,
    /// Packets out (server to client, NAT/FULLNAT).
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
    /// Connections per second (estimated, updated by `lbcore_balancer_expire`).
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

impl lbcore_stats {
    fn new(c: &Counters, r: Rates) -> lbcore_stats {
        lbcore_stats {
            conns: c.conns,
            inpkts: c.inpkts,
            outpkts: c.outpkts,
            inbytes: c.inbytes,
            outbytes: c.outbytes,
            cps: r.cps,
            inpps: r.inpps,
            outpps: r.outpps,
            inbps: r.inbps,
            outbps: r.outbps,
        }
    }
}

/// A service's configuration and statistics.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_service_info {
    /// The configuration, as it would be given to `lbcore_balancer_add_service`.
    pub spec: lbcore_service_spec,
    /// Counters and rates.
    pub stats: lbcore_stats,
    /// Number of live destinations.
    pub dest_count: u32,
}

/// A destination's configuration, connection counts and statistics.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_dest_info {
    /// The configuration.
    pub spec: lbcore_dest_spec,
    /// Active connections (`ActiveConn`).
    pub active: u32,
    /// Inactive connections (`InActConn`).
    pub inactive: u32,
    /// Persistence templates pointing here.
    pub persistent: u32,
    /// Over its upper threshold.
    pub overloaded: bool,
    /// Removed, kept while connections still refer to it.
    pub removed: bool,
    /// Counters and rates.
    pub stats: lbcore_stats,
}

// ----- conversions -----

impl lbcore_service_spec {
    fn to_config(self) -> Res<ServiceConfig> {
        let vip = self.vip.to_ip()?;
        let family = Family::of(&vip);
        let key = if self.fwmark != 0 {
            ServiceKey::Fwmark {
                family,
                mark: self.fwmark,
            }
        } else {
            let proto = match self.protocol {
                6 => Protocol::Tcp,
                17 => Protocol::Udp,
                _ => return Err(lbcore_result::InvalidParameter),
            };
            ServiceKey::Addr {
                proto,
                vip,
                port: self.port,
            }
        };
        if self.sched_flags & !(LBCORE_SCHED_FLAG_FALLBACK | LBCORE_SCHED_FLAG_PORT) != 0 {
            return Err(lbcore_result::InvalidParameter);
        }
        let mut flags = SchedFlags::NONE;
        if self.sched_flags & LBCORE_SCHED_FLAG_FALLBACK != 0 {
            flags = flags.union(SchedFlags::FALLBACK);
        }
        if self.sched_flags & LBCORE_SCHED_FLAG_PORT != 0 {
            flags = flags.union(SchedFlags::PORT);
        }
        let persistence = if self.persistence_timeout_ns == 0 {
            None
        } else {
            let netmask = match family {
                Family::V4 => Netmask::V4(self.persistence_netmask_v4),
                Family::V6 if self.persistence_prefix_v6 <= 128 => {
                    Netmask::V6Prefix(self.persistence_prefix_v6)
                }
                Family::V6 => return Err(lbcore_result::InvalidParameter),
            };
            Some(Persistence {
                timeout: duration(self.persistence_timeout_ns),
                netmask,
            })
        };
        Ok(ServiceConfig {
            key,
            sched: sched_in(self.scheduler)?,
            flags,
            persistence,
            one_packet: self.one_packet,
        })
    }

    pub(crate) fn from_config(cfg: &ServiceConfig) -> lbcore_service_spec {
        let mut spec = default_service_spec();
        match cfg.key {
            ServiceKey::Addr { proto, vip, port } => {
                spec.protocol = u32::from(proto.number());
                spec.vip = lbcore_addr::from_ip(vip);
                spec.port = port;
            }
            ServiceKey::Fwmark { family, mark } => {
                spec.protocol = 0;
                spec.vip = lbcore_addr::from_ip(match family {
                    Family::V4 => core::net::Ipv4Addr::UNSPECIFIED.into(),
                    Family::V6 => core::net::Ipv6Addr::UNSPECIFIED.into(),
                });
                spec.fwmark = mark;
            }
        }
        spec.scheduler = sched_out(cfg.sched) as u32;
        spec.sched_flags = u32::from(cfg.flags.bits());
        if let Some(p) = cfg.persistence {
            // A zero timeout would read back as "not persistent": keep it at least 1 ns.
            spec.persistence_timeout_ns = nanos(p.timeout).max(1);
            match p.netmask {
                Netmask::V4(m) => spec.persistence_netmask_v4 = m,
                Netmask::V6Prefix(l) => spec.persistence_prefix_v6 = l,
            }
        }
        spec.one_packet = cfg.one_packet;
        spec
    }
}

impl lbcore_dest_spec {
    fn to_config(self) -> Res<DestConfig> {
        let forward = match self.forward {
            0 => Forward::DirectRouting,
            1 => Forward::Tunnel(match self.tunnel_type {
                0 => TunnelType::Ipip,
                1 => TunnelType::Gue { port: self.gue_port },
                _ => return Err(lbcore_result::InvalidParameter),
            }),
            2 => Forward::Nat,
            3 => Forward::FullNat,
            _ => return Err(lbcore_result::InvalidParameter),
        };
        Ok(DestConfig {
            addr: self.addr.to_ip()?,
            port: self.port,
            weight: self.weight,
            u_threshold: self.u_threshold,
            l_threshold: self.l_threshold,
            forward,
            mac: self.has_mac.then_some(self.mac),
        })
    }

    pub(crate) fn from_config(cfg: &DestConfig) -> lbcore_dest_spec {
        let mut spec = default_dest_spec();
        spec.addr = lbcore_addr::from_ip(cfg.addr);
        spec.port = cfg.port;
        spec.weight = cfg.weight;
        spec.u_threshold = cfg.u_threshold;
        spec.l_threshold = cfg.l_threshold;
        spec.forward = match cfg.forward {
            Forward::DirectRouting => lbcore_forward::DirectRouting,
            Forward::Tunnel(_) => lbcore_forward::Tunnel,
            Forward::Nat => lbcore_forward::Nat,
            Forward::FullNat => lbcore_forward::FullNat,
        } as u32;
        if let Forward::Tunnel(TunnelType::Gue { port }) = cfg.forward {
            spec.tunnel_type = lbcore_tunnel_type::Gue as u32;
            spec.gue_port = port;
        }
        if let Some(mac) = cfg.mac {
            spec.has_mac = true;
            spec.mac = mac;
        }
        spec
    }
}

fn verdict_out(v: Verdict) -> lbcore_verdict {
    let mut out = lbcore_verdict {
        kind: lbcore_verdict_kind::Pass,
        drop_reason: 0,
        link: lbcore_link::Ethernet,
        next_hop: lbcore_addr {
            family: 0,
            bytes: [0; 16],
        },
        dest: lbcore_dest_id::default(),
    };
    match v {
        Verdict::Forward(f) => {
            out.kind = lbcore_verdict_kind::Forward;
            out.link = lbcore_link::from_core(f.link);
            out.next_hop = lbcore_addr::from_ip(f.next_hop);
            out.dest = lbcore_dest_id::from_core(f.dest);
        }
        Verdict::Drop(r) => {
            out.kind = lbcore_verdict_kind::Drop;
            // Below DropReason::COUNT (25).
            out.drop_reason = r.index() as u32;
        }
        Verdict::Pass => {}
        Verdict::Consumed => out.kind = lbcore_verdict_kind::Consumed,
    }
    out
}

/// Checks a C frame and borrows its buffer.
///
/// # Safety
/// `f.buf` is NULL or valid for reads and writes of `f.buf_len` bytes, not aliased, for `'a`.
unsafe fn frame_in<'a>(f: &lbcore_frame) -> Res<Frame<&'a mut [u8]>> {
    let link = lbcore_link::from_u32(f.link)?;
    if f.start > f.buf_len || f.len > f.buf_len - f.start {
        return Err(lbcore_result::InvalidParameter);
    }
    // SAFETY: forwarded contract; NULL only with length 0 (checked inside).
    let buf = unsafe { out_slice(f.buf, f.buf_len)? };
    // SAFETY: `MaybeUninit<u8>` and `u8` have the same layout, and the caller's buffer holds
    // initialised bytes (it is a packet buffer; any byte value is a valid `u8`).
    let buf = unsafe { &mut *(core::ptr::from_mut(buf) as *mut [u8]) };
    Ok(Frame {
        buf,
        start: f.start,
        len: f.len,
        meta: RxMeta {
            link,
            fwmark: f.fwmark,
        },
    })
}

// ----- opaque handles -----

/// A balancer configuration under construction. Create with `lbcore_balancer_config_new`,
/// adjust with the `lbcore_balancer_config_set_*` functions, pass to `lbcore_balancer_new`
/// (which copies it), free with `lbcore_balancer_config_free`.
#[allow(non_camel_case_types)]
pub struct lbcore_balancer_config {
    inner: BalancerConfig,
    poisoned: bool,
}
impl_opaque!(lbcore_balancer_config, BalancerConfig);

/// A load balancer: services, destinations, the connection table and counters. Not
/// thread-safe: one thread at a time.
#[allow(non_camel_case_types)]
pub struct lbcore_balancer {
    inner: Balancer<'static>,
    poisoned: bool,
}
impl_opaque!(lbcore_balancer, Balancer<'static>);

fn default_service_spec() -> lbcore_service_spec {
    lbcore_service_spec {
        protocol: lbcore_protocol::Tcp as u32,
        vip: lbcore_addr::from_ip(core::net::Ipv4Addr::UNSPECIFIED.into()),
        port: 0,
        fwmark: 0,
        scheduler: lbcore_sched::Wlc as u32,
        sched_flags: 0,
        persistence_timeout_ns: 0,
        persistence_netmask_v4: u32::MAX,
        persistence_prefix_v6: 128,
        one_packet: false,
    }
}

fn default_dest_spec() -> lbcore_dest_spec {
    lbcore_dest_spec {
        addr: lbcore_addr::from_ip(core::net::Ipv4Addr::UNSPECIFIED.into()),
        port: 0,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
        forward: lbcore_forward::Nat as u32,
        tunnel_type: lbcore_tunnel_type::Ipip as u32,
        gue_port: 0,
        has_mac: false,
        mac: [0; 6],
    }
}

/// The defaults of `ipvsadm -A`: TCP, VIP 0.0.0.0, port 0, wlc, no flags, not persistent
/// (granularity per client address when made persistent), no one-packet scheduling.
#[unsafe(no_mangle)]
pub extern "C" fn lbcore_service_spec_default() -> lbcore_service_spec {
    default_service_spec()
}

/// The defaults of a destination: address 0.0.0.0, port 0, weight 1, no thresholds, NAT, no
/// MAC (direct routing needs one: set `forward`, `has_mac` and `mac`).
#[unsafe(no_mangle)]
pub extern "C" fn lbcore_dest_spec_default() -> lbcore_dest_spec {
    default_dest_spec()
}

/// Looks up a scheduler by its ipvsadm name (`"wrr"`, `text[..len]`, no NUL needed) and writes
/// its `lbcore_sched` value into `*out`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an unknown name.
///
/// # Safety
/// `name` must be NULL or valid for reading `len` bytes; `out` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_sched_from_name(
    name: *const c_char,
    len: usize,
    out: *mut u32,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or `len` readable bytes.
        let name = unsafe { in_slice(name.cast::<u8>(), len)? };
        // SAFETY: the caller passes NULL or a writable `uint32_t`.
        let out = unsafe { out_ptr(out)? };
        let name = core::str::from_utf8(name).map_err(|_| lbcore_result::InvalidParameter)?;
        let sched = Sched::from_name(name).ok_or(lbcore_result::InvalidParameter)?;
        out.write(sched_out(sched) as u32);
        Ok(())
    })
}

/// Writes the ipvsadm name of scheduler `sched` (an `lbcore_sched`) into `buf`, NUL-terminated,
/// and its length into `*out_n`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for an unknown value and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `buf` must be NULL or valid for writing `len` bytes; `out_n` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_sched_name(
    sched: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a writable `size_t`.
        let out_n = unsafe { out_ptr(out_n)? };
        let s = sched_in(sched)?;
        // SAFETY: the caller passes NULL or `len` writable bytes.
        unsafe { write_text(s.name(), buf, len, out_n) }
    })
}

/// Writes the name of drop reason `reason` (e.g. `"no_destination"`, `"truncated"`) into
/// `buf`, NUL-terminated, and its length into `*out_n`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` when `reason >= LBCORE_DROP_REASON_COUNT` and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `buf` must be NULL or valid for writing `len` bytes; `out_n` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_drop_reason_name(
    reason: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a writable `size_t`.
        let out_n = unsafe { out_ptr(out_n)? };
        let r = DropReason::from_index(reason as usize).ok_or(lbcore_result::InvalidParameter)?;
        // SAFETY: the caller passes NULL or `len` writable bytes.
        unsafe { write_text(r.name(), buf, len, out_n) }
    })
}

// ----- lbcore_balancer_config -----

/// Creates a balancer configuration with the defaults: 65536 connections, 64 services, MAC
/// 02:00:00:00:00:01, IPVS's timeouts, `conn_reuse_mode` 1, no FULLNAT addresses, no tunnel
/// source, no gateway MAC.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_new(out: *mut *mut lbcore_balancer_config) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a writable pointer.
        let out = unsafe { out_ptr(out)? };
        out.write(into_raw::<lbcore_balancer_config>(BalancerConfig::default()));
        Ok(())
    })
}

/// Frees a configuration; NULL is fine.
///
/// # Safety
/// `cfg` must be NULL or from `lbcore_balancer_config_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_free(cfg: *mut lbcore_balancer_config) {
    // SAFETY: forwarded contract.
    guard_void(|| unsafe { free(cfg) })
}

/// Sets the connection-table capacity (connections plus persistence templates).
/// `lbcore_balancer_new` refuses 0 with `LBCORE_RESULT_BAD_CAPACITY`.
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_conn_capacity(
    cfg: *mut lbcore_balancer_config,
    capacity: usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.conn_capacity = capacity;
            Ok(())
        })
    })
}

/// Sets how many services the balancer can hold.
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_max_services(
    cfg: *mut lbcore_balancer_config,
    max_services: usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.max_services = max_services;
            Ok(())
        })
    })
}

/// Sets the root seed (hash key and every random choice derive from it).
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_seed(
    cfg: *mut lbcore_balancer_config,
    seed: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.seed = seed;
            Ok(())
        })
    })
}

/// Sets the balancer's own MAC (`mac[0..6]`): the source MAC of frames it sends.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `mac` NULL or valid for reading 6 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_mac(
    cfg: *mut lbcore_balancer_config,
    mac: *const u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            // SAFETY: the caller passes NULL or 6 readable bytes.
            c.mac = unsafe { mac_in(mac)? };
            Ok(())
        })
    })
}

/// Sets the next hop towards clients for NAT/FULLNAT replies when output is Ethernet
/// (`mac[0..6]`); NULL removes it (replies then come out as IP packets to route).
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `mac` NULL or valid for reading 6 bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_gateway_mac(
    cfg: *mut lbcore_balancer_config,
    mac: *const u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.gateway_mac = if mac.is_null() {
                None
            } else {
                // SAFETY: the caller passes 6 readable bytes.
                Some(unsafe { mac_in(mac)? })
            };
            Ok(())
        })
    })
}

/// Sets the outer source address of tunnels of the address's family.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `addr` NULL or valid for reading.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_tunnel_source(
    cfg: *mut lbcore_balancer_config,
    addr: *const lbcore_addr,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            // SAFETY: the caller passes NULL or a readable `lbcore_addr`.
            match unsafe { in_ref(addr)? }.to_ip()? {
                core::net::IpAddr::V4(a) => c.tunnel_source_v4 = Some(a),
                core::net::IpAddr::V6(a) => c.tunnel_source_v6 = Some(a),
            }
            Ok(())
        })
    })
}

/// Adds a FULLNAT local address (the source of packets sent to real servers).
///
/// Returns `LBCORE_RESULT_TOO_MANY` beyond `LBCORE_MAX_LOCAL_ADDRS`.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `addr` NULL or valid for reading.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_add_local_addr(
    cfg: *mut lbcore_balancer_config,
    addr: *const lbcore_addr,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            // SAFETY: the caller passes NULL or a readable `lbcore_addr`.
            let ip = unsafe { in_ref(addr)? }.to_ip()?;
            c.local_addrs.push(ip).map_err(|_| lbcore_result::TooMany)
        })
    })
}

/// Sets the FULLNAT local port range `first..=last`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` when `first > last`.
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_local_ports(
    cfg: *mut lbcore_balancer_config,
    first: u16,
    last: u16,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            if first > last {
                return Err(lbcore_result::InvalidParameter);
            }
            c.local_ports = (first, last);
            Ok(())
        })
    })
}

/// `ipvsadm --set tcp tcpfin udp`, in nanoseconds; 0 leaves a value unchanged.
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_timeouts(
    cfg: *mut lbcore_balancer_config,
    tcp_ns: u64,
    tcp_fin_ns: u64,
    udp_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.timeouts
                .set(duration(tcp_ns), duration(tcp_fin_ns), duration(udp_ns));
            Ok(())
        })
    })
}

/// Sets `expire_nodest_conn` (a packet for a connection whose destination was removed
/// expires it).
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_expire_nodest_conn(
    cfg: *mut lbcore_balancer_config,
    on: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.expire_nodest_conn = on;
            Ok(())
        })
    })
}

/// Sets `expire_quiescent_template` (a template whose destination has weight 0 is not reused).
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_expire_quiescent_template(
    cfg: *mut lbcore_balancer_config,
    on: bool,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            c.expire_quiescent_template = on;
            Ok(())
        })
    })
}

/// Sets `conn_reuse_mode` (bit 0: reschedule a SYN reusing a TIME_WAIT/CLOSE connection's
/// tuple; bit 1: also FIN_WAIT for DR/TUN). IPVS's default is 1.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for other bits.
///
/// # Safety
/// `cfg` must be NULL or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_config_set_conn_reuse_mode(
    cfg: *mut lbcore_balancer_config,
    mode: u8,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live configuration.
    let cfg = unsafe { HandlePtr::new(cfg) };
    guard(|| {
        cfg.with(|c| {
            if mode > 3 {
                return Err(lbcore_result::InvalidParameter);
            }
            c.conn_reuse_mode = mode;
            Ok(())
        })
    })
}

// ----- lbcore_balancer -----

/// Creates a balancer from a configuration (copied: free `cfg` when convenient). Every table
/// is allocated here, once.
///
/// Returns `LBCORE_RESULT_BAD_CAPACITY` for a zero or oversized capacity.
///
/// # Safety
/// `cfg` must be NULL or a live configuration; `out` NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_new(
    cfg: *const lbcore_balancer_config,
    out: *mut *mut lbcore_balancer,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a writable pointer.
        let out = unsafe { out_ptr(out)? };
        // SAFETY: the caller passes NULL or a live configuration.
        let cfg = unsafe { HandlePtr::new_const(cfg) }.with_ref(|c| Ok(c.clone()))?;
        let lb = Balancer::new(cfg)?;
        out.write(into_raw::<lbcore_balancer>(lb));
        Ok(())
    })
}

/// Frees a balancer; NULL is fine.
///
/// # Safety
/// `lb` must be NULL or from `lbcore_balancer_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_free(lb: *mut lbcore_balancer) {
    // SAFETY: forwarded contract.
    guard_void(|| unsafe { free(lb) })
}

/// Adds a virtual service (`ipvsadm -A`) and writes its id into `*out_id`.
///
/// Returns `LBCORE_RESULT_SERVICE_EXISTS`, `LBCORE_RESULT_TOO_MANY_SERVICES`,
/// `LBCORE_RESULT_PORT_ZERO_NOT_PERSISTENT`, `LBCORE_RESULT_ONE_PACKET_NOT_UDP`, or
/// `LBCORE_RESULT_INVALID_PARAMETER` for a bad enumeration value or flag.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `spec` NULL or readable; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_add_service(
    lb: *mut lbcore_balancer,
    spec: *const lbcore_service_spec,
    out_id: *mut u16,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (spec, out_id) = unsafe { (in_ref(spec)?, out_ptr(out_id)?) };
            let id = b.add_service(spec.to_config()?)?;
            out_id.write(id.0);
            Ok(())
        })
    })
}

/// Changes a service's scheduler, flags, persistence or one-packet setting (`ipvsadm -E`).
/// The key (protocol, VIP, port or mark) may change too, if no other service has it.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `spec` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_edit_service(
    lb: *mut lbcore_balancer,
    id: u16,
    spec: *const lbcore_service_spec,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or a readable spec.
            let spec = unsafe { in_ref(spec)? };
            Ok(b.edit_service(ServiceId(id), spec.to_config()?)?)
        })
    })
}

/// Removes a service and flushes its connections (`ipvsadm -D`).
///
/// Returns `LBCORE_RESULT_NO_SUCH_SERVICE` for an unknown id.
///
/// # Safety
/// `lb` must be NULL or a live balancer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_remove_service(lb: *mut lbcore_balancer, id: u16) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| lb.with(|b| Ok(b.remove_service(ServiceId(id))?)))
}

/// Finds the service with the key of `spec` (protocol, VIP and port, or family and mark; the
/// other fields are ignored) and writes its id into `*out_id`.
///
/// Returns `LBCORE_RESULT_NO_SUCH_SERVICE` when there is none.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `spec` NULL or readable; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_find_service(
    lb: *const lbcore_balancer,
    spec: *const lbcore_service_spec,
    out_id: *mut u16,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (spec, out_id) = unsafe { (in_ref(spec)?, out_ptr(out_id)?) };
            let mut probe = *spec;
            // Only the key matters: neutral values for the rest so that they cannot fail.
            probe.scheduler = lbcore_sched::Wlc as u32;
            probe.sched_flags = 0;
            probe.persistence_timeout_ns = 0;
            let key = probe.to_config()?.key;
            let id = b.find_service(&key).ok_or(lbcore_result::NoSuchService)?;
            out_id.write(id.0);
            Ok(())
        })
    })
}

/// Writes the ids of the live services into `ids[0..cap]` and their number into `*out_n`.
///
/// Returns `LBCORE_RESULT_BUFFER_TOO_SMALL`, with the number of services in `*out_n`, when
/// `cap` is too small (`(NULL, 0)` asks for the count).
///
/// # Safety
/// `lb` must be NULL or a live balancer; `ids` NULL or valid for writing `cap` elements;
/// `out_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_service_ids(
    lb: *const lbcore_balancer,
    ids: *mut u16,
    cap: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (out, out_n) = unsafe { (out_slice(ids, cap)?, out_ptr(out_n)?) };
            let all: Vec<u16> = b.service_ids().map(|s| s.0).collect();
            write_items(&all, out, out_n)
        })
    })
}

/// Writes a service's configuration and statistics into `*out`.
///
/// Returns `LBCORE_RESULT_NO_SUCH_SERVICE` for an unknown id.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_service_info(
    lb: *const lbcore_balancer,
    id: u16,
    out: *mut lbcore_service_info,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let id = ServiceId(id);
            let cfg = b.service_config(id).ok_or(lbcore_result::NoSuchService)?;
            let stats = b.service_stats(id).copied().unwrap_or(Counters::ZERO);
            let rates = b.service_estimator(id).map(|e| e.rates()).unwrap_or_default();
            let dest_count = b.dest_ids(id).count();
            out.write(lbcore_service_info {
                spec: lbcore_service_spec::from_config(cfg),
                stats: lbcore_stats::new(&stats, rates),
                dest_count: u32::try_from(dest_count).unwrap_or(u32::MAX),
            });
            Ok(())
        })
    })
}

/// Adds a destination to service `service` (`ipvsadm -a`) and writes its id into `*out_id`.
///
/// Returns `LBCORE_RESULT_NO_SUCH_SERVICE`, `LBCORE_RESULT_DEST_EXISTS`,
/// `LBCORE_RESULT_TOO_MANY_DESTS`, `LBCORE_RESULT_DIRECT_ROUTING_NEEDS_MAC`,
/// `LBCORE_RESULT_FAMILY_MISMATCH`, `LBCORE_RESULT_BAD_WEIGHT`, `LBCORE_RESULT_NO_LOCAL_ADDRESS`,
/// `LBCORE_RESULT_NO_TUNNEL_SOURCE`, or `LBCORE_RESULT_INVALID_PARAMETER`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `spec` NULL or readable; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_add_dest(
    lb: *mut lbcore_balancer,
    service: u16,
    spec: *const lbcore_dest_spec,
    out_id: *mut lbcore_dest_id,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (spec, out_id) = unsafe { (in_ref(spec)?, out_ptr(out_id)?) };
            let id = b.add_dest(ServiceId(service), spec.to_config()?)?;
            out_id.write(lbcore_dest_id::from_core(id));
            Ok(())
        })
    })
}

/// Changes a destination (`ipvsadm -e`): weight, thresholds, forwarding method, MAC. Its
/// address and port must stay the same.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `spec` NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_edit_dest(
    lb: *mut lbcore_balancer,
    id: lbcore_dest_id,
    spec: *const lbcore_dest_spec,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or a readable spec.
            let spec = unsafe { in_ref(spec)? };
            Ok(b.edit_dest(id.to_core()?, spec.to_config()?)?)
        })
    })
}

/// Removes a destination (`ipvsadm -d`). Its connections stay until they expire; their
/// packets are dropped.
///
/// # Safety
/// `lb` must be NULL or a live balancer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_remove_dest(
    lb: *mut lbcore_balancer,
    id: lbcore_dest_id,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| lb.with(|b| Ok(b.remove_dest(id.to_core()?)?)))
}

/// Finds the destination of `service` with address `*addr` and port `port`.
///
/// Returns `LBCORE_RESULT_NO_SUCH_DEST` when there is none.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `addr` NULL or readable; `out_id` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_find_dest(
    lb: *const lbcore_balancer,
    service: u16,
    addr: *const lbcore_addr,
    port: u16,
    out_id: *mut lbcore_dest_id,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (addr, out_id) = unsafe { (in_ref(addr)?, out_ptr(out_id)?) };
            let id = b
                .find_dest(ServiceId(service), addr.to_ip()?, port)
                .ok_or(lbcore_result::NoSuchDest)?;
            out_id.write(lbcore_dest_id::from_core(id));
            Ok(())
        })
    })
}

/// Writes the ids of the live destinations of `service` into `ids[0..cap]` (newest first,
/// as `ipvsadm -Ln --nosort` lists them) and their number into `*out_n`.
///
/// Returns `LBCORE_RESULT_NO_SUCH_SERVICE` for an unknown service, and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` with the count in `*out_n` when `cap` is too small.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `ids` NULL or valid for writing `cap` elements;
/// `out_n` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_dest_ids(
    lb: *const lbcore_balancer,
    service: u16,
    ids: *mut lbcore_dest_id,
    cap: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (out, out_n) = unsafe { (out_slice(ids, cap)?, out_ptr(out_n)?) };
            let svc = ServiceId(service);
            b.service_config(svc).ok_or(lbcore_result::NoSuchService)?;
            let all: Vec<lbcore_dest_id> = b.dest_ids(svc).map(lbcore_dest_id::from_core).collect();
            write_items(&all, out, out_n)
        })
    })
}

/// Writes a destination's configuration, connection counts and statistics into `*out` (also
/// for a removed destination that still holds connections).
///
/// Returns `LBCORE_RESULT_NO_SUCH_DEST` for an unknown id.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_dest_info(
    lb: *const lbcore_balancer,
    id: lbcore_dest_id,
    out: *mut lbcore_dest_info,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let id = id.to_core()?;
            let info = b.dest_info(id).ok_or(lbcore_result::NoSuchDest)?;
            let rates = b.dest_estimator(id).map(|e| e.rates()).unwrap_or_default();
            out.write(lbcore_dest_info {
                spec: lbcore_dest_spec::from_config(&info.config),
                active: info.active,
                inactive: info.inactive,
                persistent: info.persistent,
                overloaded: info.overloaded,
                removed: info.removed,
                stats: lbcore_stats::new(&info.stats, rates),
            });
            Ok(())
        })
    })
}

/// Processes one frame at time `now_ns`: looks up or schedules its connection, rewrites the
/// bytes in place for the forwarding method (updating `frame->start` and `frame->len`), and
/// writes the verdict into `*out`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` when `start + len > buf_len` or `link` is
/// unknown (the frame is then untouched and not counted). A frame the balancer cannot use is
/// not an error: it gets a `DROP` verdict with its reason, or `PASS`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `frame` NULL or valid for reading and writing, its
/// `buf` NULL or valid for reading and writing `buf_len` bytes; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_process(
    lb: *mut lbcore_balancer,
    now_ns: u64,
    frame: *mut lbcore_frame,
    out: *mut lbcore_verdict,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or valid pointers.
            let (cf, out) = unsafe { (inout_ref(frame)?, out_ptr(out)?) };
            // SAFETY: `cf.buf` is NULL or valid for `cf.buf_len` bytes by the contract.
            let mut f = unsafe { frame_in(cf)? };
            let v = b.process(Instant::from_nanos(now_ns), &mut f);
            cf.start = f.start;
            cf.len = f.len;
            out.write(verdict_out(v));
            Ok(())
        })
    })
}

/// Processes `n` frames in order at time `now_ns`, with the same results as calling
/// `lbcore_balancer_process` on each but faster (table loads overlap). Writes verdict `i`
/// into `verdicts[i]`.
///
/// All frames are checked first: if one is invalid (as for `lbcore_balancer_process`), the
/// call returns `LBCORE_RESULT_INVALID_PARAMETER` and processes none.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `frames` and `verdicts` NULL (with `n == 0`) or valid
/// for `n` elements; each frame's buffer valid as for `lbcore_balancer_process`, and no two
/// frames' buffers may overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_process_batch(
    lb: *mut lbcore_balancer,
    now_ns: u64,
    frames: *mut lbcore_frame,
    n: usize,
    verdicts: *mut lbcore_verdict,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL (n == 0) or `n` valid frames and verdicts.
            let (cframes, out) = unsafe { (inout_slice(frames, n)?, out_slice(verdicts, n)?) };
            for c in cframes.iter() {
                lbcore_link::from_u32(c.link)?;
                if c.start > c.buf_len || c.len > c.buf_len - c.start || (c.buf.is_null() && c.buf_len != 0) {
                    return Err(lbcore_result::InvalidParameter);
                }
            }
            let now = Instant::from_nanos(now_ns);
            for (chunk, vout) in cframes.chunks_mut(BATCH_CHUNK).zip(out.chunks_mut(BATCH_CHUNK)) {
                let mut fs: [Frame<&mut [u8]>; BATCH_CHUNK] = core::array::from_fn(|_| Frame {
                    buf: &mut [][..],
                    start: 0,
                    len: 0,
                    meta: RxMeta::IP,
                });
                for (slot, c) in fs.iter_mut().zip(chunk.iter()) {
                    // SAFETY: each buffer is valid and the buffers do not overlap (contract).
                    *slot = unsafe { frame_in(c)? };
                }
                let k = chunk.len();
                let mut vs = [Verdict::Pass; BATCH_CHUNK];
                b.process_batch(now, &mut fs[..k], &mut vs[..k]);
                for ((c, f), (o, v)) in chunk.iter_mut().zip(&fs).zip(vout.iter_mut().zip(&vs)) {
                    c.start = f.start;
                    c.len = f.len;
                    o.write(verdict_out(*v));
                }
            }
            Ok(())
        })
    })
}

/// Bounded timer work at `now_ns`: examines up to `budget` connection-table entries, removes
/// the expired ones (their number goes into `*out_removed`), and updates the rate estimators
/// when due. Call it at least by `lbcore_balancer_poll_timeout`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out_removed` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_expire(
    lb: *mut lbcore_balancer,
    now_ns: u64,
    budget: usize,
    out_removed: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            // SAFETY: the caller passes NULL or a writable `size_t`.
            let out = unsafe { out_ptr(out_removed)? };
            out.write(b.expire(Instant::from_nanos(now_ns), budget));
            Ok(())
        })
    })
}

/// Writes when `lbcore_balancer_expire` should next be called (nanoseconds) into `*out_ns`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out_ns` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_poll_timeout(
    lb: *const lbcore_balancer,
    out_ns: *mut u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable `uint64_t`.
            unsafe { out_ptr(out_ns)? }.write(b.poll_timeout().as_nanos());
            Ok(())
        })
    })
}

/// `ipvsadm --set tcp tcpfin udp` on a running balancer, in nanoseconds; 0 leaves a value
/// unchanged. Applies to later state changes, as in IPVS.
///
/// # Safety
/// `lb` must be NULL or a live balancer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_set_timeouts(
    lb: *mut lbcore_balancer,
    tcp_ns: u64,
    tcp_fin_ns: u64,
    udp_ns: u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new(lb) };
    guard(|| {
        lb.with(|b| {
            b.set_timeouts(duration(tcp_ns), duration(tcp_fin_ns), duration(udp_ns));
            Ok(())
        })
    })
}

/// Writes the `(tcp, tcpfin, udp)` timeouts of `ipvsadm -L --timeout`, in nanoseconds.
///
/// # Safety
/// `lb` must be NULL or a live balancer; the out-pointers NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_timeouts(
    lb: *const lbcore_balancer,
    out_tcp_ns: *mut u64,
    out_tcp_fin_ns: *mut u64,
    out_udp_ns: *mut u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or writable pointers.
            let (t, f, u) = unsafe {
                (
                    out_ptr(out_tcp_ns)?,
                    out_ptr(out_tcp_fin_ns)?,
                    out_ptr(out_udp_ns)?,
                )
            };
            let (tcp, fin, udp) = b.timeouts().get();
            t.write(nanos(tcp));
            f.write(nanos(fin));
            u.write(nanos(udp));
            Ok(())
        })
    })
}

/// Writes the balancer-wide counters into `*out`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_counters(
    lb: *const lbcore_balancer,
    out: *mut lbcore_counters,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable struct.
            let out = unsafe { out_ptr(out)? };
            let c = b.counters();
            out.write(lbcore_counters {
                rx: c.rx,
                forwarded: c.forwarded,
                passed: c.passed,
                dropped: c.dropped,
                conns_created: c.conns_created,
                conns_expired: c.conns_expired,
                evicted: c.evicted,
                templates_created: c.templates_created,
                reused: c.reused,
            });
            Ok(())
        })
    })
}

/// Writes the number of frames dropped for `reason` (below `LBCORE_DROP_REASON_COUNT`) into
/// `*out`.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_drops(
    lb: *const lbcore_balancer,
    reason: u32,
    out: *mut u64,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable `uint64_t`.
            let out = unsafe { out_ptr(out)? };
            let r = DropReason::from_index(reason as usize).ok_or(lbcore_result::InvalidParameter)?;
            out.write(b.drops(r));
            Ok(())
        })
    })
}

/// Renders `ipvsadm -Ln` (with `LBCORE_IPVSADM_*` flags: `--stats`, `--rate`,
/// `--persistent-conn`, `--tun-info` in that precedence, `--exact`, `--nosort`) into `buf`,
/// NUL-terminated, byte for byte as ipvsadm prints it; its length goes into `*out_n`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` for unknown flags and
/// `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `buf` NULL or valid for writing `len` bytes; `out_n`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_ipvsadm(
    lb: *const lbcore_balancer,
    flags: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable `size_t`.
            let out_n = unsafe { out_ptr(out_n)? };
            if flags & !IPVSADM_ALL != 0 {
                return Err(lbcore_result::InvalidParameter);
            }
            let format = if flags & LBCORE_IPVSADM_STATS != 0 {
                ListFormat::Stats
            } else if flags & LBCORE_IPVSADM_RATE != 0 {
                ListFormat::Rate
            } else if flags & LBCORE_IPVSADM_PERSISTENT_CONN != 0 {
                ListFormat::PersistentConn
            } else if flags & LBCORE_IPVSADM_TUN_INFO != 0 {
                ListFormat::TunInfo
            } else {
                ListFormat::Plain
            };
            let opts = ListOptions {
                format,
                exact: flags & LBCORE_IPVSADM_EXACT != 0,
                nosort: flags & LBCORE_IPVSADM_NOSORT != 0,
            };
            let text = render::list_with(&b.table_info(), &b.service_views(), opts);
            // SAFETY: the caller passes NULL or `len` writable bytes.
            unsafe { write_text(&text, buf, len, out_n) }
        })
    })
}

/// Renders `ipvsadm -Lnc` (every connection and template, expiry counted from `now_ns`) into
/// `buf`, NUL-terminated; its length goes into `*out_n`.
///
/// Returns `LBCORE_RESULT_BUFFER_TOO_SMALL` (size needed in `*out_n`) when `len` is too small.
///
/// # Safety
/// `lb` must be NULL or a live balancer; `buf` NULL or valid for writing `len` bytes; `out_n`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_balancer_ipvsadm_conns(
    lb: *const lbcore_balancer,
    now_ns: u64,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    // SAFETY: the caller passes NULL or a live balancer.
    let lb = unsafe { HandlePtr::new_const(lb) };
    guard(|| {
        lb.with_ref(|b| {
            // SAFETY: the caller passes NULL or a writable `size_t`.
            let out_n = unsafe { out_ptr(out_n)? };
            let text = render::list_conns(&b.conn_views(Instant::from_nanos(now_ns)));
            // SAFETY: the caller passes NULL or `len` writable bytes.
            unsafe { write_text(&text, buf, len, out_n) }
        })
    })
}

/// Helper for tests and `config`: a `MaybeUninit` slot read back.
#[cfg(test)]
fn init<T>(m: MaybeUninit<T>) -> T {
    // SAFETY: test helper, only called on slots the code under test wrote.
    unsafe { m.assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    #[test]
    fn scheduler_table_covers_every_scheduler() {
        for s in Sched::ALL {
            assert_eq!(sched_in(sched_out(s) as u32), Ok(s));
        }
        assert_eq!(sched_in(14), Err(lbcore_result::InvalidParameter));
    }

    #[test]
    fn specs_round_trip() {
        let mut spec = default_service_spec();
        spec.vip = lbcore_addr::from_ip("192.0.2.1".parse().unwrap());
        spec.port = 80;
        spec.scheduler = lbcore_sched::Sh as u32;
        spec.sched_flags = LBCORE_SCHED_FLAG_PORT;
        spec.persistence_timeout_ns = 300_000_000_000;
        spec.persistence_netmask_v4 = 0xffff_ff00;
        let cfg = spec.to_config().unwrap();
        assert_eq!(lbcore_service_spec::from_config(&cfg), spec);
        spec.sched_flags = 4;
        assert_eq!(spec.to_config(), Err(lbcore_result::InvalidParameter));

        let mut d = default_dest_spec();
        d.addr = lbcore_addr::from_ip("10.0.0.1".parse().unwrap());
        d.forward = lbcore_forward::Tunnel as u32;
        d.tunnel_type = lbcore_tunnel_type::Gue as u32;
        d.gue_port = 6080;
        assert_eq!(lbcore_dest_spec::from_config(&d.to_config().unwrap()), d);
        d.forward = 9;
        assert_eq!(d.to_config(), Err(lbcore_result::InvalidParameter));
    }

    #[test]
    fn null_and_bad_arguments_are_refused() {
        // SAFETY: every pointer is NULL or points at a live local.
        unsafe {
            let mut cfg = ptr::null_mut();
            assert_eq!(lbcore_balancer_config_new(&mut cfg), lbcore_result::Ok);
            assert_eq!(
                lbcore_balancer_config_new(ptr::null_mut()),
                lbcore_result::NullParameter
            );
            assert_eq!(
                lbcore_balancer_config_set_mac(cfg, ptr::null()),
                lbcore_result::NullParameter
            );
            assert_eq!(
                lbcore_balancer_config_set_local_ports(cfg, 10, 9),
                lbcore_result::InvalidParameter
            );
            assert_eq!(
                lbcore_balancer_config_set_conn_capacity(cfg, 0),
                lbcore_result::Ok
            );
            let mut lb = ptr::null_mut();
            assert_eq!(lbcore_balancer_new(cfg, &mut lb), lbcore_result::BadCapacity);
            assert!(lb.is_null(), "out-parameter untouched on error");
            assert_eq!(
                lbcore_balancer_config_set_conn_capacity(cfg, 1024),
                lbcore_result::Ok
            );
            assert_eq!(lbcore_balancer_new(cfg, &mut lb), lbcore_result::Ok);
            lbcore_balancer_config_free(cfg);

            let mut buf = [0u8; 64];
            let mut frame = lbcore_frame {
                buf: buf.as_mut_ptr(),
                buf_len: buf.len(),
                start: 60,
                len: 5,
                link: 0,
                fwmark: 0,
            };
            let mut v = MaybeUninit::uninit();
            assert_eq!(
                lbcore_balancer_process(lb, 0, &mut frame, v.as_mut_ptr()),
                lbcore_result::InvalidParameter
            );
            frame.start = 0;
            frame.link = 7;
            assert_eq!(
                lbcore_balancer_process(lb, 0, &mut frame, v.as_mut_ptr()),
                lbcore_result::InvalidParameter
            );
            frame.link = 0;
            assert_eq!(
                lbcore_balancer_process(lb, 0, &mut frame, v.as_mut_ptr()),
                lbcore_result::Ok
            );
            let v = init(v);
            assert_eq!(v.kind, lbcore_verdict_kind::Drop);
            assert_eq!(
                lbcore_balancer_process(lb, 0, ptr::null_mut(), ptr::null_mut()),
                lbcore_result::NullParameter
            );
            let mut n = 0usize;
            assert_eq!(
                lbcore_balancer_ipvsadm(lb, 64, ptr::null_mut(), 0, &mut n),
                lbcore_result::InvalidParameter
            );
            assert_eq!(
                lbcore_balancer_ipvsadm(lb, 0, ptr::null_mut(), 0, &mut n),
                lbcore_result::BufferTooSmall
            );
            assert!(n > 40);
            lbcore_balancer_free(lb);
            lbcore_balancer_free(ptr::null_mut());
        }
    }
}
