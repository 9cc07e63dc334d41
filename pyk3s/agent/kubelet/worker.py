"""One pod's lifecycle on this node: network, volumes, init containers, containers with restart
back-off and probes, status reporting, graceful termination and teardown."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.ipam import HostLocalIpam
from pyk3s.agent.cni.podnet import netns_path, setup_pod_network, teardown_pod_network
from pyk3s.agent.kubelet.dnsfiles import hosts_file, pod_resolv_conf
from pyk3s.agent.kubelet.env import EnvError, build_env
from pyk3s.agent.kubelet.launch import rfc3339nano
from pyk3s.agent.kubelet.probes import probe_once
from pyk3s.agent.kubelet.runtime import ContainerProcess
from pyk3s.agent.kubelet.status import ContainerState, pod_status
from pyk3s.agent.kubelet.volumes import (
    SA_MOUNT_PATH,
    VolumeError,
    VolumeSources,
    container_mounts,
    prepare_volumes,
    refresh_volumes,
    service_account_volume,
)
from pyk3s.images import resolve_image

__all__ = ["KubeletContext", "PodWorker", "pod_hostname", "ready_of"]

log = logging.getLogger("pyk3s.agent.kubelet")

VOLUME_REFRESH_SECONDS = 5.0  # the kubelet's configMap/secret volume sync (upstream: about a minute)

BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 10.0, 300.0, 600.0

# changes within this long become one status write (a container's start and its readiness, say); short,
# as the write of a started container is on the way to its endpoint
STATUS_COALESCE_SECONDS = 0.02


def ready_of(status: dict | None) -> str | None:
    """A pod status's Ready condition status ("True", "False"), None without one."""
    return next((c.get("status") for c in (status or {}).get("conditions") or [] if c.get("type") == "Ready"), None)


def pod_hostname(pod: dict) -> str | None:
    """The container's host name as the kubelet sets it: ``spec.hostname`` or the pod name, at most
    63 characters; None for hostNetwork pods, which keep the node's."""
    spec = pod.get("spec") or {}
    if spec.get("hostNetwork"):
        return None
    name = spec.get("hostname") or pod["metadata"]["name"]
    return name[:63].rstrip("-.") or None


@dataclass(slots=True)
class KubeletContext:
    node_name: str
    pods_dir: Path
    host_ip: str
    bridge: BridgeConfig | None
    ipam: HostLocalIpam | None
    cluster_dns: tuple[str, ...]
    cluster_domain: str
    node_resolv: str
    sources: VolumeSources
    services: Callable[[], list[dict]]
    config_map: Callable[[str, str], Awaitable[dict | None]]
    secret: Callable[[str, str], Awaitable[dict | None]]
    write_status: Callable[[dict, dict], Awaitable[None]]
    delete_pod: Callable[[dict], Awaitable[None]]
    # (pod, type, reason, message): an Event about the pod, like the kubelet's recorder; None records nothing
    record_event: Callable[[dict, str, str, str], Awaitable[None]] | None = None
    # the CRI runtime (containerd) beside the process runtime; None: process runtime only
    cri: Any = None
    # RuntimeClass name -> handler
    runtime_handlers: Callable[[], dict[str, str]] = dict
    # makes each pod's worker (the runtime's choice); None: the process runtime's PodWorker
    worker_factory: Callable[[KubeletContext, dict], PodWorker] | None = None
    host_ips: tuple[str, ...] = ()   # every node IP, host_ip first (dual-stack)
    # (pod, addresses): awaited once a pod has its addresses and before its containers start, so
    # network policy covers it from its first packet
    admit_network: Callable[[dict, tuple[str, ...]], Awaitable[None]] | None = None


class PodWorker:
    # whether the pod keeps running while the agent is stopped (a runtime's containers do; processes the
    # agent started die with it)
    survives_agent_stop = False

    def __init__(self, ctx: KubeletContext, pod: dict) -> None:
        self.ctx = ctx
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.key = f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"
        self.dir = ctx.pods_dir / self.uid
        spec = pod.get("spec") or {}
        self.init = [ContainerState(c["name"], c.get("image", ""), init=True) for c in spec.get("initContainers") or []]
        self.main = [ContainerState(c["name"], c.get("image", "")) for c in spec.get("containers") or []]
        self.procs: dict[str, ContainerProcess] = {}
        self.pod_ip = ""
        self.pod_ips: tuple[str, ...] = ()   # primary first; one per family on a dual-stack node
        self.network_ready = False
        self.start_time = (pod.get("status") or {}).get("startTime") or rfc3339nano(time.time())[:19] + "Z"
        self.volumes: dict[str, Path] = {}
        self._volume_pod: dict = {}  # the pod as its volumes were prepared (plus the token volume)
        self._volume_sources: VolumeSources | None = None
        self.stopping = asyncio.Event()
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._last_status: dict | None = None
        self._events: set[asyncio.Task[None]] = set()
        self._leaving = False   # the agent stops: leave the pod as it is (see survives_agent_stop)
        self._t0 = time.monotonic()   # start-up stages are logged (debug) relative to this

    def _stage(self, what: str) -> None:
        log.debug("kubelet: pod %s: %s at +%.3fs", self.key, what, time.monotonic() - self._t0)

    # -- public -------------------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod {self.key}")

    def update(self, pod: dict) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.stopping.set()
        elif self._last_status is not None and ready_of(pod.get("status")) != ready_of(self._last_status):
            # another writer changed the readiness this worker reported (the node-lifecycle controller
            # marks the pods of a node it took for silent not Ready): like the kubelet's status manager,
            # write ours back rather than leave the pod out of its Services' endpoints
            self._last_status = None
            self.changed.set()

    def container_proc(self, name: str, previous: bool = False) -> ContainerProcess | None:
        st = next((c for c in self.init + self.main if c.name == name), None)
        if st is None:
            return None
        n = st.restart_count - (1 if previous else 0)
        if n < 0:
            return None
        cur = self.procs.get(name)
        if cur is not None and cur.restart == n:
            return cur
        return ContainerProcess(self.dir / name, n)

    def event(self, type_: str, reason: str, message: str) -> None:
        """Record an Event about the pod without holding up the pod's lifecycle."""
        if self.ctx.record_event is None:
            return
        task = asyncio.create_task(self._record(type_, reason, message))
        self._events.add(task)
        task.add_done_callback(self._events.discard)

    async def _record(self, type_: str, reason: str, message: str) -> None:
        try:
            await self.ctx.record_event(self.pod, type_, reason, message)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - an event is best effort
            log.debug("kubelet: event %s for %s not recorded: %s", reason, self.key, exc)

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        reporter = asyncio.create_task(self._report_loop())
        refresher: asyncio.Task[None] | None = None
        try:
            await self._setup()
            refresher = asyncio.create_task(self._refresh_loop())
            if not self.stopping.is_set():
                await self._run_containers()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a pod's failure must not take down the kubelet
            log.exception("kubelet: pod %s failed", self.key)
            for c in self.main:
                if c.state == "waiting":
                    c.reason, c.message = "CreateContainerError", str(exc)
            self.changed.set()
            await self.stopping.wait()
        finally:
            if refresher is not None:
                refresher.cancel()
            if not self._leaving:
                await self._terminate()
            reporter.cancel()
        if self.pod["metadata"].get("deletionTimestamp"):
            await self.ctx.delete_pod(self.pod)

    async def _setup(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        spec = self.pod.get("spec") or {}
        if not await self._setup_network():
            return
        self._stage(f"network {self.pod_ip}")
        # network policy is programmed for the new address while the files and volumes are prepared;
        # both are done before a container starts
        admitted = asyncio.create_task(self._admit_network())
        try:
            await self._prepare_files_and_volumes(spec)
            if not self.stopping.is_set():
                await admitted
        finally:
            if not admitted.done():
                admitted.cancel()
                await asyncio.gather(admitted, return_exceptions=True)

    async def _admit_network(self) -> None:
        if self.ctx.admit_network is not None and not (self.pod.get("spec") or {}).get("hostNetwork"):
            await self.ctx.admit_network(self.pod, tuple(self.pod_ips or (self.pod_ip,)))
            self._stage("admitted by network policy")
        self.network_ready = True
        self.changed.set()

    async def _prepare_files_and_volumes(self, spec: dict) -> None:
        (self.dir / "_etc").mkdir(exist_ok=True)
        (self.dir / "_etc" / "resolv.conf").write_text(
            pod_resolv_conf(self.pod, self.ctx.cluster_dns, self.ctx.cluster_domain, self.ctx.node_resolv))
        (self.dir / "_etc" / "hosts").write_text(hosts_file(self.pod, list(self.pod_ips or (self.pod_ip,)), self.ctx.cluster_domain))
        pod = self.pod
        if spec.get("automountServiceAccountToken", True) and not any(
                vm.get("mountPath") == SA_MOUNT_PATH for c in spec.get("containers") or []
                for vm in c.get("volumeMounts") or []):
            pod = {**pod, "spec": {**spec, "volumes": [*(spec.get("volumes") or []), service_account_volume()]}}
            self._sa_mount = True
        else:
            self._sa_mount = False
        sources = VolumeSources(self.ctx.sources.config_map, self.ctx.sources.secret, self.ctx.sources.token,
                                self.ctx.sources.ca_crt, self.pod_ip, self.ctx.host_ip, self.pod_ips,
                                self.ctx.host_ips)
        while not self.stopping.is_set():
            try:
                self.volumes = await prepare_volumes(pod, self.dir / "_volumes", sources)
                self._volume_pod, self._volume_sources = pod, sources
                self._stage("volumes")
                return
            except VolumeError as exc:
                message = f"MountVolume.SetUp failed for {exc}"
                if any(c.message != message for c in self.init + self.main):
                    self.event("Warning", "FailedMount", message)
                for c in self.init + self.main:
                    c.reason, c.message = "ContainerCreating", message
                self.changed.set()
                await self._sleep(2)

    async def _setup_network(self) -> bool:
        """Give the pod its addresses (``self.pod_ip``, ``self.pod_ips``); False when stopped before that."""
        if (self.pod.get("spec") or {}).get("hostNetwork"):
            self.pod_ip = self.ctx.host_ip
            self.pod_ips = self.ctx.host_ips or (self.pod_ip,)
            return True
        if self.ctx.bridge is None or self.ctx.ipam is None:
            raise RuntimeError("kubelet: pod networking is not configured on this node")
        net = await setup_pod_network(self.uid, self.ctx.bridge, self.ctx.ipam)
        self.pod_ip = net.ip
        self.pod_ips = net.ips or (net.ip,)
        return True

    @property
    def netns(self) -> str | None:
        """The pod's network namespace (None: the node's)."""
        return None if (self.pod.get("spec") or {}).get("hostNetwork") else netns_path(self.uid)

    async def _refresh_loop(self) -> None:
        while not await self._sleep(VOLUME_REFRESH_SECONDS):
            if self._volume_sources is None:
                continue
            try:
                changed = await refresh_volumes(self._volume_pod, self.volumes, self._volume_sources)
            except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the last content
                log.warning("kubelet: pod %s: refreshing volumes failed: %s", self.key, exc)
                continue
            if changed:
                log.info("kubelet: pod %s: updated volumes %s", self.key, ", ".join(changed))

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True when stop was requested."""
        try:
            async with asyncio.timeout(seconds):
                await self.stopping.wait()
            return True
        except TimeoutError:
            return False

    def _container_spec(self, st: ContainerState) -> dict:
        spec = self.pod.get("spec") or {}
        pool = spec.get("initContainers") if st.init else spec.get("containers")
        return next(c for c in pool or [] if c["name"] == st.name)

    async def _run_containers(self) -> None:
        policy = (self.pod.get("spec") or {}).get("restartPolicy") or "Always"
        if self.init:
            for st in self.main:
                st.reason = "PodInitializing"
        for st in self.init:
            while not self.stopping.is_set():
                ok = await self._run_once(st, self._container_spec(st))
                if ok is None:
                    return
                if ok:
                    st.terminated_ok = True
                    break
                if policy == "Never":
                    self.changed.set()
                    await self.stopping.wait()
                    return
                if await self._backoff(st):
                    return
            self.changed.set()
        await asyncio.gather(*(self._container_loop(st, policy) for st in self.main))
        self.changed.set()
        await self.stopping.wait()

    async def _container_loop(self, st: ContainerState, policy: str) -> None:
        while not self.stopping.is_set():
            ok = await self._run_once(st, self._container_spec(st))
            if ok is None or self.stopping.is_set():
                return
            if policy == "Never" or (policy == "OnFailure" and ok):
                return
            if await self._backoff(st):
                return

    async def _backoff(self, st: ContainerState) -> bool:
        ran = st.extra.get("ran", 0.0)
        n = st.extra.get("crashes", 0)
        n = 0 if ran >= BACKOFF_RESET else n + 1
        st.extra["crashes"] = n
        delay = 0.0 if n <= 1 else min(BACKOFF_START * 2 ** (n - 2), BACKOFF_MAX)
        st.last_terminated = st.to_status()["state"].get("terminated")
        if delay:
            pod_ref = f"{self.pod['metadata']['name']}_{self.pod['metadata'].get('namespace')}({self.uid})"
            st.state, st.reason = "waiting", "CrashLoopBackOff"
            st.message = f"back-off {int(delay)}s restarting failed container={st.name} pod={pod_ref}"
            self.event("Warning", "BackOff", f"Back-off restarting failed container {st.name} in pod {pod_ref}")
            self.changed.set()
        stop = await self._sleep(delay) if delay else self.stopping.is_set()
        st.restart_count += 1
        return stop

    def _argv(self, c: dict) -> list[str]:
        command, args = list(c.get("command") or []), list(c.get("args") or [])
        if command:
            return command + args
        prefix = resolve_image(c.get("image", ""))
        if prefix is None:
            raise LookupError(c.get("image", ""))
        return list(prefix) + args

    async def _run_once(self, st: ContainerState, c: dict) -> bool | None:
        """Run the container once; True exit 0, False failure, None stop requested before start."""
        while True:
            try:
                argv = self._argv(c)
                env = build_env(self.pod, c, config_maps=await self._fetch(c, "configMap"),
                                secrets=await self._fetch(c, "secret"), services=self.ctx.services(),
                                pod_ip=self.pod_ip, host_ip=self.ctx.host_ip, pod_ips=self.pod_ips,
                                host_ips=self.ctx.host_ips)
                mounts = container_mounts(c, self.volumes)
                break
            except LookupError as exc:
                message = (f'Container image "{exc.args[0]}" is not a pyk3s built-in image and the container '
                           "has no command; the process runtime cannot pull images: install containerd and "
                           "runc on this node (or give --container-runtime-endpoint) and restart the agent")
                if st.message != message:
                    self.event("Warning", "ErrImageNeverPull", message)
                st.state, st.reason, st.message = "waiting", "ErrImageNeverPull", message
                retry = 10.0
            except (EnvError, VolumeError) as exc:
                if st.message != str(exc):
                    self.event("Warning", "Failed", f"Error: {exc}")
                st.state, st.reason, st.message = "waiting", "CreateContainerConfigError", str(exc)
                retry = 2.0  # a referenced ConfigMap/Secret may be created any moment
            self.changed.set()
            if await self._sleep(retry):
                return None
        if getattr(self, "_sa_mount", False):
            mounts.append({"source": str(self.volumes["pyk3s-api-access"]), "target": SA_MOUNT_PATH,
                           "readOnly": True, "file": False})
        mounts.append({"source": str(self.dir / "_etc" / "resolv.conf"), "target": "/etc/resolv.conf",
                       "readOnly": False, "file": True})
        mounts.append({"source": str(self.dir / "_etc" / "hosts"), "target": "/etc/hosts",
                       "readOnly": False, "file": True})
        proc = await self._start_container(st, c, argv, env, mounts)
        if proc is None:
            return None
        self._stage(f"container {st.name} started")
        self.procs[st.name] = proc
        started = time.monotonic()
        st.state, st.reason, st.message = "running", "", ""
        # a container found running after an agent restart keeps its start time and readiness (the probes
        # go on checking it), so its endpoints do not blink
        st.pid, st.started_at = proc.pid, getattr(proc, "started_at", "") or rfc3339nano()[:19] + "Z"
        st.ready, st.started = bool(getattr(proc, "was_ready", False)), bool(getattr(proc, "was_ready", False))
        self.changed.set()
        probes = None if st.init else asyncio.create_task(self._probe(st, c, proc))
        try:
            waiter = asyncio.create_task(proc.wait())
            stopper = asyncio.create_task(self.stopping.wait())
            done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                stopper.cancel()
                await self._stop_proc(proc, c)
            else:
                stopper.cancel()
            result = await waiter
        finally:
            if probes is not None:
                probes.cancel()
        st.extra["ran"] = time.monotonic() - started
        st.state, st.ready, st.started = "terminated", False, False
        st.exit_code, st.signal, st.finished_at = result.exit_code, result.signal, result.finished_at[:19] + "Z"
        st.reason = result.reason or ("Completed" if result.exit_code == 0 else "Error")
        st.message = result.message
        self.changed.set()
        return result.exit_code == 0

    async def _start_container(self, st: ContainerState, c: dict, argv: list[str], env: dict[str, str],
                               mounts: list[dict]) -> ContainerProcess | None:
        """Start one run of the container; None when the pod was stopped first."""
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        proc = ContainerProcess.adopt(self.dir / st.name, st.restart_count) if st.extra.pop("adopt", False) else None
        if proc is None:
            proc = ContainerProcess(self.dir / st.name, st.restart_count)
            self.event("Normal", "Created", f"Created container: {st.name}")
            await proc.start(argv, env, c.get("workingDir"), self.netns, mounts, hostname=pod_hostname(self.pod),
                             stdin=bool(c.get("stdin")), tty=bool(c.get("tty")))
            self.event("Normal", "Started", f"Started container {st.name}")
        return proc

    async def _probe_once(self, probe: dict, c: dict, proc: ContainerProcess) -> tuple[bool, str]:
        return await probe_once(probe, c, self.pod_ip, proc.pid)

    async def _fetch(self, c: dict, kind: str) -> dict[str, dict]:
        ns = self.pod["metadata"].get("namespace", "default")
        names = set()
        for src in c.get("envFrom") or []:
            ref = src.get(f"{kind}Ref")
            if ref:
                names.add(ref["name"])
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get(f"{kind}KeyRef")
            if ref:
                names.add(ref["name"])
        getter = self.ctx.config_map if kind == "configMap" else self.ctx.secret
        out = {}
        for n in names:
            obj = await getter(ns, n)
            if obj is not None:
                out[n] = obj
        return out

    async def _stop_proc(self, proc: ContainerProcess, c: dict | None = None) -> None:
        """preStop hook (only when the pod is being deleted), then SIGTERM; both share the grace period."""
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        grace = float(grace)
        hook = ((c or {}).get("lifecycle") or {}).get("preStop")
        if meta.get("deletionTimestamp") and c is not None and proc.exit_status() is None:
            self.event("Normal", "Killing", f"Stopping container {c.get('name')}")
        if hook and meta.get("deletionTimestamp") and grace > 0:
            started = time.monotonic()
            await self._run_hook(hook, c or {}, proc, grace)
            # like the kubelet: a hook that used up the grace period still leaves the process 2 s after SIGTERM
            grace = max(grace - (time.monotonic() - started), 2.0)
        await proc.stop(grace)

    async def _run_hook(self, hook: dict, c: dict, proc: ContainerProcess, limit: float) -> None:
        try:
            if "sleep" in hook:
                await asyncio.sleep(min(float(hook["sleep"].get("seconds") or 0), limit))
                return
            ok, msg = await asyncio.wait_for(self._probe_once({**hook, "timeoutSeconds": limit}, c, proc), limit)
        except TimeoutError:
            ok, msg = False, f"timed out after {limit:.0f}s"
        if not ok:
            log.warning("kubelet: %s container %s: PreStop hook failed: %s", self.key, c.get("name"), msg)

    async def _probe(self, st: ContainerState, c: dict, proc: ContainerProcess) -> None:
        startup, live, ready = c.get("startupProbe"), c.get("livenessProbe"), c.get("readinessProbe")
        if startup:
            if not await self._probe_until(startup, c, proc, want=True, kind="Startup"):
                log.info("kubelet: %s container %s failed startup probe, restarting", self.key, st.name)
                self.event("Normal", "Killing", f"Container {st.name} failed startup probe, will be restarted")
                await self._stop_proc(proc)
                return
        st.started = True
        if not ready:
            st.ready = True
        self.changed.set()
        tasks = []
        if ready:
            tasks.append(asyncio.create_task(self._readiness(st, ready, c, proc)))
        try:
            if live and not await self._probe_until(live, c, proc, want=False, kind="Liveness"):
                log.info("kubelet: %s container %s failed liveness probe, restarting", self.key, st.name)
                self.event("Normal", "Killing", f"Container {st.name} failed liveness probe, will be restarted")
                await self._stop_proc(proc)
            elif tasks:
                await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _probe_until(self, probe: dict, c: dict, proc: ContainerProcess, want: bool, kind: str) -> bool:
        """Startup (want=True): wait for success, False after failureThreshold.
        Liveness (want=False): return False after failureThreshold consecutive failures."""
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = float(probe.get("periodSeconds") or 10)
        threshold = int(probe.get("failureThreshold") or 3)
        failures = 0
        while True:
            ok, msg = await self._probe_once(probe, c, proc)
            if ok and want:
                return True
            if not ok:
                self.event("Warning", "Unhealthy", f"{kind} probe failed: {msg}")
            failures = 0 if ok else failures + 1
            if failures >= threshold:
                return False
            await asyncio.sleep(period)

    async def _readiness(self, st: ContainerState, probe: dict, c: dict, proc: ContainerProcess) -> None:
        await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
        period = float(probe.get("periodSeconds") or 10)
        fail_t, ok_t = int(probe.get("failureThreshold") or 3), int(probe.get("successThreshold") or 1)
        oks = fails = 0
        while True:
            ok, msg = await self._probe_once(probe, c, proc)
            oks, fails = (oks + 1, 0) if ok else (0, fails + 1)
            if fails == 1:  # once per failing streak: a never-ready container must not flood the API
                self.event("Warning", "Unhealthy", f"Readiness probe failed: {msg}")
            if ok and oks >= ok_t and not st.ready:
                st.ready = True
                self.changed.set()
            elif not ok and fails >= fail_t and st.ready:
                st.ready = False
                self.changed.set()
            await asyncio.sleep(period)

    async def _report_loop(self) -> None:
        while True:
            await self.changed.wait()
            await asyncio.sleep(STATUS_COALESCE_SECONDS)
            self.changed.clear()
            await self._report()

    async def _report(self) -> None:
        status = pod_status(self.pod, self.init, self.main, pod_ip=self.pod_ip, host_ip=self.ctx.host_ip,
                            start_time=self.start_time, now=rfc3339nano()[:19] + "Z", network_ready=self.network_ready,
                            pod_ips=self.pod_ips, host_ips=self.ctx.host_ips)
        if status == self._last_status:
            return
        try:
            await self.ctx.write_status(self.pod, status)
            self._last_status = status
            self._stage(f"status {status.get('phase')} written")
        except Exception as exc:  # noqa: BLE001 - retried on the next change
            log.warning("kubelet: status update of pod %s failed: %s", self.key, exc)
            asyncio.get_running_loop().call_later(1.0, self.changed.set)

    async def _terminate(self) -> None:
        await asyncio.gather(*(self._stop_proc(p) for p in self.procs.values()), return_exceptions=True)
        await self._teardown_network()
        self.network_ready = False

    async def _teardown_network(self) -> None:
        if not (self.pod.get("spec") or {}).get("hostNetwork"):
            await teardown_pod_network(self.uid, self.ctx.ipam)

    async def leave(self) -> None:
        """The agent is stopping: stop the pod, or, when it survives the agent, only this worker."""
        if not self.survives_agent_stop:
            await self.stop()
            return
        self._leaving = True
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def stop(self) -> None:
        """Stop this worker (pod deleted or gone from the node) and wait for its teardown."""
        self.stopping.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
