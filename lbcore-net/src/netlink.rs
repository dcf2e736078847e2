//! rtnetlink, synchronously: interface lookup (index, MAC, flags, addresses), VIP add and
//! remove, and a link-state monitor. Built on `netlink-packet-route` + `netlink-sys`
//! (no async runtime).
//!
//! VIPs are added as keepalived adds them: IPv4 with the given prefix length and scope
//! global; IPv6 with `IFA_F_NODAD` so the address is usable at once. Adding an address that is
//! already there and removing one that is not are not errors (the functions say which
//! happened).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// `RTMGRP_LINK`: the multicast group of link changes.
const RTMGRP_LINK: u32 = 1;

/// An interface as rtnetlink describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, if it is an Ethernet-like 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub admin_up: bool,
    /// Carrier present (`IFF_RUNNING`).
    pub running: bool,
}

impl Link {
    /// keepalived's notion of a usable interface: `IFF_UP` and `IFF_RUNNING`.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.running
    }

    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
            admin_up: msg.header.flags.contains(LinkFlags::Up),
            running: msg.header.flags.contains(LinkFlags::Running),
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name.clone_from(n),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
                _ => {}
            }
        }
        link
    }
}

/// An address on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface index.
    pub index: u32,
    /// The address (`IFA_LOCAL` for IPv4, `IFA_ADDRESS` for IPv6).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// `IFA_F_SECONDARY`.
    pub secondary: bool,
    /// `IFA_F_TENTATIVE` (IPv6 duplicate address detection still running).
    pub tentative: bool,
}

/// A synchronous rtnetlink request socket.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Open and bind a NETLINK_ROUTE socket.
    pub fn new() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl {
            sock,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every interface.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let replies = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(Link::from_message(l)),
                _ => None,
            })
            .collect())
    }

    /// The interface called `name`, if there is one.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        Ok(self.links()?.into_iter().find(|l| l.name == name))
    }

    /// The addresses of interface `index` (all interfaces with `None`), in the kernel's order
    /// (for IPv4 the primary address of a subnet comes before its secondaries).
    pub fn addresses(&mut self, index: Option<u32>) -> io::Result<Vec<IfAddr>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
        )?;
        let mut out = Vec::new();
        for m in &replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if index.is_some_and(|i| i != a.header.index) {
                continue;
            }
            let mut local = None;
            let mut address = None;
            let mut flags = u32::from(a.header.flags.bits());
            for attr in &a.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    AddressAttribute::Flags(f) => flags = f.bits(),
                    _ => {}
                }
            }
            if let Some(addr) = local.or(address) {
                out.push(IfAddr {
                    index: a.header.index,
                    addr,
                    prefix_len: a.header.prefix_len,
                    secondary: flags & AddressFlags::Secondary.bits() != 0,
                    tentative: flags & AddressFlags::Tentative.bits() != 0,
                });
            }
        }
        Ok(out)
    }

    /// Add `addr/prefix_len` to interface `index` (IPv6: `IFA_F_NODAD`), with an optional
    /// IPv4 label. Returns `false` if the address was already there.
    pub fn add_address(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        label: Option<&str>,
    ) -> io::Result<bool> {
        let msg = address_message(index, addr, prefix_len, label);
        match self.request(RouteNetlinkMessage::NewAddress(msg), NLM_F_CREATE | NLM_F_EXCL) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove `addr/prefix_len` from interface `index`. Returns `false` if it was not there.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<bool> {
        let msg = address_message(index, addr, prefix_len, None);
        match self.request(RouteNetlinkMessage::DelAddress(msg), 0) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Send one request (with `NLM_F_REQUEST | NLM_F_ACK | flags`) and collect the replies
    /// until the acknowledgement or the end of the dump; a netlink error becomes an
    /// `io::Error` with its errno.
    fn request(&mut self, inner: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(inner));
        packet.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        packet.header.sequence_number = seq;
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < n {
                let bytes = self.buf.get(offset..n).unwrap_or(&[]);
                let msg: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq {
                    match msg.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => match e.code {
                            None if !dump => return Ok(replies),
                            None => {}
                            Some(code) => return Err(io::Error::from_raw_os_error(-code.get())),
                        },
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

fn address_message(index: u32, addr: IpAddr, prefix_len: u8, label: Option<&str>) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    match addr {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(addr));
            msg.attributes.push(AddressAttribute::Address(addr));
            if let Some(l) = label {
                msg.attributes.push(AddressAttribute::Label(l.to_string()));
            }
        }
        IpAddr::V6(v6) => {
            msg.header.family = AddressFamily::Inet6;
            if v6.is_unicast_link_local() {
                msg.header.scope = AddressScope::Link;
            }
            msg.attributes.push(AddressAttribute::Address(addr));
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg
}

/// Link changes as they happen: a non-blocking socket subscribed to `RTMGRP_LINK`, to be
/// polled for readability and drained with [`LinkMonitor::drain`].
pub struct LinkMonitor {
    sock: Socket,
    buf: Vec<u8>,
}

impl LinkMonitor {
    /// Subscribe to link changes.
    pub fn new() -> io::Result<LinkMonitor> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        sock.set_non_blocking(true)?;
        Ok(LinkMonitor {
            sock,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every link notification received since the last call (new state of each link). On
    /// `ENOBUFS` (notifications were lost) the caller should re-read the links.
    pub fn drain(&mut self) -> io::Result<Vec<Link>> {
        let mut out = Vec::new();
        loop {
            let n = match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) => return Err(e),
            };
            let mut offset = 0;
            while offset < n {
                let Some(bytes) = self.buf.get(offset..n) else {
                    break;
                };
                let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes) else {
                    break;
                };
                let len = msg.header.length as usize;
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = &msg.payload {
                    out.push(Link::from_message(l));
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

impl AsRawFd for LinkMonitor {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}
