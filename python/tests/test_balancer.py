"""Balancer behaviour through the Python API: scheduling, persistence, quiescing, removal,
timers, statistics, ipvsadm text, batches."""

from __future__ import annotations

from collections import Counter

import lbcore
from packets import LB_MAC, RS1_MAC, RS2_MAC, RS3_MAC, parse, t, tcp, udp

VIP = "192.0.2.10"
MACS = {RS1_MAC: "10.0.0.1", RS2_MAC: "10.0.0.2", RS3_MAC: "10.0.0.3"}


def server_of(out: bytes) -> str:
    return MACS[parse(out).dst]


def test_round_robin_then_established_flows_stick(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, _ = dr
    picks = []
    for port in range(1000, 1010):
        verdict, out = lb.process(tcp("198.51.100.7", port, VIP, 80, "S"), t(1))
        assert verdict.dest == (server_of(out), 80)
        picks.append(server_of(out))
    assert Counter(picks) == {"10.0.0.1": 5, "10.0.0.2": 5}
    # Later segments of each flow go where its SYN went.
    for port, first in zip(range(1000, 1010), picks):
        _, out = lb.process(tcp("198.51.100.7", port, VIP, 80, "A"), t(2))
        assert server_of(out) == first
    stats = lb.stats()
    assert stats["conns_created"] == 10
    assert stats["connections"] == 10
    assert [d["active"] for d in stats["services"][0]["dests"]] == [5, 5]


def test_persistence_keeps_a_client_on_one_server() -> None:
    lb = lbcore.Balancer(mac=LB_MAC)
    svc = lbcore.Service.tcp(VIP, 80, scheduler=lbcore.Scheduler.RR, persistence=300)
    lb.add_service(svc)
    for mac, addr in MACS.items():
        lb.add_dest(svc, lbcore.Dest(addr, 80, forward=lbcore.Forward.DR, mac=mac))
    by_client: dict[str, set[str]] = {}
    for client in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        for port in range(2000, 2020):
            _, out = lb.process(tcp(client, port, VIP, 80, "S"), t(1))
            by_client.setdefault(client, set()).add(server_of(out))
    assert all(len(servers) == 1 for servers in by_client.values()), by_client
    assert len({s for servers in by_client.values() for s in servers}) == 3, "rr spread the clients"
    assert lb.stats()["templates_created"] == 3
    templates = [c for c in lb.conns() if c["template"]]
    assert len(templates) == 3
    assert all(c["client"][1] == 0 for c in templates)
    # With a /24 granularity, the whole subnet sticks to one server.
    lb.edit_service(svc.replace(persistence=300, netmask="255.255.255.0"))
    assert lb.services()[0].netmask == "255.255.255.0"
    servers = set()
    for client in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        _, out = lb.process(tcp(client, 3000, VIP, 80, "S"), t(2))
        servers.add(server_of(out))
    assert len(servers) == 1


def test_quiesced_server_keeps_its_connections_but_gets_no_new_ones(
    dr: tuple[lbcore.Balancer, lbcore.Service],
) -> None:
    lb, svc = dr
    _, out = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"), t(1))
    first = server_of(out)
    lb.edit_dest(svc, lbcore.Dest(first, 80, weight=0, forward=lbcore.Forward.DR,
                                  mac=RS1_MAC if first == "10.0.0.1" else RS2_MAC))
    assert {d.addr: d.weight for d in lb.dests(svc)}[first] == 0
    # The existing connection goes on to the quiesced server...
    _, out = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "A"), t(2))
    assert server_of(out) == first
    # ...and every new one goes to the other.
    for port in range(2000, 2010):
        _, out = lb.process(tcp("198.51.100.7", port, VIP, 80, "S"), t(2))
        assert server_of(out) != first


def test_a_removed_server_drops_its_connections_new_ones_go_elsewhere(
    dr: tuple[lbcore.Balancer, lbcore.Service],
) -> None:
    lb, svc = dr
    _, out = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"), t(1))
    down = server_of(out)
    lb.remove_dest(svc, down, 80)
    assert [d.addr for d in lb.dests(svc)] == [a for a in ("10.0.0.2", "10.0.0.1") if a != down]
    verdict, _ = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "A"), t(2))
    assert verdict.kind == lbcore.VerdictKind.DROP
    assert verdict.reason == "dest_unavailable"
    assert lb.drops("dest_unavailable") == 1
    assert lb.stats()["drops"] == {"dest_unavailable": 1}
    _, out = lb.process(tcp("198.51.100.7", 1001, VIP, 80, "S"), t(2))
    assert server_of(out) != down
    # With expire_nodest_conn the next packet expires the orphaned connection instead.
    lb.expire_nodest_conn = True
    assert lb.expire_nodest_conn
    before = lb.stats()["connections"]
    verdict, _ = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "A"), t(3))
    assert verdict.reason == "dest_unavailable"
    assert lb.stats()["connections"] == before - 1


def test_no_destination_is_dropped_and_counted() -> None:
    lb = lbcore.Balancer()
    lb.add_service(lbcore.Service.tcp(VIP, 80))
    verdict, _ = lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"), t(1))
    assert (verdict.kind, verdict.reason) == (lbcore.VerdictKind.DROP, "no_destination")
    assert repr(verdict) == "Verdict(DROP, reason=no_destination)"
    assert "no_destination" in lbcore.Balancer.drop_reasons()


def test_garbage_is_dropped_with_a_reason() -> None:
    lb = lbcore.Balancer()
    lb.add_service(lbcore.Service.tcp(VIP, 80))
    good = tcp("198.51.100.7", 1000, VIP, 80, "S")
    for n in range(len(good)):
        verdict, _ = lb.process(good[:n], t(1))
        assert verdict.kind in (lbcore.VerdictKind.DROP, lbcore.VerdictKind.PASS)
    verdict, _ = lb.process(b"", t(1))
    assert verdict.reason == "truncated"
    assert sum(lb.stats()["drops"].values()) == lb.stats()["dropped"]


def test_connections_expire_after_their_timeouts(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, _ = dr
    lb.set_timeouts(tcp=100, tcp_fin=10, udp=20)
    assert lb.timeouts == (100.0, 10.0, 20.0)
    lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"), t(1))
    lb.process(tcp("198.51.100.7", 1000, VIP, 80, "A"), t(1))
    assert lb.conns()[0]["state"] == "ESTABLISHED"
    assert lb.conns()[0]["expires"] == t(101)
    assert lb.expire(t(100), 10_000) == 0
    assert lb.expire(t(101.5), 10_000) == 1
    assert lb.conns() == []
    assert lb.poll_timeout() >= t(101.5)


def test_batch_gives_what_single_calls_give() -> None:
    def build() -> lbcore.Balancer:
        lb = lbcore.Balancer(mac=LB_MAC, seed=42)
        svc = lbcore.Service.tcp(VIP, 80, scheduler="wlc")
        lb.add_service(svc)
        for mac, addr in MACS.items():
            lb.add_dest(svc, lbcore.Dest(addr, 80, forward=lbcore.Forward.DR, mac=mac))
        lb.add_service(lbcore.Service.udp(VIP, 53))
        lb.add_dest(lbcore.Service.udp(VIP, 53), lbcore.Dest("10.0.0.9", 53))
        return lb

    packets = []
    for i in range(300):
        port = 1000 + i % 37
        packets.append(tcp("198.51.100.7", port, VIP, 80, "S" if i < 37 else "A", b"x" * (i % 5)))
        if i % 7 == 0:
            packets.append(udp("198.51.100.8", port, VIP, 53))
        if i % 11 == 0:
            packets.append(b"\x00" * (i % 60))
    single, batch = build(), build()
    expected = [single.process(p, t(5)) for p in packets]
    got = batch.process_batch(packets, t(5))
    assert got == expected
    assert single.stats() == batch.stats()
    # Equal verdicts compare equal; runs of them are one shared object.
    assert got[40][0] == got[41][0] or got[40][0].dest != got[41][0].dest
    # Any iterable of bytes or bytearray works, and an empty batch is fine.
    assert batch.process_batch(iter([bytearray(packets[0])]), t(5))[0][0].kind == lbcore.VerdictKind.FORWARD
    assert batch.process_batch([], t(5)) == []


def test_stats_are_plain_python_objects(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, svc = dr
    lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S", b"abc"), t(1))
    stats = lb.stats()
    assert type(stats) is dict
    s = stats["services"][0]
    assert s["service"] == svc
    assert (s["conns"], s["inpkts"], s["inbytes"]) == (1, 1, 43)  # IP bytes
    assert s["rates"] == {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0}
    dests = {d["addr"]: d for d in s["dests"]}
    assert sum(d["conns"] for d in dests.values()) == 1
    assert dests["10.0.0.1"]["forward"] == "Route"
    assert stats["rx"] == stats["forwarded"] == 1
    assert stats["capacity"] == 1024


def test_ipvsadm_listing_is_byte_for_byte() -> None:
    # The same setup as lbcore/tests/balancer.rs ipvsadm_listings_of_a_running_balancer.
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=1024)
    svc = lbcore.Service.tcp("172.27.9.100", 81, scheduler="wrr", persistence=50)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("172.27.9.91", 81, forward=lbcore.Forward.DR, mac=RS1_MAC))
    lb.add_dest(svc, lbcore.Dest("172.27.9.92", 81, forward=lbcore.Forward.DR, mac=RS2_MAC))
    lb.process(tcp("192.0.2.1", 51234, "172.27.9.100", 81, "S"), t(10))
    lb.process(tcp("192.0.2.1", 51234, "172.27.9.100", 81, "A"), t(10))
    lb.process(tcp("192.0.2.77", 40000, "172.27.9.100", 81, "S"), t(10))
    assert lb.ipvsadm() == (
        "IP Virtual Server version 1.2.1 (size=1024)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  172.27.9.100:81 wrr persistent 50\n"
        "  -> 172.27.9.91:81               Route   1      1          0         \n"
        "  -> 172.27.9.92:81               Route   1      1          0         \n"
    )
    lines = sorted(lb.ipvsadm(connections=True, now=t(12)).splitlines()[2:])
    assert lines == [
        "TCP 00:48  NONE        192.0.2.1:0        172.27.9.100:81    172.27.9.92:81",
        "TCP 00:48  NONE        192.0.2.77:0       172.27.9.100:81    172.27.9.91:81",
        "TCP 00:58  SYN_RECV    192.0.2.77:40000   172.27.9.100:81    172.27.9.91:81",
        "TCP 14:58  ESTABLISHED 192.0.2.1:51234    172.27.9.100:81    172.27.9.92:81",
    ]
    assert "Conns   InPkts  OutPkts  InBytes OutBytes" in lb.ipvsadm(stats=True)
    assert "CPS    InPPS   OutPPS    InBPS   OutBPS" in lb.ipvsadm(rate=True)
    assert "Persist" in lb.ipvsadm(persistent_conn=True)


def test_services_and_dests_round_trip() -> None:
    lb = lbcore.Balancer(local_addrs=["10.0.0.100"], tunnel_source_v4="10.0.0.1")
    svcs = [
        lbcore.Service.tcp(VIP, 80, scheduler="sh", sh_fallback=True, sh_port=True),
        lbcore.Service.udp("2001:db8::10", 53, one_packet=True),
        lbcore.Service.fwmark(9, lbcore.Family.V6, persistence=60, netmask=64),
        lbcore.Service(VIP, 0, persistence=30),
    ]
    ids = [lb.add_service(s) for s in svcs]
    assert lb.services() == svcs
    assert svcs[2].netmask == 64 and svcs[2].family == lbcore.Family.V6
    dests = [
        lbcore.Dest("10.0.0.2", 8080, weight=3, u_threshold=100, l_threshold=50),
        lbcore.Dest("10.0.0.3", 8080, forward=lbcore.Forward.FULLNAT, mac="02:00:00:00:00:03"),
        lbcore.Dest("10.0.0.4", 80, forward=lbcore.Forward.TUNNEL),
    ]
    for d in dests:
        lb.add_dest(ids[0], d)
    assert lb.dests(svcs[0]) == dests[::-1], "newest first, like the kernel's list"
    assert dests[1].mac == "02:00:00:00:00:03"
    assert repr(dests[0]) == "Dest(10.0.0.2:8080, Masq, weight=3, u_threshold=100, l_threshold=50)"
    assert repr(svcs[0]) == "Service(TCP 192.0.2.10:80, scheduler=sh, flags=3)"
    assert {svcs[0], svcs[0].replace()} == {svcs[0]}, "hashable values"
    lb.remove_dest(svcs[0], dests[0])
    lb.remove_service(ids[1])
    assert len(lb.services()) == 3
    assert lbcore.Scheduler.from_name("mh") == lbcore.Scheduler.MH
    assert lbcore.Forward.NAT.ipvs_name == "Masq"


def test_time_going_backwards_is_clamped_not_fatal(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, _ = dr
    lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"), t(100))
    verdict, _ = lb.process(tcp("198.51.100.7", 1001, VIP, 80, "S"), t(1))
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    assert lb.expire(0) == 0


def test_now_defaults_to_the_monotonic_clock(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, _ = dr
    before = lbcore.monotonic_ns()
    lb.process(tcp("198.51.100.7", 1000, VIP, 80, "S"))
    expires = lb.conns()[0]["expires"]
    # SYN_RECV lasts 60 s from "now", rounded up to the table's 1 ms expiry tick.
    assert before + t(60) <= expires <= lbcore.monotonic_ns() + t(60) + 10**6
