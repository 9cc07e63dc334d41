"""The node's pod bridge: gateway address(es), forwarding, the service-CIDR routes, and the overlap check.

Pods are not ports of the bridge: each pod's host-side veth is a routed link (a /32 and /128 route per
pod address, :mod:`pyk3s.agent.cni.podnet`). The bridge holds the gateway address of each family and is
the sink for every address nothing owns: the service CIDR and the pod CIDR's unassigned addresses route
into it and die there, never leaving the machine. Every pod link of a node is in one interface group
(:func:`pod_link_group`), which the service proxy and network policy match instead of a device name.

Before anything changes, every host route of both families is compared with the cluster and service
CIDRs; a route we did not create (not on our bridge) that overlaps refuses start-up with
:class:`CniError`. A dual-stack node's bridge holds the first address of each pod CIDR (IPv6 without
duplicate address detection, so pods have their gateway at once).
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass

from pyk3s.agent.cni.ipcmd import POD_ROUTE_PROTO, ROUTE_PROTO, CniError, ip, ip_json, write_sysctl

__all__ = ["BridgeConfig", "check_route_overlap", "ensure_bridge", "overlapping_routes", "pod_link_group",
           "remove_bridge"]


def pod_link_group(bridge_name: str) -> int:
    """The interface group of the pod links of the node whose bridge is ``bridge_name``. Several nodes
    may share a network namespace (test clusters), each with its own bridge: each gets its own group."""
    return 0x70000000 | (zlib.crc32(bridge_name.encode()) & 0x0FFFFFFF)


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    bridge_name: str
    pod_cidr: str
    cluster_cidrs: tuple[str, ...]
    service_cidrs: tuple[str, ...]
    extra_pod_cidrs: tuple[str, ...] = ()   # the other family's pod CIDR on a dual-stack node
    mtu: int = 0                            # of the bridge and the pods' interfaces; 0: the kernel's default

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr, strict=False).network_address + 1)

    @property
    def prefix_len(self) -> int:
        return ipaddress.ip_network(self.pod_cidr, strict=False).prefixlen

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        return (self.pod_cidr, *self.extra_pod_cidrs)

    @property
    def link_group(self) -> int:
        return pod_link_group(self.bridge_name)

    def gateways(self) -> list[tuple[str, int]]:
        """(gateway, prefix length) of each pod CIDR, primary first."""
        nets = [ipaddress.ip_network(c, strict=False) for c in self.pod_cidrs]
        return [(str(n.network_address + 1), n.prefixlen) for n in nets]


def overlapping_routes(routes: list[dict], cidrs: tuple[str, ...], own_devs: set[str]) -> list[str]:
    """Routes (``ip -j route`` rows) that overlap one of ``cidrs`` and are not ours: not on one of
    ``own_devs``, not a host-gw route to another node's pods (``proto 201``, left behind when this
    node's agent was killed without a chance to remove them), and not a route to one of this node's
    pods (``proto 202``, on its veth: pods keep running across an agent restart)."""
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    bad = []
    for r in routes:
        dst = r.get("dst", "")
        if dst in ("default", "") or r.get("dev") in own_devs or r.get("type") in ("local", "broadcast"):
            continue
        if str(r.get("protocol", "")) in (ROUTE_PROTO, POD_ROUTE_PROTO):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        for n in nets:
            if n.version == net.version and n.overlaps(net):
                bad.append(f"{dst} dev {r.get('dev', '?')} overlaps {n}")
    return bad


async def check_route_overlap(cfg: BridgeConfig) -> None:
    routes = await ip_json("-4", "route", "show")
    if any(ipaddress.ip_network(c, strict=False).version == 6 for c in cfg.cluster_cidrs + cfg.service_cidrs):
        try:
            routes += await ip_json("-6", "route", "show")
        except CniError:
            pass  # no IPv6 in this kernel: the agent reports it and leaves IPv6 out
    bad = overlapping_routes(routes, cfg.cluster_cidrs + cfg.service_cidrs, {cfg.bridge_name})
    if bad:
        raise CniError("cni: refusing to configure pod networking: cluster-cidr/service-cidr overlap "
                       "existing host routes: " + "; ".join(bad))


async def ensure_bridge(cfg: BridgeConfig) -> None:
    """Idempotently create and configure the bridge, then route the service CIDR into it."""
    await check_route_overlap(cfg)
    links = {link["ifname"] for link in await ip_json("link", "show")}
    if cfg.bridge_name not in links:
        # no ports: pod traffic is routed, so br_netfilter has nothing to show nftables here
        await ip("link", "add", cfg.bridge_name, "type", "bridge")
    fams = {ipaddress.ip_network(c, strict=False).version for c in cfg.pod_cidrs}
    if 6 in fams:
        write_sysctl(f"net.ipv6.conf.{cfg.bridge_name}.accept_ra", "0")
    if cfg.mtu:
        await ip("link", "set", cfg.bridge_name, "mtu", str(cfg.mtu))
    rows = await ip_json("addr", "show", "dev", cfg.bridge_name)
    have = {(a["local"], a["prefixlen"]) for d in rows for a in d.get("addr_info", [])
            if a.get("scope") == "global" and a.get("family") in ("inet", "inet6")}
    want = set(cfg.gateways())
    for local, plen in have - want:
        await ip("addr", "del", f"{local}/{plen}", "dev", cfg.bridge_name, check=False)
    for gw, plen in cfg.gateways():
        if (gw, plen) not in have:
            await ip("addr", "add", f"{gw}/{plen}", "dev", cfg.bridge_name, *(["nodad"] if ":" in gw else []))
    await ip("link", "set", cfg.bridge_name, "up")
    if 4 in fams:
        write_sysctl("net.ipv4.ip_forward", "1")
    if 6 in fams:
        write_sysctl("net.ipv6.conf.all.forwarding", "1")
    for cidr in cfg.service_cidrs:
        fam = ipaddress.ip_network(cidr, strict=False).version
        if fam in fams:
            await ip(f"-{fam}", "route", "replace", cidr, "dev", cfg.bridge_name)


async def remove_bridge(bridge_name: str) -> None:
    await ip("link", "del", bridge_name, check=False)
