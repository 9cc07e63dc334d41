"""Fan-out of committed events to the watchers of one store instance.

Rules:

* ``publish`` is called with events in revision order, each batch strictly after the previous one;
  ``revision`` is the last revision published (events or not), the point a new subscriber starts from.
* A subscriber gets, in order, every later batch filtered by its key prefix. Slow subscribers buffer;
  one that falls more than ``max_backlog`` events behind is ended with :class:`Unavailable` so that a
  stuck client cannot grow memory without bound (it re-watches from its last revision).
* ``fail(error)`` ends every subscriber with ``error`` (history lost to compaction); ``end`` on a
  subscription finishes it cleanly (store closing).
"""

from __future__ import annotations

import asyncio
from collections import deque

from .base import Event, StoreError, Unavailable

__all__ = ["MAX_KEY", "StoreSubscription", "WatchHub", "prefix_end"]

# Upper bound for an empty prefix: sorts after every key made of valid UTF-8 below U+10FFFF.
MAX_KEY = "\U0010ffff"


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix``."""
    if not prefix:
        return MAX_KEY
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return prefix + MAX_KEY
    return prefix[:-1] + chr(last + 1)


class StoreSubscription:
    __slots__ = ("prefix", "start", "_batches", "_backlog", "_wakeup", "_error", "_ended", "_hub")

    def __init__(self, hub: WatchHub, prefix: str, start: int) -> None:
        self._hub = hub
        self.prefix = prefix
        self.start = start
        self._batches: deque[list[Event]] = deque()
        self._backlog = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._ended = False

    def _push(self, batch: list[Event]) -> None:
        if self._error is not None:
            return
        self._batches.append(batch)
        self._backlog += len(batch)
        if self._backlog > self._hub.max_backlog:
            self._batches.clear()
            self._error = Unavailable(
                f"store watch {self.prefix!r}: watcher fell {self._backlog} events behind; re-watch"
            )
            self._hub._subs.discard(self)
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self) -> None:
        """Stop after the buffered batches: ``next`` then returns None (store closing)."""
        self._ended = True
        self._hub._subs.discard(self)
        self._wake()

    async def next(self) -> list[Event] | None:
        """The next batch, None once ended; raises the error the subscription failed with."""
        while not self._batches:
            if self._error is not None:
                raise self._error
            if self._ended:
                return None
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        batch = self._batches.popleft()
        self._backlog -= len(batch)
        return batch

    async def next_after(self, revision: int) -> list[Event] | None:
        """Like :meth:`next`, with events at or below ``revision`` dropped (batches left empty skipped).

        An engine replays its history up to ``start`` and then tails the subscription; a watch that
        starts past ``start`` must not be sent the events up to its own revision."""
        while (batch := await self.next()) is not None:
            if batch[-1].revision <= revision:
                continue
            if batch[0].revision <= revision:
                batch = [e for e in batch if e.revision > revision]
            return batch
        return None

    def close(self) -> None:
        self._hub._subs.discard(self)


class WatchHub:
    def __init__(self, revision: int = 0, max_backlog: int = 100_000) -> None:
        self.revision = revision
        self.max_backlog = max_backlog
        self._subs: set[StoreSubscription] = set()

    def subscribe(self, prefix: str) -> StoreSubscription:
        sub = StoreSubscription(self, prefix, self.revision)
        self._subs.add(sub)
        return sub

    def publish(self, events: list[Event], revision: int) -> None:
        """Deliver ``events`` (may be empty) and advance to ``revision``."""
        if events:
            for sub in tuple(self._subs):
                prefix = sub.prefix
                if not prefix:
                    sub._push(events)
                    continue
                matching = [e for e in events if e.kv.key.startswith(prefix)]
                if matching:
                    sub._push(matching)
        if revision > self.revision:
            self.revision = revision

    def fail(self, error: StoreError) -> None:
        for sub in list(self._subs):
            sub._fail(error)
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._subs)
