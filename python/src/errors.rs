//! The exception hierarchy: `LbError` and one subclass per family of core errors, each core
//! error variant mapped exhaustively (adding a variant to the core breaks this build until it is
//! mapped here).
//!
//! ```text
//! LbError
//! ├── ConfigError                  lbcore::balancer::ConfigError, one subclass per variant
//! │   ├── ServiceExistsError, NoSuchServiceError, TooManyServicesError,
//! │   ├── DestExistsError, NoSuchDestError, TooManyDestsError,
//! │   ├── PortZeroNotPersistentError, DirectRoutingNeedsMacError, FamilyMismatchError,
//! │   └── BadWeightError, NoLocalAddressError, NoTunnelSourceError, BadCapacityError,
//! │       OnePacketNotUdpError
//! ├── VrrpConfigError              lbcore::vrrp::ConfigError (`.reason` names the variant)
//! ├── ConfigSyntaxError            configuration text with errors (`.diagnostics`)
//! ├── PcapError                    a pcap file that cannot be read
//! └── BusyError                    a callback re-entered the object it was called from
//! ```
//!
//! Misuse through Python values (an address that does not parse, a negative time) raises the
//! usual `ValueError` / `TypeError` / `OverflowError`.

use lbcore::balancer::ConfigError as CoreConfigError;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyList;
use pyo3::{PyErr, create_exception};

create_exception!(lbcore, LbError, PyException, "Base class of every lbcore error.");
create_exception!(
    lbcore,
    ConfigError,
    LbError,
    "A balancer configuration call was refused; the running configuration is unchanged."
);
create_exception!(
    lbcore,
    ServiceExistsError,
    ConfigError,
    "A service with that key exists."
);
create_exception!(lbcore, NoSuchServiceError, ConfigError, "No such service.");
create_exception!(
    lbcore,
    TooManyServicesError,
    ConfigError,
    "The service table is full."
);
create_exception!(
    lbcore,
    DestExistsError,
    ConfigError,
    "The destination exists in this service."
);
create_exception!(lbcore, NoSuchDestError, ConfigError, "No such destination.");
create_exception!(
    lbcore,
    TooManyDestsError,
    ConfigError,
    "The service has the most destinations it can hold."
);
create_exception!(
    lbcore,
    PortZeroNotPersistentError,
    ConfigError,
    "Port 0 is only allowed for persistent services."
);
create_exception!(
    lbcore,
    DirectRoutingNeedsMacError,
    ConfigError,
    "Direct routing needs the real server's MAC address."
);
create_exception!(
    lbcore,
    FamilyMismatchError,
    ConfigError,
    "The destination's address family differs from the service's (only tunnels may differ)."
);
create_exception!(
    lbcore,
    BadWeightError,
    ConfigError,
    "A negative weight, or a lower threshold above the upper one."
);
create_exception!(
    lbcore,
    NoLocalAddressError,
    ConfigError,
    "FULLNAT needs a local address of the destination's family."
);
create_exception!(
    lbcore,
    NoTunnelSourceError,
    ConfigError,
    "Tunnelling needs a tunnel source address of the destination's family."
);
create_exception!(
    lbcore,
    BadCapacityError,
    ConfigError,
    "Invalid capacities or port range."
);
create_exception!(
    lbcore,
    OnePacketNotUdpError,
    ConfigError,
    "One-packet scheduling is only for UDP services."
);
create_exception!(
    lbcore,
    VrrpConfigError,
    LbError,
    "A VRRP instance configuration was refused; `.reason` names why."
);
create_exception!(
    lbcore,
    ConfigSyntaxError,
    LbError,
    "Configuration text with errors; `.diagnostics` lists them as \"file:line: reason\"."
);
create_exception!(
    lbcore,
    PcapError,
    LbError,
    "A pcap file that cannot be read or written."
);
create_exception!(
    lbcore,
    BusyError,
    LbError,
    "The object is in use by a call on this same thread (a re-entrant call)."
);

/// The Python exception for a balancer configuration error.
pub fn config_error(e: CoreConfigError) -> PyErr {
    let msg = e.to_string();
    match e {
        CoreConfigError::ServiceExists => ServiceExistsError::new_err(msg),
        CoreConfigError::NoSuchService => NoSuchServiceError::new_err(msg),
        CoreConfigError::TooManyServices => TooManyServicesError::new_err(msg),
        CoreConfigError::DestExists => DestExistsError::new_err(msg),
        CoreConfigError::NoSuchDest => NoSuchDestError::new_err(msg),
        CoreConfigError::TooManyDests => TooManyDestsError::new_err(msg),
        CoreConfigError::PortZeroNotPersistent => PortZeroNotPersistentError::new_err(msg),
        CoreConfigError::DirectRoutingNeedsMac => DirectRoutingNeedsMacError::new_err(msg),
        CoreConfigError::FamilyMismatch => FamilyMismatchError::new_err(msg),
        CoreConfigError::BadWeight => BadWeightError::new_err(msg),
        CoreConfigError::NoLocalAddress => NoLocalAddressError::new_err(msg),
        CoreConfigError::NoTunnelSource => NoTunnelSourceError::new_err(msg),
        CoreConfigError::BadCapacity => BadCapacityError::new_err(msg),
        CoreConfigError::OnePacketNotUdp => OnePacketNotUdpError::new_err(msg),
    }
}

/// The Python exception for a VRRP configuration error, with `.reason` set to the variant's
/// snake_case name.
pub fn vrrp_config_error(py: Python<'_>, e: lbcore::vrrp::ConfigError) -> PyErr {
    use lbcore::vrrp::ConfigError as E;
    let (reason, msg) = match e {
        E::VridZero => ("vrid_zero", "virtual_router_id must be 1..=255"),
        E::PriorityZero => ("priority_zero", "priority must be 1..=255"),
        E::BadInterval => (
            "bad_interval",
            "advert_int does not fit the version (v2: whole seconds 1..=255; v3: centiseconds up to 40.95 s)",
        ),
        E::Ipv6NeedsV3 => ("ipv6_needs_v3", "IPv6 needs VRRP version 3"),
        E::AuthNeedsV2 => ("auth_needs_v2", "authentication exists only in VRRP version 2"),
        E::FamilyMismatch => (
            "family_mismatch",
            "a VIP or unicast peer is not of the family of the source address",
        ),
        E::TooMany => (
            "too_many",
            "more VIPs, unicast peers or tracks than the router holds",
        ),
        E::BadWeight => ("bad_weight", "track weights must be within -254..=254"),
        E::BadDownTimerAdverts => ("bad_down_timer_adverts", "down_timer_adverts must be 1..=100"),
    };
    let err = VrrpConfigError::new_err(msg);
    // Setting an attribute on a fresh exception instance cannot fail short of memory
    // exhaustion; if it did, the error is still raised, only without `.reason`.
    let _ = err.value(py).setattr("reason", reason);
    err
}

/// `ConfigSyntaxError` with `.diagnostics`.
pub fn syntax_error(py: Python<'_>, diagnostics: Vec<String>) -> PyErr {
    let msg = match diagnostics.as_slice() {
        [] => "invalid configuration".to_owned(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    };
    let err = ConfigSyntaxError::new_err(msg);
    if let Ok(list) = PyList::new(py, diagnostics) {
        let _ = err.value(py).setattr("diagnostics", list);
    }
    err
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("LbError", py.get_type::<LbError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ServiceExistsError", py.get_type::<ServiceExistsError>())?;
    m.add("NoSuchServiceError", py.get_type::<NoSuchServiceError>())?;
    m.add("TooManyServicesError", py.get_type::<TooManyServicesError>())?;
    m.add("DestExistsError", py.get_type::<DestExistsError>())?;
    m.add("NoSuchDestError", py.get_type::<NoSuchDestError>())?;
    m.add("TooManyDestsError", py.get_type::<TooManyDestsError>())?;
    m.add(
        "PortZeroNotPersistentError",
        py.get_type::<PortZeroNotPersistentError>(),
    )?;
    m.add(
        "DirectRoutingNeedsMacError",
        py.get_type::<DirectRoutingNeedsMacError>(),
    )?;
    m.add("FamilyMismatchError", py.get_type::<FamilyMismatchError>())?;
    m.add("BadWeightError", py.get_type::<BadWeightError>())?;
    m.add("NoLocalAddressError", py.get_type::<NoLocalAddressError>())?;
    m.add("NoTunnelSourceError", py.get_type::<NoTunnelSourceError>())?;
    m.add("BadCapacityError", py.get_type::<BadCapacityError>())?;
    m.add("OnePacketNotUdpError", py.get_type::<OnePacketNotUdpError>())?;
    m.add("VrrpConfigError", py.get_type::<VrrpConfigError>())?;
    m.add("ConfigSyntaxError", py.get_type::<ConfigSyntaxError>())?;
    m.add("PcapError", py.get_type::<PcapError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    Ok(())
}
