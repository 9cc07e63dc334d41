"""flannel's ``host-gw`` backend: each other node's pod CIDR is routed via that node's address.

That works only when the next hop is on a link both nodes share: a peer the kernel reaches through a
router (or not at all) is refused with a ``HostGwPeerNotOnLink`` (``HostGwPeerUnreachable``) event on
that Node, and its pods are not routed. Nothing is encapsulated, so pods get the underlay's MTU.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Set
from typing import ClassVar

from .backend import MIN_MTU, LocalNode
from .model import (
    BACKEND_DATA,
    BACKEND_TYPE,
    BACKEND_V6_DATA,
    PUBLIC_IP,
    PUBLIC_IPV6,
    SUBNET_MANAGED,
    Family,
    NodeProblem,
    Peer,
    Plan,
    PodRoute,
    Reach,
)
from .underlay import Underlay

__all__ = ["HostGwBackend"]


class HostGwBackend:
    name: ClassVar[str] = "host-gw"

    def pod_mtu(self, underlay: Underlay, families: Sequence[Family]) -> int:
        return underlay.mtu

    async def prepare(self, local: LocalNode) -> tuple[dict[str, str], list[NodeProblem]]:
        problems = [NodeProblem(local.name, "OverlayMTUTooSmall",
                            f"host-gw: {local.underlay.iface} has MTU {local.underlay.mtu}, below the "
                            f"{MIN_MTU[f]} IPv{f} needs")
                    for f in local.families if local.underlay.mtu < MIN_MTU[f]]
        ann = {BACKEND_TYPE: self.name, SUBNET_MANAGED: "true"}
        for fam in local.families:
            public = local.public_ips.get(fam) or local.underlay.addresses.get(fam, "")
            if public:
                ann[PUBLIC_IP if fam == 4 else PUBLIC_IPV6] = public
                ann[BACKEND_DATA if fam == 4 else BACKEND_V6_DATA] = json.dumps(None)
        return ann, problems

    async def activate(self, local: LocalNode, families: Set[Family]) -> list[NodeProblem]:
        return []

    def devices(self) -> tuple[str, ...]:
        return ()

    def plan(self, local: LocalNode, peers: Mapping[Family, Sequence[Peer]], reach: Mapping[str, Reach]) -> Plan:
        routes: set[PodRoute] = set()
        problems: list[NodeProblem] = []
        routed: list[str] = []
        for fam in local.families:
            for p in sorted(peers.get(fam, ()), key=lambda x: x.name):
                if p.backend_type and p.backend_type != self.name:
                    problems.append(NodeProblem(p.name, "FlannelBackendMismatch",
                                            f"node {p.name} uses the {p.backend_type} backend, node {local.name} "
                                            f"uses {self.name}; pod traffic between them is not routed"))
                    continue
                if not p.public_ip:
                    continue  # not published yet: the node is still starting
                r = reach.get(p.public_ip)
                if r is None or not r.ok:
                    why = r.error if r is not None else "not checked"
                    problems.append(NodeProblem(p.name, "HostGwPeerUnreachable",
                                            f"host-gw: node {local.name} has no route to node {p.name} at "
                                            f"{p.public_ip} ({why}); its pods are not routed"))
                    continue
                if r.via:
                    problems.append(NodeProblem(p.name, "HostGwPeerNotOnLink",
                                            f"host-gw: node {p.name} ({p.public_ip}) does not share a link with "
                                            f"node {local.name}, which reaches it through the router {r.via} on "
                                            f"{r.dev}; its pods are not routed (nodes in different subnets need "
                                            f"--flannel-backend=vxlan)"))
                    continue
                routes.add(PodRoute(dst=p.pod_cidr, via=p.public_ip))
                routed.append(p.name)
        return Plan(routes=frozenset(routes), problems=tuple(problems), routed=tuple(sorted(set(routed))))

    async def teardown(self) -> None:
        return None
