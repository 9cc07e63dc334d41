"""What the VXLAN and host-gw backends plan for their peers, and what the kernel is asked (pure)."""

from __future__ import annotations

import pytest

from pyk3s.agent.overlay.backend import LocalNode
from pyk3s.agent.overlay.hostgw import HostGwBackend
from pyk3s.agent.overlay.model import FdbEntry, Neighbour, Peer, PodRoute, Reach
from pyk3s.agent.overlay.underlay import Underlay, choose_underlay
from pyk3s.agent.overlay.vxlan import VxlanBackend, device_names

LOCAL = LocalNode(name="a", created="2026-01-01T00:00:00Z", families=(4,), pod_cidrs={4: "10.42.0.0/24"},
                  cluster_cidrs=("10.42.0.0/16",), underlay=Underlay("eth0", 1500, {4: "172.31.1.1"}))
DUAL = LocalNode(name="a", created="2026-01-01T00:00:00Z", families=(4, 6),
                 pod_cidrs={4: "10.42.0.0/24", 6: "fd42::/64"}, cluster_cidrs=("10.42.0.0/16", "fd42::/56"),
                 underlay=Underlay("eth0", 1500, {4: "172.31.1.1", 6: "fd31::1"}))


def vxlan(own: str = "02:00:00:00:00:0a") -> VxlanBackend:
    b = VxlanBackend("pyk3s0")
    b.macs, b.made = {4: own}, ["pyk3s.1"]   # as after prepare() and activate() with peers
    return b


def peer(name: str, cidr: str, ip: str, mac: str, created: str = "2026-01-02T00:00:00Z", kind: str = "vxlan") -> Peer:
    return Peer(name=name, family=4, pod_cidr=cidr, public_ip=ip, backend_type=kind, vtep_mac=mac, created=created)


def test_vxlan_entries_per_peer_as_flannel_programs_them() -> None:
    b = vxlan()
    peers = {4: [peer("b", "10.42.1.0/24", "172.31.1.2", "02:00:00:00:00:0b"),
                 peer("c", "10.42.2.0/24", "172.31.2.3", "02:00:00:00:00:0c")]}
    reach = {"172.31.1.2": Reach(True, "eth0"), "172.31.2.3": Reach(True, "eth0", via="172.31.1.253")}
    plan = b.plan(LOCAL, peers, reach)
    assert plan.problems == ()
    assert plan.routed == ("b", "c")
    assert PodRoute("10.42.1.0/24", "10.42.1.0", "pyk3s.1", onlink=True) in plan.routes
    assert Neighbour("pyk3s.1", "10.42.2.0", "02:00:00:00:00:0c") in plan.neighbours
    assert FdbEntry("pyk3s.1", "02:00:00:00:00:0c", "172.31.2.3") in plan.fdb


def test_vxlan_makes_no_device_without_peers() -> None:
    b = VxlanBackend("pyk3s0")
    b.macs = {4: "02:00:00:00:00:0a"}
    plan = b.plan(LOCAL, {4: [peer("b", "10.42.1.0/24", "172.31.1.2", "02:00:00:00:00:0b")]},
                  {"172.31.1.2": Reach(True)})
    assert plan.routes == frozenset() and b.devices() == ()


def test_vxlan_unreachable_vtep_is_left_out_with_a_problem() -> None:
    plan = vxlan().plan(LOCAL, {4: [peer("b", "10.42.1.0/24", "198.51.100.7", "02:00:00:00:00:0b")]},
                        {"198.51.100.7": Reach(False, error="Network is unreachable")})
    assert plan.fdb == frozenset() and plan.routed == ()
    [p] = plan.problems
    assert (p.node, p.reason) == ("b", "VTEPUnreachable")
    assert "198.51.100.7" in p.message and "Network is unreachable" in p.message


def test_vxlan_duplicate_mac_the_older_node_keeps_it() -> None:
    mac = "02:00:00:00:00:0b"
    peers = {4: [peer("old", "10.42.1.0/24", "172.31.1.2", mac, created="2026-01-02T00:00:00Z"),
                 peer("new", "10.42.2.0/24", "172.31.1.3", mac, created="2026-01-03T00:00:00Z")]}
    reach = {"172.31.1.2": Reach(True), "172.31.1.3": Reach(True)}
    plan = vxlan().plan(LOCAL, peers, reach)
    assert plan.routed == ("old",)
    assert [(p.node, p.reason) for p in plan.problems] == [("new", "DuplicateVTEPMAC")]
    assert "node old already uses" in plan.problems[0].message
    # this node's own MAC, taken by a newer peer, stays this node's
    plan = vxlan(own=mac).plan(LOCAL, {4: peers[4][1:]}, reach)
    assert [(p.node, p.reason) for p in plan.problems] == [("new", "DuplicateVTEPMAC")]


def test_vxlan_peer_on_another_backend_is_a_mismatch() -> None:
    plan = vxlan().plan(LOCAL, {4: [peer("h", "10.42.1.0/24", "172.31.1.2", "", kind="host-gw")]}, {})
    assert [(p.node, p.reason) for p in plan.problems] == [("h", "FlannelBackendMismatch")]


def test_vxlan_mtu_is_the_underlay_less_the_overhead_per_family() -> None:
    b = VxlanBackend("pyk3s0")
    assert b.pod_mtu(LOCAL.underlay, (4,)) == 1450
    assert b.pod_mtu(DUAL.underlay, (4, 6)) == 1430          # the IPv6 tunnel's 70 bytes decide
    assert b.pod_mtu(Underlay("eth0", 1500, {4: "172.31.1.1"}), (4, 6)) == 1450   # both over IPv4


@pytest.mark.asyncio
async def test_vxlan_mtu_too_small_is_a_problem_and_no_device() -> None:
    b = VxlanBackend("pyk3s0")
    small = LocalNode(name="a", created="", families=(4, 6), pod_cidrs=DUAL.pod_cidrs, cluster_cidrs=DUAL.cluster_cidrs,
                      underlay=Underlay("eth0", 1300, {4: "172.31.1.1", 6: "fd31::1"}))
    ann, problems = await b.prepare(small)
    assert ann == {} and b.devices() == ()
    [p] = problems
    assert p.reason == "OverlayMTUTooSmall" and "MTU 1300" in p.message and "1280" in p.message


def test_device_names_follow_the_bridge() -> None:
    assert device_names("pyk3s0") == {4: "pyk3s.1", 6: "pyk3s-v6.1"}
    names = device_names("pkb0123456789")
    assert all(len(n) <= 15 for n in names.values()) and names[4] != names[6]


def test_host_gw_routes_peers_on_the_link_and_refuses_the_others() -> None:
    peers = {4: [peer("b", "10.42.1.0/24", "172.31.1.2", "", kind="host-gw"),
                 peer("far", "10.42.2.0/24", "172.31.2.3", "", kind="host-gw"),
                 peer("gone", "10.42.3.0/24", "172.31.9.9", "", kind="host-gw")]}
    reach = {"172.31.1.2": Reach(True, "eth0"), "172.31.2.3": Reach(True, "eth0", via="172.31.1.253"),
             "172.31.9.9": Reach(False, error="Network is unreachable")}
    plan = HostGwBackend().plan(LOCAL, peers, reach)
    assert plan.routed == ("b",)
    assert PodRoute("10.42.1.0/24", "172.31.1.2") in plan.routes
    assert sorted((p.node, p.reason) for p in plan.problems) == [("far", "HostGwPeerNotOnLink"),
                                                                  ("gone", "HostGwPeerUnreachable")]
    assert "172.31.1.253" in next(p.message for p in plan.problems if p.node == "far")


LINKS = [{"ifname": "lo", "mtu": 65536, "addr_info": [{"local": "127.0.0.1", "scope": "host"}]},
         {"ifname": "eth0", "mtu": 1500, "addr_info": [{"local": "192.0.2.2", "scope": "global"},
                                                       {"local": "fe80::1", "scope": "link"}]},
         {"ifname": "eth1", "mtu": 9000, "addr_info": [{"local": "172.31.1.5", "scope": "global"},
                                                       {"local": "172.31.1.6", "scope": "global"},
                                                       {"local": "fd31::5", "scope": "global"}]}]


@pytest.mark.parametrize(("iface", "node_ips", "want"), [
    ("", [], Underlay("eth0", 1500, {4: "192.0.2.2"})),                             # default route's
    ("", ["172.31.1.6"], Underlay("eth1", 9000, {4: "172.31.1.6", 6: "fd31::5"})),    # the node IP's
    ("eth1", [], Underlay("eth1", 9000, {4: "172.31.1.5", 6: "fd31::5"})),            # --flannel-iface
    ("", ["127.0.0.1"], Underlay("", 0)),                                            # no peers to reach
], ids=["default-route", "node-ip", "flannel-iface", "loopback-node"])
def test_underlay_choice(iface: str, node_ips: list[str], want: Underlay) -> None:
    assert choose_underlay(LINKS, iface, node_ips, "eth0") == want


def test_underlay_errors_name_the_flag() -> None:
    from pyk3s.agent.overlay.underlay import UnderlayError

    with pytest.raises(UnderlayError, match="--flannel-iface eth7"):
        choose_underlay(LINKS, "eth7", [], "eth0")
    with pytest.raises(UnderlayError, match="--flannel-iface or --node-ip"):
        choose_underlay(LINKS, "", [], "")
