"""``--flannel-*`` settings, the address families a node can use, and the agent's start-up of the overlay.

K3s's split: ``--flannel-backend`` (vxlan, host-gw, none; default vxlan), ``--flannel-external-ip`` and
``--flannel-ipv6-masq`` are server settings every node gets from the server it joins; ``--flannel-iface``
is per node. As in K3s, a node given ``--flannel-iface`` and no ``--node-ip`` takes that interface's
addresses as its node IPs.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import make_backend
from .backend import LocalNode, OverlayBackend
from .model import Family, NodeProblem, pod_cidrs
from .sync import OverlaySync
from .underlay import Underlay, find_underlay, iface_addresses

__all__ = ["BACKEND_NAMES", "OverlaySettings", "OverlayStart", "ipv6_available", "node_families", "order_node_ips",
           "prepare_overlay", "start_overlay"]

log = logging.getLogger("pyk3s.agent.overlay")
BACKEND_NAMES = ("vxlan", "host-gw", "none")


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    backend: str = "vxlan"          # --flannel-backend
    iface: str = ""                 # --flannel-iface
    external_ip: bool = False       # --flannel-external-ip: peers tunnel to the node's external IPs
    ipv6_masq: bool = False         # --flannel-ipv6-masq: masquerade IPv6 pod traffic leaving the cluster

    def check(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ValueError(f"--flannel-backend {self.backend!r}: supported values: {', '.join(BACKEND_NAMES)} "
                             "(wireguard-native and tailscale are not available in pyk3s)")


def ipv6_available(proc: Path = Path("/proc/sys/net/ipv6")) -> str:
    """"" when this network namespace has IPv6, else why not."""
    flag = proc / "conf" / "all" / "disable_ipv6"
    try:
        value = flag.read_text().strip()
    except FileNotFoundError:
        return "the kernel has no IPv6 (no /proc/sys/net/ipv6: booted with ipv6.disable=1 or built without it)"
    return "" if value == "0" else "IPv6 is disabled (net.ipv6.conf.all.disable_ipv6=1)"


def node_families(cluster_cidrs: Sequence[str], ipv6_problem: str) -> tuple[tuple[Family, ...], str]:
    """The families of the cluster CIDRs this node can serve, and the IPv6 problem if one is dropped."""
    fams = tuple(dict.fromkeys(ipaddress.ip_network(c, strict=False).version for c in cluster_cidrs))
    if 6 in fams and ipv6_problem:
        return tuple(f for f in fams if f != 6), ipv6_problem
    return fams, ""


def order_node_ips(node_ips: Sequence[str], cluster_cidrs: Sequence[str]) -> list[str]:
    """K3s's rule: with two node IPs, the one of the first cluster CIDR's family comes first."""
    ips = list(node_ips)
    if len(ips) > 1 and cluster_cidrs and ipaddress.ip_address(ips[0]).version != \
            ipaddress.ip_network(cluster_cidrs[0], strict=False).version:
        ips[0], ips[1] = ips[1], ips[0]
    return ips


@dataclass(frozen=True, slots=True)
class OverlayStart:
    sync: OverlaySync
    pod_mtu: int
    problems: tuple[NodeProblem, ...]


async def prepare_overlay(settings: OverlaySettings, node_ips: Sequence[str]) -> tuple[Underlay | None, list[str]]:
    """Before registration: the underlay, and the node IPs (``--flannel-iface``'s addresses when none given)."""
    if settings.backend == "none":
        return None, list(node_ips)
    underlay = await find_underlay(settings.iface, node_ips or await iface_addresses(settings.iface))
    if not underlay.iface:
        log.info("overlay: node IP %s is a loopback address: no tunnel to other nodes", ",".join(node_ips))
        return None, list(node_ips)
    if not node_ips and settings.iface:
        node_ips = [underlay.addresses[f] for f in (4, 6) if f in underlay.addresses]
        log.info("overlay: node IPs from --flannel-iface %s: %s", settings.iface, ", ".join(node_ips))
    return underlay, list(node_ips)


async def start_overlay(client: Any, settings: OverlaySettings, *, node: Mapping[str, Any],
                        nodes: Sequence[Mapping[str, Any]], underlay: Underlay | None, families: Sequence[Family],
                        cluster_cidrs: Sequence[str], bridge: str, external_ips: Sequence[str]) -> OverlayStart:
    """After registration: devices made, annotations published; run ``sync.run(nodes informer)`` next."""
    name = node["metadata"]["name"]
    own: dict[Family, str] = {}
    for c in pod_cidrs(node):
        net = ipaddress.ip_network(c, strict=False)
        own[net.version] = str(net)
    # --flannel-backend none, or a node that can reach no other node: nothing to make or publish
    backend: OverlayBackend = make_backend(settings.backend if underlay is not None else "none", bridge)
    local = LocalNode(name=name, created="", families=tuple(f for f in families if f in own), pod_cidrs=own,
                      cluster_cidrs=tuple(cluster_cidrs), underlay=underlay or Underlay("", 0))
    sync = OverlaySync(client, backend, local, external_ips=external_ips, use_external_ip=settings.external_ip)
    problems = await sync.start(node, nodes)
    mtu = 0
    if underlay is not None and not any(p.reason in ("OverlayMTUTooSmall", "VTEPAddressMissing") for p in problems):
        mtu = backend.pod_mtu(underlay, sync.local.families or (4,))
    log.info("overlay: %s backend on node %s%s%s", settings.backend, name,
             f" over {underlay.iface} ({', '.join(underlay.addresses.values())})" if underlay else "",
             f", pod MTU {mtu}" if mtu else "")
    return OverlayStart(sync, mtu, tuple(problems))
