"""What every control-plane loop shares: owned informers, one work queue, a ``reconcile(key)``.

A loop's ``run()`` starts its informers, waits for them to sync, runs its workers until cancelled and
stops its informers on the way out, so a supervisor can restart it from scratch after a failure. A
loop that needs more before its informers start (an object to exist, a file watch) extends ``start``
and ``stop``.
"""

from __future__ import annotations

from typing import Any, Protocol

from pyk3s.client import Client
from pyk3s.client.controller import Controller, Result
from pyk3s.client.informer import Informer

from .settings import ControllerSettings

__all__ = ["Loop", "Runnable"]


class Runnable(Protocol):
    name: str

    async def run(self) -> None: ...


class Loop:
    """Base of the controllers: subclasses set ``name`` and implement ``reconcile``."""

    name = "loop"

    def __init__(self, client: Client, settings: ControllerSettings | None = None) -> None:
        self.client = client
        self.settings = settings or ControllerSettings()
        self.informers: list[Informer] = []
        self.controller = Controller(self.name, self.reconcile)

    def informer(self, api_version: str, plural: str, **kwargs: Any) -> Informer:
        inf = Informer(self.client.resource(api_version, plural), **kwargs)
        self.informers.append(inf)
        return inf

    async def start(self) -> None:
        """Start every informer and wait for the caches (tests call this, then ``reconcile``)."""
        for inf in self.informers:
            await inf.start()
        for inf in self.informers:
            await inf.wait_synced()

    async def stop(self) -> None:
        for inf in self.informers:
            await inf.stop()

    def worker_count(self) -> int:
        """Concurrent reconciles (of different keys)."""
        return self.settings.workers

    async def run(self) -> None:
        try:
            await self.start()
            await self.controller.run(self.worker_count())
        finally:
            await self.stop()

    async def reconcile(self, key: str) -> Result | None:  # pragma: no cover - abstract
        raise NotImplementedError
