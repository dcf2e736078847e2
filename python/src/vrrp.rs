//! `Vrrp`: one VRRP instance (keepalived's `vrrp_instance`), sans-IO, and its actions.
//!
//! The call protocol is the core's (`lbcore::vrrp`): feed packets (`handle_packet`) and time
//! (`handle_timeout` when `poll_timeout()` is reached), give commands (`start`, `shutdown`,
//! `set_track`, ...), and after each, drain `poll_actions()` and carry the actions out in order.

use core::net::IpAddr;

use lbcore::time::Instant;
use lbcore::vrrp::{
    Action, Config, GarpConfig, Reject, Router, Rx, SourceMac, StartState, State, TrackId, Version,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::convert::{ip, mac, now_or_clock, seconds, with_packet};
use crate::errors::vrrp_config_error;
use crate::types::Link;

/// A VRRP router's state.
#[pyclass(eq, eq_int, frozen, hash, from_py_object, module = "lbcore")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VrrpState {
    #[pyo3(name = "INITIALIZE")]
    Initialize,
    #[pyo3(name = "BACKUP")]
    Backup,
    #[pyo3(name = "MASTER")]
    Master,
    #[pyo3(name = "FAULT")]
    Fault,
}

impl VrrpState {
    fn of(s: State) -> Self {
        match s {
            State::Initialize => VrrpState::Initialize,
            State::Backup => VrrpState::Backup,
            State::Master => VrrpState::Master,
            State::Fault => VrrpState::Fault,
        }
    }
}

/// The router changed state (run notify scripts here). Always the first action of a
/// transition.
#[pyclass(frozen, eq, module = "lbcore")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChanged {
    #[pyo3(get)]
    from_state: VrrpState,
    #[pyo3(get)]
    to_state: VrrpState,
}

#[pymethods]
impl StateChanged {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("from_state", "to_state")
    }
    fn __repr__(&self) -> String {
        format!("StateChanged({:?} -> {:?})", self.from_state, self.to_state).to_uppercase()
    }
}

/// Install this VIP on the interface (entering Master).
#[pyclass(frozen, eq, module = "lbcore")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddVip {
    #[pyo3(get)]
    addr: String,
    #[pyo3(get)]
    prefix_len: u8,
}

#[pymethods]
impl AddVip {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("addr", "prefix_len")
    }
    fn __repr__(&self) -> String {
        format!("AddVip({}/{})", self.addr, self.prefix_len)
    }
}

/// Remove this VIP from the interface (leaving Master).
#[pyclass(frozen, eq, module = "lbcore")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoveVip {
    #[pyo3(get)]
    addr: String,
    #[pyo3(get)]
    prefix_len: u8,
}

#[pymethods]
impl RemoveVip {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("addr", "prefix_len")
    }
    fn __repr__(&self) -> String {
        format!("RemoveVip({}/{})", self.addr, self.prefix_len)
    }
}

/// Send this advertisement: `frame` (the Ethernet frame, when the destination MAC is known),
/// `ip` (the IP packet), `vrrp` (the VRRP message alone), to `dst`.
#[pyclass(frozen, module = "lbcore")]
pub struct SendAdvert {
    #[pyo3(get)]
    frame: Option<Py<PyBytes>>,
    #[pyo3(get)]
    ip: Py<PyBytes>,
    #[pyo3(get)]
    vrrp: Py<PyBytes>,
    #[pyo3(get)]
    dst: String,
    #[pyo3(get)]
    priority: u8,
}

#[pymethods]
impl SendAdvert {
    #[classattr]
    fn __match_args__() -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    ) {
        ("frame", "ip", "vrrp", "dst", "priority")
    }
    fn __repr__(&self) -> String {
        format!("SendAdvert(dst={}, priority={})", self.dst, self.priority)
    }
}

/// Send this gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) frame.
#[pyclass(frozen, module = "lbcore")]
pub struct SendGratuitous {
    #[pyo3(get)]
    frame: Py<PyBytes>,
    #[pyo3(get)]
    vip: String,
}

#[pymethods]
impl SendGratuitous {
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("frame", "vip")
    }
    fn __repr__(&self) -> String {
        format!("SendGratuitous(vip={})", self.vip)
    }
}

fn action_object(py: Python<'_>, a: Action) -> PyResult<Py<PyAny>> {
    Ok(match a {
        Action::StateChanged { from, to } => Py::new(
            py,
            StateChanged {
                from_state: VrrpState::of(from),
                to_state: VrrpState::of(to),
            },
        )?
        .into_any(),
        Action::AddVip(v) => Py::new(
            py,
            AddVip {
                addr: v.addr.to_string(),
                prefix_len: v.prefix_len,
            },
        )?
        .into_any(),
        Action::RemoveVip(v) => Py::new(
            py,
            RemoveVip {
                addr: v.addr.to_string(),
                prefix_len: v.prefix_len,
            },
        )?
        .into_any(),
        Action::SendAdvert(p) => Py::new(
            py,
            SendAdvert {
                frame: p.frame().map(|f| PyBytes::new(py, f).unbind()),
                ip: PyBytes::new(py, p.ip()).unbind(),
                vrrp: PyBytes::new(py, p.vrrp()).unbind(),
                dst: p.dst().to_string(),
                priority: p.priority(),
            },
        )?
        .into_any(),
        Action::SendGratuitous(f) => Py::new(
            py,
            SendGratuitous {
                frame: PyBytes::new(py, f.frame()).unbind(),
                vip: f.vip().to_string(),
            },
        )?
        .into_any(),
    })
}

/// `"10.0.0.1/24"`, `("10.0.0.1", 24)` or `"10.0.0.1"` (a host prefix, as keepalived).
fn vip(obj: &Bound<'_, PyAny>) -> PyResult<(IpAddr, u8)> {
    if let Ok(t) = obj.cast::<PyTuple>() {
        let (a, len): (Bound<'_, PyAny>, u8) = t.extract()?;
        return Ok((ip(&a)?, len));
    }
    let s: String = obj
        .extract()
        .map_err(|_| PyTypeError::new_err("a VIP is 'addr/prefix', 'addr' or (addr, prefix)"))?;
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u8>()
                    .map_err(|_| PyValueError::new_err(format!("invalid prefix length in {s:?}")))?,
            ),
        ),
        None => (s.as_str(), None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| PyValueError::new_err(format!("invalid VIP address {s:?}")))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    if len > max {
        return Err(PyValueError::new_err(format!("prefix length too long in {s:?}")));
    }
    Ok((addr, len))
}

/// One VRRP instance (keepalived `vrrp_instance`), with keepalived 2.2.7's defaults. No I/O,
/// no clock: times are nanoseconds (`now`; `None` means `time.monotonic_ns()`).
#[pyclass(module = "lbcore")]
pub struct Vrrp {
    router: Router,
}

#[pymethods]
impl Vrrp {
    /// `vrid` and `src` (the primary address: advert source and tie-breaker) are required;
    /// the rest are keepalived's keywords with its defaults. `vips` are `"addr/prefix"`
    /// strings or `(addr, prefix)` tuples; `unicast_peers` addresses or `(addr, mac)`;
    /// `tracks` the weights of tracked objects (ids 0, 1, ... in order); `source_mac` `None`
    /// for the virtual router MAC, else the interface MAC. Intervals and delays in seconds.
    #[new]
    #[pyo3(signature = (vrid, src, *, version = 3, priority = 100, advert_interval = 1.0, vips = None,
        auth_pass = None, start_state = VrrpState::Backup, nopreempt = false, preempt_delay = 0.0,
        accept = true, unicast_peers = None, check_unicast_src = false, tracks = None,
        down_timer_adverts = 3, source_mac = None, lower_prio_no_advert = false,
        higher_prio_send_advert = false, v3_checksum_as_v2 = false, flow_label = 0,
        ipv6_router = false, garp_master_delay = 5.0, garp_master_repeat = 5,
        garp_master_refresh = 0.0, garp_master_refresh_repeat = 1, garp_lower_prio_delay = 5.0,
        garp_lower_prio_repeat = 5, garp_interval = 0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        vrid: u8,
        src: &Bound<'_, PyAny>,
        version: u8,
        priority: u8,
        advert_interval: f64,
        vips: Option<Vec<Bound<'_, PyAny>>>,
        auth_pass: Option<&Bound<'_, PyAny>>,
        start_state: VrrpState,
        nopreempt: bool,
        preempt_delay: f64,
        accept: bool,
        unicast_peers: Option<Vec<Bound<'_, PyAny>>>,
        check_unicast_src: bool,
        tracks: Option<Vec<i16>>,
        down_timer_adverts: u8,
        source_mac: Option<&Bound<'_, PyAny>>,
        lower_prio_no_advert: bool,
        higher_prio_send_advert: bool,
        v3_checksum_as_v2: bool,
        flow_label: u32,
        ipv6_router: bool,
        garp_master_delay: f64,
        garp_master_repeat: u16,
        garp_master_refresh: f64,
        garp_master_refresh_repeat: u16,
        garp_lower_prio_delay: f64,
        garp_lower_prio_repeat: u16,
        garp_interval: f64,
    ) -> PyResult<Self> {
        let version = match version {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(PyValueError::new_err(format!("VRRP version {v}: 2 or 3"))),
        };
        let mut cfg = Config::new(version, vrid, ip(src)?)
            .priority(priority)
            .advert_interval(seconds(advert_interval, "advert_interval")?)
            .preempt_delay(seconds(preempt_delay, "preempt_delay")?)
            .accept(accept)
            .down_timer_adverts(down_timer_adverts)
            .flow_label(flow_label)
            .ipv6_router(ipv6_router)
            .garp(GarpConfig {
                master_delay: seconds(garp_master_delay, "garp_master_delay")?,
                master_repeat: garp_master_repeat,
                master_refresh: seconds(garp_master_refresh, "garp_master_refresh")?,
                master_refresh_repeat: garp_master_refresh_repeat,
                lower_prio_delay: seconds(garp_lower_prio_delay, "garp_lower_prio_delay")?,
                lower_prio_repeat: garp_lower_prio_repeat,
                interval: seconds(garp_interval, "garp_interval")?,
            });
        cfg = cfg.start_state(match start_state {
            VrrpState::Backup => StartState::Backup,
            VrrpState::Master => StartState::Master,
            _ => {
                return Err(PyValueError::new_err(
                    "start_state is VrrpState.BACKUP or VrrpState.MASTER",
                ));
            }
        });
        for v in vips.unwrap_or_default() {
            let (a, l) = vip(&v)?;
            cfg = cfg.vip(a, l);
        }
        if let Some(p) = auth_pass.filter(|p| !p.is_none()) {
            let secret: Vec<u8> = if let Ok(s) = p.extract::<String>() {
                s.into_bytes()
            } else {
                with_packet(p, <[u8]>::to_vec)?
            };
            cfg = cfg.auth_pass(&secret);
        }
        if nopreempt {
            cfg = cfg.nopreempt();
        }
        for peer in unicast_peers.unwrap_or_default() {
            if let Ok(t) = peer.cast::<PyTuple>() {
                let (a, m): (Bound<'_, PyAny>, Bound<'_, PyAny>) = t.extract()?;
                cfg = cfg.unicast_peer_with_mac(ip(&a)?, Some(mac(&m)?));
            } else {
                cfg = cfg.unicast_peer(ip(&peer)?);
            }
        }
        if check_unicast_src {
            cfg = cfg.check_unicast_src();
        }
        for w in tracks.unwrap_or_default() {
            cfg = cfg.track(w);
        }
        if let Some(m) = source_mac.filter(|m| !m.is_none()) {
            cfg = cfg.source_mac(SourceMac::Interface(mac(m)?));
        }
        if lower_prio_no_advert {
            cfg = cfg.lower_prio_no_advert();
        }
        if higher_prio_send_advert {
            cfg = cfg.higher_prio_send_advert();
        }
        if v3_checksum_as_v2 {
            cfg = cfg.v3_checksum_as_v2();
        }
        let router = Router::new(cfg).map_err(|e| vrrp_config_error(py, e))?;
        Ok(Vrrp { router })
    }

    // ----- getters -----

    #[getter]
    fn state(&self) -> VrrpState {
        VrrpState::of(self.router.state())
    }

    #[getter]
    fn vrid(&self) -> u8 {
        self.router.vrid()
    }

    /// The effective priority (configured, adjusted by the delta and tracked objects).
    #[getter]
    fn priority(&self) -> u8 {
        self.router.priority()
    }

    /// The configured priority (254 if another address owner was met).
    #[getter]
    fn base_priority(&self) -> u8 {
        self.router.base_priority()
    }

    /// Our advert interval, seconds.
    #[getter]
    fn advert_interval(&self) -> f64 {
        self.router.advert_interval().as_secs_f64()
    }

    /// Master_Adver_Interval, seconds: ours, or (v3, in Backup) the master's.
    #[getter]
    fn master_advert_interval(&self) -> f64 {
        self.router.master_advert_interval().as_secs_f64()
    }

    /// Skew_Time, seconds.
    #[getter]
    fn skew_time(&self) -> f64 {
        self.router.skew_time().as_secs_f64()
    }

    /// Master_Down_Interval, seconds.
    #[getter]
    fn master_down_interval(&self) -> f64 {
        self.router.master_down_interval().as_secs_f64()
    }

    /// `(address, priority)` of the last master heard.
    #[getter]
    fn master(&self) -> Option<(String, u8)> {
        self.router.master().map(|(a, p)| (a.to_string(), p))
    }

    /// In Master with accept mode (or as the address owner): traffic to the VIPs is ours.
    #[getter]
    fn accepts_vip_traffic(&self) -> bool {
        self.router.accepts_vip_traffic()
    }

    /// The interface is down or a weight-0 tracked object fails.
    #[getter]
    fn fault_condition(&self) -> bool {
        self.router.fault_condition()
    }

    /// Whether tracked object `track` is OK (`None` for an unknown id).
    fn track_ok(&self, track: u8) -> Option<bool> {
        self.router.track_ok(TrackId(track))
    }

    /// Counters, with `rejected` mapping each refusal reason seen to its count.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.router.counters();
        let d = PyDict::new(py);
        d.set_item("adverts_received", c.adverts_received)?;
        d.set_item("priority_zero_received", c.priority_zero_received)?;
        d.set_item("adverts_sent", c.adverts_sent)?;
        d.set_item("priority_zero_sent", c.priority_zero_sent)?;
        d.set_item("gratuitous_sent", c.gratuitous_sent)?;
        d.set_item("became_master", c.became_master)?;
        d.set_item("released_master", c.released_master)?;
        d.set_item("lower_priority_ignored", c.lower_priority_ignored)?;
        d.set_item("actions_dropped", c.actions_dropped)?;
        let rejected = PyDict::new(py);
        for r in Reject::ALL {
            let n = c.rejected(r);
            if n > 0 {
                rejected.set_item(r.name(), n)?;
            }
        }
        d.set_item("rejected", rejected)?;
        Ok(d)
    }

    /// When `handle_timeout` next has work, in nanoseconds; `None` if never (Initialize,
    /// Fault).
    fn poll_timeout(&self) -> Option<u64> {
        self.router.poll_timeout().map(Instant::as_nanos)
    }

    // ----- inputs -----

    /// A received packet. `link` says what it starts with; or give `src` and `dst` (and the
    /// received `hop_limit`, if known) for a bare VRRP message from a raw IPv6 socket.
    #[pyo3(signature = (packet, now = None, *, link = Link::Ethernet, src = None, dst = None, hop_limit = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle_packet(
        &mut self,
        py: Python<'_>,
        packet: &Bound<'_, PyAny>,
        now: Option<u64>,
        link: Link,
        src: Option<&Bound<'_, PyAny>>,
        dst: Option<&Bound<'_, PyAny>>,
        hop_limit: Option<u8>,
    ) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        let rx = match (src.filter(|s| !s.is_none()), dst.filter(|d| !d.is_none())) {
            (Some(s), Some(d)) => Rx::Payload {
                src: ip(s)?,
                dst: ip(d)?,
                hop_limit,
            },
            (None, None) => match link {
                Link::Ethernet => Rx::Ethernet,
                Link::Ip => Rx::Ip,
            },
            _ => {
                return Err(PyValueError::new_err(
                    "give both src and dst for a bare VRRP message",
                ));
            }
        };
        let router = &mut self.router;
        with_packet(packet, |b| router.handle_packet(now, b, rx))
    }

    /// Time passed: acts on the timers due at `now` (harmless early or twice).
    #[pyo3(signature = (now = None))]
    fn handle_timeout(&mut self, py: Python<'_>, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.handle_timeout(now);
        Ok(())
    }

    // ----- commands -----

    /// Starts the router (Initialize -> Backup, or Master for an address owner).
    #[pyo3(signature = (now = None))]
    fn start(&mut self, py: Python<'_>, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.start(now);
        Ok(())
    }

    /// Stops the router (a master sends a priority-0 advert and gives up its VIPs).
    #[pyo3(signature = (now = None))]
    fn shutdown(&mut self, py: Python<'_>, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.shutdown(now);
        Ok(())
    }

    /// Sets a priority adjustment added to the configured priority.
    #[pyo3(signature = (delta, now = None))]
    fn set_priority_delta(&mut self, py: Python<'_>, delta: i16, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.set_priority_delta(now, delta);
        Ok(())
    }

    /// Tracked object `track` (its index in `tracks`) is now OK or failing.
    #[pyo3(signature = (track, ok, now = None))]
    fn set_track(&mut self, py: Python<'_>, track: u8, ok: bool, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.set_track(now, TrackId(track), ok);
        Ok(())
    }

    #[pyo3(signature = (now = None))]
    fn interface_up(&mut self, py: Python<'_>, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.interface_up(now);
        Ok(())
    }

    #[pyo3(signature = (now = None))]
    fn interface_down(&mut self, py: Python<'_>, now: Option<u64>) -> PyResult<()> {
        let now = now_or_clock(py, now)?;
        self.router.interface_down(now);
        Ok(())
    }

    // ----- outputs -----

    /// The next action, or `None`.
    fn poll_action(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.router
            .poll_action()
            .map(|a| action_object(py, a))
            .transpose()
    }

    /// Every pending action, in order (drains the queue).
    fn poll_actions(&mut self, py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
        let mut out = Vec::new();
        while let Some(a) = self.router.poll_action() {
            out.push(action_object(py, a)?);
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "Vrrp(vrid={}, state={:?}, priority={})",
            self.router.vrid(),
            self.router.state(),
            self.router.priority()
        )
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VrrpState>()?;
    m.add_class::<StateChanged>()?;
    m.add_class::<AddVip>()?;
    m.add_class::<RemoveVip>()?;
    m.add_class::<SendAdvert>()?;
    m.add_class::<SendGratuitous>()?;
    m.add_class::<Vrrp>()?;
    Ok(())
}
