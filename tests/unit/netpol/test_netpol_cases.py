"""The upstream e2e truth tables, answered without packets: by the evaluator (``pyk3s netpol explain``)
and by the allow index the agent programs (``pyk3s netpol matrix``, and the kernel's lookups)."""

from __future__ import annotations

import copy
import ipaddress

import pytest
from netpol_cases import CASES, PODS, Case, Reachability, model_namespaces, model_pods

from pyk3s.netpol import AllowIndex, ClusterView, evaluate, namespace_info, parse_policy, pod_info
from pyk3s.netpol.model import PROTOCOLS

IPS = {key: f"10.42.0.{10 + i}" for i, key in enumerate(PODS)}
NODES = {key: f"node-{i % 3}" for i, key in enumerate(PODS)}


def _observe(index: AllowIndex, cluster: ClusterView, protocol: str, port: int) -> tuple[dict, dict]:
    by_index, by_eval = {}, {}
    for s in PODS:
        for d in PODS:
            if protocol == "ICMP":
                by_index[(s, d)] = index.allows(IPS[s], IPS[d], 1, 0)
                # the evaluator speaks of ports; ICMP is what a rule without ports allows
                by_eval[(s, d)] = by_index[(s, d)]
                continue
            by_index[(s, d)] = index.allows(IPS[s], IPS[d], PROTOCOLS[protocol], port)
            by_eval[(s, d)] = evaluate(cluster, cluster.endpoint(s), cluster.endpoint(d), protocol, port).allowed
    return by_index, by_eval


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_case_tables(case: Case) -> None:
    namespaces = model_namespaces()
    pods = model_pods(IPS, NODES)
    policies: dict[tuple[str, str], dict] = {}
    whole = AllowIndex()
    per_node = {n: AllowIndex(n) for n in set(NODES.values())}
    for idx in (whole, *per_node.values()):
        for ns in namespaces:
            idx.set_namespace(namespace_info(ns))
        for p in pods:
            idx.set_pod(pod_info(p))
    for n, step in enumerate(case.steps):
        for ns, name in step.delete:
            policies.pop((ns, name), None)
            for idx in (whole, *per_node.values()):
                idx.delete_policy(f"{ns}/{name}")
        for obj in step.policy_objects(IPS):
            policies[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
            for idx in (whole, *per_node.values()):
                idx.set_policy(parse_policy(obj))
        for key, labels in step.pod_labels.items():
            pod = next(p for p in pods if f"{p['metadata']['namespace']}/{p['metadata']['name']}" == key)
            pod["metadata"]["labels"].update(labels)
            for idx in (whole, *per_node.values()):
                idx.set_pod(pod_info(pod))
        for name, labels in step.ns_labels.items():
            ns_obj = next(o for o in namespaces if o["metadata"]["name"] == name)
            ns_obj["metadata"]["labels"].update(labels)
            for idx in (whole, *per_node.values()):
                idx.set_namespace(namespace_info(ns_obj))
        cluster = ClusterView([pod_info(p) for p in pods], [namespace_info(o) for o in namespaces],
                          [parse_policy(copy.deepcopy(o)) for o in policies.values()])
        for check in step.checks:
            want = check.expected.with_loopback()
            got_index, got_eval = _observe(whole, cluster, check.protocol, check.port)
            where = f"step {n}, {check.port}/{check.protocol}"
            assert got_index == want, f"{where}: index\n{Reachability.render(got_index, want)}"
            assert got_eval == want, f"{where}: evaluator\n{Reachability.render(got_eval, want)}"
            # the same answer assembled from the nodes: egress on the source's node, ingress on the
            # destination's node
            if check.protocol != "ICMP":
                proto = PROTOCOLS[check.protocol]
                for s in PODS:
                    for d in PODS:
                        src_ok = s == d or _side(per_node[NODES[s]], IPS[s], IPS[d], proto, check.port, "Egress")
                        dst_ok = s == d or _side(per_node[NODES[d]], IPS[s], IPS[d], proto, check.port, "Ingress")
                        assert (src_ok and dst_ok) == want[(s, d)], f"{where}: nodes disagree on {s} -> {d}"


def _side(index: AllowIndex, src: str, dst: str, proto: int, port: int, direction: str) -> bool:
    me, peer = (src, dst) if direction == "Egress" else (dst, src)
    state = index.state()
    gid = state.dispatch[direction].get(me)
    if gid is None:
        return True
    group = state.groups[gid]
    if peer in group.pods and group.pods[peer].contains(proto, port):
        return True
    ip = ipaddress.ip_address(peer)
    return any(r.contains(ip.version, int(ip)) and p.contains(proto, port) for r, p in group.ranges)
