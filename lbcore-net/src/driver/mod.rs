//! Packet drivers: how the data plane gets frames in and out of the kernel.
//!
//! Every driver implements [`FrameIo`], the one interface the daemon's data-plane loop uses:
//!
//! ```ignore
//! let mut frames = driver::new_frames(64, 1500);
//! let mut verdicts = vec![Verdict::Pass; 64];
//! loop {
//!     let n = io.recv_batch(&mut frames, Some(Duration::from_millis(100)))?;
//!     lb.process_batch(now, &mut frames[..n], &mut verdicts[..n]); // or process_batch_prefetch
//!     io.complete(&mut frames[..n], &verdicts[..n])?; // forward / pass / drop, then flush
//! }
//! ```
//!
//! - [`afpacket`] (feature `afpacket`): one Ethernet interface through a `TPACKET_V3` receive
//!   ring and batched `sendmmsg(2)`; checksum completion and TCP segmentation of offloaded
//!   frames in software ([`offload`]); routed output through the kernel's neighbour table
//!   ([`neigh`]).
//! - [`tun`] (feature `tun`): a TUN device, bare IP packets.
//! - [`tap`] (feature `tap`): a TAP device, Ethernet frames; the balancer owns a MAC and
//!   answers ARP and IPv6 neighbour solicitations for its addresses itself.
//!
//! Guarantees common to all drivers: received packets are copied into the caller's
//! [`Frame`] buffers at offset [`HEADROOM`] (the core rewrites and encapsulates in place);
//! nothing is allocated per packet on the receive or send path (buffers are sized once at
//! construction); every packet the driver does not deliver or send is counted in
//! [`DriverStats`]. Drivers are not thread-safe by themselves (`&mut self`), but `Send`: run one
//! per data-plane thread.
//!
//! Tests and the daemon can run a driver inside a network namespace by moving the calling
//! thread there first with [`enter_netns`].

// The helpers shared by the drivers are unused when every driver feature is off.
#![cfg_attr(
    not(any(feature = "afpacket", feature = "tap", feature = "tun")),
    allow(dead_code)
)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use lbcore::balancer::{Frame, RxMeta, Verdict};
use lbcore::service::Forward;
use lbcore::wire::{HEADROOM, LinkKind};

#[cfg(feature = "afpacket")]
pub mod afpacket;
pub mod neigh;
pub mod offload;
#[cfg(feature = "tap")]
pub mod tap;
#[cfg(feature = "tun")]
pub mod tun;

/// The frame type every driver fills: a heap buffer with [`HEADROOM`] bytes before the packet.
pub type FrameBuf = Frame<Box<[u8]>>;

/// Which driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    /// `AF_PACKET` on an Ethernet interface.
    AfPacket,
    /// A TUN device (bare IP).
    Tun,
    /// A TAP device (Ethernet).
    Tap,
}

impl DriverKind {
    /// What the driver's frames are.
    pub const fn link(self) -> LinkKind {
        match self {
            DriverKind::Tun => LinkKind::Ip,
            DriverKind::AfPacket | DriverKind::Tap => LinkKind::Ethernet,
        }
    }

    /// The configuration name (`afpacket`, `tun`, `tap`).
    pub const fn name(self) -> &'static str {
        match self {
            DriverKind::AfPacket => "afpacket",
            DriverKind::Tun => "tun",
            DriverKind::Tap => "tap",
        }
    }
}

/// Refuse forwarding methods a driver cannot carry: direct routing rewrites MAC addresses, so
/// it needs Ethernet frames, which a TUN device does not have.
pub fn check_methods(kind: DriverKind, methods: &[Forward]) -> Result<(), String> {
    if kind.link() == LinkKind::Ip && methods.iter().any(|m| matches!(m, Forward::DirectRouting)) {
        return Err(format!(
            "the {} driver carries bare IP packets, but a real server uses direct routing (-g / lb_kind DR): DR needs Ethernet frames: use the afpacket or tap driver",
            kind.name()
        ));
    }
    Ok(())
}

/// What a TUN or TAP driver does with [`Verdict::Pass`] packets ("not ours"). With
/// `AF_PACKET` the kernel already has its own copy, so passing is a no-op there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PassPolicy {
    /// Drop and count them (`pass_dropped`). The default: writing them back into the device
    /// would hand them to the host stack *as if they came from the device*, which for packets
    /// the host routed into it means a routing loop.
    #[default]
    Drop,
    /// Write them back into the device (the host stack receives them). Only for setups where
    /// the device is the host's way to reach the balancer's addresses and nothing else.
    Reinject,
}

/// Driver counters. Every driver counts `rx_*`, `tx_*`; the others only where the driver
/// does that work (documented per field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Frames delivered to the caller (GSO segments count one each).
    pub rx_frames: u64,
    /// Bytes delivered to the caller.
    pub rx_bytes: u64,
    /// Frames too large for the caller's buffers, or truncated by the ring (not delivered).
    pub rx_truncated: u64,
    /// Frames the kernel dropped because the ring was full (`AF_PACKET`,
    /// `PACKET_STATISTICS`, read when stats are asked for).
    pub rx_ring_drops: u64,
    /// Frames whose L4 checksum was left to offload (`CHECKSUM_PARTIAL`) and completed in
    /// software before delivery (`AF_PACKET`).
    pub rx_csum_completed: u64,
    /// TCP GSO super-frames received and segmented (`AF_PACKET`).
    pub rx_gso_frames: u64,
    /// Segments produced from them.
    pub rx_gso_segments: u64,
    /// GSO frames that could not be segmented (UDP GSO, IPv6 extension headers, malformed):
    /// not delivered (`AF_PACKET`; the kernel keeps its copy).
    pub rx_gso_dropped: u64,
    /// VLAN-tagged frames (tag in the frame or stripped into the ring's metadata): not
    /// supported, not delivered (`AF_PACKET`: the kernel keeps its copy).
    pub rx_vlan: u64,
    /// Unicast frames for another MAC address, not delivered (TAP).
    pub rx_not_for_us: u64,
    /// Frames handed to the kernel for sending.
    pub tx_frames: u64,
    /// Bytes handed to the kernel for sending.
    pub tx_bytes: u64,
    /// Frames that could not be sent (device queue full, too large, error).
    pub tx_dropped: u64,
    /// Routed packets dropped because the next hop's MAC address is not known yet
    /// (resolution was triggered).
    pub tx_unresolved: u64,
    /// Forward verdicts of the wrong kind for the driver (Ethernet output on TUN).
    pub tx_wrong_link: u64,
    /// [`Verdict::Pass`] packets (left to the kernel's copy with `AF_PACKET`, written back
    /// with [`PassPolicy::Reinject`]).
    pub passed: u64,
    /// [`Verdict::Pass`] packets dropped ([`PassPolicy::Drop`]).
    pub pass_dropped: u64,
    /// ARP requests answered (TAP).
    pub arp_replies: u64,
    /// IPv6 neighbour solicitations answered (TAP).
    pub nd_replies: u64,
}

/// The interface between a driver and the data-plane loop.
///
/// Call order: [`FrameIo::recv_batch`], then for each frame one of [`FrameIo::send`],
/// [`FrameIo::send_routed`], [`FrameIo::pass`] (or nothing), then [`FrameIo::flush`];
/// [`FrameIo::complete`] does the middle and last steps from the core's verdicts. The file
/// descriptor ([`AsRawFd`]) becomes readable when frames are waiting, for callers that poll
/// several sources themselves (then call `recv_batch` with `Some(Duration::ZERO)`).
pub trait FrameIo: AsRawFd {
    /// Which driver this is.
    fn kind(&self) -> DriverKind;

    /// What the received frames and [`FrameIo::send`] bytes are.
    fn link(&self) -> LinkKind {
        self.kind().link()
    }

    /// Receive up to `frames.len()` frames, copied into the buffers at offset [`HEADROOM`]
    /// (`start`, `len` and `meta` are set). Waits up to `timeout` (`None`: forever) only when
    /// nothing is ready; returns as soon as at least one frame was delivered. Returns the
    /// number of frames filled (0 on timeout).
    fn recv_batch(&mut self, frames: &mut [FrameBuf], timeout: Option<Duration>) -> io::Result<usize>;

    /// Queue `data` (a frame of [`FrameIo::link`] kind, complete) for sending as is. A full
    /// device queue is not an error: the frame is dropped and counted.
    fn send(&mut self, data: &[u8]) -> io::Result<()>;

    /// Queue a bare IP packet for `next_hop`: the driver adds what the link needs (an
    /// Ethernet header with the next hop's MAC address). Unresolved next hops are dropped,
    /// counted and resolution is started.
    fn send_routed(&mut self, packet: &[u8], next_hop: IpAddr) -> io::Result<()>;

    /// A [`Verdict::Pass`] packet: whatever the driver's policy is (see [`PassPolicy`]).
    fn pass(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Send everything queued.
    fn flush(&mut self) -> io::Result<()>;

    /// The counters.
    fn stats(&self) -> DriverStats;

    /// Act on the core's verdicts for `frames` (as returned by `process_batch`), then flush.
    fn complete(&mut self, frames: &[FrameBuf], verdicts: &[Verdict]) -> io::Result<()> {
        for (f, v) in frames.iter().zip(verdicts) {
            match v {
                Verdict::Forward(to) => match to.link {
                    LinkKind::Ethernet => self.send(f.data())?,
                    LinkKind::Ip => self.send_routed(f.data(), to.next_hop)?,
                },
                Verdict::Pass => self.pass(f.data())?,
                Verdict::Drop(_) | Verdict::Consumed => {}
            }
        }
        self.flush()
    }
}

/// `count` frame buffers for packets of up to `mtu` bytes of IP (plus an Ethernet header
/// with one VLAN tag) after [`HEADROOM`] bytes; a GSO segment never exceeds the sender's MTU.
pub fn new_frames(count: usize, mtu: usize) -> Vec<FrameBuf> {
    let size = HEADROOM + 18 + mtu;
    (0..count)
        .map(|_| Frame {
            buf: vec![0u8; size].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            meta: RxMeta::ETHERNET,
        })
        .collect()
}

/// Move the calling thread into the network namespace at `path` (`/run/netns/NAME` for
/// `ip netns` namespaces, `/proc/PID/ns/net`). Sockets and devices the thread opens
/// afterwards belong to that namespace; other threads are not affected. Needs
/// `CAP_SYS_ADMIN`.
pub fn enter_netns(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    crate::sys::setns_net(&f)
}

/// Copy `packet` into `frame` at [`HEADROOM`]; `false` (nothing copied) if it does not fit.
pub(crate) fn fill(frame: &mut FrameBuf, packet: &[u8], link: LinkKind) -> bool {
    let Some(dst) = frame.buf.get_mut(HEADROOM..HEADROOM + packet.len()) else {
        return false;
    };
    dst.copy_from_slice(packet);
    frame.start = HEADROOM;
    frame.len = packet.len();
    frame.meta = RxMeta { link, fwmark: 0 };
    true
}

/// Milliseconds for `poll(2)` (-1: forever), rounding up so a short timeout still waits.
pub(crate) fn poll_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}

/// Wait until `fd` is readable or `timeout` passed; `true` if readable.
pub(crate) fn wait_readable(fd: &impl AsRawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let mut fds = [libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    Ok(crate::sys::poll(&mut fds, poll_ms(timeout))? > 0)
}

/// Read packets from `dev` into `frames` until it would block; shared by TUN and TAP.
#[cfg_attr(not(feature = "tun"), allow(dead_code))]
pub(crate) fn read_batch(
    dev: &mut File,
    frames: &mut [FrameBuf],
    link: LinkKind,
    stats: &mut DriverStats,
    mut keep: impl FnMut(&mut FrameBuf, &mut DriverStats) -> bool,
) -> io::Result<usize> {
    let mut n = 0;
    while n < frames.len() {
        let f = &mut frames[n];
        let Some(buf) = f.buf.get_mut(HEADROOM..) else {
            return Ok(n);
        };
        match dev.read(buf) {
            Ok(len) => {
                f.start = HEADROOM;
                f.len = len;
                f.meta = lbcore::balancer::RxMeta { link, fwmark: 0 };
                if len == buf.len() {
                    // A packet that filled the buffer may have been cut short.
                    stats.rx_truncated += 1;
                    continue;
                }
                if keep(f, stats) {
                    stats.rx_frames += 1;
                    stats.rx_bytes += len as u64;
                    n += 1;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Write one packet; a full queue counts a drop.
#[cfg_attr(not(any(feature = "tun", feature = "tap")), allow(dead_code))]
pub(crate) fn write_one(dev: &mut File, data: &[u8], stats: &mut DriverStats) -> io::Result<()> {
    match dev.write(data) {
        Ok(_) => {
            stats.tx_frames += 1;
            stats.tx_bytes += data.len() as u64;
            Ok(())
        }
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EAGAIN | libc::ENOBUFS | libc::EINVAL | libc::EIO)
            ) =>
        {
            // EIO: device down; EINVAL: malformed packet for the device.
            stats.tx_dropped += 1;
            Ok(())
        }
        Err(e) => {
            stats.tx_dropped += 1;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused)]
    fn is_send<T: Send>() {}

    #[test]
    fn drivers_are_send() {
        #[cfg(feature = "afpacket")]
        is_send::<super::afpacket::AfPacket>();
        #[cfg(feature = "tun")]
        is_send::<super::tun::Tun>();
        #[cfg(feature = "tap")]
        is_send::<super::tap::Tap>();
        is_send::<super::neigh::NeighCache>();
    }
}
