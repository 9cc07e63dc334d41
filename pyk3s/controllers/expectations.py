"""Expectations: what a controller just asked for and has not yet seen in its cache.

After creating N pods, the informer shows them only a moment later; a reconcile in between would
create N more. Like upstream's ``ControllerExpectations``, a key records pending creations (a count,
since generated names are unknown until the answer) and pending deletions (by pod key); scaling waits
until both are observed or the record is older than the TTL (a lost watch event must not wedge the
controller forever).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Expectations"]


@dataclass(slots=True)
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    stamp: float = 0.0


class Expectations:
    def __init__(self, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._records: dict[str, _Record] = {}

    def satisfied(self, key: str) -> bool:
        rec = self._records.get(key)
        if rec is None:
            return True
        if rec.adds <= 0 and not rec.deletes:
            return True
        return time.monotonic() - rec.stamp > self.ttl

    def expect(self, key: str, adds: int = 0, deletes: set[str] | None = None) -> None:
        """Add to what ``key`` waits for (a satisfied or stale record starts afresh)."""
        rec = self._records.get(key)
        if rec is None or self.satisfied(key):
            rec = self._records[key] = _Record()
        rec.adds = max(rec.adds, 0) + adds
        rec.deletes |= set(deletes or ())
        rec.stamp = time.monotonic()

    def creation_observed(self, key: str) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._records.pop(key, None)
