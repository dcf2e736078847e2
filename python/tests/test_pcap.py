"""pcap helpers: read_pcap / write_pcap, and replaying a capture through a balancer; files are
written and read back with scapy as the independent side."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

import lbcore
from packets import LB_MAC, RS1_MAC, RS2_MAC, assert_checksums, tcp

VIP = "192.0.2.10"


def test_read_what_scapy_wrote_and_the_reverse(tmp_path: Path) -> None:
    frames = [Ether(tcp("198.51.100.7", 1000 + i, VIP, 80, "S")) for i in range(3)]
    for i, f in enumerate(frames):
        f.time = 1_700_000_000 + i / 4
    wrpcap(str(tmp_path / "in.pcap"), frames)
    link, records = lbcore.read_pcap(tmp_path / "in.pcap")
    assert link == lbcore.Link.ETHERNET
    assert [p for _, p in records] == [bytes(f) for f in frames]
    assert [ts for ts, _ in records] == [1_700_000_000_000_000_000 + i * 250_000_000 for i in range(3)]

    lbcore.write_pcap(str(tmp_path / "out.pcap"), records)
    back = rdpcap(str(tmp_path / "out.pcap"))
    assert [bytes(p) for p in back] == [p for _, p in records]
    assert [int(p.time * 1e9) for p in back] == [ts for ts, _ in records]

    # Bare IP packets: link type raw IP.
    lbcore.write_pcap(tmp_path / "ip.pcap", [(5, bytes(IP(dst=VIP) / TCP()))], lbcore.Link.IP)
    assert lbcore.read_pcap(tmp_path / "ip.pcap")[0] == lbcore.Link.IP
    assert IP in rdpcap(str(tmp_path / "ip.pcap"))[0]


def test_replay_rewrites_a_capture(tmp_path: Path) -> None:
    lb = lbcore.Balancer(mac=LB_MAC)
    svc = lbcore.Service.tcp(VIP, 80, scheduler="rr")
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("10.0.0.1", 80, forward=lbcore.Forward.DR, mac=RS1_MAC))
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.DR, mac=RS2_MAC))
    capture = []
    for i in range(4):
        for flags in ("S", "A", "PA"):
            capture.append(Ether(tcp("198.51.100.7", 2000 + i, VIP, 80, flags, b"x" if flags == "PA" else b"")))
    capture.append(Ether(tcp("198.51.100.7", 9, "203.0.113.1", 80, "S")))  # not for us
    for i, p in enumerate(capture):
        p.time = 100 + i
    wrpcap(str(tmp_path / "in.pcap"), capture)
    result = lb.replay_pcap(tmp_path / "in.pcap", tmp_path / "out.pcap")
    assert result == {"packets": 13, "forwarded": 12, "dropped": 0, "passed": 1, "consumed": 0}
    out = rdpcap(str(tmp_path / "out.pcap"))
    assert len(out) == 12
    for p in out:
        assert p.src == LB_MAC
        assert_checksums(p)
    # Each connection's three packets went to one server, and rr alternated.
    servers = [p.dst for p in out]
    assert servers == [RS2_MAC] * 3 + [RS1_MAC] * 3 + [RS2_MAC] * 3 + [RS1_MAC] * 3
    assert [float(p.time) for p in out] == [float(p.time) for p in capture[:12]]
    # The capture's timestamps are the balancer's time.
    assert {c["expires"] // 10**9 for c in lb.conns()} == {100 + 2 + 900, 100 + 5 + 900, 100 + 8 + 900,
                                                           100 + 11 + 900}


def test_unreadable_files_raise_pcap_error(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"not a pcap file at all, no, not at all")
    (tmp_path / "ng").write_bytes(bytes.fromhex("0a0d0d0a") + bytes(40))
    (tmp_path / "short").write_bytes(b"\xd4\xc3")
    truncated = tmp_path / "truncated"
    lbcore.write_pcap(truncated, [(1, b"abcdef")])
    truncated.write_bytes(truncated.read_bytes()[:-2])
    for name, match in (("junk", "magic"), ("ng", "pcapng"), ("short", "header"), ("truncated", "truncated")):
        with pytest.raises(lbcore.PcapError, match=match):
            lbcore.read_pcap(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        lbcore.read_pcap(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        lbcore.Balancer().replay_pcap(tmp_path / "missing")
