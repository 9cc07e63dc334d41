"""The control-plane loops a server runs: controllers, the manifests directory, ServiceLB.

Which loops run follows the flags: `--disable servicelb` (or `--disable-cloud-controller`) leaves
ServiceLB out and removes its DaemonSets, `--disable-scheduler` the scheduler; the packaged manifests
named by `--disable` are not staged, and are uninstalled if pyk3s's own copy is still deployed.

Servers sharing a datastore elect one leader through Lease ``kube-system/pyk3s-controllers``
(:mod:`pyk3s.client.leader`); only it runs the controllers and ServiceLB.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pyk3s.cli.ha import lease_identity, run_apiserver_endpoints
from pyk3s.cli.server_config import ServerConfig
from pyk3s.client import Client
from pyk3s.client.leader import LeaderElectionConfig, LeaderElector

__all__ = ["LEADER_LEASE", "enabled_controllers", "start_control_plane"]

log = logging.getLogger("pyk3s.controlplane")
LEADER_LEASE = "pyk3s-controllers"


def enabled_controllers(cfg: ServerConfig) -> set[str]:
    from pyk3s.controllers import CONTROLLERS

    names = set(CONTROLLERS)
    if cfg.disable_scheduler:
        names.discard("scheduler")
    # NodeHosts stays on with `--disable coredns`: it only touches an existing kube-system/coredns
    # ConfigMap, and the guide's recipe (a user's copy of coredns.yaml) needs NodeHosts to start.
    return names


async def start_control_plane(cfg: ServerConfig, client: Client, running: Any) -> None:
    from pyk3s.controllers import ControllerSettings, run_controllers
    from pyk3s.controllers.deploy import DeployController, DeploySettings
    from pyk3s.controllers.helm import ensure_crds, hand_over
    from pyk3s.controllers.servicelb import ServiceLB, ServiceLBSettings, remove_servicelb
    from pyk3s.manifests.stage import StageSettings, is_disabled, stage

    staged = stage(StageSettings(
        server_dir=cfg.server_dir,
        cluster_dns=cfg.cluster_dns,
        cluster_domain=cfg.cluster_domain,
        system_default_registry=cfg.system_default_registry,
        disable=cfg.disable,
        data_dir=cfg.data_dir,
    ))
    written = [rel for rel in staged if not is_disabled(rel, cfg.disable)]
    log.info("staged %d packaged manifests into %s", len(written), cfg.manifests_dir)
    # The HelmChart kinds exist before the first pass applies traefik.yaml, and objects an earlier
    # plain traefik.yaml applied move into their Helm release before that pass could prune them.
    await ensure_crds(client)
    await hand_over(client, cfg.manifests_dir, written)
    settings = ControllerSettings(
        node_monitor_grace_period=float(cfg.node_monitor_grace_period),
        cluster_cidrs=cfg.cluster_cidrs,
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

    async def leading() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_controllers(client, settings, enabled_controllers(cfg)), name="controllers")
            if cfg.servicelb_enabled:
                tg.create_task(ServiceLB(client, lb_settings).run(), name="servicelb")
            else:
                tg.create_task(remove_servicelb(client, cfg.servicelb_namespace), name="servicelb-removal")

    # With several servers on one datastore the loops above run on the Lease holder only; the deploy
    # controller runs on every server, each applying its own manifests directory (k3s.md 3.2.1).
    identity = lease_identity(cfg)
    # Shorter than client-go's 15/10/2 so that a server killed with -9 is replaced well within 5 s; the
    # Lease is renewed twice a second, which the datastore engines handle easily.
    elector = LeaderElector(client, LeaderElectionConfig(
        name=LEADER_LEASE, identity=identity, lease_duration=3.0, renew_deadline=2.5, retry_period=0.5))
    address = running.settings.advertise_address or "127.0.0.1"
    port = running.settings.advertise_port or running.port
    async with asyncio.TaskGroup() as tg:
        tg.create_task(deploy.run(), name="deploy")
        tg.create_task(elector.run(leading), name="leader-election")
        tg.create_task(run_apiserver_endpoints(client, identity, address, port), name="apiserver-endpoints")
