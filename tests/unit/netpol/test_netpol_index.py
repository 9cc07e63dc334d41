"""The allow index against the evaluator on random clusters, built at once or by random changes, and
its deltas replayed on a model of the kernel's sets."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netpol_strategies import clusters, mutation

from pyk3s.netpol import AllowIndex, ClusterView, evaluate, namespace_info, parse_policy, pod_info
from pyk3s.netpol.index import Delta
from pyk3s.netpol.model import PROTOCOLS

PROBES = [("TCP", 80), ("TCP", 81), ("UDP", 53), ("TCP", 8080), ("SCTP", 80)]


def _matrix_index(index: AllowIndex, pods_: list[dict]) -> dict:
    ips = [p["status"]["podIP"] for p in pods_] + ["192.0.2.9"]
    return {(s, d, pr, pt): index.allows(s, d, PROTOCOLS[pr], pt) for s in ips for d in ips for pr, pt in PROBES}


def _matrix_eval(nss: list[dict], pods_: list[dict], pols: list[dict]) -> dict:
    cluster = ClusterView([p for p in map(pod_info, pods_) if p], [namespace_info(n) for n in nss],
                      [parse_policy(p) for p in pols])
    ips = [p["status"]["podIP"] for p in pods_] + ["192.0.2.9"]
    out = {}
    for s in ips:
        for d in ips:
            src, dst = cluster.endpoint(s), cluster.endpoint(d)
            for pr, pt in PROBES:
                if src.pod is not None and src.pod.host_network:
                    src = type(src)(s)  # a hostNetwork pod's traffic is the node's: a bare address
                if dst.pod is not None and dst.pod.host_network:
                    dst = type(dst)(d)
                out[(s, d, pr, pt)] = evaluate(cluster, src, dst, pr, pt).allowed
    return out


def _build(nss: list[dict], pods_: list[dict], pols: list[dict], node: str | None = None) -> AllowIndex:
    index = AllowIndex(node)
    for n in nss:
        index.set_namespace(namespace_info(n))
    for p in pols:
        index.set_policy(parse_policy(p))
    for p in pods_:
        info = pod_info(p)
        if info is not None:
            index.set_pod(info)
    return index


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_index_agrees_with_evaluator(c: tuple[list[dict], list[dict], list[dict]]) -> None:
    nss, pods_, pols = c
    assert _matrix_index(_build(nss, pods_, pols), pods_) == _matrix_eval(nss, pods_, pols)


class KernelModel:
    """What the kernel would hold after replaying every delta."""

    def __init__(self) -> None:
        self.groups: dict[str, tuple[dict, tuple]] = {}
        self.dispatch: dict[str, dict[str, str]] = {"Ingress": {}, "Egress": {}}
        self.local: set[str] = set()

    def apply(self, delta: Delta) -> None:
        for gid, g in delta.new_groups.items():
            assert gid not in self.groups, "group created twice"
            self.groups[gid] = (dict(g.pods), g.ranges)
        for gid, gd in delta.groups.items():
            pods_, ranges = self.groups[gid]
            for ip, ports in gd.removed.items():
                assert pods_.pop(ip) == ports, "removed an element that was not there"
            for ip, ports in gd.added.items():
                assert ip not in pods_, "added an element twice"
                pods_[ip] = ports
            if gd.ranges is not None:
                self.groups[gid] = (pods_, gd.ranges)
        for d in ("Ingress", "Egress"):
            for ip in delta.dispatch_removed[d]:
                del self.dispatch[d][ip]
            for ip, gid in delta.dispatch_added[d].items():
                assert ip not in self.dispatch[d]
                self.dispatch[d][ip] = gid
        for gid in delta.removed_groups:
            assert gid not in self.dispatch["Ingress"].values() and gid not in self.dispatch["Egress"].values()
            del self.groups[gid]
        self.local -= delta.local_removed
        self.local |= delta.local_added

    def same_as(self, index: AllowIndex) -> bool:
        state = index.state()
        return (self.groups == {g: (grp.pods, grp.ranges) for g, grp in state.groups.items()}
                and self.dispatch == state.dispatch and self.local == state.local)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters(), st.lists(mutation, max_size=8), st.data())
def test_incremental_changes_match_a_rebuild(c: tuple, muts: list, data: Any) -> None:
    nss, pods_, pols = copy.deepcopy(c)
    node = data.draw(st.sampled_from([None, "na"]))
    index = AllowIndex(node)
    kernel = KernelModel()
    # objects arrive in any order
    for kind, obj in data.draw(st.permutations([("ns", n) for n in nss] + [("pod", p) for p in pods_]
                                               + [("pol", p) for p in pols])):
        if kind == "ns":
            index.set_namespace(namespace_info(obj))
        elif kind == "pod":
            index.set_pod(pod_info(obj))  # type: ignore[arg-type]
        else:
            index.set_policy(parse_policy(obj))
        kernel.apply(index.take_delta())
        assert kernel.same_as(index)
    live = {p["metadata"]["name"]: p for p in pods_}
    for what, i, labels in muts:
        if what == "pod_labels" and pods_:
            p = pods_[i % len(pods_)]
            p["metadata"]["labels"] = labels
            if p["metadata"]["name"] in live:
                index.set_pod(pod_info(p))  # type: ignore[arg-type]
        elif what == "pod_delete" and pods_:
            p = pods_[i % len(pods_)]
            live.pop(p["metadata"]["name"], None)
            index.delete_pod(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
        elif what == "pod_readd" and pods_:
            p = pods_[i % len(pods_)]
            live[p["metadata"]["name"]] = p
            index.set_pod(pod_info(p))  # type: ignore[arg-type]
        elif what == "pod_ip" and pods_:
            # a new pod takes over a terminating pod's address
            p = pods_[i % len(pods_)]
            clone = copy.deepcopy(p)
            # a name and a creation time of its own: a second clone of the same pod is another pod
            clone["metadata"]["name"] += f"-new{len(pods_)}"
            clone["metadata"]["creationTimestamp"] = f"2026-01-01T00:{len(pods_) // 60:02d}:{len(pods_) % 60:02d}Z"
            pods_.append(clone)
            live[clone["metadata"]["name"]] = clone
            index.set_pod(pod_info(clone))  # type: ignore[arg-type]
        elif what == "ns_labels":
            n = nss[i % len(nss)]
            n["metadata"]["labels"] = labels
            index.set_namespace(namespace_info(n))
        elif what == "policy" and pols:
            p = pols[i % len(pols)]
            p["spec"]["podSelector"] = {"matchLabels": labels}
            index.set_policy(parse_policy(p))
        elif what == "policy_delete" and pols:
            p = pols.pop(i % len(pols))
            index.delete_policy(f"{p['metadata']['namespace']}/{p['metadata']['name']}")
        kernel.apply(index.take_delta())
        assert kernel.same_as(index)
    final_pods = list(live.values())
    fresh = _build(nss, final_pods, pols, node)
    assert index.state().dispatch == fresh.state().dispatch
    assert {g: (x.pods, x.ranges) for g, x in index.state().groups.items()} == \
        {g: (x.pods, x.ranges) for g, x in fresh.state().groups.items()}
    assert index.state().local == fresh.state().local
