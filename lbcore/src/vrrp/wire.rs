//! The VRRP advertisement on the wire: RFC 3768 (VRRPv2) and RFC 5798 (VRRPv3), with the IPv4
//! or IPv6 header and the Ethernet header around it, parsed and emitted byte for byte as
//! keepalived 2.2.7 does.
//!
//! Guarantees:
//! - [`parse_envelope`], [`Advert::parse`] and [`peek_vrid`] never panic, whatever the bytes:
//!   every access goes through a bounds-checked helper, and a packet that cannot be vouched for
//!   is refused with the [`Reject`] reason a router counts.
//! - Emission ([`emit_advert`]) writes only inside the caller's buffer and returns `None`
//!   (writing nothing useful) when the buffer is too small; it never panics either.
//! - What is emitted is exactly what keepalived writes: IPv4 TOS 0xc0, TTL 255, DF clear,
//!   protocol 112, the caller's IP ID; IPv6 traffic class 0xc0 and hop limit 255; VRRPv2
//!   checksum over the message only, VRRPv3 checksum with the IPv4/IPv6 pseudo-header (or, for
//!   IPv4 with `v3_checksum_as_v2`, without it, as RFC 9568 and Cisco/Juniper read RFC 5798).
//!
//! Not handled here: IPv6 extension headers (a VRRP packet never carries them, so a next
//! header other than 112 is simply "not VRRP"), 802.1Q tags, and IPsec AH authentication
//! (keepalived's `auth_type AH`; an AH packet is protocol 51 and therefore "not VRRP").

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::counters::Reject;
use crate::service::Family;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.3).
pub const PROTO_VRRP: u8 = 112;
/// The IPv4 multicast group adverts go to (RFC 5798 §5.1.1.2).
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts go to (RFC 5798 §5.1.2.2).
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Ethernet destination of an IPv4 advert: 224.0.0.18 mapped per RFC 1112 §6.4.
pub const MCAST_MAC_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// Ethernet destination of an IPv6 advert: ff02::12 mapped per RFC 2464 §7.
pub const MCAST_MAC_V6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];
/// The only TTL / hop limit a VRRP router sends and accepts (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;
/// IPv4 TOS / IPv6 traffic class keepalived sends: DSCP CS6 "internetwork control".
pub const TOS: u8 = 0xc0;
/// Length of the fixed VRRP header (version/type .. checksum).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data that follows the addresses (RFC 3768 §5.3.10).
pub const AUTH_LEN: usize = 8;
/// The only VRRP packet type: ADVERTISEMENT.
pub const TYPE_ADVERT: u8 = 1;
/// Ethernet header length.
pub const ETH_LEN: usize = 14;
/// IPv4 header length as sent (no options).
pub const IPV4_LEN: usize = 20;
/// IPv6 header length.
pub const IPV6_LEN: usize = 40;
/// VRRPv2 authentication type "none" (RFC 3768 §5.3.6).
pub const AUTH_NONE: u8 = 0;
/// VRRPv2 authentication type "simple text password" (RFC 2338, kept by keepalived as `PASS`).
pub const AUTH_PASS: u8 = 1;
/// VRRPv2 authentication type "IP authentication header" (RFC 2338; keepalived `AH`).
pub const AUTH_AH: u8 = 2;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, interval in seconds, 8 bytes of authentication data.
    V2,
    /// VRRPv3, RFC 5798: IPv4 and IPv6, interval in centiseconds, checksum with pseudo-header.
    V3,
}

impl Version {
    /// The number in the version nibble.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// VRRPv2 authentication as keepalived offers it (AH is not supported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0: no authentication; the 8 authentication bytes are sent as zeros and ignored.
    None,
    /// Type 1, keepalived `auth_type PASS`: the first 8 bytes of the password, zero padded.
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// keepalived's `auth_pass`: the first 8 bytes of `secret`, zero padded.
    pub fn pass(secret: &[u8]) -> Auth {
        let mut data = [0u8; AUTH_LEN];
        for (d, s) in data.iter_mut().zip(secret) {
            *d = *s;
        }
        Auth::Pass(data)
    }

    /// The authentication type number sent in a VRRPv2 header.
    pub const fn type_number(&self) -> u8 {
        match self {
            Auth::None => AUTH_NONE,
            Auth::Pass(_) => AUTH_PASS,
        }
    }

    /// The 8 authentication bytes sent after the addresses.
    pub const fn data(&self) -> [u8; AUTH_LEN] {
        match self {
            Auth::None => [0; AUTH_LEN],
            Auth::Pass(d) => *d,
        }
    }
}

/// What the bytes handed to a parser start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rx {
    /// An Ethernet II frame (AF_PACKET, TAP); padding after the IP packet is ignored.
    Ethernet,
    /// A bare IPv4 or IPv6 packet (an IPv4 raw socket delivers this, header included).
    Ip,
    /// The bare VRRP message, as an IPv6 raw socket delivers it; the addresses and the hop
    /// limit come from `recvmsg` (`IPV6_PKTINFO`, `IPV6_HOPLIMIT`). Without a hop limit the
    /// TTL check is skipped, as keepalived does when the kernel did not report one.
    Payload {
        /// Source address of the packet.
        src: IpAddr,
        /// Destination address of the packet.
        dst: IpAddr,
        /// The received hop limit / TTL, if known.
        hop_limit: Option<u8>,
    },
}

/// The IP envelope of a received VRRP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Envelope {
    /// Source address (the sending router's primary address).
    pub src: IpAddr,
    /// Destination address (the multicast group, or us for unicast).
    pub dst: IpAddr,
    /// TTL / hop limit, when the input carried it.
    pub ttl: Option<u8>,
}

/// Strip the Ethernet and IP headers described by `rx`, returning the envelope and the VRRP
/// message (exactly the IP payload: Ethernet padding and bytes past the IP length dropped).
///
/// Refusals: [`Reject::Truncated`] (the slice ends inside a header or before the length the
/// IP header announces), [`Reject::NotVrrp`] (another EtherType, IP version or protocol),
/// [`Reject::IpHeader`] (bad IPv4 header checksum, IHL or total length, a fragment, or an IP
/// version that contradicts the EtherType).
pub fn parse_envelope(bytes: &[u8], rx: Rx) -> Result<(Envelope, &[u8]), Reject> {
    match rx {
        Rx::Ethernet => {
            let ethertype = be16(bytes, 12).ok_or(Reject::Truncated)?;
            let ip = bytes.get(ETH_LEN..).ok_or(Reject::Truncated)?;
            match ethertype {
                ETHERTYPE_IPV4 => parse_ipv4(ip),
                ETHERTYPE_IPV6 => parse_ipv6(ip),
                _ => Err(Reject::NotVrrp),
            }
        }
        Rx::Ip => match bytes.first().map(|b| b >> 4) {
            None => Err(Reject::Truncated),
            Some(4) => parse_ipv4(bytes),
            Some(6) => parse_ipv6(bytes),
            Some(_) => Err(Reject::NotVrrp),
        },
        Rx::Payload { src, dst, hop_limit } => Ok((
            Envelope {
                src,
                dst,
                ttl: hop_limit,
            },
            bytes,
        )),
    }
}

fn parse_ipv4(b: &[u8]) -> Result<(Envelope, &[u8]), Reject> {
    let ver_ihl = *b.first().ok_or(Reject::Truncated)?;
    if b.len() < IPV4_LEN {
        return Err(Reject::Truncated);
    }
    if ver_ihl >> 4 != 4 {
        return Err(Reject::IpHeader);
    }
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ihl < IPV4_LEN {
        return Err(Reject::IpHeader);
    }
    let header = b.get(..ihl).ok_or(Reject::Truncated)?;
    let total = usize::from(be16(b, 2).ok_or(Reject::Truncated)?);
    if total < ihl {
        return Err(Reject::IpHeader);
    }
    if total > b.len() {
        return Err(Reject::Truncated);
    }
    if checksum(0, header) != 0 {
        return Err(Reject::IpHeader);
    }
    // MF set or a fragment offset: VRRP is never fragmented, and we do not reassemble.
    if be16(b, 6).ok_or(Reject::Truncated)? & 0x3fff != 0 {
        return Err(Reject::IpHeader);
    }
    if b.get(9) != Some(&PROTO_VRRP) {
        return Err(Reject::NotVrrp);
    }
    let env = Envelope {
        src: IpAddr::V4(ipv4_at(b, 12).ok_or(Reject::Truncated)?),
        dst: IpAddr::V4(ipv4_at(b, 16).ok_or(Reject::Truncated)?),
        ttl: b.get(8).copied(),
    };
    Ok((env, b.get(ihl..total).ok_or(Reject::Truncated)?))
}

fn parse_ipv6(b: &[u8]) -> Result<(Envelope, &[u8]), Reject> {
    if b.len() < IPV6_LEN {
        return Err(Reject::Truncated);
    }
    if b.first().map(|v| v >> 4) != Some(6) {
        return Err(Reject::IpHeader);
    }
    let payload_len = usize::from(be16(b, 4).ok_or(Reject::Truncated)?);
    let end = IPV6_LEN + payload_len;
    if end > b.len() {
        return Err(Reject::Truncated);
    }
    if b.get(6) != Some(&PROTO_VRRP) {
        return Err(Reject::NotVrrp);
    }
    let env = Envelope {
        src: IpAddr::V6(ipv6_at(b, 8).ok_or(Reject::Truncated)?),
        dst: IpAddr::V6(ipv6_at(b, 24).ok_or(Reject::Truncated)?),
        ttl: b.get(7).copied(),
    };
    Ok((env, b.get(IPV6_LEN..end).ok_or(Reject::Truncated)?))
}

/// The address family and VRID of a VRRP packet, without validating it: enough for a driver
/// running several instances to pick the one a packet is for.
pub fn peek_vrid(bytes: &[u8], rx: Rx) -> Option<(Family, u8)> {
    let (env, msg) = parse_envelope(bytes, rx).ok()?;
    Some((Family::of(&env.src), *msg.get(1)?))
}

/// A parsed VRRP message. It borrows the message; nothing is copied but the fixed fields.
///
/// Parsing checks only what is needed to read the message safely: at least the fixed header,
/// a version of 2 or 3 (the layout depends on it), and a length matching the address count.
/// The rest (type, VRID, checksum, authentication, interval, addresses) is judged by the
/// router, which knows its configuration and counts each refusal by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert<'a> {
    /// Protocol version.
    pub version: Version,
    /// The type nibble; [`TYPE_ADVERT`] is the only valid one.
    pub kind: u8,
    /// Virtual router identifier.
    pub vrid: u8,
    /// Sender's priority: 0 = master stepping down, 255 = address owner.
    pub priority: u8,
    /// The "Count IPvX Addrs" field.
    pub count: u8,
    /// VRRPv2 authentication type; 0 in VRRPv3 (which has none).
    pub auth_type: u8,
    /// Advertisement interval: seconds in VRRPv2, centiseconds (12 bits) in VRRPv3.
    pub interval: u16,
    /// The 4 reserved bits before a VRRPv3 interval (0 in VRRPv2).
    pub reserved: u8,
    /// The checksum field as received.
    pub checksum: u16,
    /// The VRRPv2 authentication data (zeros when the message has none).
    pub auth_data: [u8; AUTH_LEN],
    family: Family,
    message: &'a [u8],
}

impl<'a> Advert<'a> {
    /// Parse a VRRP message carried over `family`.
    ///
    /// Refusals: [`Reject::TooShort`] (shorter than the fixed header, or than the addresses and
    /// authentication data the header announces), [`Reject::Version`] (neither 2 nor 3),
    /// [`Reject::Length`] (longer than announced: keepalived refuses "vrrp packet too long").
    pub fn parse(message: &'a [u8], family: Family) -> Result<Advert<'a>, Reject> {
        let header = message.get(..HEADER_LEN).ok_or(Reject::TooShort)?;
        let version = match header[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            _ => return Err(Reject::Version),
        };
        let count = header[3];
        let expected = message_len(version, family, usize::from(count));
        if message.len() < expected {
            return Err(Reject::TooShort);
        }
        if message.len() > expected {
            return Err(Reject::Length);
        }
        let (auth_type, interval, reserved) = match version {
            Version::V2 => (header[4], u16::from(header[5]), 0),
            Version::V3 => (
                0,
                u16::from_be_bytes([header[4], header[5]]) & 0x0fff,
                header[4] >> 4,
            ),
        };
        let mut auth_data = [0u8; AUTH_LEN];
        if has_auth(version, family) {
            let start = expected - AUTH_LEN;
            if let Some(src) = message.get(start..expected) {
                auth_data.copy_from_slice(src);
            }
        }
        Ok(Advert {
            version,
            kind: header[0] & 0x0f,
            vrid: header[1],
            priority: header[2],
            count,
            auth_type,
            interval,
            reserved,
            checksum: u16::from_be_bytes([header[6], header[7]]),
            auth_data,
            family,
            message,
        })
    }

    /// The whole message as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.message
    }

    /// The address family the message was parsed for.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The `i`-th advertised address.
    pub fn address(&self, i: usize) -> Option<IpAddr> {
        match self.family {
            Family::V4 => ipv4_at(self.message, HEADER_LEN + 4 * i).map(IpAddr::V4),
            Family::V6 => ipv6_at(self.message, HEADER_LEN + 16 * i).map(IpAddr::V6),
        }
    }

    /// The advertised addresses, in order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        (0..usize::from(self.count)).filter_map(move |i| self.address(i))
    }

    /// Whether the checksum is right for the rules of [`Advert::version`]: VRRPv2 over the
    /// message alone; VRRPv3 with the pseudo-header of `env` (IPv4 without it when
    /// `v3_as_v2`).
    pub fn checksum_ok(&self, env: &Envelope, v3_as_v2: bool) -> bool {
        let start = pseudo_header(self.version, env.src, env.dst, self.message.len(), v3_as_v2).unwrap_or(0);
        checksum(start, self.message) == 0
    }
}

/// The length of a VRRP message with `count` addresses.
pub const fn message_len(version: Version, family: Family, count: usize) -> usize {
    let addr = match family {
        Family::V4 => 4,
        Family::V6 => 16,
    };
    HEADER_LEN + addr * count + if has_auth(version, family) { AUTH_LEN } else { 0 }
}

/// VRRPv2 over IPv4 carries 8 bytes of authentication data. (keepalived's non-standard
/// VRRPv2-over-IPv6 leaves them out; VRRPv3 has none.)
const fn has_auth(version: Version, family: Family) -> bool {
    matches!((version, family), (Version::V2, Family::V4))
}

/// The fixed fields of an advertisement to emit; the addresses are the configured VIPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertRepr<'a> {
    /// Protocol version.
    pub version: Version,
    /// Virtual router identifier.
    pub vrid: u8,
    /// Priority to advertise (0 when stepping down).
    pub priority: u8,
    /// Interval field: seconds (v2) or centiseconds (v3, 12 bits).
    pub interval: u16,
    /// The addresses to advertise, all of the family of the envelope.
    pub addrs: &'a [IpAddr],
    /// VRRPv2 authentication (ignored for VRRPv3).
    pub auth: Auth,
}

/// Where and how an advertisement is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxEnvelope {
    /// Ethernet source (keepalived: the interface MAC; RFC 5798: the virtual router MAC).
    pub src_mac: [u8; 6],
    /// Ethernet destination (the multicast MAC, or a unicast peer's MAC).
    pub dst_mac: [u8; 6],
    /// IP source: the router's primary address.
    pub src: IpAddr,
    /// IP destination: the multicast group or a unicast peer.
    pub dst: IpAddr,
    /// IPv4 identification (keepalived: 1, 2, 3, ... per advert, never 0).
    pub ip_id: u16,
    /// IPv6 flow label (20 bits; the Linux kernel chooses it for keepalived).
    pub flow_label: u32,
    /// VRRPv3 over IPv4: checksum without the pseudo-header (`v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
}

/// Write an Ethernet frame carrying the advertisement into `buf`; returns the frame length.
/// The IP packet starts at byte [`ETH_LEN`]. `None` if `buf` is too small, or `src`, `dst`
/// and the addresses are not all of one family.
pub fn emit_advert(repr: &AdvertRepr<'_>, tx: &TxEnvelope, buf: &mut [u8]) -> Option<usize> {
    let family = Family::of(&tx.src);
    if Family::of(&tx.dst) != family || repr.addrs.iter().any(|a| Family::of(a) != family) {
        return None;
    }
    let count = u8::try_from(repr.addrs.len()).ok()?;
    let msg_len = message_len(repr.version, family, repr.addrs.len());
    let ip_len = match family {
        Family::V4 => IPV4_LEN,
        Family::V6 => IPV6_LEN,
    };
    let total = ETH_LEN + ip_len + msg_len;
    let frame = buf.get_mut(..total)?;
    frame.fill(0);

    frame[0..6].copy_from_slice(&tx.dst_mac);
    frame[6..12].copy_from_slice(&tx.src_mac);
    let ethertype = match family {
        Family::V4 => ETHERTYPE_IPV4,
        Family::V6 => ETHERTYPE_IPV6,
    };
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());

    let (ip, msg) = frame[ETH_LEN..].split_at_mut(ip_len);
    // The VRRP message first: the IPv4 header does not depend on it, and its checksum may
    // depend on the addresses only.
    msg[0] = (repr.version.number() << 4) | TYPE_ADVERT;
    msg[1] = repr.vrid;
    msg[2] = repr.priority;
    msg[3] = count;
    match repr.version {
        Version::V2 => {
            msg[4] = repr.auth.type_number();
            msg[5] = u8::try_from(repr.interval).unwrap_or(u8::MAX);
        }
        Version::V3 => msg[4..6].copy_from_slice(&(repr.interval & 0x0fff).to_be_bytes()),
    }
    let mut at = HEADER_LEN;
    for addr in repr.addrs {
        match addr {
            IpAddr::V4(a) => msg[at..at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => msg[at..at + 16].copy_from_slice(&a.octets()),
        }
        at += ip_addr_len(family);
    }
    if has_auth(repr.version, family) {
        msg[at..at + AUTH_LEN].copy_from_slice(&repr.auth.data());
    }
    let start = pseudo_header(repr.version, tx.src, tx.dst, msg_len, tx.v3_checksum_as_v2).unwrap_or(0);
    let sum = checksum(start, msg);
    msg[6..8].copy_from_slice(&sum.to_be_bytes());

    match (tx.src, tx.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            ip[0] = 0x45;
            ip[1] = TOS;
            ip[2..4].copy_from_slice(&u16::try_from(IPV4_LEN + msg_len).ok()?.to_be_bytes());
            ip[4..6].copy_from_slice(&tx.ip_id.to_be_bytes());
            // Flags and fragment offset stay 0: keepalived does not set DF.
            ip[8] = TTL;
            ip[9] = PROTO_VRRP;
            ip[12..16].copy_from_slice(&src.octets());
            ip[16..20].copy_from_slice(&dst.octets());
            let hsum = checksum(0, ip);
            ip[10..12].copy_from_slice(&hsum.to_be_bytes());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let word = (6u32 << 28) | (u32::from(TOS) << 20) | (tx.flow_label & 0x000f_ffff);
            ip[0..4].copy_from_slice(&word.to_be_bytes());
            ip[4..6].copy_from_slice(&u16::try_from(msg_len).ok()?.to_be_bytes());
            ip[6] = PROTO_VRRP;
            ip[7] = TTL;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
        }
        // Families were checked equal above.
        _ => return None,
    }
    Some(total)
}

const fn ip_addr_len(family: Family) -> usize {
    match family {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

/// The one's-complement sum of the pseudo-header a VRRPv3 checksum covers, or `None` when the
/// checksum has none (VRRPv2, or VRRPv3/IPv4 with `v3_as_v2`).
fn pseudo_header(version: Version, src: IpAddr, dst: IpAddr, len: usize, v3_as_v2: bool) -> Option<u64> {
    if version == Version::V2 {
        return None;
    }
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if !v3_as_v2 => {
            let mut sum = add_bytes(0, &s.octets());
            sum = add_bytes(sum, &d.octets());
            Some(sum + u64::from(PROTO_VRRP) + (len as u64 & 0xffff))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut sum = add_bytes(0, &s.octets());
            sum = add_bytes(sum, &d.octets());
            let len = len as u64 & 0xffff_ffff;
            Some(sum + (len >> 16) + (len & 0xffff) + u64::from(PROTO_VRRP))
        }
        _ => None,
    }
}

/// One's-complement sum of `data` as big-endian 16-bit words, added to `acc` (an odd final
/// byte is padded with zero, RFC 1071).
pub(crate) fn add_bytes(acc: u64, data: &[u8]) -> u64 {
    let mut sum = acc;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The Internet checksum of `data` with `acc` (a pseudo-header sum) folded in: the value to
/// store, or 0 when `data` already holds a correct checksum.
pub(crate) fn checksum(acc: u64, data: &[u8]) -> u16 {
    let mut sum = add_bytes(acc, data);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Truncation is exact: the loop left at most 16 significant bits.
    !(sum as u16)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(s))
}

fn ipv6_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A VRRPv3/IPv4 advert (VRID 51, priority 100, 1 s, VIP 10.201.0.100) from 10.201.0.11,
    // as keepalived 2.2.7 sent it (tests/data/vrrp/vrrp_v3_keepalived.hex).
    const V3_FRAME: [u8; 46] = [
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b, 0x08, 0x00, 0x45, 0xc0, 0x00,
        0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xcf, 0xc6, 0x0a, 0xc9, 0x00, 0x0b, 0xe0, 0x00, 0x00, 0x12,
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x73, 0xd7, 0x0a, 0xc9, 0x00, 0x64,
    ];
    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 11));
    const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 201, 0, 100));

    #[test]
    fn deconstruct_and_parse() {
        let (env, msg) = parse_envelope(&V3_FRAME, Rx::Ethernet).unwrap();
        assert_eq!(
            env,
            Envelope {
                src: SRC,
                dst: IpAddr::V4(MCAST_V4),
                ttl: Some(255)
            }
        );
        let adv = Advert::parse(msg, Family::V4).unwrap();
        assert_eq!(
            (adv.version, adv.kind, adv.vrid, adv.priority),
            (Version::V3, 1, 51, 100)
        );
        assert_eq!((adv.count, adv.interval, adv.checksum), (1, 100, 0x73d7));
        assert_eq!(
            adv.addresses().collect::<heapless::Vec<_, 4>>().as_slice(),
            &[VIP]
        );
        assert!(adv.checksum_ok(&env, false));
        assert!(!adv.checksum_ok(&env, true));
        assert_eq!(peek_vrid(&V3_FRAME, Rx::Ethernet), Some((Family::V4, 51)));
    }

    #[test]
    fn construct_and_emit() {
        let addrs = [VIP];
        let repr = AdvertRepr {
            version: Version::V3,
            vrid: 51,
            priority: 100,
            interval: 100,
            addrs: &addrs,
            auth: Auth::None,
        };
        let tx = TxEnvelope {
            src_mac: [0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b],
            dst_mac: MCAST_MAC_V4,
            src: SRC,
            dst: IpAddr::V4(MCAST_V4),
            ip_id: 1,
            flow_label: 0,
            v3_checksum_as_v2: false,
        };
        let mut buf = [0u8; 64];
        assert_eq!(emit_advert(&repr, &tx, &mut buf), Some(46));
        assert_eq!(&buf[..46], &V3_FRAME[..]);
        assert_eq!(emit_advert(&repr, &tx, &mut buf[..45]), None);
    }

    #[test]
    fn parse_refusals_name_their_reason() {
        assert_eq!(
            parse_envelope(&V3_FRAME[..13], Rx::Ethernet),
            Err(Reject::Truncated)
        );
        assert_eq!(
            parse_envelope(&V3_FRAME[..40], Rx::Ethernet),
            Err(Reject::Truncated)
        );
        let mut f = V3_FRAME;
        f[23] = 6; // protocol TCP (header checksum now wrong too, and checked first)
        assert_eq!(parse_envelope(&f, Rx::Ethernet), Err(Reject::IpHeader));
        assert_eq!(
            Advert::parse(&V3_FRAME[34..40], Family::V4),
            Err(Reject::TooShort)
        );
        assert_eq!(
            Advert::parse(&V3_FRAME[34..45], Family::V4),
            Err(Reject::TooShort)
        );
        let mut long = [0u8; 13];
        long[..12].copy_from_slice(&V3_FRAME[34..]);
        assert_eq!(Advert::parse(&long, Family::V4), Err(Reject::Length));
        let mut v4 = [0u8; 12];
        v4.copy_from_slice(&V3_FRAME[34..]);
        v4[0] = 0x41;
        assert_eq!(Advert::parse(&v4, Family::V4), Err(Reject::Version));
    }

    #[test]
    fn pass_is_truncated_and_padded() {
        assert_eq!(Auth::pass(b"1111").data(), *b"1111\0\0\0\0");
        assert_eq!(Auth::pass(b"0123456789").data(), *b"01234567");
    }
}
