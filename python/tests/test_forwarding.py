"""Rewriting for every forwarding method, checked by scapy: the packets are built with scapy,
passed as bytes(pkt), parsed back with scapy, and every checksum must equal the one scapy
recomputes from scratch."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

import lbcore
from packets import (
    CLIENT_MAC,
    GW_MAC,
    LB_MAC,
    RS1_MAC,
    RS2_MAC,
    assert_checksums,
    flow,
    l3,
    parse,
    t,
    tcp,
    udp,
)

FAMILIES = {
    "v4": ("192.0.2.10", "198.51.100.7", "10.0.0.2", "10.0.0.100"),
    "v6": ("2001:db8::10", "2001:db8:ff::7", "fd00::2", "fd00::100"),
}


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_dr_rewrites_only_the_macs(family: str) -> None:
    vip, client, rip, _ = FAMILIES[family]
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=1024)
    svc = lbcore.Service.tcp(vip, 80)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest(rip, 80, forward=lbcore.Forward.DR, mac=RS1_MAC))
    syn = tcp(client, 40000, vip, 80, "S", b"hello")
    verdict, out = lb.process(syn, t(1))
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    assert verdict.link == lbcore.Link.ETHERNET
    assert verdict.dest == (rip, 80)
    assert verdict.reason is None
    pkt = parse(out)
    assert (pkt.src, pkt.dst) == (LB_MAC, RS1_MAC)
    # Everything after the Ethernet header is untouched.
    assert out[12:] == syn[12:]
    assert flow(pkt) == (client, 40000, vip, 80)
    assert_checksums(pkt)


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_nat_both_directions(family: str) -> None:
    vip, client, rip, _ = FAMILIES[family]
    lb = lbcore.Balancer(mac=LB_MAC, gateway_mac=GW_MAC, conn_capacity=1024)
    svc = lbcore.Service.tcp(vip, 80)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest(rip, 8080, forward=lbcore.Forward.NAT, mac=RS1_MAC))

    verdict, out = lb.process(tcp(client, 40000, vip, 80, "S"), t(1))
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    pkt = parse(out)
    assert pkt.dst == RS1_MAC
    assert flow(pkt) == (client, 40000, rip, 8080)
    assert_checksums(pkt)

    # The server's reply goes back to the client from the VIP, via the gateway.
    verdict, out = lb.process(tcp(rip, 8080, client, 40000, "SA"), t(1))
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    assert verdict.next_hop == client
    pkt = parse(out)
    assert (pkt.src, pkt.dst) == (LB_MAC, GW_MAC)
    assert flow(pkt) == (vip, 80, client, 40000)
    assert_checksums(pkt)

    # Data with a payload: the checksum covers it.
    _, out = lb.process(tcp(client, 40000, vip, 80, "PA", b"GET / HTTP/1.0\r\n\r\n"), t(1))
    pkt = parse(out)
    assert bytes(pkt[Raw]) == b"GET / HTTP/1.0\r\n\r\n"
    assert_checksums(pkt)
    stats = lb.stats()["services"][0]
    assert (stats["conns"], stats["inpkts"], stats["outpkts"]) == (1, 2, 1)


def test_nat_udp_without_next_hop_mac_gives_a_bare_ip_packet() -> None:
    vip, client, rip, _ = FAMILIES["v4"]
    lb = lbcore.Balancer(mac=LB_MAC)
    svc = lbcore.Service.udp(vip, 53)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest(rip, 5353))
    verdict, out = lb.process(udp(client, 33333, vip, 53, b"query"), t(1))
    assert verdict.link == lbcore.Link.IP
    assert verdict.next_hop == rip
    pkt = parse(out, eth=False)
    assert flow(pkt) == (client, 33333, rip, 5353)
    assert_checksums(pkt)


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_fullnat_both_directions(family: str) -> None:
    vip, client, rip, lip = FAMILIES[family]
    lb = lbcore.Balancer(mac=LB_MAC, gateway_mac=GW_MAC, local_addrs=[lip])
    svc = lbcore.Service.tcp(vip, 80)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest(rip, 8080, forward=lbcore.Forward.FULLNAT, mac=RS1_MAC))
    _, out = lb.process(tcp(client, 40000, vip, 80, "S"), t(1))
    pkt = parse(out)
    src, lport, dst, dport = flow(pkt)
    assert (src, dst, dport) == (lip, rip, 8080)
    assert_checksums(pkt)
    _, out = lb.process(tcp(rip, 8080, lip, lport, "SA"), t(1))
    pkt = parse(out)
    assert flow(pkt) == (vip, 80, client, 40000)
    assert_checksums(pkt)


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("tunnel", ["ipip", "gue"])
def test_tunnel_encapsulates(family: str, tunnel: str) -> None:
    vip, client, rip, _ = FAMILIES[family]
    lb = lbcore.Balancer(mac=LB_MAC, tunnel_source_v4="10.0.0.1", tunnel_source_v6="fd00::1")
    svc = lbcore.Service.tcp(vip, 80)
    lb.add_service(svc)
    kind = lbcore.TunnelType.IPIP if tunnel == "ipip" else lbcore.TunnelType.GUE
    dest = lbcore.Dest(rip, 80, forward=lbcore.Forward.TUNNEL, tunnel=kind, gue_port=6080)
    assert dest.tunnel == kind
    lb.add_dest(svc, dest)
    inner = tcp(client, 40000, vip, 80, "S", b"payload")
    verdict, out = lb.process(inner, t(1))
    assert verdict.link == lbcore.Link.IP
    assert verdict.next_hop == rip
    pkt = parse(out, eth=False)
    outer = l3(pkt)
    assert (outer.src, outer.dst) == ("10.0.0.1" if family == "v4" else "fd00::1", rip)
    if tunnel == "ipip":
        carried = bytes(outer.payload)
        assert (outer.nh if family == "v6" else outer.proto) == (41 if family == "v6" else 4)
    else:
        assert pkt[UDP].dport == 6080
        carried = bytes(pkt[UDP].payload)[4:]  # after the 4-byte GUE header
    assert carried == inner[14:], "the inner packet is carried unchanged"
    assert_checksums(pkt)
    inner_pkt = IPv6(carried) if family == "v6" else IP(carried)
    assert_checksums(inner_pkt)


def test_link_ip_input_for_tun_devices() -> None:
    lb = lbcore.Balancer(mac=LB_MAC)
    svc = lbcore.Service.tcp("192.0.2.10", 80)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 8080))
    verdict, out = lb.process(tcp("198.51.100.7", 1, "192.0.2.10", 80, "S", eth=False), t(1),
                              link=lbcore.Link.IP)
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    pkt = parse(out, eth=False)
    assert pkt[TCP].dport == 8080
    assert_checksums(pkt)
    # The same bare IP packet read as Ethernet is garbage: dropped with a reason.
    verdict, _ = lb.process(tcp("198.51.100.7", 2, "192.0.2.10", 80, "S", eth=False), t(1))
    assert verdict.kind in (lbcore.VerdictKind.DROP, lbcore.VerdictKind.PASS)


def test_fwmark_service_matches_marked_packets() -> None:
    lb = lbcore.Balancer(mac=LB_MAC)
    svc = lbcore.Service.fwmark(7, persistence=60)
    assert (svc.mark, svc.vip, svc.protocol) == (7, None, None)
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 0, forward=lbcore.Forward.DR, mac=RS2_MAC))
    frame = tcp("198.51.100.7", 1000, "203.0.113.5", 443, "S")
    assert lb.process(frame, t(1))[0].kind == lbcore.VerdictKind.PASS
    verdict, out = lb.process(frame, t(1), fwmark=7)
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    assert parse(out).dst == RS2_MAC


def test_traffic_for_nobody_passes_unchanged(dr: tuple[lbcore.Balancer, lbcore.Service]) -> None:
    lb, _ = dr
    frame = tcp("198.51.100.7", 1000, "203.0.113.5", 80, "S")
    verdict, out = lb.process(frame, t(1))
    assert verdict.kind == lbcore.VerdictKind.PASS
    assert out == frame
    # A non-SYN without a connection is passed too, as IPVS does.
    verdict, _ = lb.process(tcp("198.51.100.7", 1000, "192.0.2.10", 80, "A"), t(1))
    assert verdict.kind == lbcore.VerdictKind.PASS
    assert lb.stats()["passed"] == 2
    _ = CLIENT_MAC
