"""process_batch releases the GIL; one balancer used from several threads stays consistent."""

from __future__ import annotations

import sys
import threading
import time

import pytest

import lbcore
from packets import LB_MAC, RS1_MAC, RS2_MAC, fast_tcp, t, tcp

VIP = "192.0.2.10"


def established(lb: lbcore.Balancer, flows: int) -> list[bytes]:
    """Opens `flows` connections and returns one ACK per flow."""
    syns = [fast_tcp("198.51.100.7", 1024 + i, VIP, 80, 0x02) for i in range(flows)]
    assert all(v.kind == lbcore.VerdictKind.FORWARD for v, _ in lb.process_batch(syns, t(1)))
    return [fast_tcp("198.51.100.7", 1024 + i, VIP, 80, 0x10) for i in range(flows)]


def test_the_fast_builder_builds_what_scapy_builds() -> None:
    for flags, name in ((0x02, "S"), (0x10, "A"), (0x11, "FA")):
        assert fast_tcp("198.51.100.7", 1234, VIP, 80, flags) == tcp("198.51.100.7", 1234, VIP, 80, name)


def dr_balancer() -> lbcore.Balancer:
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=1 << 16)
    svc = lbcore.Service.tcp(VIP, 80, scheduler="rr")
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("10.0.0.1", 80, forward=lbcore.Forward.DR, mac=RS1_MAC))
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.DR, mac=RS2_MAC))
    return lb


@pytest.fixture
def long_switch_interval():  # type: ignore[no-untyped-def]
    # With a 1 s switch interval the interpreter never takes the GIL away from a thread within
    # the test's time frame: another thread only runs while the GIL is *released*.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    yield
    sys.setswitchinterval(old)


@pytest.mark.usefixtures("long_switch_interval")
def test_another_thread_runs_while_process_batch_works() -> None:
    lb = dr_balancer()
    acks = established(lb, 20_000) * 10  # 200,000 packets: tens of milliseconds in the core
    ticks: list[int] = []
    started = threading.Event()
    stop = threading.Event()

    def worker() -> None:
        started.set()
        while not stop.is_set():
            ticks.append(time.perf_counter_ns())
            time.sleep(0.0002)  # releases the GIL, then needs it back to record the next tick

    thread = threading.Thread(target=worker)
    thread.start()
    started.wait()
    time.sleep(0.01)
    begin = time.perf_counter_ns()
    results = lb.process_batch(acks, t(2))
    end = time.perf_counter_ns()
    stop.set()
    thread.join()
    assert len(results) == len(acks)
    during = [x for x in ticks if begin < x < end]
    # Had the GIL been held for the whole call, the worker could not have recorded a single
    # tick inside it (it needs the GIL to append, and the switch interval is 1 s).
    assert len(during) >= 5, f"{len(during)} worker ticks during a {(end - begin) / 1e6:.1f} ms batch"


def test_threads_sharing_a_balancer_are_serialised() -> None:
    lb = dr_balancer()
    acks = established(lb, 2_000)
    errors: list[BaseException] = []
    rounds, readers_done = 20, threading.Event()

    def feeder() -> None:
        try:
            for _ in range(rounds):
                out = lb.process_batch(acks, t(3))
                assert all(v.kind == lbcore.VerdictKind.FORWARD for v, _ in out)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader() -> None:
        try:
            while not readers_done.is_set():
                s = lb.stats()
                assert s["forwarded"] + s["dropped"] + s["passed"] == s["rx"]
                lb.ipvsadm()
                lb.process(acks[0], t(3))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    feeders = [threading.Thread(target=feeder) for _ in range(3)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for th in feeders + readers:
        th.start()
    for th in feeders:
        th.join()
    readers_done.set()
    for th in readers:
        th.join()
    assert errors == []
    stats = lb.stats()
    extra = stats["rx"] - 2_000 - 3 * rounds * len(acks)
    assert extra >= 0, "every batch packet counted once"
    assert stats["forwarded"] == stats["rx"]
    assert stats["connections"] == 2_000
