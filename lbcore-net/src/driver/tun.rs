//! TUN driver: a layer-3 device (`IFF_TUN | IFF_NO_PI`), frames are bare IPv4/IPv6 packets
//! ([`LinkKind::Ip`]).
//!
//! The device is created, or attached to if it exists, by name; it disappears when the driver
//! is dropped unless it was made persistent elsewhere. Configure it (addresses, routes, `up`)
//! with `ip` or rtnetlink. No offloads are negotiated with the kernel (no `IFF_VNET_HDR`), so
//! the kernel segments and checksums everything before handing it over: packets read are
//! complete and at most the device MTU long.
//!
//! Output: [`FrameIo::send`] and [`FrameIo::send_routed`] both write the bare IP packet (the
//! kernel routes it onwards as if it came in on the device; the next hop is the kernel's
//! business). Ethernet output cannot be produced for a TUN device: forwarding methods that
//! need it (direct routing) are refused up front by [`super::check_methods`], and any that
//! reaches us is counted ([`DriverStats::tx_wrong_link`]). [`Verdict::Pass`] packets follow
//! the [`PassPolicy`]. One `read(2)`/`write(2)` per packet; a full device queue drops and
//! counts.
//!
//! [`Verdict::Pass`]: lbcore::balancer::Verdict::Pass

use std::fs::File;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use lbcore::wire::LinkKind;

use super::{DriverKind, DriverStats, FrameBuf, FrameIo, PassPolicy, read_batch, wait_readable, write_one};

/// The TUN driver (see the module docs).
pub struct Tun {
    dev: File,
    name: String,
    pass: PassPolicy,
    stats: DriverStats,
}

impl Tun {
    /// Create or attach to TUN device `name` (empty: the kernel picks `tunN`).
    pub fn open(name: &str, pass: PassPolicy) -> io::Result<Tun> {
        let (fd, name) = crate::sys::tun_open(name, false)?;
        Ok(Tun {
            dev: File::from(fd),
            name,
            pass,
            stats: DriverStats::default(),
        })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FrameIo for Tun {
    fn kind(&self) -> DriverKind {
        DriverKind::Tun
    }

    fn recv_batch(&mut self, frames: &mut [FrameBuf], timeout: Option<Duration>) -> io::Result<usize> {
        let n = read_batch(&mut self.dev, frames, LinkKind::Ip, &mut self.stats, |_, _| true)?;
        if n > 0 || frames.is_empty() || timeout == Some(Duration::ZERO) {
            return Ok(n);
        }
        if wait_readable(&self.dev, timeout)? {
            return read_batch(&mut self.dev, frames, LinkKind::Ip, &mut self.stats, |_, _| true);
        }
        Ok(0)
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        write_one(&mut self.dev, data, &mut self.stats)
    }

    fn send_routed(&mut self, packet: &[u8], _next_hop: IpAddr) -> io::Result<()> {
        write_one(&mut self.dev, packet, &mut self.stats)
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

    fn complete(&mut self, frames: &[FrameBuf], verdicts: &[lbcore::balancer::Verdict]) -> io::Result<()> {
        use lbcore::balancer::Verdict;
        for (f, v) in frames.iter().zip(verdicts) {
            match v {
                Verdict::Forward(to) if to.link == LinkKind::Ethernet => self.stats.tx_wrong_link += 1,
                Verdict::Forward(_) => self.send(f.data())?,
                Verdict::Pass => self.pass(f.data())?,
                Verdict::Drop(_) | Verdict::Consumed => {}
            }
        }
        Ok(())
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.dev.as_raw_fd()
    }
}
