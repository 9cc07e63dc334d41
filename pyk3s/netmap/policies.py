"""NetworkPolicy in the map: the reachability matrix of the pods of chosen namespaces, the verdict for
one connection, and the policy hop of a trace. Everything comes from ``pyk3s netpol``'s evaluator on
the objects the map watches, built by the same function (``netpol.cluster.cluster_of``): a cell of
the matrix reads the allow sets the agents program, its explanation is ``pyk3s netpol explain``'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyk3s.netpol.cluster import cluster_of, matrix_pods, parse_port
from pyk3s.netpol.evaluate import ClusterView, ConnectionEnd, Verdict, evaluate
from pyk3s.netpol.index import AllowIndex
from pyk3s.netpol.matrix import build_index, reachability

from .hops import ERROR, INFO, OK, Hop
from .objects import Obj
from .state import MapState

__all__ = ["policies_view", "policy_explain", "policy_verdict"]

SYSTEM = ("kube-system", "kube-public", "kube-node-lease")
MAX_PODS = 60  # a matrix wider than this is unreadable on one screen


def _cluster(state: MapState) -> ClusterView:
    return state.memoized("netpol-cluster", "policies", lambda: cluster_of(
        state.objects("pods"), state.objects("namespaces"), state.objects("networkpolicies"), state.objects("nodes")))


def _index(state: MapState) -> AllowIndex:
    return state.memoized("netpol-index", "policies", lambda: build_index(_cluster(state)))


def _verdict_json(v: Verdict) -> dict[str, Any]:
    """What ``pyk3s netpol explain --json`` prints."""
    return {"allowed": v.allowed, "lines": v.lines()}


def _default_namespaces(cluster: ClusterView) -> list[str]:
    with_policies = sorted({p.namespace for p in cluster.policies if p.namespace not in SYSTEM})
    if with_policies:
        return with_policies[:1]
    with_pods = sorted({p.namespace for p in cluster.pods if p.namespace not in SYSTEM and not p.host_network})
    return with_pods[:1]


def policies_view(state: MapState, namespaces: list[str], port: str) -> dict[str, Any]:
    if not state.cache.served("networkpolicies"):
        return {"available": False, "reason": "this cluster does not serve networking.k8s.io/v1 NetworkPolicy"}
    cluster = _cluster(state)
    counts: dict[str, int] = {}
    for p in cluster.pods:
        if not p.host_network:
            counts[p.namespace] = counts.get(p.namespace, 0) + 1
    names = sorted({n.name for n in cluster.namespaces})
    selected = [n for n in namespaces if n in names] or _default_namespaces(cluster)
    out: dict[str, Any] = {
        "available": True, "namespaces": [{"name": n, "pods": counts.get(n, 0)} for n in names],
        "selected": selected, "port": port, "pods": [], "allowed": [], "problem": "",
        "policies": [_policy_json(cluster, p) for p in sorted(cluster.policies, key=lambda p: p.key)
                     if p.namespace in selected],
    }
    try:
        proto, number = parse_port(port)
    except ValueError as err:
        out["problem"] = str(err)
        return out
    pods = matrix_pods(cluster, selected)
    if len(pods) > MAX_PODS:
        out["problem"] = f"{len(pods)} pods: choose fewer namespaces (at most {MAX_PODS} pods in one matrix)"
        return out
    table = reachability(_index(state), pods, proto, number)
    out["pods"] = [{"key": p.key, "ip": p.ips[0], "node": p.node, "labels": dict(p.labels)} for p in pods]
    out["allowed"] = [[table[(s.key, d.key)] for d in pods] for s in pods]
    out["port"] = "ICMP" if proto == "ICMP" else f"{number}/{proto}"
    return out


def _policy_json(cluster: ClusterView, p: Any) -> dict[str, Any]:
    from pyk3s.netpol.evaluate import selects

    return {"key": p.key, "podSelector": "" if p.pod_selector.everything else str(p.pod_selector),
            "types": sorted(p.types), "ingressRules": len(p.ingress), "egressRules": len(p.egress),
            "selects": sorted(pod.key for pod in cluster.pods if selects(p, pod)), "problem": p.error}


def policy_explain(state: MapState, src: str, dst: str, port: str) -> dict[str, Any]:
    """``pyk3s netpol explain SRC DST PORT --json``, or {"error": ...}."""
    if not state.cache.served("networkpolicies"):
        return {"error": "this cluster does not serve NetworkPolicy"}
    cluster = _cluster(state)
    try:
        proto, number = parse_port(port)
        a, b = cluster.endpoint(src), cluster.endpoint(dst)
    except ValueError as err:
        return {"error": str(err)}
    except KeyError as err:
        return {"error": str(err.args[0])}
    return _verdict_json(evaluate(cluster, a, b, proto, number))


def _endpoint(cluster: ClusterView, pod: Obj) -> ConnectionEnd | None:
    m: Mapping[str, Any] = pod.get("metadata") or {}
    info = cluster.pod(f"{m.get('namespace')}/{m.get('name')}")
    return ConnectionEnd(info.ips[0], info) if info is not None else None


def policy_verdict(state: MapState, src: Obj, dst: Obj, protocol: str, port: int) -> tuple[Hop, dict[str, Any] | None]:
    """The NetworkPolicy hop between two pods, and the verdict as ``pyk3s netpol explain --json`` has it."""
    if not state.cache.served("networkpolicies"):
        return Hop("policy", "NetworkPolicy", INFO, ("this cluster does not serve NetworkPolicy",)), None
    cluster = _cluster(state)
    a, b = _endpoint(cluster, src), _endpoint(cluster, dst)
    if a is None or b is None:
        return Hop("policy", "NetworkPolicy", INFO, ("a pod without an address takes no part",)), None
    verdict = evaluate(cluster, a, b, protocol, port)
    lines = [s.strip() for s in verdict.lines()[1:]] or [verdict.lines()[0]]
    return Hop("policy", "allowed" if verdict.allowed else "denied", OK if verdict.allowed else ERROR,
               (_deciding(verdict), *lines), "policies:"), _verdict_json(verdict)


def _deciding(v: Verdict) -> str:
    """The one line that decides: the rule that lets the connection in (or out), or the side that
    stops it and the policies that isolate it."""
    if v.note:
        return v.note
    for side, who in ((v.egress, "egress of the source"), (v.ingress, "ingress of the destination")):
        if not side.allowed:
            return f"{who} is isolated by {', '.join(side.policies)} and no rule allows it"
    allowed = [f"allowed by {m}" for side in (v.ingress, v.egress) for m in side.allowed_by]
    return allowed[0] if allowed else "neither side is isolated by a NetworkPolicy"
