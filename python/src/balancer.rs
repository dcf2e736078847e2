//! `Balancer` and `Verdict`.
//!
//! # Threads and the GIL
//! `process_batch` releases the GIL while the core works, so the balancer's state must be
//! reachable without the GIL. It lives behind a mutex ([`Locked`]) rather than in an
//! `unsendable` class: an unsendable object could not be handed to another thread at all, and
//! pyo3's own borrow flag would make a second thread's call during a batch fail with "already
//! borrowed" instead of waiting its turn. With the mutex, calls from several threads are
//! serialised (a waiting thread waits detached from the interpreter, so the thread holding the
//! lock can always re-attach and finish), and other Python threads run freely while a batch is
//! being processed.

use core::net::IpAddr;

use lbcore::balancer::{
    Balancer as CoreBalancer, BalancerConfig, DestId, DropReason, Frame, RxMeta, ServiceId,
    Verdict as CoreVerdict,
};
use lbcore::render::{self, ListFormat, ListOptions};
use lbcore::stats::{Counters, Rates};
use lbcore::time::Instant;
use lbcore::wire::HEADROOM;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::convert::{Locked, mac_str, now_or_clock, opt_mac, seconds, with_packet};
use crate::errors::{NoSuchDestError, NoSuchServiceError, config_error};
use crate::pcap;
use crate::types::{Dest, Link, Service};

/// What happened to a packet.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerdictKind {
    /// Send the returned bytes (`Verdict.link` says whether they are an Ethernet frame or an
    /// IP packet to route to `Verdict.next_hop`).
    #[pyo3(name = "FORWARD")]
    Forward,
    /// Dropped (and counted) for `Verdict.reason`.
    #[pyo3(name = "DROP")]
    Drop,
    /// Not the balancer's: hand it to the host unchanged.
    #[pyo3(name = "PASS")]
    Pass,
    /// Used up by the core; nothing to send.
    #[pyo3(name = "CONSUMED")]
    Consumed,
}

/// The verdict on one packet: `kind`, and for a forward the destination, for a drop the
/// reason. Immutable; equal verdicts compare equal.
#[pyclass(frozen, eq, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    v: CoreVerdict,
    /// The destination's address and port (resolved when the verdict was made).
    dest: Option<(IpAddr, u16)>,
}

impl Verdict {
    fn new(lb: &CoreBalancer<'_>, v: CoreVerdict) -> Self {
        let dest = match v {
            CoreVerdict::Forward(to) => lb.dest_info(to.dest).map(|d| (d.config.addr, d.config.port)),
            _ => None,
        };
        Verdict { v, dest }
    }
}

#[pymethods]
impl Verdict {
    #[getter]
    fn kind(&self) -> VerdictKind {
        match self.v {
            CoreVerdict::Forward(_) => VerdictKind::Forward,
            CoreVerdict::Drop(_) => VerdictKind::Drop,
            CoreVerdict::Pass => VerdictKind::Pass,
            CoreVerdict::Consumed => VerdictKind::Consumed,
        }
    }

    /// The drop reason's name (as in `Balancer.stats()["drops"]`, e.g. `"no_destination"`),
    /// for a drop; else `None`.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        match self.v {
            CoreVerdict::Drop(r) => Some(r.name()),
            _ => None,
        }
    }

    /// The IP next hop (real server, tunnel endpoint or client) of a forward; else `None`.
    #[getter]
    fn next_hop(&self) -> Option<String> {
        match self.v {
            CoreVerdict::Forward(to) => Some(to.next_hop.to_string()),
            _ => None,
        }
    }

    /// Whether a forwarded packet is an Ethernet frame or an IP packet; else `None`.
    #[getter]
    fn link(&self) -> Option<Link> {
        match self.v {
            CoreVerdict::Forward(to) => Some(Link::of(to.link)),
            _ => None,
        }
    }

    /// `(address, port)` of the destination a forwarded packet's connection is bound to.
    #[getter]
    fn dest(&self) -> Option<(String, u16)> {
        self.dest.map(|(a, p)| (a.to_string(), p))
    }

    /// The id of the service (as `Balancer.add_service` returned it) of a forward.
    #[getter]
    fn service(&self) -> Option<u16> {
        match self.v {
            CoreVerdict::Forward(to) => Some(to.dest.svc.0),
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        match self.v {
            CoreVerdict::Forward(to) => {
                let dest = match self.dest {
                    Some((IpAddr::V6(a), p)) => format!("[{a}]:{p}"),
                    Some((a, p)) => format!("{a}:{p}"),
                    None => "?".to_owned(),
                };
                let link = match to.link {
                    lbcore::wire::LinkKind::Ethernet => "ETHERNET",
                    lbcore::wire::LinkKind::Ip => "IP",
                };
                format!(
                    "Verdict(FORWARD, dest={dest}, next_hop={}, link={link})",
                    to.next_hop
                )
            }
            CoreVerdict::Drop(r) => format!("Verdict(DROP, reason={})", r.name()),
            CoreVerdict::Pass => "Verdict(PASS)".to_owned(),
            CoreVerdict::Consumed => "Verdict(CONSUMED)".to_owned(),
        }
    }
}

/// The balancer's state, used with or without the GIL (behind [`Locked`]).
struct Inner {
    lb: CoreBalancer<'static>,
    /// The latest time given; the core's clock never goes backwards, so neither does ours.
    last_now: Instant,
    /// Receive buffers, reused from call to call (grown as needed, never shrunk).
    frames: Vec<Frame<Vec<u8>>>,
    verdicts: Vec<CoreVerdict>,
}

impl Inner {
    fn clamp(&mut self, now: Instant) -> Instant {
        self.last_now = self.last_now.max(now);
        self.last_now
    }
}

/// Copies `packet` into `frame` after [`HEADROOM`] bytes of headroom.
fn fill(frame: &mut Frame<Vec<u8>>, packet: &[u8], meta: RxMeta) {
    frame.buf.resize(HEADROOM + packet.len(), 0);
    frame.buf[HEADROOM..].copy_from_slice(packet);
    frame.start = HEADROOM;
    frame.len = packet.len();
    frame.meta = meta;
}

fn empty_frame() -> Frame<Vec<u8>> {
    Frame {
        buf: Vec::new(),
        start: HEADROOM,
        len: 0,
        meta: RxMeta::ETHERNET,
    }
}

/// An IPVS-style Layer-4 load balancer: virtual services, real servers, connection tracking,
/// rewriting. Sans-IO: packets go in as bytes and come back rewritten with a verdict; time is
/// passed in as nanoseconds (`now`; `None` means `time.monotonic_ns()`).
#[pyclass(frozen, module = "lbcore")]
pub struct Balancer {
    inner: Locked<Inner>,
}

fn service_id(lb: &CoreBalancer<'_>, service: &Bound<'_, PyAny>) -> PyResult<ServiceId> {
    if let Ok(s) = service.cast::<Service>() {
        let svc = s.get();
        return lb
            .find_service(&svc.cfg.key)
            .ok_or_else(|| NoSuchServiceError::new_err(format!("no such service: {}", svc.__repr__())));
    }
    if let Ok(id) = service.extract::<u16>() {
        let id = ServiceId(id);
        return match lb.service_config(id) {
            Some(_) => Ok(id),
            None => Err(NoSuchServiceError::new_err(format!(
                "no service with id {}",
                id.0
            ))),
        };
    }
    Err(PyTypeError::new_err(
        "a service is given as a Service (matched by its key) or the id add_service returned",
    ))
}

fn dest_id(lb: &CoreBalancer<'_>, svc: ServiceId, addr: IpAddr, port: u16) -> PyResult<DestId> {
    lb.find_dest(svc, addr, port)
        .ok_or_else(|| NoSuchDestError::new_err(format!("no destination {addr} port {port} in this service")))
}

fn counters_dict<'py>(py: Python<'py>, d: &Bound<'py, PyDict>, c: &Counters) -> PyResult<()> {
    d.set_item("conns", c.conns)?;
    d.set_item("inpkts", c.inpkts)?;
    d.set_item("outpkts", c.outpkts)?;
    d.set_item("inbytes", c.inbytes)?;
    d.set_item("outbytes", c.outbytes)?;
    let _ = py;
    Ok(())
}

fn rates_dict<'py>(py: Python<'py>, r: &Rates) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("cps", r.cps)?;
    d.set_item("inpps", r.inpps)?;
    d.set_item("outpps", r.outpps)?;
    d.set_item("inbps", r.inbps)?;
    d.set_item("outbps", r.outbps)?;
    Ok(d)
}

impl Balancer {
    /// Builds the `(verdict, bytes)` list for the first `n` frames, reusing one `Verdict`
    /// object for runs of equal verdicts.
    fn results<'py>(py: Python<'py>, inner: &Inner, n: usize) -> PyResult<Bound<'py, PyList>> {
        let mut last: Option<(CoreVerdict, Bound<'py, Verdict>)> = None;
        let mut items = Vec::with_capacity(n);
        for (frame, &v) in inner.frames[..n].iter().zip(&inner.verdicts[..n]) {
            let obj = match &last {
                Some((lv, obj)) if *lv == v => obj.clone(),
                _ => {
                    let obj = Bound::new(py, Verdict::new(&inner.lb, v))?;
                    last = Some((v, obj.clone()));
                    obj
                }
            };
            let bytes = PyBytes::new(py, frame.data());
            items.push(PyTuple::new(py, [obj.into_any(), bytes.into_any()])?);
        }
        PyList::new(py, items)
    }
}

#[pymethods]
impl Balancer {
    /// A balancer with tables sized once, here.
    ///
    /// `mac` is ours (source of the frames we send); `gateway_mac` the next hop towards
    /// clients for NAT/FULLNAT replies (without it replies come back as IP packets);
    /// `tunnel_source_v4/v6` the outer source of tunnels; `local_addrs` and `local_ports` the
    /// FULLNAT source pool.
    #[new]
    #[pyo3(signature = (*, mac = None, conn_capacity = 65536, max_services = 64, seed = None,
        gateway_mac = None, tunnel_source_v4 = None, tunnel_source_v6 = None, local_addrs = None,
        local_ports = (1024, 65535), expire_nodest_conn = false, expire_quiescent_template = false,
        conn_reuse_mode = 1))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        mac: Option<&Bound<'_, PyAny>>,
        conn_capacity: usize,
        max_services: usize,
        seed: Option<u64>,
        gateway_mac: Option<&Bound<'_, PyAny>>,
        tunnel_source_v4: Option<&Bound<'_, PyAny>>,
        tunnel_source_v6: Option<&Bound<'_, PyAny>>,
        local_addrs: Option<Vec<Bound<'_, PyAny>>>,
        local_ports: (u16, u16),
        expire_nodest_conn: bool,
        expire_quiescent_template: bool,
        conn_reuse_mode: u8,
    ) -> PyResult<Self> {
        let mut cfg = BalancerConfig {
            conn_capacity,
            max_services,
            gateway_mac: opt_mac(gateway_mac)?,
            local_ports,
            expire_nodest_conn,
            expire_quiescent_template,
            conn_reuse_mode,
            ..BalancerConfig::default()
        };
        if let Some(m) = opt_mac(mac)? {
            cfg.mac = m;
        }
        if let Some(s) = seed {
            cfg.seed = s;
        }
        if let Some(a) = tunnel_source_v4.filter(|a| !a.is_none()) {
            match crate::convert::ip(a)? {
                IpAddr::V4(v4) => cfg.tunnel_source_v4 = Some(v4),
                IpAddr::V6(_) => {
                    return Err(PyValueError::new_err("tunnel_source_v4 must be an IPv4 address"));
                }
            }
        }
        if let Some(a) = tunnel_source_v6.filter(|a| !a.is_none()) {
            match crate::convert::ip(a)? {
                IpAddr::V6(v6) => cfg.tunnel_source_v6 = Some(v6),
                IpAddr::V4(_) => {
                    return Err(PyValueError::new_err("tunnel_source_v6 must be an IPv6 address"));
                }
            }
        }
        for a in local_addrs.unwrap_or_default() {
            cfg.local_addrs.push(crate::convert::ip(&a)?).map_err(|_| {
                PyValueError::new_err(format!(
                    "at most {} local addresses",
                    lbcore::balancer::MAX_LOCAL_ADDRS
                ))
            })?;
        }
        // Guard what the core would only catch after allocating: a capacity this large cannot
        // be what the caller meant, and would abort the process on allocation failure.
        if conn_capacity > 1 << 28 {
            return Err(crate::errors::BadCapacityError::new_err(
                "conn_capacity above 2**28 entries (16 GiB of table)",
            ));
        }
        let lb = CoreBalancer::new(cfg).map_err(config_error)?;
        Ok(Balancer {
            inner: Locked::new(Inner {
                lb,
                last_now: Instant::ZERO,
                frames: Vec::new(),
                verdicts: Vec::new(),
            }),
        })
    }

    // ----- configuration -----

    /// Adds a virtual service (`ipvsadm -A`); returns its id.
    fn add_service(&self, py: Python<'_>, service: PyRef<'_, Service>) -> PyResult<u16> {
        let mut g = self.inner.lock(py)?;
        g.lb.add_service(service.cfg).map(|id| id.0).map_err(config_error)
    }

    /// Changes a service's scheduler, flags, persistence (`ipvsadm -E`); the service is the
    /// one with the same key.
    fn edit_service(&self, py: Python<'_>, service: PyRef<'_, Service>) -> PyResult<()> {
        let mut g = self.inner.lock(py)?;
        let id = g
            .lb
            .find_service(&service.cfg.key)
            .ok_or_else(|| NoSuchServiceError::new_err(format!("no such service: {}", service.__repr__())))?;
        g.lb.edit_service(id, service.cfg).map_err(config_error)
    }

    /// Removes a service and flushes its connections (`ipvsadm -D`).
    fn remove_service(&self, py: Python<'_>, service: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut g = self.inner.lock(py)?;
        let id = service_id(&g.lb, service)?;
        g.lb.remove_service(id).map_err(config_error)
    }

    /// Adds a destination to a service (`ipvsadm -a`).
    fn add_dest(&self, py: Python<'_>, service: &Bound<'_, PyAny>, dest: PyRef<'_, Dest>) -> PyResult<()> {
        let mut g = self.inner.lock(py)?;
        let id = service_id(&g.lb, service)?;
        g.lb.add_dest(id, dest.cfg).map(|_| ()).map_err(config_error)
    }

    /// Changes a destination (`ipvsadm -e`): the one with the same address and port. Weight 0
    /// quiesces it: no new connections, existing ones go on.
    fn edit_dest(&self, py: Python<'_>, service: &Bound<'_, PyAny>, dest: PyRef<'_, Dest>) -> PyResult<()> {
        let mut g = self.inner.lock(py)?;
        let svc = service_id(&g.lb, service)?;
        let id = dest_id(&g.lb, svc, dest.cfg.addr, dest.cfg.port)?;
        g.lb.edit_dest(id, dest.cfg).map_err(config_error)
    }

    /// Removes a destination (`ipvsadm -d`), given as a `Dest` or as address and port. Its
    /// connections stay until they expire; their packets are dropped (`dest_unavailable`).
    #[pyo3(signature = (service, dest, port = None))]
    fn remove_dest(
        &self,
        py: Python<'_>,
        service: &Bound<'_, PyAny>,
        dest: &Bound<'_, PyAny>,
        port: Option<u16>,
    ) -> PyResult<()> {
        let (addr, port) = if let Ok(d) = dest.cast::<Dest>() {
            (d.get().cfg.addr, port.unwrap_or(d.get().cfg.port))
        } else {
            let port =
                port.ok_or_else(|| PyTypeError::new_err("remove_dest(service, addr, port) needs the port"))?;
            (crate::convert::ip(dest)?, port)
        };
        let mut g = self.inner.lock(py)?;
        let svc = service_id(&g.lb, service)?;
        let id = dest_id(&g.lb, svc, addr, port)?;
        g.lb.remove_dest(id).map_err(config_error)
    }

    /// The live services, in table order.
    fn services(&self, py: Python<'_>) -> PyResult<Vec<Service>> {
        let g = self.inner.lock(py)?;
        Ok(g.lb
            .service_ids()
            .filter_map(|id| g.lb.service_config(id))
            .map(|cfg| Service { cfg: *cfg })
            .collect())
    }

    /// A service's live destinations, newest first (the kernel's list order).
    fn dests(&self, py: Python<'_>, service: &Bound<'_, PyAny>) -> PyResult<Vec<Dest>> {
        let g = self.inner.lock(py)?;
        let svc = service_id(&g.lb, service)?;
        Ok(g.lb
            .dest_ids(svc)
            .filter_map(|id| g.lb.dest_info(id))
            .map(|d| Dest { cfg: d.config })
            .collect())
    }

    /// `ipvsadm --set tcp tcpfin udp`, in seconds (0 leaves a value unchanged).
    #[pyo3(signature = (tcp = 0.0, tcp_fin = 0.0, udp = 0.0))]
    fn set_timeouts(&self, py: Python<'_>, tcp: f64, tcp_fin: f64, udp: f64) -> PyResult<()> {
        let (tcp, tcp_fin, udp) = (
            seconds(tcp, "tcp")?,
            seconds(tcp_fin, "tcp_fin")?,
            seconds(udp, "udp")?,
        );
        self.inner.lock(py)?.lb.set_timeouts(tcp, tcp_fin, udp);
        Ok(())
    }

    /// `(tcp, tcp_fin, udp)` timeouts in seconds, as `ipvsadm -L --timeout` shows them.
    #[getter]
    fn timeouts(&self, py: Python<'_>) -> PyResult<(f64, f64, f64)> {
        let (a, b, c) = self.inner.lock(py)?.lb.timeouts().get();
        Ok((a.as_secs_f64(), b.as_secs_f64(), c.as_secs_f64()))
    }

    /// `expire_nodest_conn`: a packet for a removed destination's connection expires it.
    #[getter]
    fn get_expire_nodest_conn(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.inner.lock(py)?.lb.config().expire_nodest_conn)
    }

    #[setter]
    fn set_expire_nodest_conn(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.inner.lock(py)?.lb.set_expire_nodest_conn(on);
        Ok(())
    }

    /// `expire_quiescent_template`: a template whose destination has weight 0 is not reused.
    #[getter]
    fn get_expire_quiescent_template(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.inner.lock(py)?.lb.config().expire_quiescent_template)
    }

    #[setter]
    fn set_expire_quiescent_template(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        self.inner.lock(py)?.lb.set_expire_quiescent_template(on);
        Ok(())
    }

    /// Our MAC address.
    #[getter]
    fn mac(&self, py: Python<'_>) -> PyResult<String> {
        Ok(mac_str(self.inner.lock(py)?.lb.config().mac))
    }

    // ----- the data path -----

    /// Processes one packet: returns the verdict and the packet's bytes after rewriting
    /// (unchanged for `PASS`).
    #[pyo3(signature = (packet, now = None, *, link = Link::Ethernet, fwmark = 0))]
    fn process<'py>(
        &self,
        py: Python<'py>,
        packet: &Bound<'py, PyAny>,
        now: Option<u64>,
        link: Link,
        fwmark: u32,
    ) -> PyResult<(Verdict, Bound<'py, PyBytes>)> {
        let now = now_or_clock(py, now)?;
        let meta = RxMeta {
            link: link.core(),
            fwmark,
        };
        let mut g = self.inner.lock(py)?;
        let inner = &mut *g;
        if inner.frames.is_empty() {
            inner.frames.push(empty_frame());
        }
        with_packet(packet, |p| fill(&mut inner.frames[0], p, meta))?;
        let now = inner.clamp(now);
        let v = inner.lb.process(now, &mut inner.frames[0]);
        Ok((
            Verdict::new(&inner.lb, v),
            PyBytes::new(py, inner.frames[0].data()),
        ))
    }

    /// Processes packets in order (the same results as `process` on each), with the GIL
    /// released while the core works. Returns one `(verdict, bytes)` per packet.
    #[pyo3(signature = (packets, now = None, *, link = Link::Ethernet, fwmark = 0))]
    fn process_batch<'py>(
        &self,
        py: Python<'py>,
        packets: &Bound<'py, PyAny>,
        now: Option<u64>,
        link: Link,
        fwmark: u32,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now_or_clock(py, now)?;
        let meta = RxMeta {
            link: link.core(),
            fwmark,
        };
        let mut g = self.inner.lock(py)?;
        let inner = &mut *g;
        // 1. Copy every packet into a receive buffer (with the GIL: they are Python objects).
        let mut n = 0;
        let mut take = |p: &Bound<'py, PyAny>| -> PyResult<()> {
            if inner.frames.len() == n {
                inner.frames.push(empty_frame());
            }
            with_packet(p, |b| fill(&mut inner.frames[n], b, meta))?;
            n += 1;
            Ok(())
        };
        if let Ok(list) = packets.cast::<PyList>() {
            for p in list.iter() {
                take(&p)?;
            }
        } else if packets.is_instance_of::<PyBytes>() {
            return Err(PyTypeError::new_err(
                "process_batch takes a list of packets, not one packet",
            ));
        } else {
            for p in packets.try_iter()? {
                take(&p?)?;
            }
        }
        inner
            .verdicts
            .resize(n.max(inner.verdicts.len()), CoreVerdict::Pass);
        let now = inner.clamp(now);
        // 2. The core, without the GIL.
        let Inner {
            lb, frames, verdicts, ..
        } = inner;
        py.detach(|| lb.process_batch(now, &mut frames[..n], &mut verdicts[..n]));
        // 3. Back to Python objects.
        Self::results(py, inner, n)
    }

    /// Bounded timer work (`budget` table entries examined): removes expired connections and
    /// runs the rate estimators when due. Returns how many entries were removed. Call it at
    /// least every `poll_timeout()`.
    #[pyo3(signature = (now = None, budget = 1024))]
    fn expire(&self, py: Python<'_>, now: Option<u64>, budget: usize) -> PyResult<usize> {
        let now = now_or_clock(py, now)?;
        let mut g = self.inner.lock(py)?;
        let now = g.clamp(now);
        Ok(g.lb.expire(now, budget))
    }

    /// When `expire` should next be called, in nanoseconds.
    fn poll_timeout(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.inner.lock(py)?.lb.poll_timeout().as_nanos())
    }

    // ----- observing -----

    /// Counters, drops by reason, and per-service and per-destination statistics and rates,
    /// as plain dicts, lists, strings and ints.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let g = self.inner.lock(py)?;
        let lb = &g.lb;
        let c = lb.counters();
        let d = PyDict::new(py);
        d.set_item("rx", c.rx)?;
        d.set_item("forwarded", c.forwarded)?;
        d.set_item("passed", c.passed)?;
        d.set_item("dropped", c.dropped)?;
        d.set_item("conns_created", c.conns_created)?;
        d.set_item("conns_expired", c.conns_expired)?;
        d.set_item("evicted", c.evicted)?;
        d.set_item("templates_created", c.templates_created)?;
        d.set_item("reused", c.reused)?;
        d.set_item("connections", lb.conn_table().len())?;
        d.set_item("capacity", lb.conn_table().capacity())?;
        let drops = PyDict::new(py);
        for (reason, n) in lb.drop_counts() {
            drops.set_item(reason.name(), n)?;
        }
        d.set_item("drops", drops)?;
        let services = PyList::empty(py);
        for id in lb.service_ids() {
            let (Some(cfg), Some(stats)) = (lb.service_config(id), lb.service_stats(id)) else {
                continue;
            };
            let s = PyDict::new(py);
            s.set_item("id", id.0)?;
            s.set_item("service", Service { cfg: *cfg })?;
            counters_dict(py, &s, stats)?;
            if let Some(est) = lb.service_estimator(id) {
                s.set_item("rates", rates_dict(py, &est.rates())?)?;
            }
            let dests = PyList::empty(py);
            for did in lb.dest_ids(id) {
                let Some(info) = lb.dest_info(did) else { continue };
                let dd = PyDict::new(py);
                dd.set_item("addr", info.config.addr.to_string())?;
                dd.set_item("port", info.config.port)?;
                dd.set_item("weight", info.config.weight)?;
                dd.set_item("forward", info.config.forward.ipvsadm_name())?;
                dd.set_item("active", info.active)?;
                dd.set_item("inactive", info.inactive)?;
                dd.set_item("persistent", info.persistent)?;
                dd.set_item("overloaded", info.overloaded)?;
                counters_dict(py, &dd, &info.stats)?;
                if let Some(est) = lb.dest_estimator(did) {
                    dd.set_item("rates", rates_dict(py, &est.rates())?)?;
                }
                dests.append(dd)?;
            }
            s.set_item("dests", dests)?;
            services.append(s)?;
        }
        d.set_item("services", services)?;
        Ok(d)
    }

    /// Drops so far for one reason name (`"no_destination"`, `"truncated"`, ...);
    /// `ValueError` for a name that is no reason.
    fn drops(&self, py: Python<'_>, reason: &str) -> PyResult<u64> {
        let r = (0..DropReason::COUNT)
            .filter_map(DropReason::from_index)
            .find(|r| r.name() == reason)
            .ok_or_else(|| PyValueError::new_err(format!("unknown drop reason {reason:?}")))?;
        Ok(self.inner.lock(py)?.lb.drops(r))
    }

    /// Every drop reason's name.
    #[staticmethod]
    fn drop_reasons() -> Vec<&'static str> {
        (0..DropReason::COUNT)
            .filter_map(DropReason::from_index)
            .map(|r| r.name())
            .collect()
    }

    /// The connections and persistence templates in the table, as dicts (`expires` in
    /// nanoseconds on the caller's clock).
    fn conns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let g = self.inner.lock(py)?;
        let out = PyList::empty(py);
        for c in g.lb.conns() {
            let d = PyDict::new(py);
            d.set_item(
                "protocol",
                match c.proto {
                    6 => "TCP",
                    17 => "UDP",
                    _ => "IP",
                },
            )?;
            d.set_item("state", c.state.name())?;
            d.set_item("template", c.template)?;
            d.set_item("expires", c.expires.as_nanos())?;
            d.set_item("client", (c.client.0.to_string(), c.client.1))?;
            d.set_item("virtual", c.virt.map(|(a, p)| (a.to_string(), p)))?;
            d.set_item("fwmark", c.fwmark)?;
            d.set_item("dest", (c.dest.0.to_string(), c.dest.1))?;
            d.set_item("service", c.service.0)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// `ipvsadm -Ln` text, byte for byte, with the options of ipvsadm (`stats` wins over
    /// `rate`, over `persistent_conn`, over `tun_info`, as in ipvsadm). `connections=True` gives
    /// `ipvsadm -Lnc` instead, expiry counted from `now`.
    #[pyo3(signature = (*, stats = false, rate = false, persistent_conn = false, tun_info = false,
        exact = false, nosort = false, connections = false, now = None))]
    #[allow(clippy::too_many_arguments)]
    fn ipvsadm(
        &self,
        py: Python<'_>,
        stats: bool,
        rate: bool,
        persistent_conn: bool,
        tun_info: bool,
        exact: bool,
        nosort: bool,
        connections: bool,
        now: Option<u64>,
    ) -> PyResult<String> {
        if connections {
            let now = now_or_clock(py, now)?;
            let g = self.inner.lock(py)?;
            return Ok(render::list_conns(&g.lb.conn_views(now)));
        }
        let format = if stats {
            ListFormat::Stats
        } else if rate {
            ListFormat::Rate
        } else if persistent_conn {
            ListFormat::PersistentConn
        } else if tun_info {
            ListFormat::TunInfo
        } else {
            ListFormat::Plain
        };
        let g = self.inner.lock(py)?;
        Ok(render::list_with(
            &g.lb.table_info(),
            &g.lb.service_views(),
            ListOptions {
                format,
                exact,
                nosort,
            },
        ))
    }

    /// Replays a pcap file through the balancer, each packet at its capture time (the file's
    /// timestamps, in nanoseconds, are `now`), and writes the forwarded packets to `dst` (if
    /// given) with the same timestamps. Returns counts by verdict kind.
    ///
    /// `dst` has the link type of `src`. A forwarded IP packet (routed output) written to an
    /// Ethernet file gets an Ethernet header from our MAC to 00:00:00:00:00:00; a forwarded
    /// Ethernet frame written to a raw-IP file loses its Ethernet header.
    #[pyo3(signature = (src, dst = None, *, fwmark = 0))]
    fn replay_pcap<'py>(
        &self,
        py: Python<'py>,
        src: std::path::PathBuf,
        dst: Option<std::path::PathBuf>,
        fwmark: u32,
    ) -> PyResult<Bound<'py, PyDict>> {
        let capture = py.detach(|| pcap::read(&src))?;
        let link = capture.link;
        let mut out = Vec::new();
        let (mut fwd, mut drop, mut pass, mut consumed) = (0u64, 0u64, 0u64, 0u64);
        {
            let mut g = self.inner.lock(py)?;
            let inner = &mut *g;
            let our_mac = inner.lb.config().mac;
            let meta = RxMeta {
                link: link.core(),
                fwmark,
            };
            if inner.frames.is_empty() {
                inner.frames.push(empty_frame());
            }
            for (ts, packet) in &capture.packets {
                let now = inner.clamp(Instant::from_nanos(*ts));
                if now >= inner.lb.poll_timeout() {
                    inner.lb.expire(now, 1024);
                }
                fill(&mut inner.frames[0], packet, meta);
                match inner.lb.process(now, &mut inner.frames[0]) {
                    CoreVerdict::Forward(to) => {
                        fwd += 1;
                        out.push((
                            *ts,
                            pcap::relink(inner.frames[0].data(), Link::of(to.link), link, our_mac),
                        ));
                    }
                    CoreVerdict::Drop(_) => drop += 1,
                    CoreVerdict::Pass => pass += 1,
                    CoreVerdict::Consumed => consumed += 1,
                }
            }
        }
        if let Some(dst) = dst {
            let capture = pcap::Capture { link, packets: out };
            py.detach(|| pcap::write(&dst, &capture))?;
        }
        let d = PyDict::new(py);
        d.set_item("packets", capture.packets.len())?;
        d.set_item("forwarded", fwd)?;
        d.set_item("dropped", drop)?;
        d.set_item("passed", pass)?;
        d.set_item("consumed", consumed)?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let g = self.inner.lock(py)?;
        let services = g.lb.service_ids().count();
        Ok(format!(
            "Balancer(mac={}, services={services}, connections={}/{})",
            mac_str(g.lb.config().mac),
            g.lb.conn_table().len(),
            g.lb.conn_table().capacity()
        ))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VerdictKind>()?;
    m.add_class::<Verdict>()?;
    m.add_class::<Balancer>()?;
    Ok(())
}
