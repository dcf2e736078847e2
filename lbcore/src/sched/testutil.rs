//! Test harness: a service's destination slots and list, driven the way the balancer drives
//! them (insert at the head, then call the hook), so scheduler tests read like `ipvsadm`
//! sessions.

use std::format;
use std::vec::Vec;

use core::net::IpAddr;

use super::{DestList, DestSlot, MAX_DESTS, SchedDest, SchedPacket, SchedState};
use crate::rng::Rng;
use crate::service::{Sched, SchedFlags};
use crate::time::Instant;

/// Parses an address literal.
pub fn v4(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("bad address {s}"))
}

/// A packet from `saddr:sport` to the VIP 192.0.2.1:80.
pub fn pkt(saddr: &str, sport: u16) -> SchedPacket {
    pkt_d(saddr, sport, "192.0.2.1")
}

/// A packet from `saddr:sport` to `daddr:80`.
pub fn pkt_d(saddr: &str, sport: u16, daddr: &str) -> SchedPacket {
    SchedPacket {
        saddr: v4(saddr),
        sport,
        daddr: v4(daddr),
        dport: 80,
    }
}

/// One service: slots, kernel-order list, scheduler state, clock and RNG.
pub struct Svc {
    pub slots: Vec<SchedDest>,
    pub live: Vec<bool>,
    pub order: Vec<DestSlot>,
    pub state: SchedState,
    pub rng: Rng,
    pub now: Instant,
}

impl Svc {
    pub fn new(kind: Sched, flags: SchedFlags) -> Self {
        Svc {
            slots: std::vec![SchedDest::new(v4("0.0.0.0"), 0, 0); MAX_DESTS],
            live: std::vec![false; MAX_DESTS],
            order: Vec::new(),
            state: SchedState::new(kind, flags),
            rng: Rng::new(42),
            now: Instant::from_secs(1),
        }
    }

    pub fn list(&self) -> DestList<'_, SchedDest> {
        DestList {
            slots: &self.slots,
            order: &self.order,
        }
    }

    /// `ipvsadm -a`: the first free slot, inserted at the head of the list.
    pub fn add(&mut self, addr: &str, port: u16, weight: i32) -> DestSlot {
        let slot = self.live.iter().position(|l| !l).expect("free slot") as DestSlot;
        self.add_in(slot, addr, port, weight)
    }

    /// `ipvsadm -a` into a chosen slot (the balancer revives a removed destination in place).
    pub fn add_in(&mut self, slot: DestSlot, addr: &str, port: u16, weight: i32) -> DestSlot {
        assert!(!self.live[usize::from(slot)]);
        self.slots[usize::from(slot)] = SchedDest::new(v4(addr), port, weight);
        self.live[usize::from(slot)] = true;
        self.order.insert(0, slot);
        self.state.dest_added(
            DestList {
                slots: &self.slots,
                order: &self.order,
            },
            slot,
        );
        slot
    }

    /// `ipvsadm -d`: the slot's data stays as it was (the balancer keeps it while connections
    /// refer to it).
    pub fn remove(&mut self, slot: DestSlot) {
        let pos = self.order.iter().position(|&s| s == slot).expect("live slot");
        self.order.remove(pos);
        self.live[usize::from(slot)] = false;
        self.state.dest_removed(
            DestList {
                slots: &self.slots,
                order: &self.order,
            },
            slot,
            pos,
        );
    }

    /// `ipvsadm -e` with a new weight (last_weight follows non-zero weights).
    pub fn set_weight(&mut self, slot: DestSlot, weight: i32) {
        self.update(slot, |d| {
            d.weight = weight;
            if weight > 0 {
                d.last_weight = weight;
            }
        });
    }

    /// Edits a destination and runs the update hook.
    pub fn update(&mut self, slot: DestSlot, f: impl FnOnce(&mut SchedDest)) {
        f(&mut self.slots[usize::from(slot)]);
        self.state.dest_updated(
            DestList {
                slots: &self.slots,
                order: &self.order,
            },
            slot,
        );
    }

    /// Counters change without any hook (connections come and go).
    pub fn counters(&mut self, slot: DestSlot, active: u32, inactive: u32) {
        let d = &mut self.slots[usize::from(slot)];
        d.active = active;
        d.inactive = inactive;
    }

    pub fn pick(&mut self, p: &SchedPacket) -> Option<DestSlot> {
        let list = DestList {
            slots: &self.slots,
            order: &self.order,
        };
        self.state.schedule(list, p, self.now, &mut self.rng)
    }

    /// Schedules and opens an active connection on the chosen destination.
    pub fn connect(&mut self, p: &SchedPacket) -> Option<DestSlot> {
        let got = self.pick(p)?;
        self.slots[usize::from(got)].active += 1;
        Some(got)
    }

    /// `n` picks from the same client; returns the sequence.
    pub fn picks(&mut self, n: usize) -> Vec<Option<DestSlot>> {
        let p = pkt("198.51.100.7", 4242);
        (0..n).map(|_| self.pick(&p)).collect()
    }

    /// Client packet number `i` of a spread of distinct clients.
    pub fn client(i: u32) -> SchedPacket {
        let a = 0x0a00_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761) >> 8);
        let s = format!("{}", core::net::Ipv4Addr::from(a));
        pkt(&s, (1024 + i % 60000) as u16)
    }
}
