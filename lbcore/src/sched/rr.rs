//! `rr`: round robin (`ip_vs_rr.c`).
//!
//! The cursor is the last destination picked (or the list head). Each call walks forward
//! from it, wrapping through the head, to the next destination with weight > 0 that is not
//! overloaded, and checks each destination at most once. Like the kernel there is no add
//! hook: a destination inserted at the head is only reached when the walk wraps. Deleting the
//! destination under the cursor moves the cursor to the entry before it.

use super::{DestList, DestSlot, SchedDest};

/// Round-robin cursor.
#[derive(Clone, Debug)]
pub(crate) struct Rr {
    /// The last destination picked, or `None` for the list head (`svc->sched_data`).
    cursor: Option<DestSlot>,
}

impl Rr {
    pub(crate) const fn new() -> Self {
        Rr { cursor: None }
    }

    /// `ip_vs_rr_del_dest`: the destination under the cursor was unlinked; the cursor falls
    /// back to its predecessor (`p->next->prev` after the unlink), the head if it was first.
    pub(crate) fn dest_removed<D: AsRef<SchedDest>>(
        &mut self,
        list: DestList<'_, D>,
        slot: DestSlot,
        old_pos: usize,
    ) {
        if self.cursor == Some(slot) {
            self.cursor = old_pos.checked_sub(1).and_then(|p| list.order.get(p).copied());
        }
    }

    pub(crate) fn schedule<D: AsRef<SchedDest>>(&mut self, list: DestList<'_, D>) -> Option<DestSlot> {
        let n = list.len();
        // From the head the walk is one pass over the list; from a destination it is the rest
        // of the list, then the start of the list up to and including that destination.
        let start = match self.cursor.and_then(|s| list.position(s)) {
            Some(pos) => pos + 1,
            None => 0,
        };
        for i in 0..n {
            if let Some((slot, _)) = list.get((start + i) % n).filter(|(_, d)| d.available()) {
                self.cursor = Some(slot);
                return Some(slot);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::{Sched, SchedFlags};

    #[test]
    fn walks_the_list_from_the_head() {
        let mut svc = Svc::new(Sched::Rr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 5);
        let c = svc.add("10.0.0.3", 80, 1);
        // List order is C, B, A; weights do not matter beyond > 0.
        let got: std::vec::Vec<_> = svc.picks(7).into_iter().flatten().collect();
        assert_eq!(got, [c, b, a, c, b, a, c]);
    }

    #[test]
    fn added_destination_is_reached_when_the_walk_wraps() {
        let mut svc = Svc::new(Sched::Rr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 1);
        assert_eq!(svc.picks(1), [Some(b)]);
        // D goes to the head; the cursor stays on B, so A comes first, then the wrap to D.
        let d = svc.add("10.0.0.4", 80, 1);
        assert_eq!(svc.picks(4), [Some(a), Some(d), Some(b), Some(a)]);
    }

    #[test]
    fn deleting_the_cursor_destination_moves_the_cursor_back() {
        let mut svc = Svc::new(Sched::Rr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 1);
        let c = svc.add("10.0.0.3", 80, 1);
        // Order C, B, A.
        assert_eq!(svc.picks(2), [Some(c), Some(b)]);
        svc.remove(b);
        // Cursor moved back to C; the next is A (what followed B), then C.
        assert_eq!(svc.picks(3), [Some(a), Some(c), Some(a)]);
        // Delete the head under the cursor: the cursor becomes the list head.
        assert_eq!(svc.picks(1), [Some(c)]);
        svc.remove(c);
        assert_eq!(svc.picks(2), [Some(a), Some(a)]);
        // Deleting a destination not under the cursor leaves it alone.
        let e = svc.add("10.0.0.5", 80, 1);
        let f = svc.add("10.0.0.6", 80, 1);
        // Order F, E, A; cursor on A, so the next one wraps to F.
        svc.remove(e);
        assert_eq!(svc.picks(3), [Some(f), Some(a), Some(f)]);
    }

    #[test]
    fn skips_unavailable_and_gives_none_when_all_are() {
        let mut svc = Svc::new(Sched::Rr, SchedFlags::NONE);
        let a = svc.add("10.0.0.1", 80, 1);
        let b = svc.add("10.0.0.2", 80, 0);
        let c = svc.add("10.0.0.3", 80, 1);
        svc.update(c, |d| d.overloaded = true);
        assert_eq!(svc.picks(3), [Some(a), Some(a), Some(a)]);
        svc.set_weight(a, 0);
        assert_eq!(svc.picks(1), [None]);
        svc.set_weight(b, 2);
        assert_eq!(svc.picks(2), [Some(b), Some(b)]);
    }

    #[test]
    fn even_distribution() {
        let mut svc = Svc::new(Sched::Rr, SchedFlags::NONE);
        for i in 0..5 {
            svc.add(&std::format!("10.0.0.{}", i + 1), 80, 1 + i);
        }
        let mut count = [0u32; 5];
        for i in 0..10_000 {
            let got = svc.pick(&Svc::client(i)).unwrap();
            count[usize::from(got)] += 1;
        }
        assert_eq!(count, [2000; 5]);
    }
}
