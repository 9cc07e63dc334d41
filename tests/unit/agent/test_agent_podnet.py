"""The routed pod link's commands (no namespace touched): both ends' MACs, routes and neighbours."""

from __future__ import annotations

from pyk3s.agent.cni.bridge import BridgeConfig, pod_link_group
from pyk3s.agent.cni.podnet import _host_side, _pod_side, link_macs

DUAL = BridgeConfig("pkb0", "10.42.7.0/24", ("10.42.0.0/16", "fd42::/56"), ("10.43.0.0/16",),
                    extra_pod_cidrs=("fd42:0:0:7::/64",))


def test_link_macs_are_fixed_by_the_uid_local_and_unicast() -> None:
    node, pod = link_macs("uid-1")
    assert link_macs("uid-1") == (node, pod) and node != pod and link_macs("uid-2")[0] != node
    for mac in (node, pod):
        first = int(mac.split(":")[0], 16)
        assert first & 0b10 and not first & 0b1 and len(mac.split(":")) == 6


def test_each_node_has_its_own_pod_link_group() -> None:
    assert DUAL.link_group == pod_link_group("pkb0") != pod_link_group("pkb1")
    assert pod_link_group("pkb0") > 0  # never the default group 0 of every other link


def test_node_routes_each_pod_address_into_its_veth_with_the_gateway_as_source() -> None:
    addrs = [("10.42.7.5", "10.42.7.1", 24, False), ("fd42:0:0:7::5", "fd42:0:0:7::1", 64, True)]
    host = _host_side("pkvx", DUAL, addrs, "0e:00:00:00:00:02")
    assert "route replace 10.42.7.5/32 dev pkvx src 10.42.7.1 proto 202" in host
    assert "route replace fd42:0:0:7::5/128 dev pkvx src fd42:0:0:7::1 proto 202" in host
    assert "neigh replace 10.42.7.5 lladdr 0e:00:00:00:00:02 dev pkvx nud permanent" in host
    pod = _pod_side("eth0", addrs, "0e:00:00:00:00:01")
    assert pod == ["neigh replace 10.42.7.1 lladdr 0e:00:00:00:00:01 dev eth0 nud permanent",
                   "route replace default via 10.42.7.1 dev eth0 onlink",
                   "neigh replace fd42:0:0:7::1 lladdr 0e:00:00:00:00:01 dev eth0 nud permanent",
                   "route replace default via fd42:0:0:7::1 dev eth0 onlink"]
