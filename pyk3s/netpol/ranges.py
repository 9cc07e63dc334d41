"""Address ranges: an ipBlock as disjoint intervals, and address x port unions made disjoint.

nftables interval sets refuse overlapping elements, so what many rules allow to overlapping address
ranges is cut at every range boundary (a sweep): each resulting segment carries the union of the
ports of the ranges covering it, and neighbouring segments with equal ports are joined again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from .model import IpBlock
from .ports import PortSet

__all__ = ["AddrRange", "block_ranges", "disjoint", "full_range", "range_text"]


@dataclass(frozen=True, slots=True, order=True)
class AddrRange:
    family: int  # 4 | 6
    lo: int
    hi: int

    def contains(self, family: int, value: int) -> bool:
        return family == self.family and self.lo <= value <= self.hi


def full_range(family: int) -> AddrRange:
    return AddrRange(family, 0, (1 << (32 if family == 4 else 128)) - 1)


def block_ranges(block: IpBlock) -> list[AddrRange]:
    """``cidr`` minus every ``except``, as sorted disjoint ranges."""
    fam = block.cidr.version
    lo, hi = int(block.cidr.network_address), int(block.cidr.broadcast_address)
    cuts = sorted((int(e.network_address), int(e.broadcast_address)) for e in block.excepts)
    out: list[AddrRange] = []
    cur = lo
    for elo, ehi in cuts:
        if elo > cur:
            out.append(AddrRange(fam, cur, elo - 1))
        cur = max(cur, ehi + 1)
    if cur <= hi:
        out.append(AddrRange(fam, cur, hi))
    return out


def disjoint(items: Iterable[tuple[AddrRange, PortSet]]) -> list[tuple[AddrRange, PortSet]]:
    """Disjoint segments covering the union, each with the union of the ports covering it."""
    out: list[tuple[AddrRange, PortSet]] = []
    by_family: dict[int, list[tuple[AddrRange, PortSet]]] = {}
    for r, ports in items:
        if not ports.empty:
            by_family.setdefault(r.family, []).append((r, ports))
    for fam, entries in sorted(by_family.items()):
        points = sorted({r.lo for r, _ in entries} | {r.hi + 1 for r, _ in entries})
        for a, b in zip(points, points[1:], strict=False):
            acc: PortSet | None = None
            for r, ports in entries:
                if r.lo <= a and b - 1 <= r.hi:
                    acc = ports if acc is None else acc.union(ports)
            if acc is None:
                continue
            if out and out[-1][0].family == fam and out[-1][0].hi == a - 1 and out[-1][1] == acc:
                out[-1] = (AddrRange(fam, out[-1][0].lo, b - 1), acc)
            else:
                out.append((AddrRange(fam, a, b - 1), acc))
    return out


def range_text(r: AddrRange) -> str:
    """A range as nftables writes it: one address, a prefix, or ``first-last``."""
    cls = ipaddress.IPv4Address if r.family == 4 else ipaddress.IPv6Address
    if r.lo == r.hi:
        return str(cls(r.lo))
    size = r.hi - r.lo + 1
    if size & (size - 1) == 0 and r.lo % size == 0:
        bits = (32 if r.family == 4 else 128) - size.bit_length() + 1
        return f"{cls(r.lo)}/{bits}"
    return f"{cls(r.lo)}-{cls(r.hi)}"
