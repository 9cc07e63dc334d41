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


async def setup_pod_network(uid: str, cfg: BridgeConfig, ipam: HostLocalIpam, netns: str | None = None,
                            ifname: str = "eth0", fresh: bool = False) -> PodNetwork:
    """Idempotent: an existing netns with its addresses is reused (agent restart). ``netns``: the name of
    a namespace someone else made (the CNI plugin's case); by default the pod's own ``pk-`` one.
    ``fresh``: the namespace was just made (a CNI ADD), so two ``ip -batch`` runs do it all, as they do for
    a pod whose own namespace does not exist yet; should anything be there already, the step-by-step way
    below takes over. A dual-stack node gives the pod an address and a default route per family; both
    ends of the veth get the bridge's MTU."""
    ns, veth = netns or netns_name(uid), veth_name(uid)
    pod_ips = ipam.allocate_all(uid)
    pod_ip = pod_ips[0]
    mtu = [f"link set {veth} mtu {cfg.mtu}"] if cfg.mtu else []
    inner_mtu = [f"link set {ifname} mtu {cfg.mtu}"] if cfg.mtu else []
    addresses = [(addr, gw, plen, ":" in addr) for addr, (gw, plen) in zip(pod_ips, cfg.gateways(), strict=False)]
    own = netns is None
    # our own namespace not there yet: made in the same batch as the veth (iproute2 returns to the
    # node's namespace after ``netns add``), so a new pod costs two ``ip`` runs
    make_ns = own and not Path(netns_path(uid)).exists()  # noqa: ASYNC240 - small local file
    if make_ns or (fresh and not own):
        try:
            await ip_batch([*([f"netns add {ns}"] if make_ns else []),
                            f"link add {veth} type veth peer name {ifname} netns {ns}", *mtu,
                            f"link set {veth} master {cfg.bridge_name}",
                            f"link set {veth} type bridge_slave hairpin on",
                            f"link set {veth} up"])
            await ip_batch([*(f"addr add {a}/{plen} dev {ifname}" + (" nodad" if six else "")
                              for a, _, plen, six in addresses), *inner_mtu, "link set lo up",
                            f"link set {ifname} up",
                            *(f"route replace default via {gw} dev {ifname}" for _, gw, _, _ in addresses)],
                           netns=ns)
            return PodNetwork(ns, veth, pod_ip, cfg.gateway, tuple(pod_ips))
        except CniError:
            if make_ns:  # start over step by step from nothing
                await ip_batch([f"link del {veth}", f"netns del {ns}"], force=True, check=False)
    try:
        if netns is None and not Path(netns_path(uid)).exists():  # noqa: ASYNC240 - small local file
            await ip("netns", "add", ns)
        host_links = await ip("link", "show", veth, check=False)
        if not host_links:
            await ip("link", "add", veth, "type", "veth", "peer", "name", ifname, "netns", ns)
        await ip_batch([*mtu, f"link set {veth} master {cfg.bridge_name}",
                        f"link set {veth} type bridge_slave hairpin on",
                        f"link set {veth} up"])
        have = await ip("-o", "addr", "show", "dev", ifname, netns=ns)
        cmds = [*inner_mtu, "link set lo up", f"link set {ifname} up"]
        for a, gw, plen, six in addresses:
            if f" {a}/" not in have:
                cmds.insert(0, f"addr add {a}/{plen} dev {ifname}" + (" nodad" if six else ""))
            cmds.append(f"route replace default via {gw} dev {ifname}")
        await ip_batch(cmds, netns=ns)
    except CniError:
        await teardown_pod_network(uid, ipam, own_netns=netns is None)
        raise
    return PodNetwork(ns, veth, pod_ip, cfg.gateway, tuple(pod_ips))


async def teardown_pod_network(uid: str, ipam: HostLocalIpam | None, own_netns: bool = True) -> None:
    """``own_netns=False``: the namespace belongs to the container runtime, which removes it."""
    await ip_batch([f"link del {veth_name(uid)}", *([f"netns del {netns_name(uid)}"] if own_netns else [])],
                   force=True, check=False)
    if ipam is not None:
        ipam.release(uid)
