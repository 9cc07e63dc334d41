"""flannel's ``vxlan`` backend (K3s's default): one VXLAN device per address family, VNI 1, UDP 8472.

For every other node, as flannel does it without any L2/L3-miss callouts:

* a permanent neighbour entry: the peer's pod CIDR network address (``10.42.1.0``) -> its VTEP MAC;
* a permanent forwarding (fdb) entry: that MAC -> the peer's public IP (where the UDP goes);
* a route ``<pod CIDR> via <network address> dev <vxlan> onlink``.

The devices are made when the first peer appears (a single node needs none). This node's device carries its own pod CIDR's network address as /32 (/128), holds the MAC it
published before (kept in ``backend-data`` across restarts, unless another node already publishes it),
and has the underlay MTU less the encapsulation: 50 bytes over IPv4, 70 over IPv6.

Problems become events on the Node concerned: a VTEP address the kernel has no route to
(``VTEPUnreachable``), two nodes publishing one MAC (``DuplicateVTEPMAC``: the older node keeps it, the
newer one is not routed until it picks another), a peer on another backend
(``FlannelBackendMismatch``), an underlay MTU too small for the overhead (``OverlayMTUTooSmall``).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from collections.abc import Mapping, Sequence, Set
from typing import ClassVar

from pyk3s.agent.cni.ipcmd import CniError, ip, ip_json, write_sysctl

from .backend import MIN_MTU, LocalNode
from .model import (
    BACKEND_DATA,
    BACKEND_TYPE,
    BACKEND_V6_DATA,
    PUBLIC_IP,
    PUBLIC_IPV6,
    SUBNET_MANAGED,
    Family,
    FdbEntry,
    Neighbour,
    NodeProblem,
    Peer,
    Plan,
    PodRoute,
    Reach,
    vtep_mac,
)
from .underlay import Underlay

__all__ = ["OVERHEAD", "VNI", "VXLAN_PORT", "VxlanBackend", "device_names", "random_mac"]

log = logging.getLogger("pyk3s.agent.overlay")
VNI = 1
VXLAN_PORT = 8472
OVERHEAD: Mapping[Family, int] = {4: 50, 6: 70}   # outer IP + UDP + VXLAN + inner Ethernet


def device_names(bridge: str) -> dict[Family, str]:
    """``pyk3s.1`` / ``pyk3s-v6.1`` beside the default bridge (flannel's ``flannel.1``/``flannel-v6.1``);
    named after the bridge otherwise, so several installations on one machine never share a device."""
    if bridge == "pyk3s0":
        return {4: f"pyk3s.{VNI}", 6: f"pyk3s-v6.{VNI}"}
    return {4: f"{bridge[:10]}.vx{VNI}", 6: f"{bridge[:10]}.v6x{VNI}"[:15]}


def random_mac() -> str:
    """A locally administered unicast MAC."""
    b = bytearray(secrets.token_bytes(6))
    b[0] = (b[0] & 0xFC) | 0x02
    return ":".join(f"{x:02x}" for x in b)


class VxlanBackend:
    name: ClassVar[str] = "vxlan"

    def __init__(self, bridge: str) -> None:
        self.names = device_names(bridge)
        self.local_ips: dict[Family, str] = {}
        self.mtu = 0
        self.macs: dict[Family, str] = {}
        self.made: list[str] = []

    def _vtep_family(self, underlay: Underlay, fam: Family) -> Family:
        return fam if fam in underlay.addresses else next(iter(underlay.addresses), fam)

    def pod_mtu(self, underlay: Underlay, families: Sequence[Family]) -> int:
        return min(underlay.mtu - OVERHEAD[self._vtep_family(underlay, f)] for f in families)

    async def prepare(self, local: LocalNode) -> tuple[dict[str, str], list[NodeProblem]]:
        u = local.underlay
        problems: list[NodeProblem] = []
        mtu = self.pod_mtu(u, local.families)
        small = [f for f in local.families if mtu < MIN_MTU[f]]
        if small:
            problems.append(NodeProblem(local.name, "OverlayMTUTooSmall",
                                    f"vxlan: {u.iface} has MTU {u.mtu}; less the {u.mtu - mtu}-byte VXLAN "
                                    f"overhead that leaves {mtu} for pods, below the "
                                    f"{max(MIN_MTU[f] for f in small)} IPv{max(small)} needs: no tunnel on node "
                                    f"{local.name}, its pods reach only pods on this node (raise the MTU of "
                                    f"{u.iface} or use --flannel-backend=host-gw)"))
            return {}, problems
        ann = {BACKEND_TYPE: self.name, SUBNET_MANAGED: "true"}
        for fam in local.families:
            vfam = self._vtep_family(u, fam)
            local_ip = u.addresses.get(vfam, "")
            if not local_ip:
                problems.append(NodeProblem(local.name, "VTEPAddressMissing",
                                        f"vxlan: {u.iface} has no IPv{vfam} address for the IPv{fam} tunnel"))
                continue
            key = BACKEND_DATA if fam == 4 else BACKEND_V6_DATA
            mac = vtep_mac(local.stored.get(key, ""))
            if mac and mac in local.taken_macs:
                problems.append(NodeProblem(local.name, "DuplicateVTEPMAC",
                                        f"vxlan: the VTEP MAC {mac} stored for node {local.name} is published by "
                                        f"node {local.taken_macs[mac]} too; node {local.name} takes a new one"))
                mac = ""
            mac = mac or random_mac()
            self.macs[fam] = mac
            self.local_ips[fam] = local_ip
            self.mtu = mtu
            ann[key] = json.dumps({"VNI": VNI, "VtepMAC": mac}, separators=(",", ":"))
            public = local.public_ips.get(fam) or local_ip
            ann[PUBLIC_IP if fam == 4 else PUBLIC_IPV6] = public
        return ann, problems

    async def activate(self, local: LocalNode, families: Set[Family]) -> list[NodeProblem]:
        """Make the device of each family that has peers, once: a single node makes none, so several
        one-node installations can share a network namespace (one VNI per UDP port per namespace)."""
        problems: list[NodeProblem] = []
        for fam in sorted(families):
            dev = self.names[fam]
            if fam not in self.macs or dev in self.made:
                continue
            try:
                await self._ensure_device(dev, self.local_ips[fam], local.underlay.iface, self.macs[fam], self.mtu)
                net = ipaddress.ip_network(local.pod_cidrs[fam], strict=False)
                await self._ensure_address(dev, f"{net.network_address}/{net.max_prefixlen}", fam)
            except CniError as exc:
                problems.append(NodeProblem(local.name, "VXLANDeviceFailed", (
                    f"vxlan: node {local.name} cannot make its IPv{fam} tunnel device {dev}: {exc} (VNI {VNI} on "
                    f"UDP {VXLAN_PORT} is taken in this network namespace by another flannel or pyk3s?)")))
        return problems

    async def _ensure_device(self, dev: str, local_ip: str, iface: str, mac: str, mtu: int) -> None:
        rows = await ip_json("-d", "link", "show", "dev", dev) if await _exists(dev) else []
        if rows:
            info = (rows[0].get("linkinfo") or {}).get("info_data") or {}
            same = (info.get("id") == VNI and info.get("port") == VXLAN_PORT
                    and local_ip in (info.get("local"), info.get("local6")) and info.get("link") == iface)
            if not same:
                await ip("link", "del", dev)
                rows = []
        if not rows:
            try:
                await ip("link", "add", dev, "type", "vxlan", "id", str(VNI), "local", local_ip, "dev", iface,
                         "dstport", str(VXLAN_PORT), "nolearning")
            except CniError as exc:
                raise CniError(f"vxlan: cannot create {dev} (VNI {VNI}, UDP {VXLAN_PORT}) on {iface}: {exc}") \
                    from None
        write_sysctl(f"net.ipv6.conf.{dev}.accept_ra", "0")
        await ip("link", "set", dev, "address", mac, "mtu", str(mtu), "up")
        self.made.append(dev)

    async def _ensure_address(self, dev: str, cidr: str, fam: Family) -> None:
        rows = await ip_json(f"-{fam}", "addr", "show", "dev", dev)
        have = {f"{a['local']}/{a['prefixlen']}" for d in rows for a in d.get("addr_info") or []
                if a.get("scope") == "global"}
        for stale in have - {cidr}:
            await ip("addr", "del", stale, "dev", dev, check=False)
        if cidr not in have:
            # an IPv6 /128 would get a prefix route inside the cluster CIDR: the address is only a source
            await ip("addr", "add", cidr, "dev", dev, *(["nodad", "noprefixroute"] if fam == 6 else []))

    def devices(self) -> tuple[str, ...]:
        return tuple(self.made)

    def plan(self, local: LocalNode, peers: Mapping[Family, Sequence[Peer]], reach: Mapping[str, Reach]) -> Plan:
        routes: set[PodRoute] = set()
        neigh: set[Neighbour] = set()
        fdb: set[FdbEntry] = set()
        problems: list[NodeProblem] = []
        routed: set[str] = set()
        for fam in local.families:
            dev = self.names[fam]
            own = self.macs.get(fam)
            if own is None or dev not in self.made:
                continue
            ready = [p for p in peers.get(fam, ()) if p.backend_type == self.name and p.public_ip and p.vtep_mac]
            for p in peers.get(fam, ()):
                if p.backend_type and p.backend_type != self.name:
                    problems.append(NodeProblem(p.name, "FlannelBackendMismatch",
                                            f"node {p.name} uses the {p.backend_type} backend, node {local.name} "
                                            f"uses {self.name}; pod traffic between them is not routed"))
            # one MAC, one tunnel end: the oldest claimant keeps it
            claims: dict[str, list[tuple[str, str]]] = {own: [(local.created, local.name)]}
            for p in ready:
                claims.setdefault(p.vtep_mac, []).append((p.created, p.name))
            losers: dict[str, tuple[str, str]] = {}
            for mac, who in claims.items():
                if len(who) > 1:
                    ordered = sorted(who)
                    for _, name in ordered[1:]:
                        losers[name] = (mac, ordered[0][1])
            for p in sorted(ready, key=lambda x: x.name):
                if p.name in losers:
                    mac, keeper = losers[p.name]
                    problems.append(NodeProblem(p.name, "DuplicateVTEPMAC",
                                            f"vxlan: node {p.name} publishes VTEP MAC {mac}, which node {keeper} "
                                            f"already uses; node {local.name} does not route its pods (restart "
                                            f"the agent on {p.name}: it then picks a new MAC)"))
                    continue
                r = reach.get(p.public_ip)
                if r is None or not r.ok:
                    why = r.error if r is not None else "not checked"
                    problems.append(NodeProblem(p.name, "VTEPUnreachable",
                                            f"vxlan: the VTEP address {p.public_ip} of node {p.name} is not "
                                            f"reachable from node {local.name} ({why}); its pods are not routed"))
                    continue
                gw = str(ipaddress.ip_network(p.pod_cidr, strict=False).network_address)
                neigh.add(Neighbour(dev, gw, p.vtep_mac))
                fdb.add(FdbEntry(dev, p.vtep_mac, p.public_ip))
                routes.add(PodRoute(dst=p.pod_cidr, via=gw, dev=dev, onlink=True))
                routed.add(p.name)
            if local.name in losers:
                mac, keeper = losers[local.name]
                problems.append(NodeProblem(local.name, "DuplicateVTEPMAC",
                                        f"vxlan: node {local.name} uses VTEP MAC {mac}, which node {keeper} "
                                        f"already uses; restart its agent to pick a new one"))
        return Plan(routes=frozenset(routes), neighbours=frozenset(neigh), fdb=frozenset(fdb),
                    problems=tuple(problems), routed=tuple(sorted(routed)))

    async def teardown(self) -> None:
        for dev in self.made:
            await ip("link", "del", dev, check=False)
        self.made.clear()


async def _exists(dev: str) -> bool:
    return bool(await ip("link", "show", "dev", dev, check=False))
