"""A test lab in a script: LVS-DR with wlc and persistence, clients built with scapy, a real
server going down, and the ipvsadm table along the way.

    python examples/python/lab.py

Needs the lbcore package (``maturin develop -m python/Cargo.toml``) and scapy. The time is
virtual: every call is given ``now`` in nanoseconds, so the run is the same every time. CI
runs this script; it checks what it prints.
"""

from __future__ import annotations

from collections import Counter

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import lbcore

SEC = 1_000_000_000
LB_MAC = "02:1b:00:00:00:01"
ROUTER_MAC = "02:aa:00:00:00:01"
VIP = "10.10.0.100"
SERVERS = {  # address: (MAC, weight)
    "10.10.1.1": ("02:00:00:00:01:01", 3),
    "10.10.1.2": ("02:00:00:00:01:02", 2),
    "10.10.1.3": ("02:00:00:00:01:03", 1),
}
BY_MAC = {mac: addr for addr, (mac, _) in SERVERS.items()}


def segment(client: str, port: int, flags: str, data: bytes = b"") -> bytes:
    """A client's TCP segment to the VIP, as the router in front of the balancer sends it."""
    pkt = Ether(src=ROUTER_MAC, dst=LB_MAC) / IP(src=client, dst=VIP) / TCP(sport=port, dport=80, flags=flags)
    if data:
        pkt = pkt / Raw(data)
    return bytes(pkt)


def connect(lb: lbcore.Balancer, client: str, port: int, now: int) -> str | None:
    """Opens a connection (SYN, ACK, request): the real server it reached, or None."""
    replies = lb.process_batch(
        [segment(client, port, "S"), segment(client, port, "A"),
         segment(client, port, "PA", b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")],
        now,
    )
    servers = set()
    for verdict, out in replies:
        if verdict.kind != lbcore.VerdictKind.FORWARD:
            return None
        frame = Ether(out)
        # DR: only the MACs changed; the IP packet still says client -> VIP.
        assert frame[IP].dst == VIP and frame.src == LB_MAC
        servers.add(BY_MAC[frame.dst])
    assert len(servers) == 1, "one connection, one server"
    return servers.pop()


def main() -> None:
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=4096)
    web = lbcore.Service.tcp(VIP, 80, scheduler=lbcore.Scheduler.WLC, persistence=300)
    lb.add_service(web)
    for addr, (mac, weight) in SERVERS.items():
        lb.add_dest(web, lbcore.Dest(addr, 80, weight=weight, forward=lbcore.Forward.DR, mac=mac))

    # 60 clients connect once each, at t = 1 s.
    clients = [f"192.0.2.{i}" for i in range(1, 61)]
    home = {c: connect(lb, c, 40000, 1 * SEC) for c in clients}
    split = Counter(home.values())
    print("first connections per server (weights 3:2:1):", dict(sorted(split.items())))
    assert split == {"10.10.1.1": 30, "10.10.1.2": 20, "10.10.1.3": 10}, split

    # Persistence: every client's next connections land on the same server.
    for port in (40001, 40002):
        for c in clients:
            assert connect(lb, c, port, 2 * SEC) == home[c]
    print("persistence: 120 more connections, every one to its client's server")
    print()
    print(lb.ipvsadm())

    # 10.10.1.2 goes down: the health checker takes it out of the service.
    lb.remove_dest(web, "10.10.1.2", 80)
    print("10.10.1.2 is down and removed")
    orphaned = [c for c in clients if home[c] == "10.10.1.2"]
    # Packets of its open connections are dropped: those connections are gone with it...
    verdict, _ = lb.process(segment(orphaned[0], 40000, "PA", b"more"), 3 * SEC)
    assert verdict.kind == lbcore.VerdictKind.DROP and verdict.reason == "dest_unavailable"
    # ...and its clients' new connections are scheduled again, onto the survivors.
    moved = Counter(connect(lb, c, 41000, 3 * SEC) for c in orphaned)
    print(f"its {len(orphaned)} clients reconnect to:", dict(sorted(moved.items())))
    assert set(moved) <= {"10.10.1.1", "10.10.1.3"} and sum(moved.values()) == len(orphaned)
    for c in clients:
        if c not in orphaned:
            assert connect(lb, c, 41000, 3 * SEC) == home[c], "the others stay where they were"

    # Ten minutes later every connection and template has expired.
    now = 3 * SEC
    while now < 903 * SEC + 400 * SEC:
        now += 10 * SEC
        lb.expire(now, 4096)
    stats = lb.stats()
    print()
    print(lb.ipvsadm(stats=True))
    print(f"packets: {stats['rx']} in, {stats['forwarded']} forwarded, drops {stats['drops']}; "
          f"{stats['conns_created']} connections, {stats['templates_created']} templates, "
          f"{stats['connections']} left in the table")
    assert stats["connections"] == 0
    assert stats["drops"] == {"dest_unavailable": 1}


if __name__ == "__main__":
    main()
