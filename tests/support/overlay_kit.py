"""Helpers of the overlay end-to-end tests: pods pinned to nodes, commands inside a pod's namespace,
the tunnel state of a node, and Node events."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from cluster import Cluster, Node

from pyk3s.agent.cni.podnet import netns_name
from pyk3s.agent.overlay.vxlan import device_names

__all__ = ["WHOAMI", "apply_whoami", "events", "fdb", "in_pod", "node_obj", "pod_ips", "ready_pods", "tunnel"]

WHOAMI = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, labels: {app: %(app)s}}
spec:
  nodeSelector: {kubernetes.io/hostname: %(node)s}
  containers:
  - name: whoami
    image: pyk3s/whoami
    args: ["--port", "8080"]
    ports: [{containerPort: 8080, name: http}]
    readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""


def apply_whoami(cl: Cluster, app: str = "web") -> None:
    docs = "---".join(WHOAMI % {"name": f"{app}-{m.index}", "app": app, "node": m.name} for m in cl.members)
    cl.kubectl("apply", "-f", "-", input=docs)


def ready_pods(cl: Cluster, selector: str) -> list[dict[str, Any]]:
    items = cl.kubectl("get", "pods", "-l", selector, "-o", "json").json()["items"]
    return [p for p in items if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in (p.get("status") or {}).get("conditions") or [])]


def pod_ips(pod: dict[str, Any]) -> list[str]:
    return [i["ip"] for i in pod["status"].get("podIPs") or []]


def in_pod(pod: dict[str, Any], *argv: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """Run a command in the pod's network namespace (pod namespaces are visible from the host)."""
    ns = netns_name(pod["metadata"]["uid"])
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def tunnel(cl: Cluster, node: Node, family: int = 4) -> dict[str, Any]:
    """The node's VXLAN device (``ip -d link``), its forwarding entries, neighbours and proto-201 routes."""
    dev = device_names(node.bridge)[family]
    link = json.loads(cl.exec_in(node, "ip", "-j", "-d", "link", "show", "dev", dev).stdout or "[]")
    neigh = json.loads(cl.exec_in(node, "ip", "-j", "neigh", "show", "dev", dev).stdout or "[]") if link else []
    routes = json.loads(cl.exec_in(node, "ip", f"-{family}", "-j", "route", "show", "proto", "201").stdout or "[]")
    return {"dev": dev, "link": link[0] if link else None, "fdb": fdb(cl, node, dev) if link else {},
            "neigh": {n["dst"]: n.get("lladdr") for n in neigh},
            "routes": {r["dst"]: r.get("gateway", r.get("type")) for r in routes}}


def fdb(cl: Cluster, node: Node, dev: str) -> dict[str, str]:
    rows = json.loads(cl.exec_in(node, "bridge", "-j", "fdb", "show", "dev", dev).stdout or "[]")
    return {r["mac"]: r["dst"] for r in rows if r.get("dst")}


def node_obj(cl: Cluster, node: Node) -> dict[str, Any]:
    return cl.kubectl("get", "node", node.name, "-o", "json").json()


def events(cl: Cluster, node: Node, reason: str) -> list[str]:
    out = cl.kubectl("get", "events", "-A", "--field-selector",
                     f"involvedObject.kind=Node,involvedObject.name={node.name},reason={reason}", "-o", "json").json()
    return [e["message"] for e in out["items"]]
