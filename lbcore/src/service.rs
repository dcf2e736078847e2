//! Virtual services and their destinations (real servers), as configuration values.
//!
//! A service is keyed like an IPVS service: (protocol, VIP, port), where port 0 means "all ports"
//! (persistent services only, as IPVS requires), or by a firewall mark that the driver attaches
//! to each packet as metadata (the role iptables `MARK` plays for IPVS). A destination carries a
//! weight (0 = quiesced: no new connections, existing ones continue), upper/lower connection
//! thresholds with IPVS overload semantics, and its own forwarding method.
//!
//! These are plain values; the [`crate::Balancer`] validates them when they are added.

use core::net::IpAddr;

use crate::time::Duration;

/// Transport protocol of a service or connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub const fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
    /// The protocol for an IP protocol number, if it is one we balance.
    pub const fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }
    /// `TCP` or `UDP`, as `ipvsadm -Ln` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// How a packet is matched to a virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `-t|-u VIP:port`; port 0 matches every port of the VIP (persistent services only).
    Addr {
        /// TCP or UDP.
        proto: Protocol,
        /// The virtual IP.
        vip: IpAddr,
        /// The virtual port, or 0 for all ports.
        port: u16,
    },
    /// `-f mark`: packets the driver marked with `mark`, of address family `family`, TCP or UDP.
    Fwmark {
        /// Address family of the marked packets.
        family: Family,
        /// The firewall mark.
        mark: u32,
    },
}

impl ServiceKey {
    /// The address family of the service.
    pub const fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { vip, .. } => Family::of(vip),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

/// The IPVS scheduling algorithms, with the kernel's semantics (see [`crate::sched`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sched {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (the IPVS default).
    Wlc,
    /// Locality-based least connections (keyed on destination IP).
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Maglev hashing.
    Mh,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Power of two choices.
    Twos,
}

impl Sched {
    /// Every scheduler, in the order of the kernel's Kconfig.
    pub const ALL: [Sched; 14] = [
        Sched::Rr,
        Sched::Wrr,
        Sched::Lc,
        Sched::Wlc,
        Sched::Lblc,
        Sched::Lblcr,
        Sched::Dh,
        Sched::Sh,
        Sched::Sed,
        Sched::Nq,
        Sched::Mh,
        Sched::Fo,
        Sched::Ovf,
        Sched::Twos,
    ];

    /// The scheduler's IPVS name (`ipvsadm -s NAME`).
    pub const fn name(self) -> &'static str {
        match self {
            Sched::Rr => "rr",
            Sched::Wrr => "wrr",
            Sched::Lc => "lc",
            Sched::Wlc => "wlc",
            Sched::Lblc => "lblc",
            Sched::Lblcr => "lblcr",
            Sched::Dh => "dh",
            Sched::Sh => "sh",
            Sched::Sed => "sed",
            Sched::Nq => "nq",
            Sched::Mh => "mh",
            Sched::Fo => "fo",
            Sched::Ovf => "ovf",
            Sched::Twos => "twos",
        }
    }

    /// The scheduler called `name`, as `ipvsadm -s` and keepalived's `lb_algo` spell it.
    pub fn from_name(name: &str) -> Option<Sched> {
        Sched::ALL.iter().copied().find(|s| s.name() == name)
    }
}

/// Scheduler flags (`ipvsadm -b`): IPVS's SCHED1/SCHED2, aliased per scheduler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags(u8);

impl SchedFlags {
    /// No flags.
    pub const NONE: SchedFlags = SchedFlags(0);
    /// `sh-fallback` / `mh-fallback` (IP_VS_SVC_F_SCHED1): try another destination when the
    /// hashed one is unavailable.
    pub const FALLBACK: SchedFlags = SchedFlags(1);
    /// `sh-port` / `mh-port` (IP_VS_SVC_F_SCHED2): include the source port in the hash key.
    pub const PORT: SchedFlags = SchedFlags(2);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SchedFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The union of two flag sets.
    pub const fn union(self, other: SchedFlags) -> SchedFlags {
        SchedFlags(self.0 | other.0)
    }
    /// The raw bits (1 = fallback, 2 = port).
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// Persistence granularity: the part of the client address that selects a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// An IPv4 netmask, e.g. 255.255.255.0 (`-M`), as a host-order `u32`.
    V4(u32),
    /// An IPv6 prefix length (0..=128).
    V6Prefix(u8),
}

impl Netmask {
    /// The full mask for a family (persistence per client address).
    pub const fn host(family: Family) -> Netmask {
        match family {
            Family::V4 => Netmask::V4(u32::MAX),
            Family::V6 => Netmask::V6Prefix(128),
        }
    }

    /// `addr` masked with this netmask; an address of the other family is returned unchanged.
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(mask), IpAddr::V4(a)) => IpAddr::V4((u32::from(a) & mask).into()),
            (Netmask::V6Prefix(len), IpAddr::V6(a)) => {
                let len = u32::from(len.min(128));
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                IpAddr::V6((u128::from(a) & mask).into())
            }
            _ => addr,
        }
    }
}

/// Persistence (`-p timeout -M netmask`): all connections of a client (masked address) go to
/// the same destination while its template lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// How long a template outlives its last connection.
    pub timeout: Duration,
    /// Granularity applied to the client address.
    pub netmask: Netmask,
}

/// A virtual service's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceConfig {
    /// How packets are matched to the service.
    pub key: ServiceKey,
    /// The scheduling algorithm.
    pub sched: Sched,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`, UDP): every datagram is scheduled on its own and no
    /// connection entry outlives it.
    pub one_packet: bool,
}

impl ServiceConfig {
    /// A TCP service on `vip:port` with the default scheduler (wlc).
    pub const fn tcp(vip: IpAddr, port: u16) -> Self {
        Self::new(ServiceKey::Addr {
            proto: Protocol::Tcp,
            vip,
            port,
        })
    }
    /// A UDP service on `vip:port` with the default scheduler (wlc).
    pub const fn udp(vip: IpAddr, port: u16) -> Self {
        Self::new(ServiceKey::Addr {
            proto: Protocol::Udp,
            vip,
            port,
        })
    }
    /// A firewall-mark service.
    pub const fn fwmark(family: Family, mark: u32) -> Self {
        Self::new(ServiceKey::Fwmark { family, mark })
    }
    /// A service with `key` and the defaults of `ipvsadm -A`: wlc, no flags, not persistent.
    pub const fn new(key: ServiceKey) -> Self {
        ServiceConfig {
            key,
            sched: Sched::Wlc,
            flags: SchedFlags::NONE,
            persistence: None,
            one_packet: false,
        }
    }
    /// Sets the scheduler.
    pub const fn scheduler(mut self, sched: Sched) -> Self {
        self.sched = sched;
        self
    }
    /// Sets the scheduler flags.
    pub const fn flags(mut self, flags: SchedFlags) -> Self {
        self.flags = flags;
        self
    }
    /// Makes the service persistent with per-address granularity.
    pub const fn persistent(mut self, timeout: Duration) -> Self {
        self.persistence = Some(Persistence {
            timeout,
            netmask: Netmask::host(self.key.family()),
        });
        self
    }
    /// Sets the persistence granularity (only meaningful on a persistent service).
    pub const fn netmask(mut self, netmask: Netmask) -> Self {
        if let Some(p) = &mut self.persistence {
            p.netmask = netmask;
        }
        self
    }
    /// Enables one-packet scheduling.
    pub const fn one_packet(mut self, on: bool) -> Self {
        self.one_packet = on;
        self
    }
}

/// Tunnel encapsulation for [`Forward::Tunnel`]. The outer family follows the destination's
/// address: IPIP for IPv4 and IPv6-in-IPv6 for IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// IP-in-IP (IPv4 in IPv4, IPv6 in IPv6).
    Ipip,
    /// Generic UDP Encapsulation (variant 0 header) to this UDP port.
    Gue {
        /// Destination UDP port of the outer header.
        port: u16,
    },
}

/// How packets are sent to a destination (`-g`, `-i`, `-m`, and FULLNAT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forward {
    /// Direct routing (`-g`): only the MACs change; needs Ethernet frames.
    DirectRouting,
    /// Tunnelling (`-i`): the packet is encapsulated to the destination's address.
    Tunnel(TunnelType),
    /// Masquerading (`-m`): destination rewritten inbound, source rewritten on replies.
    Nat,
    /// Full NAT: source and destination rewritten, source from a local address pool.
    FullNat,
}

impl Forward {
    /// The `Forward` column of `ipvsadm -Ln`.
    pub const fn ipvsadm_name(self) -> &'static str {
        match self {
            Forward::DirectRouting => "Route",
            Forward::Tunnel(_) => "Tunnel",
            Forward::Nat => "Masq",
            Forward::FullNat => "FullNat",
        }
    }
    /// Whether replies come back through the balancer (IPVS's OUTPUT direction).
    pub const fn sees_replies(self) -> bool {
        matches!(self, Forward::Nat | Forward::FullNat)
    }
}

/// A destination's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DestConfig {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (ignored for DR/TUN where the virtual port is kept, as IPVS does).
    pub port: u16,
    /// Weight; 0 quiesces the destination.
    pub weight: i32,
    /// Upper connection threshold (0 = none): at `active + inactive >= u_threshold` the
    /// destination is overloaded.
    pub u_threshold: u32,
    /// Lower connection threshold (0 = 3/4 of the upper one) at which overload clears.
    pub l_threshold: u32,
    /// Forwarding method.
    pub forward: Forward,
    /// Ethernet address used as the destination MAC of frames sent to this server: the real
    /// server itself for DR, the next hop for the routed methods when output is Ethernet.
    pub mac: Option<[u8; 6]>,
}

impl DestConfig {
    /// A destination with weight 1, no thresholds, forwarded by NAT (ipvsadm's default is DR,
    /// but DR needs a MAC, so we make the caller say so).
    pub const fn new(addr: IpAddr, port: u16) -> Self {
        DestConfig {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            forward: Forward::Nat,
            mac: None,
        }
    }
    /// Sets the weight.
    pub const fn weight(mut self, weight: i32) -> Self {
        self.weight = weight;
        self
    }
    /// Sets the upper and lower connection thresholds.
    pub const fn thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
    /// Sets the forwarding method.
    pub const fn forward(mut self, forward: Forward) -> Self {
        self.forward = forward;
        self
    }
    /// Direct routing to the server with Ethernet address `mac`.
    pub const fn direct_routing(mut self, mac: [u8; 6]) -> Self {
        self.forward = Forward::DirectRouting;
        self.mac = Some(mac);
        self
    }
    /// Sets the next-hop (or, for DR, the server's) Ethernet address.
    pub const fn mac(mut self, mac: [u8; 6]) -> Self {
        self.mac = Some(mac);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn netmask_applies_per_family() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(
            Netmask::V4(0xffff_ff00).apply(a),
            IpAddr::V4(Ipv4Addr::new(10, 1, 2, 0))
        );
        let b: IpAddr = "2001:db8:1:2::5".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(
            Netmask::V6Prefix(48).apply(b),
            IpAddr::V6("2001:db8:1::".parse().unwrap())
        );
        assert_eq!(Netmask::V6Prefix(0).apply(b), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(Netmask::V4(0).apply(b), b);
    }

    #[test]
    fn scheduler_names_round_trip() {
        for s in Sched::ALL {
            assert_eq!(Sched::from_name(s.name()), Some(s));
        }
        assert_eq!(Sched::from_name("bogus"), None);
    }
}
