"""Deployment rollout as a pure computation: observed Deployment + ReplicaSets (+ pods) → one sync step.

The steps follow upstream's ``syncDeployment`` (pkg/controller/deployment):

* deleting → status only; paused or a scaling event (an active ReplicaSet's ``desired-replicas``
  annotation differs from ``spec.replicas``) → proportional scaling, no rollout; otherwise
  RollingUpdate or Recreate.
* The new ReplicaSet is the oldest one whose template equals the Deployment's ignoring the
  ``pod-template-hash`` label (so ``kubectl rollout undo`` reuses the old ReplicaSet and gives it the
  next revision); otherwise ``<deploy>-<hash>`` is created with the hash label in its selector,
  template and labels.
* RollingUpdate: maxSurge rounds up, maxUnavailable rounds down, both 0 → maxUnavailable 1. Scale
  the new ReplicaSet up within surge, then old ones down (unhealthy first) keeping minimum
  availability. Recreate: old ReplicaSets to 0, wait for their pods to stop, then the new one up.
* Status and the Available/Progressing conditions as ``syncRolloutStatus``; Progressing times out
  after ``progressDeadlineSeconds`` with ProgressDeadlineExceeded.

Everything works on copies: :func:`plan_deployment` returns what to create, update and delete.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyk3s.k3s.names import LAST_APPLIED_ANNOTATION

from .hashing import template_hash
from .objects import (
    Obj,
    deep_copy,
    format_time,
    is_deleting,
    make_owner_ref,
    name_of,
    namespace_of,
    parse_time,
    uid_of,
)

__all__ = [
    "DESIRED_REPLICAS",
    "HASH_LABEL",
    "MAX_REPLICAS",
    "REVISION",
    "DeploymentPlan",
    "max_surge",
    "max_unavailable",
    "plan_deployment",
    "resolve_int_or_percent",
    "templates_equal",
]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
_SKIP_COPY = {
    LAST_APPLIED_ANNOTATION,
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
}
_NO_DEADLINE = 2**31 - 1
_STATUS_COUNTS = (
    "observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
    "unavailableReplicas", "collisionCount",
)


@dataclass(slots=True)
class DeploymentPlan:
    create: Obj | None = None
    updates: list[Obj] = field(default_factory=list)
    deletes: list[Obj] = field(default_factory=list)
    annotations: dict[str, str] | None = None
    status: dict[str, Any] = field(default_factory=dict)
    status_changed: bool = False
    requeue_after: float | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)


# -- small helpers ------------------------------------------------------------------------------------

def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        scaled = int(text[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def _spec_replicas(rs: Mapping[str, Any] | None) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0) if rs else 0


def _stat(rs: Mapping[str, Any] | None, name: str) -> int:
    return int((rs.get("status") or {}).get(name) or 0) if rs else 0


def _is_rolling(d: Mapping[str, Any]) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def _fenceposts(d: Mapping[str, Any]) -> tuple[int, int]:
    replicas = int((d.get("spec") or {}).get("replicas", 1))
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Mapping[str, Any]) -> int:
    return _fenceposts(d)[0] if _is_rolling(d) else 0


def max_unavailable(d: Mapping[str, Any]) -> int:
    replicas = int((d.get("spec") or {}).get("replicas", 1))
    if not _is_rolling(d) or replicas == 0:
        return 0
    return min(_fenceposts(d)[1], replicas)


def _strip_hash(template: Mapping[str, Any]) -> dict[str, Any]:
    t = copy.deepcopy(dict(template))
    meta = t.setdefault("metadata", {}) or {}
    t["metadata"] = meta
    labels = dict(meta.get("labels") or {})
    labels.pop(HASH_LABEL, None)
    meta["labels"] = labels
    for k in [k for k, v in meta.items() if v in (None, {}, [])]:
        del meta[k]
    return t


def templates_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _strip_hash(a) == _strip_hash(b)


def _revision(rs: Mapping[str, Any]) -> int:
    try:
        return int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _created(rs: Mapping[str, Any]) -> tuple[float, str]:
    ts = parse_time((rs.get("metadata") or {}).get("creationTimestamp"))
    return (ts.timestamp() if ts else float("inf"), name_of(rs))


def _has_deadline(d: Mapping[str, Any]) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds", 600)
    return pds is not None and int(pds) != _NO_DEADLINE


def _norm_status(status: Mapping[str, Any] | None) -> dict[str, Any]:
    status = dict(status or {})
    for k in _STATUS_COUNTS:
        if not status.get(k):
            status.pop(k, None)
    if not status.get("conditions"):
        status.pop("conditions", None)
    return status


def deployment_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    want = int((d.get("spec") or {}).get("replicas", 1))
    return (
        int(status.get("updatedReplicas") or 0) == want
        and int(status.get("replicas") or 0) == want
        and int(status.get("availableReplicas") or 0) == want
        and int(status.get("observedGeneration") or 0) >= int((d.get("metadata") or {}).get("generation") or 0)
    )


# -- the sync engine ----------------------------------------------------------------------------------

class _Sync:
    def __init__(self, d: Obj, rss: Sequence[Obj], pods: Sequence[Obj], now: datetime,
                 taken_names: Mapping[str, Obj]) -> None:
        self.d = d
        self.spec = d.get("spec") or {}
        self.want = int(self.spec.get("replicas", 1))
        self.now = now
        self.now_s = format_time(now)
        self.rss = [deep_copy(rs) for rs in rss if not is_deleting(rs)]
        self.originals = {name_of(rs): rs for rs in rss}
        self.pods = pods
        self.taken = taken_names
        self.new_rs: Obj | None = None
        self.created: Obj | None = None
        self.deletes: list[Obj] = []
        self.annotations = dict((d.get("metadata") or {}).get("annotations") or {})
        self.status = deep_copy(d.get("status") or {})
        self.conditions: list[dict[str, Any]] = [dict(c) for c in self.status.get("conditions") or []]
        self.events: list[tuple[str, str, str]] = []
        self.requeue: float | None = None

    # conditions ---------------------------------------------------------------------------------------
    def _cond(self, type_: str) -> dict[str, Any] | None:
        return next((c for c in self.conditions if c.get("type") == type_), None)

    def _set_cond(self, type_: str, status: str, reason: str, message: str, *, force: bool = False) -> None:
        cur = self._cond(type_)
        if not force and cur is not None and cur.get("status") == status and cur.get("reason") == reason:
            return
        new = {"type": type_, "status": status, "lastUpdateTime": self.now_s, "lastTransitionTime": self.now_s,
               "reason": reason, "message": message}
        if cur is not None and cur.get("status") == status:
            new["lastTransitionTime"] = cur.get("lastTransitionTime", self.now_s)
        self.conditions = [c for c in self.conditions if c.get("type") != type_] + [new]

    # replica sets -------------------------------------------------------------------------------------
    def _old(self) -> list[Obj]:
        return [rs for rs in self.rss if rs is not self.new_rs]

    def _all(self) -> list[Obj]:
        return self._old() + ([self.new_rs] if self.new_rs is not None else [])

    def _set_replica_annotations(self, rs: Obj) -> None:
        ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
        ann[DESIRED_REPLICAS] = str(self.want)
        ann[MAX_REPLICAS] = str(self.want + max_surge(self.d))

    def _scale(self, rs: Obj, n: int) -> None:
        old = _spec_replicas(rs)
        if old != n:
            verb = "up" if n > old else "down"
            self.events.append(("Normal", "ScalingReplicaSet", f"Scaled {verb} replica set {name_of(rs)} from {old} to {n}"))
        rs.setdefault("spec", {})["replicas"] = n
        self._set_replica_annotations(rs)

    def _copy_annotations(self, rs: Obj) -> None:
        ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
        for k, v in ((self.d.get("metadata") or {}).get("annotations") or {}).items():
            if k not in _SKIP_COPY and ann.get(k) != v:
                ann[k] = v

    def sync_revision(self, create: bool) -> None:
        """getAllReplicaSetsAndSyncRevision."""
        template = self.spec.get("template") or {}
        matches = sorted((rs for rs in self.rss if templates_equal((rs.get("spec") or {}).get("template") or {}, template)),
                         key=_created)
        self.new_rs = matches[0] if matches else None
        new_revision = max((_revision(rs) for rs in self._old()), default=0) + 1
        if self.new_rs is not None:
            current = self.new_rs
            self._copy_annotations(current)
            ann = current["metadata"]["annotations"]
            old_rev = ann.get(REVISION)
            if _revision(current) < new_revision:
                ann[REVISION] = str(new_revision)
                if old_rev:
                    hist = ann.get(REVISION_HISTORY)
                    ann[REVISION_HISTORY] = f"{hist},{old_rev}" if hist else old_rev
            if (current.get("spec") or {}).get("minReadySeconds", 0) != self.spec.get("minReadySeconds", 0):
                current["spec"]["minReadySeconds"] = self.spec.get("minReadySeconds", 0)
            self.annotations[REVISION] = ann[REVISION]
            if _has_deadline(self.d) and self._cond("Progressing") is None:
                self._set_cond("Progressing", "True", "FoundNewReplicaSet", f'Found new replica set "{name_of(current)}"')
            return
        if not create:
            return
        collisions = int(self.status.get("collisionCount") or 0)
        pod_hash = template_hash(template, collisions or None)
        name = f"{name_of(self.d)}-{pod_hash}"
        clash = self.taken.get(name)
        if clash is not None:
            # Same name, different template: bump collisionCount; the next sync hashes differently.
            self.status["collisionCount"] = collisions + 1
            self.requeue = 0.1
            return
        new_template = deep_copy(template)
        new_template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = deep_copy(self.spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        rs: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace_of(self.d),
                "labels": dict(new_template["metadata"]["labels"]),
                "annotations": {},
                "ownerReferences": [make_owner_ref(self.d, "apps/v1", "Deployment")],
            },
            "spec": {"replicas": 0, "minReadySeconds": self.spec.get("minReadySeconds", 0),
                     "selector": selector, "template": new_template},
        }
        self._copy_annotations(rs)
        rs["metadata"]["annotations"][REVISION] = str(new_revision)
        self._set_replica_annotations(rs)
        self.new_rs = rs
        rs["spec"]["replicas"] = self._new_rs_new_replicas()
        self.created = rs
        self.rss.append(rs)
        self.annotations[REVISION] = str(new_revision)
        if rs["spec"]["replicas"] > 0:
            self.events.append(("Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {name} from 0 to {rs['spec']['replicas']}"))
        if _has_deadline(self.d):
            self._set_cond("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"')

    def _new_rs_new_replicas(self) -> int:
        new = self.new_rs
        if not _is_rolling(self.d):
            return self.want
        current = sum(_spec_replicas(rs) for rs in self._all())
        max_total = self.want + max_surge(self.d)
        if current >= max_total:
            return _spec_replicas(new)
        scale_up = min(max_total - current, self.want - _spec_replicas(new))
        return _spec_replicas(new) + scale_up

    # proportional scaling (paused / scaling events) ---------------------------------------------------
    def is_scaling_event(self) -> bool:
        self.sync_revision(create=False)
        for rs in self._all():
            if _spec_replicas(rs) <= 0:
                continue
            desired = ((rs.get("metadata") or {}).get("annotations") or {}).get(DESIRED_REPLICAS)
            if desired is not None and desired.isdigit() and int(desired) != self.want:
                return True
        return False

    def _fraction(self, rs: Obj, surge: int) -> int:
        if self.want == 0:
            return -_spec_replicas(rs)
        total = self.want + surge
        raw = ((rs.get("metadata") or {}).get("annotations") or {}).get(MAX_REPLICAS)
        annotated = int(raw) if raw and raw.isdigit() else int(self.status.get("replicas") or 0)
        if annotated <= 0:
            return 0
        size = _spec_replicas(rs) * total / annotated
        return int(math.floor(size + 0.5)) - _spec_replicas(rs)

    def _active_or_latest(self) -> Obj | None:
        new, old = self.new_rs, self._old()
        if new is None and not old:
            return None
        active = [rs for rs in self._all() if _spec_replicas(rs) > 0]
        if not active:
            return new if new is not None else sorted(old, key=_created)[-1]
        return active[0] if len(active) == 1 else None

    def scale(self) -> None:
        target = self._active_or_latest()
        if target is not None:
            self._scale(target, self.want)
            return
        active = [rs for rs in self._all() if _spec_replicas(rs) > 0]
        new = self.new_rs
        if new is not None and _spec_replicas(new) == self.want and _stat(new, "availableReplicas") == self.want:
            for rs in self._old():
                if _spec_replicas(rs) > 0:
                    self._scale(rs, 0)
            return
        if not _is_rolling(self.d):
            return
        surge = max_surge(self.d)
        allowed = self.want + surge if self.want > 0 else 0
        to_add = allowed - sum(_spec_replicas(rs) for rs in active)
        if to_add > 0:
            active.sort(key=lambda rs: (-_spec_replicas(rs), -_created(rs)[0]))
        else:
            active.sort(key=lambda rs: (-_spec_replicas(rs), _created(rs)[0]))
        sizes: dict[int, int] = {}
        added = 0
        for i, rs in enumerate(active):
            prop = 0
            if to_add != 0 and to_add != added:
                frac = self._fraction(rs, surge)
                prop = min(frac, to_add - added) if to_add > 0 else max(frac, to_add - added)
            sizes[i] = _spec_replicas(rs) + prop
            added += prop
        if to_add != 0:
            sizes[0] = max(sizes[0] + to_add - added, 0)
        for i, rs in enumerate(active):
            self._scale(rs, sizes[i])

    # rolling update -----------------------------------------------------------------------------------
    def reconcile_new(self) -> bool:
        new = self.new_rs
        if new is None:
            return False
        if _spec_replicas(new) == self.want:
            return False
        if _spec_replicas(new) > self.want:
            self._scale(new, self.want)
            return True
        before = _spec_replicas(new)
        self._scale(new, self._new_rs_new_replicas())
        return _spec_replicas(new) != before

    def reconcile_old(self) -> bool:
        old = [rs for rs in self._old() if _spec_replicas(rs) > 0]
        if not old:
            return False
        new = self.new_rs
        all_count = sum(_spec_replicas(rs) for rs in self._all())
        min_available = self.want - max_unavailable(self.d)
        new_unavailable = _spec_replicas(new) - _stat(new, "availableReplicas")
        max_scaled_down = all_count - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = 0
        for rs in sorted(old, key=_created):
            if cleaned >= max_scaled_down:
                break
            unhealthy = _spec_replicas(rs) - _stat(rs, "availableReplicas")
            if _spec_replicas(rs) == 0 or unhealthy <= 0:
                continue
            n = min(max_scaled_down - cleaned, unhealthy)
            self._scale(rs, _spec_replicas(rs) - n)
            cleaned += n
        available = sum(_stat(rs, "availableReplicas") for rs in self._all())
        scaled = 0
        if available > min_available:
            total = available - min_available
            for rs in sorted(old, key=_created):
                if scaled >= total:
                    break
                if _spec_replicas(rs) == 0:
                    continue
                n = min(_spec_replicas(rs), total - scaled)
                self._scale(rs, _spec_replicas(rs) - n)
                scaled += n
        return cleaned + scaled > 0

    # recreate -----------------------------------------------------------------------------------------
    def old_pods_running(self) -> bool:
        if sum(_stat(rs, "replicas") for rs in self._old()) > 0:
            return True
        old_uids = {uid_of(rs) for rs in self._old()}
        for pod in self.pods:
            refs = (pod.get("metadata") or {}).get("ownerReferences") or []
            if not any(r.get("uid") in old_uids for r in refs):
                continue
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
        return False

    # cleanup ------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        limit = self.spec.get("revisionHistoryLimit", 10)
        if limit is None:
            return
        cleanable = [
            rs for rs in self._old()
            if _spec_replicas(rs) == 0 and _stat(rs, "replicas") == 0 and rs is not self.created
            and int((rs.get("metadata") or {}).get("generation") or 0) <= _stat(rs, "observedGeneration")
        ]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (_revision(rs), _created(rs)))
        self.deletes = cleanable[:diff]

    # status -------------------------------------------------------------------------------------------
    def calculate_status(self) -> dict[str, Any]:
        rss = self._all()
        available = sum(_stat(rs, "availableReplicas") for rs in rss)
        total = sum(_spec_replicas(rs) for rs in rss)
        status: dict[str, Any] = {
            "observedGeneration": int((self.d.get("metadata") or {}).get("generation") or 0),
            "replicas": sum(_stat(rs, "replicas") for rs in rss),
            "updatedReplicas": _stat(self.new_rs, "replicas"),
            "readyReplicas": sum(_stat(rs, "readyReplicas") for rs in rss),
            "availableReplicas": available,
            "unavailableReplicas": max(total - available, 0),
        }
        if self.status.get("collisionCount"):
            status["collisionCount"] = self.status["collisionCount"]
        if available >= self.want - max_unavailable(self.d):
            self._set_cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            self._set_cond("Available", "False", "MinimumReplicasUnavailable",
                           "Deployment does not have minimum availability.")
        status["conditions"] = self.conditions
        return status

    def rollout_status(self) -> dict[str, Any]:
        """syncRolloutStatus: status plus the Progressing verdict."""
        status = self.calculate_status()
        has_deadline = _has_deadline(self.d)
        if not has_deadline:
            self.conditions = [c for c in self.conditions if c.get("type") != "Progressing"]
        cur = self._cond("Progressing")
        complete_before = (status["replicas"] == status["updatedReplicas"] and cur is not None
                           and cur.get("reason") == "NewReplicaSetAvailable")
        subject = f'ReplicaSet "{name_of(self.new_rs)}"' if self.new_rs else f'Deployment "{name_of(self.d)}"'
        if has_deadline and not complete_before:
            old = self.d.get("status") or {}
            if deployment_complete(self.d, status):
                self._set_cond("Progressing", "True", "NewReplicaSetAvailable", f"{subject} has successfully progressed.")
            elif self._progressing(old, status):
                self._set_cond("Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.", force=True)
            elif self._timed_out(status):
                self._set_cond("Progressing", "False", "ProgressDeadlineExceeded", f"{subject} has timed out progressing.")
        status["conditions"] = self.conditions
        cur = self._cond("Progressing")
        if (has_deadline and cur is not None and not deployment_complete(self.d, status)
                and cur.get("reason") not in ("ProgressDeadlineExceeded", "NewReplicaSetAvailable")):
            since = parse_time(cur.get("lastUpdateTime"))
            if since is not None:
                deadline = since + timedelta(seconds=int(self.spec.get("progressDeadlineSeconds", 600)))
                left = (deadline - self.now).total_seconds()
                self._requeue(max(left, 0) + 1)
        return status

    def _requeue(self, after: float) -> None:
        self.requeue = after if self.requeue is None else min(self.requeue, after)

    @staticmethod
    def _progressing(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        def g(s: Mapping[str, Any], k: str) -> int:
            return int(s.get(k) or 0)
        return (
            g(new, "updatedReplicas") > g(old, "updatedReplicas")
            or g(new, "replicas") - g(new, "updatedReplicas") < g(old, "replicas") - g(old, "updatedReplicas")
            or g(new, "readyReplicas") > g(old, "readyReplicas")
            or g(new, "availableReplicas") > g(old, "availableReplicas")
        )

    def _timed_out(self, status: Mapping[str, Any]) -> bool:
        cur = self._cond("Progressing")
        if cur is None or cur.get("reason") == "NewReplicaSetAvailable":
            return False
        if cur.get("reason") == "ProgressDeadlineExceeded":
            return True
        since = parse_time(cur.get("lastUpdateTime"))
        if since is None:
            return False
        return since + timedelta(seconds=int(self.spec.get("progressDeadlineSeconds", 600))) < self.now

    def check_paused(self) -> None:
        if not _has_deadline(self.d):
            return
        cur = self._cond("Progressing")
        paused = bool(self.spec.get("paused"))
        if paused and (cur is None or cur.get("reason") != "DeploymentPaused"):
            self._set_cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif not paused and cur is not None and cur.get("reason") == "DeploymentPaused":
            self._set_cond("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")

    # top level ----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        if is_deleting(self.d):
            self.sync_revision(create=False)
            return self.calculate_status()
        self.check_paused()
        if self.spec.get("paused") or self.is_scaling_event():
            self.sync_revision(create=False)
            self.scale()
            if self.spec.get("paused"):
                self.cleanup()
            return self.calculate_status()
        if _is_rolling(self.d):
            self.sync_revision(create=True)
            if self.created is None and self.new_rs is None:
                return self.calculate_status()
            if self.reconcile_new() or self.reconcile_old():
                return self.rollout_status()
            if deployment_complete(self.d, self.d.get("status") or {}):
                self.cleanup()
            return self.rollout_status()
        # Recreate
        self.sync_revision(create=False)
        scaled = False
        for rs in self._old():
            if _spec_replicas(rs) > 0:
                self._scale(rs, 0)
                scaled = True
        if scaled or self.old_pods_running():
            return self.rollout_status()
        if self.new_rs is None:
            self.sync_revision(create=True)
            if self.new_rs is None:
                return self.calculate_status()
        if deployment_complete(self.d, self.d.get("status") or {}):
            self.cleanup()
        if _spec_replicas(self.new_rs) != self.want:
            self._scale(self.new_rs, self.want)
        return self.rollout_status()


def plan_deployment(
    d: Obj,
    owned_rss: Sequence[Obj],
    pods: Sequence[Obj],
    now: datetime,
    taken_names: Mapping[str, Obj] | None = None,
) -> DeploymentPlan:
    """One sync step for Deployment ``d`` given the ReplicaSets it owns (pure; ``now`` is the clock).

    ``taken_names`` holds every ReplicaSet in the namespace by name, to detect hash collisions.
    """
    owned_names = {name_of(rs) for rs in owned_rss}
    taken = {n: rs for n, rs in (taken_names or {}).items() if n not in owned_names}
    s = _Sync(d, owned_rss, pods, now, taken)
    status = s.run()
    plan = DeploymentPlan(create=s.created, deletes=s.deletes, events=s.events, requeue_after=s.requeue)
    for rs in s.rss:
        if rs is s.created:
            continue
        orig = s.originals.get(name_of(rs))
        if orig is not None and (orig.get("spec") != rs.get("spec")
                                 or ((orig.get("metadata") or {}).get("annotations") or {})
                                 != (rs["metadata"].get("annotations") or {})):
            plan.updates.append(rs)
    if s.annotations != ((d.get("metadata") or {}).get("annotations") or {}):
        plan.annotations = s.annotations
    plan.status = _norm_status(status)
    plan.status_changed = plan.status != _norm_status(d.get("status"))
    return plan


__all__ += ["deployment_complete"]
