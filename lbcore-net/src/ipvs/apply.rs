//! Diff-based apply: converge the kernel's IPVS table to a desired set of services with the
//! fewest messages.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use lbcore::config::Plan;

use super::attr::cmd;
use super::{
    Dest, Error, Ipvs, Key, Request, Service, del_dest_request, del_service_request, dest_request,
    service_request,
};

/// One service as it should be in the kernel, with its destinations in configuration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The service.
    pub service: Service,
    /// Its destinations.
    pub dests: Vec<Dest>,
}

/// The kernel services and destinations a [`Plan`]'s virtual servers ask for (see the module
/// docs for the mapping). Fails on FULLNAT destinations.
pub fn desired_from_plan(plan: &Plan) -> Result<Vec<Desired>, Error> {
    plan.virtual_servers
        .iter()
        .map(|vs| {
            let service = Service::from_config(&vs.service);
            let dests = vs
                .real_servers
                .iter()
                .map(|rs| Dest::from_config(&service.key, &rs.dest))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Desired { service, dests })
        })
        .collect()
}

/// What [`Ipvs::apply`] sent, by message kind, and what it left alone.
///
/// Guarantees of an apply:
/// - an unchanged service or destination gets no message at all, so its connections,
///   counters, scheduler state and place in the list stay;
/// - a changed service gets one `SET_SERVICE` (`ipvsadm -E`), a changed destination one
///   `SET_DEST` (`ipvsadm -e`); neither is ever deleted and re-added;
/// - services and destinations that are not wanted are deleted (a service with its
///   destinations by one `DEL_SERVICE`), before anything is added;
/// - new destinations are added in configuration order, as `ipvsadm -R` adds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// `NEW_SERVICE` messages.
    pub new_service: usize,
    /// `SET_SERVICE` messages.
    pub set_service: usize,
    /// `DEL_SERVICE` messages.
    pub del_service: usize,
    /// `NEW_DEST` messages.
    pub new_dest: usize,
    /// `SET_DEST` messages.
    pub set_dest: usize,
    /// `DEL_DEST` messages.
    pub del_dest: usize,
    /// Dump requests made to read the current state (`GET_SERVICE` once, `GET_DEST` per
    /// service that exists in both).
    pub reads: usize,
    /// Services left untouched.
    pub unchanged_services: usize,
    /// Destinations left untouched.
    pub unchanged_dests: usize,
}

impl ApplyReport {
    /// Messages that changed the kernel's state.
    pub fn writes(&self) -> usize {
        self.new_service + self.set_service + self.del_service + self.new_dest + self.set_dest + self.del_dest
    }
}

impl std::fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NEW_SERVICE {} SET_SERVICE {} DEL_SERVICE {} NEW_DEST {} SET_DEST {} DEL_DEST {} \
             (reads {}, unchanged: {} services, {} destinations)",
            self.new_service,
            self.set_service,
            self.del_service,
            self.new_dest,
            self.set_dest,
            self.del_dest,
            self.reads,
            self.unchanged_services,
            self.unchanged_dests
        )
    }
}

impl Ipvs {
    /// Converges the kernel to the virtual servers of `desired` (see [`ApplyReport`] for
    /// what is guaranteed). Services in the kernel that the plan does not name are removed.
    pub fn apply(&mut self, desired: &Plan) -> Result<ApplyReport, Error> {
        let d = desired_from_plan(desired)?;
        self.apply_desired(&d)
    }

    /// [`Ipvs::apply`] for kernel-level services (GRE tunnels, checksum flags and the other
    /// settings lbcore's model lacks).
    pub fn apply_desired(&mut self, desired: &[Desired]) -> Result<ApplyReport, Error> {
        self.apply_scoped(desired, None)
    }

    /// [`Ipvs::apply_desired`] for a daemon that shares the kernel's table with others: kernel
    /// services that `desired` does not name are removed only if they are in `owned` (the
    /// services this daemon put there before), as keepalived leaves services it did not
    /// configure alone.
    pub fn apply_owned(&mut self, desired: &[Desired], owned: &HashSet<Key>) -> Result<ApplyReport, Error> {
        self.apply_scoped(desired, Some(owned))
    }

    fn apply_scoped(
        &mut self,
        desired: &[Desired],
        owned: Option<&HashSet<Key>>,
    ) -> Result<ApplyReport, Error> {
        let mut report = ApplyReport::default();
        // Refuse duplicates before touching anything.
        let mut seen = HashSet::new();
        for d in desired {
            if !seen.insert(d.service.key) {
                return Err(Error::invalid(
                    format!("service {}", d.service.key),
                    "listed twice in the configuration".to_string(),
                ));
            }
            let mut ds = HashSet::new();
            for x in &d.dests {
                if !ds.insert((x.addr, x.port)) {
                    return Err(Error::invalid(
                        format!(
                            "destination {} of service {}",
                            super::addr_port(x.addr, x.port),
                            d.service.key
                        ),
                        "listed twice in the configuration".to_string(),
                    ));
                }
            }
        }

        let current = self.services()?;
        report.reads += 1;
        let wanted: HashSet<Key> = desired.iter().map(|d| d.service.key).collect();
        let mut have: HashMap<Key, Service> = HashMap::new();
        let mut deletes = Vec::new();
        for s in current {
            if wanted.contains(&s.service.key) {
                have.insert(s.service.key, s.service);
            } else if owned.is_none_or(|o| o.contains(&s.service.key)) {
                deletes.push(del_service_request(&s.service.key));
                report.del_service += 1;
            }
        }

        let mut dest_deletes = Vec::new();
        let mut changes = Vec::new();
        for d in desired {
            let key = d.service.key;
            let Some(cur) = have.get(&key) else {
                changes.push(service_request(cmd::NEW_SERVICE, &d.service));
                report.new_service += 1;
                for x in &d.dests {
                    changes.push(dest_request(cmd::NEW_DEST, &key, x));
                    report.new_dest += 1;
                }
                continue;
            };
            if cur.same_settings(&d.service) {
                report.unchanged_services += 1;
            } else {
                changes.push(service_request(cmd::SET_SERVICE, &d.service));
                report.set_service += 1;
            }
            let cur_dests = self.dests(&key)?;
            report.reads += 1;
            let mut cur_map: HashMap<(IpAddr, u16), Dest> = cur_dests
                .into_iter()
                .map(|s| ((s.dest.addr, s.dest.port), s.dest))
                .collect();
            for x in &d.dests {
                match cur_map.remove(&(x.addr, x.port)) {
                    None => {
                        changes.push(dest_request(cmd::NEW_DEST, &key, x));
                        report.new_dest += 1;
                    }
                    Some(c) if c == *x => report.unchanged_dests += 1,
                    Some(_) => {
                        changes.push(dest_request(cmd::SET_DEST, &key, x));
                        report.set_dest += 1;
                    }
                }
            }
            let mut gone: Vec<_> = cur_map.into_keys().collect();
            gone.sort();
            for (addr, port) in gone {
                dest_deletes.push(del_dest_request(&key, addr, port));
                report.del_dest += 1;
            }
        }

        let mut all: Vec<Request> = deletes;
        all.extend(dest_deletes);
        all.extend(changes);
        self.exec(all)?;
        Ok(report)
    }
}
