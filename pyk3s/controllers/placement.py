"""Which pod may run on which node: taints and tolerations, node selectors, required node affinity.

Shared by the scheduler and the DaemonSet controller (which must agree on eligibility). Rules:

* A toleration with an empty key and operator Exists tolerates every taint; an empty effect matches
  every effect; operator Equal (or empty) compares values.
* ``spec.nodeSelector``: every label must be equal. Required node affinity: the ``nodeSelectorTerms``
  are OR-ed, the requirements inside a term AND-ed; a term without requirements matches nothing.
  Operators In, NotIn, Exists, DoesNotExist, Gt, Lt on labels; ``matchFields`` knows only
  ``metadata.name`` (In/NotIn).
* Node conditions count as taints like upstream's TaintNodesByCondition: Ready False or missing →
  ``node.kubernetes.io/not-ready``, Ready Unknown → ``node.kubernetes.io/unreachable`` (NoSchedule),
  and the pressure conditions → their NoSchedule taints, unless the node already carries them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyk3s.k3s.names import TAINT_NOT_READY, TAINT_UNREACHABLE

from .objects import expression_matches, get_condition, name_of

__all__ = [
    "affinity_matches",
    "effective_taints",
    "node_ready_status",
    "node_selector_terms_match",
    "tolerates",
    "untolerated_taint",
]


_PRESSURE_TAINTS = (
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    ("NetworkUnavailable", "node.kubernetes.io/network-unavailable"),
)


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def untolerated_taint(
    taints: Iterable[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]], effects: Iterable[str]
) -> Mapping[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    wanted = set(effects)
    for taint in taints:
        if taint.get("effect") not in wanted:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def node_ready_status(node: Mapping[str, Any]) -> str:
    """"True", "False" or "Unknown" ("False" when the node has not reported yet)."""
    cond = get_condition(node, "Ready")
    if cond is None:
        return "False"
    return str(cond.get("status") or "Unknown")


def effective_taints(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The node's taints plus the NoSchedule taints its conditions imply."""
    taints: list[Mapping[str, Any]] = list((node.get("spec") or {}).get("taints") or [])
    present = {(t.get("key"), t.get("effect")) for t in taints}

    def add(key: str) -> None:
        if (key, "NoSchedule") not in present:
            taints.append({"key": key, "effect": "NoSchedule"})
            present.add((key, "NoSchedule"))

    ready = node_ready_status(node)
    if ready == "False":
        add(TAINT_NOT_READY)
    elif ready == "Unknown":
        add(TAINT_UNREACHABLE)
    for cond_type, key in _PRESSURE_TAINTS:
        cond = get_condition(node, cond_type)
        if cond and cond.get("status") == "True":
            add(key)
    return taints


def _requirement_matches(req: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A NodeSelectorRequirement: a label selector's set operators, and Gt/Lt on integer values."""
    key, op, values = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    if op in ("Gt", "Lt"):
        if key not in labels or len(values) != 1:
            return False
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return expression_matches(labels, req)


def _field_matches(req: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    if req.get("key") != "metadata.name":
        return False
    return _requirement_matches(req, {"metadata.name": name_of(node)})


def node_selector_terms_match(terms: Sequence[Mapping[str, Any]], node: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_requirement_matches(e, labels) for e in exprs) and all(_field_matches(f, node) for f in fields):
            return True
    return False


def affinity_matches(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """``spec.nodeSelector`` and required node affinity both accept the node."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required is None:
        return True
    return node_selector_terms_match(required.get("nodeSelectorTerms") or [], node)
