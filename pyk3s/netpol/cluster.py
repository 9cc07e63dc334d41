"""What evaluation reads, built from API objects as listed or watched: ``pyk3s netpol`` and the
network map (``pyk3s map``) build it with the same function, so they give the same answers (pure)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from .evaluate import ClusterView
from .model import PodInfo, Policy, PolicyError, fail_closed_policy, namespace_info, parse_policy, pod_info

__all__ = ["cluster_of", "matrix_pods", "node_ips", "parse_port", "policy_of"]


def parse_port(text: str) -> tuple[str, int]:
    """``80``, ``80/tcp``, ``53/UDP``, ``icmp`` -> (protocol, port); ValueError for anything else."""
    if text.lower() == "icmp":
        return "ICMP", 0
    num, sep, proto = text.partition("/")
    proto = (proto if sep else "TCP").upper()
    if proto not in ("TCP", "UDP", "SCTP") or not num.isdigit() or not 1 <= int(num) <= 65535:
        raise ValueError(f"{text!r}: expected PORT[/TCP|UDP|SCTP] or icmp")
    return proto, int(num)


def policy_of(obj: Mapping[str, Any]) -> Policy:
    """The policy of a stored object; one that cannot be read isolates and allows nothing."""
    try:
        return parse_policy(obj)
    except PolicyError as err:
        return fail_closed_policy(obj, err)


def node_ips(nodes: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Node address -> node name: its Internal/External IPs and its bridge address (the first of each
    pod CIDR), from which the node reaches its own pods."""
    out: dict[str, str] = {}
    for n in nodes:
        name = n["metadata"]["name"]
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") in ("InternalIP", "ExternalIP"):
                out[a.get("address", "")] = name
        for cidr in (n.get("spec") or {}).get("podCIDRs") or []:
            try:
                out[str(next(ipaddress.ip_network(cidr, strict=False).hosts()))] = name  # the bridge address
            except (ValueError, StopIteration):
                continue
    return out


def cluster_of(pods: Iterable[Mapping[str, Any]], namespaces: Iterable[Mapping[str, Any]],
               policies: Iterable[Mapping[str, Any]], nodes: Iterable[Mapping[str, Any]]) -> ClusterView:
    infos = [i for i in (pod_info(p) for p in pods) if i is not None]
    return ClusterView(infos, [namespace_info(n) for n in namespaces], [policy_of(p) for p in policies], node_ips(nodes))


def matrix_pods(cluster: ClusterView, namespaces: Iterable[str]) -> list[PodInfo]:
    """The pods a reachability matrix of these namespaces shows (hostNetwork pods are not selected by
    any policy, so they take no part), by key."""
    wanted = set(namespaces)
    return sorted((p for p in cluster.pods if p.namespace in wanted and not p.host_network), key=lambda p: p.key)
