"""Namespace lifecycle admission (spec 6.8): creating in a missing namespace is 404, in a terminating
one 403 ``NamespaceTerminating``.

Phases are cached from a watch on namespaces; an ``Active`` cache entry admits at once, anything
else is checked against the store (another API server may have created the namespace a moment ago).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.api.codec import decode_kv
from pyk3s.api.errors import StatusError, not_found
from pyk3s.api.store.base import Store
from pyk3s.api.tasks import stop_tasks
from pyk3s.api.watch import Subscription, WatchCache

__all__ = ["NamespaceGate"]

log = logging.getLogger("pyk3s.api.namespaces")
_PREFIX = "/registry/core/namespaces/"


class NamespaceGate:
    def __init__(self, store: Store, watches: WatchCache) -> None:
        self.store = store
        self.watches = watches
        self.phases: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    def observe(self, ns: dict[str, Any]) -> None:
        meta = ns.get("metadata") or {}
        phase = "Terminating" if meta.get("deletionTimestamp") else (ns.get("status") or {}).get("phase", "Active")
        self.phases[meta.get("name", "")] = phase

    def forget(self, name: str) -> None:
        self.phases.pop(name, None)

    async def start(self) -> None:
        rev, kvs = await self.store.list(_PREFIX)
        for kv in kvs:
            self.observe(decode_kv(kv))
        sub = await self.watches.subscribe(_PREFIX, rev)
        self._task = asyncio.get_running_loop().create_task(self._follow(sub), name="namespace-gate")

    async def _follow(self, sub: Subscription) -> None:
        try:
            while True:
                batch = await sub.next_batch(None)
                if not batch and sub.closed:
                    break
                for we in batch or ():
                    if we.type == "DELETE":
                        self.forget(we.key[len(_PREFIX):])
                    else:
                        self.observe(we.obj())
        finally:
            sub.cancel()
        if sub.error is not None:
            log.warning("api/namespaces: namespace watch ended: %s; falling back to store reads", sub.error)
            self.phases.clear()

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)

    async def check_create(self, namespace: str) -> None:
        if self.phases.get(namespace) == "Active":
            return
        _, kv = await self.store.get(_PREFIX + namespace)
        if kv is None:
            self.forget(namespace)
            raise not_found("namespaces", "", namespace)
        ns = decode_kv(kv)
        self.observe(ns)
        if self.phases.get(namespace) == "Terminating":
            msg = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise StatusError(403, "Forbidden", msg, name=namespace, kind="namespaces",
                           causes=[{"reason": "NamespaceTerminating", "message": msg, "field": "metadata.namespace"}])
