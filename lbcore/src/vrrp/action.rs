//! What a router hands back to its driver: [`Action`]s drained with
//! [`super::Router::poll_action`], and the packets inside them, built into fixed-size inline
//! buffers (no allocator).

use core::fmt;
use core::net::IpAddr;

use super::config::{MAX_VIPS, Vip};
use super::garp::NA_LEN;
use super::wire::{ETH_LEN, IPV6_LEN};

/// Bytes an advert frame can take: Ethernet + IPv6 + VRRP header + [`MAX_VIPS`] IPv6
/// addresses (the IPv4/VRRPv2 worst case, 14 + 20 + 8 + 80 + 8 = 130, is smaller).
pub const ADVERT_CAPACITY: usize = ETH_LEN + IPV6_LEN + 8 + 16 * MAX_VIPS;

/// The RFC 5798 states, plus keepalived's Fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down: sends nothing, ignores everything.
    Initialize,
    /// Listening to the master, ready to take over when it falls silent.
    Backup,
    /// Owning the VIPs and advertising.
    Master,
    /// A tracked object with weight 0 failed, or the interface is down (keepalived's FAULT):
    /// like Initialize, until the fault clears.
    Fault,
}

/// One output of a router. Drain them with `poll_action` until it returns `None`, after
/// every input and command, and carry them out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
// An advert is ~400 bytes and the other variants are small; with no allocator to box it,
// the size is the price of handing packets out by value, one at a time.
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// The router changed state (run notify_master / notify_backup / notify_fault here).
    /// Always the first action of a transition.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
    },
    /// Install this VIP on the interface (entering Master).
    AddVip(Vip),
    /// Remove this VIP from the interface (leaving Master).
    RemoveVip(Vip),
    /// Send this advertisement (one action per unicast peer).
    SendAdvert(AdvertPacket),
    /// Send this gratuitous ARP / unsolicited NA frame.
    SendGratuitous(GratuitousFrame),
}

/// A built advertisement: an Ethernet frame whose IP packet and VRRP message can be taken
/// separately, for whichever socket the driver has (AF_PACKET wants the frame, an IPv4 raw
/// socket with IP_HDRINCL the IP packet, an IPv6 raw socket the VRRP message).
#[derive(Clone, PartialEq, Eq)]
pub struct AdvertPacket {
    pub(crate) buf: [u8; ADVERT_CAPACITY],
    pub(crate) len: u16,
    pub(crate) ip_header_len: u8,
    pub(crate) link: bool,
    pub(crate) dst: IpAddr,
    pub(crate) priority: u8,
}

impl AdvertPacket {
    pub(crate) fn empty(dst: IpAddr, priority: u8) -> AdvertPacket {
        AdvertPacket {
            buf: [0; ADVERT_CAPACITY],
            len: 0,
            ip_header_len: 0,
            link: false,
            dst,
            priority,
        }
    }

    /// The whole Ethernet frame, when its destination MAC is known: always for multicast;
    /// for a unicast peer only if its MAC was configured.
    pub fn frame(&self) -> Option<&[u8]> {
        if self.link {
            self.buf.get(..usize::from(self.len))
        } else {
            None
        }
    }

    /// The IP packet (IPv4 or IPv6 header, then the VRRP message).
    pub fn ip(&self) -> &[u8] {
        self.buf.get(ETH_LEN..usize::from(self.len)).unwrap_or(&[])
    }

    /// The VRRP message alone.
    pub fn vrrp(&self) -> &[u8] {
        self.buf
            .get(ETH_LEN + usize::from(self.ip_header_len)..usize::from(self.len))
            .unwrap_or(&[])
    }

    /// The IP destination: the multicast group or a unicast peer.
    pub fn dst(&self) -> IpAddr {
        self.dst
    }

    /// The advertised priority (0 when stepping down).
    pub fn priority(&self) -> u8 {
        self.priority
    }
}

impl fmt::Debug for AdvertPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvertPacket")
            .field("dst", &self.dst)
            .field("priority", &self.priority)
            .field("link", &self.link)
            .field("len", &self.len)
            .finish()
    }
}

/// A gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) frame.
#[derive(Clone, PartialEq, Eq)]
pub struct GratuitousFrame {
    pub(crate) buf: [u8; NA_LEN],
    pub(crate) len: u8,
    pub(crate) vip: IpAddr,
}

impl GratuitousFrame {
    /// The Ethernet frame.
    pub fn frame(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The VIP it announces.
    pub fn vip(&self) -> IpAddr {
        self.vip
    }
}

impl fmt::Debug for GratuitousFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GratuitousFrame")
            .field("vip", &self.vip)
            .field("len", &self.len)
            .finish()
    }
}
