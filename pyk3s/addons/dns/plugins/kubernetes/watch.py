"""Informer glue for the kubernetes plugin: four informers feed one debounced index update.

Services, EndpointSlices and Namespaces always; Pods only with `pods verified` (P33, P44). Once all
informers have synced, their lists are indexed in one go (`plugin.load`). After that an event only
records the object's latest state under its kind and name; a short timer folds a burst of events into
one `plugin.apply` (a delete and re-create inside one burst is one change), which re-derives only the
Services the changes touch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from pyk3s.client.informer import Informer

from .builder import Change, change_of
from .config import KubeOptions
from .index import KubeIndex

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["DEBOUNCE_SECONDS", "KubeWatch"]

log = logging.getLogger("pyk3s.dns.kubernetes")
DEBOUNCE_SECONDS = 0.1


class IndexSink(Protocol):
    """What the watch feeds: the kubernetes plugin."""

    opts: KubeOptions

    def load(self, services: Iterable[dict[str, Any]], endpointslices: Iterable[dict[str, Any]],
             pods: Iterable[dict[str, Any]], namespaces: Iterable[dict[str, Any]],
             serial: int | None = None) -> KubeIndex: ...

    def apply(self, changes: Iterable[Change], serial: int | None = None) -> KubeIndex | None: ...


class KubeWatch:
    def __init__(self, plugin: IndexSink, client: Client) -> None:
        self.plugin = plugin
        self.client = client                    # ours: closed with the watch (a reload makes a new one)
        opts = plugin.opts
        self.informers = {
            "services": Informer(client.resource("v1", "services"), label_selector=opts.labels),
            "endpointslices": Informer(client.resource("discovery.k8s.io/v1", "endpointslices"),
                                       label_selector=opts.labels),
            "namespaces": Informer(client.resource("v1", "namespaces"), label_selector=opts.namespace_labels),
        }
        if opts.pods == "verified":
            self.informers["pods"] = Informer(client.resource("v1", "pods"))
        self.synced = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._pending: dict[tuple[str, str, str], Change] = {}
        for kind, inf in self.informers.items():
            inf.add_handler(partial(self._changed, kind))

    async def start(self) -> None:
        for inf in self.informers.values():
            await inf.start()
        asyncio.get_running_loop().create_task(self._wait_synced())

    async def _wait_synced(self) -> None:
        for inf in self.informers.values():
            await inf.wait_synced()
        self.rebuild()
        self.synced.set()

    def _changed(self, kind: str, event_type: str, old: dict | None, new: dict | None) -> None:
        if not self.synced.is_set():        # the first full build reads the informers' lists
            return
        ch = change_of(kind, new if new is not None else old or {}, gone=new is None)
        if ch is None:
            return
        self._pending[ch[:3]] = ch
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.flush)

    def flush(self) -> None:
        """Apply the changes recorded since the last flush."""
        self._timer = None
        changes, self._pending = list(self._pending.values()), {}
        if not changes:
            return
        try:
            self.plugin.apply(changes)
        except Exception:  # a bug, not a bad object (those are skipped by name): start over from the lists
            log.exception("plugin/kubernetes: incremental index update failed; rebuilding from scratch")
            self.rebuild()

    def rebuild(self) -> None:
        """Index everything the informers hold, from scratch."""
        self._pending.clear()
        inf = self.informers
        try:
            self.plugin.load(inf["services"].list(), inf["endpointslices"].list(),
                             inf["pods"].list() if "pods" in inf else (), inf["namespaces"].list())
        except Exception:  # a bad object must not stop serving the last good index
            log.exception("plugin/kubernetes: could not compile the index; keeping the previous one")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for inf in self.informers.values():
            await inf.stop()
        await self.client.close()
