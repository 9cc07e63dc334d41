"""Deployment controller: the thin I/O half around :func:`pyk3s.controllers.rollout.plan_deployment`.

It claims the ReplicaSets of a Deployment (adopting orphans that match its selector, releasing owned
ones that stopped matching), asks the pure planner for one sync step and writes only the differences:
the Deployment's revision annotation, the new ReplicaSet, scaled or re-annotated ReplicaSets, history
cleanup, events, and the status (spec 6.12: what ``kubectl rollout status`` reads).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pyk3s.client import NotFound
from pyk3s.client.controller import Result

from .common.loop import Loop
from .common.settings import ControllerSettings
from .dependents import apply_claim, claim_pods, owner_keys
from .objects import Obj, controller_ref, name_of, namespace_of, uid_of
from .rollout import plan_deployment

__all__ = ["DeploymentController"]

log = logging.getLogger("pyk3s.controllers.deployment")


class DeploymentController(Loop):
    name = "deployment"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.deployments = self.informer("apps/v1", "deployments")
        self.replicasets = self.informer("apps/v1", "replicasets")
        self.pods = self.informer("v1", "pods")
        self.d_api = client.resource("apps/v1", "deployments")
        self.rs_api = client.resource("apps/v1", "replicasets")
        self.controller.watch(self.deployments)
        self.controller.watch(self.replicasets, self._keys_for_rs)
        self.controller.watch(self.pods, self._keys_for_pod)

    def _keys_for_rs(self, rs: Obj) -> list[str]:
        return owner_keys(rs, "Deployment", self.deployments.list)

    def _keys_for_pod(self, pod: Obj) -> list[str]:
        # Only Recreate waits on pods (old pods must be gone before the new ReplicaSet scales up).
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.replicasets.get(f"{namespace_of(pod)}/{ref['name']}")
        return self._keys_for_rs(rs) if rs is not None else []

    async def reconcile(self, key: str) -> Result | None:
        d = self.deployments.get(key)
        if d is None:
            return None
        ns = namespace_of(d)
        rss = [rs for rs in self.replicasets.list() if namespace_of(rs) == ns]
        owned = await apply_claim(self.rs_api, d, claim_pods(d, rss), "apps/v1", "Deployment")
        owned_uids = {uid_of(rs) for rs in owned}
        pods = [
            p for p in self.pods.list()
            if namespace_of(p) == ns and (controller_ref(p) or {}).get("uid") in owned_uids
        ]
        plan = plan_deployment(d, owned, pods, datetime.now(UTC), {name_of(rs): rs for rs in rss})
        current = d
        if plan.annotations is not None:
            current = await self.d_api.patch(name_of(d), {"metadata": {"annotations": plan.annotations}}, ns)
        if plan.create is not None:
            await self.rs_api.create(plan.create, ns)
            log.info("deployment %s: created replicaset %s", key, name_of(plan.create))
        for rs in plan.updates:
            await self.rs_api.update(rs)
        for rs in plan.deletes:
            try:
                await self.rs_api.delete(name_of(rs), ns)
            except NotFound:
                pass
        for type_, reason, message in plan.events:
            await self.client.record_event(d, type=type_, reason=reason, message=message,
                                           component="deployment-controller")
        if plan.status_changed:
            await self.d_api.update_status({**current, "status": plan.status})
        return Result.after(plan.requeue_after) if plan.requeue_after else None
