"""Peers from Node objects, flannel's annotations (pure)."""

from __future__ import annotations

from typing import Any

from pyk3s.agent.overlay.model import peers_from_nodes, vtep_mac

F = "flannel.alpha.coreos.com/"


def node(name: str, cidrs: list[str], ann: dict[str, str] | None = None, created: str = "2026-01-01T00:00:00Z",
         ) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": ann or {}, "creationTimestamp": created},
            "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs} if cidrs else {}}


def vx(ip: str, mac: str, ip6: str = "", mac6: str = "") -> dict[str, str]:
    out = {F + "backend-type": "vxlan", F + "public-ip": ip, F + "backend-data": f'{{"VNI":1,"VtepMAC":"{mac}"}}'}
    if ip6:
        out |= {F + "public-ipv6": ip6, F + "backend-v6-data": f'{{"VNI":1,"VtepMAC":"{mac6}"}}'}
    return out


def test_each_family_reads_its_own_annotations() -> None:
    nodes = [node("a", ["10.42.0.0/24", "fd42::/64"]),
             node("b", ["10.42.1.0/24", "fd42:0:0:1::/64"], vx("172.31.1.2", "02:00:00:00:00:0B", "fd31::2", "02:00:00:00:06:0b"))]
    v4, p4 = peers_from_nodes(nodes, "a", 4, ["10.42.0.0/16", "fd42::/56"])
    v6, p6 = peers_from_nodes(nodes, "a", 6, ["10.42.0.0/16", "fd42::/56"])
    assert p4 == p6 == []
    assert [(p.name, p.pod_cidr, p.public_ip, p.vtep_mac) for p in v4] == [("b", "10.42.1.0/24", "172.31.1.2",
                                                                           "02:00:00:00:00:0b")]
    assert [(p.pod_cidr, p.public_ip, p.vtep_mac) for p in v6] == [("fd42:0:0:1::/64", "fd31::2", "02:00:00:00:06:0b")]


def test_unsafe_pod_cidrs_are_problems_and_not_peers() -> None:
    nodes = [node("a", ["10.42.0.0/24"]), node("evil", ["192.0.2.0/24"]), node("bad", ["not-a-cidr"]),
             node("b", ["10.42.1.0/24"]), node("c", ["10.42.1.0/24"]), node("young", [])]
    peers, problems = peers_from_nodes(nodes, "a", 4, ["10.42.0.0/16"])
    assert peers == []
    reasons = sorted((p.node, p.reason) for p in problems)
    assert reasons == [("b", "PodCIDRConflict"), ("bad", "InvalidPodCIDR"), ("c", "PodCIDRConflict"),
                       ("evil", "PodCIDROutsideCluster")]


def test_vtep_mac_of_backend_data() -> None:
    assert vtep_mac('{"VNI":1,"VtepMAC":"AA:BB:CC:DD:EE:FF"}') == "aa:bb:cc:dd:ee:ff"
    assert vtep_mac("null") == vtep_mac("") == vtep_mac("{broken") == vtep_mac('{"VtepMAC": 5}') == ""
