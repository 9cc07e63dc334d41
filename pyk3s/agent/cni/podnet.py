"""One pod's network: netns ``pk-<uid12>``, veth ``pkv<hash>`` routed from the node, an address from
IPAM (one per family on a dual-stack node), the bridge's MTU on both ends.

The veth is a routed link, not a bridge port. The node routes each pod address (``/32``, ``/128``,
``proto 202``, source the node's gateway address) into the pod's veth, which is in the node's pod-link
group (:func:`pyk3s.agent.cni.bridge.pod_link_group`). The pod holds its addresses as ``/32`` and
``/128`` and a default route ``onlink`` via the gateway of each family, so every packet it sends,
same-node pods' included, is routed by the node (nftables judges it in the forward hook). Both ends get
a fixed MAC address made from the pod UID and a permanent neighbour entry for the other end: neither ARP
nor IPv6 neighbour discovery is needed (the gateway address is on the bridge, not on the veth, and IPv6
answers solicitations only for the receiving link's own addresses).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.ipcmd import POD_ROUTE_PROTO, CniError, ip, ip_batch, write_sysctl

__all__ = ["PodNetwork", "link_macs", "netns_name", "netns_path", "setup_pod_network", "teardown_pod_network",
           "veth_name"]

NETNS_PREFIX = "pk-"
VETH_PREFIX = "pkv"


def netns_name(uid: str) -> str:
    return NETNS_PREFIX + uid.replace("-", "")[:12]


def netns_path(uid: str) -> str:
    return f"/run/netns/{netns_name(uid)}"


def veth_name(uid: str) -> str:
    return VETH_PREFIX + hashlib.sha256(uid.encode()).hexdigest()[:11]


def link_macs(uid: str) -> tuple[str, str]:
    """(node side, pod side) MAC addresses of a pod's veth: locally administered, unicast, fixed by the UID
    so an agent restart finds the same ones."""
    def mac(side: str) -> str:
        digest = hashlib.sha256(f"{side}/{uid}".encode()).digest()
        return "0e:" + ":".join(f"{b:02x}" for b in digest[:5])
    return mac("node"), mac("pod")


@dataclass(frozen=True, slots=True)
class PodNetwork:
    netns: str
    veth: str
    ip: str
    gateway: str
    ips: tuple[str, ...] = ()      # every address of the pod, primary first


def _host_side(veth: str, cfg: BridgeConfig, addresses: list[tuple[str, str, int, bool]],
               pod_mac: str) -> list[str]:
    """The node side's routes and neighbours for the pod's addresses (``replace``: idempotent)."""
    cmds = []
    for a, gw, _, six in addresses:
        cmds.append(f"route replace {a}/{128 if six else 32} dev {veth} src {gw} proto {POD_ROUTE_PROTO}")
        cmds.append(f"neigh replace {a} lladdr {pod_mac} dev {veth} nud permanent")
    return cmds


def _pod_side(ifname: str, addresses: list[tuple[str, str, int, bool]], node_mac: str) -> list[str]:
    cmds = []
    for _, gw, _, _ in addresses:
        cmds.append(f"neigh replace {gw} lladdr {node_mac} dev {ifname} nud permanent")
        cmds.append(f"route replace default via {gw} dev {ifname} onlink")
    return cmds


def _host_sysctls(veth: str, addresses: list[tuple[str, str, int, bool]]) -> None:
    if any(not six for *_, six in addresses):
        # NodePorts and hostPorts on 127.0.0.1 are DNATed to pods: the kernel lets 127/8 out only through
        # a link that allows it
        write_sysctl(f"net.ipv4.conf.{veth}.route_localnet", "1")


async def setup_pod_network(uid: str, cfg: BridgeConfig, ipam: HostLocalIpam, netns: str | None = None,
                            ifname: str = "eth0", fresh: bool = False) -> PodNetwork:
    """Idempotent: an existing netns with its addresses is reused (agent restart), its routes put back.
    ``netns``: the name of a namespace someone else made (the CNI plugin's case); by default the pod's own
    ``pk-`` one. ``fresh``: the namespace was just made (a CNI ADD), so two ``ip -batch`` runs do it all,
    as they do for a pod whose own namespace does not exist yet; should anything be there already, the
    step-by-step way below takes over (it also turns a pod wired as a bridge port by an earlier release
    into a routed one)."""
    ns, veth = netns or netns_name(uid), veth_name(uid)
    pod_ips = ipam.allocate_all(uid)
    pod_ip = pod_ips[0]
    node_mac, pod_mac = link_macs(uid)
    group = cfg.link_group
    mtu = [f"link set {veth} mtu {cfg.mtu}"] if cfg.mtu else []
    inner_mtu = [f"link set {ifname} mtu {cfg.mtu}"] if cfg.mtu else []
    addresses = [(addr, gw, plen, ":" in addr) for addr, (gw, plen) in zip(pod_ips, cfg.gateways(), strict=False)]
    pod_addrs = [f"addr add {a}/{128 if six else 32} dev {ifname}" + (" nodad" if six else "")
                 for a, _, _, six in addresses]
    own = netns is None
    # our own namespace not there yet: made in the same batch as the veth (iproute2 returns to the
    # node's namespace after ``netns add``), so a new pod costs two ``ip`` runs
    make_ns = own and not Path(netns_path(uid)).exists()  # noqa: ASYNC240 - small local file
    if make_ns or (fresh and not own):
        try:
            await ip_batch([*([f"netns add {ns}"] if make_ns else []),
                            f"link add {veth} address {node_mac} group {group} type veth "
                            f"peer name {ifname} address {pod_mac} netns {ns}", *mtu,
                            f"link set {veth} up", *_host_side(veth, cfg, addresses, pod_mac)])
            _host_sysctls(veth, addresses)
            await ip_batch([*pod_addrs, *inner_mtu, "link set lo up", f"link set {ifname} up",
                            *_pod_side(ifname, addresses, node_mac)], netns=ns)
            return PodNetwork(ns, veth, pod_ip, cfg.gateway, tuple(pod_ips))
        except CniError:
            if make_ns:  # start over step by step from nothing
                await ip_batch([f"link del {veth}", f"netns del {ns}"], force=True, check=False)
    try:
        if netns is None and not Path(netns_path(uid)).exists():  # noqa: ASYNC240 - small local file
            await ip("netns", "add", ns)
        host_links = await ip("link", "show", veth, check=False)
        if not host_links:
            await ip("link", "add", veth, "address", node_mac, "group", str(group), "type", "veth",
                     "peer", "name", ifname, "address", pod_mac, "netns", ns)
        elif " master " in host_links:
            await ip("link", "set", veth, "nomaster")
        await ip_batch([*mtu, f"link set {veth} address {node_mac} group {group}", f"link set {veth} up",
                        *_host_side(veth, cfg, addresses, pod_mac)])
        _host_sysctls(veth, addresses)
        have = await ip("-o", "addr", "show", "dev", ifname, netns=ns)
        cmds = []
        for (a, _, plen, six), add in zip(addresses, pod_addrs, strict=True):
            if f" {a}/{128 if six else 32} " in have:
                continue
            if f" {a}/" in have:  # on-link prefix of a bridged pod: now every packet goes via the gateway
                cmds.append(f"addr del {a}/{plen} dev {ifname}")
            cmds.append(add)
        await ip_batch([*cmds, *inner_mtu, f"link set {ifname} address {pod_mac}", "link set lo up",
                        f"link set {ifname} up", *_pod_side(ifname, addresses, node_mac)], netns=ns)
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
