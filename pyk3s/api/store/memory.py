"""In-memory store engine (``memory://``): the same semantics as the SQL log, without a database.

Meant for unit tests of the API server and controllers, and for throw-away servers. Several
:class:`MemoryStore` instances built on one :class:`MemoryBackend` behave like several API processes
sharing one database: they see one revision counter and each other's writes in their watches.
Every operation runs without an ``await`` in the middle, so it is atomic on the event loop.

``lease`` is stored and returned, never expired. ``compact_min_retain`` defaults to 0 here (compaction
does exactly what it is asked) because tests use it to provoke ``Compacted``.
"""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator

from .base import (
    Compacted,
    Event,
    EventBatch,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    Unavailable,
)
from .watchhub import StoreSubscription, WatchHub, prefix_end

__all__ = ["MemoryBackend", "MemoryStore"]

_HISTORY_CHUNK = 1000


class MemoryBackend:
    """The shared "database": the event log, versions per key, and the revision counters."""

    def __init__(self) -> None:
        self.revision = 0
        self.compacted = 0
        self.log: list[Event] = []
        self.log_revisions: list[int] = []
        self.versions: dict[str, list[Event]] = {}
        self.keys: list[str] = []
        self.hub = WatchHub()

    def append(self, event: Event) -> None:
        key = event.kv.key
        versions = self.versions.get(key)
        if versions is None:
            versions = self.versions[key] = []
            bisect.insort(self.keys, key)
        versions.append(event)
        self.log.append(event)
        self.log_revisions.append(event.revision)
        self.revision = event.revision
        self.hub.publish([event], event.revision)

    def latest(self, key: str) -> Event | None:
        versions = self.versions.get(key)
        return versions[-1] if versions else None

    def at(self, key: str, revision: int) -> KeyValue | None:
        versions = self.versions.get(key)
        if not versions:
            return None
        if versions[-1].revision <= revision:
            event = versions[-1]
        else:
            i = bisect.bisect_right(versions, revision, key=lambda e: e.revision)
            if i == 0:
                return None
            event = versions[i - 1]
        return None if event.type == "DELETE" else event.kv

    def check_revision(self, revision: int) -> int:
        if revision == 0:
            return self.revision
        if revision > self.revision:
            raise FutureRevision(revision, self.revision)
        if revision < self.compacted:
            raise Compacted(revision, self.compacted)
        return revision

    def compact(self, target: int) -> None:
        dropped: set[int] = set()
        for key in list(self.versions):
            versions = self.versions[key]
            i = bisect.bisect_right(versions, target, key=lambda e: e.revision)
            if i == 0:
                continue
            # The newest version at or below the target survives unless it is a tombstone.
            cut = i if versions[i - 1].type == "DELETE" else i - 1
            if cut == 0:
                continue
            dropped.update(e.revision for e in versions[:cut])
            del versions[:cut]
            if not versions:
                del self.versions[key]
                del self.keys[bisect.bisect_left(self.keys, key)]
        if dropped:
            self.log = [e for e in self.log if e.revision not in dropped]
            self.log_revisions = [e.revision for e in self.log]
        self.compacted = target


class MemoryStore:
    def __init__(self, backend: MemoryBackend | None = None, *, compact_min_retain: int = 0) -> None:
        self.backend = backend if backend is not None else MemoryBackend()
        self.compact_min_retain = compact_min_retain
        self._closed = False
        self._subs: set[StoreSubscription] = set()

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._subs):
            sub.end()

    def _db(self) -> MemoryBackend:
        if self._closed:
            raise Unavailable("store memory: closed")
        return self.backend

    async def current_revision(self) -> int:
        return self._db().revision

    async def compact_revision(self) -> int:
        return self._db().compacted

    async def get(self, key: str, revision: int = 0) -> tuple[int, KeyValue | None]:
        db = self._db()
        rev = db.check_revision(revision)
        return rev, db.at(key, rev)

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> tuple[int, list[KeyValue]]:
        db = self._db()
        rev = db.check_revision(revision)
        keys = db.keys
        end = prefix_end(prefix)
        i = bisect.bisect_left(keys, prefix)
        if start_after >= prefix:
            i = max(i, bisect.bisect_right(keys, start_after))
        out: list[KeyValue] = []
        n = len(keys)
        while i < n:
            key = keys[i]
            if key >= end:
                break
            kv = db.at(key, rev)
            if kv is not None:
                out.append(kv)
                if limit and len(out) >= limit:
                    break
            i += 1
        return rev, out

    async def count(self, prefix: str) -> tuple[int, int]:
        rev, items = await self.list(prefix)
        return rev, len(items)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        db = self._db()
        latest = db.latest(key)
        if latest is not None and latest.type == "PUT":
            raise KeyExists(f"store: key {key} exists")
        rev = db.revision + 1
        kv = KeyValue(key, bytes(value), rev, rev, lease)
        db.append(Event("PUT", kv))
        return kv

    def _current(self, db: MemoryBackend, key: str, expect_revision: int, op: str) -> KeyValue:
        latest = db.latest(key)
        if latest is None or latest.type == "DELETE":
            raise KeyNotFound(f"store {op}: key {key} not found")
        if expect_revision and latest.revision != expect_revision:
            raise RevisionConflict(
                f"store {op}: key {key} is at revision {latest.revision}, expected {expect_revision}"
            )
        return latest.kv

    async def update(self, key: str, value: bytes, expect_revision: int) -> KeyValue:
        db = self._db()
        prev = self._current(db, key, expect_revision, "update")
        kv = KeyValue(key, bytes(value), prev.create_revision, db.revision + 1, prev.lease)
        db.append(Event("PUT", kv, prev))
        return kv

    async def delete(self, key: str, expect_revision: int = 0) -> KeyValue:
        db = self._db()
        prev = self._current(db, key, expect_revision, "delete")
        kv = KeyValue(key, prev.value, prev.create_revision, db.revision + 1, prev.lease)
        db.append(Event("DELETE", kv, prev))
        return kv

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[EventBatch]:
        db = self._db()
        sub = db.hub.subscribe(prefix)
        self._subs.add(sub)
        try:
            if after_revision < sub.start:
                if after_revision < db.compacted:
                    raise Compacted(after_revision, db.compacted)
                lo = bisect.bisect_right(db.log_revisions, after_revision)
                hi = bisect.bisect_right(db.log_revisions, sub.start)
                history = [e for e in db.log[lo:hi] if e.kv.key.startswith(prefix)]
                for i in range(0, len(history), _HISTORY_CHUNK):
                    yield history[i : i + _HISTORY_CHUNK]
            while (batch := await sub.next_after(after_revision)) is not None:
                yield batch
        finally:
            sub.close()
            self._subs.discard(sub)

    async def compact(self, revision: int) -> int:
        db = self._db()
        if revision > db.revision:
            raise FutureRevision(revision, db.revision)
        target = min(revision, db.revision - self.compact_min_retain)
        if target > db.compacted:
            db.compact(target)
        return db.compacted
