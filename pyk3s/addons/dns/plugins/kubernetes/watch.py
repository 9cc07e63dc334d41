"""Informer glue for the kubernetes plugin: four informers feed one debounced `plugin.load(...)`.

Services, EndpointSlices and Namespaces always; Pods only with `pods verified` (P33, P44). Every event
only marks the index dirty; a short timer folds a burst of events into one compile and one swap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .handler import KubernetesPlugin

__all__ = ["DEBOUNCE_SECONDS", "KubeWatch"]

log = logging.getLogger("pyk3s.dns.kubernetes")
DEBOUNCE_SECONDS = 0.1


class KubeWatch:
    def __init__(self, plugin: KubernetesPlugin, client: Any) -> None:
        from pyk3s.client.informer import Informer

        self.plugin = plugin
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
        for inf in self.informers.values():
            inf.add_handler(self._changed)

    async def start(self) -> None:
        for inf in self.informers.values():
            await inf.start()
        asyncio.get_running_loop().create_task(self._wait_synced())

    async def _wait_synced(self) -> None:
        for inf in self.informers.values():
            await inf.wait_synced()
        self.rebuild()
        self.synced.set()

    def _changed(self, event_type: str, old: dict | None, new: dict | None) -> None:
        if not self.synced.is_set() or self._timer is not None:
            return
        self._timer = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.rebuild)

    def rebuild(self) -> None:
        self._timer = None
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
