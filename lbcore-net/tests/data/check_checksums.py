#!/usr/bin/env python3
"""Independent checksum validation of captured packets with scapy: for every IPv4/IPv6 packet
with TCP, UDP or ICMP in each pcap, scapy recomputes the IP header and L4 checksums from
scratch; any mismatch is printed and the exit code is 1. Tunnelled packets (IPIP, GUE) are
checked at both layers. Prints `checked N packets in FILE` per file.

    check_checksums.py FILE.pcap [FILE.pcap...]
"""
import sys

from scapy.all import ICMP, IP, TCP, UDP, IPv6, rdpcap  # type: ignore
from scapy.layers.inet6 import _ICMPv6  # type: ignore


def recomputed(layer):
    """The layer's checksum as scapy computes it from the bytes."""
    raw = bytes(layer)
    clone = layer.__class__(raw)
    del clone.chksum
    return clone.__class__(bytes(clone)).chksum


def check(pkt):
    bad = []
    layers = []
    layer = pkt
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        layers.append(layer)
        layer = layer.payload if hasattr(layer, "payload") else None
    for i, layer in enumerate(layers):
        if isinstance(layer, IP):
            if layer.chksum != recomputed(layer):
                bad.append(f"IPv4 header checksum {layer.chksum:#06x}")
        if isinstance(layer, (TCP, UDP, ICMP, _ICMPv6)):
            # L4 checksums cover a pseudo-header: recompute on the enclosing IP layer.
            ip = layers[i - 1] if i > 0 else None
            if ip is None or not isinstance(ip, (IP, IPv6)):
                continue
            if isinstance(layer, UDP) and layer.chksum == 0 and isinstance(ip, IP):
                continue
            clone = ip.__class__(bytes(ip))
            l4 = clone[layer.__class__]
            want = l4.chksum
            del l4.chksum
            got = clone.__class__(bytes(clone))[layer.__class__].chksum
            # 0x0000 and 0xffff are the two one's-complement encodings of zero and both verify;
            # the kernel's software completion of a partial checksum (skb_checksum_help), and
            # lbd's, which follows it, write 0xffff where scapy computes 0x0000.
            if want != got and {want, got} != {0x0000, 0xFFFF}:
                bad.append(f"{layer.__class__.__name__} checksum {want:#06x}, expected {got:#06x}")
    return bad


def main() -> int:
    failed = 0
    for path in sys.argv[1:]:
        n = 0
        for k, pkt in enumerate(rdpcap(path)):
            if IP not in pkt and IPv6 not in pkt:
                continue
            n += 1
            for b in check(pkt):
                failed += 1
                print(f"{path}: packet {k + 1}: {b}: {pkt.summary()}")
        print(f"checked {n} packets in {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
