"""The reachability matrix of a set of pods, read from the allow index (the sets the agent programs),
and printed the way the upstream e2e tests print theirs (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from .evaluate import ClusterView
from .index import AllowIndex
from .model import PROTOCOLS, PodInfo
from .ports import ICMP

__all__ = ["build_index", "reachability", "render"]


def build_index(cluster: ClusterView) -> AllowIndex:
    """Every pod of the cluster as if all were local: the union of what each node programs."""
    index = AllowIndex(None)
    for ns in cluster.namespaces:
        index.set_namespace(ns)
    for policy in cluster.policies:
        index.set_policy(policy)
    for pod in cluster.pods:
        index.set_pod(pod)
    return index


def reachability(index: AllowIndex, pods: Sequence[PodInfo], protocol: str, port: int) -> dict[tuple[str, str], bool]:
    proto = PROTOCOLS.get(protocol.upper(), ICMP if protocol.upper() == "ICMP" else None)
    if proto is None:
        raise ValueError(f"protocol {protocol!r}: expected TCP, UDP, SCTP or ICMP")
    return {(s.key, d.key): index.allows(s.ips[0], d.ips[0], proto, port) for s in pods for d in pods}


def render(pods: Sequence[PodInfo], table: dict[tuple[str, str], bool]) -> str:
    """Rows are sources, columns destinations: ``.`` allowed, ``X`` denied."""
    keys = [p.key for p in pods]
    w = max((len(k) for k in keys), default=1)
    lines = [" " * w + "  " + " ".join(f"{k:>{w}}" for k in keys)]
    for s in keys:
        lines.append(f"{s:<{w}}  " + " ".join(f"{'.' if table[(s, d)] else 'X':>{w}}" for d in keys))
    return "\n".join(lines)
