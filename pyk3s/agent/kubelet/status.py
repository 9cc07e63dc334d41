"""Container runtime state and the pod status computed from it (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerState", "pod_status"]


@dataclass(slots=True)
class ContainerState:
    name: str
    image: str
    init: bool = False
    state: str = "waiting"          # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    signal: int = 0
    pid: int = 0
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    last_terminated: dict | None = None
    terminated_ok: bool = False     # ran to completion with exit 0 (init containers)
    container_id: str = ""          # "containerd://<id>" for a CRI container; else from the pid
    image_id: str = ""              # the runtime's image reference (repo@sha256:…) once pulled
    extra: dict = field(default_factory=dict)

    def to_status(self) -> dict:
        st: dict[str, dict[str, Any]]
        if self.state == "running":
            st = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            t: dict[str, Any] = {"exitCode": self.exit_code, "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
                 "startedAt": self.started_at or None, "finishedAt": self.finished_at,
                 "containerID": self.runtime_id() or None}
            if self.signal:
                t["signal"] = self.signal
            if self.message:
                t["message"] = self.message
            st = {"terminated": {k: v for k, v in t.items() if v is not None}}
        else:
            w = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            st = {"waiting": w}
        out = {"name": self.name, "image": self.image, "imageID": self.image_id or f"pyk3s://{self.image}", "state": st,
               "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
               "ready": self.ready, "restartCount": self.restart_count,
               "started": self.started if self.state == "running" else False}
        if self.runtime_id():
            out["containerID"] = self.runtime_id()
        return out

    def runtime_id(self) -> str:
        return self.container_id or (f"pyk3s://{self.pid}" if self.pid else "")


def _cond(ctype: str, ok: bool, now: str, prev: Mapping[str, Mapping], reason: str = "") -> dict:
    status = "True" if ok else "False"
    old = prev.get(ctype)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
    if reason and not ok:
        c["reason"] = reason
    return c


def pod_status(pod: Mapping, init: Sequence[ContainerState], main: Sequence[ContainerState], *, pod_ip: str,
               host_ip: str, start_time: str, now: str, network_ready: bool, pod_ips: Sequence[str] = (),
               host_ips: Sequence[str] = ()) -> dict:
    """``pod_ips``/``host_ips``: every address, primary first (dual-stack); default the single one."""
    spec = pod.get("spec") or {}
    policy = spec.get("restartPolicy") or "Always"
    prev = {c["type"]: c for c in ((pod.get("status") or {}).get("conditions") or [])}
    initialized = all(c.terminated_ok for c in init)
    init_failed = any(c.state == "terminated" and not c.terminated_ok for c in init) and policy == "Never"
    all_terminated = bool(main) and all(c.state == "terminated" for c in main)
    if init_failed:
        phase = "Failed"
    elif all_terminated and policy != "Always":
        failed = any(c.exit_code != 0 for c in main)
        phase = "Failed" if failed and policy == "Never" else ("Succeeded" if not failed else "Running")
    elif initialized and any(c.state in ("running", "terminated") or c.restart_count for c in main):
        phase = "Running"
    else:
        phase = "Pending"
    ready = initialized and bool(main) and all(c.ready for c in main) and phase == "Running"
    status = {
        "phase": phase,
        "conditions": [
            _cond("PodReadyToStartContainers", network_ready, now, prev),
            _cond("Initialized", initialized, now, prev, "ContainersNotInitialized"),
            _cond("Ready", ready, now, prev, "ContainersNotReady"),
            _cond("ContainersReady", ready, now, prev, "ContainersNotReady"),
            _cond("PodScheduled", True, now, prev),
        ],
        "hostIP": host_ip, "hostIPs": [{"ip": a} for a in (host_ips or ([host_ip] if host_ip else []))],
        "startTime": start_time,
        "containerStatuses": [c.to_status() for c in main],
        "qosClass": "BestEffort",
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": a} for a in (pod_ips or [pod_ip])]
    if init:
        status["initContainerStatuses"] = [c.to_status() for c in init]
    return status
