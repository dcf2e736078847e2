//! Per-router counters: what was sent, what was accepted, and one slot per reason a received
//! packet was refused, so that every drop is visible and attributable.
//!
//! Guarantee: each packet handed to [`super::Router::handle_packet`] increments exactly one of
//! [`Counters::adverts_received`] or one `rejected` slot, never both and never neither.

/// Why a received packet was not processed as an advertisement. The order of the variants is
/// the order of the checks (RFC 5798 §7.1, then keepalived's extra checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// The router is in Initialize or Fault state: keepalived ignores packets there.
    NotRunning,
    /// The bytes end inside the Ethernet or IP header, or before the IP length.
    Truncated,
    /// Not a VRRP packet: another EtherType, IP version or IP protocol.
    NotVrrp,
    /// Malformed IPv4 header (checksum, IHL, total length), a fragment, or an IP version that
    /// contradicts the EtherType.
    IpHeader,
    /// An IPv4 packet for an IPv6 router or the reverse.
    WrongFamily,
    /// TTL / hop limit is not 255 (checked only without unicast peers, as keepalived does).
    Ttl,
    /// Version nibble other than the router's version.
    Version,
    /// Empty, shorter than the fixed header, or than the addresses the header announces.
    TooShort,
    /// Longer than the header announces.
    Length,
    /// Type other than ADVERTISEMENT (1).
    PacketType,
    /// Bad checksum.
    Checksum,
    /// The VRID is not this router's.
    VridMismatch,
    /// The address count differs from the number of configured VIPs.
    AddrCount,
    /// VRRPv2 authentication type is none of 0, 1, 2.
    AuthTypeInvalid,
    /// VRRPv2 authentication type differs from the configured one.
    AuthTypeMismatch,
    /// VRRPv2 simple password differs.
    AuthFailure,
    /// VRRPv2 advertisement interval differs from ours (RFC 3768 §7.1: discard).
    IntervalMismatch,
    /// VRRPv3 advertisement interval of 0, which would make the master-down timer 0.
    BadInterval,
    /// Multicast destination while unicast peers are configured, or unicast without them.
    DstMismatch,
    /// A configured VIP is missing from the advertised list (keepalived refuses these).
    AddrList,
    /// `check_unicast_src`: the source is not a configured unicast peer.
    UnicastSrc,
}

impl Reject {
    /// Number of reasons.
    pub const COUNT: usize = 21;

    /// Every reason, in check order.
    pub const ALL: [Reject; Reject::COUNT] = [
        Reject::NotRunning,
        Reject::Truncated,
        Reject::NotVrrp,
        Reject::IpHeader,
        Reject::WrongFamily,
        Reject::Ttl,
        Reject::Version,
        Reject::TooShort,
        Reject::Length,
        Reject::PacketType,
        Reject::Checksum,
        Reject::VridMismatch,
        Reject::AddrCount,
        Reject::AuthTypeInvalid,
        Reject::AuthTypeMismatch,
        Reject::AuthFailure,
        Reject::IntervalMismatch,
        Reject::BadInterval,
        Reject::DstMismatch,
        Reject::AddrList,
        Reject::UnicastSrc,
    ];

    /// Slot of this reason in [`Counters::rejected`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name, for logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Reject::NotRunning => "not_running",
            Reject::Truncated => "truncated",
            Reject::NotVrrp => "not_vrrp",
            Reject::IpHeader => "ip_header",
            Reject::WrongFamily => "wrong_family",
            Reject::Ttl => "ttl",
            Reject::Version => "version",
            Reject::TooShort => "too_short",
            Reject::Length => "length",
            Reject::PacketType => "packet_type",
            Reject::Checksum => "checksum",
            Reject::VridMismatch => "vrid_mismatch",
            Reject::AddrCount => "addr_count",
            Reject::AuthTypeInvalid => "auth_type_invalid",
            Reject::AuthTypeMismatch => "auth_type_mismatch",
            Reject::AuthFailure => "auth_failure",
            Reject::IntervalMismatch => "interval_mismatch",
            Reject::BadInterval => "bad_interval",
            Reject::DstMismatch => "dst_mismatch",
            Reject::AddrList => "addr_list",
            Reject::UnicastSrc => "unicast_src",
        }
    }
}

/// Counters of one router. Plain data: compare, copy, reset by assigning `Default`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts that passed every check.
    pub adverts_received: u64,
    /// Accepted adverts with priority 0 (a master stepping down).
    pub priority_zero_received: u64,
    /// Adverts queued for sending (one per advert, whatever the number of unicast peers).
    pub adverts_sent: u64,
    /// Of those, priority-0 adverts.
    pub priority_zero_sent: u64,
    /// Gratuitous ARP / unsolicited NA frames handed out.
    pub gratuitous_sent: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Transitions out of Master.
    pub released_master: u64,
    /// Lower-priority adverts a preempting backup discarded (so that it takes over).
    pub lower_priority_ignored: u64,
    /// Outputs lost because the action queue was full (the caller did not drain it).
    pub actions_dropped: u64,
    /// Refused packets, indexed by [`Reject::index`].
    pub rejected: [u64; Reject::COUNT],
}

impl Counters {
    /// Packets refused for `reason`.
    pub const fn rejected(&self, reason: Reject) -> u64 {
        self.rejected[reason.index()]
    }

    /// Packets refused for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    pub(crate) fn reject(&mut self, reason: Reject) {
        let slot = &mut self.rejected[reason.index()];
        *slot = slot.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order() {
        for (i, r) in Reject::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.name());
        }
    }
}
