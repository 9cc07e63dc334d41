"""Reading NetworkPolicies, Pods and Namespaces; port sets; ipBlock ranges; explanations; the matrix."""

from __future__ import annotations

import ipaddress

import pytest

from pyk3s.netpol import (
    ClusterView,
    PolicyError,
    evaluate,
    fail_closed_policy,
    namespace_info,
    parse_policy,
    pod_info,
)
from pyk3s.netpol.matrix import build_index, reachability, render
from pyk3s.netpol.model import EGRESS, INGRESS, IpBlock, PortSpec
from pyk3s.netpol.ports import ANY, NONE, PortSet, resolve_ports
from pyk3s.netpol.ranges import AddrRange, block_ranges, disjoint, range_text


def pol(spec: dict, ns: str = "x", name: str = "p") -> dict:
    return {"metadata": {"namespace": ns, "name": name}, "spec": spec}


def pod(ns: str, name: str, ip: str, labels: dict | None = None, **extra: object) -> dict:
    return {"metadata": {"namespace": ns, "name": name, "labels": labels or {}},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
                **extra},
            "status": {"phase": "Running", "podIP": ip}}


@pytest.mark.parametrize(("spec", "types"), [
    ({}, {INGRESS}),
    ({"egress": [{}]}, {INGRESS, EGRESS}),
    ({"egress": []}, {INGRESS}),
    ({"policyTypes": ["Egress"], "ingress": [{}]}, {EGRESS}),
])
def test_policy_types_default_as_kube_apiserver(spec: dict, types: set) -> None:
    assert parse_policy(pol(spec)).types == types


def test_selectors_peers_and_ports() -> None:
    p = parse_policy(pol({"podSelector": {"matchLabels": {"app": "db"}, "matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["web"]}]},
        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"r": "w"}}},
                              {"ipBlock": {"cidr": "010.1.0.0/16", "except": ["10.1.2.0/24"]}}],
                     "ports": [{"port": 80}, {"port": "http"}, {"port": 9000, "endPort": 9010, "protocol": "UDP"},
                               {"protocol": "SCTP"}, {"port": "53", "protocol": "UDP"}]}]}))
    assert p.pod_selector.matches({"app": "db"}) and not p.pod_selector.matches({"app": "db", "tier": "web"})
    rule = p.ingress[0]
    assert str(rule.peers[0]) == "namespaces <all> and pods r=w"
    assert rule.peers[1].ip_block == IpBlock(ipaddress.ip_network("10.1.0.0/16"), (ipaddress.ip_network("10.1.2.0/24"),))
    assert rule.ports == (PortSpec("TCP", 80), PortSpec("TCP", "http"), PortSpec("UDP", 9000, 9010), PortSpec("SCTP"),
                          PortSpec("UDP", 53))


@pytest.mark.parametrize(("spec", "field"), [
    ({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]"),
    ({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}]},
     "spec.ingress[0].from[0].ipBlock.except[0]"),
    ({"egress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]}, "spec.egress[0].ports[0].protocol"),
    ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
     "spec.podSelector.matchExpressions[0].operator"),
])
def test_unreadable_policies_name_the_field_and_fail_closed(spec: dict, field: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(pol(spec))
    assert err.value.field == field
    closed = fail_closed_policy(pol(spec), err.value)
    assert closed.error and closed.ingress == () and closed.egress == ()
    cluster = ClusterView([p for p in [pod_info(pod("x", "a", "10.0.0.1")), pod_info(pod("y", "b", "10.0.0.2"))] if p],
                      [namespace_info({"metadata": {"name": "x"}})], [closed])
    if INGRESS in closed.types and closed.pod_selector.everything:
        verdict = evaluate(cluster, cluster.endpoint("y/b"), cluster.endpoint("x/a"), "TCP", 80)
        assert not verdict.allowed and verdict.ingress.failed == ("x/p",)


def test_pod_info_reads_addresses_ports_and_phase() -> None:
    info = pod_info(pod("x", "a", "10.0.0.1", {"app": "a"}))
    assert info is not None and info.ips == ("10.0.0.1",) and info.port_numbers("dns", "UDP") == [53]
    assert info.port_numbers("dns", "TCP") == []
    done = pod("x", "a", "10.0.0.1")
    done["status"]["phase"] = "Succeeded"
    assert pod_info(done) is None
    assert pod_info({**pod("x", "a", ""), "status": {"phase": "Pending"}}) is None
    assert namespace_info({"metadata": {"name": "q"}}).labels == {"kubernetes.io/metadata.name": "q"}


def test_port_sets_merge_and_resolve() -> None:
    a = PortSet.of({6: [(80, 80), (81, 90)], 17: [(53, 53)]})
    assert a.by_proto == ((6, ((80, 90),)), (17, ((53, 53),)))
    assert a.union(PortSet.of({6: [(91, 95)]})).by_proto[0] == (6, ((80, 95),))
    assert a.union(ANY) is ANY and a.union(NONE) is a
    info = pod_info(pod("x", "a", "10.0.0.1"))
    assert str(resolve_ports((PortSpec("TCP", "http"), PortSpec("UDP", "http")), info)) == "8080/TCP"
    assert resolve_ports((PortSpec("TCP", "http"),), None).empty
    assert resolve_ports((), info) is ANY
    assert str(resolve_ports((PortSpec("SCTP"),), None)) == "any/SCTP"


def test_ip_block_ranges_and_disjoint_segments() -> None:
    block = IpBlock(ipaddress.ip_network("10.0.0.0/24"),
                    (ipaddress.ip_network("10.0.0.16/28"), ipaddress.ip_network("10.0.0.128/25")))
    ranges = block_ranges(block)
    assert [range_text(r) for r in ranges] == ["10.0.0.0/28", "10.0.0.32-10.0.0.127"]
    tcp80, udp = PortSet.of({6: [(80, 80)]}), PortSet.of({17: [(0, 65535)]})
    seg = disjoint([(AddrRange(4, 0, 99), tcp80), (AddrRange(4, 50, 149), udp), (AddrRange(4, 150, 160), udp)])
    assert [(r.lo, r.hi, str(p)) for r, p in seg] == [(0, 49, "80/TCP"), (50, 99, "80/TCP,any/UDP"),
                                                      (100, 160, "any/UDP")]


def test_explain_and_matrix_agree() -> None:
    pods = [pod("x", "a", "10.0.0.1", {"app": "a"}), pod("x", "b", "10.0.0.2", {"app": "b"}),
            pod("y", "c", "10.0.0.3", {"app": "c"})]
    policy = parse_policy(pol({"podSelector": {"matchLabels": {"app": "a"}},
                               "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "b"}}}],
                                            "ports": [{"port": "http"}]}]}))
    cluster = ClusterView([p for p in map(pod_info, pods) if p], [namespace_info({"metadata": {"name": n}}) for n in "xy"],
                      [policy], {"192.0.2.1": "n"})
    ok = evaluate(cluster, cluster.endpoint("x/b"), cluster.endpoint("x/a"), "TCP", 8080)
    assert ok.allowed and str(ok.ingress.allowed_by[0]) == "x/p ingress[0] (pods app=b; ports 8080/TCP)"
    miss = evaluate(cluster, cluster.endpoint("x/b"), cluster.endpoint("x/a"), "TCP", 80)
    assert not miss.allowed and miss.ingress.near_misses == (
        "x/p ingress[0] matches the peer (pods app=b) but opens only 8080/TCP",)
    assert "no rule allows it" in "\n".join(miss.lines())
    node = evaluate(cluster, cluster.endpoint("192.0.2.1"), cluster.endpoint("x/a"), "TCP", 80)
    assert node.allowed and "always reaches its own pods" in node.note
    assert not evaluate(cluster, cluster.endpoint("y/c"), cluster.endpoint("x/a"), "ICMP", 0).allowed
    index = build_index(cluster)
    infos = sorted(cluster.pods, key=lambda p: p.key)
    table = reachability(index, infos, "TCP", 8080)
    for (s, d), v in table.items():
        assert v == evaluate(cluster, cluster.endpoint(s), cluster.endpoint(d), "TCP", 8080).allowed
    assert render(infos, table).splitlines()[3].split() == ["y/c", "X", ".", "."]  # row: from, column: to
