"""DaemonSet controller: one pod per eligible node, rolled by ``controller-revision-hash``.

Rules (pure part, :func:`plan_daemonset`):

* Eligibility (``NodeShouldRunDaemonPod``): nodeSelector and required node affinity match, and no
  untolerated taint of the node (its ``spec.taints`` only: a node that is not Ready still gets pods)
  with effect NoExecute (never run, evict) or NoSchedule (don't start, keep a running pod). The pod
  template gets the automatic tolerations first: not-ready and unreachable NoExecute; disk-, memory-,
  pid-pressure and unschedulable NoSchedule; network-unavailable NoSchedule with hostNetwork.
* Pods are created per node with ``generateName <ds>-`` and a required node affinity term
  ``matchFields metadata.name In [<node>]``; the scheduler binds them. A node with no pod gets one
  (not while an old one is still terminating); failed and succeeded pods are deleted; extra pods on
  a node keep only the oldest; pods on nodes that no longer should run them (or no longer exist) go.
* RollingUpdate (maxUnavailable, default 1, percent of desiredNumberScheduled rounded up): unavailable
  old pods are replaced at once, available ones only while fewer than maxUnavailable pods are down.
  OnDelete leaves old pods alone. maxSurge is treated as 0.
* Status as ``updateDaemonSetStatus``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyk3s.client.controller import Result
from pyk3s.k3s.names import TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE

from .common.loop import Loop
from .common.settings import ControllerSettings
from .dependents import apply_claim, claim_pods, delete_expecting, expectations_observer, owner_keys
from .expectations import Expectations
from .hashing import template_hash
from .objects import (
    Obj,
    counts_differ,
    deep_copy,
    is_deleting,
    key_of,
    make_owner_ref,
    name_of,
    namespace_of,
    parse_time,
)
from .placement import affinity_matches, untolerated_taint
from .podutil import available_in, is_available, is_ready
from .rollout import resolve_int_or_percent

__all__ = [
    "DAEMON_TOLERATIONS",
    "DaemonSetController",
    "DaemonSetPlan",
    "daemon_pod",
    "daemon_template",
    "node_should_run",
    "plan_daemonset",
    "revision_hash",
    "target_node",
]

log = logging.getLogger("pyk3s.controllers.daemonset")

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
DAEMON_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": TAINT_NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": TAINT_UNSCHEDULABLE, "operator": "Exists", "effect": "NoSchedule"},
)
_NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


@dataclass(slots=True)
class DaemonSetPlan:
    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def revision_hash(ds: Mapping[str, Any]) -> str:
    collisions = (ds.get("status") or {}).get("collisionCount")
    return template_hash((ds.get("spec") or {}).get("template") or {}, collisions)


def daemon_template(ds: Mapping[str, Any]) -> Obj:
    """The pod template with the automatic DaemonSet tolerations added."""
    template = deep_copy((ds.get("spec") or {}).get("template") or {})
    spec = template.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    extra = list(DAEMON_TOLERATIONS) + ([_NETWORK_UNAVAILABLE] if spec.get("hostNetwork") else [])
    for tol in extra:
        if not any(t.get("key") == tol["key"] and t.get("effect") == tol["effect"]
                   and (t.get("operator") or "Equal") == "Exists" for t in tolerations):
            tolerations.append(dict(tol))
    spec["tolerations"] = tolerations
    return template


def node_should_run(template: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[bool, bool]:
    """(should run, should continue running) for the daemon pod ``template`` on ``node``."""
    spec = template.get("spec") or {}
    if spec.get("nodeName") and spec["nodeName"] != name_of(node):
        return False, False
    if not affinity_matches(spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = spec.get("tolerations") or []
    if untolerated_taint(taints, tolerations, ("NoExecute",)) is not None:
        return False, False
    if untolerated_taint(taints, tolerations, ("NoSchedule",)) is not None:
        return False, True
    return True, True


def target_node(pod: Mapping[str, Any]) -> str:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return ""


def daemon_pod(ds: Mapping[str, Any], template: Mapping[str, Any], pod_hash: str, node_name: str) -> Obj:
    meta = template.get("metadata") or {}
    labels = dict(meta.get("labels") or {})
    labels[HASH_LABEL] = pod_hash
    labels[GENERATION_LABEL] = str((ds.get("metadata") or {}).get("generation") or 1)
    spec = deep_copy(template.get("spec") or {})
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    pod_meta: dict[str, Any] = {
        "generateName": f"{name_of(ds)}-",
        "namespace": namespace_of(ds),
        "labels": labels,
        "ownerReferences": [make_owner_ref(ds, "apps/v1", "DaemonSet")],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def _created(pod: Mapping[str, Any]) -> tuple[float, str]:
    ts = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    return (ts.timestamp() if ts else float("inf"), name_of(pod))


def _is_updated(pod: Mapping[str, Any], pod_hash: str, generation: int) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if HASH_LABEL in labels:
        return labels[HASH_LABEL] == pod_hash
    return labels.get(GENERATION_LABEL) == str(generation)


def plan_daemonset(ds: Obj, nodes: Sequence[Obj], pods: Sequence[Obj], now: datetime) -> DaemonSetPlan:
    """Pure: pods to create (by node) and delete, and the status, for DaemonSet ``ds``.

    ``pods`` are the pods the DaemonSet controls.
    """
    spec = ds.get("spec") or {}
    template = daemon_template(ds)
    pod_hash = revision_hash(ds)
    generation = int((ds.get("metadata") or {}).get("generation") or 0)
    min_ready = int(spec.get("minReadySeconds") or 0)
    by_node: dict[str, list[Obj]] = {}
    for pod in pods:
        by_node.setdefault(target_node(pod), []).append(pod)
    plan = DaemonSetPlan()
    deleting: set[str] = set()

    def delete(pod: Obj) -> None:
        if key_of(pod) not in deleting and not is_deleting(pod):
            deleting.add(key_of(pod))
            plan.delete.append(pod)

    node_names = {name_of(n) for n in nodes}
    for node_name, node_pods in by_node.items():
        if node_name not in node_names:
            for pod in node_pods:
                delete(pod)
    status = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}
    counts = {"updatedNumberScheduled": 0, "numberAvailable": 0}
    for node in sorted(nodes, key=name_of):
        run, keep = node_should_run(template, node)
        node_pods = sorted(by_node.get(name_of(node), []), key=_created)
        if run:
            if not node_pods:
                plan.create_on.append(name_of(node))
            else:
                running = []
                for pod in node_pods:
                    if is_deleting(pod):
                        continue
                    if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
                        delete(pod)
                    else:
                        running.append(pod)
                for extra in running[1:]:
                    delete(extra)
        elif not keep:
            for pod in node_pods:
                delete(pod)
        # status (before this sync's writes, like upstream)
        scheduled = bool(node_pods)
        if run:
            status["desiredNumberScheduled"] += 1
            if not scheduled:
                continue
            status["currentNumberScheduled"] += 1
            pod = node_pods[0]
            if is_ready(pod):
                status["numberReady"] += 1
                if is_available(pod, min_ready, now):
                    counts["numberAvailable"] += 1
                else:
                    wait = available_in(pod, min_ready, now)
                    if wait is not None:
                        plan.requeue_after = min(plan.requeue_after or wait, wait)
            if _is_updated(pod, pod_hash, generation):
                counts["updatedNumberScheduled"] += 1
        elif scheduled:
            status["numberMisscheduled"] += 1
    counts["numberUnavailable"] = status["desiredNumberScheduled"] - counts["numberAvailable"]
    counts["observedGeneration"] = generation
    status.update({k: v for k, v in counts.items() if v})
    for k in ("collisionCount", "conditions"):
        if (ds.get("status") or {}).get(k):
            status[k] = ds["status"][k]
    plan.status = status
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        _rolling_update(ds, by_node, node_names, pod_hash, generation, min_ready, now, status, delete)
    return plan


def _rolling_update(ds: Obj, by_node: dict[str, list[Obj]], node_names: set[str], pod_hash: str, generation: int,
                    min_ready: int, now: datetime, status: Mapping[str, Any], delete: Any) -> None:
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    max_unavailable = resolve_int_or_percent(ru.get("maxUnavailable", 1), int(status["desiredNumberScheduled"]), True)
    if max_unavailable == 0:
        max_unavailable = 1
    unavailable = 0
    replace_now: list[Obj] = []
    candidates: list[Obj] = []
    for node_name in sorted(by_node):
        if node_name not in node_names:
            continue
        live = [p for p in by_node[node_name] if not is_deleting(p)]
        new = [p for p in live if _is_updated(p, pod_hash, generation)]
        old = [p for p in live if not _is_updated(p, pod_hash, generation)]
        if len(new) > 1 or len(old) > 1 or (not new and not old) or (new and old):
            unavailable += 1
            continue
        if new:
            if not is_available(new[0], min_ready, now):
                unavailable += 1
            continue
        if not is_available(old[0], min_ready, now):
            replace_now.append(old[0])
            unavailable += 1
        elif unavailable < max_unavailable:
            candidates.append(old[0])
    budget = max(0, min(max_unavailable - unavailable, len(candidates)))
    for pod in replace_now + candidates[:budget]:
        delete(pod)


_STATUS_FIELDS = (
    "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
    "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "collisionCount",
)


def status_differs(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    return counts_differ(old, new, _STATUS_FIELDS)


class DaemonSetController(Loop):
    name = "daemonset"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.daemonsets = self.informer("apps/v1", "daemonsets")
        self.nodes = self.informer("v1", "nodes")
        self.pods = self.informer("v1", "pods")
        self.expectations = Expectations(self.settings.expectations_ttl)
        self.pod_api = client.resource("v1", "pods")
        self.ds_api = client.resource("apps/v1", "daemonsets")
        self.controller.watch(self.daemonsets)
        self.controller.watch(self.pods, lambda pod: owner_keys(pod, "DaemonSet", self.daemonsets.list))
        self.controller.watch(self.nodes, lambda _node: [key_of(ds) for ds in self.daemonsets.list()])
        self.pods.add_handler(expectations_observer(self.expectations, "DaemonSet"))

    async def reconcile(self, key: str) -> Result | None:
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return None
        ns = namespace_of(ds)
        claim = claim_pods(ds, [p for p in self.pods.list() if namespace_of(p) == ns])
        owned = await apply_claim(self.pod_api, ds, claim, "apps/v1", "DaemonSet")
        plan = plan_daemonset(ds, self.nodes.list(), owned, datetime.now(UTC))
        if self.expectations.satisfied(key) and not is_deleting(ds):
            await self._apply(ds, key, plan)
        if status_differs(ds.get("status"), plan.status):
            await self.ds_api.update_status({**ds, "status": plan.status})
        return Result.after(plan.requeue_after + 0.1) if plan.requeue_after else None

    async def _apply(self, ds: Obj, key: str, plan: DaemonSetPlan) -> None:
        ns = namespace_of(ds)
        if plan.create_on:
            template = daemon_template(ds)
            pod_hash = revision_hash(ds)
            self.expectations.expect(key, adds=len(plan.create_on))
            created = 0
            try:
                for node_name in plan.create_on:
                    await self.pod_api.create(daemon_pod(ds, template, pod_hash, node_name), ns)
                    created += 1
            finally:
                for _ in range(len(plan.create_on) - created):
                    self.expectations.creation_observed(key)
            log.info("daemonset %s: created %d pod(s)", key, created)
        if plan.delete:
            await delete_expecting(self.pod_api, self.expectations, key, plan.delete, ns)
            log.info("daemonset %s: deleted %d pod(s)", key, len(plan.delete))
