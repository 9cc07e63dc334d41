"""A LoadBalancer Service's addresses, and the reasons a node does not serve it (pure).

Addresses follow K3s (specs/k3s.md 1.4): the nodes of Ready svclb pods (for
``externalTrafficPolicy: Local`` only nodes with a ready local endpoint), their ExternalIPs if any
of them has one, else their InternalIPs; per family, sorted as strings, in ``spec.ipFamilies`` order.

Beyond K3s, :func:`explain` says for every node why it does not serve: the port is held by another
pod, a label is missing, the node is not Ready or is tainted, so the Service can carry a condition
and a Warning event instead of staying silently ``<pending>``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from .desired import ENABLELB, LBPOOL, SVCNAME, SVCNAMESPACE

__all__ = ["CONDITION", "NOT_YET", "PENDING", "explain", "lb_ingress", "only_starting", "pending_message",
           "pending_reasons", "svclb_pods"]

CONDITION = "pyk3s.io/LoadBalancerReady"
# the condition's message while no node serves: PENDING + "node a: why; node b: why"
PENDING = "no node can serve this load balancer: "
# Reasons that only say a svclb pod is on its way; they do not deserve a Warning event.
NOT_YET = ("no svclb pod on this node yet", "is not Ready yet")


def _cond(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _ready(obj: dict[str, Any]) -> bool:
    c = _cond(obj, "Ready")
    return bool(c and c.get("status") == "True")


def svclb_pods(svc: dict[str, Any], pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    meta = svc["metadata"]
    out = []
    for p in pods:
        labels = (p.get("metadata") or {}).get("labels") or {}
        if labels.get(SVCNAME) == meta["name"] and labels.get(SVCNAMESPACE) == meta.get("namespace", "default"):
            out.append(p)
    return out


def _local_endpoint_nodes(slices: Iterable[dict[str, Any]]) -> set[str]:
    nodes: set[str] = set()
    for s in slices:
        for ep in s.get("endpoints") or []:
            if (ep.get("targetRef") or {}).get("kind") == "Pod" and (ep.get("conditions") or {}).get("ready") \
                    and ep.get("nodeName"):
                nodes.add(ep["nodeName"])
    return nodes


def serving_nodes(
    svc: dict[str, Any], pods: Iterable[dict[str, Any]], slices: Iterable[dict[str, Any]]
) -> list[str]:
    local = (svc.get("spec") or {}).get("externalTrafficPolicy") == "Local"
    ready_nodes = _local_endpoint_nodes(slices) if local else None
    names = []
    for p in svclb_pods(svc, pods):
        node = (p.get("spec") or {}).get("nodeName")
        if not node or not (p.get("status") or {}).get("podIP") or not _ready(p):
            continue
        if ready_nodes is not None and node not in ready_nodes:
            continue
        if node not in names:
            names.append(node)
    return names


def lb_ingress(
    svc: dict[str, Any],
    pods: Iterable[dict[str, Any]],
    nodes: dict[str, dict[str, Any]],
    slices: Iterable[dict[str, Any]] = (),
) -> list[dict[str, str]]:
    external: list[str] = []
    internal: list[str] = []
    for name in serving_nodes(svc, pods, slices):
        node = nodes.get(name)
        if node is None:
            continue
        for a in (node.get("status") or {}).get("addresses") or []:
            target = external if a.get("type") == "ExternalIP" else internal if a.get("type") == "InternalIP" else None
            if target is not None and a.get("address") and a["address"] not in target:
                target.append(a["address"])
    chosen = external or internal
    v4 = sorted(ip for ip in chosen if ipaddress.ip_address(ip).version == 4)
    v6 = sorted(ip for ip in chosen if ipaddress.ip_address(ip).version == 6)
    families = (svc.get("spec") or {}).get("ipFamilies") or ["IPv4"]
    out: list[str] = []
    for fam in families:
        out += v4 if fam == "IPv4" else v6 if fam == "IPv6" else []
    return [{"ip": ip} for ip in out]


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _port_holder(node: str, port: int, proto: str, pods: Iterable[dict[str, Any]], own: str) -> str | None:
    for p in pods:
        meta = p.get("metadata") or {}
        if (p.get("spec") or {}).get("nodeName") != node or meta.get("name") == own:
            continue
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in (p.get("spec") or {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if cp.get("hostPort") == port and (cp.get("protocol") or "TCP") == proto:
                    return f"{meta.get('namespace')}/{meta.get('name')}"
    return None


def only_starting(reasons: dict[str, str]) -> bool:
    """True when every node's reason is a svclb pod still starting (and there is at least one node)."""
    return bool(reasons) and all(any(r.endswith(m) for m in NOT_YET) for r in reasons.values())


def pending_message(reasons: dict[str, str]) -> str:
    """The condition's message for the reasons of :func:`explain`."""
    why = "; ".join(f"node {n}: {why}" for n, why in reasons.items()) or "the cluster has no nodes"
    return PENDING + why


def pending_reasons(message: str) -> dict[str, str]:
    """node -> reason, read back from a message of :func:`pending_message` ({} for any other message).
    A reason may itself hold several clauses joined by "; ", so nodes are found by their "node NAME: "
    prefix (node names are DNS subdomains: no spaces, no colons)."""
    if not message.startswith(PENDING):
        return {}
    parts = re.split(r"(?:^|; )node ([^\s:;]+): ", message[len(PENDING):])
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def explain(
    svc: dict[str, Any],
    daemonset: dict[str, Any] | None,
    all_pods: list[dict[str, Any]],
    nodes: dict[str, dict[str, Any]],
) -> dict[str, str]:
    """node name -> why it does not serve this Service (nodes that serve are left out)."""
    ours = {(p.get("spec") or {}).get("nodeName"): p for p in svclb_pods(svc, all_pods)}
    pod_spec = (((daemonset or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    selector = pod_spec.get("nodeSelector") or {}
    tolerations = pod_spec.get("tolerations") or []
    ports = [
        (cp["hostPort"], cp.get("protocol") or "TCP")
        for c in pod_spec.get("containers") or []
        for cp in c.get("ports") or []
        if cp.get("hostPort")
    ]
    reasons: dict[str, str] = {}
    for name, node in sorted(nodes.items()):
        labels = (node.get("metadata") or {}).get("labels") or {}
        pod = ours.get(name)
        if pod is not None and _ready(pod) and (pod.get("status") or {}).get("podIP"):
            continue
        why: list[str] = []
        for key, value in selector.items():
            if labels.get(key) != value:
                if key == ENABLELB:
                    why.append(f"node lacks label {ENABLELB}=true (allow-list mode is on)")
                elif key == LBPOOL:
                    why.append(f"node is not in pool {value!r} (label {LBPOOL})")
                else:
                    why.append(f"node lacks label {key}={value}")
        if not _ready(node):
            why.append("node is not Ready")
        if (node.get("spec") or {}).get("unschedulable"):
            why.append("node is cordoned (unschedulable)")
        for taint in (node.get("spec") or {}).get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
                why.append(f"node has taint {taint.get('key')}:{taint.get('effect')} that svclb pods do not tolerate")
        own_name = ((pod or {}).get("metadata") or {}).get("name", "")
        for port, proto in ports:
            holder = _port_holder(name, port, proto, all_pods, own_name)
            if holder:
                why.append(f"port {port}/{proto} is held by pod {holder}")
        if not why:
            if pod is None:
                why.append("no svclb pod on this node yet")
            else:
                sched = _cond(pod, "PodScheduled")
                if sched and sched.get("status") == "False":
                    why.append(f"svclb pod {own_name} is Pending: {sched.get('message', '')}")
                else:
                    why.append(f"svclb pod {own_name} is not Ready yet")
        reasons[name] = "; ".join(why)
    return reasons
