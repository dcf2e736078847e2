//! Configuration values and enums: `Service`, `Dest`, `Scheduler`, `Forward`, `TunnelType`,
//! `Protocol`, `Family`, `Link`. Each wraps its core counterpart one to one; validation is the
//! core's (when the value is added to a balancer), except for what a Python value cannot even
//! express in core terms (an address that does not parse, a prefix length over 128).

use core::net::{IpAddr, Ipv4Addr};

use lbcore::service::{
    DestConfig, Family as CoreFamily, Forward as CoreForward, Netmask, Persistence, Protocol as CoreProtocol,
    Sched, SchedFlags, ServiceConfig, ServiceKey, TunnelType as CoreTunnelType,
};
use lbcore::wire::LinkKind;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{ip, mac_str, opt_mac, seconds};

/// Transport protocol of a service.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    #[pyo3(name = "TCP")]
    Tcp,
    #[pyo3(name = "UDP")]
    Udp,
}

impl Protocol {
    pub fn core(self) -> CoreProtocol {
        match self {
            Protocol::Tcp => CoreProtocol::Tcp,
            Protocol::Udp => CoreProtocol::Udp,
        }
    }
    pub fn of(p: CoreProtocol) -> Self {
        match p {
            CoreProtocol::Tcp => Protocol::Tcp,
            CoreProtocol::Udp => Protocol::Udp,
        }
    }
}

/// Address family.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn core(self) -> CoreFamily {
        match self {
            Family::V4 => CoreFamily::V4,
            Family::V6 => CoreFamily::V6,
        }
    }
    pub fn of(f: CoreFamily) -> Self {
        match f {
            CoreFamily::V4 => Family::V4,
            CoreFamily::V6 => Family::V6,
        }
    }
}

/// What a frame's first byte is: an Ethernet header, or a bare IP packet (TUN devices).
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    #[pyo3(name = "ETHERNET")]
    Ethernet,
    #[pyo3(name = "IP")]
    Ip,
}

impl Link {
    pub fn core(self) -> LinkKind {
        match self {
            Link::Ethernet => LinkKind::Ethernet,
            Link::Ip => LinkKind::Ip,
        }
    }
    pub fn of(l: LinkKind) -> Self {
        match l {
            LinkKind::Ethernet => Link::Ethernet,
            LinkKind::Ip => Link::Ip,
        }
    }
}

/// The IPVS schedulers (`ipvsadm -s NAME`).
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheduler {
    #[pyo3(name = "RR")]
    Rr,
    #[pyo3(name = "WRR")]
    Wrr,
    #[pyo3(name = "LC")]
    Lc,
    #[pyo3(name = "WLC")]
    Wlc,
    #[pyo3(name = "LBLC")]
    Lblc,
    #[pyo3(name = "LBLCR")]
    Lblcr,
    #[pyo3(name = "DH")]
    Dh,
    #[pyo3(name = "SH")]
    Sh,
    #[pyo3(name = "SED")]
    Sed,
    #[pyo3(name = "NQ")]
    Nq,
    #[pyo3(name = "MH")]
    Mh,
    #[pyo3(name = "FO")]
    Fo,
    #[pyo3(name = "OVF")]
    Ovf,
    #[pyo3(name = "TWOS")]
    Twos,
}

impl Scheduler {
    pub fn core(self) -> Sched {
        match self {
            Scheduler::Rr => Sched::Rr,
            Scheduler::Wrr => Sched::Wrr,
            Scheduler::Lc => Sched::Lc,
            Scheduler::Wlc => Sched::Wlc,
            Scheduler::Lblc => Sched::Lblc,
            Scheduler::Lblcr => Sched::Lblcr,
            Scheduler::Dh => Sched::Dh,
            Scheduler::Sh => Sched::Sh,
            Scheduler::Sed => Sched::Sed,
            Scheduler::Nq => Sched::Nq,
            Scheduler::Mh => Sched::Mh,
            Scheduler::Fo => Sched::Fo,
            Scheduler::Ovf => Sched::Ovf,
            Scheduler::Twos => Sched::Twos,
        }
    }
    pub fn of(s: Sched) -> Self {
        match s {
            Sched::Rr => Scheduler::Rr,
            Sched::Wrr => Scheduler::Wrr,
            Sched::Lc => Scheduler::Lc,
            Sched::Wlc => Scheduler::Wlc,
            Sched::Lblc => Scheduler::Lblc,
            Sched::Lblcr => Scheduler::Lblcr,
            Sched::Dh => Scheduler::Dh,
            Sched::Sh => Scheduler::Sh,
            Sched::Sed => Scheduler::Sed,
            Sched::Nq => Scheduler::Nq,
            Sched::Mh => Scheduler::Mh,
            Sched::Fo => Scheduler::Fo,
            Sched::Ovf => Scheduler::Ovf,
            Sched::Twos => Scheduler::Twos,
        }
    }

    /// A `Scheduler` or its ipvsadm name (`"wlc"`).
    pub fn extract(obj: &Bound<'_, PyAny>) -> PyResult<Sched> {
        if let Ok(s) = obj.extract::<Scheduler>() {
            return Ok(s.core());
        }
        let name: String = obj
            .extract()
            .map_err(|_| PyTypeError::new_err("scheduler must be a Scheduler or its name, e.g. 'wlc'"))?;
        Sched::from_name(&name).ok_or_else(|| PyValueError::new_err(format!("unknown scheduler {name:?}")))
    }
}

#[pymethods]
impl Scheduler {
    /// The scheduler with this ipvsadm name (`"wlc"`); `ValueError` if there is none.
    #[staticmethod]
    fn from_name(name: &str) -> PyResult<Scheduler> {
        Sched::from_name(name)
            .map(Scheduler::of)
            .ok_or_else(|| PyValueError::new_err(format!("unknown scheduler {name:?}")))
    }

    /// The ipvsadm name (`"wlc"`).
    #[getter]
    fn ipvs_name(&self) -> &'static str {
        self.core().name()
    }
}

/// Forwarding method of a destination (`-g`, `-i`, `-m`, FULLNAT).
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forward {
    /// Direct routing: only the MACs change.
    #[pyo3(name = "DR")]
    Dr,
    /// IP-in-IP or GUE tunnelling.
    #[pyo3(name = "TUNNEL")]
    Tunnel,
    /// Masquerading.
    #[pyo3(name = "NAT")]
    Nat,
    /// Full NAT (source from the balancer's local addresses).
    #[pyo3(name = "FULLNAT")]
    FullNat,
}

#[pymethods]
impl Forward {
    /// The `Forward` column of `ipvsadm -Ln` (`Route`, `Tunnel`, `Masq`, `FullNat`).
    #[getter]
    fn ipvs_name(&self) -> &'static str {
        match self {
            Forward::Dr => "Route",
            Forward::Tunnel => "Tunnel",
            Forward::Nat => "Masq",
            Forward::FullNat => "FullNat",
        }
    }
}

/// Tunnel encapsulation of `Forward.TUNNEL` destinations.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// IP-in-IP (IPv4 in IPv4, IPv6 in IPv6).
    #[pyo3(name = "IPIP")]
    Ipip,
    /// Generic UDP Encapsulation to `gue_port`.
    #[pyo3(name = "GUE")]
    Gue,
}

fn sched_flags(fallback: bool, port: bool) -> SchedFlags {
    let mut f = SchedFlags::NONE;
    if fallback {
        f = f.union(SchedFlags::FALLBACK);
    }
    if port {
        f = f.union(SchedFlags::PORT);
    }
    f
}

fn netmask(obj: Option<&Bound<'_, PyAny>>, family: CoreFamily) -> PyResult<Netmask> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Netmask::host(family));
    };
    if let Ok(len) = obj.extract::<u8>() {
        return match family {
            CoreFamily::V4 if len <= 32 => Ok(Netmask::V4(if len == 0 { 0 } else { u32::MAX << (32 - len) })),
            CoreFamily::V6 if len <= 128 => Ok(Netmask::V6Prefix(len)),
            _ => Err(PyValueError::new_err(format!(
                "netmask prefix length {len} too long"
            ))),
        };
    }
    match (family, obj.extract::<String>()) {
        (CoreFamily::V4, Ok(s)) => s
            .parse::<Ipv4Addr>()
            .map(|m| Netmask::V4(u32::from(m)))
            .map_err(|_| PyValueError::new_err(format!("invalid IPv4 netmask {s:?}"))),
        _ => Err(PyTypeError::new_err(
            "netmask is a prefix length (int), or for IPv4 a dotted mask like '255.255.255.0'",
        )),
    }
}

/// A virtual service's configuration (`ipvsadm -A`), as an immutable value.
#[pyclass(frozen, eq, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Service {
    pub cfg: ServiceConfig,
}

/// The settings a service has besides its key.
struct ServiceOpts<'a, 'py> {
    scheduler: Option<&'a Bound<'py, PyAny>>,
    persistence: Option<f64>,
    netmask: Option<&'a Bound<'py, PyAny>>,
    sh_fallback: bool,
    sh_port: bool,
    one_packet: bool,
}

impl Service {
    fn build(key: ServiceKey, o: ServiceOpts<'_, '_>) -> PyResult<Self> {
        let mut cfg = ServiceConfig::new(key).flags(sched_flags(o.sh_fallback, o.sh_port));
        if let Some(s) = o.scheduler.filter(|s| !s.is_none()) {
            cfg = cfg.scheduler(Scheduler::extract(s)?);
        }
        if let Some(p) = o.persistence {
            let timeout = seconds(p, "persistence")?;
            cfg.persistence = Some(Persistence {
                timeout,
                netmask: netmask(o.netmask, key.family())?,
            });
        } else if o.netmask.is_some_and(|n| !n.is_none()) {
            return Err(PyValueError::new_err("netmask needs persistence"));
        }
        Ok(Service {
            cfg: cfg.one_packet(o.one_packet),
        })
    }

    fn key_text(&self) -> String {
        match self.cfg.key {
            ServiceKey::Addr { proto, vip, port } => match vip {
                IpAddr::V4(v) => format!("{} {v}:{port}", proto.name()),
                IpAddr::V6(v) => format!("{} [{v}]:{port}", proto.name()),
            },
            ServiceKey::Fwmark { family, mark } => format!("FWM {mark} {}", Family::of(family).name()),
        }
    }
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

#[pymethods]
impl Service {
    /// A service on `vip:port` (port 0: every port, persistent services only).
    #[new]
    #[pyo3(signature = (vip, port, protocol = Protocol::Tcp, *, scheduler = None, persistence = None,
        netmask = None, sh_fallback = false, sh_port = false, one_packet = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        vip: &Bound<'_, PyAny>,
        port: u16,
        protocol: Protocol,
        scheduler: Option<&Bound<'_, PyAny>>,
        persistence: Option<f64>,
        netmask: Option<&Bound<'_, PyAny>>,
        sh_fallback: bool,
        sh_port: bool,
        one_packet: bool,
    ) -> PyResult<Self> {
        let key = ServiceKey::Addr {
            proto: protocol.core(),
            vip: ip(vip)?,
            port,
        };
        Self::build(
            key,
            ServiceOpts {
                scheduler,
                persistence,
                netmask,
                sh_fallback,
                sh_port,
                one_packet,
            },
        )
    }

    /// A TCP service (`ipvsadm -A -t vip:port`).
    #[staticmethod]
    #[pyo3(signature = (vip, port, *, scheduler = None, persistence = None, netmask = None,
        sh_fallback = false, sh_port = false))]
    fn tcp(
        vip: &Bound<'_, PyAny>,
        port: u16,
        scheduler: Option<&Bound<'_, PyAny>>,
        persistence: Option<f64>,
        netmask: Option<&Bound<'_, PyAny>>,
        sh_fallback: bool,
        sh_port: bool,
    ) -> PyResult<Self> {
        Self::new(
            vip,
            port,
            Protocol::Tcp,
            scheduler,
            persistence,
            netmask,
            sh_fallback,
            sh_port,
            false,
        )
    }

    /// A UDP service (`ipvsadm -A -u vip:port`).
    #[staticmethod]
    #[pyo3(signature = (vip, port, *, scheduler = None, persistence = None, netmask = None,
        sh_fallback = false, sh_port = false, one_packet = false))]
    #[allow(clippy::too_many_arguments)]
    fn udp(
        vip: &Bound<'_, PyAny>,
        port: u16,
        scheduler: Option<&Bound<'_, PyAny>>,
        persistence: Option<f64>,
        netmask: Option<&Bound<'_, PyAny>>,
        sh_fallback: bool,
        sh_port: bool,
        one_packet: bool,
    ) -> PyResult<Self> {
        Self::new(
            vip,
            port,
            Protocol::Udp,
            scheduler,
            persistence,
            netmask,
            sh_fallback,
            sh_port,
            one_packet,
        )
    }

    /// A firewall-mark service (`ipvsadm -A -f mark`): matches packets given `fwmark=mark`.
    #[staticmethod]
    #[pyo3(signature = (mark, family = Family::V4, *, scheduler = None, persistence = None,
        netmask = None, sh_fallback = false, sh_port = false))]
    #[allow(clippy::too_many_arguments)]
    fn fwmark(
        mark: u32,
        family: Family,
        scheduler: Option<&Bound<'_, PyAny>>,
        persistence: Option<f64>,
        netmask: Option<&Bound<'_, PyAny>>,
        sh_fallback: bool,
        sh_port: bool,
    ) -> PyResult<Self> {
        Self::build(
            ServiceKey::Fwmark {
                family: family.core(),
                mark,
            },
            ServiceOpts {
                scheduler,
                persistence,
                netmask,
                sh_fallback,
                sh_port,
                one_packet: false,
            },
        )
    }

    /// A copy with the given settings changed (the key cannot change: that is another service).
    /// `persistence=0` makes the copy not persistent.
    #[pyo3(signature = (*, scheduler = None, persistence = None, netmask = None, sh_fallback = None,
        sh_port = None, one_packet = None))]
    fn replace(
        &self,
        scheduler: Option<&Bound<'_, PyAny>>,
        persistence: Option<f64>,
        netmask: Option<&Bound<'_, PyAny>>,
        sh_fallback: Option<bool>,
        sh_port: Option<bool>,
        one_packet: Option<bool>,
    ) -> PyResult<Self> {
        let mut cfg = self.cfg;
        if let Some(s) = scheduler.filter(|s| !s.is_none()) {
            cfg.sched = Scheduler::extract(s)?;
        }
        let fallback = sh_fallback.unwrap_or(cfg.flags.contains(SchedFlags::FALLBACK));
        let port = sh_port.unwrap_or(cfg.flags.contains(SchedFlags::PORT));
        cfg.flags = sched_flags(fallback, port);
        match persistence {
            Some(0.0) => cfg.persistence = None,
            Some(p) => {
                let timeout = seconds(p, "persistence")?;
                let mask = match (netmask, cfg.persistence) {
                    (Some(n), _) if !n.is_none() => self::netmask(Some(n), cfg.key.family())?,
                    (_, Some(old)) => old.netmask,
                    _ => Netmask::host(cfg.key.family()),
                };
                cfg.persistence = Some(Persistence {
                    timeout,
                    netmask: mask,
                });
            }
            None => {
                if let Some(n) = netmask.filter(|n| !n.is_none()) {
                    let Some(p) = &mut cfg.persistence else {
                        return Err(PyValueError::new_err("netmask needs persistence"));
                    };
                    p.netmask = self::netmask(Some(n), cfg.key.family())?;
                }
            }
        }
        if let Some(o) = one_packet {
            cfg.one_packet = o;
        }
        Ok(Service { cfg })
    }

    /// `TCP` or `UDP`; `None` for a firewall-mark service.
    #[getter]
    fn protocol(&self) -> Option<Protocol> {
        match self.cfg.key {
            ServiceKey::Addr { proto, .. } => Some(Protocol::of(proto)),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// The virtual IP; `None` for a firewall-mark service.
    #[getter]
    fn vip(&self) -> Option<String> {
        match self.cfg.key {
            ServiceKey::Addr { vip, .. } => Some(vip.to_string()),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// The virtual port (0: every port); `None` for a firewall-mark service.
    #[getter]
    fn port(&self) -> Option<u16> {
        match self.cfg.key {
            ServiceKey::Addr { port, .. } => Some(port),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// The firewall mark; `None` for an address service.
    #[getter]
    fn mark(&self) -> Option<u32> {
        match self.cfg.key {
            ServiceKey::Fwmark { mark, .. } => Some(mark),
            ServiceKey::Addr { .. } => None,
        }
    }

    #[getter]
    fn family(&self) -> Family {
        Family::of(self.cfg.key.family())
    }

    #[getter]
    fn scheduler(&self) -> Scheduler {
        Scheduler::of(self.cfg.sched)
    }

    /// Persistence timeout in seconds; `None` when not persistent.
    #[getter]
    fn persistence(&self) -> Option<f64> {
        self.cfg.persistence.map(|p| p.timeout.as_secs_f64())
    }

    /// Persistence granularity: a dotted mask for IPv4, a prefix length for IPv6; `None` when
    /// not persistent.
    #[getter]
    fn netmask(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(match self.cfg.persistence.map(|p| p.netmask) {
            Some(Netmask::V4(m)) => Some(
                Ipv4Addr::from(m)
                    .to_string()
                    .into_pyobject(py)?
                    .into_any()
                    .unbind(),
            ),
            Some(Netmask::V6Prefix(l)) => Some(l.into_pyobject(py)?.into_any().unbind()),
            None => None,
        })
    }

    #[getter]
    fn sh_fallback(&self) -> bool {
        self.cfg.flags.contains(SchedFlags::FALLBACK)
    }

    #[getter]
    fn sh_port(&self) -> bool {
        self.cfg.flags.contains(SchedFlags::PORT)
    }

    #[getter]
    fn one_packet(&self) -> bool {
        self.cfg.one_packet
    }

    pub fn __repr__(&self) -> String {
        let mut s = format!("Service({}, scheduler={}", self.key_text(), self.cfg.sched.name());
        if let Some(p) = self.cfg.persistence {
            s.push_str(&format!(", persistence={}", p.timeout.as_secs_f64()));
        }
        if self.cfg.flags != SchedFlags::NONE {
            s.push_str(&format!(", flags={}", self.cfg.flags.bits()));
        }
        if self.cfg.one_packet {
            s.push_str(", one_packet=True");
        }
        s.push(')');
        s
    }
}

/// A destination's (real server's) configuration (`ipvsadm -a`), as an immutable value.
#[pyclass(frozen, eq, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dest {
    pub cfg: DestConfig,
}

#[pymethods]
impl Dest {
    /// A real server. `forward=Forward.DR` needs `mac` (the server's); for the routed methods
    /// `mac` is the next hop's, when output is Ethernet. `port` is ignored for DR and TUNNEL
    /// (the virtual port is kept, as in IPVS).
    #[new]
    #[pyo3(signature = (addr, port, *, weight = 1, forward = Forward::Nat, mac = None,
        u_threshold = 0, l_threshold = 0, tunnel = TunnelType::Ipip, gue_port = 0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        addr: &Bound<'_, PyAny>,
        port: u16,
        weight: i32,
        forward: Forward,
        mac: Option<&Bound<'_, PyAny>>,
        u_threshold: u32,
        l_threshold: u32,
        tunnel: TunnelType,
        gue_port: u16,
    ) -> PyResult<Self> {
        let fwd = match (forward, tunnel) {
            (Forward::Dr, _) => CoreForward::DirectRouting,
            (Forward::Nat, _) => CoreForward::Nat,
            (Forward::FullNat, _) => CoreForward::FullNat,
            (Forward::Tunnel, TunnelType::Ipip) => CoreForward::Tunnel(CoreTunnelType::Ipip),
            (Forward::Tunnel, TunnelType::Gue) => {
                if gue_port == 0 {
                    return Err(PyValueError::new_err("a GUE tunnel needs gue_port"));
                }
                CoreForward::Tunnel(CoreTunnelType::Gue { port: gue_port })
            }
        };
        let mut cfg = DestConfig::new(ip(addr)?, port)
            .weight(weight)
            .thresholds(u_threshold, l_threshold)
            .forward(fwd);
        cfg.mac = opt_mac(mac)?;
        Ok(Dest { cfg })
    }

    /// A copy with the given settings changed (address and port identify the destination and
    /// cannot change).
    #[pyo3(signature = (*, weight = None, u_threshold = None, l_threshold = None, mac = None))]
    fn replace(
        &self,
        weight: Option<i32>,
        u_threshold: Option<u32>,
        l_threshold: Option<u32>,
        mac: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut cfg = self.cfg;
        if let Some(w) = weight {
            cfg.weight = w;
        }
        if let Some(u) = u_threshold {
            cfg.u_threshold = u;
        }
        if let Some(l) = l_threshold {
            cfg.l_threshold = l;
        }
        if let Some(m) = opt_mac(mac)? {
            cfg.mac = Some(m);
        }
        Ok(Dest { cfg })
    }

    #[getter]
    fn addr(&self) -> String {
        self.cfg.addr.to_string()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.cfg.port
    }

    #[getter]
    fn weight(&self) -> i32 {
        self.cfg.weight
    }

    #[getter]
    fn forward(&self) -> Forward {
        match self.cfg.forward {
            CoreForward::DirectRouting => Forward::Dr,
            CoreForward::Tunnel(_) => Forward::Tunnel,
            CoreForward::Nat => Forward::Nat,
            CoreForward::FullNat => Forward::FullNat,
        }
    }

    /// The tunnel type of a `Forward.TUNNEL` destination, else `None`.
    #[getter]
    fn tunnel(&self) -> Option<TunnelType> {
        match self.cfg.forward {
            CoreForward::Tunnel(CoreTunnelType::Ipip) => Some(TunnelType::Ipip),
            CoreForward::Tunnel(CoreTunnelType::Gue { .. }) => Some(TunnelType::Gue),
            _ => None,
        }
    }

    /// The GUE port of a GUE tunnel destination, else `None`.
    #[getter]
    fn gue_port(&self) -> Option<u16> {
        match self.cfg.forward {
            CoreForward::Tunnel(CoreTunnelType::Gue { port }) => Some(port),
            _ => None,
        }
    }

    #[getter]
    fn mac(&self) -> Option<String> {
        self.cfg.mac.map(mac_str)
    }

    #[getter]
    fn u_threshold(&self) -> u32 {
        self.cfg.u_threshold
    }

    #[getter]
    fn l_threshold(&self) -> u32 {
        self.cfg.l_threshold
    }

    fn __repr__(&self) -> String {
        let addr = match self.cfg.addr {
            IpAddr::V4(a) => format!("{a}:{}", self.cfg.port),
            IpAddr::V6(a) => format!("[{a}]:{}", self.cfg.port),
        };
        let mut s = format!(
            "Dest({addr}, {}, weight={}",
            self.cfg.forward.ipvsadm_name(),
            self.cfg.weight
        );
        if let Some(m) = self.cfg.mac {
            s.push_str(&format!(", mac={}", mac_str(m)));
        }
        if self.cfg.u_threshold != 0 || self.cfg.l_threshold != 0 {
            s.push_str(&format!(
                ", u_threshold={}, l_threshold={}",
                self.cfg.u_threshold, self.cfg.l_threshold
            ));
        }
        s.push(')');
        s
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Protocol>()?;
    m.add_class::<Family>()?;
    m.add_class::<Link>()?;
    m.add_class::<Scheduler>()?;
    m.add_class::<Forward>()?;
    m.add_class::<TunnelType>()?;
    m.add_class::<Service>()?;
    m.add_class::<Dest>()?;
    Ok(())
}
