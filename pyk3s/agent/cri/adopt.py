"""What an agent finds of its pods after a restart. Stopping the agent leaves containerd's containers
running (as K3s leaves them); the next kubelet keeps a pod's ready sandbox and the containers in it
instead of making new ones, as the kubelet does after its own restart: :func:`find_sandbox` picks the
sandbox to keep (removing the pod's others), :func:`reusable_container` says which run of a container
to wait on, and removes those that cannot be kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyk3s.agent.cri.client import CriClient, CriError, pb
from pyk3s.agent.cri.spec import ANNOTATION_HASH, LABEL_POD_UID

__all__ = ["FoundSandbox", "find_sandbox", "reusable_container"]

log = logging.getLogger("pyk3s.agent.kubelet")


@dataclass(frozen=True, slots=True)
class FoundSandbox:
    id: str
    status: Any                                           # its PodSandboxStatus
    containers: dict[str, list[Any]] = field(default_factory=dict)   # name -> its runs, oldest first


async def _remove_sandbox(client: CriClient, sandbox_id: str, key: str) -> None:
    try:
        await client.stop_pod_sandbox(sandbox_id)
        await client.remove_pod_sandbox(sandbox_id)
    except CriError as exc:
        log.warning("kubelet: removing old sandbox %s of %s: %s", sandbox_id[:12], key, exc)


async def find_sandbox(client: CriClient, uid: str, host_network: bool, key: str) -> FoundSandbox | None:
    """The pod's newest ready sandbox that still has its network; every other sandbox of the pod goes."""
    sandboxes = await client.list_pod_sandboxes({LABEL_POD_UID: uid})
    ready = sorted((sb for sb in sandboxes if sb.state == pb.SANDBOX_READY), key=lambda sb: sb.created_at)
    keep, status = (ready[-1], None) if ready else (None, None)
    if keep is not None:
        status = (await client.pod_sandbox_status(keep.id)).status
        if not host_network and not status.network.ip:
            keep = None   # its network is gone: the pod gets a fresh sandbox
    for sb in sandboxes:
        if keep is None or sb.id != keep.id:
            await _remove_sandbox(client, sb.id, key)
    if keep is None:
        return None
    found = FoundSandbox(keep.id, status)
    for c in await client.list_containers(sandbox_id=keep.id):
        found.containers.setdefault(c.metadata.name, []).append(c)
    for runs in found.containers.values():
        runs.sort(key=lambda c: c.metadata.attempt)
    log.info("kubelet: pod %s: adopted sandbox %s and %d container(s) left running by an earlier run",
             key, keep.id[:12], sum(len(runs) for runs in found.containers.values()))
    return found


async def reusable_container(client: CriClient, runs: list[Any], spec_hash: str, key: str) -> tuple[Any | None, int]:
    """(the run to wait on, or None; the restart count the container has). The newest run is kept when
    it was made from this spec and has started; a changed one is stopped and removed and counts as a
    restart (as with the kubelet), a never-started one is removed and its attempt made again."""
    latest = runs[-1]
    started = latest.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_EXITED)
    if latest.annotations.get(ANNOTATION_HASH) == spec_hash and started:
        return latest, int(latest.metadata.attempt)
    for old in runs:
        try:
            if old.state == pb.CONTAINER_RUNNING:
                await client.stop_container(old.id, 10)
            await client.remove_container(old.id)
        except CriError as exc:
            log.warning("kubelet: removing container %s of %s: %s", old.id[:12], key, exc)
    return None, int(latest.metadata.attempt) + (1 if started else 0)
