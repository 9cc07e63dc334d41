"""What the overlay backends read from Node objects, and what they plan (pure, no I/O).

A node publishes its tunnel end the way flannel's kube subnet manager does, in annotations with the
``flannel.alpha.coreos.com/`` prefix: ``backend-type`` (``vxlan`` or ``host-gw``), ``backend-data``
(``{"VNI":1,"VtepMAC":"…"}`` for VXLAN, ``null`` for host-gw), ``public-ip`` (the underlay address
peers send to) and their IPv6 twins ``backend-v6-data`` / ``public-ipv6``, plus
``kube-subnet-manager: "true"``. ``public-ip-overwrite`` / ``public-ipv6-overwrite`` (set by hand, or by
``--flannel-external-ip`` from the node's external IPs) replace the published address.

A :class:`Peer` is another node shrunk to what a backend needs, per address family; a
:class:`NodeProblem` names the Node it is about, a reason and a message (it becomes a Warning event on that
Node); a :class:`Plan` is the kernel state a backend wants, diffed against the kernel by
:mod:`pyk3s.agent.overlay.kernel`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANNOTATION_PREFIX", "BACKEND_DATA", "BACKEND_TYPE", "BACKEND_V6_DATA", "PUBLIC_IP", "PUBLIC_IPV6",
           "PUBLIC_IP_OVERWRITE", "PUBLIC_IPV6_OVERWRITE", "SUBNET_MANAGED", "Family", "FdbEntry", "Neighbour",
           "Peer", "Plan", "NodeProblem", "Reach", "PodRoute", "family_of", "peers_from_nodes", "pod_cidrs", "vtep_mac"]

ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
BACKEND_TYPE = ANNOTATION_PREFIX + "backend-type"
BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"
BACKEND_V6_DATA = ANNOTATION_PREFIX + "backend-v6-data"
PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"
PUBLIC_IPV6 = ANNOTATION_PREFIX + "public-ipv6"
PUBLIC_IP_OVERWRITE = ANNOTATION_PREFIX + "public-ip-overwrite"
PUBLIC_IPV6_OVERWRITE = ANNOTATION_PREFIX + "public-ipv6-overwrite"
SUBNET_MANAGED = ANNOTATION_PREFIX + "kube-subnet-manager"

Family = int  # 4 or 6


def family_of(text: str) -> Family:
    """4 or 6 for an address or a CIDR; ValueError for anything else."""
    return ipaddress.ip_network(text, strict=False).version


def pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return [c for c in (spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])) if c]


@dataclass(frozen=True, slots=True)
class NodeProblem:
    node: str          # the Node the event goes on
    reason: str        # CamelCase, like every Kubernetes event reason
    message: str


@dataclass(frozen=True, slots=True)
class Peer:
    """Another node as one family of the overlay sees it."""

    name: str
    family: Family
    pod_cidr: str                 # canonical network text
    public_ip: str                # where its tunnel end (or next hop) is; "" when not published yet
    backend_type: str             # "" when not published yet
    vtep_mac: str = ""            # VXLAN only, lower-case
    created: str = ""             # metadata.creationTimestamp: the older node keeps a contested MAC


@dataclass(frozen=True, slots=True)
class Reach:
    """How the kernel reaches one underlay address (``ip route get``)."""

    ok: bool
    dev: str = ""
    via: str = ""                 # "" when the address is on a link this node shares
    error: str = ""


@dataclass(frozen=True, slots=True, order=True)
class PodRoute:
    dst: str
    via: str
    dev: str = ""                 # "" lets the kernel pick (host-gw)
    onlink: bool = False
    kind: str = "unicast"         # as ``ip route`` types it (a left-over of another kind is replaced)


@dataclass(frozen=True, slots=True, order=True)
class Neighbour:
    dev: str
    ip: str
    mac: str


@dataclass(frozen=True, slots=True, order=True)
class FdbEntry:
    dev: str
    mac: str
    dst: str


@dataclass(frozen=True, slots=True)
class Plan:
    routes: frozenset[PodRoute] = frozenset()
    neighbours: frozenset[Neighbour] = frozenset()
    fdb: frozenset[FdbEntry] = frozenset()
    problems: tuple[NodeProblem, ...] = ()
    routed: tuple[str, ...] = field(default=())   # peer names whose pods are reachable, for logs


def vtep_mac(data: str) -> str:
    """The ``VtepMAC`` of a ``backend-data`` annotation, lower-case; "" when there is none."""
    try:
        doc = json.loads(data)
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    mac = doc.get("VtepMAC")
    return mac.lower() if isinstance(mac, str) else ""


def peers_from_nodes(nodes: Iterable[Mapping[str, Any]], self_name: str, family: Family,
                     cluster_cidrs: Iterable[str]) -> tuple[list[Peer], list[NodeProblem]]:
    """Every other node with a pod CIDR of ``family`` inside the cluster CIDR of that family.

    A pod CIDR claimed by two nodes, or outside the cluster CIDR, is a problem and neither is routed:
    sending one node's pod traffic to another would be worse than not sending it at all.
    """
    clusters = [n for n in (ipaddress.ip_network(c, strict=False) for c in cluster_cidrs) if n.version == family]
    owners: dict[str, list[str]] = {}
    nodes = list(nodes)
    for node in nodes:
        name = (node.get("metadata") or {}).get("name", "")
        for cidr in pod_cidrs(node):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if net.version == family:
                owners.setdefault(str(net), []).append(name)
    peers: list[Peer] = []
    problems: list[NodeProblem] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = meta.get("name", "")
        if not name or name == self_name:
            continue
        ann = meta.get("annotations") or {}
        for cidr in pod_cidrs(node):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                problems.append(NodeProblem(name, "InvalidPodCIDR", f"node {name}: podCIDR {cidr!r} is not a CIDR"))
                continue
            if net.version != family:
                continue
            if len(owners.get(str(net), ())) > 1:
                problems.append(NodeProblem(name, "PodCIDRConflict",
                                        f"podCIDR {net} is claimed by nodes {', '.join(sorted(owners[str(net)]))}; "
                                        f"not routed"))
                continue
            if not any(net.subnet_of(c) for c in clusters):  # type: ignore[arg-type]
                problems.append(NodeProblem(name, "PodCIDROutsideCluster",
                                        f"node {name}: podCIDR {net} is outside the cluster CIDR; not routed"))
                continue
            public = ann.get(PUBLIC_IP if family == 4 else PUBLIC_IPV6, "")
            data = ann.get(BACKEND_DATA if family == 4 else BACKEND_V6_DATA, "")
            peers.append(Peer(name=name, family=family, pod_cidr=str(net), public_ip=public,
                              backend_type=ann.get(BACKEND_TYPE, ""), vtep_mac=vtep_mac(data),
                              created=meta.get("creationTimestamp", "")))
    return peers, problems
