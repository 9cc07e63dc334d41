"""The kubelet: one :class:`PodWorker` per pod bound to this node, fed by a Pod informer.

On start it cleans leftovers of an earlier run: container processes found through launcher pid files
are stopped (their pods are started again by fresh workers), network namespaces and IPAM entries whose
pod is no longer on this node are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from pyk3s.agent.cni.ipcmd import ip
from pyk3s.agent.cni.podnet import NETNS_PREFIX, netns_name, teardown_pod_network
from pyk3s.agent.kubelet.runtime import pid_alive
from pyk3s.agent.kubelet.worker import KubeletContext, PodWorker
from pyk3s.client import ApiError, NotFound

__all__ = ["Kubelet", "kill_leftover_containers"]

log = logging.getLogger("pyk3s.agent.kubelet")


def kill_leftover_containers(pods_dir: Path) -> int:
    """SIGKILL every launcher and container recorded under ``pods_dir``; returns how many were alive."""
    killed = 0
    if not pods_dir.exists():
        return 0
    for pidfile in list(pods_dir.glob("*/*/*.launcher")) + list(pods_dir.glob("*/*/*.pid")):
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if not pid_alive(pid):
            continue
        ours = b"pyk3s" in cmdline or pidfile.suffix == ".pid"
        if ours:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if pidfile.suffix == ".pid":
                    os.killpg(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


class Kubelet:
    def __init__(self, ctx: KubeletContext, client: Any, pod_informer: Any) -> None:
        self.ctx = ctx
        self.client = client
        self.pods = pod_informer
        self.workers: dict[str, PodWorker] = {}
        self.done_uids: set[str] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._queue: asyncio.Queue[tuple[str, dict | None, dict | None]] = asyncio.Queue()
        self.left_running = 0   # pods left running when the kubelet stopped

    def worker_for(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of the pod now called ``namespace/name``; a deleted pod of that name that is still
        being torn down is not it."""
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            return None
        return self.workers.get(pod["metadata"].get("uid", ""))

    def _on_pod(self, event: str, old: dict | None, new: dict | None) -> None:
        # a deletion comes as (last known object, None)
        self._queue.put_nowait((event, old, new if new is not None else old))

    async def cleanup_leftovers(self, pods: list[dict]) -> None:
        n = kill_leftover_containers(self.ctx.pods_dir)
        if n:
            log.info("kubelet: stopped %d container processes left by an earlier run", n)
        live = {p["metadata"]["uid"] for p in pods}
        # only pods this node recorded: other agents on the machine own the other pk-* namespaces
        recorded = {d.name for d in self.ctx.pods_dir.glob("*") if d.is_dir()}
        if self.ctx.ipam is not None:
            recorded.update(self.ctx.ipam.owners().values())
        stale = {netns_name(u): u for u in recorded - live}
        out = await ip("netns", "list", check=False)
        for line in out.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(NETNS_PREFIX) and name in stale:
                await teardown_pod_network(stale[name], None)
        if self.ctx.ipam is not None:
            for addr, owner in self.ctx.ipam.owners().items():
                if owner not in live:
                    self.ctx.ipam.release(owner)
                    log.info("kubelet: released stale IPAM address %s of %s", addr, owner)
        for d in self.ctx.pods_dir.glob("*"):
            if d.is_dir() and d.name not in live:
                shutil.rmtree(d, ignore_errors=True)

    async def run(self) -> None:
        self.pods.add_handler(self._on_pod)
        await self.pods.wait_synced()
        mine = [p for p in self.pods.list() if (p.get("spec") or {}).get("nodeName") == self.ctx.node_name]
        await self.cleanup_leftovers(mine)
        for p in mine:
            self._queue.put_nowait(("ADDED", None, p))
        try:
            while True:
                event, _old, new = await self._queue.get()
                await self._handle(event, new)
        finally:
            # pods of a runtime stay up while the agent is down (as K3s's do), the others stop
            self.left_running = sum(w.survives_agent_stop for w in self.workers.values())
            await asyncio.gather(*(w.leave() for w in self.workers.values()), *self._retiring,
                                 return_exceptions=True)

    async def _handle(self, event: str, pod: dict | None) -> None:
        if pod is None or (pod.get("spec") or {}).get("nodeName") != self.ctx.node_name:
            return
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if event == "DELETED":
            if worker is not None:
                del self.workers[uid]
            task = asyncio.create_task(self._retire(uid, worker))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            return
        if worker is not None:
            worker.update(pod)
            if worker.task is not None and worker.task.done():
                self.workers.pop(uid, None)
            return
        if pod["metadata"].get("deletionTimestamp"):
            await teardown_pod_network(uid, self.ctx.ipam)
            await self.ctx.delete_pod(pod)
            await self._remove_pod_dir(uid)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or uid in self.done_uids:
            return
        worker = self._new_worker(pod)
        log.debug("kubelet: pod %s/%s: worker starts (%d queued)", pod["metadata"].get("namespace"),
                  pod["metadata"]["name"], self._queue.qsize())
        self.workers[uid] = worker
        worker.start()
        if worker.task is not None:
            worker.task.add_done_callback(lambda _t: self.done_uids.add(uid))


    def _new_worker(self, pod: dict) -> PodWorker:
        if self.ctx.worker_factory is not None:
            return self.ctx.worker_factory(self.ctx, pod)
        return PodWorker(self.ctx, pod)

    async def _retire(self, uid: str, worker: PodWorker | None) -> None:
        """Stop a deleted pod's worker, then drop its directory (logs, volumes, launcher files)."""
        if worker is not None:
            await worker.stop()
        self.done_uids.discard(uid)
        if uid not in self.workers:
            await self._remove_pod_dir(uid)

    async def _remove_pod_dir(self, uid: str) -> None:
        """In a thread: a pod's directory can hold many files, and the loop serves every other pod."""
        d = self.ctx.pods_dir / uid
        if uid and d.parent == self.ctx.pods_dir and d.is_dir():
            await asyncio.to_thread(shutil.rmtree, d, ignore_errors=True)


async def write_pod_status(client: Any, pod: dict, status: dict) -> None:
    meta = pod["metadata"]
    try:
        await client.resource("v1", "pods").patch(meta["name"], {"status": status}, meta.get("namespace"),
                                                   patch_type="merge", subresource="status")
    except NotFound:
        pass


async def delete_pod_now(client: Any, pod: dict) -> None:
    meta = pod["metadata"]
    try:
        await client.resource("v1", "pods").delete(meta["name"], meta.get("namespace"), grace_period_seconds=0,
                                                   preconditions={"uid": meta["uid"]})
    except NotFound:
        pass
    except ApiError as exc:
        log.warning("kubelet: final delete of pod %s/%s failed: %s", meta.get("namespace"), meta["name"], exc)
