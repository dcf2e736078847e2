//! Gratuitous ARP (IPv4) and unsolicited Neighbour Advertisement (IPv6) frames a new master
//! sends so that hosts and switches move the VIP to it, built exactly as keepalived 2.2.7's
//! `vrrp_arp.c` and `vrrp_ndisc.c` build them.
//!
//! - Gratuitous ARP: Ethernet broadcast, an ARP *request* (opcode 1) whose sender and target
//!   protocol address are both the VIP, sender hardware address the source MAC and target
//!   hardware address ff:ff:ff:ff:ff:ff. 42 bytes (the NIC pads to 60).
//! - Unsolicited NA (RFC 4861 §7.2.6): to ff02::1 / 33:33:00:00:00:01 from the VIP, hop limit
//!   255, Override set, Solicited clear, Router set when the host forwards IPv6, with a
//!   Target Link-Layer Address option. 86 bytes.
//!
//! Emission never panics: a too-small buffer gives `None`.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::wire::{ETH_LEN, IPV6_LEN, TTL, add_bytes, checksum};

/// Length of a gratuitous ARP frame.
pub const GARP_LEN: usize = ETH_LEN + 28;
/// Length of an unsolicited neighbour advertisement frame.
pub const NA_LEN: usize = ETH_LEN + IPV6_LEN + 32;

/// Write a gratuitous ARP for `vip` announced from `mac`; returns the frame length.
pub fn emit_garp(buf: &mut [u8], mac: [u8; 6], vip: Ipv4Addr) -> Option<usize> {
    let f = buf.get_mut(..GARP_LEN)?;
    f[0..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    let arp = &mut f[ETH_LEN..];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&1u16.to_be_bytes()); // request, as keepalived sends
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&vip.octets());
    arp[18..24].fill(0xff);
    arp[24..28].copy_from_slice(&vip.octets());
    Some(GARP_LEN)
}

/// Write an unsolicited neighbour advertisement for `vip` announced from `mac`; `router`
/// sets the R flag (keepalived sets it when IPv6 forwarding is on for the interface).
pub fn emit_unsolicited_na(buf: &mut [u8], mac: [u8; 6], vip: Ipv6Addr, router: bool) -> Option<usize> {
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let f = buf.get_mut(..NA_LEN)?;
    f.fill(0);
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let (ip, icmp) = f[ETH_LEN..].split_at_mut(IPV6_LEN);
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&32u16.to_be_bytes());
    ip[6] = 58; // ICMPv6
    ip[7] = TTL;
    ip[8..24].copy_from_slice(&vip.octets());
    ip[24..40].copy_from_slice(&ALL_NODES.octets());
    icmp[0] = 136; // neighbour advertisement
    icmp[4] = if router { 0x80 } else { 0 } | 0x20; // R, and O(verride); never S
    icmp[8..24].copy_from_slice(&vip.octets());
    icmp[24] = 2; // target link-layer address option
    icmp[25] = 1; // length in units of 8 bytes
    icmp[26..32].copy_from_slice(&mac);
    let mut pseudo = add_bytes(0, &ip[8..40]);
    pseudo += 32 + 58;
    let sum = checksum(pseudo, icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Some(NA_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b];

    #[test]
    fn garp_matches_keepalived_layout() {
        let mut buf = [0u8; 64];
        assert_eq!(emit_garp(&mut buf, MAC, Ipv4Addr::new(10, 201, 0, 100)), Some(42));
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b, 0x08, 0x06, // eth
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op
            0x02, 0x00, 0x0a, 0xc9, 0x00, 0x0b, 10, 201, 0, 100, // sha spa
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 10, 201, 0, 100, // tha tpa
        ];
        assert_eq!(&buf[..42], &expected[..]);
        assert_eq!(emit_garp(&mut buf[..41], MAC, Ipv4Addr::LOCALHOST), None);
    }

    #[test]
    fn na_checksum_verifies() {
        let mut buf = [0u8; NA_LEN];
        let vip: Ipv6Addr = "fd00:201::100".parse().unwrap();
        assert_eq!(emit_unsolicited_na(&mut buf, MAC, vip, false), Some(NA_LEN));
        assert_eq!(buf[ETH_LEN + IPV6_LEN + 4], 0x20);
        let pseudo = add_bytes(0, &buf[ETH_LEN + 8..ETH_LEN + 40]) + 32 + 58;
        assert_eq!(checksum(pseudo, &buf[ETH_LEN + IPV6_LEN..]), 0);
        // etherparse agrees on the whole frame.
        let sliced = etherparse::SlicedPacket::from_ethernet(&buf).unwrap();
        match sliced.net {
            Some(etherparse::NetSlice::Ipv6(v6)) => assert_eq!(v6.header().hop_limit(), 255),
            other => panic!("{other:?}"),
        }
    }
}
