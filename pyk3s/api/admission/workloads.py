"""apps/v1 and batch/v1 validation: Deployment, ReplicaSet, DaemonSet, StatefulSet, Job
(pkg/apis/apps/validation, pkg/apis/batch/validation)."""

from __future__ import annotations

import json
import re
from typing import Any

from .causes import Cause, GoValue, forbidden, invalid, not_supported, required
from .meta import validate_labels
from .pod import validate_template

__all__ = ["label_selector_repr", "selector_matches", "validate_workload", "validate_workload_update"]

_NONNEG = "must be greater than or equal to 0"
_PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
                "regex used for validation is '[0-9]+%')")


def _go_map(value: Any) -> str:
    if value is None:
        return "map[string]string(nil)"
    return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(str(v))}"
                                            for k, v in sorted(value.items())) + "}"


def label_selector_repr(selector: Any) -> GoValue:
    """A LabelSelector as Go's %#v prints it in validation messages."""
    sel = selector if isinstance(selector, dict) else {}
    exprs = sel.get("matchExpressions")
    if exprs is None:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = []
        for e in exprs:
            values = e.get("values")
            vtext = "[]string(nil)" if values is None else "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"
            items.append(f'v1.LabelSelectorRequirement{{Key:{json.dumps(e.get("key", ""))}, '
                         f'Operator:{json.dumps(e.get("operator", ""))}, Values:{vtext}}}')
        exprs_text = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{_go_map(sel.get('matchLabels'))}, MatchExpressions:{exprs_text}}}")


def selector_matches(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) or \
                (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _nonneg(spec: dict, key: str, path: str) -> list[Cause]:
    value = spec.get(key)
    return [invalid(f"{path}.{key}", value, _NONNEG)] if isinstance(value, int) and value < 0 else []


def _selector_and_template(spec: dict, *, restart_always: bool = True) -> list[Cause]:
    causes: list[Cause] = []
    selector = spec.get("selector")
    template = spec.get("template")
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        causes += validate_labels(selector.get("matchLabels"), "spec.selector.matchLabels")
        for i, expr in enumerate(selector.get("matchExpressions") or []):
            op = expr.get("operator")
            if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
                causes.append(not_supported(f"spec.selector.matchExpressions[{i}].operator", op or "",
                                            ["In", "NotIn", "Exists", "DoesNotExist"]))
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(invalid("spec.selector", label_selector_repr(selector),
                                  "empty selector is invalid for deployment"))
        elif isinstance(template, dict):
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not selector_matches(selector, labels):
                causes.append(invalid("spec.template.metadata.labels", labels,
                                      "`selector` does not match template `labels`"))
    causes += validate_template(template, "spec.template", restart_always=restart_always)
    return causes


def _int_or_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            return [invalid(path, value, _PERCENT_MSG)]
        if int(value[:-1]) > 100:
            return [invalid(path, value, "must not be greater than 100%")]
    elif isinstance(value, int) and value < 0:
        return [invalid(path, value, _NONNEG)]
    return []


def _zero(value: Any) -> bool:
    return value in (0, "0%", "0", None)


def _rolling_update(rolling: dict, path: str, both_zero: str) -> list[Cause]:
    """maxUnavailable and maxSurge: each an int or a percentage, not both zero. Upstream words the
    both-zero message differently for Deployments and DaemonSets, hence ``both_zero``."""
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    causes = _int_or_percent(unavailable, f"{path}.maxUnavailable") + _int_or_percent(surge, f"{path}.maxSurge")
    if _zero(unavailable) and _zero(surge):
        causes.append(invalid(f"{path}.maxUnavailable", unavailable, both_zero))
    return causes


def _deployment(spec: dict) -> list[Cause]:
    causes = _nonneg(spec, "replicas", "spec") + _selector_and_template(spec)
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            causes.append(forbidden("spec.strategy.rollingUpdate",
                                    "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        if rolling is None:
            causes.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
        else:
            causes += _rolling_update(rolling, "spec.strategy.rollingUpdate", "may not be 0 when `maxSurge` is 0")
    else:
        causes.append(not_supported("spec.strategy.type", kind or "", ["Recreate", "RollingUpdate"]))
    causes += _nonneg(spec, "minReadySeconds", "spec") + _nonneg(spec, "revisionHistoryLimit", "spec")
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int):
        causes += _nonneg(spec, "progressDeadlineSeconds", "spec")
        if deadline <= (spec.get("minReadySeconds") or 0):
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return causes


def _replica_set(spec: dict) -> list[Cause]:
    return _nonneg(spec, "replicas", "spec") + _nonneg(spec, "minReadySeconds", "spec") + \
        _selector_and_template(spec)


def _daemon_set(spec: dict) -> list[Cause]:
    causes = _selector_and_template(spec)
    strategy = spec.get("updateStrategy") or {}
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "OnDelete"):
        causes.append(not_supported("spec.updateStrategy.type", kind or "", ["OnDelete", "RollingUpdate"]))
    elif kind == "RollingUpdate":
        causes += _rolling_update(strategy.get("rollingUpdate") or {}, "spec.updateStrategy.rollingUpdate",
                                  "cannot be 0 when maxSurge is 0")
    return causes + _nonneg(spec, "revisionHistoryLimit", "spec")


def _stateful_set(spec: dict) -> list[Cause]:
    causes = _nonneg(spec, "replicas", "spec") + _selector_and_template(spec)
    policy = spec.get("podManagementPolicy")
    if policy not in ("OrderedReady", "Parallel"):
        causes.append(not_supported("spec.podManagementPolicy", policy or "", ["OrderedReady", "Parallel"]))
    return causes


def _job(spec: dict) -> list[Cause]:
    causes: list[Cause] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        causes += _nonneg(spec, key, "spec")
    template = spec.get("template")
    causes += validate_template(template, "spec.template", restart_always=False)
    restart = ((template or {}).get("spec") or {}).get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(not_supported("spec.template.spec.restartPolicy", restart or "", ["OnFailure", "Never"]))
    return causes


_SPECS = {"Deployment": _deployment, "ReplicaSet": _replica_set, "DaemonSet": _daemon_set,
          "StatefulSet": _stateful_set, "Job": _job}


def validate_workload(kind: str, obj: dict) -> list[Cause]:
    return _SPECS[kind](obj.get("spec") or {})


def validate_workload_update(kind: str, obj: dict, old: dict) -> list[Cause]:
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    causes: list[Cause] = []
    if spec.get("selector") != old_spec.get("selector"):
        causes.append(invalid("spec.selector", label_selector_repr(spec.get("selector")), "field is immutable"))
    return causes
