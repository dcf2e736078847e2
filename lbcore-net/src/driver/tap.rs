//! TAP driver: a layer-2 device (`IFF_TAP | IFF_NO_PI`), frames are Ethernet.
//!
//! The balancer is a host on the TAP's segment with a MAC address of its own
//! ([`TapConfig::mac`]), different from the device's (which belongs to the host side). The
//! driver answers for the balancer's addresses ([`TapConfig::addresses`]: VIPs and local
//! addresses) itself:
//!
//! - ARP requests for one of them get a reply with the balancer's MAC; IPv6 neighbour
//!   solicitations for one of them get a solicited neighbour advertisement (override flag,
//!   target link-layer address option). Neither is delivered to the caller.
//! - Other ARP frames are not delivered either; the sender addresses of ARP frames aimed at
//!   our addresses, and the link-layer options of solicitations and advertisements, are
//!   learnt for routed output.
//! - Unicast frames for another MAC address are dropped and counted
//!   ([`DriverStats::rx_not_for_us`]); ours, broadcast and multicast frames are delivered.
//!
//! Routed output ([`FrameIo::send_routed`]) uses the learnt table; an unknown next hop gets an
//! ARP request (IPv4) or a neighbour solicitation (IPv6) from the first of our addresses of
//! its family (at most one per address per 500 ms) and the packet is dropped and counted
//! ([`DriverStats::tx_unresolved`]). Learnt entries do not expire (the table is bounded at
//! 65536 entries; later ones are not learnt); a neighbour that changes its MAC is re-learnt
//! from its next ARP or solicitation.
//!
//! [`Verdict::Pass`](lbcore::balancer::Verdict::Pass) frames follow the [`PassPolicy`]. No
//! offloads are negotiated (no `IFF_VNET_HDR`): the kernel hands over complete, MTU-sized
//! frames. One `read(2)`/`write(2)` per frame.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use lbcore::balancer::RxMeta;
use lbcore::wire::HEADROOM;

use super::offload::{fold, sum};
use super::{DriverKind, DriverStats, FrameBuf, FrameIo, PassPolicy, wait_readable, write_one};

/// Most learnt neighbours.
const MAX_NEIGHBOURS: usize = 65536;
/// At most one resolution request per address this often.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// TAP driver settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapConfig {
    /// The balancer's MAC address on the segment.
    pub mac: [u8; 6],
    /// The addresses the balancer answers ARP / neighbour solicitations for.
    pub addresses: Vec<IpAddr>,
    /// What to do with packets that are not ours.
    pub pass: PassPolicy,
}

/// The TAP driver (see the module docs).
pub struct Tap {
    dev: File,
    name: String,
    mac: [u8; 6],
    addrs: Vec<IpAddr>,
    pass: PassPolicy,
    stats: DriverStats,
    neigh: HashMap<IpAddr, [u8; 6]>,
    probed: HashMap<IpAddr, Instant>,
}

/// What a received frame is to the driver.
enum Rx {
    Deliver,
    Reply(usize),
    Swallow,
    NotForUs,
}

impl Tap {
    /// Create or attach to TAP device `name` (empty: the kernel picks `tapN`).
    pub fn open(name: &str, config: TapConfig) -> io::Result<Tap> {
        let (fd, name) = crate::sys::tun_open(name, true)?;
        Ok(Tap {
            dev: File::from(fd),
            name,
            mac: config.mac,
            addrs: config.addresses,
            pass: config.pass,
            stats: DriverStats::default(),
            neigh: HashMap::new(),
            probed: HashMap::new(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The balancer's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Replace the addresses answered for (VIPs come and go with VRRP).
    pub fn set_addresses(&mut self, addresses: &[IpAddr]) {
        self.addrs.clear();
        self.addrs.extend_from_slice(addresses);
    }

    /// A learnt neighbour's MAC address.
    pub fn neighbour(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.neigh.get(&ip).copied()
    }

    fn learn(&mut self, ip: IpAddr, mac: [u8; 6]) {
        if self.neigh.len() < MAX_NEIGHBOURS || self.neigh.contains_key(&ip) {
            self.neigh.insert(ip, mac);
        }
    }

    fn ours(&self, ip: IpAddr) -> bool {
        self.addrs.contains(&ip)
    }

    /// Classify `f` (a frame in `buf`), answering ARP/ND into `out`.
    fn classify(&mut self, f: &[u8], out: &mut [u8; 128]) -> Rx {
        if f.len() < 14 {
            return Rx::Swallow;
        }
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        if ethertype == 0x0806 {
            return self.arp(f, out);
        }
        let dst = &f[0..6];
        if dst != self.mac && dst[0] & 1 == 0 {
            return Rx::NotForUs;
        }
        if ethertype == 0x86dd && f.len() >= 14 + 40 + 24 && f[20] == 58 && f[21] == 255 {
            return self.nd(f, out);
        }
        Rx::Deliver
    }

    fn arp(&mut self, f: &[u8], out: &mut [u8; 128]) -> Rx {
        // htype 1, ptype IPv4, hlen 6, plen 4.
        if f.len() < 42 || f[14..20] != [0, 1, 8, 0, 6, 4] {
            return Rx::Swallow;
        }
        let op = u16::from_be_bytes([f[20], f[21]]);
        let sha: [u8; 6] = f[22..28].try_into().unwrap_or_default();
        let spa = Ipv4Addr::new(f[28], f[29], f[30], f[31]);
        let tpa = Ipv4Addr::new(f[38], f[39], f[40], f[41]);
        if !self.ours(IpAddr::V4(tpa)) {
            return Rx::Swallow;
        }
        if !spa.is_unspecified() && sha[0] & 1 == 0 {
            self.learn(IpAddr::V4(spa), sha);
        }
        if op != 1 {
            return Rx::Swallow;
        }
        out[0..6].copy_from_slice(&sha);
        out[6..12].copy_from_slice(&self.mac);
        out[12..14].copy_from_slice(&[0x08, 0x06]);
        out[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
        out[22..28].copy_from_slice(&self.mac);
        out[28..32].copy_from_slice(&tpa.octets());
        out[32..38].copy_from_slice(&sha);
        out[38..42].copy_from_slice(&spa.octets());
        self.stats.arp_replies += 1;
        Rx::Reply(42)
    }

    fn nd(&mut self, f: &[u8], out: &mut [u8; 128]) -> Rx {
        let icmp = 54;
        let ty = f[icmp];
        if f[icmp + 1] != 0 || !(ty == 135 || ty == 136) {
            return Rx::Deliver;
        }
        let src: [u8; 16] = f[22..38].try_into().unwrap_or_default();
        let src = Ipv6Addr::from(src);
        let target: [u8; 16] = f[icmp + 8..icmp + 24].try_into().unwrap_or_default();
        let target = Ipv6Addr::from(target);
        // Options: type, length in units of 8 bytes.
        let mut lladdr = None;
        let mut o = icmp + 24;
        while o + 8 <= f.len() {
            let (t, l) = (f[o], usize::from(f[o + 1]) * 8);
            if l == 0 {
                break;
            }
            if (t == 1 && ty == 135) || (t == 2 && ty == 136) {
                lladdr = f[o + 2..o + 8].try_into().ok();
            }
            o += l;
        }
        if ty == 136 {
            if let Some(m) = lladdr {
                self.learn(IpAddr::V6(target), m);
            }
            return Rx::Deliver;
        }
        if !self.ours(IpAddr::V6(target)) {
            return Rx::Deliver;
        }
        let dad = src.is_unspecified();
        if let (false, Some(m)) = (dad, lladdr) {
            self.learn(IpAddr::V6(src), m);
        }
        let (dst_ip, dst_mac, flags) = if dad {
            (
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                [0x33, 0x33, 0, 0, 0, 1],
                0x20u8,
            )
        } else {
            let m: [u8; 6] = f[6..12].try_into().unwrap_or_default();
            (src, m, 0x60u8)
        };
        let len = build_na(out, self.mac, dst_mac, target, dst_ip, flags);
        self.stats.nd_replies += 1;
        Rx::Reply(len)
    }

    fn read_frames(&mut self, frames: &mut [FrameBuf]) -> io::Result<usize> {
        let mut n = 0;
        let mut reply = [0u8; 128];
        while n < frames.len() {
            let f = &mut frames[n];
            let Some(buf) = f.buf.get_mut(HEADROOM..) else {
                return Ok(n);
            };
            let len = match self.dev.read(buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if len == buf.len() {
                self.stats.rx_truncated += 1;
                continue;
            }
            f.start = HEADROOM;
            f.len = len;
            f.meta = RxMeta::ETHERNET;
            let frame = &frames[n].buf[HEADROOM..HEADROOM + len];
            // Copy-free classification needs `frame` while `self` is borrowed mutably: the
            // frame lives in the caller's buffer, not in `self`, so this is fine.
            match self.classify(frame, &mut reply) {
                Rx::Deliver => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += len as u64;
                    n += 1;
                }
                Rx::Reply(l) => write_one(&mut self.dev, &reply[..l], &mut self.stats)?,
                Rx::Swallow => {}
                Rx::NotForUs => self.stats.rx_not_for_us += 1,
            }
        }
        Ok(n)
    }

    /// Ask for `ip`'s MAC address (ARP request / neighbour solicitation), rate-limited.
    fn solicit(&mut self, ip: IpAddr) -> io::Result<()> {
        let now = Instant::now();
        if self
            .probed
            .get(&ip)
            .is_some_and(|t| now.duration_since(*t) < PROBE_INTERVAL)
        {
            return Ok(());
        }
        if self.probed.len() >= 4096 {
            self.probed.retain(|_, t| now.duration_since(*t) < PROBE_INTERVAL);
        }
        self.probed.insert(ip, now);
        let mut out = [0u8; 128];
        let len = match ip {
            IpAddr::V4(t) => {
                let Some(IpAddr::V4(s)) = self.addrs.iter().find(|a| a.is_ipv4()).copied() else {
                    return Ok(());
                };
                out[0..6].copy_from_slice(&[0xff; 6]);
                out[6..12].copy_from_slice(&self.mac);
                out[12..14].copy_from_slice(&[0x08, 0x06]);
                out[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
                out[22..28].copy_from_slice(&self.mac);
                out[28..32].copy_from_slice(&s.octets());
                out[38..42].copy_from_slice(&t.octets());
                42
            }
            IpAddr::V6(t) => {
                let Some(IpAddr::V6(s)) = self.addrs.iter().find(|a| a.is_ipv6()).copied() else {
                    return Ok(());
                };
                let o = t.octets();
                let snm = Ipv6Addr::from([0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15]]);
                let dmac = [0x33, 0x33, 0xff, o[13], o[14], o[15]];
                build_nd(&mut out, 135, self.mac, dmac, s, snm, t, 0, 1)
            }
        };
        write_one(&mut self.dev, &out[..len], &mut self.stats)
    }
}

/// A neighbour advertisement for `target` with our MAC in a target link-layer option.
fn build_na(
    out: &mut [u8; 128],
    mac: [u8; 6],
    dmac: [u8; 6],
    target: Ipv6Addr,
    dst: Ipv6Addr,
    flags: u8,
) -> usize {
    build_nd(out, 136, mac, dmac, target, dst, target, flags, 2)
}

/// An ND message (solicitation 135 or advertisement 136) with one link-layer option
/// (`opt` 1: source, 2: target) carrying `mac`; returns its length.
#[allow(clippy::too_many_arguments)]
fn build_nd(
    out: &mut [u8; 128],
    ty: u8,
    mac: [u8; 6],
    dmac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
    opt: u8,
) -> usize {
    const PLEN: usize = 32;
    out[0..6].copy_from_slice(&dmac);
    out[6..12].copy_from_slice(&mac);
    out[12..14].copy_from_slice(&[0x86, 0xdd]);
    out[14..18].copy_from_slice(&[0x60, 0, 0, 0]);
    out[18..20].copy_from_slice(&(PLEN as u16).to_be_bytes());
    out[20] = 58;
    out[21] = 255;
    out[22..38].copy_from_slice(&src.octets());
    out[38..54].copy_from_slice(&dst.octets());
    let i = 54;
    out[i..i + PLEN].fill(0);
    out[i] = ty;
    out[i + 4] = flags;
    out[i + 8..i + 24].copy_from_slice(&target.octets());
    out[i + 24] = opt;
    out[i + 25] = 1;
    out[i + 26..i + 32].copy_from_slice(&mac);
    let pseudo = sum(&out[22..54], PLEN as u64 + 58);
    let c = fold(sum(&out[i..i + PLEN], pseudo));
    out[i + 2..i + 4].copy_from_slice(&c.to_be_bytes());
    i + PLEN
}

impl FrameIo for Tap {
    fn kind(&self) -> DriverKind {
        DriverKind::Tap
    }

    fn recv_batch(&mut self, frames: &mut [FrameBuf], timeout: Option<Duration>) -> io::Result<usize> {
        let n = self.read_frames(frames)?;
        if n > 0 || frames.is_empty() || timeout == Some(Duration::ZERO) {
            return Ok(n);
        }
        if wait_readable(&self.dev, timeout)? {
            return self.read_frames(frames);
        }
        Ok(0)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        write_one(&mut self.dev, data, &mut self.stats)
    }

    fn send_routed(&mut self, packet: &[u8], next_hop: IpAddr) -> io::Result<()> {
        let Some(dmac) = self.neigh.get(&next_hop).copied() else {
            self.stats.tx_unresolved += 1;
            return self.solicit(next_hop);
        };
        let ethertype: [u8; 2] = match packet.first().map(|b| b >> 4) {
            Some(4) => [0x08, 0x00],
            Some(6) => [0x86, 0xdd],
            _ => {
                self.stats.tx_dropped += 1;
                return Ok(());
            }
        };
        // One frame on the stack: TAP frames are MTU-sized (jumbo at most 9 KiB + headers).
        let mut frame = [0u8; 9216 + 14];
        let Some(dst) = frame.get_mut(..packet.len() + 14) else {
            self.stats.tx_dropped += 1;
            return Ok(());
        };
        dst[0..6].copy_from_slice(&dmac);
        dst[6..12].copy_from_slice(&self.mac);
        dst[12..14].copy_from_slice(&ethertype);
        dst[14..].copy_from_slice(packet);
        let len = packet.len() + 14;
        write_one(&mut self.dev, &frame[..len], &mut self.stats)
    }

    fn pass(&mut self, frame: &[u8]) -> io::Result<()> {
        match self.pass {
            PassPolicy::Drop => {
                self.stats.pass_dropped += 1;
                Ok(())
            }
            PassPolicy::Reinject => {
                self.stats.passed += 1;
                write_one(&mut self.dev, frame, &mut self.stats)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn stats(&self) -> DriverStats {
        self.stats
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn na_checksum_is_valid() {
        let mut out = [0u8; 128];
        let t: Ipv6Addr = "fd00::100".parse().unwrap();
        let d: Ipv6Addr = "fd00::1".parse().unwrap();
        let n = build_na(&mut out, [2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1], t, d, 0x60);
        let p = etherparse::SlicedPacket::from_ethernet(&out[..n]).unwrap();
        let Some(etherparse::TransportSlice::Icmpv6(i)) = p.transport else {
            panic!()
        };
        let Some(etherparse::NetSlice::Ipv6(ip)) = p.net else {
            panic!()
        };
        let h = i.header();
        assert_eq!(
            h.icmp_type
                .calc_checksum(ip.header().source(), ip.header().destination(), i.payload())
                .unwrap(),
            h.checksum
        );
    }
}
