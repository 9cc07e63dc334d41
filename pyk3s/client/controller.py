"""Level-triggered controllers: informers feed keys into a queue, workers call ``reconcile(key)``.

``reconcile`` gets only the key, never the event (the state is in the informer caches). It returns
None or ``Result.done()`` when the world matches, ``Result.after(seconds)`` to look again later, and
raises to be retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .api import object_key
from .errors import Conflict
from .informer import Informer
from .workqueue import WorkQueue

__all__ = ["Controller", "Result", "Reconcile"]

log = logging.getLogger("pyk3s.controller")


# a conflict is logged at debug level unless the same key keeps conflicting
CONFLICTS_BEFORE_WARNING = 5


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float = 0.0

    @classmethod
    def done(cls) -> Result:
        return cls()

    @classmethod
    def after(cls, seconds: float) -> Result:
        return cls(seconds)


Reconcile = Callable[[str], Awaitable[Result | None]]
ToKeys = Callable[[dict[str, Any]], Iterable[str]]


class Controller:
    def __init__(self, name: str, reconcile: Reconcile) -> None:
        self.name = name
        self.reconcile = reconcile
        self.queue = WorkQueue()
        self.conflicts: dict[str, int] = {}       # key -> conflicts in a row
        self.informers: list[Informer] = []
        self.log = logging.getLogger(f"pyk3s.controller.{name}")

    def watch(self, informer: Informer, to_keys: ToKeys | None = None) -> None:
        mapper: ToKeys = to_keys or (lambda o: [object_key(o)])

        def handler(_typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
            seen: set[str] = set()
            for obj in (old, new):
                if obj is None:
                    continue
                for key in mapper(obj):
                    if key and key not in seen:
                        seen.add(key)
                        self.queue.add(key)

        if informer not in self.informers:
            self.informers.append(informer)
        informer.add_handler(handler)

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                result = await self.reconcile(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except Conflict as err:
                # the cache was behind a write (ours or another's): normal, retried with the next read
                delay = self.queue.rate_limited(key)
                n = self.conflicts[key] = self.conflicts.get(key, 0) + 1
                level = logging.WARNING if n >= CONFLICTS_BEFORE_WARNING else logging.DEBUG
                self.log.log(level, "%s: reconcile %s: conflict %d in a row (%s); retry in %.2fs",
                             self.name, key, n, err, delay)
            except Exception as err:
                delay = self.queue.rate_limited(key)
                self.log.warning("%s: reconcile %s failed (%s); retry in %.2fs", self.name, key, err, delay)
                self.log.debug("traceback", exc_info=True)
            else:
                self.queue.forget(key)
                self.conflicts.pop(key, None)
                if result is not None and result.requeue_after > 0:
                    self.queue.add_after(key, result.requeue_after)
            finally:
                self.queue.done(key)

    async def run(self, workers: int = 1) -> None:
        for inf in self.informers:
            await inf.start()
        for inf in self.informers:
            await inf.wait_synced()
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(workers):
                    tg.create_task(self._worker(), name=f"{self.name} worker {i}")
        finally:
            self.queue.shutdown()
