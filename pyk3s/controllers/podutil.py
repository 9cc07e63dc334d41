"""Pod predicates the workload controllers share (pure; the clock is a parameter).

* active: not Succeeded/Failed and not being deleted (``controller.FilterActivePods``);
* ready: condition Ready is True;
* available: ready for at least ``minReadySeconds`` (by the Ready condition's lastTransitionTime).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .objects import get_condition, is_deleting, parse_time

__all__ = [
    "available_in",
    "is_active",
    "is_available",
    "is_ready",
    "is_terminal",
    "ready_since",
    "restart_count",
]


def is_terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: Mapping[str, Any]) -> bool:
    return not is_terminal(pod) and not is_deleting(pod)


def is_ready(pod: Mapping[str, Any]) -> bool:
    cond = get_condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def ready_since(pod: Mapping[str, Any]) -> datetime | None:
    cond = get_condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_available(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) <= now


def available_in(pod: Mapping[str, Any], min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until a ready but not yet available pod becomes available (None if not applicable)."""
    if min_ready_seconds <= 0 or not is_ready(pod):
        return None
    since = ready_since(pod)
    if since is None:
        return None
    left = (since + timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return left if left > 0 else None


def restart_count(pod: Mapping[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])
