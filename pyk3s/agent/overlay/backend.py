"""The one interface every overlay backend has, and the node-local facts it is fed.

A backend turns this node (:class:`LocalNode`) and the other nodes (:class:`~.model.Peer`, per family)
into a :class:`~.model.Plan` with a pure ``plan`` method; ``prepare`` says which annotations this node
publishes; ``activate`` makes its devices once peers appear; ``teardown`` removes them. The sync loop
(:mod:`pyk3s.agent.overlay.sync`) does everything else: watching Nodes, reachability, the kernel diff,
events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from .model import Family, NodeProblem, Peer, Plan, Reach
from .underlay import Underlay

__all__ = ["OverlayBackend", "LocalNode", "MIN_MTU"]

# Below these a family does not work: IPv6 requires 1280 on every link (RFC 8200 section 5); 576 is the
# datagram every IPv4 host must accept (RFC 791).
MIN_MTU: Mapping[Family, int] = {4: 576, 6: 1280}


@dataclass(frozen=True, slots=True)
class LocalNode:
    name: str
    created: str                                  # creationTimestamp, for contested VTEP MACs
    families: tuple[Family, ...]                  # families the pod network uses on this node
    pod_cidrs: Mapping[Family, str]
    cluster_cidrs: tuple[str, ...]
    underlay: Underlay
    public_ips: Mapping[Family, str] = field(default_factory=dict)   # after public-ip-overwrite
    stored: Mapping[str, str] = field(default_factory=dict)          # this Node's annotations as found
    taken_macs: Mapping[str, str] = field(default_factory=dict)      # VTEP MAC -> another node publishing it


class OverlayBackend(Protocol):
    name: ClassVar[str]

    def pod_mtu(self, underlay: Underlay, families: Sequence[Family]) -> int:
        """The MTU pods get (0: leave the kernel's default)."""

    async def prepare(self, local: LocalNode) -> tuple[dict[str, str], list[NodeProblem]]:
        """Create this backend's devices; the annotations this node publishes, and problems found."""

    async def activate(self, local: LocalNode, families: Set[Family]) -> list[NodeProblem]:
        """Make what the families that have peers need (idempotent); problems found."""

    def devices(self) -> tuple[str, ...]:
        """Devices whose permanent neighbour and forwarding entries the plan owns."""

    def plan(self, local: LocalNode, peers: Mapping[Family, Sequence[Peer]], reach: Mapping[str, Reach]) -> Plan:
        """Pure: the kernel state wanted for these peers."""

    async def teardown(self) -> None:
        """Remove the devices ``prepare`` made."""
