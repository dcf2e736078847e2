"""lbcore: Python bindings for a sans-IO Layer-4 load-balancer core (IPVS + keepalived).

The compiled extension is :mod:`lbcore._native`; this package re-exports its public API so
that users write ``import lbcore``. The binding is thin: conversion only, no protocol logic.

Conventions:

- packets are ``bytes`` in and ``bytes`` out (``bytes(scapy_packet)`` works);
- times (``now``) are integer nanoseconds on a clock of the caller's choosing; leaving ``now``
  out uses :func:`monotonic_ns` (``time.monotonic_ns``);
- durations in configuration (persistence, timeouts, advert intervals) are seconds, as
  ipvsadm and keepalived write them;
- every error the core reports is an :class:`LbError`; bad Python values raise the usual
  ``ValueError`` / ``TypeError`` / ``OverflowError``.
"""

from time import monotonic_ns

from lbcore._native import (
    HEADROOM,
    AddVip,
    BadCapacityError,
    BadWeightError,
    Balancer,
    BusyError,
    ConfigError,
    ConfigSyntaxError,
    Dest,
    DestExistsError,
    DirectRoutingNeedsMacError,
    Family,
    FamilyMismatchError,
    Forward,
    LbError,
    Link,
    NoLocalAddressError,
    NoSuchDestError,
    NoSuchServiceError,
    NoTunnelSourceError,
    OnePacketNotUdpError,
    PcapError,
    PortZeroNotPersistentError,
    Protocol,
    RemoveVip,
    Scheduler,
    SendAdvert,
    SendGratuitous,
    Service,
    ServiceExistsError,
    StateChanged,
    TooManyDestsError,
    TooManyServicesError,
    TunnelType,
    Verdict,
    VerdictKind,
    Vrrp,
    VrrpConfigError,
    VrrpState,
    from_ipvsadm_rules,
    from_keepalived_conf,
    read_pcap,
    version,
    write_pcap,
)

__all__ = [
    "HEADROOM",
    "AddVip",
    "BadCapacityError",
    "BadWeightError",
    "Balancer",
    "BusyError",
    "ConfigError",
    "ConfigSyntaxError",
    "Dest",
    "DestExistsError",
    "DirectRoutingNeedsMacError",
    "Family",
    "FamilyMismatchError",
    "Forward",
    "LbError",
    "Link",
    "NoLocalAddressError",
    "NoSuchDestError",
    "NoSuchServiceError",
    "NoTunnelSourceError",
    "OnePacketNotUdpError",
    "PcapError",
    "PortZeroNotPersistentError",
    "Protocol",
    "RemoveVip",
    "Scheduler",
    "SendAdvert",
    "SendGratuitous",
    "Service",
    "ServiceExistsError",
    "StateChanged",
    "TooManyDestsError",
    "TooManyServicesError",
    "TunnelType",
    "Verdict",
    "VerdictKind",
    "Vrrp",
    "VrrpConfigError",
    "VrrpState",
    "__version__",
    "from_ipvsadm_rules",
    "from_keepalived_conf",
    "monotonic_ns",
    "read_pcap",
    "version",
    "write_pcap",
]

__version__: str = version()
