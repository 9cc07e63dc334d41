"""Small pure helpers on plain Kubernetes object dicts shared by the controllers.

Label selectors follow ``metav1.LabelSelector`` rules: an empty selector (``{}``) matches every object,
a missing one (``None``) matches nothing; ``matchExpressions`` operators are In, NotIn, Exists and
DoesNotExist. Times are RFC 3339 strings with second precision (``metav1.Time``) or microseconds
(``metav1.MicroTime``, Lease renewTime); both parse with :func:`parse_time`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Obj",
    "counts_differ",
    "controller_ref",
    "deep_copy",
    "expression_matches",
    "format_time",
    "get_condition",
    "is_deleting",
    "key_of",
    "labels_match",
    "make_owner_ref",
    "name_of",
    "namespace_of",
    "owner_key",
    "parse_time",
    "selector_string",
    "set_condition",
    "split_key",
    "uid_of",
]

Obj = dict[str, Any]


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def key_of(obj: Mapping[str, Any]) -> str:
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    """``"ns/name"`` → ``("ns", "name")``; ``"name"`` → ``("", "name")``."""
    ns, _, name = key.rpartition("/")
    return ns, name


def is_deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def deep_copy(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


# -- owner references ---------------------------------------------------------------------------------

def controller_ref(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_key(obj: Mapping[str, Any], kind: str) -> list[str]:
    """Keys of the controlling owner of ``obj`` if it is of ``kind`` (for ``Controller.watch``)."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return []
    ns = namespace_of(obj)
    return [f"{ns}/{ref['name']}" if ns else str(ref["name"])]


def make_owner_ref(owner: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


# -- label selectors ----------------------------------------------------------------------------------

def expression_matches(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    """One set-based requirement (In, NotIn, Exists, DoesNotExist; any other operator fails)."""
    key = expr.get("key", "")
    op = expr.get("operator", "")
    values = expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def labels_match(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy a ``metav1.LabelSelector`` (None matches nothing, {} everything)."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    return all(expression_matches(labels, e) for e in selector.get("matchExpressions") or [])


def selector_string(selector: Mapping[str, Any] | None) -> str:
    """The string form of a LabelSelector as the API prints it (``app=web,tier in (a,b)``)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, vals = e.get("operator"), e.get("key"), ",".join(sorted(e.get("values") or []))
        parts.append(
            {"In": f"{key} in ({vals})", "NotIn": f"{key} notin ({vals})", "Exists": f"{key}",
             "DoesNotExist": f"!{key}"}.get(op or "", "")
        )
    return ",".join(p for p in parts if p)


# -- time ---------------------------------------------------------------------------------------------

def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- conditions ---------------------------------------------------------------------------------------

def get_condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def set_condition(
    conditions: Iterable[Mapping[str, Any]], new: Mapping[str, Any], now: str, *, probe_fields: bool = False
) -> list[dict[str, Any]]:
    """Conditions with ``new`` merged in: lastTransitionTime kept while the status is unchanged.

    An identical condition (same status, reason and message) is left completely untouched so that a
    second reconcile writes nothing. ``probe_fields`` also maintains ``lastProbeTime`` (pods).
    """
    out: list[dict[str, Any]] = []
    replaced = False
    for cond in conditions:
        if cond.get("type") != new["type"]:
            out.append(dict(cond))
            continue
        replaced = True
        if all(cond.get(f) == new.get(f) for f in ("status", "reason", "message")):
            out.append(dict(cond))
            continue
        merged = {**cond, **new}
        if cond.get("status") != new.get("status") or "lastTransitionTime" not in cond:
            merged["lastTransitionTime"] = now
        out.append(merged)
    if not replaced:
        fresh = {**new, "lastTransitionTime": now}
        if probe_fields:
            fresh.setdefault("lastProbeTime", None)
        out.append(fresh)
    return out


def counts_differ(old: Mapping[str, Any] | None, new: Mapping[str, Any], fields: Iterable[str]) -> bool:
    """Whether a workload status changed in one of its counters or its conditions (worth a write)."""
    old = old or {}
    if any(int(old.get(f) or 0) != int(new.get(f) or 0) for f in fields):
        return True
    return (old.get("conditions") or None) != (new.get("conditions") or None)
