"""The node's CRI runtime as the kubelet sees it: the client, whether it is up, the registry rules the
kubelet applies itself (rewrites), and which runtime a pod gets.

:func:`start_containerd` brings pyk3s's own containerd up in the background (config, registries, CNI
plugin, pause image, air-gap images), so the process runtime is serving pods before containerd is.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyk3s.agent.cni.bridge import BridgeConfig
from pyk3s.agent.cni.plugin import LOOPBACK_SCRIPT, conflist
from pyk3s.agent.cri.airgap import import_folder, import_pause_image
from pyk3s.agent.cri.containerd import (
    ContainerdConfig,
    ContainerdProcess,
    can_lower_oom_score,
    containerd_binary,
    free_port,
    render_config,
    write_registry_hosts,
)
from pyk3s.agent.cri.registries import RegistriesConfig, RegistryError, load_registries
from pyk3s.agent.cri.settings import ContainerdPaths, RuntimeSettings
from pyk3s.images import resolve_image

__all__ = ["PROCESS_HANDLER", "CriRuntime", "cleanup_sandboxes", "pick_runtime", "run_image_gc", "start_runtime"]

log = logging.getLogger("pyk3s.agent.containerd")

PROCESS_HANDLER = "pyk3s-process"


@dataclass(slots=True)
class CriRuntime:
    """Shared by the kubelet's CRI pod workers. ``ready`` is set once the runtime answers."""
    settings: RuntimeSettings
    endpoint: str
    client: Any = None               # CriClient once started (grpc is imported only then)
    registries: RegistriesConfig = field(default_factory=RegistriesConfig)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: str = ""                 # why the runtime could not be started (pods say so while waiting)
    cni_records: Path | None = None  # where the CNI plugin records each pod's netns
    process: ContainerdProcess | None = None
    version: str = ""

    async def wait_ready(self, stopping: asyncio.Event) -> bool:
        if self.ready.is_set():
            return True
        waiters = [asyncio.ensure_future(self.ready.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        return self.ready.is_set()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.process is not None:
            await self.process.stop()


def all_builtin(pod: dict) -> bool:
    spec = pod.get("spec") or {}
    return all(resolve_image(c.get("image", "")) is not None
               for key in ("initContainers", "containers") for c in spec.get(key) or [])


def pick_runtime(pod: dict, runtime: CriRuntime | None, handlers: dict[str, str]) -> tuple[str, str]:
    """(``process`` | ``cri``, CRI runtime handler). ``handlers``: RuntimeClass name -> handler.

    ``runtimeClassName`` decides when given; else pods whose images are all built in run as processes
    unless ``--default-runtime=containerd``; any other pod goes to containerd when there is one, and to
    the process runtime when there is none (which runs a container with a ``command`` on the host and
    explains for the others how to get containerd)."""
    rc = (pod.get("spec") or {}).get("runtimeClassName")
    if rc:
        handler = handlers.get(rc, rc)
        if handler == PROCESS_HANDLER:
            return "process", ""
        return ("cri", handler) if runtime is not None else ("process", "")
    if runtime is None:
        return "process", ""
    if runtime.settings.default_runtime == "containerd":
        return "cri", ""
    return ("process", "") if all_builtin(pod) else ("cri", "")


def _write_cni(paths: ContainerdPaths, bridge: BridgeConfig, ipam_dir: Path) -> Path:
    records = paths.agent / "cni"
    paths.cni_bin.mkdir(parents=True, exist_ok=True)
    scripts = {"pyk3s": f'#!/bin/sh\nexec {sys.executable} -m pyk3s.agent.cni.plugin pyk3s "$@"\n',
               "loopback": LOOPBACK_SCRIPT}
    for name, text in scripts.items():
        script = paths.cni_bin / name
        script.write_text(text)
        script.chmod(0o755)
    paths.cni_conf.mkdir(parents=True, exist_ok=True)
    for old in paths.cni_conf.iterdir():
        if old.name != "10-pyk3s.conflist":
            old.unlink(missing_ok=True)
    (paths.cni_conf / "10-pyk3s.conflist").write_text(json.dumps(conflist(bridge, ipam_dir, records), indent=2))
    return records


async def _wait_answering(client: Any, timeout: float = 30.0) -> str:
    from pyk3s.agent.cri.client import CriError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            v = await client.version(timeout=2)
            return f"{v.runtime_name} {v.runtime_version} (CRI {v.runtime_api_version})"
        except CriError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def cleanup_sandboxes(runtime: CriRuntime, node_name: str, live: Callable[[], set[str]]) -> None:
    """Once the runtime is up: remove this node's sandboxes whose pod has no worker here (left by an
    earlier run of the agent; their pods, if still bound here, get fresh sandboxes)."""
    from pyk3s.agent.cri.client import CriError
    from pyk3s.agent.cri.spec import LABEL_NODE, LABEL_POD_UID

    if not await runtime.wait_ready(asyncio.Event()) or runtime.client is None:
        return
    try:
        for sb in await runtime.client.list_pod_sandboxes({LABEL_NODE: node_name}):
            if sb.labels.get(LABEL_POD_UID) in live():
                continue
            await runtime.client.stop_pod_sandbox(sb.id)
            await runtime.client.remove_pod_sandbox(sb.id)
            log.info("kubelet: removed sandbox %s of a pod no longer on this node", sb.id[:12])
    except CriError as exc:
        log.warning("kubelet: cleaning up old sandboxes: %s", exc)


async def run_image_gc(runtime: CriRuntime, data_dir: Path,
                       node_event: Callable[[str, str, str], Awaitable[None]]) -> None:
    """The kubelet's image garbage collection on this runtime (see :mod:`pyk3s.agent.cri.imagegc`)."""
    from pyk3s.agent.cri.airgap import CtrError, pinned_images
    from pyk3s.agent.cri.imagegc import ImageGc
    from pyk3s.images.oci import qualify

    socket = ContainerdPaths(data_dir).socket
    pause = qualify(runtime.settings.pause_image)

    async def pinned() -> set[str]:
        names = {pause}
        if not runtime.settings.endpoint:   # our own containerd: ask it for the air-gap images' label
            try:
                names |= await pinned_images(socket)
            except CtrError as exc:
                # without the list nothing is safe to remove: the pass fails and is tried again later
                raise RuntimeError(f"listing pinned images: {exc}") from None
        return names

    async def ready() -> bool:
        return await runtime.wait_ready(asyncio.Event())

    gc = ImageGc(runtime.client, runtime.settings.image_gc, pinned, node_event)
    await ready()
    gc.client = runtime.client
    await gc.run(ready)


async def start_runtime(runtime: CriRuntime, data_dir: Path, bridge: BridgeConfig, ipam_dir: Path) -> None:
    """Bring the CRI runtime up (pyk3s's own containerd unless an endpoint was given), then set
    ``runtime.ready``. Failures are logged and kept in ``runtime.failed``; the process runtime goes on."""
    s = runtime.settings
    paths = ContainerdPaths(data_dir)
    # grpc and the generated CRI code take a few hundred ms to import: off the event loop
    await asyncio.to_thread(importlib.import_module, "pyk3s.agent.cri.worker")
    from pyk3s.agent.cri.client import CriClient, CriError

    try:
        try:
            runtime.registries = load_registries(Path(s.private_registry))
        except RegistryError as exc:
            log.error("containerd: %s; using no registry configuration", exc)
        runtime.cni_records = _write_cni(paths, bridge, ipam_dir)
        if not s.endpoint:
            binary = containerd_binary()
            if binary is None:
                raise RuntimeError("containerd is not on PATH")
            cfg = ContainerdConfig(paths, s.pause_image, free_port(), s.snapshotter,
                                   restrict_oom_score_adj=not await asyncio.to_thread(can_lower_oom_score))
            paths.config.parent.mkdir(parents=True, exist_ok=True)
            paths.config.write_text(render_config(cfg, runtime.registries))
            write_registry_hosts(paths, runtime.registries, s.disable_default_registry_endpoint)
            runtime.process = ContainerdProcess(cfg, binary)
            await runtime.process.start()
        runtime.client = CriClient(runtime.endpoint)
        runtime.version = await _wait_answering(runtime.client)
        if not s.endpoint:
            await import_pause_image(paths.socket, s.pause_image)
            await import_folder(paths.socket, paths.images)
        runtime.ready.set()
        log.info("containerd: ready: %s at %s", runtime.version, runtime.endpoint)
    except (OSError, RuntimeError, CriError) as exc:
        runtime.failed = str(exc)
        log.error("containerd: not available (%s); only built-in images run on this node", exc)
        return
    if runtime.process is not None:
        await runtime.process.supervise()
