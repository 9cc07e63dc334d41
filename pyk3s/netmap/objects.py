"""Small readers of API objects shared by the map's views (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Obj", "PodIndex", "condition", "is_ready", "key", "labels", "meta", "pod_problem", "selector_text"]

Obj = Mapping[str, Any]


def meta(obj: Obj) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def key(obj: Obj) -> str:
    m = meta(obj)
    return f"{m['namespace']}/{m.get('name', '')}" if m.get("namespace") else str(m.get("name", ""))


def labels(obj: Obj) -> Mapping[str, str]:
    return meta(obj).get("labels") or {}


def condition(obj: Obj, ctype: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def is_ready(obj: Obj) -> bool:
    c = condition(obj, "Ready")
    return bool(c and c.get("status") == "True")


def selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def pod_problem(pod: Obj) -> str:
    """Why a pod is not Ready, in a few words ("" when it is)."""
    status = pod.get("status") or {}
    if meta(pod).get("deletionTimestamp"):
        return "terminating"
    phase = status.get("phase") or "Pending"
    if phase in ("Succeeded", "Failed"):
        return f"phase {phase}"
    sched = condition(pod, "PodScheduled")
    if sched and sched.get("status") == "False":
        return f"not scheduled: {sched.get('message') or sched.get('reason') or 'no node'}"
    for cs in status.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"container {cs.get('name')}: {waiting.get('reason', 'waiting')}" + (
                f" ({waiting['message']})" if waiting.get("message") else "")
        if not cs.get("ready"):
            return f"container {cs.get('name')} not ready (readiness probe)"
    if is_ready(pod):
        return ""
    c = condition(pod, "Ready")
    return (c or {}).get("message") or (c or {}).get("reason") or f"phase {phase}, not Ready"


class PodIndex:
    """Pods by key and by address (the live pod wins over a terminating one on a reused address)."""

    def __init__(self, pods: Iterable[Obj]) -> None:
        self.by_key: dict[str, Obj] = {}
        self.by_ip: dict[str, Obj] = {}
        for p in sorted(pods, key=lambda p: bool(meta(p).get("deletionTimestamp")), reverse=True):
            self.by_key[key(p)] = p
            spec, status = p.get("spec") or {}, p.get("status") or {}
            if spec.get("hostNetwork"):
                continue
            for a in status.get("podIPs") or ([{"ip": status["podIP"]}] if status.get("podIP") else []):
                if a.get("ip"):
                    self.by_ip[a["ip"]] = p

    def node_of(self, ref: str) -> str:
        pod = self.by_key.get(ref)
        return str(((pod or {}).get("spec") or {}).get("nodeName") or "")
