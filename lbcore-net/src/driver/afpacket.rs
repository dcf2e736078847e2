//! `AF_PACKET` driver: one Ethernet interface, receive through a `TPACKET_V3` mmap ring,
//! send with batched `sendmmsg(2)`.
//!
//! **Receive.** A packet socket bound to the interface for every protocol (`ETH_P_ALL`, so
//! it sees frames before the tc ingress hook) fills a ring of blocks; a block is handed to us
//! when full or after the retire timeout ([`AfPacketConfig::retire`]), and we copy its frames
//! into the caller's buffers. `PACKET_IGNORE_OUTGOING` hides frames this host sends,
//! including ours. Every frame arrives with a `virtio_net_hdr` (`PACKET_VNET_HDR`):
//!
//! - `CHECKSUM_PARTIAL` frames (the sender left the L4 checksum to offload; normal on veth)
//!   get their checksum completed in software from the header's `csum_start`/`csum_offset`
//!   before the caller sees them ([`DriverStats::rx_csum_completed`]).
//! - TCP GSO super-frames (a veth peer with TSO/GSO on, or GRO on the interface, hands packet
//!   sockets TCP frames up to 64 KiB) are segmented in software into `gso_size` segments with
//!   correct IP lengths, IPv4 IDs, sequence numbers, flags and checksums
//!   ([`crate::driver::offload`]). Other GSO types (UDP), IPv6 with extension headers and
//!   malformed ones are not delivered and are counted ([`DriverStats::rx_gso_dropped`]). So no
//!   `ethtool` settings are required on the interface or its peer.
//! - VLAN frames (tagged in the frame or with the tag stripped into the ring metadata) are
//!   not supported: counted ([`DriverStats::rx_vlan`]) and not delivered; the kernel keeps its
//!   own copy, so for them this is the "pass" verdict.
//! - Frames larger than the caller's buffers, or truncated by the ring, are counted
//!   ([`DriverStats::rx_truncated`]) and not delivered.
//! - Frames the kernel cannot describe in a `virtio_net_hdr` (some tunnel GSO types) never
//!   reach the ring; the kernel counts them with ring overruns in
//!   [`DriverStats::rx_ring_drops`].
//!
//! Requires `PACKET_VNET_HDR` together with `TPACKET_V3` and `PACKET_IGNORE_OUTGOING`
//! (Linux 4.20 or later; tested on 6.18); opening fails otherwise.
//!
//! **Send.** Frames are copied into a preallocated staging area ([`AfPacketConfig::tx_batch`]
//! slots) and sent with one `sendmmsg(2)` per 64 frames on [`FrameIo::flush`] (or when the
//! area is full), on a second packet socket (protocol 0: it receives nothing) with
//! `PACKET_QDISC_BYPASS`. Measured with the throughput probe (`afpacket_forward_rate` in
//! `tests/driver_netns.rs`: recv -> send unchanged, 64-byte frames, veth between namespaces,
//! 2-CPU VM): batches of 256 forwarded 350-390 k frames/s, keeping up with the blaster (few or
//! no ring drops), one system call per frame 220-240 k frames/s. A TX ring would save the copy
//! into the staging area and the system calls, but the remaining time is the kernel's
//! per-frame path (skb allocation, veth transmit, the receiver's backlog), and it needs more
//! unsafe code; `sendmmsg` it is. A device queue that is full drops the rest of the batch
//! ([`DriverStats::tx_dropped`]), as a switch would.
//!
//! **Routed output** ([`FrameIo::send_routed`]): the next hop's MAC comes from a
//! [`NeighCache`] over the kernel's neighbour table; unknown next hops start resolution and the
//! packet is dropped ([`DriverStats::tx_unresolved`]).
//!
//! No allocation per packet: the ring, the staging area and the caller's frames are all sized
//! once.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use lbcore::wire::LinkKind;
use socket2::Socket;

use super::neigh::NeighCache;
use super::offload::{
    self, TcpGso, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6,
    VNET_HDR_LEN, VnetHdr,
};
use super::{DriverKind, DriverStats, FrameBuf, FrameIo, fill, wait_readable};
use crate::sys::{self, PacketRing, RingGeometry};

/// `AF_PACKET` driver settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Bytes per ring block (a power of two, at least one page; must hold a 64 KiB GSO frame,
    /// so at least 128 KiB).
    pub block_size: u32,
    /// Number of ring blocks.
    pub block_count: u32,
    /// How long a partly filled block waits before it is handed over (latency at low rates).
    pub retire: Duration,
    /// Send staging slots (frames queued between flushes).
    pub tx_batch: usize,
    /// Largest frame that can be sent, bytes (Ethernet header included).
    pub tx_frame_max: usize,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            block_size: 256 * 1024,
            block_count: 64,
            retire: Duration::from_millis(1),
            tx_batch: 256,
            tx_frame_max: 2048,
        }
    }
}

/// Where the reader is in the ring.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    block: usize,
    /// Packets left in the current block (0: the block is not open).
    left: u32,
    /// Offset of the next packet's `tpacket3_hdr` in the block.
    off: usize,
    /// Next segment of a GSO frame in progress.
    seg: usize,
}

/// The `AF_PACKET` driver (see the module docs).
pub struct AfPacket {
    ring: PacketRing,
    tx: Socket,
    cur: Cursor,
    stats: DriverStats,
    /// Ring drops read from the kernel so far (reading resets its counter).
    ring_drops: std::cell::Cell<u64>,
    mac: [u8; 6],
    ifindex: u32,
    neigh: NeighCache,
    staging: Vec<u8>,
    lens: Vec<u16>,
    slot: usize,
}

impl AfPacket {
    /// Open the driver on interface `name`.
    pub fn open(name: &str, config: AfPacketConfig) -> io::Result<AfPacket> {
        let link = crate::netlink::Rtnl::new()?
            .link_by_name(name)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))?;
        let mac = link.mac.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name} has no Ethernet address"),
            )
        })?;
        if config.block_size < 128 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "afpacket block_size must be at least 128 KiB (GSO frames)",
            ));
        }
        let geo = RingGeometry {
            block_size: config.block_size,
            block_nr: config.block_count,
            frame_size: 2048,
            retire_ms: u32::try_from(config.retire.as_millis().max(1)).unwrap_or(u32::MAX),
        };
        let ring = PacketRing::open(link.index, geo, true)?;
        let tx = sys::packet_socket(link.index)?;
        // Skip the qdisc layer: frames go straight to the driver (best effort: old kernels).
        let _ = sys::setsockopt_int(&tx, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1);
        let slot = config.tx_frame_max.max(64);
        let batch = config.tx_batch.max(1);
        Ok(AfPacket {
            ring,
            tx,
            cur: Cursor::default(),
            stats: DriverStats::default(),
            ring_drops: std::cell::Cell::new(0),
            mac,
            ifindex: link.index,
            neigh: NeighCache::new(link.index)?,
            staging: vec![0u8; slot * batch],
            lens: Vec::with_capacity(batch),
            slot,
        })
    }

    /// The interface's MAC address (source of routed output).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Copy frames out of the ring into `frames`; returns how many were filled.
    fn drain(&mut self, frames: &mut [FrameBuf]) -> usize {
        let mut n = 0;
        while n < frames.len() {
            if self.cur.left == 0 {
                let Some(block) = self.ring.user_block(self.cur.block) else {
                    break;
                };
                let num = ne32(block, 12);
                let first = ne32(block, 16) as usize;
                if num == 0 {
                    self.release_current();
                    continue;
                }
                self.cur.left = num;
                self.cur.off = first;
                self.cur.seg = 0;
            }
            let Some(block) = self.ring.user_block(self.cur.block) else {
                // Cannot happen (we own the block until we release it); resynchronise.
                self.cur.left = 0;
                break;
            };
            let (used, done) = deliver(
                block,
                self.cur.off,
                &mut self.cur.seg,
                &mut frames[n..],
                &mut self.stats,
            );
            n += used;
            if !done {
                break; // out of frames mid-GSO: resume here next time
            }
            let next = ne32(block, self.cur.off) as usize;
            self.cur.left -= 1;
            self.cur.seg = 0;
            if self.cur.left == 0 || next == 0 {
                self.release_current();
            } else {
                self.cur.off += next;
            }
        }
        n
    }

    fn release_current(&mut self) {
        self.ring.release_block(self.cur.block);
        self.cur.left = 0;
        self.cur.block = (self.cur.block + 1) % self.ring.block_count();
    }

    fn stage(&mut self) -> Option<&mut [u8]> {
        if self.lens.len() == self.lens.capacity() {
            let _ = self.flush();
        }
        let i = self.lens.len();
        self.staging.get_mut(i * self.slot..(i + 1) * self.slot)
    }
}

fn ne32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn ne16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2).map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]))
}

/// Deliver the packet whose `tpacket3_hdr` is at `off` in `block` into `frames`, starting
/// with GSO segment `*seg`. Returns (frames filled, packet finished).
fn deliver(
    block: &[u8],
    off: usize,
    seg: &mut usize,
    frames: &mut [FrameBuf],
    st: &mut DriverStats,
) -> (usize, bool) {
    let snaplen = ne32(block, off + 12) as usize;
    let len = ne32(block, off + 16) as usize;
    let status = ne32(block, off + 20);
    let mac = usize::from(ne16(block, off + 24));
    let start = off + mac;
    let (Some(pkt), Some(vh)) = (
        block.get(start..start + snaplen),
        start
            .checked_sub(VNET_HDR_LEN)
            .and_then(|h| block.get(h..start))
            .and_then(VnetHdr::parse),
    ) else {
        st.rx_truncated += 1;
        return (0, true);
    };
    if snaplen < len {
        st.rx_truncated += 1;
        return (0, true);
    }
    let ethertype = pkt.get(12..14).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if status & libc::TP_STATUS_VLAN_VALID != 0 || matches!(ethertype, 0x8100 | 0x88a8) {
        st.rx_vlan += 1;
        return (0, true);
    }
    if vh.gso_type != VNET_GSO_NONE {
        let t = vh.gso_type & !VNET_GSO_ECN;
        let g = match t {
            VNET_GSO_TCPV4 | VNET_GSO_TCPV6 => TcpGso::parse(pkt, vh.gso_size),
            _ => Err(offload::GsoError::Unsupported),
        };
        let Ok(g) = g else {
            st.rx_gso_dropped += 1;
            return (0, true);
        };
        if *seg == 0 {
            st.rx_gso_frames += 1;
        }
        let total = g.segments();
        let mut used = 0;
        while *seg < total {
            let Some(f) = frames.get_mut(used) else {
                return (used, false);
            };
            let Some(out) = f.buf.get_mut(super::HEADROOM..) else {
                st.rx_truncated += 1;
                return (used, true);
            };
            match g.segment(pkt, *seg, out) {
                Ok(n) => {
                    f.start = super::HEADROOM;
                    f.len = n;
                    f.meta = lbcore::balancer::RxMeta::ETHERNET;
                    st.rx_frames += 1;
                    st.rx_bytes += n as u64;
                    st.rx_gso_segments += 1;
                    used += 1;
                }
                Err(_) => {
                    st.rx_gso_dropped += 1;
                    return (used, true);
                }
            }
            *seg += 1;
        }
        return (used, true);
    }
    let Some(f) = frames.first_mut() else {
        return (0, false);
    };
    if !fill(f, pkt, LinkKind::Ethernet) {
        st.rx_truncated += 1;
        return (0, true);
    }
    if vh.flags & VNET_F_NEEDS_CSUM != 0 || status & libc::TP_STATUS_CSUMNOTREADY != 0 {
        let buf = &mut f.buf[super::HEADROOM..super::HEADROOM + pkt.len()];
        if offload::complete_partial(buf, usize::from(vh.csum_start), usize::from(vh.csum_offset)) {
            st.rx_csum_completed += 1;
        }
    }
    st.rx_frames += 1;
    st.rx_bytes += pkt.len() as u64;
    (1, true)
}

impl FrameIo for AfPacket {
    fn kind(&self) -> DriverKind {
        DriverKind::AfPacket
    }

    fn recv_batch(&mut self, frames: &mut [FrameBuf], timeout: Option<Duration>) -> io::Result<usize> {
        if frames.is_empty() {
            return Ok(0);
        }
        let n = self.drain(frames);
        if n > 0 || timeout == Some(Duration::ZERO) {
            return Ok(n);
        }
        if wait_readable(&self.ring, timeout)? {
            return Ok(self.drain(frames));
        }
        Ok(0)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(slot) = self.stage() else {
            self.stats.tx_dropped += 1;
            return Ok(());
        };
        let Some(dst) = slot.get_mut(..data.len()) else {
            self.stats.tx_dropped += 1;
            return Ok(());
        };
        dst.copy_from_slice(data);
        // The slot is at most u16::MAX? Slots are sized by config; a frame longer than a u16
        // cannot be an Ethernet frame we can send anyway.
        match u16::try_from(data.len()) {
            Ok(l) => self.lens.push(l),
            Err(_) => self.stats.tx_dropped += 1,
        }
        Ok(())
    }

    fn send_routed(&mut self, packet: &[u8], next_hop: IpAddr) -> io::Result<()> {
        let Some(dmac) = self.neigh.lookup(next_hop) else {
            self.stats.tx_unresolved += 1;
            return Ok(());
        };
        let ethertype: u16 = match packet.first().map(|b| b >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            _ => {
                self.stats.tx_dropped += 1;
                return Ok(());
            }
        };
        let smac = self.mac;
        let Some(slot) = self.stage() else {
            self.stats.tx_dropped += 1;
            return Ok(());
        };
        let total = packet.len() + 14;
        let (Some(dst), Ok(l)) = (slot.get_mut(..total), u16::try_from(total)) else {
            self.stats.tx_dropped += 1;
            return Ok(());
        };
        dst[0..6].copy_from_slice(&dmac);
        dst[6..12].copy_from_slice(&smac);
        dst[12..14].copy_from_slice(&ethertype.to_be_bytes());
        dst[14..].copy_from_slice(packet);
        self.lens.push(l);
        Ok(())
    }

    fn pass(&mut self, _frame: &[u8]) -> io::Result<()> {
        // The kernel received its own copy of every frame we see.
        self.stats.passed += 1;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // A failed neighbour-table read is retried later; the cache keeps what it knows.
        let _ = self.neigh.maintain();
        if self.lens.is_empty() {
            return Ok(());
        }
        let queued = self.lens.len();
        let sent = match sys::send_batch(&self.tx, &self.staging, self.slot, &self.lens) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAGAIN | libc::ENOBUFS | libc::ENETDOWN | libc::EMSGSIZE)
                ) =>
            {
                0
            }
            Err(e) => {
                self.stats.tx_dropped += queued as u64;
                self.lens.clear();
                return Err(e);
            }
        };
        for l in &self.lens[..sent] {
            self.stats.tx_bytes += u64::from(*l);
        }
        self.stats.tx_frames += sent as u64;
        self.stats.tx_dropped += (queued - sent) as u64;
        self.lens.clear();
        Ok(())
    }

    fn stats(&self) -> DriverStats {
        if let Ok((_, drops)) = sys::packet_statistics(&self.ring) {
            self.ring_drops.set(self.ring_drops.get() + u64::from(drops));
        }
        DriverStats {
            rx_ring_drops: self.ring_drops.get(),
            ..self.stats
        }
    }
}

impl AsRawFd for AfPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }
}
