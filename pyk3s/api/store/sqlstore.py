"""The kine log over SQL: one append-only table, revisions are row ids.

Table ``kine(id, name, created, deleted, create_revision, prev_revision, lease, value, old_value)``:

* create appends ``created=1`` with ``prev_revision`` = the key's tombstone id (or 0); update appends a
  row whose ``prev_revision`` is the id it replaces and whose ``old_value`` is the replaced value; delete
  appends ``deleted=1`` carrying the last value. The unique index on ``(name, prev_revision)`` makes the
  database reject the loser of two writers racing from one version. A create row's create revision is
  its own id (``create_revision`` stays 0 in that row).
* Rows with ``created=1 AND deleted=1`` are bookkeeping, never events: the ``compact_rev_key`` row (its
  ``prev_revision`` is the compaction point) and ``gap-<id>`` fill rows.
* Watch: one poller per store instance reads ``id > last`` every ``poll_interval`` and whenever a local
  write lands out of sequence; a local write that is exactly ``last + 1`` is published at once without
  a query. A missing id is a transaction that has not committed (or never will): dialects whose writes
  commit in id order (``ordered_commits``) skip it at once, others wait ``gap_wait`` and then insert a
  ``gap-<id>`` row so the id can never appear late and out of order. A missing id at or below the
  compaction point means history was lost: this instance's watchers end with ``Compacted``.
* Compaction deletes, in batches of ``compact_batch`` revisions, every row superseded by a row at or
  below the target and every tombstone at or below it; it never goes past ``current - compact_min_retain``.

Dialects (``sqlite.py``, ``postgres.py``) supply the connection handling, schema and statement overrides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .base import (
    Compacted,
    Event,
    EventBatch,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    StoreError,
)
from .watchhub import StoreSubscription, WatchHub, prefix_end

__all__ = [
    "COLUMNS",
    "COMPACT_KEY",
    "GENERIC_STATEMENTS",
    "SqlDialect",
    "SqlStatements",
    "SqlStore",
    "UniqueViolation",
]

log = logging.getLogger("pyk3s.api.store")

COMPACT_KEY = "compact_rev_key"
_BIG_REV = 1 << 62
_POLL_BATCH = 500
_HISTORY_CHUNK = 1000
COLUMNS = "id, name, created, deleted, create_revision, prev_revision, lease, value, old_value"
_INSERT = "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)"
_LATEST = "(SELECT MAX(id) FROM kine WHERE name = ?1)"

_REVS = (
    f"SELECT (SELECT MAX(id) FROM kine) AS cur, (SELECT prev_revision FROM kine WHERE name = '{COMPACT_KEY}') AS comp"
)


def _with_revs(inner: str, order: str) -> str:
    # One statement carries the revisions and the rows: a consistent snapshot without a transaction.
    # With no matching rows it still returns one row (cur, comp, NULL, …).
    return f"SELECT r.cur, r.comp, q.* FROM ({_REVS}) r LEFT JOIN ({inner}) q ON 1 = 1 ORDER BY {order}"


Row = tuple[Any, ...]
Statement = tuple[str, Sequence[Any]]


class UniqueViolation(Exception):
    """Raised by dialects when a write breaks the (name, prev_revision) or primary key constraint."""


@dataclass(frozen=True, slots=True)
class SqlStatements:
    """Every statement the log runs, in ``?N`` parameter style (dialects may rewrite or replace them).
    ``get``, ``list``, ``count``, ``after`` and ``history`` return (current id, compaction point, …)."""

    revs: str
    get: str
    list: str
    count: str
    after: str
    history: str
    create: str
    update: str
    delete: str
    fill: str
    compact: str
    set_compact: str


GENERIC_STATEMENTS = SqlStatements(
    revs=_REVS,
    get=_with_revs(f"SELECT {COLUMNS} FROM kine WHERE name = ?1 AND id <= ?2 ORDER BY id DESC LIMIT 1", "q.id"),
    list=_with_revs(
        "SELECT kv.id, kv.name, kv.created, kv.deleted, kv.create_revision, kv.prev_revision, kv.lease,"
        " kv.value, kv.old_value FROM kine kv JOIN (SELECT MAX(id) AS mid FROM kine"
        " WHERE name >= ?1 AND name < ?2 AND name > ?3 AND id <= ?4 GROUP BY name) m ON kv.id = m.mid"
        " WHERE kv.deleted = 0 ORDER BY kv.name LIMIT ?5",
        "q.name",
    ),
    count=(
        f"SELECT r.cur, r.comp, (SELECT COUNT(*) FROM kine kv JOIN (SELECT MAX(id) AS mid FROM kine"
        " WHERE name >= ?1 AND name < ?2 GROUP BY name) m ON kv.id = m.mid WHERE kv.deleted = 0)"
        f" FROM ({_REVS}) r"
    ),
    after=_with_revs(f"SELECT {COLUMNS} FROM kine WHERE id > ?1 ORDER BY id LIMIT ?2", "q.id"),
    history=_with_revs(
        f"SELECT {COLUMNS} FROM kine WHERE name >= ?1 AND name < ?2 AND id > ?3 AND id <= ?4"
        " ORDER BY id LIMIT ?5",
        "q.id",
    ),
    create=(
        f"{_INSERT} SELECT ?1, 1, 0, 0, COALESCE({_LATEST}, 0), ?2, ?3, NULL"
        f" WHERE NOT EXISTS (SELECT 1 FROM kine WHERE id = {_LATEST} AND deleted = 0)"
        f" RETURNING {COLUMNS}"
    ),
    update=(
        f"{_INSERT} SELECT name, 0, 0, CASE WHEN created <> 0 THEN id ELSE create_revision END, id, lease,"
        f" ?2, value FROM kine WHERE id = {_LATEST} AND deleted = 0 AND (?3 = 0 OR id = ?3)"
        f" RETURNING {COLUMNS}"
    ),
    delete=(
        f"{_INSERT} SELECT name, 0, 1, CASE WHEN created <> 0 THEN id ELSE create_revision END, id, lease,"
        f" value, value FROM kine WHERE id = {_LATEST} AND deleted = 0 AND (?2 = 0 OR id = ?2)"
        f" RETURNING {COLUMNS}"
    ),
    fill=(
        "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, value,"
        " old_value) VALUES (?1, ?2, 1, 1, 0, 0, 0, NULL, NULL)"
    ),
    compact=(
        "DELETE FROM kine WHERE id IN ("
        f"SELECT prev_revision FROM kine WHERE id > ?1 AND id <= ?2 AND name <> '{COMPACT_KEY}'"
        " AND prev_revision <> 0"
        f" UNION SELECT id FROM kine WHERE id > ?1 AND id <= ?2 AND deleted <> 0 AND name <> '{COMPACT_KEY}')"
    ),
    set_compact=f"UPDATE kine SET prev_revision = ?1 WHERE name = '{COMPACT_KEY}' AND prev_revision < ?1",
)


class SqlDialect(Protocol):
    """How one database runs the log's statements. Driver errors become :class:`UniqueViolation`
    (constraint) or :class:`Unavailable` (connection); nothing else leaks out."""

    name: str
    statements: SqlStatements
    no_limit: int | None
    ordered_commits: bool

    async def open(self) -> None:
        """Connect and create the schema (idempotent, safe when several processes start at once)."""

    async def close(self) -> None: ...

    def set_notify(self, wake: Callable[[int], None]) -> None:
        """Register a callback for "another process wrote revision N" hints (optional speed-up)."""

    async def query(self, *statements: Statement) -> list[list[Row]]:
        """Run read statements in one consistent snapshot; rows per statement."""
        ...

    async def write(self, sql: str, args: Sequence[Any]) -> Row | None:
        """Run one write statement in its own transaction; the first returned row, if any."""
        ...

    async def execute(self, *statements: Statement) -> None:
        """Run write statements in one transaction."""
        ...


def _revs(rows: list[Row]) -> tuple[int, int]:
    # Compaction may delete the newest rows (tombstones), so the revision never drops below its point.
    compacted = rows[0][1] or 0
    return max(rows[0][0] or 0, compacted), compacted


def _kv(row: Row) -> KeyValue:
    rid = row[0]
    return KeyValue(row[1], row[7] or b"", rid if row[2] else row[4], rid, row[6] or 0)


def _event(row: Row) -> Event | None:
    rid, name, created, deleted, create_rev, prev_rev, lease, value, old_value = row
    if created and deleted:
        return None
    create_revision = rid if created else create_rev
    kv = KeyValue(name, value or b"", create_revision, rid, lease or 0)
    if created:
        return Event("PUT", kv)
    prev = KeyValue(name, old_value or b"", create_revision, prev_rev, lease or 0)
    return Event("DELETE" if deleted else "PUT", kv, prev)


class SqlStore:
    def __init__(
        self,
        dialect: SqlDialect,
        *,
        compact_min_retain: int = 1000,
        compact_batch: int = 1000,
        poll_interval: float = 1.0,
        gap_wait: float = 1.0,
    ) -> None:
        self.dialect = dialect
        self.compact_min_retain = compact_min_retain
        self.compact_batch = compact_batch
        self.poll_interval = poll_interval
        self.gap_wait = gap_wait
        self._s = dialect.statements
        self._hub = WatchHub()
        self._subs: set[StoreSubscription] = set()
        self._wake = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._gap_since: dict[int, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.dialect.set_notify(self._remote_write)
        await self.dialect.open()
        cur, _ = await self._revs()
        self._hub = WatchHub(cur)
        self._poller = asyncio.create_task(self._poll_loop(), name=f"store-{self.dialect.name}-poll")

    async def close(self) -> None:
        if self._poller is not None:
            poller, self._poller = self._poller, None
            poller.cancel()
            # bounded: closing must never hang on a poller stuck in the database driver
            await asyncio.wait({poller}, timeout=5)
        for sub in list(self._subs):
            sub.end()
        await self.dialect.close()

    # -- reads -------------------------------------------------------------------------------

    async def _revs(self) -> tuple[int, int]:
        (rows,) = await self.dialect.query((self._s.revs, ()))
        return _revs(rows)

    async def _fetch(self, sql: str, args: Sequence[Any]) -> tuple[int, int, list[Row]]:
        """(current revision, compaction point, rows whose columns start at index 2)."""
        ((rows,)) = await self.dialect.query((sql, args))
        cur, compacted = _revs(rows)
        return cur, compacted, rows if rows[0][2] is not None else []

    @staticmethod
    def _check(revision: int, cur: int, compacted: int) -> int:
        if revision == 0:
            return cur
        if revision > cur:
            raise FutureRevision(revision, cur)
        if revision < compacted:
            raise Compacted(revision, compacted)
        return revision

    async def current_revision(self) -> int:
        return (await self._revs())[0]

    async def compact_revision(self) -> int:
        return (await self._revs())[1]

    async def get(self, key: str, revision: int = 0) -> tuple[int, KeyValue | None]:
        cur, compacted, rows = await self._fetch(self._s.get, (key, revision or _BIG_REV))
        rev = self._check(revision, cur, compacted)
        if not rows or rows[0][5]:
            return rev, None
        return rev, _kv(rows[0][2:])

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> tuple[int, list[KeyValue]]:
        args = (prefix, prefix_end(prefix), start_after, revision or _BIG_REV, limit or self.dialect.no_limit)
        cur, compacted, rows = await self._fetch(self._s.list, args)
        rev = self._check(revision, cur, compacted)
        return rev, [KeyValue(r[3], r[9] or b"", r[2] if r[4] else r[6], r[2], r[8] or 0) for r in rows]

    async def count(self, prefix: str) -> tuple[int, int]:
        (rows,) = await self.dialect.query((self._s.count, (prefix, prefix_end(prefix))))
        return _revs(rows)[0], rows[0][2]

    # -- writes ------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        try:
            row = await self.dialect.write(self._s.create, (key, lease, bytes(value)))
        except UniqueViolation:
            row = None
        if row is None:
            raise KeyExists(f"store create: key {key} exists")
        self._published(row)
        return _kv(row)

    async def update(self, key: str, value: bytes, expect_revision: int) -> KeyValue:
        row = await self._write(
            "update", self._s.update, key, (key, bytes(value), expect_revision), expect_revision
        )
        return _kv(row)

    async def delete(self, key: str, expect_revision: int = 0) -> KeyValue:
        row = await self._write("delete", self._s.delete, key, (key, expect_revision), expect_revision)
        return _kv(row)

    async def _write(self, op: str, sql: str, key: str, args: tuple[Any, ...], expect: int) -> Row:
        # An unconditional write can lose a race on the unique index to a concurrent writer; it retries.
        for _ in range(5):
            try:
                row = await self.dialect.write(sql, args)
            except UniqueViolation:
                if expect:
                    raise RevisionConflict(f"store {op}: key {key} was modified concurrently") from None
                continue
            if row is not None:
                self._published(row)
                return row
            _, current = await self.get(key)
            if current is None:
                raise KeyNotFound(f"store {op}: key {key} not found")
            if not expect:
                continue
            raise RevisionConflict(f"store {op}: key {key} is at revision {current.mod_revision}, expected {expect}")
        raise RevisionConflict(f"store {op}: key {key} kept changing concurrently")

    def _published(self, row: Row) -> None:
        rid = row[0]
        hub = self._hub
        if rid == hub.revision + 1:
            event = _event(row)
            hub.publish([event] if event is not None else [], rid)
        elif rid > hub.revision:
            self._wake.set()

    def _remote_write(self, revision: int) -> None:
        if revision > self._hub.revision:
            self._wake.set()

    # -- watch -------------------------------------------------------------------------------

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[EventBatch]:
        sub = self._hub.subscribe(prefix)
        self._subs.add(sub)
        try:
            start = after_revision
            end = prefix_end(prefix)
            while start < sub.start:
                _, compacted, rows = await self._fetch(
                    self._s.history, (prefix, end, start, sub.start, _HISTORY_CHUNK)
                )
                if start < compacted:
                    raise Compacted(after_revision, compacted)
                events = [e for r in rows if (e := _event(r[2:])) is not None]
                if events:
                    yield events
                if len(rows) < _HISTORY_CHUNK:
                    break
                start = rows[-1][2]
            while (batch := await sub.next_after(after_revision)) is not None:
                yield batch
        finally:
            sub.close()
            self._subs.discard(sub)

    async def _poll_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("store %s: watch poll failed: %s", self.dialect.name, e)
                await asyncio.sleep(self.poll_interval)

    async def _poll(self) -> None:
        hub = self._hub
        while True:
            _, compacted, rows = await self._fetch(self._s.after, (hub.revision, _POLL_BATCH))
            last = hub.revision
            events: list[Event] = []
            gap: tuple[int, int] | None = None
            for row in rows:
                rid = row[2]
                if rid <= last:
                    continue
                if rid != last + 1:
                    gap = (last + 1, rid)
                    break
                last = rid
                event = _event(row[2:])
                if event is not None:
                    events.append(event)
            hub.publish(events, last)
            if gap is not None:
                if not await self._gap(*gap, compacted):
                    return
                continue
            if len(rows) < _POLL_BATCH:
                return

    async def _gap(self, first: int, end: int, compacted: int) -> bool:
        """Deal with ids ``first..end-1`` missing; True to poll again at once."""
        if first <= compacted:
            self._hub.fail(Compacted(first - 1, compacted))
            self._subs.clear()
            self._hub.publish([], end - 1)
            return True
        if self.dialect.ordered_commits:
            self._hub.publish([], end - 1)
            return True
        now = time.monotonic()
        since = self._gap_since.setdefault(first, now)
        if now - since < self.gap_wait:
            asyncio.get_running_loop().call_later(min(0.05, self.gap_wait), self._wake.set)
            return False
        self._gap_since.pop(first, None)
        try:
            await self.dialect.execute(*((self._s.fill, (i, f"gap-{i}")) for i in range(first, end)))
        except UniqueViolation:
            pass  # the missing row committed meanwhile; the next poll reads it
        return True

    # -- compaction --------------------------------------------------------------------------

    async def compact(self, revision: int) -> int:
        cur, compacted = await self._revs()
        if revision > cur:
            raise FutureRevision(revision, cur)
        target = min(revision, cur - self.compact_min_retain)
        start = compacted
        while start < target:
            end = min(start + self.compact_batch, target)
            try:
                await self.dialect.execute((self._s.compact, (start, end)), (self._s.set_compact, (end,)))
            except UniqueViolation as e:
                raise StoreError(f"store {self.dialect.name}: compaction to {end} failed: {e}") from e
            start = end
        return max(compacted, target)
