//! Programs the Linux kernel's IPVS through its generic-netlink family "IPVS": what `ipvsadm`
//! and keepalived do, synchronously, on `netlink-packet-core` / `netlink-packet-generic` /
//! `netlink-sys` (no async runtime).
//!
//! [`Ipvs`] is a client for every command of the family: [`Ipvs::info`], services
//! ([`Ipvs::add_service`], [`Ipvs::edit_service`], [`Ipvs::del_service`], [`Ipvs::services`]),
//! destinations ([`Ipvs::add_dest`], [`Ipvs::edit_dest`], [`Ipvs::del_dest`], [`Ipvs::dests`]),
//! [`Ipvs::timeouts`] / [`Ipvs::set_timeouts`], [`Ipvs::zero`], [`Ipvs::flush`] and the
//! connection-sync daemon ([`Ipvs::start_daemon`], [`Ipvs::stop_daemon`], [`Ipvs::daemons`]).
//! Listings carry the active / inactive / persistent connection counts and the 64-bit
//! counters and rates.
//!
//! [`Ipvs::apply`] converges the kernel to a [`lbcore::config::Plan`] (see the `apply`
//! guarantees on [`ApplyReport`]): it reads the kernel's services and destinations and sends
//! only the messages that differ, so an unchanged service or destination is never deleted and
//! re-added and keeps its connections and counters.
//!
//! # Guarantees
//! - Every kernel error becomes an [`Error`] naming the object (`add service TCP
//!   10.0.0.1:80`) and the cause in words, with the errno: `EEXIST`, `ENOENT`, `ESRCH` (the
//!   service does not exist), `EINVAL`, a missing scheduler module, and a kernel without IPVS
//!   ("the kernel has no IPVS (modprobe ip_vs)").
//! - Requests are pipelined: up to [`Ipvs::set_batch`] messages go to the kernel in one
//!   `send`, each acknowledged on its own, in order; on an error the rest of that batch is
//!   still processed by the kernel and the first error is returned. `set_batch(1)` gives
//!   `ipvsadm`'s one-request-one-answer behaviour.
//! - Kernel bytes are parsed with bounds checks; nothing here panics on what the kernel sends.
//!
//! # Mapping from lbcore's configuration
//! [`Service::from_config`] and [`Dest::from_config`] translate [`ServiceConfig`] and
//! [`DestConfig`] as `ipvsadm` would for the equivalent command line: the scheduler flags
//! become SCHED1 / SCHED2, persistence sets the persistent flag, the timeout and the netmask
//! (IPv4 mask, IPv6 prefix length), a non-persistent service gets timeout 0 and the full
//! netmask; direct-routing and tunnelled destinations of an address-keyed service take the
//! service's port (as `ipvsadm` does); GUE is sent without checksums (`--tun-nocsum`, which
//! is what `render_ipvsadm_rules` writes). FULLNAT has no kernel counterpart and is refused.
//! The kernel-only settings lbcore's model does not have (GRE tunnels, tunnel checksum flags,
//! the local and bypass methods, SCHED3, persistence engines, SCTP) are reachable through
//! [`Service`] and [`Dest`] directly.
//!
//! Needs `CAP_NET_ADMIN` and a kernel with `ip_vs` loaded (or loadable).

mod apply;
mod attr;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbcore::service::{
    DestConfig, Family, Forward, Netmask, Protocol, Sched, SchedFlags, ServiceConfig, ServiceKey, TunnelType,
};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};

pub use apply::{ApplyReport, Desired, desired_from_plan};
use attr::{AttrWriter, IpvsMessage, cmd, top};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// The default number of requests sent to the kernel in one `send`.
pub const DEFAULT_BATCH: usize = 32;

// ---------------------------------------------------------------------------------------------
// Errors

/// What a request was doing, to name it in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Resolve,
    Info,
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    GetConfig,
    SetConfig,
    Zero,
    Flush,
    NewDaemon,
    DelDaemon,
    GetDaemon,
}

impl Op {
    fn verb(self) -> &'static str {
        match self {
            Op::Resolve => "resolve the IPVS netlink family",
            Op::Info => "get IPVS info",
            Op::NewService => "add service",
            Op::SetService => "edit service",
            Op::DelService => "delete service",
            Op::GetService => "list services",
            Op::NewDest => "add destination",
            Op::SetDest => "edit destination",
            Op::DelDest => "delete destination",
            Op::GetDest => "list destinations of",
            Op::GetConfig => "get timeouts",
            Op::SetConfig => "set timeouts",
            Op::Zero => "zero counters",
            Op::Flush => "flush",
            Op::NewDaemon => "start sync daemon",
            Op::DelDaemon => "stop sync daemon",
            Op::GetDaemon => "list sync daemons",
        }
    }
}

/// The object a request is about: an operation, the service and destination it names, and
/// the scheduler it asks for. Formatted only when an error is reported.
#[derive(Clone, Debug)]
struct Target {
    op: Op,
    key: Option<Key>,
    dest: Option<(IpAddr, u16)>,
    sched: Option<String>,
}

impl Target {
    fn op(op: Op) -> Target {
        Target {
            op,
            key: None,
            dest: None,
            sched: None,
        }
    }
    fn describe(&self) -> String {
        let mut s = self.op.verb().to_string();
        if let Some((addr, port)) = self.dest {
            s.push(' ');
            s.push_str(&addr_port(addr, port));
            if self.key.is_some() {
                s.push_str(" of service");
            }
        }
        if let Some(k) = &self.key {
            s.push(' ');
            s.push_str(&k.to_string());
        }
        s
    }
}

/// An IPVS request that failed, or a kernel without IPVS.
///
/// Displays as `OBJECT: CAUSE (ERRNO)`, e.g. `add service TCP 10.0.0.1:80: the service already
/// exists (EEXIST)` or `add service TCP 10.0.0.1:80: scheduler 'foo' not found (no module
/// ip_vs_foo in this kernel?) (ENOENT)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    what: String,
    cause: String,
    errno: Option<i32>,
}

impl Error {
    fn kernel(target: &Target, errno: i32) -> Error {
        Error {
            what: target.describe(),
            cause: cause(target, errno),
            errno: Some(errno),
        }
    }
    fn io(target: &Target, e: &io::Error) -> Error {
        match e.raw_os_error() {
            Some(n) => Error::kernel(target, n),
            None => Error {
                what: target.describe(),
                cause: e.to_string(),
                errno: None,
            },
        }
    }
    fn invalid(what: String, cause: String) -> Error {
        Error {
            what,
            cause,
            errno: None,
        }
    }
    /// The errno the kernel answered, if the error came from the kernel.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }
    /// The object of the failed request (`add destination 10.0.0.2:80 of service TCP ...`).
    pub fn object(&self) -> &str {
        &self.what
    }
    /// The cause in words.
    pub fn cause(&self) -> &str {
        &self.cause
    }
    /// Whether the kernel has no IPVS family at all.
    pub fn is_no_ipvs(&self) -> bool {
        self.cause.starts_with(NO_IPVS)
    }
}

const NO_IPVS: &str = "the kernel has no IPVS (modprobe ip_vs)";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.cause)
    }
}

impl std::error::Error for Error {}

fn errno_name(e: i32) -> Option<&'static str> {
    Some(match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        libc::EBUSY => "EBUSY",
        libc::ERANGE => "ERANGE",
        _ => return None,
    })
}

fn cause(t: &Target, e: i32) -> String {
    let sched = t.sched.as_deref().unwrap_or("?");
    let words = match (t.op, e) {
        (Op::Resolve, libc::ENOENT) => NO_IPVS.to_string(),
        (_, libc::EPERM) => "operation not permitted (needs CAP_NET_ADMIN)".to_string(),
        (Op::NewService | Op::SetService, libc::ENOENT) => {
            format!("scheduler '{sched}' not found (no module ip_vs_{sched} in this kernel?)")
        }
        (Op::NewService, libc::EEXIST) => "the service already exists".to_string(),
        (Op::NewDaemon, libc::EEXIST) => "a sync daemon in this state is already running".to_string(),
        (Op::DelDaemon, libc::ESRCH) => "no sync daemon in this state is running".to_string(),
        (_, libc::ESRCH) => "the service does not exist".to_string(),
        (Op::NewDest, libc::EEXIST) => "the destination already exists".to_string(),
        (Op::SetDest | Op::DelDest, libc::ENOENT) => "the destination does not exist".to_string(),
        (_, libc::EINVAL) => "invalid argument (the kernel rejected a value: protocol, port 0 without \
                              persistence, netmask, weight, thresholds or tunnel settings)"
            .to_string(),
        (_, libc::ERANGE) => {
            "value out of range (a negative weight, or a lower threshold above the upper one)".to_string()
        }
        (_, libc::EAFNOSUPPORT) => "address family not supported".to_string(),
        (_, libc::EOPNOTSUPP) => "not supported by this kernel".to_string(),
        (_, n) => io::Error::from_raw_os_error(n).to_string(),
    };
    match errno_name(e) {
        Some(name) => format!("{words} ({name})"),
        None => format!("{words} (errno {e})"),
    }
}

// ---------------------------------------------------------------------------------------------
// Types

/// How a service is matched: protocol, address and port, or a firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// `-t|-u ADDR:PORT` (port 0: all ports, persistent services only).
    Addr {
        /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
        proto: u8,
        /// The virtual address.
        addr: IpAddr,
        /// The virtual port.
        port: u16,
    },
    /// `-f MARK [-6]`.
    Fwmark {
        /// Address family of the marked packets.
        family: Family,
        /// The firewall mark (non-zero).
        mark: u32,
    },
}

impl Key {
    /// The address family.
    pub fn family(&self) -> Family {
        match self {
            Key::Addr { addr, .. } => Family::of(addr),
            Key::Fwmark { family, .. } => *family,
        }
    }
    fn af(&self) -> u16 {
        match self.family() {
            Family::V4 => AF_INET,
            Family::V6 => AF_INET6,
        }
    }
    fn write(&self, w: &mut AttrWriter) {
        w.u16(attr::svc::AF, self.af());
        match *self {
            Key::Addr { proto, addr, port } => {
                w.u16(attr::svc::PROTOCOL, u16::from(proto))
                    .bytes(attr::svc::ADDR, &addr16(addr))
                    .be16(attr::svc::PORT, port);
            }
            Key::Fwmark { mark, .. } => {
                w.u32(attr::svc::FWMARK, mark);
            }
        }
    }
    /// The key as a `SERVICE` nest holding only the identifying attributes.
    fn nest(&self) -> AttrWriter {
        let mut w = AttrWriter::default();
        self.write(&mut w);
        w
    }
}

impl From<ServiceKey> for Key {
    fn from(k: ServiceKey) -> Key {
        match k {
            ServiceKey::Addr { proto, vip, port } => Key::Addr {
                proto: proto.number(),
                addr: vip,
                port,
            },
            ServiceKey::Fwmark { family, mark } => Key::Fwmark { family, mark },
        }
    }
}

impl fmt::Display for Key {
    /// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7`, `FWM 7 IPv6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Key::Addr { proto, addr, port } => {
                let p = match proto {
                    6 => "TCP".to_string(),
                    17 => "UDP".to_string(),
                    132 => "SCTP".to_string(),
                    n => format!("proto {n}"),
                };
                write!(f, "{p} {}", addr_port(addr, port))
            }
            Key::Fwmark {
                family: Family::V4,
                mark,
            } => write!(f, "FWM {mark}"),
            Key::Fwmark {
                family: Family::V6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

fn parse_addr(af: u16, v: &[u8]) -> Option<IpAddr> {
    match af {
        AF_INET => {
            let b: [u8; 4] = v.get(..4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        AF_INET6 => {
            let b: [u8; 16] = v.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Service flags (`IP_VS_SVC_F_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    /// Persistent service (`-p`).
    pub const PERSISTENT: ServiceFlags = ServiceFlags(0x1);
    /// Set by the kernel on every listed service; ignored when sent and when compared.
    pub const HASHED: ServiceFlags = ServiceFlags(0x2);
    /// One-packet scheduling (`-o`).
    pub const ONEPACKET: ServiceFlags = ServiceFlags(0x4);
    /// Scheduler flag 1: `sh-fallback`, `mh-fallback`.
    pub const SCHED1: ServiceFlags = ServiceFlags(0x8);
    /// Scheduler flag 2: `sh-port`, `mh-port`.
    pub const SCHED2: ServiceFlags = ServiceFlags(0x10);
    /// Scheduler flag 3.
    pub const SCHED3: ServiceFlags = ServiceFlags(0x20);
    /// `sh-fallback` (SCHED1 on an `sh` service).
    pub const SH_FALLBACK: ServiceFlags = Self::SCHED1;
    /// `sh-port` (SCHED2 on an `sh` service).
    pub const SH_PORT: ServiceFlags = Self::SCHED2;
    /// `mh-fallback` (SCHED1 on an `mh` service).
    pub const MH_FALLBACK: ServiceFlags = Self::SCHED1;
    /// `mh-port` (SCHED2 on an `mh` service).
    pub const MH_PORT: ServiceFlags = Self::SCHED2;

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: ServiceFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union.
    pub const fn union(self, other: ServiceFlags) -> ServiceFlags {
        ServiceFlags(self.0 | other.0)
    }
    /// Without the kernel-maintained HASHED bit.
    pub const fn settable(self) -> ServiceFlags {
        ServiceFlags(self.0 & !Self::HASHED.0)
    }
}

/// A virtual service as the kernel holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    /// How packets are matched.
    pub key: Key,
    /// Scheduler name (`wlc`, `sh`, ...; the kernel loads `ip_vs_NAME`).
    pub sched: String,
    /// Flags (HASHED is ignored).
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds (0 when not persistent).
    pub timeout: u32,
    /// Persistence granularity: an IPv4 netmask as a host-order `u32` (`0xffffff00` for
    /// 255.255.255.0), or an IPv6 prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

impl Service {
    /// A service with `ipvsadm -A`'s defaults: wlc, not persistent, full netmask.
    pub fn new(key: Key) -> Service {
        Service {
            key,
            sched: "wlc".to_string(),
            flags: ServiceFlags::default(),
            timeout: 0,
            netmask: full_netmask(key.family()),
            pe_name: None,
        }
    }

    /// The kernel service for an lbcore service (see the module docs for the mapping).
    pub fn from_config(c: &ServiceConfig) -> Service {
        let key = Key::from(c.key);
        let mut s = Service::new(key);
        s.sched = c.sched.name().to_string();
        if c.flags.contains(SchedFlags::FALLBACK) {
            s.flags = s.flags.union(ServiceFlags::SCHED1);
        }
        if c.flags.contains(SchedFlags::PORT) {
            s.flags = s.flags.union(ServiceFlags::SCHED2);
        }
        if c.one_packet {
            s.flags = s.flags.union(ServiceFlags::ONEPACKET);
        }
        if let Some(p) = c.persistence {
            s.flags = s.flags.union(ServiceFlags::PERSISTENT);
            s.timeout = u32::try_from(p.timeout.as_secs()).unwrap_or(u32::MAX);
            s.netmask = match p.netmask {
                Netmask::V4(m) => m,
                Netmask::V6Prefix(l) => u32::from(l),
            };
        }
        s
    }

    /// The lbcore service for this kernel service, if lbcore's model can express it.
    pub fn to_config(&self) -> Option<ServiceConfig> {
        let key = match self.key {
            Key::Addr { proto, addr, port } => ServiceKey::Addr {
                proto: Protocol::from_number(proto)?,
                vip: addr,
                port,
            },
            Key::Fwmark { family, mark } => ServiceKey::Fwmark { family, mark },
        };
        let mut c = ServiceConfig::new(key).scheduler(Sched::from_name(&self.sched)?);
        let mut f = SchedFlags::NONE;
        if self.flags.contains(ServiceFlags::SCHED1) {
            f = f.union(SchedFlags::FALLBACK);
        }
        if self.flags.contains(ServiceFlags::SCHED2) {
            f = f.union(SchedFlags::PORT);
        }
        c = c
            .flags(f)
            .one_packet(self.flags.contains(ServiceFlags::ONEPACKET));
        if self.flags.contains(ServiceFlags::PERSISTENT) {
            let nm = match key.family() {
                Family::V4 => Netmask::V4(self.netmask),
                Family::V6 => Netmask::V6Prefix(u8::try_from(self.netmask).ok()?),
            };
            c = c
                .persistent(lbcore::time::Duration::from_secs(u64::from(self.timeout)))
                .netmask(nm);
        }
        Some(c)
    }

    /// Whether the settable parts (everything but the key) equal `other`'s.
    fn same_settings(&self, other: &Service) -> bool {
        self.sched == other.sched
            && self.flags.settable() == other.flags.settable()
            && self.timeout == other.timeout
            && self.netmask == other.netmask
            && self.pe_name == other.pe_name
    }

    fn nest(&self) -> AttrWriter {
        let mut w = self.key.nest();
        w.string(attr::svc::SCHED_NAME, &self.sched);
        if let Some(pe) = &self.pe_name {
            w.string(attr::svc::PE_NAME, pe);
        }
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&self.flags.settable().0.to_ne_bytes());
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.bytes(attr::svc::FLAGS, &flags)
            .u32(attr::svc::TIMEOUT, self.timeout)
            .u32(attr::svc::NETMASK, self.wire_netmask());
        w
    }

    fn wire_netmask(&self) -> u32 {
        match self.key.family() {
            Family::V4 => u32::from_ne_bytes(self.netmask.to_be_bytes()),
            Family::V6 => self.netmask,
        }
    }
}

fn full_netmask(f: Family) -> u32 {
    match f {
        Family::V4 => u32::MAX,
        Family::V6 => 128,
    }
}

/// Tunnel encapsulation (`--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunKind {
    /// IP in IP (`IP_VS_CONN_F_TUNNEL_TYPE_IPIP`).
    Ipip,
    /// Generic UDP Encapsulation.
    Gue,
    /// GRE.
    Gre,
}

impl TunKind {
    fn wire(self) -> u8 {
        match self {
            TunKind::Ipip => 0,
            TunKind::Gue => 1,
            TunKind::Gre => 2,
        }
    }
    fn from_wire(v: u8) -> Option<TunKind> {
        Some(match v {
            0 => TunKind::Ipip,
            1 => TunKind::Gue,
            2 => TunKind::Gre,
            _ => return None,
        })
    }
}

/// Tunnel checksum flags (`IP_VS_TUNNEL_ENCAP_FLAG_*`): empty is `--tun-nocsum`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunFlags(pub u16);

impl TunFlags {
    /// No checksum (`--tun-nocsum`).
    pub const NOCSUM: TunFlags = TunFlags(0);
    /// Outer checksum (`--tun-csum`).
    pub const CSUM: TunFlags = TunFlags(1);
    /// Remote checksum offload (`--tun-remcsum`).
    pub const REMCSUM: TunFlags = TunFlags(2);
}

/// A tunnel destination's encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunKind,
    /// Outer UDP port (GUE only; 0 otherwise).
    pub port: u16,
    /// Checksum flags (GUE and GRE).
    pub flags: TunFlags,
}

impl Tunnel {
    /// Plain IPIP.
    pub const IPIP: Tunnel = Tunnel {
        kind: TunKind::Ipip,
        port: 0,
        flags: TunFlags::NOCSUM,
    };
}

/// Forwarding method (`IP_VS_CONN_F_FWD_MASK` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fwd {
    /// NAT (`-m`, `Masq`).
    Masq,
    /// Local node (`Local`): the destination is an address of this host.
    Local,
    /// Tunnel (`-i`).
    Tunnel(Tunnel),
    /// Direct routing (`-g`, `Route`).
    DirectRouting,
    /// Bypass.
    Bypass,
}

impl Fwd {
    fn wire(self) -> u32 {
        match self {
            Fwd::Masq => 0,
            Fwd::Local => 1,
            Fwd::Tunnel(_) => 2,
            Fwd::DirectRouting => 3,
            Fwd::Bypass => 4,
        }
    }
}

/// A destination (real server) as the kernel holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    /// Address (may be of the other family than the service for tunnels).
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: Fwd,
    /// Weight (0 quiesces).
    pub weight: i32,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold.
    pub l_threshold: u32,
}

impl Dest {
    /// A destination with `ipvsadm -a`'s defaults: direct routing, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> Dest {
        Dest {
            addr,
            port,
            fwd: Fwd::DirectRouting,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    /// The kernel destination for an lbcore destination of service `key` (see the module
    /// docs). FULLNAT is refused: mainline IPVS has no such method.
    pub fn from_config(key: &Key, c: &DestConfig) -> Result<Dest, Error> {
        let fwd = match c.forward {
            Forward::DirectRouting => Fwd::DirectRouting,
            Forward::Nat => Fwd::Masq,
            Forward::Tunnel(TunnelType::Ipip) => Fwd::Tunnel(Tunnel::IPIP),
            Forward::Tunnel(TunnelType::Gue { port }) => Fwd::Tunnel(Tunnel {
                kind: TunKind::Gue,
                port,
                flags: TunFlags::NOCSUM,
            }),
            Forward::FullNat => {
                return Err(Error::invalid(
                    format!("destination {} of service {key}", addr_port(c.addr, c.port)),
                    "FULLNAT forwarding is not supported by kernel IPVS".to_string(),
                ));
            }
        };
        let mut port = c.port;
        if let (Key::Addr { port: vport, .. }, Fwd::DirectRouting | Fwd::Tunnel(_)) = (key, fwd) {
            port = *vport;
        }
        Ok(Dest {
            addr: c.addr,
            port,
            fwd,
            weight: c.weight,
            u_threshold: c.u_threshold,
            l_threshold: c.l_threshold,
        })
    }

    fn af(&self) -> u16 {
        match self.addr {
            IpAddr::V4(_) => AF_INET,
            IpAddr::V6(_) => AF_INET6,
        }
    }

    fn id_nest(addr: IpAddr, port: u16) -> AttrWriter {
        let mut w = AttrWriter::default();
        let af = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
        w.bytes(attr::dest::ADDR, &addr16(addr))
            .be16(attr::dest::PORT, port)
            .u16(attr::dest::ADDR_FAMILY, af);
        w
    }

    fn nest(&self) -> AttrWriter {
        let mut w = AttrWriter::default();
        w.bytes(attr::dest::ADDR, &addr16(self.addr))
            .be16(attr::dest::PORT, self.port)
            .u16(attr::dest::ADDR_FAMILY, self.af())
            .u32(attr::dest::FWD_METHOD, self.fwd.wire())
            .u32(attr::dest::WEIGHT, self.weight as u32)
            .u32(attr::dest::U_THRESH, self.u_threshold)
            .u32(attr::dest::L_THRESH, self.l_threshold);
        if let Fwd::Tunnel(t) = self.fwd {
            w.u8(attr::dest::TUN_TYPE, t.kind.wire())
                .be16(attr::dest::TUN_PORT, t.port)
                .u16(attr::dest::TUN_FLAGS, t.flags.0);
        }
        w
    }
}

/// Counters and rates of a service or destination (64-bit, `ipvsadm -Ln --stats/--rate`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
    /// Connections per second (estimator).
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

impl Stats {
    fn parse(v: &[u8], wide: bool) -> Stats {
        let mut s = Stats::default();
        for (k, v) in attr::attrs(v) {
            let x = if wide || matches!(k, 4 | 5) {
                attr::get_u64(v)
            } else {
                attr::get_u32(v).map(u64::from)
            }
            .unwrap_or(0);
            match k {
                1 => s.conns = x,
                2 => s.inpkts = x,
                3 => s.outpkts = x,
                4 => s.inbytes = x,
                5 => s.outbytes = x,
                6 => s.cps = x,
                7 => s.inpps = x,
                8 => s.outpps = x,
                9 => s.inbps = x,
                10 => s.outbps = x,
                _ => {}
            }
        }
        s
    }
}

/// A listed service with its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The service.
    pub service: Service,
    /// Its counters.
    pub stats: Stats,
}

/// A listed destination with its connection counts and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestStatus {
    /// The destination.
    pub dest: Dest,
    /// Active connections (`ActiveConn`).
    pub active: u32,
    /// Inactive connections (`InActConn`).
    pub inactive: u32,
    /// Persistence templates pointing at it.
    pub persistent: u32,
    /// Its counters.
    pub stats: Stats,
}

/// `IPVS_CMD_GET_INFO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// IPVS version, `0x010201` for 1.2.1.
    pub version: u32,
    /// Size of the connection hash table.
    pub conn_tab_size: u32,
}

impl Info {
    /// `1.2.1`.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            self.version >> 16,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 leaves a value as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// Sync daemon role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// Sends connection updates.
    Master,
    /// Receives them.
    Backup,
}

impl SyncState {
    fn wire(self) -> u32 {
        match self {
            SyncState::Master => 1,
            SyncState::Backup => 2,
        }
    }
}

/// A connection-sync daemon (`ipvsadm --start-daemon`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: SyncState,
    /// Multicast interface.
    pub ifname: String,
    /// Sync id (0..=255).
    pub sync_id: u8,
}

// ---------------------------------------------------------------------------------------------
// The client

/// One request to pipeline.
struct Request {
    msg: IpvsMessage,
    target: Target,
}

/// A netlink socket bound to the kernel's IPVS family.
pub struct Ipvs {
    sock: Socket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
    batch: usize,
}

impl fmt::Debug for Ipvs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipvs")
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

impl Ipvs {
    /// Opens a generic-netlink socket and resolves the "IPVS" family
    /// (`CTRL_CMD_GETFAMILY`). A kernel without IPVS gives an error for which
    /// [`Error::is_no_ipvs`] is true.
    pub fn new() -> Result<Ipvs, Error> {
        let t = Target::op(Op::Resolve);
        let mut sock = Socket::new(NETLINK_GENERIC).map_err(|e| Error::io(&t, &e))?;
        sock.bind_auto().map_err(|e| Error::io(&t, &e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io(&t, &e))?;
        // Acknowledgements without the request echoed back: they stay small in a batch.
        let _ = sock.set_cap_ack(true);
        let mut ipvs = Ipvs {
            sock,
            family: 0,
            seq: 0,
            buf: vec![0; 64 * 1024],
            batch: DEFAULT_BATCH,
        };
        ipvs.family = ipvs.resolve()?;
        Ok(ipvs)
    }

    /// The resolved generic-netlink family id.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// How many requests go to the kernel in one `send` (at least 1).
    pub fn set_batch(&mut self, n: usize) {
        self.batch = n.max(1);
    }

    fn resolve(&mut self) -> Result<u16, Error> {
        let t = Target::op(Op::Resolve);
        let mut genl = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName("IPVS".to_string())],
        });
        genl.finalize();
        let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(genl));
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        nl.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        self.sock.send(&out, 0).map_err(|e| Error::io(&t, &e))?;
        let mut id = None;
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|e| Error::io(&t, &e))?;
            let mut off = 0;
            while off < n {
                let bytes = self.buf.get(off..n).unwrap_or(&[]);
                let msg = NetlinkMessage::<GenlMessage<GenlCtrl>>::deserialize(bytes)
                    .map_err(|e| Error::invalid(t.describe(), format!("unparsable netlink reply: {e}")))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::InnerMessage(g) => {
                            for nla in g.payload.nlas {
                                if let GenlCtrlAttrs::FamilyId(f) = nla {
                                    id = Some(f);
                                }
                            }
                        }
                        NetlinkPayload::Error(e) => match e.code {
                            Some(code) => return Err(Error::kernel(&t, -code.get())),
                            None => {
                                return id.ok_or_else(|| {
                                    Error::invalid(t.describe(), "no family id in the reply".to_string())
                                });
                            }
                        },
                        NetlinkPayload::Done(_) => {
                            return id.ok_or_else(|| {
                                Error::invalid(t.describe(), "no family id in the reply".to_string())
                            });
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    fn encode(&mut self, msg: IpvsMessage, flags: u16) -> (u32, Vec<u8>) {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        genl.finalize();
        let mut nl = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(genl));
        self.seq = self.seq.wrapping_add(1);
        nl.header.flags = flags;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        (self.seq, out)
    }

    /// Sends requests pipelined, [`Ipvs::set_batch`] at a time, and waits for every
    /// acknowledgement; returns the first error (the kernel still processed the rest of its
    /// batch).
    fn exec(&mut self, reqs: Vec<Request>) -> Result<(), Error> {
        let mut first_err: Option<Error> = None;
        let mut reqs = reqs.into_iter().peekable();
        while reqs.peek().is_some() {
            let mut out = Vec::new();
            let mut pending: Vec<(u32, Target)> = Vec::new();
            for r in reqs.by_ref().take(self.batch) {
                let (seq, bytes) = self.encode(r.msg, NLM_F_REQUEST | NLM_F_ACK);
                out.extend_from_slice(&bytes);
                pending.push((seq, r.target));
            }
            let t0 = pending
                .first()
                .map(|p| p.1.clone())
                .unwrap_or(Target::op(Op::Info));
            self.sock.send(&out, 0).map_err(|e| Error::io(&t0, &e))?;
            let mut acked = 0;
            while acked < pending.len() {
                let n = self
                    .sock
                    .recv(&mut &mut self.buf[..], 0)
                    .map_err(|e| Error::io(&t0, &e))?;
                let mut off = 0;
                while off < n {
                    let bytes = self.buf.get(off..n).unwrap_or(&[]);
                    let msg =
                        NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes).map_err(|e| {
                            Error::invalid(t0.describe(), format!("unparsable netlink reply: {e}"))
                        })?;
                    let len = msg.header.length as usize;
                    if let NetlinkPayload::Error(e) = &msg.payload {
                        let seq = msg.header.sequence_number;
                        if let Some((_, target)) = pending.iter().find(|p| p.0 == seq) {
                            acked += 1;
                            if let Some(code) = e.code
                                && first_err.is_none()
                            {
                                first_err = Some(Error::kernel(target, -code.get()));
                            }
                        }
                    }
                    if len == 0 {
                        break;
                    }
                    off += len;
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends one request and collects the replies (a dump when `dump`).
    fn query(&mut self, msg: IpvsMessage, dump: bool, t: &Target) -> Result<Vec<IpvsMessage>, Error> {
        let mut flags = NLM_F_REQUEST | NLM_F_ACK;
        if dump {
            flags |= NLM_F_DUMP;
        }
        let (seq, out) = self.encode(msg, flags);
        self.sock.send(&out, 0).map_err(|e| Error::io(t, &e))?;
        let mut replies = Vec::new();
        loop {
            let n = self
                .sock
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|e| Error::io(t, &e))?;
            let mut off = 0;
            while off < n {
                let bytes = self.buf.get(off..n).unwrap_or(&[]);
                let msg = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(bytes)
                    .map_err(|e| Error::invalid(t.describe(), format!("unparsable netlink reply: {e}")))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => match e.code {
                            Some(code) => return Err(Error::kernel(t, -code.get())),
                            None if !dump => return Ok(replies),
                            None => {}
                        },
                        NetlinkPayload::InnerMessage(m) => replies.push(m.payload),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    fn one(&mut self, cmd: u8, attrs: AttrWriter, target: Target) -> Result<(), Error> {
        self.exec(vec![Request {
            msg: IpvsMessage {
                cmd,
                attrs: attrs.buf,
            },
            target,
        }])
    }

    /// IPVS version and connection table size.
    pub fn info(&mut self) -> Result<Info, Error> {
        let t = Target::op(Op::Info);
        let r = self.query(msg(cmd::GET_INFO, AttrWriter::default()), false, &t)?;
        let a = r.first().map(|m| m.attrs.as_slice()).unwrap_or(&[]);
        Ok(Info {
            version: attr::find(a, attr::info::VERSION)
                .and_then(attr::get_u32)
                .unwrap_or(0),
            conn_tab_size: attr::find(a, attr::info::CONN_TAB_SIZE)
                .and_then(attr::get_u32)
                .unwrap_or(0),
        })
    }

    /// The TCP, TCP-FIN and UDP timeouts.
    pub fn timeouts(&mut self) -> Result<Timeouts, Error> {
        let t = Target::op(Op::GetConfig);
        let r = self.query(msg(cmd::GET_CONFIG, AttrWriter::default()), false, &t)?;
        let a = r.first().map(|m| m.attrs.as_slice()).unwrap_or(&[]);
        let get = |k| attr::find(a, k).and_then(attr::get_u32).unwrap_or(0);
        Ok(Timeouts {
            tcp: get(top::TIMEOUT_TCP),
            tcp_fin: get(top::TIMEOUT_TCP_FIN),
            udp: get(top::TIMEOUT_UDP),
        })
    }

    /// Sets the timeouts (a 0 leaves that one unchanged).
    pub fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), Error> {
        let mut w = AttrWriter::default();
        w.u32(top::TIMEOUT_TCP, t.tcp)
            .u32(top::TIMEOUT_TCP_FIN, t.tcp_fin)
            .u32(top::TIMEOUT_UDP, t.udp);
        self.one(cmd::SET_CONFIG, w, Target::op(Op::SetConfig))
    }

    /// Zeroes the counters of one service, or of every service.
    pub fn zero(&mut self, key: Option<&Key>) -> Result<(), Error> {
        let mut w = AttrWriter::default();
        let mut t = Target::op(Op::Zero);
        if let Some(k) = key {
            w.nested(top::SERVICE, &k.nest());
            t.key = Some(*k);
        }
        self.one(cmd::ZERO, w, t)
    }

    /// Removes every service (`ipvsadm -C`).
    pub fn flush(&mut self) -> Result<(), Error> {
        self.one(cmd::FLUSH, AttrWriter::default(), Target::op(Op::Flush))
    }

    /// Adds a service.
    pub fn add_service(&mut self, s: &Service) -> Result<(), Error> {
        let r = service_request(cmd::NEW_SERVICE, s);
        self.exec(vec![r])
    }

    /// Edits a service in place (`ipvsadm -E`): its connections and destinations stay.
    pub fn edit_service(&mut self, s: &Service) -> Result<(), Error> {
        let r = service_request(cmd::SET_SERVICE, s);
        self.exec(vec![r])
    }

    /// Deletes a service and its destinations.
    pub fn del_service(&mut self, key: &Key) -> Result<(), Error> {
        self.exec(vec![del_service_request(key)])
    }

    /// Adds a destination to a service.
    pub fn add_dest(&mut self, key: &Key, d: &Dest) -> Result<(), Error> {
        self.exec(vec![dest_request(cmd::NEW_DEST, key, d)])
    }

    /// Edits a destination in place (`ipvsadm -e`).
    pub fn edit_dest(&mut self, key: &Key, d: &Dest) -> Result<(), Error> {
        self.exec(vec![dest_request(cmd::SET_DEST, key, d)])
    }

    /// Deletes a destination.
    pub fn del_dest(&mut self, key: &Key, addr: IpAddr, port: u16) -> Result<(), Error> {
        self.exec(vec![del_dest_request(key, addr, port)])
    }

    /// Every service with its counters, in the kernel's order.
    pub fn services(&mut self) -> Result<Vec<ServiceStatus>, Error> {
        let t = Target::op(Op::GetService);
        let r = self.query(msg(cmd::GET_SERVICE, AttrWriter::default()), true, &t)?;
        Ok(r.iter()
            .filter_map(|m| attr::find(&m.attrs, top::SERVICE))
            .filter_map(parse_service)
            .collect())
    }

    /// The destinations of a service with their connection counts, in the kernel's list order
    /// (most recently added first).
    pub fn dests(&mut self, key: &Key) -> Result<Vec<DestStatus>, Error> {
        let mut t = Target::op(Op::GetDest);
        t.key = Some(*key);
        let mut w = AttrWriter::default();
        w.nested(top::SERVICE, &key.nest());
        let r = self.query(msg(cmd::GET_DEST, w), true, &t)?;
        let af = key.af();
        Ok(r.iter()
            .filter_map(|m| attr::find(&m.attrs, top::DEST))
            .filter_map(|v| parse_dest(v, af))
            .collect())
    }

    /// Starts a connection-sync daemon.
    pub fn start_daemon(&mut self, d: &SyncDaemon) -> Result<(), Error> {
        let mut inner = AttrWriter::default();
        inner
            .u32(attr::daemon::STATE, d.state.wire())
            .string(attr::daemon::MCAST_IFN, &d.ifname)
            .u32(attr::daemon::SYNC_ID, u32::from(d.sync_id));
        let mut w = AttrWriter::default();
        w.nested(top::DAEMON, &inner);
        self.one(cmd::NEW_DAEMON, w, Target::op(Op::NewDaemon))
    }

    /// Stops the connection-sync daemon in `state`.
    pub fn stop_daemon(&mut self, state: SyncState) -> Result<(), Error> {
        let mut inner = AttrWriter::default();
        inner.u32(attr::daemon::STATE, state.wire());
        let mut w = AttrWriter::default();
        w.nested(top::DAEMON, &inner);
        self.one(cmd::DEL_DAEMON, w, Target::op(Op::DelDaemon))
    }

    /// The running sync daemons.
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, Error> {
        let t = Target::op(Op::GetDaemon);
        let r = self.query(msg(cmd::GET_DAEMON, AttrWriter::default()), true, &t)?;
        Ok(r.iter()
            .filter_map(|m| attr::find(&m.attrs, top::DAEMON))
            .filter_map(|a| {
                let state = match attr::find(a, attr::daemon::STATE).and_then(attr::get_u32)? {
                    1 => SyncState::Master,
                    2 => SyncState::Backup,
                    _ => return None,
                };
                Some(SyncDaemon {
                    state,
                    ifname: attr::find(a, attr::daemon::MCAST_IFN)
                        .map(attr::get_string)
                        .unwrap_or_default(),
                    sync_id: attr::find(a, attr::daemon::SYNC_ID)
                        .and_then(attr::get_u32)
                        .and_then(|v| u8::try_from(v).ok())
                        .unwrap_or(0),
                })
            })
            .collect())
    }
}

fn msg(cmd: u8, w: AttrWriter) -> IpvsMessage {
    IpvsMessage { cmd, attrs: w.buf }
}

fn service_request(c: u8, s: &Service) -> Request {
    let mut w = AttrWriter::default();
    w.nested(top::SERVICE, &s.nest());
    Request {
        msg: msg(c, w),
        target: Target {
            op: if c == cmd::NEW_SERVICE {
                Op::NewService
            } else {
                Op::SetService
            },
            key: Some(s.key),
            dest: None,
            sched: Some(s.sched.clone()),
        },
    }
}

fn del_service_request(key: &Key) -> Request {
    let mut w = AttrWriter::default();
    w.nested(top::SERVICE, &key.nest());
    Request {
        msg: msg(cmd::DEL_SERVICE, w),
        target: Target {
            op: Op::DelService,
            key: Some(*key),
            dest: None,
            sched: None,
        },
    }
}

fn dest_request(c: u8, key: &Key, d: &Dest) -> Request {
    let mut w = AttrWriter::default();
    w.nested(top::SERVICE, &key.nest()).nested(top::DEST, &d.nest());
    Request {
        msg: msg(c, w),
        target: Target {
            op: if c == cmd::NEW_DEST {
                Op::NewDest
            } else {
                Op::SetDest
            },
            key: Some(*key),
            dest: Some((d.addr, d.port)),
            sched: None,
        },
    }
}

fn del_dest_request(key: &Key, addr: IpAddr, port: u16) -> Request {
    let mut w = AttrWriter::default();
    w.nested(top::SERVICE, &key.nest())
        .nested(top::DEST, &Dest::id_nest(addr, port));
    Request {
        msg: msg(cmd::DEL_DEST, w),
        target: Target {
            op: Op::DelDest,
            key: Some(*key),
            dest: Some((addr, port)),
            sched: None,
        },
    }
}

fn parse_service(a: &[u8]) -> Option<ServiceStatus> {
    use attr::svc;
    let af = attr::find(a, svc::AF).and_then(attr::get_u16)?;
    let family = match af {
        AF_INET => Family::V4,
        AF_INET6 => Family::V6,
        _ => return None,
    };
    let key = match attr::find(a, svc::FWMARK).and_then(attr::get_u32) {
        Some(mark) if mark != 0 => Key::Fwmark { family, mark },
        _ => Key::Addr {
            proto: u8::try_from(attr::find(a, svc::PROTOCOL).and_then(attr::get_u16)?).ok()?,
            addr: parse_addr(af, attr::find(a, svc::ADDR)?)?,
            port: attr::find(a, svc::PORT).and_then(attr::get_be16)?,
        },
    };
    let flags = attr::find(a, svc::FLAGS).and_then(attr::get_u32).unwrap_or(0);
    let wire_mask = attr::find(a, svc::NETMASK).and_then(attr::get_u32).unwrap_or(0);
    let netmask = match family {
        Family::V4 => u32::from_be_bytes(wire_mask.to_ne_bytes()),
        Family::V6 => wire_mask,
    };
    let stats = match attr::find(a, svc::STATS64) {
        Some(v) => Stats::parse(v, true),
        None => attr::find(a, svc::STATS)
            .map(|v| Stats::parse(v, false))
            .unwrap_or_default(),
    };
    Some(ServiceStatus {
        service: Service {
            key,
            sched: attr::find(a, svc::SCHED_NAME)
                .map(attr::get_string)
                .unwrap_or_default(),
            flags: ServiceFlags(flags),
            timeout: attr::find(a, svc::TIMEOUT).and_then(attr::get_u32).unwrap_or(0),
            netmask,
            pe_name: attr::find(a, svc::PE_NAME)
                .map(attr::get_string)
                .filter(|s| !s.is_empty()),
        },
        stats,
    })
}

fn parse_dest(a: &[u8], svc_af: u16) -> Option<DestStatus> {
    use attr::dest;
    let af = attr::find(a, dest::ADDR_FAMILY)
        .and_then(attr::get_u16)
        .unwrap_or(svc_af);
    let fwd = match attr::find(a, dest::FWD_METHOD).and_then(attr::get_u32)? & 0x7 {
        0 => Fwd::Masq,
        1 => Fwd::Local,
        2 => Fwd::Tunnel(Tunnel {
            kind: attr::find(a, dest::TUN_TYPE)
                .and_then(attr::get_u8)
                .and_then(TunKind::from_wire)
                .unwrap_or(TunKind::Ipip),
            port: attr::find(a, dest::TUN_PORT)
                .and_then(attr::get_be16)
                .unwrap_or(0),
            flags: TunFlags(
                attr::find(a, dest::TUN_FLAGS)
                    .and_then(attr::get_u16)
                    .unwrap_or(0),
            ),
        }),
        3 => Fwd::DirectRouting,
        _ => Fwd::Bypass,
    };
    let get = |k| attr::find(a, k).and_then(attr::get_u32).unwrap_or(0);
    let stats = match attr::find(a, dest::STATS64) {
        Some(v) => Stats::parse(v, true),
        None => attr::find(a, dest::STATS)
            .map(|v| Stats::parse(v, false))
            .unwrap_or_default(),
    };
    Some(DestStatus {
        dest: Dest {
            addr: parse_addr(af, attr::find(a, dest::ADDR)?)?,
            port: attr::find(a, dest::PORT).and_then(attr::get_be16)?,
            fwd,
            weight: get(dest::WEIGHT) as i32,
            u_threshold: get(dest::U_THRESH),
            l_threshold: get(dest::L_THRESH),
        },
        active: get(dest::ACTIVE_CONNS),
        inactive: get(dest::INACT_CONNS),
        persistent: get(dest::PERSIST_CONNS),
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_round_trips_through_attributes() {
        let mut s = Service::new(Key::Addr {
            proto: 6,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        });
        s.sched = "sh".into();
        s.flags = ServiceFlags::PERSISTENT.union(ServiceFlags::SCHED1);
        s.timeout = 300;
        s.netmask = 0xffff_ff00;
        let nest = s.nest();
        // The netmask travels in network order: 255.255.255.0.
        let wire = attr::find(&nest.buf, attr::svc::NETMASK).unwrap();
        assert_eq!(wire, &[255, 255, 255, 0]);
        let back = parse_service(&nest.buf).unwrap();
        assert_eq!(back.service, s);
        // FLAGS is `{flags, mask}` with every bit in the mask.
        let f = attr::find(&nest.buf, attr::svc::FLAGS).unwrap();
        assert_eq!(f.len(), 8);
        assert_eq!(&f[4..], &[0xff; 4]);
    }

    #[test]
    fn dest_round_trips_and_takes_the_service_port_for_dr() {
        let key = Key::Addr {
            proto: 17,
            addr: "2001:db8::1".parse().unwrap(),
            port: 53,
        };
        let c = DestConfig::new("2001:db8::2".parse().unwrap(), 5353)
            .forward(Forward::Tunnel(TunnelType::Gue { port: 6080 }))
            .weight(7)
            .thresholds(100, 50);
        let d = Dest::from_config(&key, &c).unwrap();
        assert_eq!(d.port, 53);
        let nest = d.nest();
        assert_eq!(
            attr::find(&nest.buf, attr::dest::TUN_PORT),
            Some(&[0x17, 0xc0][..])
        );
        let back = parse_dest(&nest.buf, AF_INET6).unwrap();
        assert_eq!(back.dest, d);
        let nat = Dest::from_config(&key, &DestConfig::new(c.addr, 5353)).unwrap();
        assert_eq!((nat.port, nat.fwd), (5353, Fwd::Masq));
        let full = DestConfig::new(c.addr, 1).forward(Forward::FullNat);
        let e = Dest::from_config(&key, &full).unwrap_err();
        assert_eq!(
            e.to_string(),
            "destination [2001:db8::2]:1 of service UDP [2001:db8::1]:53: FULLNAT forwarding is not \
             supported by kernel IPVS"
        );
    }

    #[test]
    fn errors_name_object_and_cause() {
        let key = Key::Addr {
            proto: 6,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let r = service_request(cmd::NEW_SERVICE, &{
            let mut s = Service::new(key);
            s.sched = "foo".into();
            s
        });
        assert_eq!(
            Error::kernel(&r.target, libc::ENOENT).to_string(),
            "add service TCP 10.0.0.1:80: scheduler 'foo' not found (no module ip_vs_foo in this \
             kernel?) (ENOENT)"
        );
        assert_eq!(
            Error::kernel(&r.target, libc::EEXIST).to_string(),
            "add service TCP 10.0.0.1:80: the service already exists (EEXIST)"
        );
        let d = dest_request(cmd::NEW_DEST, &key, &Dest::new("10.0.0.2".parse().unwrap(), 80));
        assert_eq!(
            Error::kernel(&d.target, libc::ESRCH).to_string(),
            "add destination 10.0.0.2:80 of service TCP 10.0.0.1:80: the service does not exist (ESRCH)"
        );
        let dd = del_dest_request(&key, "10.0.0.3".parse().unwrap(), 80);
        assert_eq!(
            Error::kernel(&dd.target, libc::ENOENT).to_string(),
            "delete destination 10.0.0.3:80 of service TCP 10.0.0.1:80: the destination does not exist \
             (ENOENT)"
        );
        let e = Error::kernel(&Target::op(Op::Resolve), libc::ENOENT);
        assert!(e.is_no_ipvs());
        assert_eq!(
            e.to_string(),
            "resolve the IPVS netlink family: the kernel has no IPVS (modprobe ip_vs) (ENOENT)"
        );
    }

    #[test]
    fn lbcore_service_maps_like_ipvsadm() {
        let c = ServiceConfig::fwmark(Family::V6, 7)
            .scheduler(Sched::Mh)
            .flags(SchedFlags::FALLBACK.union(SchedFlags::PORT))
            .persistent(lbcore::time::Duration::from_secs(60))
            .netmask(Netmask::V6Prefix(64));
        let s = Service::from_config(&c);
        assert_eq!(s.sched, "mh");
        assert_eq!(
            s.flags,
            ServiceFlags::PERSISTENT
                .union(ServiceFlags::SCHED1)
                .union(ServiceFlags::SCHED2)
        );
        assert_eq!((s.timeout, s.netmask), (60, 64));
        assert_eq!(s.to_config(), Some(c));
        let plain = Service::from_config(&ServiceConfig::tcp("10.0.0.1".parse().unwrap(), 80));
        assert_eq!((plain.timeout, plain.netmask, plain.flags.0), (0, u32::MAX, 0));
    }
}
