"""List, then watch from the list's resourceVersion; relist when that version is gone.

Rules (as client-go's reflector): the cache is replaced wholesale by a list; a watch continues from
the last resourceVersion seen (bookmarks included); a 410 or an ERROR event means relist, and a
relist emits DELETED for every object that vanished meanwhile, so handlers never miss a deletion.
Handlers are plain callables run on the event loop; they should only enqueue keys.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
from collections.abc import Callable
from typing import Any

from .api import ResourceClient, object_key
from .errors import ApiError, Gone, TransportError

__all__ = ["Handler", "Informer"]

log = logging.getLogger("pyk3s.informer")

Handler = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]


class Informer:
    def __init__(
        self,
        resource: ResourceClient,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_jitter: tuple[float, float] = (300.0, 600.0),
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._items: dict[str, dict[str, Any]] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rv = ""
        self._watch_timeout = resync_jitter
        self.name = f"{resource.api_version}/{resource.plural}"

    # -- cache access -----------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        return self._items.get(key)

    def list(self) -> builtins.list[dict[str, Any]]:
        return builtins.list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return builtins.list(self._items)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)
        for obj in self._items.values():
            self._call(handler, "ADDED", None, obj)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.name}")

    async def wait_synced(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel the list/watch task; a task that does not finish in ``timeout`` is left behind
        (logged) rather than holding up the shutdown of everything above it."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("informer %s: did not stop within %.0fs; leaving it", self.name, timeout)
            return
        if not task.cancelled() and task.exception() is not None:
            log.debug("informer %s ended with %r", self.name, task.exception())

    # -- internals --------------------------------------------------------------------------------
    def _call(self, handler: Handler, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        try:
            handler(typ, old, new)
        except Exception:
            log.exception("informer %s: handler failed", self.name)

    def _emit(self, typ: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        for h in self._handlers:
            self._call(h, typ, old, new)

    async def _relist(self) -> None:
        items: list[dict[str, Any]] = []
        cont: str | None = None
        rv = ""
        while True:
            page = await self.resource.list(
                self.namespace,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                limit=500,
                continue_=cont,
            )
            kind = page.get("kind", "").removesuffix("List")
            for it in page.get("items") or []:
                it.setdefault("kind", kind)
                it.setdefault("apiVersion", self.resource.api_version)
                items.append(it)
            meta = page.get("metadata") or {}
            rv = rv or meta.get("resourceVersion", "")
            cont = meta.get("continue")
            if not cont:
                break
        fresh = {object_key(o): o for o in items}
        old_items = self._items
        self._items = fresh
        self._rv = rv
        for key, obj in fresh.items():
            prev = old_items.get(key)
            if prev is None:
                self._emit("ADDED", None, obj)
            elif prev.get("metadata", {}).get("resourceVersion") != obj.get("metadata", {}).get("resourceVersion"):
                self._emit("MODIFIED", prev, obj)
        for key, prev in old_items.items():
            if key not in fresh:
                self._emit("DELETED", prev, None)
        self._synced.set()

    async def _watch(self) -> None:
        lo, hi = self._watch_timeout
        async for ev in self.resource.watch(
            self.namespace,
            resource_version=self._rv,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=int(random.uniform(lo, hi)),
        ):
            typ = ev.get("type")
            obj = ev.get("object") or {}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if typ == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(410, "Expired", obj.get("message", "too old resource version"), obj)
                raise ApiError(int(obj.get("code") or 500), obj.get("reason", ""), obj.get("message", ""), obj)
            if rv:
                self._rv = rv
            if typ == "BOOKMARK":
                continue
            key = object_key(obj)
            prev = self._items.get(key)
            if typ == "DELETED":
                self._items.pop(key, None)
                self._emit("DELETED", prev or obj, None)
            else:
                self._items[key] = obj
                self._emit("MODIFIED" if prev is not None else "ADDED", prev, obj)

    async def _run(self) -> None:
        backoff = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Gone:
                need_list = True
            except (ApiError, TransportError, OSError) as err:
                log.warning("informer %s: %s; retrying in %.1fs", self.name, err, backoff)
                need_list = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                log.exception("informer %s failed; retrying", self.name)
                need_list = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
