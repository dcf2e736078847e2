//! Result codes: `lbcore_result` and `lbcore_result_message`.
//!
//! Codes are numbered in ranges and never renumbered or reused: 0 is success, 1xx are about
//! the call itself (parameters, buffers, panics), 2xx mirror the balancer's configuration
//! errors, 3xx the VRRP router's, 4xx configuration text.

use core::ffi::c_char;

use lbcore::balancer::ConfigError;
use lbcore::vrrp;

use crate::guard::{guard, out_ptr, write_text};

/// The result of a call. `LBCORE_RESULT_OK` (0) is success; every other value is an error
/// with a stable number (see `lbcore_result_message`).
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum lbcore_result {
    /// Success.
    Ok = 0,

    /// A pointer that must not be NULL was NULL.
    NullParameter = 100,
    /// A parameter is out of range: an unknown enumeration value or flag, a frame that does
    /// not fit its buffer, a misaligned pointer, text that is not what was asked for.
    InvalidParameter = 101,
    /// The output buffer is too small; `*out_n` holds the size that is needed.
    BufferTooSmall = 102,
    /// lbcore panicked inside the call (a bug). The handle involved is poisoned.
    Panic = 103,
    /// An earlier call on this handle panicked; only `_free` works on it now.
    Poisoned = 104,
    /// A fixed capacity was exceeded (e.g. more FULLNAT local addresses than
    /// `LBCORE_MAX_LOCAL_ADDRS`).
    TooMany = 105,

    /// A service with that key exists.
    ServiceExists = 200,
    /// No such service.
    NoSuchService = 201,
    /// The service table is full.
    TooManyServices = 202,
    /// The destination exists in this service.
    DestExists = 203,
    /// No such destination.
    NoSuchDest = 204,
    /// The service already has the most destinations it can hold.
    TooManyDests = 205,
    /// Port 0 is only allowed for persistent services.
    PortZeroNotPersistent = 206,
    /// Direct routing needs the real server's MAC address.
    DirectRoutingNeedsMac = 207,
    /// The destination's address family differs from the service's (only tunnels may).
    FamilyMismatch = 208,
    /// Invalid weight or thresholds (negative, or lower threshold above the upper one).
    BadWeight = 209,
    /// FULLNAT needs a local address of the destination's family.
    NoLocalAddress = 210,
    /// Tunnelling needs a tunnel source address of the destination's family.
    NoTunnelSource = 211,
    /// Invalid capacity (zero, or too large).
    BadCapacity = 212,
    /// One-packet scheduling is only for UDP services.
    OnePacketNotUdp = 213,

    /// VRRP: virtual router id 0.
    VrrpVridZero = 300,
    /// VRRP: priority 0 (reserved for a master stepping down).
    VrrpPriorityZero = 301,
    /// VRRP: the advert interval does not fit the version (v2: whole seconds 1..255; v3:
    /// whole centiseconds up to 40.95 s).
    VrrpBadInterval = 302,
    /// VRRP: IPv6 needs VRRPv3.
    VrrpIpv6NeedsV3 = 303,
    /// VRRP: authentication exists only in VRRPv2.
    VrrpAuthNeedsV2 = 304,
    /// VRRP: a VIP or peer is not of the family of the primary address.
    VrrpFamilyMismatch = 305,
    /// VRRP: more VIPs, unicast peers or tracked objects than the fixed capacities.
    VrrpTooMany = 306,
    /// VRRP: a track weight outside -254..254.
    VrrpBadWeight = 307,
    /// VRRP: `down_timer_adverts` outside 1..100.
    VrrpBadDownTimerAdverts = 308,

    /// Configuration text has errors, or a part of it cannot be built as written; the
    /// reasons were written to the caller's diagnostics buffer.
    ConfigInvalid = 400,
}

impl lbcore_result {
    /// Every code, in numeric order.
    pub(crate) const ALL: [lbcore_result; 31] = [
        lbcore_result::Ok,
        lbcore_result::NullParameter,
        lbcore_result::InvalidParameter,
        lbcore_result::BufferTooSmall,
        lbcore_result::Panic,
        lbcore_result::Poisoned,
        lbcore_result::TooMany,
        lbcore_result::ServiceExists,
        lbcore_result::NoSuchService,
        lbcore_result::TooManyServices,
        lbcore_result::DestExists,
        lbcore_result::NoSuchDest,
        lbcore_result::TooManyDests,
        lbcore_result::PortZeroNotPersistent,
        lbcore_result::DirectRoutingNeedsMac,
        lbcore_result::FamilyMismatch,
        lbcore_result::BadWeight,
        lbcore_result::NoLocalAddress,
        lbcore_result::NoTunnelSource,
        lbcore_result::BadCapacity,
        lbcore_result::OnePacketNotUdp,
        lbcore_result::VrrpVridZero,
        lbcore_result::VrrpPriorityZero,
        lbcore_result::VrrpBadInterval,
        lbcore_result::VrrpIpv6NeedsV3,
        lbcore_result::VrrpAuthNeedsV2,
        lbcore_result::VrrpFamilyMismatch,
        lbcore_result::VrrpTooMany,
        lbcore_result::VrrpBadWeight,
        lbcore_result::VrrpBadDownTimerAdverts,
        lbcore_result::ConfigInvalid,
    ];

    /// The code with number `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<lbcore_result> {
        Self::ALL.iter().copied().find(|r| *r as u32 == n)
    }

    /// A short English description (what `lbcore_result_message` writes).
    pub fn message(self) -> &'static str {
        match self {
            lbcore_result::Ok => "success",
            lbcore_result::NullParameter => "a required pointer parameter was NULL",
            lbcore_result::InvalidParameter => "a parameter is out of range or invalid",
            lbcore_result::BufferTooSmall => "the output buffer is too small",
            lbcore_result::Panic => "lbcore panicked (a bug); the handle is poisoned",
            lbcore_result::Poisoned => "the handle is poisoned by an earlier panic",
            lbcore_result::TooMany => "a fixed capacity was exceeded",
            lbcore_result::ServiceExists => "service already exists",
            lbcore_result::NoSuchService => "no such service",
            lbcore_result::TooManyServices => "service table is full",
            lbcore_result::DestExists => "destination already exists",
            lbcore_result::NoSuchDest => "no such destination",
            lbcore_result::TooManyDests => "too many destinations for this service",
            lbcore_result::PortZeroNotPersistent => "port zero only supported in persistent services",
            lbcore_result::DirectRoutingNeedsMac => "direct routing needs the real server's MAC address",
            lbcore_result::FamilyMismatch => "destination address family differs from the service's",
            lbcore_result::BadWeight => "invalid weight or thresholds",
            lbcore_result::NoLocalAddress => "FULLNAT needs a local address of the destination's family",
            lbcore_result::NoTunnelSource => {
                "tunnelling needs a tunnel source address of the destination's family"
            }
            lbcore_result::BadCapacity => "invalid capacity",
            lbcore_result::OnePacketNotUdp => "one-packet scheduling is only for UDP services",
            lbcore_result::VrrpVridZero => "VRRP: virtual_router_id must be 1..255",
            lbcore_result::VrrpPriorityZero => "VRRP: priority must be 1..255",
            lbcore_result::VrrpBadInterval => "VRRP: advert interval does not fit the protocol version",
            lbcore_result::VrrpIpv6NeedsV3 => "VRRP: IPv6 needs VRRP version 3",
            lbcore_result::VrrpAuthNeedsV2 => "VRRP: authentication exists only in VRRP version 2",
            lbcore_result::VrrpFamilyMismatch => {
                "VRRP: a VIP or unicast peer is not of the primary address's family"
            }
            lbcore_result::VrrpTooMany => "VRRP: too many VIPs, unicast peers or tracked objects",
            lbcore_result::VrrpBadWeight => "VRRP: track weight outside -254..254",
            lbcore_result::VrrpBadDownTimerAdverts => "VRRP: down_timer_adverts outside 1..100",
            lbcore_result::ConfigInvalid => "the configuration has errors (see the diagnostics)",
        }
    }
}

impl From<ConfigError> for lbcore_result {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::ServiceExists => lbcore_result::ServiceExists,
            ConfigError::NoSuchService => lbcore_result::NoSuchService,
            ConfigError::TooManyServices => lbcore_result::TooManyServices,
            ConfigError::DestExists => lbcore_result::DestExists,
            ConfigError::NoSuchDest => lbcore_result::NoSuchDest,
            ConfigError::TooManyDests => lbcore_result::TooManyDests,
            ConfigError::PortZeroNotPersistent => lbcore_result::PortZeroNotPersistent,
            ConfigError::DirectRoutingNeedsMac => lbcore_result::DirectRoutingNeedsMac,
            ConfigError::FamilyMismatch => lbcore_result::FamilyMismatch,
            ConfigError::BadWeight => lbcore_result::BadWeight,
            ConfigError::NoLocalAddress => lbcore_result::NoLocalAddress,
            ConfigError::NoTunnelSource => lbcore_result::NoTunnelSource,
            ConfigError::BadCapacity => lbcore_result::BadCapacity,
            ConfigError::OnePacketNotUdp => lbcore_result::OnePacketNotUdp,
        }
    }
}

impl From<vrrp::ConfigError> for lbcore_result {
    fn from(e: vrrp::ConfigError) -> Self {
        match e {
            vrrp::ConfigError::VridZero => lbcore_result::VrrpVridZero,
            vrrp::ConfigError::PriorityZero => lbcore_result::VrrpPriorityZero,
            vrrp::ConfigError::BadInterval => lbcore_result::VrrpBadInterval,
            vrrp::ConfigError::Ipv6NeedsV3 => lbcore_result::VrrpIpv6NeedsV3,
            vrrp::ConfigError::AuthNeedsV2 => lbcore_result::VrrpAuthNeedsV2,
            vrrp::ConfigError::FamilyMismatch => lbcore_result::VrrpFamilyMismatch,
            vrrp::ConfigError::TooMany => lbcore_result::VrrpTooMany,
            vrrp::ConfigError::BadWeight => lbcore_result::VrrpBadWeight,
            vrrp::ConfigError::BadDownTimerAdverts => lbcore_result::VrrpBadDownTimerAdverts,
        }
    }
}

/// Writes the description of result code `result` into `buf` as NUL-terminated text, its
/// length (without the NUL) into `*out_n`. An unknown code gets a description too
/// (`"unknown lbcore_result N"`).
///
/// Returns `LBCORE_RESULT_BUFFER_TOO_SMALL`, with the size needed (NUL included) in `*out_n`,
/// when `len` is too small; `(NULL, 0)` asks for that size.
///
/// # Safety
/// `buf` must be NULL or valid for writing `len` bytes; `out_n` NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn lbcore_result_message(
    result: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> lbcore_result {
    guard(|| {
        // SAFETY: the caller passes NULL or a valid, aligned pointer for writing.
        let out_n = unsafe { out_ptr(out_n)? };
        match lbcore_result::from_u32(result) {
            // SAFETY: the caller passes NULL or `len` writable bytes.
            Some(r) => unsafe { write_text(r.message(), buf, len, out_n) },
            None => {
                let text = format!("unknown lbcore_result {result}");
                // SAFETY: as above.
                unsafe { write_text(&text, buf, len, out_n) }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_sorted_and_round_trip() {
        let nums: Vec<u32> = lbcore_result::ALL.iter().map(|r| *r as u32).collect();
        assert!(
            nums.windows(2).all(|w| w[0] < w[1]),
            "ALL must be sorted and unique"
        );
        for r in lbcore_result::ALL {
            assert_eq!(lbcore_result::from_u32(r as u32), Some(r));
            assert!(!r.message().is_empty());
        }
        assert_eq!(lbcore_result::from_u32(1), None);
    }

    #[test]
    fn config_errors_keep_the_core_wording() {
        for e in [
            ConfigError::ServiceExists,
            ConfigError::OnePacketNotUdp,
            ConfigError::BadCapacity,
        ] {
            assert_eq!(lbcore_result::from(e).message(), e.to_string());
        }
    }

    #[test]
    fn message_into_buffers() {
        let mut n = 0usize;
        // SAFETY: (NULL, 0) is a size query; `n` is a valid out-parameter.
        let r = unsafe { lbcore_result_message(0, core::ptr::null_mut(), 0, &mut n) };
        assert_eq!(r, lbcore_result::BufferTooSmall);
        assert_eq!(n, "success".len() + 1);
        let mut buf = [0x7f as c_char; 8];
        // SAFETY: `buf` has 8 writable bytes.
        let r = unsafe { lbcore_result_message(0, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, lbcore_result::Ok);
        assert_eq!(n, 7);
        assert_eq!(buf[7], 0);
        // SAFETY: NULL with a nonzero length is refused before any write.
        let r = unsafe { lbcore_result_message(0, core::ptr::null_mut(), 4, &mut n) };
        assert_eq!(r, lbcore_result::NullParameter);
        // SAFETY: NULL out_n is refused.
        let r = unsafe { lbcore_result_message(0, buf.as_mut_ptr(), buf.len(), core::ptr::null_mut()) };
        assert_eq!(r, lbcore_result::NullParameter);
    }
}
