"""A controller's own writes that its informer cache has not shown yet.

Right after an update the cache still holds the object as it was; a reconcile that runs before the
watch event arrives would compute from that stale copy and its next write would meet a 409 Conflict
(retried after a backoff, a delay on the path to ready endpoints). :class:`OwnWrites` remembers the
object each update returned, keyed by the resourceVersion it replaced: as long as the cache still
shows that version, :meth:`fresher` hands out the written object instead. Once the cache moves on
(our event, or someone else's write) the entry is dropped and the cache is trusted again.
"""

from __future__ import annotations

from typing import Any

from .objects import Obj, key_of

__all__ = ["OwnWrites"]


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class OwnWrites:
    def __init__(self) -> None:
        self._written: dict[str, tuple[str, Obj]] = {}  # key -> (replaced resourceVersion, written object)

    def fresher(self, cached: Obj) -> Obj:
        """``cached`` unless we wrote a newer version of it that the cache has not shown yet."""
        key = key_of(cached)
        entry = self._written.get(key)
        if entry is None:
            return cached
        replaced, written = entry
        if _rv(cached) == replaced:
            return written
        del self._written[key]
        return cached

    def wrote(self, before: Obj, after: Any) -> None:
        """``before``: the object as sent (its resourceVersion is the one replaced); ``after``: the reply."""
        if isinstance(after, dict) and _rv(before) and _rv(after):
            self._written[key_of(before)] = (_rv(before), after)

    def forget(self, key: str) -> None:
        self._written.pop(key, None)

    def on_event(self, typ: str, old: Obj | None, new: Obj | None) -> None:
        """An informer handler: a deleted object's entry goes."""
        if typ == "DELETED" and (old or new) is not None:
            self.forget(key_of(old or new))  # type: ignore[arg-type]
