//! The sockets of the VRRP runner.
//!
//! - [`VrrpSocket`], one per interface and address family: a raw IP socket for protocol 112,
//!   bound to the interface (`SO_BINDTODEVICE`), member of 224.0.0.18 / ff02::12 on it when an
//!   instance there uses multicast. IPv4 delivers whole packets (the core checks the TTL in
//!   the header); IPv6 delivers the message and reports the destination and hop limit in
//!   control messages (`IPV6_RECVPKTINFO`, `IPV6_RECVHOPLIMIT`). It also sends adverts to
//!   unicast peers whose MAC is unknown, through the kernel's routing: IPv4 with
//!   `IP_HDRINCL` (the core's IP packet as it is), IPv6 as the bare message with the source
//!   address set by `IPV6_PKTINFO`, hop limit 255 and traffic class 0xc0 (what the core
//!   would have put in the header).
//! - [`PacketSocket`], one per interface: `AF_PACKET` sending the Ethernet frames the core
//!   builds (multicast adverts, gratuitous ARPs, unsolicited NAs) byte for byte, as
//!   keepalived's wire output. It receives nothing (protocol 0).
//!
//! Frames sent on an `AF_PACKET` socket are not looped back to the host's IP stack, so a
//! router never hears its own adverts.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use lbcore::service::Family;
use lbcore::vrrp::wire::{MCAST_V4, MCAST_V6, PROTO_VRRP, TOS, TTL};
use lbcore::vrrp::{AdvertPacket, Rx};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use super::rx::{ipv6_rx, parse_cmsgs};
use crate::sys;

/// A raw IP socket for VRRP on one interface and family.
pub struct VrrpSocket {
    sock: Socket,
    family: Family,
    ifindex: u32,
    control: [u8; 256],
}

impl VrrpSocket {
    /// Open it on interface `ifname` (index `ifindex`), joining the VRRP group if `multicast`.
    pub fn open(ifname: &str, ifindex: u32, family: Family, multicast: bool) -> io::Result<VrrpSocket> {
        let proto = Some(Protocol::from(i32::from(PROTO_VRRP)));
        let sock = match family {
            Family::V4 => Socket::new(Domain::IPV4, Type::RAW, proto)?,
            Family::V6 => Socket::new(Domain::IPV6, Type::RAW, proto)?,
        };
        sock.bind_device(Some(ifname.as_bytes()))?;
        sock.set_nonblocking(true)?;
        match family {
            Family::V4 => {
                sock.set_header_included_v4(true)?;
                sock.set_multicast_all_v4(false)?;
                if multicast {
                    sock.join_multicast_v4_n(&MCAST_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
                }
            }
            Family::V6 => {
                sys::setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1)?;
                sys::setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
                sock.set_unicast_hops_v6(u32::from(TTL))?;
                sock.set_multicast_hops_v6(u32::from(TTL))?;
                sock.set_tclass_v6(u32::from(TOS))?;
                sock.set_multicast_all_v6(false)?;
                if multicast {
                    sock.join_multicast_v6(&MCAST_V6, ifindex)?;
                }
            }
        }
        Ok(VrrpSocket {
            sock,
            family,
            ifindex,
            control: [0; 256],
        })
    }

    /// The address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Receive one packet into `buf` without blocking: `Ok(None)` when nothing is waiting,
    /// `Ok(Some((len, Some(rx))))` for a packet to hand to the core, `Ok(Some((len, None)))`
    /// for one that cannot be used (truncated, or an IPv6 packet without its addresses).
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, Option<Rx>)>> {
        match self.family {
            Family::V4 => match (&self.sock).read(buf) {
                Ok(n) => Ok(Some((n, (n < buf.len()).then_some(Rx::Ip)))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
            Family::V6 => match sys::recvmsg(&self.sock, buf, &mut self.control) {
                Ok(r) => {
                    let cmsgs = parse_cmsgs(self.control.get(..r.control_len).unwrap_or(&[]));
                    let rx = if r.truncated { None } else { ipv6_rx(r.src, &cmsgs) };
                    Ok(Some((r.len, rx)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// Send an advert to a unicast peer through the kernel's routing (for peers whose MAC is
    /// unknown, i.e. `advert.frame()` is `None`). `src` is the instance's source address.
    pub fn send_routed(&self, advert: &AdvertPacket, src: IpAddr) -> io::Result<()> {
        match (advert.dst(), src) {
            (IpAddr::V4(dst), _) => {
                let to = SockAddr::from(SocketAddrV4::new(dst, 0));
                self.sock.send_to(advert.ip(), &to)?;
            }
            (IpAddr::V6(dst), IpAddr::V6(src)) => {
                let scope = if dst.is_unicast_link_local() {
                    self.ifindex
                } else {
                    0
                };
                sys::send_v6_from(
                    &self.sock,
                    advert.vrrp(),
                    SocketAddrV6::new(dst, 0, 0, scope),
                    src,
                    self.ifindex,
                )?;
            }
            (IpAddr::V6(_), IpAddr::V4(_)) => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
        Ok(())
    }
}

impl AsRawFd for VrrpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// An `AF_PACKET` socket sending whole Ethernet frames out of one interface.
pub struct PacketSocket {
    sock: Socket,
}

impl PacketSocket {
    /// Open it on interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        Ok(PacketSocket {
            sock: sys::packet_socket(ifindex)?,
        })
    }

    /// Send one frame as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }
}

/// The peer address of a received packet, for logs (IPv4: from the header).
pub fn source_of(bytes: &[u8], rx: Rx) -> Option<IpAddr> {
    lbcore::vrrp::wire::parse_envelope(bytes, rx)
        .ok()
        .map(|(env, _)| env.src)
}
