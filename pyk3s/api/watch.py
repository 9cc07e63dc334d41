"""Watch fan-out: one store watch per resource, shared by every watcher of that resource (spec 4.3-4.7).

Rules:

* A hub watches one store prefix (``/registry/<group>/<plural>/``) from a start revision and keeps
  recent events decoded once, so a new watcher whose resourceVersion is at or after the hub's
  ``floor`` is served from memory: replay of buffered events with a greater revision, then live
  events, with nothing lost or reordered (subscribing happens between two deliveries, on the loop).
* The history is a window, as kube-apiserver's watch cache is: events younger than
  ``history_seconds``, at most ``history`` of them, and the last ``min_history`` whatever their age.
  Its memory is therefore bounded by the event rate, not by uptime: a steady writer (lease renewals,
  a status updated every second) fills it within ``history_seconds`` and no further.
* A watcher older than the hub's floor gets its own store watch, which replays from the store
  (from before the compaction point: ``Compacted``, the API's 410 Gone). It covers the watcher's
  scope only (its namespace), so a namespaced informer resuming after its watch timed out does not
  replay the history of every busy object in other namespaces.
* A hub with no subscribers stops after ``idle_seconds``.
* A subscriber that falls ``queue_limit`` events behind is closed with an error; the client re-watches.
* Store errors (``Compacted`` included) close every subscriber with that error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from pyk3s.api.codec import decode_kv, kv_json
from pyk3s.api.store.base import Compacted, Event, KeyValue, Store
from pyk3s.api.tasks import stop_tasks

__all__ = ["Subscription", "WatchCache", "WatchEvent"]

log = logging.getLogger("pyk3s.api.watch")


class WatchEvent:
    """A store event decoded at most once, shared by every subscriber (treat objects as read-only)."""

    __slots__ = ("type", "kv", "prev", "_obj", "_prev_obj", "_json")

    def __init__(self, ev: Event) -> None:
        self.type = ev.type
        self.kv: KeyValue = ev.kv
        self.prev: KeyValue | None = ev.prev
        self._obj: dict[str, Any] | None = None
        self._prev_obj: dict[str, Any] | None = None
        self._json: bytes | None = None

    @property
    def rev(self) -> int:
        return self.kv.mod_revision

    @property
    def key(self) -> str:
        return self.kv.key

    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = decode_kv(self.kv)
        return self._obj

    def prev_obj(self) -> dict[str, Any] | None:
        if self.prev is None:
            return None
        if self._prev_obj is None:
            self._prev_obj = decode_kv(self.prev)
        return self._prev_obj

    def obj_json(self) -> bytes:
        if self._json is None:
            self._json = kv_json(self.kv)
        return self._json


class Subscription:
    def __init__(self, after_rev: int, limit: int) -> None:
        self.after = after_rev
        self.limit = limit
        self.queue: deque[WatchEvent] = deque()
        self.ready = asyncio.Event()
        self.closed = False
        self.error: BaseException | None = None
        self._on_cancel: Any = None
        self._task: asyncio.Task[None] | None = None

    def push(self, we: WatchEvent) -> None:
        if self.closed or we.rev <= self.after:
            return
        if len(self.queue) >= self.limit:
            self.close(RuntimeError(f"watch fell {self.limit} events behind"))
            return
        self.queue.append(we)
        self.ready.set()

    def close(self, error: BaseException | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.error = error
            self.ready.set()

    async def next_batch(self, timeout: float | None) -> list[WatchEvent] | None:
        """Pending events; [] when closed and drained; None on timeout."""
        if not self.queue and not self.closed:
            self.ready.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                return None
        batch = list(self.queue)
        self.queue.clear()
        return batch

    def cancel(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        if self._on_cancel is not None:
            self._on_cancel(self)
            self._on_cancel = None


class _Hub:
    def __init__(self, cache: WatchCache, prefix: str, start_rev: int) -> None:
        self.cache = cache
        self.prefix = prefix
        self.floor = start_rev
        # (monotonic time received, event), oldest first
        self.buffer: deque[tuple[float, WatchEvent]] = deque()
        self.subs: set[Subscription] = set()
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"watch-hub {prefix}")
        self._idle: asyncio.TimerHandle | None = None

    async def _run(self) -> None:
        error: BaseException | None = None
        try:
            async for batch in self.cache.store.watch(self.prefix, self.floor):
                now = self.cache.clock()
                for ev in batch:
                    we = WatchEvent(ev)
                    self.buffer.append((now, we))
                    for s in tuple(self.subs):
                        s.push(we)
                self.trim(now)
        except asyncio.CancelledError:
            raise
        except Compacted as e:
            error = e
        except Exception as e:  # a broken store must end watches, which clients then retry
            log.warning("api/watch: store watch on %s failed: %s", self.prefix, e)
            error = e
        finally:
            self.closed = True
            self.cache._forget(self)
            for s in tuple(self.subs):
                s.close(error or RuntimeError("watch ended"))
            self.subs.clear()

    def trim(self, now: float) -> None:
        """Drop the events that left the history window; the floor follows the newest dropped one."""
        cache, buffer = self.cache, self.buffer
        oldest = now - cache.history_seconds
        while buffer and (
            len(buffer) > cache.history or (len(buffer) > cache.min_history and buffer[0][0] < oldest)
        ):
            self.floor = buffer.popleft()[1].rev

    def subscribe(self, after_rev: int) -> Subscription | None:
        self.trim(self.cache.clock())
        if self.closed or after_rev < self.floor:
            return None
        sub = Subscription(after_rev, self.cache.queue_limit)
        for _, we in self.buffer:
            if we.rev > after_rev:
                sub.push(we)
        sub._on_cancel = self._unsubscribe
        self.subs.add(sub)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        self.subs.discard(sub)
        if not self.subs and not self.closed and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(self.cache.idle_seconds, self.stop)

    def stop(self) -> None:
        self._idle = None
        if not self.subs:
            self.task.cancel()


class WatchCache:
    def __init__(self, store: Store, *, history: int = 5000, history_seconds: float = 120.0,
                 min_history: int = 100, queue_limit: int = 20000, idle_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.history = history
        self.history_seconds = history_seconds
        self.min_history = min(min_history, history)
        self.clock = clock
        self.queue_limit = queue_limit
        self.idle_seconds = idle_seconds
        self._hubs: dict[str, _Hub] = {}

    def _forget(self, hub: _Hub) -> None:
        if self._hubs.get(hub.prefix) is hub:
            del self._hubs[hub.prefix]

    async def subscribe(self, prefix: str, after_rev: int, *, scope: str = "") -> Subscription:
        """Events under ``prefix`` with revision > ``after_rev``. Raises ``Compacted`` when that
        history is gone. ``scope`` (a longer prefix, such as one namespace's) is all the watcher
        needs: a watcher older than the history then replays only that part from the store, not
        every object's history (it may still be sent other events under ``prefix``)."""
        compacted = await self.store.compact_revision()
        if after_rev < compacted:
            raise Compacted(after_rev, compacted)
        hub = self._hubs.get(prefix)
        if hub is None or hub.closed:
            hub = _Hub(self, prefix, after_rev)
            self._hubs[prefix] = hub
        sub = hub.subscribe(after_rev)
        if sub is not None:
            return sub
        return self._dedicated(scope if scope.startswith(prefix) else prefix, after_rev)

    def _dedicated(self, prefix: str, after_rev: int) -> Subscription:
        sub = Subscription(after_rev, self.queue_limit)

        async def run() -> None:
            error: BaseException | None = None
            try:
                async for batch in self.store.watch(prefix, after_rev):
                    for ev in batch:
                        sub.push(WatchEvent(ev))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                error = e
            finally:
                sub.close(error or RuntimeError("watch ended"))

        sub._task = asyncio.get_running_loop().create_task(run(), name=f"watch {prefix}@{after_rev}")
        return sub

    def history_sizes(self) -> dict[str, int]:
        """Events held per watched prefix (for tests and diagnostics)."""
        return {prefix: len(hub.buffer) for prefix, hub in self._hubs.items()}

    async def close(self) -> None:
        hubs = list(self._hubs.values())
        self._hubs.clear()
        await stop_tasks(*(h.task for h in hubs))
