//! The VRRP runner: every instance of a [`Plan`] on real interfaces, in one single-threaded
//! `poll(2)` loop.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lbcore::config::{Notify, Plan};
use lbcore::time::Instant;
use lbcore::vrrp::{Action, MAX_GROUP, Router, Rx, State, SyncGroup, TrackId, wire};

use super::io::{PacketSocket, VrrpSocket, source_of};
use super::map::{IfaceInfo, MapError, TrackSource, family_of, instance_config};
use super::proc::{Notifiers, Tracker};
use crate::netlink::{Link, LinkMonitor, Rtnl};
use crate::sys;

/// Why the runner could not start or had to stop.
#[derive(Debug)]
pub enum RunError {
    /// The plan does not map to runnable instances (each error names file, line, instance).
    Config(Vec<MapError>),
    /// A system call failed.
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Config(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            RunError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

impl std::error::Error for RunError {}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Monotonic time for the core: nanoseconds since the runner was created.
#[derive(Clone, Copy, Debug)]
struct Clock {
    start: std::time::Instant,
}

impl Clock {
    fn now(&self) -> Instant {
        let ns = self.start.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    fn to_std(self, t: Instant) -> std::time::Instant {
        self.start + Duration::from_nanos(t.as_nanos())
    }
}

/// A standalone router or a sync group: what receives inputs and yields actions.
enum Unit {
    Solo(Box<Router>),
    Group {
        group: Box<SyncGroup>,
        name: String,
        notify: Notify,
        /// Group state after the last input (for the group's notify scripts).
        last: State,
    },
}

impl Unit {
    fn router(&self, member: usize) -> Option<&Router> {
        match self {
            Unit::Solo(r) => Some(r),
            Unit::Group { group, .. } => group.member(member),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Unit::Solo(r) => r.poll_timeout(),
            Unit::Group { group, .. } => group.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Unit::Solo(r) => r.handle_timeout(now),
            Unit::Group { group, .. } => group.handle_timeout(now),
        }
    }

    fn handle_packet(&mut self, now: Instant, member: usize, bytes: &[u8], rx: Rx) {
        match self {
            Unit::Solo(r) => r.handle_packet(now, bytes, rx),
            Unit::Group { group, .. } => group.handle_packet_to(now, member, bytes, rx),
        }
    }

    fn start(&mut self, now: Instant) {
        match self {
            Unit::Solo(r) => r.start(now),
            Unit::Group { group, .. } => group.start(now),
        }
    }

    fn shutdown(&mut self, now: Instant) {
        match self {
            Unit::Solo(r) => r.shutdown(now),
            Unit::Group { group, .. } => group.shutdown(now),
        }
    }

    fn set_track(&mut self, now: Instant, member: usize, id: TrackId, ok: bool) {
        match self {
            Unit::Solo(r) => r.set_track(now, id, ok),
            Unit::Group { group, .. } => group.set_track(now, member, id, ok),
        }
    }

    fn set_interface(&mut self, now: Instant, member: usize, up: bool) {
        match (self, up) {
            (Unit::Solo(r), true) => r.interface_up(now),
            (Unit::Solo(r), false) => r.interface_down(now),
            (Unit::Group { group, .. }, true) => group.interface_up(now, member),
            (Unit::Group { group, .. }, false) => group.interface_down(now, member),
        }
    }

    fn poll_action(&mut self) -> Option<(usize, Action)> {
        match self {
            Unit::Solo(r) => r.poll_action().map(|a| (0, a)),
            Unit::Group { group, .. } => group.poll_action(),
        }
    }
}

/// Where a VIP goes.
#[derive(Clone, Debug)]
struct VipRt {
    addr: IpAddr,
    prefix_len: u8,
    ifindex: u32,
    label: Option<String>,
}

/// One running instance.
struct Inst {
    name: String,
    unit: usize,
    member: usize,
    ifname: String,
    ifindex: u32,
    src: IpAddr,
    /// Index into `Runner::rx`.
    rx: usize,
    /// Index into `Runner::tx`.
    tx: usize,
    vips: Vec<VipRt>,
    excluded: Vec<VipRt>,
    notify: Notify,
    tracks: Vec<TrackSource>,
    /// Interface indexes of `track_interface` entries (None: the interface does not exist).
    track_ifindex: Vec<Option<u32>>,
    state: State,
}

struct RxSock {
    sock: VrrpSocket,
    /// Instances listening on it.
    instances: Vec<usize>,
}

/// Signals, delivered through a self-pipe.
struct Signals {
    read: UnixStream,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
            ids.push(signal_hook::low_level::pipe::register(sig, write.try_clone()?)?);
        }
        for sig in [libc::SIGTERM, libc::SIGINT] {
            ids.push(signal_hook::flag::register(sig, Arc::clone(&term))?);
        }
        ids.push(signal_hook::flag::register(libc::SIGHUP, Arc::clone(&hup))?);
        Ok(Signals { read, term, hup, ids })
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Every VRRP instance of a plan, running. See the [module documentation](super).
pub struct Runner {
    clock: Clock,
    plan: Plan,
    rtnl: Rtnl,
    monitor: Option<LinkMonitor>,
    units: Vec<Unit>,
    instances: Vec<Inst>,
    rx: Vec<RxSock>,
    tx: Vec<(u32, PacketSocket)>,
    trackers: Vec<Option<Tracker>>,
    notifiers: Notifiers,
    /// Last known up/down of every interface we care about, by index.
    links: HashMap<u32, bool>,
    buf: Vec<u8>,
    /// Called on SIGHUP (the daemon's reload); without it SIGHUP is only logged.
    reload_hook: Option<Box<dyn FnMut() + Send>>,
    /// Where the instances' states are published after every change (the control socket
    /// reads them).
    state_sink: Option<StateSink>,
    /// Installed at construction, so that a SIGTERM or SIGHUP that arrives while the caller
    /// is still setting up (lbd programs its data plane between `new` and `run`) is kept for
    /// the loop instead of killing the process.
    signals: Option<Signals>,
}

/// Where a runner publishes its instances' names and states.
pub type StateSink = Arc<Mutex<Vec<(String, State)>>>;

/// Check a plan's VRRP part without the system (placeholder interfaces): every warning and
/// error the mapping would give (`lbd check`).
pub fn check_plan(plan: &Plan) -> (Vec<String>, Vec<MapError>) {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let groups = match group_of_instances(plan) {
        Ok(g) => g,
        Err(e) => return (warnings, e),
    };
    for (i, inst) in plan.instances.iter().enumerate() {
        let group = groups.get(&i).map(|&g| &plan.sync_groups[g]);
        match instance_config(
            inst,
            &plan.global,
            &plan.scripts,
            group,
            &IfaceInfo::placeholder(),
        ) {
            Ok(m) => warnings.extend(m.warnings),
            Err(e) => errors.push(e),
        }
    }
    (warnings, errors)
}

/// Instance index -> sync group index, checking the member names.
fn group_of_instances(plan: &Plan) -> Result<HashMap<usize, usize>, Vec<MapError>> {
    let mut map = HashMap::new();
    let mut errors = Vec::new();
    for (g, group) in plan.sync_groups.iter().enumerate() {
        if group.members.len() > MAX_GROUP {
            errors.push(MapError {
                instance: group.name.clone(),
                origin: group.origin.clone(),
                reason: format!(
                    "sync group with {} members: at most {MAX_GROUP} are supported",
                    group.members.len()
                ),
            });
        }
        for m in &group.members {
            match plan.instances.iter().position(|i| &i.name == m) {
                None => errors.push(MapError {
                    instance: group.name.clone(),
                    origin: group.origin.clone(),
                    reason: format!("sync group member {m}: no vrrp_instance of that name"),
                }),
                Some(i) => {
                    if map.insert(i, g).is_some() {
                        errors.push(MapError {
                            instance: group.name.clone(),
                            origin: group.origin.clone(),
                            reason: format!("{m} is in more than one sync group"),
                        });
                    }
                }
            }
        }
    }
    if errors.is_empty() { Ok(map) } else { Err(errors) }
}

fn ipv6_forwarding(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// keepalived's name of a state (`MASTER`, ...), as its logs and `lbd show --vrrp` print it.
pub(crate) fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

impl Runner {
    /// Resolve every instance's interface (index, MAC, primary address), map it to the core's
    /// configuration and open the sockets. Nothing is sent yet.
    pub fn new(plan: Plan) -> Result<Runner, RunError> {
        let clock = Clock {
            start: std::time::Instant::now(),
        };
        let mut rtnl = Rtnl::new().map_err(io_err("opening rtnetlink"))?;
        let links = rtnl.links().map_err(io_err("listing interfaces"))?;
        let addrs = rtnl.addresses(None).map_err(io_err("listing addresses"))?;
        let groups = group_of_instances(&plan).map_err(RunError::Config)?;
        let all_vips: Vec<IpAddr> = plan
            .instances
            .iter()
            .flat_map(|i| i.vips.iter().chain(&i.vips_excluded).map(|v| v.addr))
            .collect();
        let by_name = |name: &str| links.iter().find(|l| l.name == name);

        let mut errors = Vec::new();
        let mut units: Vec<Unit> = Vec::new();
        let mut instances: Vec<Inst> = Vec::new();
        let mut group_unit: HashMap<usize, usize> = HashMap::new();
        let mut routers: Vec<Option<Router>> = Vec::new();
        for (i, ip) in plan.instances.iter().enumerate() {
            routers.push(None);
            let Some(link) = by_name(&ip.interface) else {
                errors.push(MapError {
                    instance: ip.name.clone(),
                    origin: ip.origin.clone(),
                    reason: format!("interface {} does not exist", ip.interface),
                });
                continue;
            };
            let Some(mac) = link.mac else {
                errors.push(MapError {
                    instance: ip.name.clone(),
                    origin: ip.origin.clone(),
                    reason: format!("interface {} has no Ethernet address", ip.interface),
                });
                continue;
            };
            let on_link = || {
                addrs
                    .iter()
                    .filter(|a| a.index == link.index && !all_vips.contains(&a.addr))
            };
            let info = IfaceInfo {
                index: link.index,
                mac,
                primary_v4: on_link().find_map(|a| match a.addr {
                    IpAddr::V4(v4) if !a.secondary => Some(v4),
                    _ => None,
                }),
                link_local_v6: on_link().find_map(|a| match a.addr {
                    IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
                    _ => None,
                }),
                ipv6_forwarding: ipv6_forwarding(&ip.interface),
            };
            let group = groups.get(&i).map(|&g| &plan.sync_groups[g]);
            let mapped = match instance_config(ip, &plan.global, &plan.scripts, group, &info) {
                Ok(m) => m,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for w in &mapped.warnings {
                tracing::warn!("{w}");
            }
            let vip_rt = |v: &lbcore::config::VipPlan, errors: &mut Vec<MapError>| -> Option<VipRt> {
                let ifindex = match &v.dev {
                    None => link.index,
                    Some(dev) => match by_name(dev) {
                        Some(l) => l.index,
                        None => {
                            errors.push(MapError {
                                instance: ip.name.clone(),
                                origin: v.origin.clone(),
                                reason: format!("VIP {}: interface {dev} does not exist", v.addr),
                            });
                            return None;
                        }
                    },
                };
                Some(VipRt {
                    addr: v.addr,
                    prefix_len: v.prefix_len,
                    ifindex,
                    label: v.label.clone(),
                })
            };
            let vips = ip.vips.iter().filter_map(|v| vip_rt(v, &mut errors)).collect();
            let excluded = ip
                .vips_excluded
                .iter()
                .filter_map(|v| vip_rt(v, &mut errors))
                .collect();
            let track_ifindex = mapped
                .tracks
                .iter()
                .map(|t| match t {
                    TrackSource::Interface { name } => {
                        let l = by_name(name);
                        if l.is_none() {
                            tracing::warn!(
                                "({}) track_interface {name} does not exist: tracked as down",
                                ip.name
                            );
                        }
                        l.map(|l| l.index)
                    }
                    TrackSource::Script { .. } => None,
                })
                .collect();
            let src = mapped.config.src;
            let router = match Router::new(mapped.config) {
                Ok(r) => r,
                // instance_config validated it already.
                Err(e) => {
                    errors.push(MapError {
                        instance: ip.name.clone(),
                        origin: ip.origin.clone(),
                        reason: super::map::config_error_text(e),
                    });
                    continue;
                }
            };
            routers[i] = Some(router);
            instances.push(Inst {
                name: ip.name.clone(),
                unit: usize::MAX,
                member: 0,
                ifname: ip.interface.clone(),
                ifindex: link.index,
                src,
                rx: usize::MAX,
                tx: usize::MAX,
                vips,
                excluded,
                notify: ip.notify.clone(),
                tracks: mapped.tracks,
                track_ifindex,
                state: State::Initialize,
            });
        }
        if !errors.is_empty() {
            return Err(RunError::Config(errors));
        }
        // Every plan instance has a router and an Inst, in plan order.
        for (i, router) in routers.into_iter().enumerate() {
            let Some(router) = router else { continue };
            match groups.get(&i) {
                None => {
                    instances[i].unit = units.len();
                    units.push(Unit::Solo(Box::new(router)));
                }
                Some(&g) => {
                    let u = *group_unit.entry(g).or_insert_with(|| {
                        let sg = &plan.sync_groups[g];
                        units.push(Unit::Group {
                            group: Box::new(SyncGroup::new()),
                            name: sg.name.clone(),
                            notify: sg.notify.clone(),
                            last: State::Initialize,
                        });
                        units.len() - 1
                    });
                    if let Unit::Group { group, .. } = &mut units[u] {
                        // The group was checked to hold at most MAX_GROUP members.
                        instances[i].member = group.add(router).unwrap_or(usize::MAX);
                    }
                    instances[i].unit = u;
                }
            }
        }

        // Sockets: one raw socket per interface and family, one AF_PACKET per interface.
        let mut rx: Vec<RxSock> = Vec::new();
        let mut tx: Vec<(u32, PacketSocket)> = Vec::new();
        for (i, inst) in instances.iter_mut().enumerate() {
            let family = family_of(&plan.instances[i]);
            let multicast = plan.instances[i].unicast_peers.is_empty();
            let existing = rx.iter().position(|s| {
                s.sock.family() == family && plan.instances[s.instances[0]].interface == inst.ifname
            });
            inst.rx = match existing {
                Some(k) => {
                    if multicast && !plan.instances[rx[k].instances[0]].unicast_peers.is_empty() {
                        // First opened for unicast only: reopen with the group joined.
                        rx[k].sock = VrrpSocket::open(&inst.ifname, inst.ifindex, family, true)
                            .map_err(io_err(format!("opening the VRRP socket on {}", inst.ifname)))?;
                    }
                    rx[k].instances.push(i);
                    k
                }
                None => {
                    let sock = VrrpSocket::open(&inst.ifname, inst.ifindex, family, multicast)
                        .map_err(io_err(format!("opening the VRRP socket on {}", inst.ifname)))?;
                    rx.push(RxSock {
                        sock,
                        instances: vec![i],
                    });
                    rx.len() - 1
                }
            };
            inst.tx = match tx.iter().position(|(idx, _)| *idx == inst.ifindex) {
                Some(k) => k,
                None => {
                    let s = PacketSocket::open(inst.ifindex)
                        .map_err(io_err(format!("opening the AF_PACKET socket on {}", inst.ifname)))?;
                    tx.push((inst.ifindex, s));
                    tx.len() - 1
                }
            };
        }

        let start = clock.start;
        let trackers = plan
            .scripts
            .iter()
            .enumerate()
            .map(|(s, sp)| {
                let used = instances.iter().any(|i| {
                    i.tracks
                        .iter()
                        .any(|t| matches!(t, TrackSource::Script { script, .. } if *script == s))
                });
                if used && sp.user.is_some() {
                    tracing::warn!(
                        "{}: vrrp_script {}: user is not supported yet: the script runs as lbd's user",
                        sp.origin,
                        sp.name
                    );
                }
                used.then(|| Tracker::new(sp, start))
            })
            .collect();
        let monitor = match LinkMonitor::new() {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!("cannot watch link changes ({e}): interface state is not tracked");
                None
            }
        };
        let mut link_state = HashMap::new();
        for l in &links {
            link_state.insert(l.index, l.is_up());
        }
        Ok(Runner {
            clock,
            plan,
            rtnl,
            monitor,
            units,
            instances,
            rx,
            tx,
            trackers,
            notifiers: Notifiers::default(),
            links: link_state,
            buf: vec![0; 9216],
            reload_hook: None,
            state_sink: None,
            signals: Some(Signals::install().map_err(io_err("installing signal handlers"))?),
        })
    }

    /// Run until SIGTERM or SIGINT, then shut down cleanly: every master sends a priority-0
    /// advert and gives up its VIPs, `notify_stop` scripts run. SIGHUP calls the hook set with
    /// [`Runner::on_reload`], or is only logged.
    pub fn run(mut self) -> Result<(), RunError> {
        let mut signals = match self.signals.take() {
            Some(s) => s,
            None => Signals::install().map_err(io_err("installing signal handlers"))?,
        };
        // VIPs left on the interfaces by an earlier run that was killed: every instance starts
        // as backup, so it must not hold them (keepalived removes them too).
        let present = self.rtnl.addresses(None).unwrap_or_default();
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            let leftovers: Vec<VipRt> = inst
                .vips
                .iter()
                .chain(&inst.excluded)
                .filter(|v| present.iter().any(|a| a.index == v.ifindex && a.addr == v.addr))
                .cloned()
                .collect();
            for v in leftovers {
                tracing::info!(
                    "({}) removing VIP {} left over from an earlier run",
                    self.instances[i].name,
                    v.addr
                );
                self.del_vip(i, &v);
            }
        }
        let now = self.clock.now();
        // Interfaces and tracked interfaces that are down before start.
        for i in 0..self.instances.len() {
            let (unit, member) = (self.instances[i].unit, self.instances[i].member);
            if !self
                .links
                .get(&self.instances[i].ifindex)
                .copied()
                .unwrap_or(false)
            {
                tracing::warn!(
                    "({}) interface {} is down",
                    self.instances[i].name,
                    self.instances[i].ifname
                );
                self.units[unit].set_interface(now, member, false);
            }
            for t in 0..self.instances[i].tracks.len() {
                if matches!(self.instances[i].tracks[t], TrackSource::Interface { .. }) {
                    let up = self.instances[i].track_ifindex[t].and_then(|x| self.links.get(&x).copied());
                    if up != Some(true) {
                        // At most MAX_TRACKS (16) tracks: fits a u8.
                        self.units[unit].set_track(now, member, TrackId(t as u8), false);
                    }
                }
            }
        }
        for u in 0..self.units.len() {
            self.units[u].start(now);
            self.drain(u);
        }

        let mut fds: Vec<libc::pollfd> = Vec::new();
        loop {
            if signals.term.swap(false, Ordering::SeqCst) {
                break;
            }
            if signals.hup.swap(false, Ordering::SeqCst) {
                match self.reload_hook.as_mut() {
                    Some(hook) => hook(),
                    None => tracing::warn!(
                        "SIGHUP: reload not yet supported; carrying on with the running configuration"
                    ),
                }
            }
            self.publish();
            let now = self.clock.now();
            for u in 0..self.units.len() {
                if self.units[u].poll_timeout().is_some_and(|t| t <= now) {
                    self.units[u].handle_timeout(now);
                    self.drain(u);
                }
            }
            self.service_scripts();
            self.notifiers.reap();

            // Sleep until the next timer, a packet, a link change or a signal.
            let now_std = std::time::Instant::now();
            let mut next: Option<std::time::Instant> = self
                .units
                .iter()
                .filter_map(Unit::poll_timeout)
                .min()
                .map(|t| self.clock.to_std(t));
            for t in self.trackers.iter().flatten() {
                let e = t.next_event();
                next = Some(next.map_or(e, |n| n.min(e)));
            }
            if self.notifiers.running() > 0 {
                // SIGCHLD wakes us; this only bounds a lost wakeup.
                let e = now_std + Duration::from_millis(500);
                next = Some(next.map_or(e, |n| n.min(e)));
            }
            let timeout_ms = match next {
                None => -1,
                Some(t) => {
                    let d = t.saturating_duration_since(now_std);
                    // Round up: waking early would only spin.
                    i32::try_from(d.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
            };
            self.publish();
            fds.clear();
            fds.push(pollfd(signals.read.as_raw_fd()));
            fds.push(pollfd(self.monitor.as_ref().map_or(-1, |m| m.as_raw_fd())));
            for s in &self.rx {
                fds.push(pollfd(s.sock.as_raw_fd()));
            }
            sys::poll(&mut fds, timeout_ms).map_err(io_err("poll"))?;
            if fds[0].revents != 0 {
                signals.drain();
            }
            if fds[1].revents != 0 {
                self.link_changes();
            }
            for k in 0..self.rx.len() {
                if fds[2 + k].revents != 0 {
                    self.receive(k);
                }
            }
        }

        tracing::info!("Stopping");
        self.shutdown();
        self.publish();
        Ok(())
    }

    fn shutdown(&mut self) {
        let now = self.clock.now();
        for t in self.trackers.iter_mut().flatten() {
            t.stop();
        }
        for u in 0..self.units.len() {
            self.units[u].shutdown(now);
            self.drain(u);
        }
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            let prio = self.units[inst.unit]
                .router(inst.member)
                .map_or(0, Router::priority);
            let notify = inst.notify.clone();
            let name = inst.name.clone();
            if let Some(cmd) = &notify.stop {
                self.notifiers.run(cmd, &[]);
            }
            if let Some(cmd) = &notify.any {
                self.notifiers
                    .run(cmd, &["INSTANCE", &name, "STOP", &prio.to_string()]);
            }
        }
        for u in 0..self.units.len() {
            if let Unit::Group { name, notify, .. } = &self.units[u] {
                let (name, notify) = (name.clone(), notify.clone());
                if let Some(cmd) = &notify.stop {
                    self.notifiers.run(cmd, &[]);
                }
                if let Some(cmd) = &notify.any {
                    self.notifiers.run(cmd, &["GROUP", &name, "STOP"]);
                }
            }
        }
        self.notifiers.wait_all(Duration::from_secs(5));
        if self.notifiers.running() > 0 {
            tracing::warn!(
                "{} notify script(s) still running at exit",
                self.notifiers.running()
            );
        }
        tracing::info!("Stopped");
    }

    /// Carry out every pending action of unit `u`.
    fn drain(&mut self, u: usize) {
        while let Some((member, action)) = self.units[u].poll_action() {
            let Some(i) = self
                .instances
                .iter()
                .position(|x| x.unit == u && x.member == member)
            else {
                continue;
            };
            self.act(i, action);
        }
        if let Unit::Group {
            group,
            name,
            notify,
            last,
        } = &mut self.units[u]
        {
            let now_state = group.state();
            if now_state != *last {
                *last = now_state;
                let (name, notify) = (name.clone(), notify.clone());
                if matches!(now_state, State::Master | State::Backup | State::Fault) {
                    tracing::info!(
                        "VRRP_Group({name}) Syncing instances to {} state",
                        state_name(now_state)
                    );
                    self.run_notify(&notify, now_state, "GROUP", &name, None);
                }
            }
        }
    }

    fn run_notify(&mut self, notify: &Notify, to: State, kind: &str, name: &str, prio: Option<u8>) {
        let specific = match to {
            State::Master => &notify.master,
            State::Backup => &notify.backup,
            State::Fault => &notify.fault,
            State::Initialize => &None,
        };
        if let Some(cmd) = specific {
            self.notifiers.run(cmd, &[]);
        }
        if let Some(cmd) = &notify.any {
            let state = state_name(to);
            match prio {
                Some(p) => self.notifiers.run(cmd, &[kind, name, state, &p.to_string()]),
                None => self.notifiers.run(cmd, &[kind, name, state]),
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        let inst = &self.instances[i];
        match action {
            Action::StateChanged { from, to } => {
                let name = inst.name.clone();
                let _ = inst;
                match (from, to) {
                    (State::Initialize, State::Backup) => {
                        tracing::info!("({name}) Entering BACKUP STATE (init)")
                    }
                    (_, State::Initialize) => tracing::info!("({name}) Entering INIT STATE (stopping)"),
                    (_, to) => tracing::info!("({name}) Entering {} STATE", state_name(to)),
                }
                self.instances[i].state = to;
                if to == State::Master {
                    for v in self.instances[i].excluded.clone() {
                        self.add_vip(i, &v);
                    }
                } else if from == State::Master {
                    for v in self.instances[i].excluded.clone() {
                        self.del_vip(i, &v);
                    }
                }
                if to != State::Initialize {
                    let (unit, member) = (self.instances[i].unit, self.instances[i].member);
                    let prio = self.units[unit].router(member).map(Router::priority);
                    let notify = self.instances[i].notify.clone();
                    self.run_notify(&notify, to, "INSTANCE", &name, prio);
                }
            }
            Action::AddVip(v) => {
                let vip = inst
                    .vips
                    .iter()
                    .find(|x| x.addr == v.addr)
                    .cloned()
                    .unwrap_or(VipRt {
                        addr: v.addr,
                        prefix_len: v.prefix_len,
                        ifindex: inst.ifindex,
                        label: None,
                    });
                self.add_vip(i, &vip);
            }
            Action::RemoveVip(v) => {
                let vip = inst
                    .vips
                    .iter()
                    .find(|x| x.addr == v.addr)
                    .cloned()
                    .unwrap_or(VipRt {
                        addr: v.addr,
                        prefix_len: v.prefix_len,
                        ifindex: inst.ifindex,
                        label: None,
                    });
                self.del_vip(i, &vip);
            }
            Action::SendAdvert(p) => {
                if p.priority() == 0 {
                    tracing::info!("({}) sent 0 priority", inst.name);
                }
                let res = match p.frame() {
                    Some(frame) => self.tx[inst.tx].1.send(frame),
                    None => self.rx[inst.rx].sock.send_routed(&p, inst.src),
                };
                if let Err(e) = res {
                    tracing::warn!("({}) cannot send advert to {}: {e}", inst.name, p.dst());
                }
            }
            Action::SendGratuitous(f) => {
                if let Err(e) = self.tx[inst.tx].1.send(f.frame()) {
                    tracing::warn!(
                        "({}) cannot send gratuitous frame for {}: {e}",
                        inst.name,
                        f.vip()
                    );
                } else {
                    tracing::debug!(
                        "({}) sent gratuitous frame on {} for {}",
                        inst.name,
                        inst.ifname,
                        f.vip()
                    );
                }
            }
        }
    }

    fn add_vip(&mut self, i: usize, v: &VipRt) {
        let name = &self.instances[i].name;
        match self
            .rtnl
            .add_address(v.ifindex, v.addr, v.prefix_len, v.label.as_deref())
        {
            Ok(_) => tracing::info!("({name}) added VIP {}/{}", v.addr, v.prefix_len),
            Err(e) => tracing::error!("({name}) cannot add VIP {}/{}: {e}", v.addr, v.prefix_len),
        }
    }

    fn del_vip(&mut self, i: usize, v: &VipRt) {
        let name = &self.instances[i].name;
        match self.rtnl.del_address(v.ifindex, v.addr, v.prefix_len) {
            Ok(_) => tracing::info!("({name}) removed VIP {}/{}", v.addr, v.prefix_len),
            Err(e) => tracing::error!("({name}) cannot remove VIP {}/{}: {e}", v.addr, v.prefix_len),
        }
    }

    /// Read what socket `k` has (bounded, so one busy socket cannot starve the loop) and hand
    /// each packet to the instances with its VRID.
    fn receive(&mut self, k: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        for _ in 0..64 {
            let (len, rx) = match self.rx[k].sock.recv(&mut buf) {
                Ok(None) => break,
                Ok(Some(r)) => r,
                Err(e) => {
                    tracing::warn!("VRRP socket receive error: {e}");
                    break;
                }
            };
            let Some(rx) = rx else {
                tracing::debug!("dropped a packet without usable addresses or truncated");
                continue;
            };
            let bytes = buf.get(..len).unwrap_or(&[]);
            let Some((family, vrid)) = wire::peek_vrid(bytes, rx) else {
                tracing::debug!("dropped a packet that is not VRRP");
                continue;
            };
            let now = self.clock.now();
            for n in 0..self.rx[k].instances.len() {
                let i = self.rx[k].instances[n];
                let (unit, member) = (self.instances[i].unit, self.instances[i].member);
                let Some(r) = self.units[unit].router(member) else {
                    continue;
                };
                if r.vrid() != vrid || r.config().family() != family {
                    continue;
                }
                let before = r.counters().adverts_received;
                self.units[unit].handle_packet(now, member, bytes, rx);
                if let Some(r) = self.units[unit].router(member)
                    && r.counters().adverts_received == before
                    && tracing::enabled!(tracing::Level::DEBUG)
                {
                    tracing::debug!(
                        "({}) refused an advert from {:?}: {:?}",
                        self.instances[i].name,
                        source_of(bytes, rx),
                        r.counters()
                    );
                }
                self.drain(unit);
            }
        }
        self.buf = buf;
    }

    /// Run, reap and time out the vrrp_scripts; feed changed verdicts to the instances.
    fn service_scripts(&mut self) {
        let now_std = std::time::Instant::now();
        let mut changes = Vec::new();
        for (s, t) in self.trackers.iter_mut().enumerate() {
            if let Some(t) = t
                && let Some(good) = t.service(now_std)
            {
                changes.push((s, good));
            }
        }
        if changes.is_empty() {
            return;
        }
        let now = self.clock.now();
        for (s, good) in changes {
            for i in 0..self.instances.len() {
                for t in 0..self.instances[i].tracks.len() {
                    if let TrackSource::Script { script, invert } = self.instances[i].tracks[t]
                        && script == s
                    {
                        let (unit, member) = (self.instances[i].unit, self.instances[i].member);
                        // At most MAX_TRACKS (16) tracks: fits a u8.
                        self.units[unit].set_track(now, member, TrackId(t as u8), good != invert);
                        self.drain(unit);
                    }
                }
            }
        }
    }

    /// Interfaces went up or down.
    fn link_changes(&mut self) {
        let Some(m) = self.monitor.as_mut() else { return };
        let updates: Vec<Link> = match m.drain() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("link monitor: {e}; re-reading interfaces");
                self.rtnl.links().unwrap_or_default()
            }
        };
        let now = self.clock.now();
        for l in updates {
            let up = l.is_up();
            let was = self.links.insert(l.index, up);
            if was == Some(up) {
                continue;
            }
            for i in 0..self.instances.len() {
                let (unit, member) = (self.instances[i].unit, self.instances[i].member);
                if self.instances[i].ifindex == l.index {
                    tracing::info!(
                        "({}) interface {} is {}",
                        self.instances[i].name,
                        l.name,
                        if up { "up" } else { "down" }
                    );
                    self.units[unit].set_interface(now, member, up);
                    self.drain(unit);
                }
                for t in 0..self.instances[i].tracks.len() {
                    if self.instances[i].track_ifindex[t] == Some(l.index) {
                        // At most MAX_TRACKS (16) tracks: fits a u8.
                        self.units[unit].set_track(now, member, TrackId(t as u8), up);
                        self.drain(unit);
                    }
                }
            }
        }
    }

    /// Calls `hook` on SIGHUP instead of only logging it. The VRRP instances themselves keep
    /// running as they are: a changed `vrrp_instance` needs a restart.
    pub fn on_reload(&mut self, hook: impl FnMut() + Send + 'static) {
        self.reload_hook = Some(Box::new(hook));
    }

    /// Publishes the instances' names and states into `sink` whenever they change.
    pub fn publish_states(&mut self, sink: StateSink) {
        self.state_sink = Some(sink);
    }

    fn publish(&self) {
        if let Some(sink) = &self.state_sink {
            let now = self.states();
            let mut shared = sink.lock().unwrap_or_else(|p| p.into_inner());
            if *shared != now {
                *shared = now;
            }
        }
    }

    /// The instances' names and states (for tests and status output).
    pub fn states(&self) -> Vec<(String, State)> {
        self.instances.iter().map(|i| (i.name.clone(), i.state)).collect()
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

fn pollfd(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lbcore::config::{InstancePlan, Origin, SyncGroupPlan, VipPlan};
    use lbcore::vrrp::{GarpConfig, StartState, Version};

    use super::*;

    fn origin(line: u32) -> Origin {
        Origin {
            file: "k.conf".into(),
            line,
        }
    }

    fn instance(name: &str, vrid: u8, line: u32) -> InstancePlan {
        InstancePlan {
            name: name.into(),
            interface: "eth0".into(),
            version: Version::V3,
            vrid,
            priority: 100,
            advert_interval: Duration::from_secs(1),
            start_state: StartState::Backup,
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            accept: None,
            auth_pass: None,
            vips: vec![VipPlan {
                addr: "10.0.0.100".parse().unwrap(),
                prefix_len: 32,
                dev: None,
                label: None,
                origin: origin(line + 1),
            }],
            vips_excluded: vec![],
            unicast_src: None,
            unicast_peers: vec![],
            track_scripts: vec![],
            track_interfaces: vec![],
            notify: Notify::default(),
            garp: GarpConfig::default(),
            use_vmac: false,
            native_ipv6: false,
            dont_track_primary: false,
            origin: origin(line),
        }
    }

    fn group(name: &str, members: &[&str], line: u32) -> SyncGroupPlan {
        SyncGroupPlan {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            notify: Notify::default(),
            track_scripts: vec![],
            origin: origin(line),
        }
    }

    #[test]
    fn check_plan_reports_every_instance_and_group_error() {
        let mut plan = Plan {
            instances: vec![instance("VI_1", 51, 1), instance("VI_2", 0, 10)],
            ..Plan::default()
        };
        let (warnings, errors) = check_plan(&plan);
        assert!(warnings.is_empty());
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            "k.conf:10: (VI_2) virtual_router_id must be 1..255"
        );

        plan.instances[1].vrid = 52;
        plan.sync_groups = vec![group("G1", &["VI_1", "VI_3"], 20), group("G2", &["VI_1"], 30)];
        let (_, errors) = check_plan(&plan);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "k.conf:20: (G1) sync group member VI_3: no vrrp_instance of that name",
                "k.conf:30: (G2) VI_1 is in more than one sync group",
            ]
        );

        plan.sync_groups = vec![group("G1", &["VI_1", "VI_2"], 20)];
        let (_, errors) = check_plan(&plan);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn the_clock_is_monotonic_nanoseconds_from_start() {
        let c = Clock {
            start: std::time::Instant::now(),
        };
        let a = c.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = c.now();
        assert!(b > a);
        assert!(c.to_std(b) >= c.start + Duration::from_millis(2));
    }
}
