"""Where a Deployment's start-up time goes: watch its ReplicaSet, pods and EndpointSlices and note when
each stage was first seen by the client (monotonic time at receipt, so sub-second unlike the objects'
own timestamps).

    trace = StageTrace(kubeconfig)        # a thread with its own event loop and three watches
    trace.begin("web", replicas=10)       # before `kubectl apply`
    t_ready = trace.wait_ready(timeout)   # monotonic time the N-th endpoint turned ready
    print(trace.report(t0))               # the stages, relative to t0
    trace.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from pyk3s.client import Client

# (label, what marks it on a pod) in the order a pod goes through them
POD_STAGES: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = (
    ("created", lambda p: True),
    ("bound", lambda p: bool((p.get("spec") or {}).get("nodeName"))),
    ("pod IP", lambda p: bool((p.get("status") or {}).get("podIP"))),
    ("running", lambda p: any("running" in (c.get("state") or {})
                              for c in (p.get("status") or {}).get("containerStatuses") or [])),
    ("ready", lambda p: any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (p.get("status") or {}).get("conditions") or [])),
)


class StageTrace:
    def __init__(self, kubeconfig: str, namespace: str = "default") -> None:
        self.namespace = namespace
        self._lock = threading.Lock()
        self._name = ""
        self._want = 0
        self._rs_seen = 0.0
        self._pods: dict[str, dict[str, float]] = {}
        self._ready_at: list[float] = []  # when the ready endpoint count first reached 1, 2, ...
        self._done = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(kubeconfig,), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("bench/podtrace: the watches did not start")

    # -- public -----------------------------------------------------------------------------------
    def begin(self, name: str, replicas: int) -> None:
        with self._lock:
            self._name, self._want = name, replicas
            self._rs_seen = 0.0
            self._pods = {}
            self._ready_at = []
            self._done.clear()

    def wait_ready(self, timeout: float) -> float:
        if not self._done.wait(timeout):
            raise TimeoutError(f"bench/podtrace: {self._want} ready endpoints of {self._name} not seen "
                               f"in {timeout:.0f}s (seen {len(self._ready_at)})")
        return self._ready_at[self._want - 1]

    def stages(self, t0: float) -> list[tuple[str, float, float]]:
        """(stage, first pod, last pod) in seconds after ``t0``."""
        with self._lock:
            rows = [("replicaset", self._rs_seen - t0, self._rs_seen - t0)] if self._rs_seen else []
            for label, _ in POD_STAGES:
                ts = sorted(p[label] for p in self._pods.values() if label in p)
                if len(ts) >= self._want:
                    rows.append((label, ts[0] - t0, ts[self._want - 1] - t0))
            if len(self._ready_at) >= self._want:
                rows.append(("endpoint ready", self._ready_at[0] - t0, self._ready_at[self._want - 1] - t0))
        return rows

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    # -- the watching thread ----------------------------------------------------------------------
    def _main(self, kubeconfig: str) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._watch_all(kubeconfig))

    async def _watch_all(self, kubeconfig: str) -> None:
        self._stop = asyncio.Event()
        client = Client.from_kubeconfig(kubeconfig)
        tasks = [asyncio.create_task(self._watch(client, "apps/v1", "replicasets", self._on_rs)),
                 asyncio.create_task(self._watch(client, "v1", "pods", self._on_pod)),
                 asyncio.create_task(self._watch(client, "discovery.k8s.io/v1", "endpointslices", self._on_slice))]
        self._ready.set()
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await client.close()

    async def _watch(self, client: Client, api_version: str, plural: str,
                     handle: Callable[[float, str, dict[str, Any]], None]) -> None:
        res = client.resource(api_version, plural)
        while True:
            try:
                rv = ((await res.list(self.namespace)).get("metadata") or {}).get("resourceVersion")
                async for ev in res.watch(self.namespace, resource_version=rv, timeout_seconds=600):
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        handle(time.monotonic(), ev["type"], ev.get("object") or {})
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a broken watch is started again
                await asyncio.sleep(0.2)

    def _owner(self, obj: dict[str, Any]) -> str:
        return ((obj.get("metadata") or {}).get("labels") or {}).get("app", "")

    def _on_rs(self, now: float, _typ: str, rs: dict[str, Any]) -> None:
        with self._lock:
            if self._name and self._owner(rs) == self._name and not self._rs_seen:
                self._rs_seen = now

    def _on_pod(self, now: float, _typ: str, pod: dict[str, Any]) -> None:
        with self._lock:
            if not self._name or self._owner(pod) != self._name:
                return
            seen = self._pods.setdefault((pod.get("metadata") or {}).get("uid", ""), {})
            for label, reached in POD_STAGES:
                if label not in seen and reached(pod):
                    seen[label] = now

    def _on_slice(self, now: float, _typ: str, eps: dict[str, Any]) -> None:
        labels = (eps.get("metadata") or {}).get("labels") or {}
        with self._lock:
            if not self._name or labels.get("kubernetes.io/service-name") != self._name:
                return
            # one slice per Service here (fewer than 100 endpoints, one address type)
            ready = sum(1 for e in eps.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
            while len(self._ready_at) < ready:
                self._ready_at.append(now)
            if len(self._ready_at) >= self._want:
                self._done.set()
