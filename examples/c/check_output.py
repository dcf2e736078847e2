#!/usr/bin/env python3
"""Checks what examples/c/pcap_balance wrote: `check_output.py IN.pcap OUT.pcap`.

IN is the pcap `test_lbcore --write-pcap` writes (TCP SYNs to the LVS-DR tutorial VIP
172.27.9.100:81 plus one ARP frame). Every SYN must come out, in order, as a direct-routing
frame: the destination MAC one of the two real servers', the source MAC the balancer's, the
IP packet byte for byte unchanged; the ARP frame must not come out; both servers must get
traffic. Plain-Python pcap reading, no dependencies.
"""
import struct
import sys

LB_MAC = bytes.fromhex("020000000001")
RS_MACS = {bytes.fromhex("020000000091"), bytes.fromhex("020000000092")}


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit(f"{path}: not a pcap file")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    frames, off = [], 24
    while off < len(data):
        _, _, caplen, origlen = struct.unpack(e + "IIII", data[off : off + 16])
        assert caplen == origlen, f"{path}: truncated record at {off}"
        frames.append(data[off + 16 : off + 16 + caplen])
        off += 16 + caplen
    return linktype, frames


def main():
    in_link, inp = read_pcap(sys.argv[1])
    out_link, out = read_pcap(sys.argv[2])
    assert in_link == out_link == 1, (in_link, out_link)
    syns = [f for f in inp if f[12:14] == b"\x08\x00"]
    assert len(syns) == len(inp) - 1 and len(syns) > 0, "input: SYNs plus one ARP frame expected"
    assert len(out) == len(syns), f"{len(out)} frames out, {len(syns)} SYNs in"
    per_server = {}
    for i, (a, b) in enumerate(zip(syns, out)):
        assert b[:6] in RS_MACS, f"frame {i}: destination MAC {b[:6].hex(':')} is no real server's"
        assert b[6:12] == LB_MAC, f"frame {i}: source MAC {b[6:12].hex(':')}"
        assert b[12:] == a[12:], f"frame {i}: IP packet changed (direct routing must keep it)"
        per_server[b[:6].hex(":")] = per_server.get(b[:6].hex(":"), 0) + 1
    assert len(per_server) == 2, f"both real servers should get traffic: {per_server}"
    print(f"ok: {len(out)} frames forwarded by direct routing, per server {per_server}")


if __name__ == "__main__":
    main()
