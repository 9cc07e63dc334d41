"""The store contract: a revisioned key-value log with watch, modelled on kine / etcd v3.

Rules every engine keeps (the conformance suite in tests/unit/api/store checks them):

* One cluster-wide revision counter. Every successful create, update and delete appends one row and
  gets a new revision, strictly greater than every earlier one. Revision 0 means "latest".
* A key's ``create_revision`` is the revision that created it; ``mod_revision`` the one that last
  wrote it. The API server uses ``mod_revision`` as ``metadata.resourceVersion``.
* ``update`` and ``delete`` with ``expect_revision`` succeed only if the key's current ``mod_revision``
  equals it; otherwise they raise :class:`RevisionConflict`. Concurrency is enforced by the database (a unique
  constraint or a transaction compare), never by a Python lock alone, so several processes can share
  one database.
* ``watch(prefix, after_revision)`` yields batches of events with revision > ``after_revision`` in
  revision order, with nothing lost or reordered, including writes made by other processes that
  share the database. Asking for history below the compaction point raises :class:`Compacted`.
* ``compact(revision)`` forgets superseded versions at or below ``revision``; reads at such
  revisions raise :class:`Compacted`.

Errors::

    StoreError
     +-- KeyExists        create of a key that exists
     +-- RevisionConflict expect_revision is stale, or the key is gone
     +-- KeyNotFound      update/delete of a missing key
     +-- Compacted        revision below the compaction point (API: 410 Gone)
     +-- FutureRevision   revision above the current one
     +-- Unavailable      the engine cannot reach its database
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "Compacted",
    "RevisionConflict",
    "Event",
    "EventBatch",
    "FutureRevision",
    "KeyExists",
    "KeyValue",
    "KeyNotFound",
    "Store",
    "StoreError",
    "Unavailable",
]


class StoreError(Exception):
    """Base of every store error."""


class KeyExists(StoreError):
    pass


class RevisionConflict(StoreError):
    pass


class KeyNotFound(StoreError):
    pass


class Compacted(StoreError):
    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (compacted up to {compacted})")
        self.requested = requested
        self.compacted = compacted


class FutureRevision(StoreError):
    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current {current})")
        self.requested = requested
        self.current = current


class Unavailable(StoreError):
    pass


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For ``DELETE`` ``kv.value`` is the last value and ``kv.mod_revision`` the delete's
    revision; ``prev`` is the version the change replaced (None for a create)."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


# What a watch yields at once: the events of one revision or more, in order. (A name of its own also
# because inside a store class ``list`` is the store's method, not the builtin.)
EventBatch = list[Event]


@runtime_checkable
class Store(Protocol):
    async def start(self) -> None:
        """Open connections, create the schema, start the poller."""

    async def close(self) -> None: ...

    async def current_revision(self) -> int: ...

    async def compact_revision(self) -> int: ...

    async def get(self, key: str, revision: int = 0) -> tuple[int, KeyValue | None]:
        """Return (store revision the read was taken at, the key's value at that revision or None)."""
        ...

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> tuple[int, list[KeyValue]]:
        """Live keys under ``prefix`` sorted by key, after ``start_after``, at most ``limit`` (0 = all)."""
        ...

    async def count(self, prefix: str) -> tuple[int, int]: ...

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue: ...

    async def update(self, key: str, value: bytes, expect_revision: int) -> KeyValue: ...

    async def delete(self, key: str, expect_revision: int = 0) -> KeyValue:
        """Delete; returns the deleted value with ``mod_revision`` = the delete's revision."""
        ...

    def watch(self, prefix: str, after_revision: int) -> AsyncIterator[EventBatch]: ...

    async def compact(self, revision: int) -> int:
        """Compact up to ``revision``; returns the new compaction point."""
        ...
