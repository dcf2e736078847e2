"""Throughput of Balancer.process_batch from Python: 64-byte established-flow frames.

A DR service (wlc, 8 real servers) with FLOWS established TCP connections; the script sends
ACK segments of those flows, 64-byte Ethernet frames (14 + 20 + 20 + 10 bytes of payload),
in batches of BATCH packets through ``process_batch``, for SECONDS seconds, and prints
packets per second. Only the call is timed: the frames are built once, up front.

    python python/bench/bench_batch.py [--flows 1000] [--batch 256] [--seconds 3]

Goal (issue 6): at least 2 million packets/s on one core.
"""

from __future__ import annotations

import argparse
import gc
import platform
import struct
import sys
import time

import lbcore

VIP = (192, 0, 2, 10)
LB_MAC = bytes.fromhex("021b00000001")
CLIENT_MAC = bytes.fromhex("02cc00000001")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(client: tuple[int, int, int, int], sport: int, flags: int, payload: bytes = b"") -> bytes:
    """An Ethernet + IPv4 + TCP frame client:sport -> VIP:80 with valid checksums."""
    src, dst = bytes(client), bytes(VIP)
    tcp_len = 20 + len(payload)
    tcp = struct.pack("!HHIIBBHHH", sport, 80, 1000, 1, 5 << 4, flags, 64240, 0, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, tcp_len)
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 1, 0, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return LB_MAC + CLIENT_MAC + b"\x08\x00" + ip + tcp


def setup(flows: int) -> tuple[lbcore.Balancer, list[bytes]]:
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=max(1 << 16, 2 * flows))
    svc = lbcore.Service.tcp(".".join(map(str, VIP)), 80, scheduler="wlc")
    lb.add_service(svc)
    for i in range(8):
        lb.add_dest(svc, lbcore.Dest(f"10.0.0.{i + 1}", 80, forward=lbcore.Forward.DR,
                                     mac=f"02:00:00:00:00:{i + 1:02x}"))
    clients = [((198, 51, 100, 1 + i // 50000), 1024 + i % 50000) for i in range(flows)]
    syns = [frame(c, p, 0x02) for c, p in clients]
    for i in range(0, flows, 4096):
        for verdict, _ in lb.process_batch(syns[i:i + 4096], 1):
            assert verdict.kind == lbcore.VerdictKind.FORWARD
    acks = [frame(c, p, 0x10, b"0123456789") for c, p in clients]
    assert all(len(a) == 64 for a in acks)
    return lb, acks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()

    lb, acks = setup(args.flows)
    # The batches cycle through the flows.
    pool = acks * max(1, (args.batch * 64) // len(acks) + 1)
    batches = [pool[i:i + args.batch] for i in range(0, len(pool) - args.batch + 1, args.batch)]
    now = 2_000_000_000
    # Warm up, and check the verdicts once.
    for verdict, out in lb.process_batch(batches[0], now):
        assert verdict.kind == lbcore.VerdictKind.FORWARD and len(out) == 64

    packets, calls = 0, 0
    begin = time.perf_counter()
    deadline = begin + args.seconds
    process_batch = lb.process_batch
    while True:
        for batch in batches:
            process_batch(batch, now)
            packets += len(batch)
        calls += len(batches)
        elapsed = time.perf_counter() - begin
        if elapsed >= deadline - begin:
            break
    pps = packets / elapsed
    stats = lb.stats()
    assert stats["dropped"] == 0 and stats["connections"] == args.flows
    print(f"lbcore {lbcore.__version__}, Python {platform.python_version()}, {platform.machine()}, "
          f"gc {'on' if gc.isenabled() else 'off'}")
    print(f"flows={args.flows} batch={args.batch} frames=64B: {packets} packets in {elapsed:.2f} s "
          f"({calls} calls)")
    print(f"{pps:,.0f} packets/s  ({1e9 / pps:.0f} ns/packet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
