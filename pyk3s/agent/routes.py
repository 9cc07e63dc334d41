"""Pod routes between nodes (flannel's host-gw backend): every other node's pod CIDR goes via its
InternalIP, kept in sync with the Nodes.

Routes this module writes carry ``proto 201`` so they are told apart from every other route: only
those are replaced or removed. A pod CIDR outside the cluster CIDRs, or a node without an IPv4
InternalIP, is skipped with a warning, never routed. The nodes must share a link (host-gw needs the
next hop on-link); a next hop that is not is reported per node and retried at the next sync.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from pyk3s.agent.cni.ipcmd import ROUTE_PROTO, CniError, ip, ip_json

__all__ = ["desired_routes", "run_route_sync", "sync_routes"]

log = logging.getLogger("pyk3s.agent.routes")


def _internal_ipv4(node: dict[str, Any]) -> str:
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            try:
                if ipaddress.ip_address(a.get("address", "")).version == 4:
                    return a["address"]
            except ValueError:
                continue
    return ""


def desired_routes(nodes: Iterable[dict[str, Any]], self_name: str,
                   cluster_cidrs: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """({pod CIDR: next hop} for every other node, warnings) — pure."""
    clusters = [net for net in (ipaddress.ip_network(c, strict=False) for c in cluster_cidrs)
                if isinstance(net, ipaddress.IPv4Network)]
    routes: dict[str, str] = {}
    warnings: list[str] = []
    owners: dict[str, str] = {}
    taken_twice: set[str] = set()
    nodes = list(nodes)
    for node in nodes:
        spec = node.get("spec") or {}
        for cidr in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            name = node["metadata"]["name"]
            if cidr in owners:
                taken_twice.add(cidr)
                warnings.append(f"podCIDR {cidr} is claimed by both node {owners[cidr]} and node {name}; not routed")
            owners.setdefault(cidr, name)
    for node in nodes:
        name = node["metadata"]["name"]
        if name == self_name:
            continue
        spec = node.get("spec") or {}
        cidrs = [c for c in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
                 if c not in taken_twice]
        gw = _internal_ipv4(node)
        for cidr in cidrs:
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                warnings.append(f"node {name}: invalid podCIDR {cidr!r}")
                continue
            if not isinstance(net, ipaddress.IPv4Network):
                continue
            if not any(net.subnet_of(c) for c in clusters):
                warnings.append(f"node {name}: podCIDR {cidr} is outside the cluster CIDR; not routed")
                continue
            if not gw:
                warnings.append(f"node {name}: no IPv4 InternalIP; its pod CIDR {cidr} is not routed yet")
                continue
            routes[str(net)] = gw
    return routes, warnings


async def _current() -> dict[str, str]:
    rows = await ip_json("-4", "route", "show", "proto", ROUTE_PROTO)
    return {r["dst"] if "/" in r["dst"] else f"{r['dst']}/32": r.get("gateway", "") for r in rows if r.get("dst")}


async def sync_routes(want: dict[str, str]) -> list[str]:
    """Make the ``proto 201`` routes equal ``want``; returns the failures (as messages)."""
    failures: list[str] = []
    have = await _current()
    for cidr, gw in want.items():
        if have.get(cidr) == gw:
            continue
        try:
            await ip("route", "replace", cidr, "via", gw, "proto", ROUTE_PROTO)
            log.info("routes: %s via %s", cidr, gw)
        except CniError as exc:
            failures.append(f"{cidr} via {gw}: {exc}")
    for cidr in set(have) - set(want):
        await ip("route", "del", cidr, "proto", ROUTE_PROTO, check=False)
        log.info("routes: removed %s", cidr)
    return failures


async def run_route_sync(client: Any, node_name: str, *, cluster_cidrs: Iterable[str] = ("10.42.0.0/16",),
                         resync_seconds: float = 30.0) -> None:
    """Keep this node's routes to the other nodes' pod CIDRs until cancelled; removes them on the way out."""
    from pyk3s.client.informer import Informer

    clusters = tuple(cluster_cidrs)
    changed = asyncio.Event()
    nodes = Informer(client.resource("v1", "nodes"))
    nodes.add_handler(lambda _t, _old, _new: changed.set())
    await nodes.start()
    last_warnings: list[str] = []
    try:
        await nodes.wait_synced()
        while True:
            changed.clear()
            want, warnings = desired_routes(nodes.list(), node_name, clusters)
            try:
                warnings += await sync_routes(want)
            except CniError as exc:
                warnings.append(str(exc))
            if warnings != last_warnings:
                for w in warnings:
                    log.warning("routes: %s", w)
                last_warnings = warnings
            try:
                async with asyncio.timeout(5.0 if warnings else resync_seconds):
                    await changed.wait()
            except TimeoutError:
                pass
    finally:
        await nodes.stop()
        try:
            await sync_routes({})
        except CniError as exc:
            log.warning("routes: cleanup failed: %s", exc)
