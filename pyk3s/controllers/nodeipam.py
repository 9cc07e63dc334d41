"""Pod CIDRs for nodes, as kube-controller-manager's ``--allocate-node-cidrs`` does in K3s.

One allocator (it runs on the controllers' leader) hands each Node without ``spec.podCIDR`` the lowest
free /24 of each cluster CIDR and remembers what it handed out, so two nodes registering at the same
moment never get the same range even before the cache shows the first write. Agents wait for the
field instead of choosing a range themselves.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from pyk3s.client import Conflict, NotFound
from pyk3s.client.controller import Result

from .common.loop import Loop

__all__ = ["NodeIpamController", "allocate", "node_cidrs"]

log = logging.getLogger("pyk3s.controllers.nodeipam")

IPV4_MASK = 24
IPV6_MASK = 64


def node_cidrs(node: dict[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    return [c for c in (spec.get("podCIDRs") or [spec.get("podCIDR")]) if c]


def _mask(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    return IPV4_MASK if net.version == 4 else max(IPV6_MASK, net.prefixlen)


def allocate(cluster_cidrs: Sequence[str], taken: Iterable[str]) -> list[str]:
    """The lowest free subnet of each cluster CIDR (pure). Raises ValueError when one is full."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    out: list[str] = []
    for cidr in cluster_cidrs:
        net = ipaddress.ip_network(cidr, strict=False)
        for sub in net.subnets(new_prefix=_mask(net)):
            if not any(sub.overlaps(u) for u in used if u.version == sub.version):
                out.append(str(sub))
                break
        else:
            raise ValueError(f"nodeipam: no free /{_mask(net)} left in cluster-cidr {cidr}")
    return out


class NodeIpamController(Loop):
    name = "nodeipam"

    def __init__(self, client: Any, settings: Any = None) -> None:
        super().__init__(client, settings)
        self.nodes = self.informer("v1", "nodes")
        self.controller.watch(self.nodes)
        self.api = client.resource("v1", "nodes")
        self._handed_out: dict[str, list[str]] = {}

    def _taken(self, except_node: str) -> list[str]:
        taken = [c for n in self.nodes.list() if n["metadata"]["name"] != except_node for c in node_cidrs(n)]
        taken += [c for name, cidrs in self._handed_out.items() if name != except_node for c in cidrs]
        return taken

    async def reconcile(self, key: str) -> Result | None:
        node = self.nodes.get(key)
        if node is None:
            self._handed_out.pop(key, None)
            return None
        if node_cidrs(node):
            self._handed_out[key] = node_cidrs(node)
            return None
        try:
            cidrs = allocate(self.settings.cluster_cidrs, self._taken(key))
        except ValueError as err:
            await self.client.record_event({**node, "apiVersion": "v1", "kind": "Node"}, type="Warning",
                                           reason="CIDRNotAvailable", message=str(err), component="nodeipam")
            return Result.after(30)
        patch = {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                 "spec": {"podCIDR": cidrs[0], "podCIDRs": cidrs}}
        try:
            await self.api.patch(key, patch, field_manager="nodeipam-controller")
        except (Conflict, NotFound):
            return Result.after(0.2)
        self._handed_out[key] = cidrs
        log.info("nodeipam: node %s gets podCIDRs %s", key, ",".join(cidrs))
        return None
