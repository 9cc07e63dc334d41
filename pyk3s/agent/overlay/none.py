"""``--flannel-backend=none``: pod traffic between nodes is left to the user (another CNI, static
routes), as in K3s. Nothing is published and no route is kept; left-over ``proto 201`` routes of an
earlier backend are removed by the empty plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from typing import ClassVar

from .backend import LocalNode
from .model import Family, NodeProblem, Peer, Plan, Reach
from .underlay import Underlay

__all__ = ["NoneBackend"]


class NoneBackend:
    name: ClassVar[str] = "none"

    def pod_mtu(self, underlay: Underlay, families: Sequence[Family]) -> int:
        return 0

    async def prepare(self, local: LocalNode) -> tuple[dict[str, str], list[NodeProblem]]:
        return {}, []

    async def activate(self, local: LocalNode, families: Set[Family]) -> list[NodeProblem]:
        return []

    def devices(self) -> tuple[str, ...]:
        return ()

    def plan(self, local: LocalNode, peers: Mapping[Family, Sequence[Peer]], reach: Mapping[str, Reach]) -> Plan:
        return Plan()

    async def teardown(self) -> None:
        return None
