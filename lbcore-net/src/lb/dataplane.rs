//! The data-plane thread: frames from a driver through the balancer and back out, in batches.
//!
//! The balancer is shared with the manager thread (configuration, health checks) and the
//! control socket behind one mutex, taken once per batch: configuration changes land between
//! batches, never inside one. Frames addressed to another station's MAC (flooded by a switch)
//! are left alone — on a backup director they would otherwise be forwarded twice. Timer work
//! (connection expiry, rate estimation) runs with a bounded budget after every batch and at
//! least every 100 ms when no traffic arrives.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lbcore::balancer::Verdict;
use lbcore::wire::LinkKind;

use super::Shared;
use crate::driver::{self, FrameBuf, FrameIo};

/// Frames per batch.
pub const BATCH: usize = 64;
/// Connection-table entries examined per expiry call.
const EXPIRE_BUDGET: usize = 1024;
/// Longest wait for frames before timers run anyway.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Whether an Ethernet frame is for us: our unicast address, or broadcast/multicast.
fn for_us(frame: &FrameBuf, mac: &[u8; 6]) -> bool {
    let d = frame.data();
    d.len() >= 6 && (d[0] & 1 == 1 || &d[..6] == mac)
}

/// Moves the frames for us to the front of `frames`; returns how many there are.
fn keep_for_us(frames: &mut [FrameBuf], mac: &[u8; 6]) -> usize {
    let mut kept = 0;
    for i in 0..frames.len() {
        if for_us(&frames[i], mac) {
            frames.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// Runs until `stop` is set. `mac` is the interface's address (Ethernet drivers).
pub fn run(
    shared: Arc<Shared>,
    io: &mut dyn FrameIo,
    mac: [u8; 6],
    mtu: usize,
    stop: Arc<AtomicBool>,
) -> io::Result<()> {
    let mut frames = driver::new_frames(BATCH, mtu);
    let mut verdicts = vec![Verdict::Pass; BATCH];
    let ethernet = io.link() == LinkKind::Ethernet;
    let mut other_host = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = io.recv_batch(&mut frames, Some(IDLE_WAIT))?;
        let mine = if ethernet {
            keep_for_us(&mut frames[..n], &mac)
        } else {
            n
        };
        other_host += (n - mine) as u64;
        {
            let mut lb = shared.balancer();
            let now = shared.now();
            if mine > 0 {
                // Real prefetches for tables beyond the L2 cache (packet by packet below that:
                // lbcore::balancer::STAGED_BATCH_MIN_TABLE_BYTES).
                lb.process_batch_prefetch(
                    now,
                    &mut frames[..mine],
                    &mut verdicts[..mine],
                    &crate::CpuPrefetch,
                );
            }
            lb.expire(now, EXPIRE_BUDGET);
        }
        if mine > 0 {
            io.complete(&frames[..mine], &verdicts[..mine])?;
        }
        shared.set_driver_stats(io.stats(), other_host);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6]) -> FrameBuf {
        let mut f = driver::new_frames(1, 100).pop().unwrap();
        let start = f.start;
        f.buf[start..start + 6].copy_from_slice(&dst);
        f.len = 60;
        f
    }

    #[test]
    fn only_frames_for_us_are_kept_in_order() {
        let me = [2, 0, 0, 0, 0, 1];
        let other = [2, 0, 0, 0, 0, 9];
        let bcast = [0xff; 6];
        let mcast = [0x01, 0x00, 0x5e, 0, 0, 0x12];
        let mut frames = vec![frame(other), frame(me), frame(bcast), frame(other), frame(mcast)];
        let n = keep_for_us(&mut frames, &me);
        assert_eq!(n, 3);
        let dsts: Vec<[u8; 6]> = frames[..n]
            .iter()
            .map(|f| f.data()[..6].try_into().unwrap())
            .collect();
        assert_eq!(dsts, vec![me, bcast, mcast]);
    }
}
