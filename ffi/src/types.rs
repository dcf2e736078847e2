//! Plain values shared by the balancer, VRRP and configuration parts: addresses and the
//! enumerations. Enumerations are `uint32_t` in C (input structs hold a `uint32_t` that must be
//! one of the listed values; functions check it).

use core::ffi::c_char;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::guard::{Res, guard, in_slice, out_ptr};
use crate::result::lbcore_result;

/// An IPv4 or IPv6 address.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct lbcore_addr {
    /// `LBCORE_FAMILY_IPV4` or `LBCORE_FAMILY_IPV6` (an `lbcore_family`).
    pub family: u32,
    /// The address in network byte order: IPv4 in `bytes[0..4]` (the rest is ignored on
    /// input and zero on output), IPv6 in all 16.
    pub bytes: [u8; 16],
}

/// IP address family, as the value of `lbcore_addr.family`.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_family {
    /// IPv4.
    Ipv4 = 4,
    /// IPv6.
    Ipv6 = 6,
}

impl lbcore_addr {
    /// The C value of an address.
    pub fn from_ip(ip: IpAddr) -> lbcore_addr {
        let mut bytes = [0u8; 16];
        let family = match ip {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                lbcore_family::Ipv4
            }
            IpAddr::V6(a) => {
                bytes = a.octets();
                lbcore_family::Ipv6
            }
        };
        lbcore_addr {
            family: family as u32,
            bytes,
        }
    }

    /// The address, or `InvalidParameter` for an unknown family.
    pub fn to_ip(self) -> Res<IpAddr> {
        match self.family {
            4 => Ok(IpAddr::V4(Ipv4Addr::new(
                self.bytes[0],
                self.bytes[1],
                self.bytes[2],
                self.bytes[3],
            ))),
            6 => Ok(IpAddr::V6(Ipv6Addr::from(self.bytes))),
            _ => Err(lbcore_result::InvalidParameter),
        }
    }
}

/// Parses the text address `text[..len]` (`"192.0.2.10"`, `"2001:db8::1"`; no NUL needed)
/// into `*out`.
///
/// Returns `LBCORE_RESULT_INVALID_PARAMETER` when the text is not an address.
///
/// # Safety
/// `text` must be NULL or valid for reading `len` bytes; `out` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_addr_parse(
    text: *const c_char,
    len: usize,
    out: *mut lbcore_addr,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or `len` readable bytes.
        let text = unsafe { in_slice(text.cast::<u8>(), len)? };
        // SAFETY: the caller passes NULL or a writable `lbcore_addr`.
        let out = unsafe { out_ptr(out)? };
        let text = core::str::from_utf8(text).map_err(|_| lbcore_result::InvalidParameter)?;
        let ip: IpAddr = text.parse().map_err(|_| lbcore_result::InvalidParameter)?;
        out.write(lbcore_addr::from_ip(ip));
        Ok(())
    })
}

/// What the first byte of a frame is.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_link {
    /// An Ethernet II frame (optionally VLAN-tagged). Needed for direct routing.
    Ethernet = 0,
    /// A bare IPv4 or IPv6 packet (a TUN device).
    Ip = 1,
}

impl lbcore_link {
    pub(crate) fn from_u32(v: u32) -> Res<lbcore::wire::LinkKind> {
        match v {
            0 => Ok(lbcore::wire::LinkKind::Ethernet),
            1 => Ok(lbcore::wire::LinkKind::Ip),
            _ => Err(lbcore_result::InvalidParameter),
        }
    }

    pub(crate) fn from_core(k: lbcore::wire::LinkKind) -> lbcore_link {
        match k {
            lbcore::wire::LinkKind::Ethernet => lbcore_link::Ethernet,
            lbcore::wire::LinkKind::Ip => lbcore_link::Ip,
        }
    }
}

/// Converts a nanosecond count to a duration.
pub(crate) fn duration(ns: u64) -> core::time::Duration {
    core::time::Duration::from_nanos(ns)
}

/// Converts a duration to nanoseconds, saturating.
pub(crate) fn nanos(d: core::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Reads a 6-byte MAC address.
///
/// # Safety
/// `mac` is NULL or valid for reading 6 bytes.
pub(crate) unsafe fn mac_in(mac: *const u8) -> Res<[u8; 6]> {
    // SAFETY: forwarded contract.
    let s = unsafe { in_slice(mac, 6)? };
    let mut m = [0u8; 6];
    m.copy_from_slice(s);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for text in ["192.0.2.10", "2001:db8::1", "::ffff:10.0.0.1"] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(lbcore_addr::from_ip(ip).to_ip(), Ok(ip));
            let mut out = lbcore_addr::from_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            // SAFETY: `text` is readable for its length, `out` writable.
            let r = unsafe { lbcore_addr_parse(text.as_ptr().cast(), text.len(), &mut out) };
            assert_eq!(r, lbcore_result::Ok);
            assert_eq!(out.to_ip(), Ok(ip));
        }
        let bad = lbcore_addr {
            family: 5,
            bytes: [0; 16],
        };
        assert_eq!(bad.to_ip(), Err(lbcore_result::InvalidParameter));
        let mut out = lbcore_addr::from_ip(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        // SAFETY: as above.
        let r = unsafe { lbcore_addr_parse("10.0.0".as_ptr().cast(), 6, &mut out) };
        assert_eq!(r, lbcore_result::InvalidParameter);
    }
}
