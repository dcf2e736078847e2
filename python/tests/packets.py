"""Shared helpers of the tests: packet builders (scapy) and a checksum oracle (scapy
recomputes every checksum from scratch and must find ours)."""

from __future__ import annotations

import socket
import struct
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw


CLIENT_MAC = "02:cc:00:00:00:01"
LB_MAC = "02:1b:00:00:00:01"
GW_MAC = "02:99:00:00:00:01"
RS1_MAC = "02:00:00:00:00:0a"
RS2_MAC = "02:00:00:00:00:0b"
RS3_MAC = "02:00:00:00:00:0c"

SEC = 1_000_000_000


def t(secs: float) -> int:
    """Virtual time: `secs` seconds, in nanoseconds."""
    return int(secs * SEC)


def ip_layer(src: str, dst: str) -> Packet:
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def tcp(src: str, sport: int, dst: str, dport: int, flags: str = "S", payload: bytes = b"",
        eth: bool = True) -> bytes:
    """A TCP segment, as an Ethernet frame (client -> balancer) or a bare IP packet."""
    pkt: Packet = ip_layer(src, dst) / TCP(sport=sport, dport=dport, flags=flags, seq=1000,
                                            ack=1 if "A" in flags else 0)
    if payload:
        pkt = pkt / Raw(payload)
    if eth:
        pkt = Ether(src=CLIENT_MAC, dst=LB_MAC) / pkt
    return bytes(pkt)


def udp(src: str, sport: int, dst: str, dport: int, payload: bytes = b"q", eth: bool = True) -> bytes:
    pkt: Packet = ip_layer(src, dst) / UDP(sport=sport, dport=dport) / Raw(payload)
    if eth:
        pkt = Ether(src=CLIENT_MAC, dst=LB_MAC) / pkt
    return bytes(pkt)


def parse(data: bytes, eth: bool = True) -> Packet:
    """Parses an output packet with scapy."""
    if eth:
        return Ether(data)
    return IPv6(data) if data[0] >> 4 == 6 else IP(data)


def assert_checksums(pkt: Packet) -> None:
    """Every checksum in `pkt` (IPv4 header, TCP, UDP, ICMP, of inner packets too) equals the
    one scapy computes from scratch. A UDP checksum of 0 over IPv4 means "none" (RFC 768) and
    is accepted as such."""
    fresh = pkt.__class__(bytes(pkt))
    for layer in _layers(fresh):
        for name in _checksum_fields(layer):
            setattr(layer, name, None)  # scapy computes a None checksum when building
    rebuilt = fresh.__class__(bytes(fresh))
    ours = _checksums(pkt)
    scapys = _checksums(rebuilt)
    for i, (name, value) in enumerate(ours):
        if name == "UDP" and value == 0 and i > 0 and ours[i - 1][0] == "IP":
            scapys[i] = (name, 0)
    assert ours == scapys, f"checksums differ: ours {ours}, scapy {scapys}"
    assert ours, "no checksum to compare"


def _checksum_fields(layer: Packet) -> list[str]:
    return [f.name for f in layer.fields_desc if f.name in ("chksum", "cksum")]


def _checksums(pkt: Packet) -> list[tuple[str, int]]:
    return [(type(layer).__name__, layer.getfieldval(name))
            for layer in _layers(pkt) for name in _checksum_fields(layer)]


def _layers(pkt: Packet) -> list[Packet]:
    out = []
    layer: Any = pkt
    while layer and not isinstance(layer, Raw):
        out.append(layer)
        layer = layer.payload
    return out


def l3(pkt: Packet) -> Any:
    return pkt[IPv6] if IPv6 in pkt else pkt[IP]


def l4(pkt: Packet) -> Any:
    for proto in (TCP, UDP, ICMP):
        if proto in pkt:
            return pkt[proto]
    raise AssertionError(f"no transport layer in {pkt!r}")


def flow(pkt: Packet) -> tuple[str, int, str, int]:
    """(src, sport, dst, dport) of the outermost IP packet and its transport."""
    ip = l3(pkt)
    tr = l4(pkt)
    return (ip.src, tr.sport, ip.dst, tr.dport)


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def fast_tcp(src: str, sport: int, dst: str, dport: int, flags: int) -> bytes:
    """An Ethernet + IPv4 + TCP frame like `tcp`, without scapy (which takes ~0.5 ms per
    packet): for tests that need many thousands of packets."""
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, 1 if flags & 0x10 else 0, 5 << 4, flags,
                      8192, 0, 0)
    seg = seg[:16] + struct.pack("!H", _sum16(s + d + struct.pack("!BBH", 0, 6, 20) + seg)) + seg[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, s, d)
    hdr = hdr[:10] + struct.pack("!H", _sum16(hdr)) + hdr[12:]
    return bytes.fromhex(LB_MAC.replace(":", "")) + bytes.fromhex(CLIENT_MAC.replace(":", "")) \
        + b"\x08\x00" + hdr + seg
