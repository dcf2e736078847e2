"""Every core error reaches Python as a subclass of lbcore.LbError; misuse raises, never
crashes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import lbcore
from packets import RS1_MAC, t, tcp

VIP = "192.0.2.10"


def lb_with_service(**kw: object) -> tuple[lbcore.Balancer, lbcore.Service]:
    lb = lbcore.Balancer(**kw)  # type: ignore[arg-type]
    svc = lbcore.Service.tcp(VIP, 80)
    lb.add_service(svc)
    return lb, svc


def service_exists() -> None:
    lb, svc = lb_with_service()
    lb.add_service(svc)


def no_such_service() -> None:
    lb, _ = lb_with_service()
    lb.add_dest(lbcore.Service.tcp(VIP, 81), lbcore.Dest("10.0.0.2", 80))


def too_many_services() -> None:
    lb, _ = lb_with_service(max_services=1)
    lb.add_service(lbcore.Service.tcp(VIP, 81))


def dest_exists() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80))
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, weight=5))


def no_such_dest() -> None:
    lb, svc = lb_with_service()
    lb.remove_dest(svc, "10.0.0.2", 80)


def too_many_dests() -> None:
    lb, svc = lb_with_service()
    for i in range(129):
        lb.add_dest(svc, lbcore.Dest(f"10.0.{i // 250}.{i % 250 + 1}", 80))


def port_zero_not_persistent() -> None:
    lbcore.Balancer().add_service(lbcore.Service(VIP, 0))


def direct_routing_needs_mac() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.DR))


def family_mismatch() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("fd00::2", 80))


def bad_weight() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, weight=-1))


def no_local_address() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.FULLNAT))


def no_tunnel_source() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.TUNNEL))


def bad_capacity() -> None:
    lbcore.Balancer(conn_capacity=0)


def one_packet_not_udp() -> None:
    lbcore.Balancer().add_service(lbcore.Service(VIP, 80, lbcore.Protocol.TCP, one_packet=True))


CASES: list[tuple[Callable[[], None], type[lbcore.ConfigError], str]] = [
    (service_exists, lbcore.ServiceExistsError, "service already exists"),
    (no_such_service, lbcore.NoSuchServiceError, "no such service"),
    (too_many_services, lbcore.TooManyServicesError, "service table is full"),
    (dest_exists, lbcore.DestExistsError, "destination already exists"),
    (no_such_dest, lbcore.NoSuchDestError, "no destination 10.0.0.2 port 80"),
    (too_many_dests, lbcore.TooManyDestsError, "too many destinations"),
    (port_zero_not_persistent, lbcore.PortZeroNotPersistentError, "port zero"),
    (direct_routing_needs_mac, lbcore.DirectRoutingNeedsMacError, "MAC"),
    (family_mismatch, lbcore.FamilyMismatchError, "family"),
    (bad_weight, lbcore.BadWeightError, "weight"),
    (no_local_address, lbcore.NoLocalAddressError, "local address"),
    (no_tunnel_source, lbcore.NoTunnelSourceError, "tunnel source"),
    (bad_capacity, lbcore.BadCapacityError, "capacity"),
    (one_packet_not_udp, lbcore.OnePacketNotUdpError, "only for UDP"),
]


@pytest.mark.parametrize(("call", "error", "message"), CASES, ids=[c[1].__name__ for c in CASES])
def test_every_config_error_has_its_exception(
    call: Callable[[], None], error: type[lbcore.ConfigError], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        call()
    assert isinstance(info.value, lbcore.ConfigError)
    assert isinstance(info.value, lbcore.LbError)


def test_every_exception_is_an_lb_error_and_exported() -> None:
    names = [n for n in lbcore.__all__ if n.endswith("Error")]
    assert len(names) == len(CASES) + 6  # + LbError, ConfigError, Vrrp/Syntax/Pcap/Busy
    for name in names:
        cls = getattr(lbcore, name)
        assert issubclass(cls, lbcore.LbError)
        assert cls.__module__ == "lbcore"
    assert issubclass(lbcore.LbError, Exception)


def test_a_refused_call_changes_nothing() -> None:
    lb, svc = lb_with_service()
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80))
    before = lb.ipvsadm()
    with pytest.raises(lbcore.BadWeightError):
        lb.edit_dest(svc, lbcore.Dest("10.0.0.2", 80, weight=-5))
    assert lb.ipvsadm() == before


def test_vrrp_config_errors_carry_a_reason() -> None:
    cases = [
        ({"vrid": 0, "src": "10.0.0.1"}, "vrid_zero"),
        ({"vrid": 1, "src": "10.0.0.1", "priority": 0}, "priority_zero"),
        ({"vrid": 1, "src": "10.0.0.1", "version": 2, "advert_interval": 0.5}, "bad_interval"),
        ({"vrid": 1, "src": "fe80::1", "version": 2}, "ipv6_needs_v3"),
        ({"vrid": 1, "src": "10.0.0.1", "auth_pass": "secret"}, "auth_needs_v2"),
        ({"vrid": 1, "src": "10.0.0.1", "vips": ["fd00::1/64"]}, "family_mismatch"),
        ({"vrid": 1, "src": "10.0.0.1", "vips": [f"10.0.1.{i}" for i in range(21)]}, "too_many"),
        ({"vrid": 1, "src": "10.0.0.1", "tracks": [300]}, "bad_weight"),
        ({"vrid": 1, "src": "10.0.0.1", "down_timer_adverts": 0}, "bad_down_timer_adverts"),
    ]
    for kwargs, reason in cases:
        with pytest.raises(lbcore.VrrpConfigError) as info:
            lbcore.Vrrp(**kwargs)  # type: ignore[arg-type]
        assert info.value.reason == reason
        assert isinstance(info.value, lbcore.LbError)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: lbcore.Service.tcp("not an address", 80), ValueError),
        (lambda: lbcore.Service.tcp(VIP, 70000), OverflowError),
        (lambda: lbcore.Service.tcp(VIP, 80, scheduler="fastest"), ValueError),
        (lambda: lbcore.Service.tcp(VIP, 80, scheduler=3), TypeError),
        (lambda: lbcore.Service.tcp(VIP, 80, persistence=-1), ValueError),
        (lambda: lbcore.Service.tcp(VIP, 80, persistence=float("nan")), ValueError),
        (lambda: lbcore.Service.tcp(VIP, 80, netmask=24), ValueError),
        (lambda: lbcore.Service.tcp(VIP, 80, persistence=1, netmask=33), ValueError),
        (lambda: lbcore.Dest("10.0.0.2", 80, mac="02:00:00"), ValueError),
        (lambda: lbcore.Dest("10.0.0.2", 80, mac=b"\x02"), ValueError),
        (lambda: lbcore.Dest("10.0.0.2", 80, mac=2), TypeError),
        (lambda: lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.TUNNEL, tunnel=lbcore.TunnelType.GUE),
         ValueError),
        (lambda: lbcore.Balancer(conn_capacity=1 << 40), lbcore.BadCapacityError),
        (lambda: lbcore.Balancer(conn_capacity=-1), OverflowError),
        (lambda: lbcore.Balancer(local_addrs=["10.0.0.1"] * 17), ValueError),
        (lambda: lbcore.Balancer(tunnel_source_v4="fd00::1"), ValueError),
        (lambda: lbcore.Balancer(local_ports=(2000, 1000)), lbcore.BadCapacityError),
        (lambda: lbcore.Balancer().process("a string", 0), TypeError),
        (lambda: lbcore.Balancer().process(b"", -1), OverflowError),
        (lambda: lbcore.Balancer().process_batch(b"one packet", 0), TypeError),
        (lambda: lbcore.Balancer().process_batch([b"", 5], 0), TypeError),
        (lambda: lbcore.Balancer().process_batch(5, 0), TypeError),
        (lambda: lbcore.Balancer().remove_service("web"), TypeError),
        (lambda: lbcore.Balancer().remove_service(3), lbcore.NoSuchServiceError),
        (lambda: lbcore.Balancer().drops("bogus"), ValueError),
        (lambda: lbcore.Vrrp(1, "10.0.0.1", version=4), ValueError),
        (lambda: lbcore.Vrrp(1, "10.0.0.1", start_state=lbcore.VrrpState.FAULT), ValueError),
        (lambda: lbcore.Vrrp(1, "10.0.0.1", vips=["10.0.0.9/40"]), ValueError),
        (lambda: lbcore.Scheduler.from_name("fastest"), ValueError),
    ],
)
def test_misuse_raises_a_python_error(call: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error):
        call()


def test_a_failing_iterable_leaves_the_balancer_usable() -> None:
    lb, svc = lb_with_service(mac="02:00:00:00:00:01")
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.DR, mac=RS1_MAC))

    def packets() -> Iterator[bytes]:
        yield tcp("198.51.100.7", 1, VIP, 80, "S")
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        lb.process_batch(packets(), t(1))
    assert lb.process(tcp("198.51.100.7", 2, VIP, 80, "S"), t(1))[0].kind == lbcore.VerdictKind.FORWARD


def test_reentrant_call_is_refused_not_deadlocked() -> None:
    lb, _ = lb_with_service()
    seen: list[BaseException] = []

    def packets() -> Iterator[bytes]:
        yield b""
        try:
            lb.stats()  # the balancer is in the middle of process_batch on this thread
        except lbcore.BusyError as e:
            seen.append(e)
        yield b""

    assert len(lb.process_batch(packets(), t(1))) == 2
    assert len(seen) == 1 and "re-entrant" in str(seen[0])
    assert lb.stats()["rx"] == 2
