"""One pod's network: netns ``pk-<uid12>``, veth ``pkv<hash>`` on the bridge, an address from IPAM
(one per family on a dual-stack node, each with its default route), the bridge's MTU on both ends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.ipcmd import CniError, ip, ip_batch

__all__ = ["PodNetwork", "netns_name", "netns_path", "setup_pod_network", "teardown_pod_network", "veth_name"]

NETNS_PREFIX = "pk-"
VETH_PREFIX = "pkv"


def netns_name(uid: str) -> str:
    return NETNS_PREFIX + uid.replace("-", "")[:12]


def netns_path(uid: str) -> str:
    return f"/run/netns/{netns_name(uid)}"


def veth_name(uid: str) -> str:
    return VETH_PREFIX + hashlib.sha256(uid.encode()).hexdigest()[:11]


@dataclass(frozen=True, slots=True)
class PodNetwork:
    netns: str
    veth: str
    ip: str
    gateway: str
    ips: tuple[str, ...] = ()      # every address of the pod, primary first


async def setup_pod_network(uid: str, cfg: BridgeConfig, ipam: HostLocalIpam) -> PodNetwork:
    """Idempotent: an existing netns with its address is reused (agent restart)."""
    ns, veth = netns_name(uid), veth_name(uid)
    pod_ips = ipam.allocate_all(uid)
    pod_ip = pod_ips[0]
    try:
        if not Path(netns_path(uid)).exists():  # noqa: ASYNC240 - small local file / adopted pid poll
            await ip("netns", "add", ns)
        host_links = await ip("link", "show", veth, check=False)
        if not host_links:
            await ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        mtu = [f"link set {veth} mtu {cfg.mtu}"] if cfg.mtu else []
        await ip_batch([*mtu, f"link set {veth} master {cfg.bridge_name}",
                        f"link set {veth} type bridge_slave hairpin on",
                        f"link set {veth} up"])
        addrs = await ip("-o", "addr", "show", "dev", "eth0", netns=ns)
        cmds = [f"link set eth0 mtu {cfg.mtu}"] if cfg.mtu else []
        cmds += ["link set lo up", "link set eth0 up"]
        for addr, (gw, plen) in zip(pod_ips, cfg.gateways(), strict=False):
            six = ":" in addr
            if f" {addr}/" not in addrs:
                cmds.insert(0, f"addr add {addr}/{plen} dev eth0" + (" nodad" if six else ""))
            cmds.append(f"route replace default via {gw} dev eth0")
        await ip_batch(cmds, netns=ns)
    except CniError:
        await teardown_pod_network(uid, ipam)
        raise
    return PodNetwork(ns, veth, pod_ip, cfg.gateway, tuple(pod_ips))


async def teardown_pod_network(uid: str, ipam: HostLocalIpam | None) -> None:
    await ip("link", "del", veth_name(uid), check=False)
    await ip("netns", "del", netns_name(uid), check=False)
    if ipam is not None:
        ipam.release(uid)
