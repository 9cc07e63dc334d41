"""The kernel side of a :class:`~pyk3s.agent.overlay.model.Plan`: read what is there, change only the
difference.

Routes are the ``proto 201`` ones (both families; nothing else is ever touched); neighbours and
forwarding entries only the permanent ones on the overlay's own VXLAN devices. New neighbour and
forwarding entries go in before the route that needs them and come out after it, as flannel orders
them, so a packet never meets a route whose next hop the kernel would have to resolve by ARP/NDP.
Every change is its own command: a refused one is returned as a message naming the entry, the others
still happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable

from pyk3s.agent.cni.ipcmd import ROUTE_PROTO, CniError, ip, ip_json

from .model import FdbEntry, Neighbour, Plan, PodRoute, family_of

__all__ = ["apply_plan", "current_fdb", "current_neighbours", "current_routes", "flush"]

log = logging.getLogger("pyk3s.agent.overlay")


async def current_routes() -> set[PodRoute]:
    out: set[PodRoute] = set()
    for fam in ("-4", "-6"):
        try:
            rows = await ip_json(fam, "route", "show", "proto", ROUTE_PROTO)
        except CniError:
            continue
        for r in rows:
            dst = r.get("dst", "")
            if not dst or dst == "default":
                continue
            if "/" not in dst:
                dst += "/32" if fam == "-4" else "/128"
            kind = r.get("type", "unicast")
            out.add(PodRoute(dst=dst, via=r.get("gateway", ""), dev=r.get("dev", "") if kind == "unicast" else "",
                          onlink="onlink" in (r.get("flags") or []), kind=kind))
    return out


async def current_neighbours(devs: Iterable[str]) -> set[Neighbour]:
    out: set[Neighbour] = set()
    for dev in devs:
        try:
            rows = await ip_json("neigh", "show", "dev", dev, "nud", "permanent")
        except CniError:
            continue
        out |= {Neighbour(dev, r["dst"], r.get("lladdr", "").lower()) for r in rows if r.get("dst")}
    return out


async def _bridge_json(*args: str) -> list[dict]:
    proc = await asyncio.create_subprocess_exec("bridge", "-j", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 15)
    if proc.returncode != 0:
        return []
    try:
        rows = json.loads(out or b"[]")
    except ValueError:
        return []
    return rows if isinstance(rows, list) else []


async def _bridge(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec("bridge", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 15)
    if proc.returncode != 0:
        raise CniError(f"bridge {' '.join(args)}: {err.decode(errors='replace').strip()}")


async def current_fdb(devs: Iterable[str]) -> set[FdbEntry]:
    out: set[FdbEntry] = set()
    for dev in devs:
        for r in await _bridge_json("fdb", "show", "dev", dev):
            if r.get("dst") and r.get("mac"):
                out.add(FdbEntry(dev, r["mac"].lower(), r["dst"]))
    return out


def _route_args(r: PodRoute) -> list[str]:
    if r.kind != "unicast":
        return [r.kind, r.dst, "proto", ROUTE_PROTO]
    args = [r.dst, "via", r.via]
    if r.dev:
        args += ["dev", r.dev]
    if r.onlink:
        args.append("onlink")
    return args + ["proto", ROUTE_PROTO]


def _same_route(have: PodRoute, want: PodRoute) -> bool:
    if want.dev:
        return have == want
    return (have.dst, have.via, have.onlink, have.kind) == (want.dst, want.via, want.onlink, want.kind)


async def apply_plan(plan: Plan, devs: Iterable[str]) -> list[str]:
    """Make the kernel match ``plan``; returns the refused changes as messages."""
    devs = tuple(devs)
    failures: list[str] = []

    async def run(what: str, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except CniError as exc:
            failures.append(f"{what}: {exc}")

    have_routes = {r.dst: r for r in await current_routes()}
    have_neigh = await current_neighbours(devs)
    have_fdb = await current_fdb(devs)
    for n in sorted(plan.neighbours - have_neigh):
        await run(f"neighbour {n.ip} on {n.dev}", ip("neigh", "replace", n.ip, "lladdr", n.mac, "dev", n.dev,
                                                    "nud", "permanent"))
    for f in sorted(plan.fdb - have_fdb):
        stale = [h for h in have_fdb if h.dev == f.dev and h.mac == f.mac and h.dst != f.dst]
        for h in stale:  # one destination per MAC: a moved VTEP replaces its entry
            await run(f"fdb {h.mac} on {h.dev}", _bridge("fdb", "del", h.mac, "dev", h.dev, "dst", h.dst, "self"))
        await run(f"fdb {f.mac} -> {f.dst} on {f.dev}",
                  _bridge("fdb", "append", f.mac, "dev", f.dev, "dst", f.dst, "self", "permanent"))
    wanted = {r.dst: r for r in plan.routes}
    for dst, r in sorted(wanted.items()):
        have = have_routes.get(dst)
        if have is not None and _same_route(have, r):
            continue
        fam = "-4" if family_of(dst) == 4 else "-6"
        if have is not None and have.kind != r.kind:
            await ip(fam, "route", "del", dst, "proto", ROUTE_PROTO, check=False)
        await run(f"route {dst}", ip(fam, "route", "replace", *_route_args(r)))
    for dst in sorted(set(have_routes) - set(wanted)):
        fam = "-4" if family_of(dst) == 4 else "-6"
        await ip(fam, "route", "del", dst, "proto", ROUTE_PROTO, check=False)
    for n in sorted(have_neigh - plan.neighbours):
        await ip("neigh", "del", n.ip, "dev", n.dev, check=False)
    for f in sorted(have_fdb - plan.fdb):
        try:
            await _bridge("fdb", "del", f.mac, "dev", f.dev, "dst", f.dst, "self")
        except CniError:
            pass
    return failures


async def flush() -> None:
    """Remove every route this module owns (the agent is going away)."""
    for r in await current_routes():
        fam = "-4" if family_of(r.dst) == 4 else "-6"
        await ip(fam, "route", "del", r.dst, "proto", ROUTE_PROTO, check=False)
