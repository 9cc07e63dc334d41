"""ReplicaSet controller: keep ``spec.replicas`` active pods matching the selector.

Pure part (:func:`scale_plan`, :func:`replicaset_status`, :func:`pod_from_template`; the claim of pods
is :func:`pyk3s.controllers.dependents.claim_pods`):

* Scale down deletes first: unscheduled, then Pending < Unknown < Running, not ready, lower
  ``controller.kubernetes.io/pod-deletion-cost``, more siblings on the same node, ready for a
  shorter time, more restarts, newest (``controller.ActivePodsWithRanks``).
* Status: replicas (active pods), fullyLabeledReplicas (carry every template label), readyReplicas,
  availableReplicas (ready for ``minReadySeconds``), observedGeneration. Zero counts are left out
  as the API's ``omitempty`` does.

Created pods are named ``<rs>-<random>`` (generateName) and carry an owner reference with
``controller`` and ``blockOwnerDeletion`` true. Expectations stop a reconcile from creating again
before the cache has seen the previous creations.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pyk3s.client import AlreadyExists
from pyk3s.client.controller import Result

from .common.loop import Loop
from .common.settings import ControllerSettings
from .dependents import Claim, apply_claim, claim_pods, delete_expecting, expectations_observer, owner_keys
from .expectations import Expectations
from .objects import (
    Obj,
    counts_differ,
    deep_copy,
    is_deleting,
    make_owner_ref,
    name_of,
    namespace_of,
    parse_time,
    split_key,
)
from .podutil import available_in, is_active, is_available, is_ready, ready_since, restart_count

__all__ = [
    "Claim",
    "ReplicaSetController",
    "claim_pods",
    "deletion_order",
    "pod_from_template",
    "replicaset_status",
    "scale_plan",
]

log = logging.getLogger("pyk3s.controllers.replicaset")

# Upstream's burstReplicas: at most this many creations or deletions per sync.
BURST = 500
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def pod_from_template(owner: Mapping[str, Any], api_version: str, kind: str, template: Mapping[str, Any]) -> Obj:
    meta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {
        "generateName": f"{name_of(owner)}-",
        "namespace": namespace_of(owner),
        "labels": dict(meta.get("labels") or {}),
        "ownerReferences": [make_owner_ref(owner, api_version, kind)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    if meta.get("finalizers"):
        pod_meta["finalizers"] = list(meta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": deep_copy(template.get("spec") or {})}


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value else 0.0


def deletion_order(pods: Sequence[Obj]) -> list[Obj]:
    """Pods sorted so that the ones to delete first come first."""
    on_node = Counter((p.get("spec") or {}).get("nodeName") or "" for p in pods)

    def cost(pod: Obj) -> int:
        raw = ((pod.get("metadata") or {}).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    def sort_key(pod: Obj) -> tuple[Any, ...]:
        node = (pod.get("spec") or {}).get("nodeName") or ""
        ready = is_ready(pod)
        return (
            1 if node else 0,
            _PHASE_ORDER.get((pod.get("status") or {}).get("phase") or "", 0),
            1 if ready else 0,
            cost(pod),
            -(on_node[node] if node else 0),
            -_ts(ready_since(pod)) if ready else 0.0,
            -restart_count(pod),
            -_ts(parse_time((pod.get("metadata") or {}).get("creationTimestamp"))),
        )

    return sorted(pods, key=sort_key)


def scale_plan(replicas: int, active: Sequence[Obj]) -> tuple[int, list[Obj]]:
    """(pods to create, pods to delete) to reach ``replicas`` active pods."""
    diff = len(active) - replicas
    if diff < 0:
        return min(-diff, BURST), []
    if diff > 0:
        return 0, deletion_order(active)[: min(diff, BURST)]
    return 0, []


def _template_labels_present(template_labels: Mapping[str, str], pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in template_labels.items())


def replicaset_status(rs: Mapping[str, Any], owned: Sequence[Obj], now: datetime) -> dict[str, Any]:
    spec = rs.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    active = [p for p in owned if is_active(p)]
    status: dict[str, Any] = {"replicas": len(active)}
    counts = {
        "fullyLabeledReplicas": sum(1 for p in active if _template_labels_present(template_labels, p)),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready, now)),
        "observedGeneration": int((rs.get("metadata") or {}).get("generation") or 0),
    }
    status.update({k: v for k, v in counts.items() if v})
    conditions = (rs.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status


_STATUS_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration")


def status_differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return counts_differ(old, new, _STATUS_COUNTS)


class ReplicaSetController(Loop):
    name = "replicaset"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.replicasets = self.informer("apps/v1", "replicasets")
        self.pods = self.informer("v1", "pods")
        self.expectations = Expectations(self.settings.expectations_ttl)
        self.pod_api = client.resource("v1", "pods")
        self.rs_api = client.resource("apps/v1", "replicasets")
        self.controller.watch(self.replicasets)
        self.controller.watch(self.pods, lambda pod: owner_keys(pod, "ReplicaSet", self.replicasets.list))
        self.pods.add_handler(expectations_observer(self.expectations, "ReplicaSet"))

    async def reconcile(self, key: str) -> Result | None:
        rs = self.replicasets.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        ns, _name = split_key(key)
        pods = [p for p in self.pods.list() if namespace_of(p) == ns]
        owned = await apply_claim(self.pod_api, rs, claim_pods(rs, pods), "apps/v1", "ReplicaSet")
        if self.expectations.satisfied(key) and not is_deleting(rs):
            await self._manage(rs, key, [p for p in owned if is_active(p)])
        now = datetime.now(UTC)
        status = replicaset_status(rs, owned, now)
        if status_differs(rs.get("status"), status):
            await self.rs_api.update_status({**rs, "status": status})
        min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for p in owned if is_active(p) and (w := available_in(p, min_ready, now)) is not None]
        return Result.after(min(waits) + 0.1) if waits else None

    async def _manage(self, rs: Obj, key: str, active: list[Obj]) -> None:
        replicas = int((rs.get("spec") or {}).get("replicas", 1))
        create, delete = scale_plan(replicas, active)
        ns = namespace_of(rs)
        if create:
            template = (rs.get("spec") or {}).get("template") or {}
            self.expectations.expect(key, adds=create)
            created = 0
            try:
                # Slow start like upstream: batches of 1, 2, 4, ... creations made at once, so a failing
                # template costs one error and a working one few round trips; the first failed batch ends it.
                batch = 1
                while created < create:
                    results = await asyncio.gather(*(
                        self.pod_api.create(pod_from_template(rs, "apps/v1", "ReplicaSet", template), ns)
                        for _ in range(min(batch, create - created))), return_exceptions=True)
                    created += sum(1 for r in results if not isinstance(r, BaseException))
                    failed = [r for r in results if isinstance(r, BaseException)]
                    if failed:
                        other = [r for r in failed if not isinstance(r, AlreadyExists)]
                        if other:
                            raise other[0]
                        break
                    batch *= 2
            finally:
                for _ in range(create - created):
                    self.expectations.creation_observed(key)
            if created:
                log.info("replicaset %s: created %d pod(s)", key, created)
        if delete:
            await delete_expecting(self.pod_api, self.expectations, key, delete, ns)
            log.info("replicaset %s: deleted %d pod(s)", key, len(delete))
