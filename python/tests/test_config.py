"""from_keepalived_conf / from_ipvsadm_rules: configuration text into Service and Dest values."""

from __future__ import annotations

import pytest

import lbcore
from packets import LB_MAC, parse, t, tcp

KEEPALIVED = """\
! LVS-DR director (MASTER), as in the classic LVS + keepalived tutorials.
global_defs {
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        172.27.9.100
    }
}

virtual_server 172.27.9.100 81 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    protocol TCP

    real_server 172.27.9.91 81 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
            connect_port 81
        }
    }
    real_server 172.27.9.92 81 {
        weight 2
    }
}
"""

RULES = """\
-A -t 172.27.9.100:81 -s wrr -p 50
-a -t 172.27.9.100:81 -r 172.27.9.91:81 -g -w 1
-a -t 172.27.9.100:81 -r 172.27.9.92:81 -g -w 2
"""

MACS = {"172.27.9.91": "02:00:00:00:00:91", "172.27.9.92": "02:00:00:00:00:92"}


@pytest.mark.parametrize("source", ["keepalived", "ipvsadm"])
def test_a_configuration_loads_into_a_balancer(source: str) -> None:
    if source == "keepalived":
        config = lbcore.from_keepalived_conf(KEEPALIVED)
    else:
        config = lbcore.from_ipvsadm_rules(RULES)
    (vs,) = config["virtual_servers"]
    svc = vs["service"]
    assert svc == lbcore.Service.tcp("172.27.9.100", 81, scheduler="wrr", persistence=50)
    assert [(d.addr, d.port, d.weight, d.forward) for d in vs["dests"]] == [
        ("172.27.9.91", 81, 1, lbcore.Forward.DR),
        ("172.27.9.92", 81, 2, lbcore.Forward.DR),
    ]
    lb = lbcore.Balancer(mac=LB_MAC)
    lb.add_service(svc)
    for dest in vs["dests"]:
        # keepalived finds the servers' MACs by ARP; a lab supplies them.
        with pytest.raises(lbcore.DirectRoutingNeedsMacError):
            lb.add_dest(svc, dest)
        lb.add_dest(svc, dest.replace(mac=MACS[dest.addr]))
    assert "TCP  172.27.9.100:81 wrr persistent 50" in lb.ipvsadm()
    verdict, out = lb.process(tcp("192.0.2.1", 5000, "172.27.9.100", 81, "S"), t(1))
    assert verdict.kind == lbcore.VerdictKind.FORWARD
    assert parse(out).dst in MACS.values()


def test_vrrp_instances_come_back_as_plain_data() -> None:
    config = lbcore.from_keepalived_conf(KEEPALIVED, file="/etc/keepalived/keepalived.conf")
    (vi,) = config["vrrp_instances"]
    assert (vi["name"], vi["interface"], vi["vrid"], vi["priority"], vi["version"]) == ("VI_1", "eth0", 51, 100, 2)
    assert vi["start_state"] == lbcore.VrrpState.MASTER
    assert vi["vips"] == ["172.27.9.100/32"]
    assert vi["origin"] == "/etc/keepalived/keepalived.conf:6"
    # Enough to build the router, given the interface's address.
    router = lbcore.Vrrp(vi["vrid"], "172.27.9.11", version=vi["version"], priority=vi["priority"],
                         vips=vi["vips"], start_state=vi["start_state"], auth_pass="1111")
    router.start(0)
    assert router.state == lbcore.VrrpState.BACKUP


def test_errors_are_reported_with_file_and_line() -> None:
    with pytest.raises(lbcore.ConfigSyntaxError) as info:
        lbcore.from_ipvsadm_rules("-A -t 172.27.9.100:81 -s fastest\n-a -t 10.0.0.1:80 -r nowhere -g\n",
                                  file="bad.rules")
    diags = info.value.diagnostics
    assert len(diags) >= 2
    assert diags[0].startswith("bad.rules:1: ")
    assert any(d.startswith("bad.rules:2: ") for d in diags)
    assert isinstance(info.value, lbcore.LbError)
    with pytest.raises(lbcore.ConfigSyntaxError) as info:
        lbcore.from_keepalived_conf("virtual_server 10.0.0.1 80 {\n  lb_algo nonsense\n}\n")
    assert all(d.startswith("keepalived.conf:") for d in info.value.diagnostics)
    with pytest.raises(lbcore.ConfigSyntaxError, match="include"):
        lbcore.from_keepalived_conf("include /etc/keepalived/*.conf\n")
