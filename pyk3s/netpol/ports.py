"""Sets of (protocol, port) as merged intervals, and policy ports resolved against a pod.

A :class:`PortSet` is either *any* (every protocol and port: a rule without ``ports``, ICMP included)
or, per IP protocol number, a sorted tuple of disjoint, non-adjacent ``(low, high)`` port intervals.
A port given without a number covers 0-65535 of its protocol. A named port is resolved on one pod:
the container ports with that name *and* the port's protocol; a name the pod lacks resolves to
nothing (upstream semantics: the rule then allows no traffic to that pod through that port).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from .model import PROTOCOLS, PodInfo, PortSpec

__all__ = ["ANY", "NONE", "PortSet", "merge_intervals", "resolve_ports"]

PROTOCOL_NAMES = {v: k for k, v in PROTOCOLS.items()}
ICMP, ICMPV6 = 1, 58


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((a, b) for a, b in out)


@dataclass(frozen=True, slots=True)
class PortSet:
    any: bool = False
    by_proto: tuple[tuple[int, tuple[tuple[int, int], ...]], ...] = ()

    @classmethod
    def of(cls, items: Mapping[int, Iterable[tuple[int, int]]]) -> PortSet:
        merged = tuple((p, merge_intervals(iv)) for p, iv in sorted(items.items()))
        return cls(False, tuple((p, iv) for p, iv in merged if iv))

    @property
    def empty(self) -> bool:
        return not self.any and not self.by_proto

    def union(self, other: PortSet) -> PortSet:
        if other is self or (not other.any and not other.by_proto):
            return self
        if not self.any and not self.by_proto:
            return other
        if self.any or other.any:
            return ANY
        return _union(self, other)

    def contains(self, protocol: int, port: int) -> bool:
        if self.any:
            return True
        for p, iv in self.by_proto:
            if p == protocol:
                return any(lo <= port <= hi for lo, hi in iv)
        return False

    def __str__(self) -> str:
        if self.any:
            return "any"
        parts = []
        for p, iv in self.by_proto:
            name = PROTOCOL_NAMES.get(p, str(p))
            for lo, hi in iv:
                if (lo, hi) == (0, 65535):
                    parts.append(f"any/{name}")
                else:
                    parts.append(f"{lo}/{name}" if lo == hi else f"{lo}-{hi}/{name}")
        return ",".join(parts) or "none"


ANY = PortSet(True)
NONE = PortSet()


@lru_cache(maxsize=65536)
def _union(a: PortSet, b: PortSet) -> PortSet:
    acc: dict[int, list[tuple[int, int]]] = {}
    for p, iv in (*a.by_proto, *b.by_proto):
        acc.setdefault(p, []).extend(iv)
    return PortSet.of(acc)


def resolve_ports(ports: tuple[PortSpec, ...], target: PodInfo | None, *, numeric_only: bool = False) -> PortSet:
    """The ports a rule opens on ``target`` (the pod whose container ports give named ports their
    numbers; None for a non-pod address, where named ports resolve to nothing). ``numeric_only``
    leaves named ports out altogether."""
    if not ports:
        return ANY
    return _resolve(ports, target.named_ports if target is not None else None, numeric_only)


@lru_cache(maxsize=65536)
def _resolve(ports: tuple[PortSpec, ...], named: tuple[tuple[str, str, int], ...] | None,
             numeric_only: bool) -> PortSet:
    acc: dict[int, list[tuple[int, int]]] = {}
    for spec in ports:
        proto = PROTOCOLS[spec.protocol]
        if spec.port is None:
            acc.setdefault(proto, []).append((0, 65535))
        elif isinstance(spec.port, int):
            acc.setdefault(proto, []).append((spec.port, spec.end_port if spec.end_port is not None else spec.port))
        elif not numeric_only and named is not None:
            for name, nproto, n in named:
                if name == spec.port and nproto == spec.protocol:
                    acc.setdefault(proto, []).append((n, n))
    return PortSet.of(acc)
