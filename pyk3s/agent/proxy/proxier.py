"""Watch Services, EndpointSlices and this node's Pods; recompile and apply the ruleset, debounced.

The addresses other pyk3s nodes of this network namespace publish are read every
``NEIGHBOURS_INTERVAL`` seconds; a change recompiles (see :mod:`.compile`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.agent.proxy.apply import NftApplier, NftError, claimed_addresses
from pyk3s.agent.proxy.compile import FAMILY, NODE_ADDRESS_SETS, TABLE, ProxyConfig, compile_ruleset

__all__ = ["NEIGHBOURS_INTERVAL", "Proxier"]

log = logging.getLogger("pyk3s.agent.proxy")
NEIGHBOURS_INTERVAL = 5.0


class Proxier:
    def __init__(self, config: ProxyConfig, services: Any, slices: Any, pods: Any, debounce: float = 0.05) -> None:
        self.config = config
        self.informers = (services, slices, pods)
        self.applier = NftApplier(FAMILY, config.table)
        self.debounce = debounce
        self.foreign: frozenset[str] = frozenset()  # addresses other pyk3s nodes here publish
        self._dirty = asyncio.Event()

    def _mark(self, *_args: object) -> None:
        self._dirty.set()

    def ruleset(self) -> str:
        services, slices, pods = self.informers
        return compile_ruleset(self.config, services.list(), slices.list(), pods.list(), self.foreign)

    async def refresh_neighbours(self) -> bool:
        """Read the addresses other pyk3s nodes of this namespace publish; True when they changed."""
        found = await claimed_addresses(FAMILY, self.config.table, TABLE, NODE_ADDRESS_SETS)
        if found == self.foreign:
            return False
        log.info("proxy: other pyk3s nodes in this network namespace have %s; leaving those addresses to them",
                 ", ".join(sorted(found)) or "no addresses")
        self.foreign = found
        return True

    async def _watch_neighbours(self) -> None:
        while True:
            await asyncio.sleep(NEIGHBOURS_INTERVAL)
            if await self.refresh_neighbours():
                self._dirty.set()

    async def run(self) -> None:
        for inf in self.informers:
            inf.add_handler(self._mark)
        for inf in self.informers:
            await inf.wait_synced()
        await self.refresh_neighbours()
        neighbours = asyncio.create_task(self._watch_neighbours(), name="proxy neighbours")
        self._dirty.set()
        try:
            await self._sync_loop()
        finally:
            neighbours.cancel()

    async def _sync_loop(self) -> None:
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
