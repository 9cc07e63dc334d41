"""What a HelmChart's status says after a reconcile (pure).

K3s's helm-controller sets two conditions: ``JobCreated`` (a helm Job was created) and ``Failed``
(``kubectl get helmcharts`` prints its status in the FAILED column). pyk3s renders its packaged charts
itself, so ``JobCreated`` is False with reason ``NativeRender`` and ``jobName`` stays empty; ``Failed``
keeps K3s's meaning. Two more conditions say what happened: ``Deployed`` (the release revision that
serves) and ``ValuesIgnored`` (values pyk3s renders but does not act on, each named). ``release``,
``revision``, ``chartVersion``, ``objects`` and ``ignoredValues`` hold the same facts for tools.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .chart import Ignored

__all__ = ["ChartOutcome", "build_status"]


@dataclass(frozen=True, slots=True)
class ChartOutcome:
    """The result of one reconcile of a HelmChart."""

    failed_reason: str = ""          # "" when the chart serves as wanted
    failed_message: str = ""
    native: bool = True              # rendered by pyk3s (False: a chart pyk3s does not render)
    release: str = ""                # "<namespace>/<name>" once a revision exists
    revision: int = 0
    chart_version: str = ""
    objects: tuple[str, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    extra_conditions: tuple[dict[str, str], ...] = field(default_factory=tuple)


def _cond(kind: str, status: bool, reason: str = "", message: str = "") -> dict[str, str]:
    out = {"type": kind, "status": "True" if status else "False"}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def ignored_summary(ignored: Iterable[Ignored]) -> str:
    return "; ".join(str(i) for i in ignored)


def build_status(outcome: ChartOutcome, chart_name: str) -> dict[str, Any]:
    """The whole ``status`` (fields that do not apply are null, so a merge patch clears them)."""
    conditions = [
        _cond("JobCreated", False, "NativeRender" if outcome.native else "NoJob",
              f"pyk3s renders chart {chart_name} itself; no helm Job runs" if outcome.native
              else "no helm Job runs: pyk3s installs only its packaged charts"),
        _cond("Failed", bool(outcome.failed_reason), outcome.failed_reason, outcome.failed_message),
    ]
    if outcome.revision:
        conditions.append(_cond("Deployed", True, "Deployed",
                                f"release {outcome.release} revision {outcome.revision}: "
                                f"{len(outcome.objects)} objects"))
    else:
        conditions.append(_cond("Deployed", False, "NotInstalled", "no revision of the release is installed"))
    if outcome.ignored:
        conditions.append(_cond("ValuesIgnored", True, "NotHonoured", ignored_summary(outcome.ignored)))
    else:
        conditions.append(_cond("ValuesIgnored", False))
    conditions += list(outcome.extra_conditions)
    return {
        "jobName": None,
        "conditions": conditions,
        "release": outcome.release or None,
        "revision": outcome.revision or None,
        "chartVersion": outcome.chart_version or None,
        "objects": list(outcome.objects) or None,
        "ignoredValues": [{"key": i.key, "reason": i.reason} for i in outcome.ignored] or None,
    }


def same_status(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    current = current or {}
    return all(current.get(k) == v for k, v in wanted.items() if v is not None) and \
        all(k not in current or current[k] in (None, [], "") for k, v in wanted.items() if v is None)
