"""Per-kind rules the registry applies around a write (spec 6.1, 6.3, 6.8).

* Create: the status of kinds with a status subresource is reset (Pods start ``Pending`` with a QoS
  class, Namespaces ``Active`` with ``spec.finalizers: [kubernetes]``, Nodes keep theirs).
* Update of the main resource keeps the stored ``.status``; an update of ``/status`` keeps everything
  but ``.status``; ``namespaces/<n>/finalize`` changes only ``spec.finalizers``.
* ``generation`` starts at 1 and grows when anything outside metadata (and status, for kinds with a
  status subresource) changes.
* Server-owned metadata (uid, creationTimestamp, generation, deletion fields) always comes from the
  stored object.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from pyk3s.api.resources import ResourceInfo

__all__ = [
    "bump_generation",
    "content_changed",
    "prepare_create",
    "prepare_update",
    "removable",
]

_SERVER_META = ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds")


def _qos(spec: dict[str, Any]) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and req[r] != lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


# ObjectMeta fields Go encodes with omitempty: an empty value is not stored, like kube-apiserver
# (removing the last label leaves no ``labels: {}``; an orphaned dependent no ``ownerReferences: []``).
_OMIT_EMPTY = ("labels", "annotations", "ownerReferences", "finalizers")


def _drop_empty(meta: dict[str, Any]) -> None:
    for f in _OMIT_EMPTY:
        if f in meta and not meta[f]:
            del meta[f]


def prepare_create(info: ResourceInfo, obj: dict[str, Any], now: str) -> None:
    meta = obj.setdefault("metadata", {})
    _drop_empty(meta)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now
    meta["generation"] = 1
    for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
        meta.pop(f, None)
    key = (info.group, info.plural)
    if key == ("", "namespaces"):
        spec = obj.setdefault("spec", {})
        if "finalizers" not in spec:
            spec["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
    elif key == ("", "pods"):
        obj["status"] = {"phase": "Pending", "qosClass": _qos(obj.get("spec") or {})}
    elif key == ("", "services"):
        obj["status"] = {"loadBalancer": {}}
    elif key == ("", "nodes"):
        pass
    elif info.has_status:
        if info.is_custom:
            obj.pop("status", None)
        else:
            obj["status"] = {}


def prepare_update(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """The object to store for an update of ``old`` to ``new`` (through ``subresource``)."""
    if subresource == "status":
        merged = copy.deepcopy(old)
        if "status" in new:
            merged["status"] = new["status"]
        else:
            merged.pop("status", None)
        merged["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get("resourceVersion")
        return merged
    if subresource == "finalize":
        merged = copy.deepcopy(old)
        merged.setdefault("spec", {})["finalizers"] = list(((new.get("spec") or {}).get("finalizers")) or [])
        merged["metadata"]["resourceVersion"] = (new.get("metadata") or {}).get("resourceVersion")
        return merged
    merged = new
    meta = merged.setdefault("metadata", {})
    _drop_empty(meta)
    old_meta = old.get("metadata") or {}
    for f in _SERVER_META:
        if f in old_meta:
            meta[f] = old_meta[f]
        else:
            meta.pop(f, None)
    if info.has_status and subresource != "binding":
        if "status" in old:
            merged["status"] = copy.deepcopy(old["status"])
        else:
            merged.pop("status", None)
    if (info.group, info.plural) == ("", "namespaces"):
        merged.setdefault("spec", {})["finalizers"] = list(((old.get("spec") or {}).get("finalizers")) or [])
    return merged


def content_changed(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = {"metadata", "status"} if info.has_status else {"metadata"}
    keys = (set(old) | set(new)) - skip
    return any(old.get(k) != new.get(k) for k in keys)


def bump_generation(info: ResourceInfo, old: dict[str, Any], new: dict[str, Any]) -> None:
    if content_changed(info, old, new):
        meta = new["metadata"]
        meta["generation"] = int((old.get("metadata") or {}).get("generation") or 0) + 1


def removable(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """A deleting object whose finalizers are gone (and, for a namespace, spec.finalizers too) is
    removed from the store; a pod in its grace period waits for the kubelet's final delete."""
    meta = obj.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    if (info.group, info.plural) == ("", "namespaces") and (obj.get("spec") or {}).get("finalizers"):
        return False
    return not meta.get("deletionGracePeriodSeconds")
