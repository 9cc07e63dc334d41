"""What the kernel holds versus what the allow index holds now: the groups, dispatch maps and local
addresses last handed out, the keys touched since, and the :class:`Delta` between them (pure).

The index marks what it touches (an address in a group, a group's ranges, a dispatch entry); a delta
compares only those with what was handed out, so its cost follows the change, not the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .model import EGRESS, INGRESS
from .ports import PortSet
from .ranges import AddrRange

__all__ = ["Applied", "Delta", "Group", "GroupDelta", "IndexState"]

DIRECTIONS = (INGRESS, EGRESS)


@dataclass(slots=True)
class Group:
    gid: str
    direction: str
    policies: frozenset[str]
    ctx: tuple[tuple[str, str, tuple[int, ...]], ...]
    members: set[str] = field(default_factory=set)
    pods: dict[str, PortSet] = field(default_factory=dict)
    ranges: tuple[tuple[AddrRange, PortSet], ...] = ()
    rules: set[tuple[str, str, int]] = field(default_factory=set)  # the rules of its policies, its direction
    rule_ports: dict[tuple[str, str, int], PortSet] = field(default_factory=dict)  # ingress: resolved once


@dataclass(frozen=True, slots=True)
class GroupDelta:
    removed: Mapping[str, PortSet]  # address -> ports no longer there (exactly as added before)
    added: Mapping[str, PortSet]
    ranges: tuple[tuple[AddrRange, PortSet], ...] | None  # the new ranges when they changed


@dataclass(frozen=True, slots=True)
class Delta:
    new_groups: Mapping[str, Group]
    removed_groups: frozenset[str]
    groups: Mapping[str, GroupDelta]  # changes inside groups that existed before and still do
    dispatch_removed: Mapping[str, frozenset[str]]  # direction -> addresses
    dispatch_added: Mapping[str, Mapping[str, str]]  # direction -> address -> gid
    local_removed: frozenset[str]
    local_added: frozenset[str]

    @property
    def empty(self) -> bool:
        return not (self.new_groups or self.removed_groups or self.groups or any(self.dispatch_removed.values())
                    or any(self.dispatch_added.values()) or self.local_removed or self.local_added)


@dataclass(frozen=True, slots=True)
class IndexState:
    groups: Mapping[str, Group]
    dispatch: Mapping[str, Mapping[str, str]]
    local: frozenset[str]


class Applied:
    """The kernel's view, and what changed since it was last brought up to date."""

    def __init__(self) -> None:
        self.groups: dict[str, tuple[dict[str, PortSet], tuple[tuple[AddrRange, PortSet], ...]]] = {}
        self.dispatch: dict[str, dict[str, str]] = {INGRESS: {}, EGRESS: {}}
        self.local: set[str] = set()
        self.dirty_elems: dict[str, set[str]] = {}
        self.dirty_ranges: set[str] = set()
        self.dirty_dispatch: dict[str, set[str]] = {INGRESS: set(), EGRESS: set()}

    def forget(self, gid: str) -> None:
        self.dirty_elems.pop(gid, None)
        self.dirty_ranges.discard(gid)

    def delta(self, groups: Mapping[str, Group], dispatch: Mapping[str, Mapping[str, str]],
              local: set[str]) -> Delta:
        """The changes from the kernel's view to ``groups``/``dispatch``/``local``; then the view is theirs."""
        new_groups = {g: groups[g] for g in groups.keys() - self.groups.keys()}
        removed = frozenset(self.groups.keys() - groups.keys())
        changes: dict[str, GroupDelta] = {}
        for gid in (self.dirty_elems.keys() | self.dirty_ranges) & self.groups.keys() & groups.keys():
            applied_pods, applied_ranges = self.groups[gid]
            group = groups[gid]
            gone: dict[str, PortSet] = {}
            added: dict[str, PortSet] = {}
            for ip in self.dirty_elems.get(gid, ()):
                before, after = applied_pods.get(ip), group.pods.get(ip)
                if before == after:
                    continue
                if before is not None:
                    gone[ip] = before
                if after is not None:
                    added[ip] = after
            ranges = group.ranges if gid in self.dirty_ranges and group.ranges != applied_ranges else None
            if gone or added or ranges is not None:
                changes[gid] = GroupDelta(gone, added, ranges)
        d_removed: dict[str, frozenset[str]] = {}
        d_added: dict[str, dict[str, str]] = {}
        for d in DIRECTIONS:
            rem: set[str] = set()
            add: dict[str, str] = {}
            for ip in self.dirty_dispatch[d]:
                was, now = self.dispatch[d].get(ip), dispatch[d].get(ip)
                if was == now:
                    continue
                if was is not None:
                    rem.add(ip)
                if now is not None:
                    add[ip] = now
            d_removed[d], d_added[d] = frozenset(rem), add
        delta = Delta(new_groups, removed, changes, d_removed, d_added,
                      frozenset(self.local - local), frozenset(local - self.local))
        self._commit(delta, dispatch, local)
        return delta

    def reset(self, groups: Mapping[str, Group], dispatch: Mapping[str, Mapping[str, str]], local: set[str]) -> None:
        """The kernel now holds all of it (after a full load)."""
        self.groups = {g: (dict(grp.pods), grp.ranges) for g, grp in groups.items()}
        self.dispatch = {d: dict(m) for d, m in dispatch.items()}
        self.local = set(local)
        self._clear()

    def _commit(self, delta: Delta, dispatch: Mapping[str, Mapping[str, str]], local: set[str]) -> None:
        for gid in delta.removed_groups:
            del self.groups[gid]
        for gid, group in delta.new_groups.items():
            self.groups[gid] = (dict(group.pods), group.ranges)
        for gid, gd in delta.groups.items():
            pods, _ranges = self.groups[gid]
            for ip in gd.removed:
                pods.pop(ip, None)
            pods.update(gd.added)
            if gd.ranges is not None:
                self.groups[gid] = (pods, gd.ranges)
        for d in DIRECTIONS:
            applied = self.dispatch[d]
            for ip in self.dirty_dispatch[d]:
                if ip in dispatch[d]:
                    applied[ip] = dispatch[d][ip]
                else:
                    applied.pop(ip, None)
        self.local = set(local)
        self._clear()

    def _clear(self) -> None:
        self.dirty_elems.clear()
        self.dirty_ranges.clear()
        for s in self.dirty_dispatch.values():
            s.clear()
