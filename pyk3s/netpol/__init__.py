"""NetworkPolicy evaluation shared by the agent's rule compiler and ``pyk3s netpol`` (pure, no I/O).

``model`` reads the API objects; ``evaluate`` answers one connection with reasons; ``index`` keeps the
per-pod allow sets incrementally (what the agent programs into nftables); ``matrix`` prints the
reachability of pods from that index; ``cluster`` builds what evaluation reads from listed or watched
objects (``pyk3s netpol`` and the network map both use it).
"""

from .evaluate import ClusterView, ConnectionEnd, Verdict, evaluate
from .index import AllowIndex, Delta, Group, IndexState
from .model import (
    EGRESS,
    INGRESS,
    NamespaceInfo,
    PodInfo,
    Policy,
    PolicyError,
    fail_closed_policy,
    namespace_info,
    parse_policy,
    pod_info,
)

__all__ = [
    "EGRESS", "INGRESS", "AllowIndex", "ClusterView", "Delta", "ConnectionEnd", "Group", "IndexState", "NamespaceInfo",
    "PodInfo", "Policy", "PolicyError", "Verdict", "evaluate", "fail_closed_policy", "namespace_info",
    "parse_policy", "pod_info",
]
