"""The resource catalog: what this server serves right now (spec 1, 1.11).

:class:`ResourceCatalog` holds the current :class:`~pyk3s.api.resources.ResourceTable` and is the one
place it changes: a CRD adds or replaces its rows and takes them away again (this server's own CRD
writes at once, other API servers' through the CRD watch that :meth:`ResourceCatalog.start` opens),
and create-only resources (the reviews) add theirs. Each change swaps in a new immutable table, so a
request that took ``catalog.table`` once sees one consistent snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.api.codec import decode_kv
from pyk3s.api.crds import crd_rows
from pyk3s.api.resources import ResourceInfo, ResourceTable
from pyk3s.api.store.base import Store
from pyk3s.api.tasks import stop_tasks
from pyk3s.api.watch import Subscription, WatchCache

__all__ = ["CRD_PREFIX", "ResourceCatalog"]

log = logging.getLogger("pyk3s.api")

CRD_PREFIX = "/registry/apiextensions.k8s.io/customresourcedefinitions/"


class ResourceCatalog:
    def __init__(self, table: ResourceTable | None = None) -> None:
        self.table = table if table is not None else ResourceTable.builtin()
        self._task: asyncio.Task[None] | None = None

    def install_crd(self, crd: dict[str, Any]) -> None:
        """Serve the versions of ``crd`` (a no-op when its rows are already served as they are)."""
        name = (crd.get("metadata") or {}).get("name", "")
        rows = crd_rows(crd)
        current = self.table.crd_rows(name)
        if [(r, r.schema, r.printer_columns) for r in current] != [(r, r.schema, r.printer_columns) for r in rows]:
            self.table = self.table.with_crd_rows(name, rows)

    def uninstall_crd(self, name: str) -> list[ResourceInfo]:
        """Stop serving the CRD ``name``; returns the rows it had."""
        rows = self.table.crd_rows(name)
        if rows:
            self.table = self.table.without_crd(name)
        return rows

    def add_virtual(self, group: str, version: str, plural: str, kind: str, namespaced: bool = False) -> None:
        """Serve a create-only resource that a handler answers (unless it is served already)."""
        if self.table.get(group, version, plural) is None:
            row = ResourceInfo(group=group, version=version, kind=kind, plural=plural, singular=kind.lower(),
                               namespaced=namespaced, verbs=("create",), list_kind=kind + "List", virtual=True)
            self.table = ResourceTable([*self.table.rows, row])

    # --- following the stored CRDs ----------------------------------------------------------------

    async def start(self, store: Store, watches: WatchCache) -> None:
        """Serve every stored CRD, then follow their changes."""
        rev, kvs = await store.list(CRD_PREFIX)
        for kv in kvs:
            self.install_crd(decode_kv(kv))
        sub = await watches.subscribe(CRD_PREFIX, rev)
        self._task = asyncio.get_running_loop().create_task(self._follow(sub), name="crd-sync")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None

    async def _follow(self, sub: Subscription) -> None:
        try:
            while True:
                batch = await sub.next_batch(None)
                if not batch and sub.closed:
                    log.warning("api: CRD watch ended: %s", sub.error)
                    return
                for we in batch or ():
                    if we.type == "DELETE":
                        self.uninstall_crd(we.key[len(CRD_PREFIX):])
                    else:
                        self.install_crd(we.obj())
        finally:
            sub.cancel()
