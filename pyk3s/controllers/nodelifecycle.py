"""Node lifecycle: notice silent nodes, taint them, evict their pods after tolerationSeconds.

* A node is silent when neither its Lease (``kube-node-lease/<node>`` ``spec.renewTime``) nor its
  Ready condition's ``lastHeartbeatTime`` moved for ``node_monitor_grace_period`` (40 s). As in
  kube-controller-manager (its probe timestamp), the time counted is when this controller saw the
  heartbeat move, on this server's clock, not the time the node wrote into it: a node whose clock is
  behind, or whose renewal arrived late, is not taken for silent. A node first seen gets a full
  grace period from then (a new leader does not judge heartbeats it never watched).
* A silent node's Ready, MemoryPressure, DiskPressure and PIDPressure conditions become Unknown,
  reason ``NodeStatusUnknown``, message ``Kubelet stopped posting node status.`` (missing ones:
  ``NodeStatusNeverUpdated`` / ``Kubelet never posted node status.``), and its pods' Ready condition
  becomes False. Its agent, still alive, puts Ready back on its next heartbeat.
* Taints follow Ready: Unknown → ``node.kubernetes.io/unreachable`` NoSchedule + NoExecute, False →
  ``node.kubernetes.io/not-ready`` NoSchedule + NoExecute (timeAdded on NoExecute), True → neither;
  other taints are kept.
* Pods on a node with NoExecute taints: not tolerating one → deleted now; tolerating all → deleted
  at ``timeAdded + min(tolerationSeconds)`` (capped by ``toleration_seconds_cap``), never if a
  matching toleration has no tolerationSeconds. Their controllers create replacements elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pyk3s.client import NotFound
from pyk3s.client.controller import Result
from pyk3s.k3s.names import TAINT_NOT_READY, TAINT_UNREACHABLE

from .common.loop import Loop
from .common.settings import ControllerSettings
from .objects import (
    deep_copy,
    format_time,
    get_condition,
    is_deleting,
    key_of,
    name_of,
    parse_time,
)
from .placement import node_ready_status, tolerates
from .podutil import is_terminal

__all__ = ["NodeLifecycleController", "eviction_time", "heartbeats", "moved", "stale_conditions",
           "wanted_taints"]

log = logging.getLogger("pyk3s.controllers.nodelifecycle")

_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
_OURS = {TAINT_NOT_READY, TAINT_UNREACHABLE}


Heartbeats = tuple[datetime | None, datetime | None]


def heartbeats(node: Mapping[str, Any], lease: Mapping[str, Any] | None) -> Heartbeats:
    """The times a node wrote last: its Lease's ``renewTime``, its Ready condition's ``lastHeartbeatTime``."""
    return (parse_time(((lease or {}).get("spec") or {}).get("renewTime")),
            parse_time((get_condition(node, "Ready") or {}).get("lastHeartbeatTime")))


def moved(now: Heartbeats, before: Heartbeats) -> bool:
    """Whether either heartbeat is later than before (an older copy is no news)."""
    return any(n is not None and (b is None or n > b) for n, b in zip(now, before, strict=True))


def stale_conditions(node: Mapping[str, Any], now: str) -> list[dict[str, Any]] | None:
    """Conditions with the Unknown verdict applied, or None if they already say so."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    changed = False
    for type_ in _CONDITIONS:
        cond = next((c for c in conditions if c.get("type") == type_), None)
        if cond is None:
            conditions.append({
                "type": type_, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                "message": "Kubelet never posted node status.",
                "lastHeartbeatTime": (node.get("metadata") or {}).get("creationTimestamp"),
                "lastTransitionTime": now,
            })
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown",
                        message="Kubelet stopped posting node status.", lastTransitionTime=now)
            changed = True
    return conditions if changed else None


def wanted_taints(node: Mapping[str, Any], ready: str, now: str) -> list[dict[str, Any]]:
    """The node's taints with the not-ready/unreachable ones matching ``ready``."""
    current = list((node.get("spec") or {}).get("taints") or [])
    key = {"True": None, "False": TAINT_NOT_READY}.get(ready, TAINT_UNREACHABLE)
    out = [t for t in current if t.get("key") not in _OURS or t.get("key") == key]
    if key is not None:
        for effect in ("NoSchedule", "NoExecute"):
            if not any(t.get("key") == key and t.get("effect") == effect for t in out):
                taint = {"key": key, "effect": effect}
                if effect == "NoExecute":
                    taint["timeAdded"] = now
                out.append(taint)
    return out


def eviction_time(pod: Mapping[str, Any], taints: Sequence[Mapping[str, Any]], cap: float | None) -> datetime | None:
    """When ``pod`` must leave a node with ``taints`` (None: never); a past time means now."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    due: datetime | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        added = parse_time(taint.get("timeAdded")) or datetime.fromtimestamp(0, UTC)
        if not matching:
            return added
        if any(t.get("tolerationSeconds") is None for t in matching):
            continue
        seconds = float(min(max(int(t["tolerationSeconds"]), 0) for t in matching))
        if cap is not None:
            seconds = min(seconds, cap)
        when = added + timedelta(seconds=seconds)
        due = when if due is None else min(due, when)
    return due


class NodeLifecycleController(Loop):
    name = "nodelifecycle"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.nodes = self.informer("v1", "nodes")
        self.leases = self.informer("coordination.k8s.io/v1", "leases", namespace="kube-node-lease")
        self.pods = self.informer("v1", "pods")
        self.node_api = client.resource("v1", "nodes")
        self.pod_api = client.resource("v1", "pods")
        # node -> (its heartbeats as last seen, when this controller saw them move)
        self._seen: dict[str, tuple[Heartbeats, datetime]] = {}
        self.controller.watch(self.nodes)
        self.controller.watch(self.leases, lambda lease: [name_of(lease)])
        self.controller.watch(self.pods, lambda pod: [n] if (n := (pod.get("spec") or {}).get("nodeName")) else [])

    async def reconcile(self, key: str) -> Result | None:
        node = self.nodes.get(key)
        if node is None:
            self._seen.pop(key, None)
            return None
        now = datetime.now(UTC)
        now_s = format_time(now)
        grace = timedelta(seconds=self.settings.node_monitor_grace_period)
        beat = self.heard_at(key, heartbeats(node, self.leases.get(f"kube-node-lease/{key}")), now)
        waits: list[float] = []
        stale = now - beat > grace
        if stale:
            conditions = stale_conditions(node, now_s)
            if conditions is not None:
                log.info("node-lifecycle: node %s stopped posting status", key)
                node = await self.node_api.update_status({**node, "status": {**(node.get("status") or {}),
                                                                              "conditions": conditions}})
                await self._mark_pods_not_ready(key, now_s)
        else:
            waits.append((beat + grace - now).total_seconds() + 0.5)
        ready = node_ready_status(node)
        taints = wanted_taints(node, ready, now_s)
        if taints != ((node.get("spec") or {}).get("taints") or []):
            body = deep_copy(node)
            body.setdefault("spec", {})["taints"] = taints
            node = await self.node_api.update(body)
        evict_wait = await self._evict(key, (node.get("spec") or {}).get("taints") or [], now)
        if evict_wait is not None:
            waits.append(evict_wait)
        return Result.after(min(waits)) if waits else None

    def heard_at(self, key: str, beats: Heartbeats, now: datetime) -> datetime:
        """When this controller saw node ``key``'s heartbeats (:func:`heartbeats`) move: ``now`` if they
        did since the last call, else the time recorded then."""
        seen = self._seen.get(key)
        if seen is None or moved(beats, seen[0]):
            self._seen[key] = (beats, now)
            return now
        return seen[1]

    async def _mark_pods_not_ready(self, node_name: str, now: str) -> None:
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name or is_terminal(pod):
                continue
            conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
            ready = next((c for c in conditions if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            ready.update(status="False", lastTransitionTime=now)
            with contextlib.suppress(NotFound):
                await self.pod_api.update_status({**pod, "status": {**(pod.get("status") or {}),
                                                                    "conditions": conditions}})
            await self.client.record_event(pod, type="Warning", reason="NodeNotReady",
                                           message="Node is not ready", component="node-controller")

    async def _evict(self, node_name: str, taints: list[dict[str, Any]], now: datetime) -> float | None:
        if not any(t.get("effect") == "NoExecute" for t in taints):
            return None
        soonest: float | None = None
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name or is_deleting(pod) or is_terminal(pod):
                continue
            due = eviction_time(pod, taints, self.settings.toleration_seconds_cap)
            if due is None:
                continue
            left = (due - now).total_seconds()
            if left > 0:
                soonest = left if soonest is None else min(soonest, left)
                continue
            log.info("node-lifecycle: evicting %s from %s", key_of(pod), node_name)
            await self.client.record_event(pod, reason="TaintManagerEviction", component="taint-eviction-controller",
                                           message=f"Marking for deletion Pod {key_of(pod)}")
            with contextlib.suppress(NotFound):
                await self.pod_api.delete(name_of(pod), (pod.get("metadata") or {}).get("namespace"))
        return soonest + 0.1 if soonest is not None else None
