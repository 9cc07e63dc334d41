"""A pod under the CRI runtime: the same lifecycle as a process pod (:class:`PodWorker`: volumes, init
containers, restart back-off, probes, status, graceful stop) with the sandbox, images and containers
made through CRI calls. Logs are CRI log files at the same paths as the process runtime's
(``<pod dir>/<container>/<restart>.log``), so the kubelet API reads both alike."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyk3s.agent.cri.adopt import find_sandbox, reusable_container
from pyk3s.agent.cri.client import CriError, pb
from pyk3s.agent.cri.registries import rewrite_image, split_reference
from pyk3s.agent.cri.runtime import CriRuntime
from pyk3s.agent.cri.spec import (
    LABEL_POD_UID,
    container_config,
    container_hash,
    pull_auth,
    sandbox_config,
)
from pyk3s.agent.kubelet.dnsfiles import pod_resolv_conf
from pyk3s.agent.kubelet.probes import probe_once
from pyk3s.agent.kubelet.runtime import ExitStatus
from pyk3s.agent.kubelet.status import ContainerState
from pyk3s.agent.kubelet.worker import KubeletContext, PodWorker, pod_hostname

__all__ = ["CriContainer", "CriPodWorker", "image_pull_policy"]

log = logging.getLogger("pyk3s.agent.kubelet")

STATUS_POLL = 0.5                      # seconds between ContainerStatus calls while a container runs
# containerd records a task's exit and its OOM event separately, in either order: a container killed
# by SIGKILL that we did not stop is asked about again for this long before its reason is taken as Error
OOM_SETTLE = 1.0
PULL_BACKOFF_START, PULL_BACKOFF_MAX = 10.0, 300.0
CREATE_RETRY = 5.0


def _rfc3339(ns: int) -> str:
    if not ns:
        return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_pull_policy(container: dict) -> str:
    policy = container.get("imagePullPolicy")
    if policy:
        return str(policy)
    _, _, suffix = split_reference(container.get("image", ""))
    return "Always" if suffix == ":latest" else "IfNotPresent"


class CriContainer:
    """One run of a CRI container with the surface of :class:`ContainerProcess` the worker and the
    kubelet API use (``wait``, ``stop``, ``exit_status``, ``log_path``, ``restart``)."""

    def __init__(self, runtime: CriRuntime, container_id: str, ctr_dir: Path, restart: int) -> None:
        self.runtime, self.id = runtime, container_id
        self.dir, self.restart = ctr_dir, restart
        self.pid = 0
        self.stdin_fd: int | None = None
        self.tty_fd: int | None = None
        self._exit: ExitStatus | None = None
        self._stopping = False
        self._killed_seen = 0.0   # when an exit by SIGKILL without a reason was first seen
        self.started_at = ""      # set for a container adopted after an agent restart
        self.was_ready = False

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.restart}.log"

    @property
    def client(self) -> Any:
        assert self.runtime.client is not None
        return self.runtime.client

    def exit_status(self) -> ExitStatus | None:
        return self._exit

    def close_stdin(self) -> None:
        pass

    def signal(self, sig: int) -> None:  # noqa: ARG002 - the CRI has no signal call; stop() ends it
        return

    async def _poll(self) -> ExitStatus | None:
        try:
            st = (await self.client.container_status(self.id)).status
        except CriError as exc:
            if exc.code == "NOT_FOUND":
                return ExitStatus(137, 0, _rfc3339(0), "ContainerStatusUnknown",
                                  "The container could not be located when the pod was terminated")
            raise
        if st.state != pb.CONTAINER_EXITED:
            return None
        if st.exit_code == 137 and not st.reason and not self._stopping:
            now = asyncio.get_running_loop().time()
            self._killed_seen = self._killed_seen or now
            if now - self._killed_seen < OOM_SETTLE:
                return None       # the OOM event may still be on its way
        reason = st.reason or ("Completed" if st.exit_code == 0 else "Error")
        return ExitStatus(int(st.exit_code), 0, _rfc3339(st.finished_at), reason, st.message)

    async def wait(self) -> ExitStatus:
        while self._exit is None:
            try:
                self._exit = await self._poll()
            except CriError as exc:
                log.debug("kubelet: status of container %s: %s", self.id[:12], exc)
            if self._exit is None:
                await asyncio.sleep(STATUS_POLL)
        return self._exit

    async def stop(self, grace: float) -> None:
        if self._exit is not None:
            return
        self._stopping = True
        try:
            await self.client.stop_container(self.id, max(int(grace), 0))
        except CriError as exc:
            if exc.code != "NOT_FOUND":
                log.warning("kubelet: stopping container %s: %s", self.id[:12], exc)
        try:
            await asyncio.wait_for(self.wait(), 10)
        except TimeoutError:
            log.warning("kubelet: container %s did not report its exit after StopContainer", self.id[:12])

    async def serve_stream(self, req: Any, command: list[str] | None) -> Any:
        """exec (``command``) or attach (None) for the kubelet API, through the runtime's streaming server."""
        from pyk3s.agent.cri.stream import serve_stream

        return await serve_stream(req, self.client, self.id, self._exit is None, command)

    async def exec_sync(self, cmd: list[str], timeout: float) -> tuple[bool, str]:
        try:
            res = await self.client.exec_sync(self.id, cmd, timeout)
        except CriError as exc:
            return False, str(exc)
        out = (res.stdout + res.stderr).decode(errors="replace")[-200:]
        return res.exit_code == 0, out or f"command {cmd} exited with {res.exit_code}"


class CriPodWorker(PodWorker):
    # the containers run on under containerd while the agent is down; the next agent adopts them
    survives_agent_stop = True

    def __init__(self, ctx: KubeletContext, pod: dict, runtime: CriRuntime, handler: str = "") -> None:
        super().__init__(ctx, pod)
        self.runtime, self.handler = runtime, handler
        self.sandbox_id = ""
        self.sandbox_cfg: Any = None
        self._netns: str | None = None
        self._pulled: dict[str, str] = {}      # image -> image id the runtime gave
        self._image_ids: dict[str, str] = {}   # image -> repo digest shown as the status's imageID
        self._found: dict[str, list[Any]] = {}  # container name -> its containers in an adopted sandbox

    @property
    def client(self) -> Any:
        assert self.runtime.client is not None
        return self.runtime.client

    @property
    def netns(self) -> str | None:
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            return None
        if self._netns is None and self.runtime.cni_records is not None:
            try:
                self._netns = json.loads((self.runtime.cni_records / f"{self.uid}.json").read_text())["netns"]
            except (OSError, ValueError, KeyError):
                return None
        return self._netns

    def _waiting(self, reason: str, message: str) -> None:
        for c in self.init + self.main:
            if c.state == "waiting":
                c.reason, c.message = reason, message
        self.changed.set()

    async def _remove_old_sandboxes(self) -> None:
        for sb in await self.client.list_pod_sandboxes({LABEL_POD_UID: self.uid}):
            try:
                await self.client.stop_pod_sandbox(sb.id)
                await self.client.remove_pod_sandbox(sb.id)
            except CriError as exc:
                log.warning("kubelet: removing old sandbox %s of %s: %s", sb.id[:12], self.key, exc)

    async def _setup_network(self) -> bool:
        if not self.runtime.ready.is_set():
            self._waiting("ContainerCreating", "waiting for containerd to start"
                          + (f": {self.runtime.failed}" if self.runtime.failed else ""))
            if not await self.runtime.wait_ready(self.stopping):
                return False
        resolv = pod_resolv_conf(self.pod, self.ctx.cluster_dns, self.ctx.cluster_domain, self.ctx.node_resolv)
        self.sandbox_cfg = sandbox_config(self.pod, hostname=pod_hostname(self.pod), log_dir=str(self.dir),
                                          resolv_conf=resolv, node=self.ctx.node_name)
        try:
            found = await find_sandbox(self.client, self.uid, bool((self.pod.get("spec") or {}).get("hostNetwork")),
                                       self.key)
        except CriError as exc:
            log.warning("kubelet: pod %s: looking for its sandbox of an earlier run: %s", self.key, exc)
            found = None
        if found is not None:
            self.sandbox_id, self._found = found.id, found.containers
            self._set_ips(found.status)
            return True
        delay = CREATE_RETRY
        while not self.stopping.is_set():
            try:
                await self._remove_old_sandboxes()
                self.sandbox_id = await self.client.run_pod_sandbox(self.sandbox_cfg, self.handler)
                break
            except CriError as exc:
                message = f"Failed to create pod sandbox: {exc.details or exc}"
                self.event("Warning", "FailedCreatePodSandBox", message)
                self._waiting("ContainerCreating", message)
                if await self._sleep(delay):
                    return False
                delay = min(delay * 2, PULL_BACKOFF_MAX)
        if self.stopping.is_set():
            return False
        self._set_ips((await self.client.pod_sandbox_status(self.sandbox_id)).status)
        return True

    def _set_ips(self, status: Any) -> None:
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            self.pod_ip = self.ctx.host_ip
            self.pod_ips = self.ctx.host_ips or (self.pod_ip,)
        else:
            self.pod_ip = status.network.ip
            self.pod_ips = (self.pod_ip, *(a.ip for a in status.network.additional_ips))

    def _argv(self, c: dict) -> list[str]:
        return []  # the image's entrypoint, with the container's command/args, is the runtime's to apply

    async def _ensure_image(self, st: ContainerState, c: dict) -> str | None:
        """The image ref to create the container from, pulling as the policy says; None when stopped."""
        image = c.get("image", "")
        ref = rewrite_image(image, self.runtime.registries)
        policy = image_pull_policy(c)
        if image in self._pulled and policy != "Always":
            return self._pulled[image]
        failures = 0
        while not self.stopping.is_set():
            present = None
            try:
                present = await self.client.image_status(ref)
            except CriError as exc:
                log.debug("kubelet: image status of %s: %s", ref, exc)
            if present is not None and policy != "Always":
                if policy == "IfNotPresent" or policy == "Never":
                    self.event("Normal", "Pulled", f'Container image "{image}" already present on machine')
                return self._remember(image, present)
            if policy == "Never":
                message = f'Container image "{image}" is not present with pull policy of Never'
                if st.reason != "ErrImageNeverPull":
                    self.event("Warning", "ErrImageNeverPull", message)
                st.state, st.reason, st.message = "waiting", "ErrImageNeverPull", message
                self.changed.set()
                if await self._sleep(PULL_BACKOFF_START):
                    return None
                continue
            self.event("Normal", "Pulling", f'Pulling image "{image}"')
            started = time.monotonic()
            try:
                secrets = await self._pull_secrets()
                await self.client.pull_image(ref, pull_auth(ref, secrets), self.sandbox_cfg)
                present = await self.client.image_status(ref)
                self.event("Normal", "Pulled",
                           f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s')
                if present is not None:
                    return self._remember(image, present)
                return ref
            except CriError as exc:
                failures += 1
                message = f"rpc error: code = {exc.code} desc = {exc.details}"
                self.event("Warning", "Failed", f'Failed to pull image "{image}": {message}')
                self.event("Warning", "Failed", "Error: ErrImagePull")
                st.state, st.reason, st.message = "waiting", "ErrImagePull", message
                self.changed.set()
                # the kubelet shows ErrImagePull until its next sync, then ImagePullBackOff
                if await self._sleep(1.0):
                    return None
                delay = min(PULL_BACKOFF_START * 2 ** (failures - 1), PULL_BACKOFF_MAX)
                st.reason = "ImagePullBackOff"
                st.message = f'Back-off pulling image "{image}": ErrImagePull: {message}'
                self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                self.event("Warning", "Failed", "Error: ImagePullBackOff")
                self.changed.set()
                if await self._sleep(delay):
                    return None
        return None

    def _remember(self, image: str, present: Any) -> str:
        digests = list(present.repo_digests)
        self._pulled[image] = present.id
        self._image_ids[image] = digests[0] if digests else present.id
        return str(present.id)

    async def _pull_secrets(self) -> list[dict]:
        ns = self.pod["metadata"].get("namespace", "default")
        out = []
        for ref in (self.pod.get("spec") or {}).get("imagePullSecrets") or []:
            sec = await self.ctx.secret(ns, ref.get("name", ""))
            if sec is not None:
                out.append(sec)
        return out

    def _was_ready(self, name: str, container_id: str) -> bool:
        for cs in (self.pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") == name and cs.get("containerID") == f"containerd://{container_id}":
                return bool(cs.get("ready"))
        return False

    async def _adopt_container(self, st: ContainerState, c: dict, runs: list[Any]) -> CriContainer | None:
        """A run of this container left by an earlier agent, to wait on instead of starting another."""
        latest, st.restart_count = await reusable_container(self.client, runs, container_hash(c), self.key)
        if latest is None:
            return None
        st.extra["cri_ids"] = [x.id for x in runs]
        st.container_id = f"containerd://{latest.id}"
        status = (await self.client.container_status(latest.id)).status
        try:
            present = await self.client.image_status(status.image_ref)
        except CriError:
            present = None
        if present is not None:
            self._remember(c.get("image", ""), present)
            st.image_id = self._image_ids.get(c.get("image", ""), "")
        proc = CriContainer(self.runtime, latest.id, self.dir / st.name, st.restart_count)
        proc.started_at = _rfc3339(status.started_at)[:19] + "Z"
        proc.was_ready = latest.state == pb.CONTAINER_RUNNING and self._was_ready(st.name, latest.id)
        return proc

    async def _start_container(self, st: ContainerState, c: dict, argv: list[str], env: dict[str, str],
                               mounts: list[dict]) -> Any:
        found = self._found.pop(st.name, None)
        if found:
            adopted = await self._adopt_container(st, c, found)
            if adopted is not None:
                return adopted
        image_ref = await self._ensure_image(st, c)
        if image_ref is None:
            return None
        st.image_id = self._image_ids.get(c.get("image", ""), "")
        log_rel = f"{st.name}/{st.restart_count}.log"
        (self.dir / st.name).mkdir(parents=True, exist_ok=True)
        (self.dir / log_rel).unlink(missing_ok=True)
        delay = CREATE_RETRY
        while not self.stopping.is_set():
            cfg = container_config(self.pod, c, image=image_ref, attempt=st.restart_count, env=env, mounts=mounts,
                                   log_path=log_rel)
            step, reason = "create", "CreateContainerError"
            cid = ""
            try:
                await self._remove_stale(st)
                cid = await self.client.create_container(self.sandbox_id, cfg, self.sandbox_cfg)
                self.event("Normal", "Created", f"Created container: {st.name}")
                step, reason = "start", "RunContainerError"
                await self.client.start_container(cid)
                self.event("Normal", "Started", f"Started container {st.name}")
            except CriError as exc:
                if cid:   # created but not started: it holds the container's name until removed
                    try:
                        await self.client.remove_container(cid)
                    except CriError as rm_exc:
                        log.debug("kubelet: removing container %s that did not start: %s", cid[:12], rm_exc)
                message = exc.details or str(exc)
                self.event("Warning", "Failed", f"Error: failed to {step} container: {message}")
                st.state, st.reason, st.message = "waiting", reason, message
                self.changed.set()
                if await self._sleep(delay):
                    return None
                delay = min(delay * 2, PULL_BACKOFF_MAX)
                continue
            st.container_id = f"containerd://{cid}"
            st.extra.setdefault("cri_ids", []).append(cid)
            return CriContainer(self.runtime, cid, self.dir / st.name, st.restart_count)
        return None

    async def _remove_stale(self, st: ContainerState) -> None:
        """Keep the last dead run (``logs --previous`` reads its file either way) and remove older ones."""
        ids: list[str] = st.extra.get("cri_ids", [])
        while len(ids) > 1:
            old = ids.pop(0)
            try:
                await self.client.remove_container(old)
            except CriError as exc:
                if exc.code != "NOT_FOUND":
                    log.debug("kubelet: removing container %s: %s", old[:12], exc)

    async def _probe_once(self, probe: dict, c: dict, proc: Any) -> tuple[bool, str]:
        return await probe_once(probe, c, self.pod_ip, 0, exec_sync=proc.exec_sync)

    async def _teardown_network(self) -> None:
        if not self.sandbox_id or self.runtime.client is None:
            return
        try:
            await self.client.stop_pod_sandbox(self.sandbox_id)
            await self.client.remove_pod_sandbox(self.sandbox_id)
        except CriError as exc:
            log.warning("kubelet: removing sandbox of %s: %s", self.key, exc)
        self.sandbox_id = ""
