"""The control-plane loops a server runs: controllers, the manifests directory, ServiceLB.

Which loops run follows the flags: `--disable servicelb` (or `--disable-cloud-controller`) leaves
ServiceLB out and removes its DaemonSets, `--disable-scheduler` the scheduler; the packaged manifests
named by `--disable` are not staged, and are uninstalled if pyk3s's own copy is still deployed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.cli.server_config import ServerConfig
from pyk3s.client import Client

__all__ = ["enabled_controllers", "start_control_plane"]

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
    from pyk3s.controllers.deploy import DeployController, DeploySettings
    from pyk3s.controllers.servicelb import ServiceLB, ServiceLBSettings, remove_servicelb
    from pyk3s.manifests.stage import StageSettings, stage

    staged = stage(StageSettings(
        server_dir=cfg.server_dir,
        cluster_dns=cfg.cluster_dns,
        cluster_domain=cfg.cluster_domain,
        system_default_registry=cfg.system_default_registry,
        disable=cfg.disable,
        data_dir=cfg.data_dir,
    ))
    log.info("staged %d packaged manifests into %s", len(staged), cfg.manifests_dir)
    settings = ControllerSettings(
        node_monitor_grace_period=float(cfg.node_monitor_grace_period),
        toleration_seconds_cap=float(cfg.pod_eviction_timeout),
    )
    deploy = DeployController(client, DeploySettings(
        manifests_dir=cfg.manifests_dir,
        server_dir=cfg.server_dir,
        disable=cfg.disable,
        rescan_interval=float(cfg.manifests_rescan_interval),
    ))
    registry = cfg.system_default_registry.rstrip("/")
    lb_settings = ServiceLBSettings(
        namespace=cfg.servicelb_namespace,
        image=f"{registry + '/' if registry else ''}rancher/klipper-lb:v0.4.13",
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_controllers(client, settings, enabled_controllers(cfg)), name="controllers")
        tg.create_task(deploy.run(), name="deploy")
        if cfg.servicelb_enabled:
            tg.create_task(ServiceLB(client, lb_settings).run(), name="servicelb")
        else:
            tg.create_task(remove_servicelb(client, cfg.servicelb_namespace), name="servicelb-removal")
