//! Sync groups (keepalived `vrrp_sync_group`): several instances that change state together,
//! so that, say, the outside and inside VIPs of a NAT router always live on the same box.
//!
//! A [`SyncGroup`] owns its member [`Router`]s and forwards inputs to them; after every input
//! it reconciles them with keepalived's rules (`vrrp_sync.c`):
//! - a member in Fault (its own tracked object or interface failed) puts every member in
//!   Fault (a master among them sends a priority-0 advert and gives up its VIPs); they all
//!   leave Fault together once no member has a fault of its own;
//! - a member leaving Master for Backup (it heard a better master) takes the others along;
//! - a member becoming Master takes the others along;
//! - a member whose master-down timer expires does not become master on its own: it waits
//!   until every member wants to ("prefer backup state to avoid thrashing"), then all go.
//!
//! Same guarantees as [`Router`]: no I/O, no clock, no panics, bounded work per call.

use super::action::{Action, State};
use super::config::TrackId;
use super::router::Router;
use super::wire::{self, Rx};
use crate::time::Instant;

/// Default number of members a [`SyncGroup`] can hold.
pub const MAX_GROUP: usize = 8;

/// A sync group of up to `N` routers.
#[derive(Clone, Debug)]
pub struct SyncGroup<const N: usize = MAX_GROUP> {
    members: heapless::Vec<Router, N>,
    /// Each member's state after the last reconciliation, to see what changed since.
    seen: heapless::Vec<State, N>,
    /// Packets whose VRID and family match no member.
    unmatched: u64,
}

impl<const N: usize> Default for SyncGroup<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SyncGroup<N> {
    /// An empty group.
    pub const fn new() -> Self {
        SyncGroup {
            members: heapless::Vec::new(),
            seen: heapless::Vec::new(),
            unmatched: 0,
        }
    }

    /// Add a router (before starting the group); returns its member index, or the router back
    /// when the group is full.
    // Handing the router back is the only way not to lose it without an allocator to box it.
    #[allow(clippy::result_large_err)]
    pub fn add(&mut self, mut router: Router) -> Result<usize, Router> {
        router.set_in_group(true);
        let state = router.state();
        match self.members.push(router) {
            Ok(()) => {
                // Same capacity as `members`, which just had room.
                let _ = self.seen.push(state);
                Ok(self.members.len() - 1)
            }
            Err(mut r) => {
                r.set_in_group(false);
                Err(r)
            }
        }
    }

    /// The members, by index.
    pub fn members(&self) -> &[Router] {
        &self.members
    }

    /// Member `i`.
    pub fn member(&self, i: usize) -> Option<&Router> {
        self.members.get(i)
    }

    /// The group's state: Fault if any member is, else Master if any is, else Backup if any
    /// is, else Initialize.
    pub fn state(&self) -> State {
        let any = |s: State| self.members.iter().any(|r| r.state() == s);
        if any(State::Fault) {
            State::Fault
        } else if any(State::Master) {
            State::Master
        } else if any(State::Backup) {
            State::Backup
        } else {
            State::Initialize
        }
    }

    /// Packets that matched no member (by family and VRID).
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// The earliest timer of any member.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Router::poll_timeout).min()
    }

    /// A packet arrived: handed to the member with its family and VRID (see
    /// [`wire::peek_vrid`]); counted in [`SyncGroup::unmatched`] if there is none.
    pub fn handle_packet(&mut self, now: Instant, bytes: &[u8], rx: Rx) {
        let target = wire::peek_vrid(bytes, rx).and_then(|(family, vrid)| {
            self.members
                .iter()
                .position(|r| r.vrid() == vrid && r.config().family() == family)
        });
        match target {
            Some(i) => self.handle_packet_to(now, i, bytes, rx),
            None => self.unmatched += 1,
        }
    }

    /// A packet for member `i` (the driver demultiplexed it).
    pub fn handle_packet_to(&mut self, now: Instant, i: usize, bytes: &[u8], rx: Rx) {
        if let Some(r) = self.members.get_mut(i) {
            r.handle_packet(now, bytes, rx);
        }
        self.reconcile(now);
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for r in &mut self.members {
            r.handle_timeout(now);
        }
        self.reconcile(now);
    }

    /// Start every member.
    pub fn start(&mut self, now: Instant) {
        for r in &mut self.members {
            r.start(now);
        }
        self.reconcile(now);
    }

    /// Shut every member down.
    pub fn shutdown(&mut self, now: Instant) {
        for r in &mut self.members {
            r.shutdown(now);
        }
        self.reconcile(now);
    }

    /// [`Router::set_track`] on member `i`.
    pub fn set_track(&mut self, now: Instant, i: usize, id: TrackId, ok: bool) {
        if let Some(r) = self.members.get_mut(i) {
            r.set_track(now, id, ok);
        }
        self.reconcile(now);
    }

    /// [`Router::set_priority_delta`] on member `i`.
    pub fn set_priority_delta(&mut self, now: Instant, i: usize, delta: i16) {
        if let Some(r) = self.members.get_mut(i) {
            r.set_priority_delta(now, delta);
        }
        self.reconcile(now);
    }

    /// [`Router::interface_up`] on member `i`.
    pub fn interface_up(&mut self, now: Instant, i: usize) {
        if let Some(r) = self.members.get_mut(i) {
            r.interface_up(now);
        }
        self.reconcile(now);
    }

    /// [`Router::interface_down`] on member `i`.
    pub fn interface_down(&mut self, now: Instant, i: usize) {
        if let Some(r) = self.members.get_mut(i) {
            r.interface_down(now);
        }
        self.reconcile(now);
    }

    /// The next output of any member, with the member's index. Call until `None`.
    pub fn poll_action(&mut self) -> Option<(usize, Action)> {
        self.members
            .iter_mut()
            .enumerate()
            .find_map(|(i, r)| r.poll_action().map(|a| (i, a)))
    }

    /// Bring the members back in line after an input. Each pass can only move members
    /// towards Fault, out of it, or all to one of Backup / Master, so a few passes settle.
    fn reconcile(&mut self, now: Instant) {
        for _ in 0..4 {
            if !self.step(now) {
                break;
            }
        }
        for (seen, r) in self.seen.iter_mut().zip(&self.members) {
            *seen = r.state();
        }
    }

    fn step(&mut self, now: Instant) -> bool {
        let running = |r: &Router| r.state() != State::Initialize;
        let before: heapless::Vec<State, N> = self.members.iter().map(Router::state).collect();

        if self.members.iter().any(|r| running(r) && r.fault_condition()) {
            for r in &mut self.members {
                if running(r) {
                    r.force_fault(now);
                }
            }
        } else if self.members.iter().any(|r| r.state() == State::Fault) {
            for r in &mut self.members {
                r.release_fault(now);
            }
        } else {
            let demoted = self
                .seen
                .iter()
                .zip(&self.members)
                .any(|(s, r)| *s == State::Master && r.state() == State::Backup);
            let promoted = self
                .seen
                .iter()
                .zip(&self.members)
                .any(|(s, r)| *s != State::Master && r.state() == State::Master);
            let backups = self.members.iter().filter(|r| r.state() == State::Backup);
            let all_want = self.members.iter().any(running)
                && self
                    .members
                    .iter()
                    .filter(|r| running(r))
                    .all(|r| r.state() == State::Master || r.wants_master())
                && backups.clone().count() > 0;
            if demoted {
                for r in &mut self.members {
                    r.force_backup(now);
                }
            } else if promoted || all_want {
                for r in &mut self.members {
                    r.force_master(now);
                }
            }
        }
        let changed = self.members.iter().zip(&before).any(|(r, s)| r.state() != *s);
        if changed {
            // Transitions the group made itself are not news for the next pass.
            for (seen, r) in self.seen.iter_mut().zip(&self.members) {
                *seen = r.state();
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use core::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::vrrp::{Config, Version};

    fn router(vrid: u8) -> Router {
        Router::new(Config::new(
            Version::V3,
            vrid,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, vrid)),
        ))
        .unwrap()
    }

    #[test]
    fn a_full_group_hands_the_router_back() {
        let mut g = SyncGroup::<2>::new();
        assert_eq!(g.add(router(1)).ok(), Some(0));
        assert_eq!(g.add(router(2)).ok(), Some(1));
        let back = g.add(router(3)).unwrap_err();
        assert_eq!(back.vrid(), 3);
        assert_eq!(g.state(), State::Initialize);
        g.handle_packet(Instant::ZERO, &[0u8; 3], Rx::Ethernet);
        assert_eq!(g.unmatched(), 1);
    }

    #[test]
    fn a_lone_group_becomes_master_when_all_timers_expire() {
        let mut g = SyncGroup::<2>::new();
        g.add(router(1)).unwrap();
        g.add(router(2)).unwrap();
        g.start(Instant::ZERO);
        assert_eq!(g.state(), State::Backup);
        let mut now = Instant::ZERO;
        while g.state() != State::Master {
            now = g.poll_timeout().unwrap();
            g.handle_timeout(now);
        }
        // Both have the same timer; both go at once.
        assert_eq!(now, Instant::from_nanos(3_609_375_000));
        assert!(g.members().iter().all(|r| r.state() == State::Master));
        // A member's interface goes down: the whole group is in Fault; up again: Backup.
        g.interface_down(now, 1);
        assert!(g.members().iter().all(|r| r.state() == State::Fault));
        g.interface_up(now, 1);
        assert!(g.members().iter().all(|r| r.state() == State::Backup));
        let mut states = heapless::Vec::<(usize, State), 16>::new();
        while let Some((i, a)) = g.poll_action() {
            if let Action::StateChanged { to, .. } = a {
                states.push((i, to)).unwrap();
            }
        }
        assert_eq!(
            states.as_slice(),
            &[
                (0, State::Backup),
                (0, State::Master),
                (0, State::Fault),
                (0, State::Backup),
                (1, State::Backup),
                (1, State::Master),
                (1, State::Fault),
                (1, State::Backup),
            ]
        );
    }
}
