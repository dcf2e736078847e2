"""Vrrp: the keepalived-compatible router state machine, driven with virtual time."""

from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vrrp import VRRP, VRRPv3

import lbcore
from packets import assert_checksums, t

A, B, VIP = "10.201.0.11", "10.201.0.12", "10.201.0.100"


def drain(router: lbcore.Vrrp) -> list[object]:
    return list(router.poll_actions())


def test_a_lone_router_becomes_master_and_announces_itself() -> None:
    r = lbcore.Vrrp(51, A, priority=150, vips=[f"{VIP}/24"])
    assert r.state == lbcore.VrrpState.INITIALIZE
    assert r.poll_timeout() is None
    r.start(0)
    (changed,) = drain(r)
    assert isinstance(changed, lbcore.StateChanged)
    assert (changed.from_state, changed.to_state) == (lbcore.VrrpState.INITIALIZE, lbcore.VrrpState.BACKUP)
    assert lbcore.StateChanged.__match_args__ == ("from_state", "to_state")
    deadline = r.poll_timeout()
    assert deadline is not None
    # keepalived: 3 x 1 s + (256 - 150) / 256 s skew.
    assert deadline == t(3) + int((256 - 150) / 256 * 1e6) * 1000
    assert abs(r.master_down_interval - 3.4140625) < 1e-6
    r.handle_timeout(deadline - 1)
    assert r.state == lbcore.VrrpState.BACKUP, "nothing is due before the deadline"
    r.handle_timeout(deadline)
    assert r.state == lbcore.VrrpState.MASTER
    assert r.accepts_vip_traffic
    actions = drain(r)
    first = actions[0]
    assert isinstance(first, lbcore.StateChanged)
    assert (first.from_state, first.to_state) == (lbcore.VrrpState.BACKUP, lbcore.VrrpState.MASTER)
    adds = [a for a in actions if isinstance(a, lbcore.AddVip)]
    assert [(a.addr, a.prefix_len) for a in adds] == [(VIP, 24)]
    adverts = [a for a in actions if isinstance(a, lbcore.SendAdvert)]
    assert len(adverts) == 1
    advert = adverts[0]
    assert (advert.dst, advert.priority) == ("224.0.0.18", 150)
    assert advert.frame is not None and advert.frame.endswith(advert.ip) and advert.ip.endswith(advert.vrrp)
    pkt = Ether(advert.frame)
    assert pkt.dst == "01:00:5e:00:00:12"
    assert pkt.src == "00:00:5e:00:01:33", "the virtual router MAC, VRID 51"
    assert pkt[IP].ttl == 255 and pkt[IP].src == A
    v = pkt[VRRPv3]
    assert (v.version, v.vrid, v.priority, v.adv, v.addrlist) == (3, 51, 150, 100, [VIP])
    assert_checksums(pkt)
    garps = [a for a in actions if isinstance(a, lbcore.SendGratuitous)]
    assert len(garps) == 5
    arp = Ether(garps[0].frame)[ARP]
    assert (arp.psrc, arp.pdst, garps[0].vip) == (VIP, VIP, VIP)
    assert r.counters()["became_master"] == 1


def test_two_routers_elect_the_higher_priority_and_fail_over() -> None:
    routers = {
        A: lbcore.Vrrp(51, A, version=2, priority=200, vips=[VIP], auth_pass="secret"),
        B: lbcore.Vrrp(51, B, version=2, priority=100, vips=[VIP], auth_pass="secret"),
    }
    now = 0
    for r in routers.values():
        r.start(now)

    def run_until(end: int) -> None:
        nonlocal now
        while True:
            due = [x for x in (r.poll_timeout() for r in routers.values()) if x is not None]
            now = min(due) if due else end
            if now > end:
                now = end
                return
            for name, r in routers.items():
                r.handle_timeout(now)
                for action in r.poll_actions():
                    if isinstance(action, lbcore.SendAdvert):
                        assert action.frame is not None
                        for other_name, other in routers.items():
                            if other_name != name:
                                other.handle_packet(action.frame, now)

    run_until(t(20))
    assert routers[A].state == lbcore.VrrpState.MASTER
    assert routers[B].state == lbcore.VrrpState.BACKUP
    assert routers[B].master == (A, 200)
    assert routers[B].counters()["adverts_received"] >= 15
    # VRRPv2 adverts carry the password; scapy checks the checksum.
    routers[A].handle_timeout(routers[A].poll_timeout())
    advert = next(a for a in routers[A].poll_actions() if isinstance(a, lbcore.SendAdvert))
    assert advert.frame is not None
    pkt = Ether(advert.frame)
    assert pkt[VRRP].auth1 == int.from_bytes(b"secr", "big")
    assert_checksums(pkt)
    # A tracked failure lowers A below B: B preempts.
    routers[A].shutdown(now)
    for action in routers[A].poll_actions():
        if isinstance(action, lbcore.SendAdvert):
            assert action.priority == 0
            assert action.frame is not None
            routers[B].handle_packet(action.frame, now)
    # A priority-0 advert: B takes over after the skew time only.
    run_until(now + t(1))
    assert routers[B].state == lbcore.VrrpState.MASTER
    assert routers[A].state == lbcore.VrrpState.INITIALIZE


def test_bad_packets_are_counted_by_reason() -> None:
    r = lbcore.Vrrp(51, A, vips=[VIP])
    r.handle_packet(b"\x00" * 10, 0)
    assert r.counters()["rejected"] == {"not_running": 1}
    r.start(0)
    r.handle_packet(b"", 0)
    r.handle_packet(b"\x00" * 60, 0)
    r.handle_packet(b"\x45" + b"\x00" * 39, 0, link=lbcore.Link.IP)
    rejected = r.counters()["rejected"]
    assert sum(rejected.values()) == 4
    assert rejected["truncated"] >= 1
    # A bare VRRP message (as from a raw IPv6 socket) needs both addresses.
    r.handle_packet(b"\x31\x33\x64\x01\x00\x64\x00\x00" + bytes(4), 0, src=B, dst="224.0.0.18",
                    hop_limit=255)
    assert sum(r.counters()["rejected"].values()) == 5


def test_tracks_and_priority() -> None:
    r = lbcore.Vrrp(7, A, priority=100, tracks=[-30, 0], vips=[(VIP, 32)])
    r.start(0)
    assert (r.priority, r.track_ok(0), r.track_ok(1), r.track_ok(2)) == (100, True, True, None)
    r.set_track(0, False, 0)
    assert r.priority == 70
    r.set_priority_delta(10, 0)
    assert r.priority == 80
    r.set_track(1, False, 0)
    assert r.state == lbcore.VrrpState.FAULT and r.fault_condition
    r.set_track(1, True, 0)
    r.interface_down(0)
    assert r.state == lbcore.VrrpState.FAULT
    r.interface_up(0)
    assert r.state == lbcore.VrrpState.BACKUP
    assert repr(r) == "Vrrp(vrid=7, state=Backup, priority=80)"
