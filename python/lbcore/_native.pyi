"""Type stubs for the compiled module ``lbcore._native`` (checked by ``mypy.stubtest``)."""

import os
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import ClassVar, TypedDict, final

_Addr = str | IPv4Address | IPv6Address
_Mac = str | bytes
_Packet = bytes | bytearray
_Path = str | os.PathLike[str]

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
    "from_ipvsadm_rules",
    "from_keepalived_conf",
    "read_pcap",
    "version",
    "write_pcap",
]

HEADROOM: int
"""Bytes of headroom the core keeps before a packet for tunnel headers."""

def version() -> str:
    """The version of the lbcore core this module was built from."""

# ----- exceptions -----

class LbError(Exception):
    """Base class of every lbcore error."""

class ConfigError(LbError):
    """A balancer configuration call was refused; the running configuration is unchanged."""

class ServiceExistsError(ConfigError): ...
class NoSuchServiceError(ConfigError): ...
class TooManyServicesError(ConfigError): ...
class DestExistsError(ConfigError): ...
class NoSuchDestError(ConfigError): ...
class TooManyDestsError(ConfigError): ...
class PortZeroNotPersistentError(ConfigError): ...
class DirectRoutingNeedsMacError(ConfigError): ...
class FamilyMismatchError(ConfigError): ...
class BadWeightError(ConfigError): ...
class NoLocalAddressError(ConfigError): ...
class NoTunnelSourceError(ConfigError): ...
class BadCapacityError(ConfigError): ...
class OnePacketNotUdpError(ConfigError): ...

class VrrpConfigError(LbError):
    """A VRRP instance configuration was refused."""

    reason: str
    """The refusal as a snake_case name, e.g. ``"priority_zero"``."""

class ConfigSyntaxError(LbError):
    """Configuration text with errors."""

    diagnostics: list[str]
    """Every error, as ``"file:line: reason"``."""

class PcapError(LbError):
    """A pcap file that cannot be read or written."""

class BusyError(LbError):
    """A call re-entered an object that is in the middle of a call on the same thread."""

# ----- enums -----

@final
class Protocol:
    TCP: ClassVar[Protocol]
    UDP: ClassVar[Protocol]
    def __int__(self) -> int: ...

@final
class Family:
    V4: ClassVar[Family]
    V6: ClassVar[Family]
    def __int__(self) -> int: ...

@final
class Link:
    """What a frame starts with: an Ethernet header, or an IP header (TUN devices)."""

    ETHERNET: ClassVar[Link]
    IP: ClassVar[Link]
    def __int__(self) -> int: ...

@final
class Scheduler:
    """The IPVS schedulers (``ipvsadm -s NAME``)."""

    RR: ClassVar[Scheduler]
    WRR: ClassVar[Scheduler]
    LC: ClassVar[Scheduler]
    WLC: ClassVar[Scheduler]
    LBLC: ClassVar[Scheduler]
    LBLCR: ClassVar[Scheduler]
    DH: ClassVar[Scheduler]
    SH: ClassVar[Scheduler]
    SED: ClassVar[Scheduler]
    NQ: ClassVar[Scheduler]
    MH: ClassVar[Scheduler]
    FO: ClassVar[Scheduler]
    OVF: ClassVar[Scheduler]
    TWOS: ClassVar[Scheduler]
    @staticmethod
    def from_name(name: str) -> Scheduler:
        """The scheduler with this ipvsadm name (``"wlc"``); ``ValueError`` if none."""
    @property
    def ipvs_name(self) -> str:
        """The ipvsadm name (``"wlc"``)."""
    def __int__(self) -> int: ...

@final
class Forward:
    """Forwarding method of a destination."""

    DR: ClassVar[Forward]
    TUNNEL: ClassVar[Forward]
    NAT: ClassVar[Forward]
    FULLNAT: ClassVar[Forward]
    @property
    def ipvs_name(self) -> str:
        """The ``Forward`` column of ``ipvsadm -Ln`` (``Route``, ``Tunnel``, ``Masq``, ``FullNat``)."""
    def __int__(self) -> int: ...

@final
class TunnelType:
    IPIP: ClassVar[TunnelType]
    GUE: ClassVar[TunnelType]
    def __int__(self) -> int: ...

@final
class VerdictKind:
    FORWARD: ClassVar[VerdictKind]
    DROP: ClassVar[VerdictKind]
    PASS: ClassVar[VerdictKind]
    CONSUMED: ClassVar[VerdictKind]
    def __int__(self) -> int: ...

@final
class VrrpState:
    INITIALIZE: ClassVar[VrrpState]
    BACKUP: ClassVar[VrrpState]
    MASTER: ClassVar[VrrpState]
    FAULT: ClassVar[VrrpState]
    def __int__(self) -> int: ...

# ----- configuration values -----

@final
class Service:
    """A virtual service's configuration (``ipvsadm -A``), as an immutable value.

    Durations (``persistence``) are seconds, as ipvsadm writes them.
    """

    def __new__(
        cls,
        vip: _Addr,
        port: int,
        protocol: Protocol = ...,
        *,
        scheduler: Scheduler | str | None = None,
        persistence: float | None = None,
        netmask: str | int | None = None,
        sh_fallback: bool = False,
        sh_port: bool = False,
        one_packet: bool = False,
    ) -> Service: ...
    @staticmethod
    def tcp(
        vip: _Addr,
        port: int,
        *,
        scheduler: Scheduler | str | None = None,
        persistence: float | None = None,
        netmask: str | int | None = None,
        sh_fallback: bool = False,
        sh_port: bool = False,
    ) -> Service: ...
    @staticmethod
    def udp(
        vip: _Addr,
        port: int,
        *,
        scheduler: Scheduler | str | None = None,
        persistence: float | None = None,
        netmask: str | int | None = None,
        sh_fallback: bool = False,
        sh_port: bool = False,
        one_packet: bool = False,
    ) -> Service: ...
    @staticmethod
    def fwmark(
        mark: int,
        family: Family = ...,
        *,
        scheduler: Scheduler | str | None = None,
        persistence: float | None = None,
        netmask: str | int | None = None,
        sh_fallback: bool = False,
        sh_port: bool = False,
    ) -> Service: ...
    def replace(
        self,
        *,
        scheduler: Scheduler | str | None = None,
        persistence: float | None = None,
        netmask: str | int | None = None,
        sh_fallback: bool | None = None,
        sh_port: bool | None = None,
        one_packet: bool | None = None,
    ) -> Service:
        """A copy with settings changed (``persistence=0``: not persistent)."""
    @property
    def protocol(self) -> Protocol | None: ...
    @property
    def vip(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def mark(self) -> int | None: ...
    @property
    def family(self) -> Family: ...
    @property
    def scheduler(self) -> Scheduler: ...
    @property
    def persistence(self) -> float | None: ...
    @property
    def netmask(self) -> str | int | None: ...
    @property
    def sh_fallback(self) -> bool: ...
    @property
    def sh_port(self) -> bool: ...
    @property
    def one_packet(self) -> bool: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Dest:
    """A destination's (real server's) configuration (``ipvsadm -a``), as an immutable value."""

    def __new__(
        cls,
        addr: _Addr,
        port: int,
        *,
        weight: int = 1,
        forward: Forward = ...,
        mac: _Mac | None = None,
        u_threshold: int = 0,
        l_threshold: int = 0,
        tunnel: TunnelType = ...,
        gue_port: int = 0,
    ) -> Dest: ...
    def replace(
        self,
        *,
        weight: int | None = None,
        u_threshold: int | None = None,
        l_threshold: int | None = None,
        mac: _Mac | None = None,
    ) -> Dest:
        """A copy with settings changed (address and port identify the destination)."""
    @property
    def addr(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def forward(self) -> Forward: ...
    @property
    def tunnel(self) -> TunnelType | None: ...
    @property
    def gue_port(self) -> int | None: ...
    @property
    def mac(self) -> str | None: ...
    @property
    def u_threshold(self) -> int: ...
    @property
    def l_threshold(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# ----- the balancer -----

class _Rates(TypedDict):
    cps: int
    inpps: int
    outpps: int
    inbps: int
    outbps: int

class _DestStats(TypedDict):
    addr: str
    port: int
    weight: int
    forward: str
    active: int
    inactive: int
    persistent: int
    overloaded: bool
    conns: int
    inpkts: int
    outpkts: int
    inbytes: int
    outbytes: int
    rates: _Rates

class _ServiceStats(TypedDict):
    id: int
    service: Service
    conns: int
    inpkts: int
    outpkts: int
    inbytes: int
    outbytes: int
    rates: _Rates
    dests: list[_DestStats]

class _Stats(TypedDict):
    rx: int
    forwarded: int
    passed: int
    dropped: int
    conns_created: int
    conns_expired: int
    evicted: int
    templates_created: int
    reused: int
    connections: int
    capacity: int
    drops: dict[str, int]
    services: list[_ServiceStats]

class _Conn(TypedDict):
    protocol: str
    state: str
    template: bool
    expires: int
    client: tuple[str, int]
    virtual: tuple[str, int] | None
    fwmark: int | None
    dest: tuple[str, int]
    service: int

class _Replay(TypedDict):
    packets: int
    forwarded: int
    dropped: int
    passed: int
    consumed: int

@final
class Verdict:
    """The verdict on one packet. Immutable; equal verdicts compare equal."""

    @property
    def kind(self) -> VerdictKind: ...
    @property
    def reason(self) -> str | None:
        """The drop reason's name, for a drop."""
    @property
    def next_hop(self) -> str | None:
        """The IP next hop of a forward."""
    @property
    def link(self) -> Link | None:
        """Whether a forwarded packet is an Ethernet frame or an IP packet."""
    @property
    def dest(self) -> tuple[str, int] | None:
        """``(address, port)`` of the destination of a forward."""
    @property
    def service(self) -> int | None:
        """The service id of a forward."""
    def __eq__(self, value: object, /) -> bool: ...

_ServiceRef = Service | int

@final
class Balancer:
    """An IPVS-style Layer-4 load balancer, sans-IO.

    Times (``now``) are nanoseconds on the caller's clock; ``None`` means
    ``time.monotonic_ns()``. Calls from several threads are serialised; ``process_batch``
    releases the GIL while the core works.
    """

    def __new__(
        cls,
        *,
        mac: _Mac | None = None,
        conn_capacity: int = 65536,
        max_services: int = 64,
        seed: int | None = None,
        gateway_mac: _Mac | None = None,
        tunnel_source_v4: _Addr | None = None,
        tunnel_source_v6: _Addr | None = None,
        local_addrs: Sequence[_Addr] | None = None,
        local_ports: tuple[int, int] = ...,
        expire_nodest_conn: bool = False,
        expire_quiescent_template: bool = False,
        conn_reuse_mode: int = 1,
    ) -> Balancer: ...
    def add_service(self, service: Service) -> int:
        """Adds a virtual service (``ipvsadm -A``); returns its id."""
    def edit_service(self, service: Service) -> None:
        """Changes the service with the same key (``ipvsadm -E``)."""
    def remove_service(self, service: _ServiceRef) -> None:
        """Removes a service and flushes its connections (``ipvsadm -D``)."""
    def add_dest(self, service: _ServiceRef, dest: Dest) -> None:
        """Adds a destination (``ipvsadm -a``)."""
    def edit_dest(self, service: _ServiceRef, dest: Dest) -> None:
        """Changes the destination with the same address and port (``ipvsadm -e``)."""
    def remove_dest(self, service: _ServiceRef, dest: Dest | _Addr, port: int | None = None) -> None:
        """Removes a destination (``ipvsadm -d``); its connections stay until they expire."""
    def services(self) -> list[Service]: ...
    def dests(self, service: _ServiceRef) -> list[Dest]: ...
    def set_timeouts(self, tcp: float = 0.0, tcp_fin: float = 0.0, udp: float = 0.0) -> None:
        """``ipvsadm --set tcp tcpfin udp`` in seconds (0 leaves a value unchanged)."""
    @property
    def timeouts(self) -> tuple[float, float, float]: ...
    @property
    def expire_nodest_conn(self) -> bool: ...
    @expire_nodest_conn.setter
    def expire_nodest_conn(self, on: bool) -> None: ...
    @property
    def expire_quiescent_template(self) -> bool: ...
    @expire_quiescent_template.setter
    def expire_quiescent_template(self, on: bool) -> None: ...
    @property
    def mac(self) -> str: ...
    def process(
        self, packet: _Packet, now: int | None = None, *, link: Link = ..., fwmark: int = 0
    ) -> tuple[Verdict, bytes]:
        """Processes one packet: the verdict and the bytes after rewriting."""
    def process_batch(
        self, packets: Iterable[_Packet], now: int | None = None, *, link: Link = ..., fwmark: int = 0
    ) -> list[tuple[Verdict, bytes]]:
        """Processes packets in order, with the GIL released while the core works."""
    def expire(self, now: int | None = None, budget: int = 1024) -> int:
        """Bounded timer work; returns how many entries were removed."""
    def poll_timeout(self) -> int:
        """When ``expire`` should next be called (nanoseconds)."""
    def stats(self) -> _Stats:
        """Counters and per-service/destination statistics, as plain objects."""
    def drops(self, reason: str) -> int: ...
    @staticmethod
    def drop_reasons() -> list[str]: ...
    def conns(self) -> list[_Conn]: ...
    def ipvsadm(
        self,
        *,
        stats: bool = False,
        rate: bool = False,
        persistent_conn: bool = False,
        tun_info: bool = False,
        exact: bool = False,
        nosort: bool = False,
        connections: bool = False,
        now: int | None = None,
    ) -> str:
        """``ipvsadm -Ln`` text (``connections=True``: ``ipvsadm -Lnc``)."""
    def replay_pcap(self, src: _Path, dst: _Path | None = None, *, fwmark: int = 0) -> _Replay:
        """Replays a pcap file at its capture times; writes forwarded packets to ``dst``."""

# ----- pcap -----

def read_pcap(path: _Path) -> tuple[Link, list[tuple[int, bytes]]]:
    """Reads a pcap file: its link type and ``(timestamp_ns, packet)`` records."""

def write_pcap(path: _Path, packets: Iterable[tuple[int, _Packet]], link: Link = ...) -> None:
    """Writes ``(timestamp_ns, packet)`` records to a pcap file."""

# ----- VRRP -----

@final
class StateChanged:
    __match_args__ = ("from_state", "to_state")
    @property
    def from_state(self) -> VrrpState: ...
    @property
    def to_state(self) -> VrrpState: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class AddVip:
    __match_args__ = ("addr", "prefix_len")
    @property
    def addr(self) -> str: ...
    @property
    def prefix_len(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class RemoveVip:
    __match_args__ = ("addr", "prefix_len")
    @property
    def addr(self) -> str: ...
    @property
    def prefix_len(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class SendAdvert:
    __match_args__ = ("frame", "ip", "vrrp", "dst", "priority")
    @property
    def frame(self) -> bytes | None: ...
    @property
    def ip(self) -> bytes: ...
    @property
    def vrrp(self) -> bytes: ...
    @property
    def dst(self) -> str: ...
    @property
    def priority(self) -> int: ...

@final
class SendGratuitous:
    __match_args__ = ("frame", "vip")
    @property
    def frame(self) -> bytes: ...
    @property
    def vip(self) -> str: ...

_Action = StateChanged | AddVip | RemoveVip | SendAdvert | SendGratuitous

class _VrrpCounters(TypedDict):
    adverts_received: int
    priority_zero_received: int
    adverts_sent: int
    priority_zero_sent: int
    gratuitous_sent: int
    became_master: int
    released_master: int
    lower_priority_ignored: int
    actions_dropped: int
    rejected: dict[str, int]

@final
class Vrrp:
    """One VRRP instance (keepalived ``vrrp_instance``), sans-IO."""

    def __new__(
        cls,
        vrid: int,
        src: _Addr,
        *,
        version: int = 3,
        priority: int = 100,
        advert_interval: float = 1.0,
        vips: Sequence[str | tuple[_Addr, int]] | None = None,
        auth_pass: str | bytes | None = None,
        start_state: VrrpState = ...,
        nopreempt: bool = False,
        preempt_delay: float = 0.0,
        accept: bool = True,
        unicast_peers: Sequence[_Addr | tuple[_Addr, _Mac]] | None = None,
        check_unicast_src: bool = False,
        tracks: Sequence[int] | None = None,
        down_timer_adverts: int = 3,
        source_mac: _Mac | None = None,
        lower_prio_no_advert: bool = False,
        higher_prio_send_advert: bool = False,
        v3_checksum_as_v2: bool = False,
        flow_label: int = 0,
        ipv6_router: bool = False,
        garp_master_delay: float = 5.0,
        garp_master_repeat: int = 5,
        garp_master_refresh: float = 0.0,
        garp_master_refresh_repeat: int = 1,
        garp_lower_prio_delay: float = 5.0,
        garp_lower_prio_repeat: int = 5,
        garp_interval: float = 0.0,
    ) -> Vrrp: ...
    @property
    def state(self) -> VrrpState: ...
    @property
    def vrid(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def base_priority(self) -> int: ...
    @property
    def advert_interval(self) -> float: ...
    @property
    def master_advert_interval(self) -> float: ...
    @property
    def skew_time(self) -> float: ...
    @property
    def master_down_interval(self) -> float: ...
    @property
    def master(self) -> tuple[str, int] | None: ...
    @property
    def accepts_vip_traffic(self) -> bool: ...
    @property
    def fault_condition(self) -> bool: ...
    def track_ok(self, track: int) -> bool | None: ...
    def counters(self) -> _VrrpCounters: ...
    def poll_timeout(self) -> int | None: ...
    def handle_packet(
        self,
        packet: _Packet,
        now: int | None = None,
        *,
        link: Link = ...,
        src: _Addr | None = None,
        dst: _Addr | None = None,
        hop_limit: int | None = None,
    ) -> None: ...
    def handle_timeout(self, now: int | None = None) -> None: ...
    def start(self, now: int | None = None) -> None: ...
    def shutdown(self, now: int | None = None) -> None: ...
    def set_priority_delta(self, delta: int, now: int | None = None) -> None: ...
    def set_track(self, track: int, ok: bool, now: int | None = None) -> None: ...
    def interface_up(self, now: int | None = None) -> None: ...
    def interface_down(self, now: int | None = None) -> None: ...
    def poll_action(self) -> _Action | None: ...
    def poll_actions(self) -> list[_Action]: ...

# ----- configuration files -----

class _VirtualServer(TypedDict):
    service: Service
    dests: list[Dest]
    sorry_server: Dest | None
    origin: str

class _VrrpInstance(TypedDict):
    name: str
    interface: str
    version: int
    vrid: int
    priority: int
    advert_interval: float
    start_state: VrrpState
    nopreempt: bool
    preempt_delay: float
    vips: list[str]
    unicast_src: str | None
    unicast_peers: list[str]
    origin: str

class _Config(TypedDict):
    virtual_servers: list[_VirtualServer]
    vrrp_instances: list[_VrrpInstance]
    warnings: list[str]

def from_keepalived_conf(text: str, file: str = "keepalived.conf") -> _Config:
    """Parses keepalived.conf text; ``ConfigSyntaxError`` (``.diagnostics``) on errors."""

def from_ipvsadm_rules(text: str, file: str = "ipvsadm.rules") -> _Config:
    """Parses ipvsadm rules (``ipvsadm -Sn`` output); ``ConfigSyntaxError`` on errors."""
