"""Control-plane loops. ``CONTROLLERS`` names each one; ``run_controllers`` supervises a chosen set.

Every controller is a :class:`~pyk3s.controllers.common.loop.Loop`: a pure computation (``plan_*`` /
``desired_*``, unit-tested on plain dicts) plus a thin ``reconcile(key)`` that reads informer caches
and writes only differences through :mod:`pyk3s.client`. Nothing here registers itself on import: the
table below is the registry. With several servers, the leader runs them all except those in
``ON_EVERY_SERVER``, which each server runs for itself.

A new controller: a module (or a package, like ``deploy/`` and ``servicelb/``) with a ``Loop``
subclass, its settings as a field of ``ControllerSettings`` if it needs any, and a row below.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from .common.loop import Loop, Runnable
from .common.settings import ControllerSettings
from .daemonset import DaemonSetController
from .deploy import DeployController
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .gc import GarbageCollector
from .helm import HelmController
from .namespace import NamespaceController
from .nodehosts import NodeHostsController
from .nodeipam import NodeIpamController
from .nodelifecycle import NodeLifecycleController
from .replicaset import ReplicaSetController
from .scheduler import SchedulerController
from .serviceaccounts import ServiceAccountsController
from .servicelb import ServiceLB

__all__ = [
    "CONTROLLERS",
    "ControllerSettings",
    "Factory",
    "Loop",
    "ON_EVERY_SERVER",
    "Runnable",
    "run_controllers",
    "supervise",
]

log = logging.getLogger("pyk3s.controllers")

Factory = Callable[[Any, ControllerSettings], Runnable]

CONTROLLERS: dict[str, Factory] = {
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "daemonset": DaemonSetController,
    "scheduler": SchedulerController,
    "endpoints": EndpointsController,
    "garbagecollector": GarbageCollector,
    "namespace": NamespaceController,
    "nodeipam": NodeIpamController,
    "nodelifecycle": NodeLifecycleController,
    "nodehosts": NodeHostsController,
    "serviceaccount": ServiceAccountsController,
    "servicelb": ServiceLB,
    "deploy": DeployController,
    "helm": HelmController,
}

# Each server applies its own manifests directory (k3s.md 3.2.1); the others run on the leader only.
ON_EVERY_SERVER: frozenset[str] = frozenset({"deploy"})


async def supervise(name: str, factory: Factory, client: Any, settings: ControllerSettings) -> None:
    """Run one controller forever: log a failure or an unexpected return, restart with backoff.

    The backoff doubles from ``restart_backoff_min`` to ``restart_backoff_max`` and starts over once
    a run lasted a minute.
    """
    delay = settings.restart_backoff_min
    while True:
        started = time.monotonic()
        try:
            await factory(client, settings).run()
            log.warning("controller %s: stopped on its own; restarting in %.1fs", name, delay)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller %s: failed; restarting in %.1fs", name, delay)
        if time.monotonic() - started > 60.0:
            delay = settings.restart_backoff_min
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.restart_backoff_max)


async def run_controllers(client: Any, settings: ControllerSettings | None, enabled: Iterable[str]) -> None:
    """Run the ``enabled`` controllers (names from ``CONTROLLERS``) until cancelled."""
    settings = settings or ControllerSettings()
    names = list(dict.fromkeys(enabled))
    unknown = [n for n in names if n not in CONTROLLERS]
    if unknown:
        raise ValueError(f"controllers: unknown controller(s) {', '.join(unknown)}; known: {', '.join(CONTROLLERS)}")
    async with asyncio.TaskGroup() as tg:
        for name in names:
            tg.create_task(supervise(name, CONTROLLERS[name], client, settings), name=f"controller {name}")
        log.info("controllers: running %s", ", ".join(names) or "none")
