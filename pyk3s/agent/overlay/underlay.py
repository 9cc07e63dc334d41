"""The underlay: the interface and addresses this node's tunnel (or host-gw next hop) uses.

Choice, in order: ``--flannel-iface``; else the interface holding the first ``--node-ip``; else the
interface of the default route (IPv4 first, then IPv6). On that interface the address of each family is
the ``--node-ip`` of that family when the interface holds it, else its first global address. K3s's
flannel takes the default-route interface even when ``--node-ip`` names another one (k3s#12056);
pyk3s follows the node IP, so a node given ``--node-ip`` on a second network tunnels over that network.

``ip route get`` tells how a peer's address is reached (:func:`reach`): on a shared link, through a
router, or not at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pyk3s.agent.cni.ipcmd import CniError, ip_json

from .model import Family, Reach

__all__ = ["Underlay", "UnderlayError", "choose_underlay", "find_underlay", "iface_addresses", "link_mtu", "reach", "reach_all"]


class UnderlayError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Underlay:
    iface: str
    mtu: int
    addresses: Mapping[Family, str] = field(default_factory=dict)   # family -> this node's address


def _global(addr: Mapping) -> bool:
    if addr.get("scope") not in (None, "global"):
        return False
    try:
        a = ipaddress.ip_address(addr.get("local", ""))
    except ValueError:
        return False
    return not (a.is_link_local or a.is_loopback)


def choose_underlay(links: Sequence[Mapping], iface: str, node_ips: Sequence[str],
                    default_dev: str) -> Underlay:
    """Pure: ``links`` are ``ip -j addr show`` rows; ``default_dev`` the default route's device ("" if none)."""
    by_name = {lk.get("ifname", ""): lk for lk in links}
    if not iface and node_ips and all(ipaddress.ip_address(n).is_loopback for n in node_ips):
        return Underlay("", 0)   # a node on 127.0.0.1 (one machine) has no peers to reach
    chosen = ""
    if iface:
        if iface not in by_name:
            raise UnderlayError(f"flannel: --flannel-iface {iface}: no such interface on this node")
        chosen = iface
    else:
        for node_ip in node_ips:
            if ipaddress.ip_address(node_ip).is_loopback:
                continue
            for lk in links:
                if any(a.get("local") == node_ip for a in lk.get("addr_info") or []):
                    chosen = lk.get("ifname", "")
                    break
            if chosen:
                break
        if not chosen:
            chosen = default_dev
    if not chosen or chosen not in by_name:
        raise UnderlayError("flannel: no interface for the pod network between nodes: give --flannel-iface or "
                            "--node-ip (this node has no default route)")
    link = by_name[chosen]
    addrs = [a for a in link.get("addr_info") or [] if _global(a)]
    out: dict[Family, str] = {}
    for fam in (4, 6):
        mine = [a["local"] for a in addrs if ipaddress.ip_address(a["local"]).version == fam]
        wanted = [n for n in node_ips if n in mine]
        if wanted or mine:
            out[fam] = (wanted or mine)[0]
    return Underlay(iface=chosen, mtu=int(link.get("mtu") or 1500), addresses=out)


async def _default_dev() -> str:
    for fam in ("-4", "-6"):
        try:
            rows = await ip_json(fam, "route", "show", "default")
        except CniError:
            continue
        for r in rows:
            if r.get("dev"):
                return str(r["dev"])
    return ""


async def find_underlay(iface: str, node_ips: Sequence[str]) -> Underlay:
    links = await ip_json("addr", "show")
    return choose_underlay(links, iface, node_ips, await _default_dev())


async def iface_addresses(iface: str) -> list[str]:
    """The first global address of each family on ``iface`` ([] without one): K3s's node IPs when
    ``--flannel-iface`` is given and ``--node-ip`` is not."""
    if not iface:
        return []
    u = choose_underlay(await ip_json("addr", "show"), iface, [], "")
    return [u.addresses[f] for f in (4, 6) if f in u.addresses]


async def reach(address: str) -> Reach:
    try:
        rows = await ip_json("route", "get", address)
    except CniError as exc:
        return Reach(False, error=str(exc).rsplit(": ", 1)[-1])
    if not rows:
        return Reach(False, error="no route")
    row = rows[0]
    if row.get("type") in ("unreachable", "blackhole", "prohibit"):
        return Reach(False, error=f"route type {row['type']}")
    return Reach(True, dev=str(row.get("dev", "")), via=str(row.get("gateway", "")))


async def reach_all(addresses: Iterable[str]) -> dict[str, Reach]:
    out: dict[str, Reach] = {}
    for a in sorted(set(addresses)):
        if a:
            out[a] = await reach(a)
    return out


async def link_mtu(dev: str) -> int:
    rows = await ip_json("link", "show", "dev", dev)
    return int(rows[0].get("mtu") or 0) if rows else 0




