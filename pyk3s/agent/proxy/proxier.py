"""Watch Services, EndpointSlices and this node's Pods; recompile and apply the ruleset, debounced."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.agent.proxy.apply import NftApplier, NftError
from pyk3s.agent.proxy.compile import FAMILY, ProxyConfig, compile_ruleset

__all__ = ["Proxier"]

log = logging.getLogger("pyk3s.agent.proxy")


class Proxier:
    def __init__(self, config: ProxyConfig, services: Any, slices: Any, pods: Any, debounce: float = 0.05) -> None:
        self.config = config
        self.informers = (services, slices, pods)
        self.applier = NftApplier(FAMILY, config.table)
        self.debounce = debounce
        self._dirty = asyncio.Event()

    def _mark(self, *_args: object) -> None:
        self._dirty.set()

    def ruleset(self) -> str:
        services, slices, pods = self.informers
        return compile_ruleset(self.config, services.list(), slices.list(), pods.list())

    async def run(self) -> None:
        for inf in self.informers:
            inf.add_handler(self._mark)
        for inf in self.informers:
            await inf.wait_synced()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            try:
                await self.applier.apply(self.ruleset())
            except NftError as exc:
                log.error("%s", exc)
                await asyncio.sleep(1)
                self._dirty.set()
            except Exception:  # noqa: BLE001 - one bad object must not stop the proxy
                log.exception("proxy: compiling rules failed")
                await asyncio.sleep(1)
