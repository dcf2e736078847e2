//! The IPVS schedulers, with the kernel's exact semantics.
//!
//! INTERFACE CONTRACT (used by the balancer; the implementation behind it is being written):
//! destinations of a service live in stable *slots* (`0..MAX_DESTS`); `order` lists the slots
//! in the kernel's list order (index 0 = list head; `ipvsadm -a` inserts at the head).

use core::net::IpAddr;

use crate::rng::Rng;
use crate::service::{Sched, SchedFlags};
use crate::time::Instant;

/// Most destinations one service can hold (slot indices fit a `u8`).
pub const MAX_DESTS: usize = 128;

/// A destination slot index within its service.
pub type DestSlot = u8;

/// What a scheduler knows of one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedDest {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Current weight (0 = quiesced).
    pub weight: i32,
    /// The last non-zero weight (mh builds its table from it so quiescing keeps the table).
    pub last_weight: i32,
    /// Active connections (TCP SYN_SENT, SYN_RECV, SYNACK, ESTABLISHED).
    pub active: u32,
    /// Inactive connections (every other state, and UDP).
    pub inactive: u32,
    /// IPVS's OVERLOAD flag (upper threshold reached).
    pub overloaded: bool,
}

impl SchedDest {
    /// A destination with no connections.
    pub const fn new(addr: IpAddr, port: u16, weight: i32) -> Self {
        SchedDest { addr, port, weight, last_weight: weight, active: 0, inactive: 0, overloaded: false }
    }
    /// Weight > 0 and not overloaded.
    pub const fn available(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
    /// `ip_vs_dest_conn_overhead`: `(active << 8) + inactive`.
    pub const fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }
}

impl AsRef<SchedDest> for SchedDest {
    fn as_ref(&self) -> &SchedDest {
        self
    }
}

/// The destinations of one service as the scheduler sees them.
#[derive(Clone, Copy, Debug)]
pub struct DestList<'a, D: AsRef<SchedDest>> {
    /// Destinations by slot; only slots named in `order` are live.
    pub slots: &'a [D],
    /// Live slots in kernel list order (head first).
    pub order: &'a [DestSlot],
}

impl<'a, D: AsRef<SchedDest>> DestList<'a, D> {
    /// Number of live destinations.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    /// Whether there are no destinations.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
    /// The destination at list position `pos`, with its slot.
    pub fn at(&self, pos: usize) -> (DestSlot, &'a SchedDest) {
        let slot = self.order[pos];
        (slot, self.slots[usize::from(slot)].as_ref())
    }
    /// The destination in `slot`.
    pub fn slot(&self, slot: DestSlot) -> &'a SchedDest {
        self.slots[usize::from(slot)].as_ref()
    }
}

/// The packet fields a scheduler may key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedPacket {
    /// Client address.
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual address the client connected to.
    pub daddr: IpAddr,
    /// Virtual port.
    pub dport: u16,
}

/// Per-service scheduler state.
#[derive(Clone, Debug)]
pub struct SchedState {
    kind: Sched,
    flags: SchedFlags,
    cursor: usize,
}

impl SchedState {
    /// Fresh state for `kind` with `flags`.
    pub fn new(kind: Sched, flags: SchedFlags) -> Self {
        SchedState { kind, flags, cursor: 0 }
    }
    /// The algorithm.
    pub fn kind(&self) -> Sched {
        self.kind
    }
    /// The flags.
    pub fn flags(&self) -> SchedFlags {
        self.flags
    }
    /// `slot` was just inserted at the head of `list`.
    pub fn dest_added<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        let _ = (list, slot);
    }
    /// The destination in `slot` changed (weight or thresholds).
    pub fn dest_updated<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot) {
        let _ = (list, slot);
    }
    /// The destination in `slot`, formerly at list position `old_pos`, was removed; `list` no
    /// longer contains it.
    pub fn dest_removed<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>, slot: DestSlot, old_pos: usize) {
        let _ = (list, slot, old_pos);
    }
    /// Picks a destination for a new connection, or `None` when no destination is usable.
    pub fn schedule<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        pkt: &SchedPacket,
        now: Instant,
        rng: &mut Rng,
    ) -> Option<DestSlot> {
        let _ = (pkt, now, rng);
        for i in 0..list.len() {
            let pos = (self.cursor + i) % list.len();
            let (slot, d) = list.at(pos);
            if d.available() {
                self.cursor = pos + 1;
                return Some(slot);
            }
        }
        None
    }
}
