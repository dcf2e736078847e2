//! Converging a running [`Balancer`] to a desired set of services and destinations with the
//! fewest changes — what a configuration reload (SIGHUP) needs.
//!
//! Guarantees:
//! - a service whose configuration is unchanged is not touched, and neither are its unchanged
//!   destinations, so their connections, templates, counters and scheduler state live on;
//! - a changed service is edited in place (`ipvsadm -E`), never removed and re-added, unless
//!   its key changed (then it is a different service);
//! - a destination is matched by address and port within its service; a changed one is edited
//!   (`ipvsadm -e`) and keeps its place in the list; new ones are added in configuration order
//!   (each at the head of the list, as the kernel does for keepalived's adds);
//! - services and destinations that are no longer wanted are removed, before anything is added,
//!   so that the capacities are checked against the final configuration.
//!
//! [`check`] tells, without changing anything, whether [`apply`] would fail on capacity or on a
//! destination the balancer cannot serve; a daemon runs it first so that a bad new
//! configuration leaves the running one as it was.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use crate::balancer::{Balancer, ConfigError, DestId, ServiceId};
use crate::service::{DestConfig, ServiceConfig, ServiceKey};

/// One service as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredService {
    /// The service.
    pub service: ServiceConfig,
    /// Its destinations, in configuration order.
    pub dests: Vec<DestConfig>,
}

/// How many of each change [`apply`] made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Services added.
    pub services_added: usize,
    /// Services edited in place.
    pub services_edited: usize,
    /// Services removed.
    pub services_removed: usize,
    /// Services left exactly as they were (with all their destinations).
    pub services_unchanged: usize,
    /// Destinations added.
    pub dests_added: usize,
    /// Destinations edited in place.
    pub dests_edited: usize,
    /// Destinations removed.
    pub dests_removed: usize,
}

impl ApplyReport {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.services_added
            + self.services_edited
            + self.services_removed
            + self.dests_added
            + self.dests_edited
            + self.dests_removed
            > 0
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "services: {} added, {} edited, {} removed, {} unchanged; destinations: {} added, {} edited, {} removed",
            self.services_added,
            self.services_edited,
            self.services_removed,
            self.services_unchanged,
            self.dests_added,
            self.dests_edited,
            self.dests_removed
        )
    }
}

/// A change the balancer refused, naming the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyError {
    /// The service (`TCP 10.0.0.1:80`, `FWM 5`).
    pub service: String,
    /// The destination (`10.0.0.2:80`), when the error is about one.
    pub dest: Option<String>,
    /// Why.
    pub error: ConfigError,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.dest {
            Some(d) => write!(f, "service {} destination {}: {}", self.service, d, self.error),
            None => write!(f, "service {}: {}", self.service, self.error),
        }
    }
}

/// `TCP 10.0.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 5`, as ipvsadm names services.
pub fn service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, vip, port } => {
            alloc::format!("{} {}", proto.name(), addr_port(*vip, *port))
        }
        ServiceKey::Fwmark { mark, .. } => alloc::format!("FWM {mark}"),
    }
}

fn addr_port(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => alloc::format!("{a}:{port}"),
        IpAddr::V6(a) => alloc::format!("[{a}]:{port}"),
    }
}

fn err(svc: &ServiceConfig, dest: Option<&DestConfig>, error: ConfigError) -> ApplyError {
    ApplyError {
        service: service_name(&svc.key),
        dest: dest.map(|d| addr_port(d.addr, d.port)),
        error,
    }
}

/// The live (not removed) destinations of a service, by address and port.
fn live_dests(lb: &Balancer<'_>, svc: ServiceId) -> Vec<(DestId, DestConfig)> {
    lb.dest_ids(svc)
        .filter_map(|d| lb.dest_info(d).filter(|i| !i.removed).map(|i| (d, i.config)))
        .collect()
}

/// Whether [`apply`] of `desired` would succeed on `lb`: the services fit the service table,
/// every service and destination is one the balancer accepts. Checks by building the desired
/// configuration on a scratch balancer with the same settings but a minimal connection table.
pub fn check(lb: &Balancer<'_>, desired: &[DesiredService]) -> Result<(), ApplyError> {
    let mut config = lb.config().clone();
    config.conn_capacity = 1;
    let mut scratch = Balancer::new(config).map_err(|e| ApplyError {
        service: String::from("(balancer)"),
        dest: None,
        error: e,
    })?;
    for d in desired {
        let id = scratch
            .add_service(d.service)
            .map_err(|e| err(&d.service, None, e))?;
        for dest in &d.dests {
            scratch
                .add_dest(id, *dest)
                .map_err(|e| err(&d.service, Some(dest), e))?;
        }
    }
    Ok(())
}

/// Converges `lb` to `desired` (see the module documentation). Run [`check`] first for an
/// all-or-nothing reload: after a failure here the changes made before it stay.
pub fn apply(lb: &mut Balancer<'_>, desired: &[DesiredService]) -> Result<ApplyReport, ApplyError> {
    let mut report = ApplyReport::default();

    // Removals first, so that capacities are checked against the final configuration.
    let unwanted: Vec<ServiceId> = lb
        .service_ids()
        .filter(|id| {
            lb.service_config(*id)
                .is_some_and(|c| !desired.iter().any(|d| d.service.key == c.key))
        })
        .collect();
    for id in unwanted {
        if let Some(cfg) = lb.service_config(id).copied() {
            lb.remove_service(id).map_err(|e| err(&cfg, None, e))?;
            report.services_removed += 1;
        }
    }

    for d in desired {
        let svc = &d.service;
        let before = report;
        let (id, existed) = match lb.find_service(&svc.key) {
            Some(id) => {
                if lb.service_config(id) != Some(svc) {
                    lb.edit_service(id, *svc).map_err(|e| err(svc, None, e))?;
                    report.services_edited += 1;
                }
                (id, true)
            }
            None => {
                let id = lb.add_service(*svc).map_err(|e| err(svc, None, e))?;
                report.services_added += 1;
                (id, false)
            }
        };
        let live = live_dests(lb, id);
        for (dest_id, cfg) in &live {
            if !d.dests.iter().any(|w| w.addr == cfg.addr && w.port == cfg.port) {
                lb.remove_dest(*dest_id).map_err(|e| err(svc, Some(cfg), e))?;
                report.dests_removed += 1;
            }
        }
        for want in &d.dests {
            match live
                .iter()
                .find(|(_, c)| c.addr == want.addr && c.port == want.port)
            {
                Some((dest_id, current)) => {
                    if current != want {
                        lb.edit_dest(*dest_id, *want)
                            .map_err(|e| err(svc, Some(want), e))?;
                        report.dests_edited += 1;
                    }
                }
                None => {
                    lb.add_dest(id, *want).map_err(|e| err(svc, Some(want), e))?;
                    report.dests_added += 1;
                }
            }
        }
        if existed && report == before {
            report.services_unchanged += 1;
        }
    }
    Ok(report)
}
