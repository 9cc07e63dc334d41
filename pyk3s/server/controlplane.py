"""The control-plane loops a server runs: the packaged manifests, the controllers, the apiserver endpoints.

Which controllers run follows the flags: `--disable servicelb` (or `--disable-cloud-controller`) leaves
ServiceLB out and removes its DaemonSets, `--disable-scheduler` the scheduler; the packaged manifests
named by `--disable` are not staged, and are uninstalled if pyk3s's own copy is still deployed.

Servers sharing a datastore elect one leader through Lease ``kube-system/pyk3s-controllers``
(:mod:`pyk3s.client.leader`); only it runs the controllers, except those of ``ON_EVERY_SERVER`` (the
deploy controller: each server applies its own manifests directory, k3s.md 3.2.1).
"""

from __future__ import annotations

import asyncio
import logging

from pyk3s.api.server import RunningApi
from pyk3s.client import Client
from pyk3s.client.leader import LeaderElectionConfig, LeaderElector
from pyk3s.controllers import CONTROLLERS, ON_EVERY_SERVER, run_controllers
from pyk3s.controllers.helm import ensure_crds, hand_over
from pyk3s.controllers.servicelb import remove_servicelb
from pyk3s.manifests.stage import is_disabled, stage

from .config import ServerConfig
from .ha import lease_identity, run_apiserver_endpoints

__all__ = ["LEADER_LEASE", "enabled_controllers", "start_control_plane"]

log = logging.getLogger("pyk3s.controlplane")
LEADER_LEASE = "pyk3s-controllers"


def enabled_controllers(cfg: ServerConfig) -> set[str]:
    names = set(CONTROLLERS)
    if cfg.disable_scheduler:
        names.discard("scheduler")
    if not cfg.servicelb_enabled:
        names.discard("servicelb")
    # NodeHosts stays on with `--disable coredns`: it only touches an existing kube-system/coredns
    # ConfigMap, and the guide's recipe (a user's copy of coredns.yaml) needs NodeHosts to start.
    return names


async def start_control_plane(cfg: ServerConfig, client: Client, running: RunningApi) -> None:
    staged = stage(cfg.stage_settings())
    written = [rel for rel in staged if not is_disabled(rel, cfg.disable)]
    log.info("staged %d packaged manifests into %s", len(written), cfg.manifests_dir)
    # The HelmChart kinds exist before the first pass applies traefik.yaml, and objects an earlier
    # plain traefik.yaml applied move into their Helm release before that pass could prune them.
    await ensure_crds(client)
    await hand_over(client, cfg.manifests_dir, written)
    settings = cfg.controller_settings()
    enabled = enabled_controllers(cfg)

    async def leading() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(run_controllers(client, settings, sorted(enabled - ON_EVERY_SERVER)), name="controllers")
            if not cfg.servicelb_enabled:
                tg.create_task(remove_servicelb(client, cfg.servicelb_namespace), name="servicelb-removal")

    identity = lease_identity(cfg)
    # Shorter than client-go's 15/10/2 so that a server killed with -9 is replaced well within 5 s; the
    # Lease is renewed twice a second, which the datastore engines handle easily.
    elector = LeaderElector(client, LeaderElectionConfig(
        name=LEADER_LEASE, identity=identity, lease_duration=3.0, renew_deadline=2.5, retry_period=0.5))
    address = running.settings.advertise_address or "127.0.0.1"
    port = running.settings.advertise_port or running.port
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_controllers(client, settings, sorted(enabled & ON_EVERY_SERVER)), name="every-server")
        tg.create_task(elector.run(leading), name="leader-election")
        tg.create_task(run_apiserver_endpoints(client, identity, address, port), name="apiserver-endpoints")
