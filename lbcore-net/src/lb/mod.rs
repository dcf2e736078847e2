//! The load-balancing half of `lbd`: the virtual servers of a keepalived.conf (or an
//! `ipvsadm-save` file) run on one interface through a packet driver, with keepalived's health
//! checks deciding which real servers are in, a control socket for `lbd show`, and reloads.
//!
//! Threads: the data plane ([`dataplane`], one per daemon), the manager (health-check results,
//! real-server MAC resolution, reloads: everything that changes the configuration), the
//! control socket ([`crate::control`]) and the checkers' own. They share one
//! [`lbcore::balancer::Balancer`] behind a mutex that the data plane takes once per batch.
//!
//! Configuration changes always go through [`fn@lbcore::config::apply`]: the manager keeps the
//! desired state (services of the plan, destinations as the health checks have them) and
//! converges the balancer to it with the fewest changes, so a health event or a reload never
//! touches what did not change and established connections survive.
//!
//! Direct routing needs each real server's MAC address: the manager resolves it through the
//! kernel's neighbour table before the server is added, and retries every second for servers
//! that do not answer yet (they stay out of the table meanwhile, logged once).
//!
//! With the `AF_PACKET` driver the kernel sees every frame too; [`filter`] installs the
//! nftables rules that keep it from answering the balanced traffic.
//!
//! With [`Settings::offload_ipvs`] (`lbd --offload ipvs`) the kernel forwards: the manager
//! converges the kernel's IPVS table instead ([`crate::ipvs::Ipvs::apply_desired`], the same
//! fewest-messages diff), so health-check changes reach the kernel as single `SET_DEST` /
//! `NEW_DEST` / `DEL_DEST` messages; there is no data-plane thread and no host filter (IPVS
//! consumes the packets itself), and the control socket refers to `ipvsadm -Ln`. On exit the
//! virtual servers lbd added are removed from the kernel, as keepalived removes its own.

pub mod dataplane;
pub mod filter;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use lbcore::balancer::{Balancer, BalancerConfig, Service};
use lbcore::config::{DesiredService, Plan, VirtualServerPlan, apply, apply::check as check_apply};
use lbcore::conn::Conn;
use lbcore::health::Action;
use lbcore::render::{ListFormat, ListOptions};
use lbcore::service::{DestConfig, Forward};
use lbcore::time::Instant;
use lbcore::vrrp::State;

use crate::check::HealthService;
use crate::control::{ControlServer, ListKind, Request, Responder};
use crate::driver::DriverStats;
use crate::driver::afpacket::{AfPacket, AfPacketConfig};
use crate::driver::neigh;
use crate::netlink::Rtnl;
use filter::{FilterService, HostFilter};

/// Settings of the load-balancing part (command-line options of `lbd`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The interface the data plane runs on (default: the interface of the VRRP instance that
    /// holds a virtual server's VIP).
    pub interface: Option<String>,
    /// The control socket.
    pub control: PathBuf,
    /// Connection-table capacity.
    pub conn_capacity: usize,
    /// FULLNAT local addresses.
    pub local_addrs: Vec<IpAddr>,
    /// Install the nftables host filter ([`filter`]).
    pub host_filter: bool,
    /// `--offload ipvs`: the kernel's IPVS forwards; lbd programs it (health checks and VRRP
    /// stay ours) and runs no data plane of its own.
    pub offload_ipvs: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interface: None,
            control: PathBuf::from(crate::control::DEFAULT_SOCKET),
            conn_capacity: 1 << 20,
            local_addrs: Vec::new(),
            host_filter: true,
            offload_ipvs: false,
        }
    }
}

/// The smallest connection table put in 2 MiB pages: with 4 KiB pages, a table this large
/// outgrows the reach of the data TLB (2,048 entries: 8 MiB), and lookups miss it as well as
/// the cache.
const HUGE_PAGE_TABLE_MIN_BYTES: usize = 8 * 1024 * 1024;

/// The balancer, with a large connection table in memory the kernel backs with 2 MiB pages
/// (BENCHMARKS.md, tuning step 11: fewer TLB misses: 105 against 129 ns per packet at 1M flows).
/// The table and the service slots live as long as the process, as the daemon's one balancer
/// does. Where the mapping fails the table comes from the allocator.
fn balancer_in_huge_pages(config: BalancerConfig) -> Result<Balancer<'static>, String> {
    let bytes = config.conn_capacity.saturating_mul(size_of::<Conn>());
    if bytes >= HUGE_PAGE_TABLE_MIN_BYTES {
        match crate::HugePageSlice::new(config.conn_capacity, Conn::EMPTY) {
            Ok(table) => {
                let huge = usize::try_from(table.huge_page_bytes()).unwrap_or(usize::MAX);
                tracing::info!(
                    "connection table: {} MiB, {} MiB of it in 2 MiB pages",
                    bytes >> 20,
                    huge >> 20
                );
                let services = vec![Service::default(); config.max_services].into_boxed_slice();
                return Balancer::with_storage(config, Box::leak(services), table.leak())
                    .map_err(|e| format!("balancer: {e}"));
            }
            Err(e) => tracing::warn!("connection table in huge pages: {e}; taking it from the allocator"),
        }
    }
    Balancer::new(config).map_err(|e| format!("balancer: {e}"))
}

/// What the threads share.
pub struct Shared {
    balancer: Mutex<Balancer<'static>>,
    /// The kernel's IPVS, in offload mode.
    ipvs: Option<Mutex<crate::ipvs::Ipvs>>,
    vrrp: Arc<Mutex<Vec<(String, State)>>>,
    driver: Mutex<(DriverStats, u64)>,
    start: std::time::Instant,
}

impl Shared {
    /// The balancer, locked (a poisoned lock is taken over: the balancer never panics midway
    /// through a change, so its state is consistent).
    pub fn balancer(&self) -> MutexGuard<'_, Balancer<'static>> {
        self.balancer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The daemon's monotonic time, as the core takes it.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn set_driver_stats(&self, stats: DriverStats, other_host: u64) {
        *self.driver.lock().unwrap_or_else(|p| p.into_inner()) = (stats, other_host);
    }

    /// The VRRP states the runner publishes.
    pub fn vrrp_states(&self) -> Arc<Mutex<Vec<(String, State)>>> {
        Arc::clone(&self.vrrp)
    }
}

impl Responder for Shared {
    fn respond(&self, req: Request) -> String {
        match req {
            Request::Vrrp => {
                let states = self.vrrp.lock().unwrap_or_else(|p| p.into_inner()).clone();
                states
                    .iter()
                    .map(|(name, s)| format!("{name} {}\n", crate::vrrp::state_name(*s)))
                    .collect()
            }
            Request::List { .. } | Request::Counters if self.ipvs.is_some() => {
                "error: lbd runs with --offload ipvs: the kernel forwards, list its table with ipvsadm -Ln\n"
                    .into()
            }
            Request::Counters => {
                let lb = self.balancer();
                let c = *lb.counters();
                let mut out = String::new();
                for (name, v) in [
                    ("rx", c.rx),
                    ("forwarded", c.forwarded),
                    ("passed", c.passed),
                    ("dropped", c.dropped),
                    ("conns_created", c.conns_created),
                    ("conns_expired", c.conns_expired),
                    ("evicted", c.evicted),
                    ("templates_created", c.templates_created),
                    ("reused", c.reused),
                ] {
                    out.push_str(&format!("{name} {v}\n"));
                }
                for (reason, n) in lb.drop_counts().filter(|(_, n)| *n > 0) {
                    out.push_str(&format!("drop.{} {n}\n", reason.name()));
                }
                drop(lb);
                let (d, other_host) = *self.driver.lock().unwrap_or_else(|p| p.into_inner());
                for (name, v) in [
                    ("rx_frames", d.rx_frames),
                    ("rx_bytes", d.rx_bytes),
                    ("rx_truncated", d.rx_truncated),
                    ("rx_ring_drops", d.rx_ring_drops),
                    ("rx_csum_completed", d.rx_csum_completed),
                    ("rx_gso_frames", d.rx_gso_frames),
                    ("rx_gso_segments", d.rx_gso_segments),
                    ("rx_gso_dropped", d.rx_gso_dropped),
                    ("rx_vlan", d.rx_vlan),
                    ("rx_other_host", other_host),
                    ("tx_frames", d.tx_frames),
                    ("tx_bytes", d.tx_bytes),
                    ("tx_dropped", d.tx_dropped),
                    ("tx_unresolved", d.tx_unresolved),
                    ("tx_wrong_link", d.tx_wrong_link),
                    ("passed", d.passed),
                ] {
                    out.push_str(&format!("driver.{name} {v}\n"));
                }
                out
            }
            Request::List { format, exact } => {
                let lb = self.balancer();
                let info = lb.table_info();
                if format == ListKind::Conns {
                    return lbcore::render::list_conns(&lb.conn_views(self.now()));
                }
                let format = match format {
                    ListKind::Stats => ListFormat::Stats,
                    ListKind::Rate => ListFormat::Rate,
                    _ => ListFormat::Plain,
                };
                lbcore::render::list_with(
                    &info,
                    &lb.service_views(),
                    ListOptions {
                        format,
                        exact,
                        ..ListOptions::default()
                    },
                )
            }
        }
    }
}

/// A virtual server with every configured destination (real servers and sorry server), and a
/// placeholder MAC where lbd resolves one itself (direct routing): what
/// [`lbcore::config::apply::check`] needs to judge capacity and validity before anything runs.
pub fn trial_service(vs: &VirtualServerPlan) -> DesiredService {
    DesiredService {
        service: vs.service,
        dests: vs
            .real_servers
            .iter()
            .map(|r| r.dest)
            .chain(vs.sorry_server)
            .map(|d| {
                if d.forward == Forward::DirectRouting && d.mac.is_none() {
                    d.mac([2, 0, 0, 0, 0, 0])
                } else {
                    d
                }
            })
            .collect(),
    }
}

/// The interface for the data plane: `--interface`, else the interface of the VRRP instance
/// whose virtual addresses include a virtual server's VIP.
pub fn pick_interface(plan: &Plan, explicit: Option<&str>) -> Result<String, String> {
    if let Some(i) = explicit {
        return Ok(i.to_string());
    }
    let vips: HashSet<IpAddr> = plan
        .virtual_servers
        .iter()
        .filter_map(|vs| match vs.service.key {
            lbcore::service::ServiceKey::Addr { vip, .. } => Some(vip),
            lbcore::service::ServiceKey::Fwmark { .. } => None,
        })
        .collect();
    for inst in &plan.instances {
        if inst.vips.iter().any(|v| vips.contains(&v.addr)) {
            return Ok(inst.interface.clone());
        }
    }
    Err("no interface for the virtual servers: none of their VIPs is a vrrp_instance's virtual_ipaddress; say which with --interface IF".into())
}

/// Messages to the manager thread.
enum Command {
    /// Reload from this plan (already parsed and checked).
    Reload(Box<Plan>),
    Stop,
}

/// A handle that asks the running daemon to reload (given to the VRRP runner's SIGHUP hook).
#[derive(Clone)]
pub struct ReloadHandle {
    tx: Sender<Command>,
    load: Arc<dyn Fn() -> Option<Plan> + Send + Sync>,
}

impl ReloadHandle {
    /// Re-reads the configuration; a valid one replaces the running one, an invalid one is
    /// reported (file:line: reason) and changes nothing.
    pub fn reload(&self) {
        match (self.load)() {
            Some(plan) => {
                let _ = self.tx.send(Command::Reload(Box::new(plan)));
            }
            None => tracing::error!("reload refused: the running configuration stays"),
        }
    }
}

/// The running load balancer.
pub struct LbDaemon {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    dataplane: Option<JoinHandle<io::Result<()>>>,
    manager: Option<JoinHandle<()>>,
    commands: Sender<Command>,
    _control: ControlServer,
}

impl LbDaemon {
    /// Builds the balancer for `plan`, starts the data plane on the interface, the health
    /// checks and the control socket.
    pub fn start(
        plan: Plan,
        settings: &Settings,
        vrrp_states: Arc<Mutex<Vec<(String, State)>>>,
    ) -> Result<LbDaemon, String> {
        // The kernel's IPVS (offload) sees the marks; a packet socket does not.
        for vs in plan.virtual_servers.iter().filter(|_| !settings.offload_ipvs) {
            if let lbcore::service::ServiceKey::Fwmark { mark, .. } = vs.service.key {
                tracing::warn!(
                    "{}: virtual_server fwmark {mark}: packet sockets do not see netfilter marks, so the AF_PACKET data plane never matches it",
                    vs.origin
                );
            }
        }
        let ipvs = if settings.offload_ipvs {
            let k = crate::ipvs::Ipvs::new().map_err(|e| format!("--offload ipvs: {e}"))?;
            tracing::info!("offload: the kernel's IPVS forwards; lbd programs it");
            Some(Mutex::new(k))
        } else {
            None
        };
        let ifname = if plan.virtual_servers.is_empty() || ipvs.is_some() {
            None
        } else {
            Some(pick_interface(&plan, settings.interface.as_deref())?)
        };
        let (mac, ifindex, mtu) = match &ifname {
            Some(name) => {
                let link = Rtnl::new()
                    .and_then(|mut r| r.link_by_name(name))
                    .map_err(|e| format!("interface {name}: {e}"))?
                    .ok_or_else(|| format!("no interface {name}"))?;
                let mac = link
                    .mac
                    .ok_or_else(|| format!("{name} has no Ethernet address"))?;
                let mtu = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .unwrap_or(1500);
                (mac, link.index, mtu)
            }
            None => ([0; 6], 0, 1500),
        };
        let mut local_addrs = heapless::Vec::new();
        for a in &settings.local_addrs {
            local_addrs.push(*a).map_err(|_| {
                format!(
                    "at most {} FULLNAT local addresses",
                    lbcore::balancer::MAX_LOCAL_ADDRS
                )
            })?;
        }
        let config = BalancerConfig {
            conn_capacity: settings.conn_capacity,
            max_services: plan.virtual_servers.len().max(16),
            mac,
            local_addrs,
            tunnel_source_v4: None,
            tunnel_source_v6: None,
            ..BalancerConfig::default()
        };
        let mut config = config;
        if let Some(name) = &ifname {
            let addrs = Rtnl::new()
                .and_then(|mut r| r.addresses(Some(ifindex)))
                .map_err(|e| format!("addresses of {name}: {e}"))?;
            config.tunnel_source_v4 = addrs.iter().find_map(|a| match a.addr {
                IpAddr::V4(v) => Some(v),
                IpAddr::V6(_) => None,
            });
            config.tunnel_source_v6 = addrs.iter().find_map(|a| match a.addr {
                IpAddr::V6(v) if !v.is_unicast_link_local() => Some(v),
                _ => None,
            });
        }
        let balancer = balancer_in_huge_pages(config)?;
        let shared = Arc::new(Shared {
            balancer: Mutex::new(balancer),
            ipvs,
            vrrp: vrrp_states,
            driver: Mutex::new((DriverStats::default(), 0)),
            start: std::time::Instant::now(),
        });
        let control = ControlServer::start(&settings.control, Arc::clone(&shared) as Arc<dyn Responder>)
            .map_err(|e| format!("control socket {}: {e}", settings.control.display()))?;

        let mut manager = Manager::new(Arc::clone(&shared), ifindex, settings.clone())?;
        manager.set_plan(plan)?;

        let stop = Arc::new(AtomicBool::new(false));
        let dataplane = match &ifname {
            None => None,
            Some(name) => {
                let mut io = AfPacket::open(name, AfPacketConfig::default())
                    .map_err(|e| format!("AF_PACKET on {name}: {e}"))?;
                tracing::info!("data plane on {name} (AF_PACKET, MTU {mtu})");
                let (sh, st) = (Arc::clone(&shared), Arc::clone(&stop));
                Some(
                    std::thread::Builder::new()
                        .name("lbd-dataplane".into())
                        .spawn(move || {
                            let r = dataplane::run(sh, &mut io, mac, mtu, st);
                            if let Err(e) = &r {
                                tracing::error!("data plane stopped: {e}");
                            }
                            r
                        })
                        .map_err(|e| format!("data-plane thread: {e}"))?,
                )
            }
        };
        let (tx, rx) = mpsc::channel();
        let manager = std::thread::Builder::new()
            .name("lbd-manager".into())
            .spawn(move || manager.run(rx))
            .map_err(|e| format!("manager thread: {e}"))?;
        Ok(LbDaemon {
            shared,
            stop,
            dataplane,
            manager: Some(manager),
            commands: tx,
            _control: control,
        })
    }

    /// A handle for SIGHUP; `load` re-reads the configuration (returning `None` after
    /// reporting its errors).
    pub fn reload_handle(&self, load: Arc<dyn Fn() -> Option<Plan> + Send + Sync>) -> ReloadHandle {
        ReloadHandle {
            tx: self.commands.clone(),
            load,
        }
    }

    /// The shared state (tests, status).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops every thread; the host filter is removed.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.commands.send(Command::Stop);
        if let Some(t) = self.manager.take() {
            let _ = t.join();
        }
        if let Some(t) = self.dataplane.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LbDaemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The manager thread's state.
struct Manager {
    shared: Arc<Shared>,
    ifindex: u32,
    settings: Settings,
    plan: Plan,
    health: Option<HealthService>,
    /// Notify commands started and not reaped yet.
    notifiers: Vec<std::process::Child>,
    /// Resolved real-server MACs (direct routing).
    macs: HashMap<IpAddr, [u8; 6]>,
    /// Servers whose MAC is not known yet (logged once).
    unresolved: HashSet<IpAddr>,
    filter: Option<HostFilter>,
    /// Offload: the kernel services lbd has put there (only those are ever removed).
    owned: HashSet<crate::ipvs::Key>,
}

impl Manager {
    fn new(shared: Arc<Shared>, ifindex: u32, settings: Settings) -> Result<Manager, String> {
        Ok(Manager {
            shared,
            ifindex,
            settings,
            plan: Plan::default(),
            health: None,
            notifiers: Vec::new(),
            macs: HashMap::new(),
            unresolved: HashSet::new(),
            filter: None,
            owned: HashSet::new(),
        })
    }

    /// The desired services: the plan's, with the destinations the health checks have in,
    /// direct-routing ones only once their MAC is known.
    fn desired(&mut self) -> Vec<DesiredService> {
        let mut out = Vec::with_capacity(self.plan.virtual_servers.len());
        for (i, vs) in self.plan.virtual_servers.iter().enumerate() {
            let mut dests = Vec::new();
            let current = self.health.as_ref().and_then(|h| h.health(i)).map(|h| h.dests());
            for d in current.unwrap_or_default() {
                // The kernel (offload) finds the MAC itself.
                if d.forward == Forward::DirectRouting && d.mac.is_none() && self.shared.ipvs.is_none() {
                    match self.macs.get(&d.addr) {
                        Some(mac) => dests.push(d.mac(*mac)),
                        None => {
                            if self.unresolved.insert(d.addr) {
                                tracing::warn!(
                                    "real server {}: no MAC address yet (direct routing needs it); it stays out until it answers ARP/ND",
                                    d.addr
                                );
                            }
                        }
                    }
                } else {
                    dests.push(d);
                }
            }
            out.push(DesiredService {
                service: vs.service,
                dests,
            });
        }
        out
    }

    /// Resolves the MAC addresses of the real servers not known yet: direct routing needs
    /// them in the destination; for the routed methods it warms the kernel's neighbour table
    /// that the driver's routed output reads, so that the first packets are not dropped while
    /// the address is resolved. Whether a direct-routing server became known.
    fn resolve_macs(&mut self, wait: Duration) -> bool {
        if self.ifindex == 0 {
            return false;
        }
        let wanted: Vec<DestConfig> = self
            .plan
            .virtual_servers
            .iter()
            .flat_map(|vs| vs.real_servers.iter().map(|r| r.dest).chain(vs.sorry_server))
            .filter(|d| !self.macs.contains_key(&d.addr))
            .collect();
        let mut found = false;
        for d in wanted {
            if let Ok(Some(mac)) = neigh::resolve(self.ifindex, d.addr, wait) {
                if self.unresolved.remove(&d.addr) {
                    tracing::info!("real server {}: MAC address {}", d.addr, fmt_mac(&mac));
                }
                self.macs.insert(d.addr, mac);
                found |= d.forward == Forward::DirectRouting;
            }
        }
        found
    }

    fn converge(&mut self) {
        let desired = self.desired();
        if let Some(k) = &self.shared.ipvs {
            let mut k = k.lock().unwrap_or_else(|p| p.into_inner());
            let kernel: Result<Vec<crate::ipvs::Desired>, crate::ipvs::Error> = desired
                .iter()
                .map(|d| {
                    let service = crate::ipvs::Service::from_config(&d.service);
                    let dests = d
                        .dests
                        .iter()
                        .map(|x| crate::ipvs::Dest::from_config(&service.key, x))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(crate::ipvs::Desired { service, dests })
                })
                .collect();
            self.owned
                .extend(desired.iter().map(|d| crate::ipvs::Key::from(d.service.key)));
            match kernel.and_then(|d| k.apply_owned(&d, &self.owned)) {
                Ok(r) if r.writes() > 0 => tracing::info!("kernel IPVS updated: {r:?}"),
                Ok(_) => {}
                Err(e) => tracing::error!("cannot program the kernel's IPVS: {e}"),
            }
            return;
        }
        let mut lb = self.shared.balancer();
        match apply(&mut lb, &desired) {
            Ok(r) if r.changed() => tracing::debug!("data plane updated: {r}"),
            Ok(_) => {}
            Err(e) => tracing::error!("cannot apply the configuration: {e}"),
        }
    }

    fn filter_services(&self) -> Vec<FilterService> {
        self.plan
            .virtual_servers
            .iter()
            .map(|vs| FilterService {
                service: vs.service,
                dests: vs
                    .real_servers
                    .iter()
                    .map(|r| (r.dest.addr, r.dest.port, r.dest.forward))
                    .chain(vs.sorry_server.iter().map(|d| (d.addr, d.port, d.forward)))
                    .collect(),
            })
            .collect()
    }

    fn update_filter(&mut self) -> Result<(), String> {
        if !self.settings.host_filter || self.ifindex == 0 {
            return Ok(());
        }
        let services = self.filter_services();
        let warnings = match &mut self.filter {
            Some(f) => f.update(&services, &self.settings.local_addrs),
            None => HostFilter::install(&services, &self.settings.local_addrs).map(|(f, w)| {
                self.filter = Some(f);
                w
            }),
        }
        .map_err(|e| format!("host filter: {e}"))?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(())
    }

    /// Takes `plan` as the running configuration: checks it against the balancer first (a
    /// refused plan changes nothing), then restarts the health checks and converges.
    fn set_plan(&mut self, plan: Plan) -> Result<(), String> {
        let health =
            HealthService::new_migrated(&plan, self.health.as_ref()).map_err(|errors| errors.join("\n"))?;
        // What apply would need, with placeholder MACs: capacity and validity only.
        let trial: Vec<DesiredService> = plan.virtual_servers.iter().map(trial_service).collect();
        check_apply(&self.shared.balancer(), &trial).map_err(|e| e.to_string())?;
        if let Some(old) = self.health.replace(health) {
            // The old checks stop; their shutdown actions are moot (the new state rules).
            let _ = old.shutdown();
        }
        self.plan = plan;
        self.update_filter()?;
        self.resolve_macs(Duration::from_millis(500));
        self.converge();
        Ok(())
    }

    /// Carries out the health checks' actions: destination changes are folded into the next
    /// [`Manager::converge`] (the health state is the desired state), notifications run,
    /// events are logged as keepalived words them. Whether the destinations changed.
    fn act(&mut self, actions: Vec<(usize, Action)>) -> bool {
        let mut changed = false;
        for (_, action) in actions {
            match action {
                Action::AddDest(_) | Action::RemoveDest { .. } | Action::SetWeight { .. } => changed = true,
                Action::RunNotify { cmd, .. } => match crate::check::spawn_notify(&cmd) {
                    Ok(child) => self.notifiers.push(child),
                    Err(e) => tracing::error!("cannot run notify command {cmd:?}: {e}"),
                },
                Action::Event(e) => tracing::info!("{e}"),
            }
        }
        self.notifiers.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        changed
    }

    fn run(mut self, commands: Receiver<Command>) {
        let mut next_resolve = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            match &mut self.health {
                Some(h) => h.wait(Duration::from_millis(200)),
                None => std::thread::sleep(Duration::from_millis(200)),
            }
            match commands.try_recv() {
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => break,
                Ok(Command::Reload(plan)) => {
                    tracing::info!("Reloading configuration");
                    match self.set_plan(*plan) {
                        Ok(()) => tracing::info!("Configuration reloaded"),
                        Err(e) => {
                            for line in e.lines() {
                                tracing::error!("{line}");
                            }
                            tracing::error!("reload refused: the running configuration stays");
                        }
                    }
                }
                Err(TryRecvError::Empty) => {}
            }
            let actions = self.health.as_mut().map(HealthService::poll).unwrap_or_default();
            if self.act(actions) {
                self.converge();
            }
            if !self.unresolved.is_empty() && std::time::Instant::now() >= next_resolve {
                next_resolve = std::time::Instant::now() + Duration::from_secs(1);
                if self.resolve_macs(Duration::from_millis(100)) {
                    self.converge();
                }
            }
        }
        if let Some(h) = self.health.take() {
            let actions = h.shutdown();
            let _ = self.act(actions);
        }
        // As keepalived on shutdown: the virtual servers lbd put into the kernel go (and only
        // those; services configured by others stay).
        if let Some(k) = &self.shared.ipvs {
            let mut k = k.lock().unwrap_or_else(|p| p.into_inner());
            for vs in &self.plan.virtual_servers {
                let key = &crate::ipvs::Key::from(vs.service.key);
                match k.del_service(key) {
                    Ok(()) => tracing::info!("Removing Virtual Server {key} from the kernel"),
                    Err(e) => tracing::warn!("removing {key} from the kernel: {e}"),
                }
            }
        }
        if let Some(mut f) = self.filter.take() {
            let _ = f.remove();
        }
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_connection_table_goes_in_huge_pages_a_small_one_to_the_allocator() {
        let small = balancer_in_huge_pages(BalancerConfig {
            conn_capacity: 1000,
            ..BalancerConfig::default()
        })
        .expect("small table");
        assert_eq!(small.conn_table().capacity(), 1000);

        // lbd's default capacity: 64 MiB, mapped for the rest of this test process (as in lbd).
        let large = balancer_in_huge_pages(BalancerConfig {
            conn_capacity: 1 << 20,
            ..BalancerConfig::default()
        })
        .expect("large table");
        assert_eq!(large.conn_table().capacity(), 1 << 20);
        let at: *const Conn = large.conn_table().get(0).expect("entry 0");
        let at = at as usize;
        assert_eq!(
            at % crate::HUGE_PAGE_BYTES,
            0,
            "the table is the huge-page mapping"
        );
    }
}
