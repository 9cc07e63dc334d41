"""The control-plane loops a server runs: controllers, the manifests directory, ServiceLB.

Which loops run follows the flags: `--disable servicelb` (or `--disable-cloud-controller`) leaves
ServiceLB out, `--disable-scheduler` the scheduler; the packaged manifests named by `--disable` are
not staged and are uninstalled if pyk3s staged them before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.cli.server_config import ServerConfig
from pyk3s.client import Client

__all__ = ["start_control_plane"]

log = logging.getLogger("pyk3s.controlplane")


def enabled_controllers(cfg: ServerConfig) -> set[str]:
    from pyk3s.controllers import CONTROLLERS

    names = set(CONTROLLERS)
    if cfg.disable_scheduler:
        names.discard("scheduler")
    if "coredns" in cfg.disable:
        names.discard("nodehosts")
    return names


async def start_control_plane(cfg: ServerConfig, client: Client, running: Any) -> None:
    from pyk3s.controllers import ControllerSettings, run_controllers

    settings = ControllerSettings(
        node_monitor_grace_period=cfg.node_monitor_grace_period,
        pod_eviction_timeout=cfg.pod_eviction_timeout,
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_controllers(client, settings, enabled_controllers(cfg)), name="controllers")
