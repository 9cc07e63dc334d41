"""The nodes view: addresses, pod CIDRs, readiness, the pod network's backend, and the host ports held
on each node (what a Pending load balancer usually collides with). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .objects import Obj, condition, is_ready, key, labels, meta

__all__ = ["BACKEND_TYPE", "PUBLIC_IP", "nodes_view"]

# flannel's node annotations (K3s; pyk3s's overlay publishes the same)
BACKEND_TYPE = "flannel.alpha.coreos.com/backend-type"
PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
PUBLIC_IP_OVERWRITE = "flannel.alpha.coreos.com/public-ip-overwrite"
ROLE_PREFIX = "node-role.kubernetes.io/"


def _backend(node: Obj) -> dict[str, str]:
    ann = meta(node).get("annotations") or {}
    kind = ann.get(BACKEND_TYPE, "")
    public = ann.get(PUBLIC_IP_OVERWRITE) or ann.get(PUBLIC_IP, "")
    if kind:
        return {"type": kind, "publicIP": public, "source": f"annotation {BACKEND_TYPE}"}
    # pyk3s without an overlay routes each pod CIDR via the node's address and publishes nothing
    return {"type": "host-gw", "publicIP": public, "source": "implied: the node publishes no flannel backend"}


def _host_ports(pods: Iterable[Obj]) -> list[dict[str, Any]]:
    out = []
    for p in pods:
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for c in (p.get("spec") or {}).get("containers") or []:
            for cp in c.get("ports") or []:
                if cp.get("hostPort"):
                    out.append({"port": cp["hostPort"], "protocol": cp.get("protocol") or "TCP", "pod": key(p)})
    return sorted(out, key=lambda h: (h["port"], h["protocol"], h["pod"]))


def nodes_view(nodes: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, Any]:
    by_node: dict[str, list[Obj]] = {}
    for p in pods:
        name = (p.get("spec") or {}).get("nodeName")
        if name:
            by_node.setdefault(name, []).append(p)
    items = []
    for n in sorted(nodes, key=lambda n: meta(n).get("name", "")):
        name = meta(n).get("name", "")
        spec, status = n.get("spec") or {}, n.get("status") or {}
        ready = condition(n, "Ready") or {}
        here = by_node.get(name, [])
        items.append({
            "name": name,
            "roles": sorted(k[len(ROLE_PREFIX):] for k in labels(n) if k.startswith(ROLE_PREFIX)) or ["worker"],
            "ready": is_ready(n),
            "readyReason": "" if is_ready(n) else (ready.get("message") or ready.get("reason") or "no Ready condition"),
            "addresses": [{"type": a.get("type", ""), "address": a.get("address", "")}
                          for a in status.get("addresses") or []],
            "podCIDRs": list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])),
            "backend": _backend(n),
            "unschedulable": bool(spec.get("unschedulable")),
            "taints": [f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
                       for t in spec.get("taints") or []],
            "version": (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
            "pods": len(here),
            "podsReady": sum(1 for p in here if is_ready(p)),
            "hostPorts": _host_ports(here),
        })
    return {"nodes": items}
