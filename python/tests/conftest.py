"""Fixtures shared by the tests (helpers live in packets.py)."""

from __future__ import annotations

import pytest

import lbcore
from packets import LB_MAC, RS1_MAC, RS2_MAC


@pytest.fixture
def dr() -> tuple[lbcore.Balancer, lbcore.Service]:
    """A DR service 192.0.2.10:80 (rr) with two real servers, 10.0.0.1 and 10.0.0.2."""
    lb = lbcore.Balancer(mac=LB_MAC, conn_capacity=1024)
    svc = lbcore.Service.tcp("192.0.2.10", 80, scheduler="rr")
    lb.add_service(svc)
    lb.add_dest(svc, lbcore.Dest("10.0.0.1", 80, forward=lbcore.Forward.DR, mac=RS1_MAC))
    lb.add_dest(svc, lbcore.Dest("10.0.0.2", 80, forward=lbcore.Forward.DR, mac=RS2_MAC))
    return lb, svc
