"""pyk3s's own containerd: its ``config.toml`` (CRI plugin, runc, the ``pyk3s`` CNI plugin, registry
hosts), the supervised process, and the socket the kubelet's CRI client dials."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pyk3s.agent.cri.registries import RegistriesConfig, auth_toml, hosts_files
from pyk3s.agent.cri.settings import ContainerdPaths

__all__ = ["ContainerdConfig", "ContainerdProcess", "containerd_binary", "render_config", "write_registry_hosts"]

log = logging.getLogger("pyk3s.agent.containerd")

# snapshotters and services pyk3s never uses: fewer warnings and a faster start
_DISABLED_PLUGINS = ("io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                     "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                     "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing")


@dataclass(frozen=True, slots=True)
class ContainerdConfig:
    paths: ContainerdPaths
    pause_image: str
    stream_port: int
    snapshotter: str = "overlayfs"
    # the sandbox's -998 (and the kubelet's negative scores) need CAP_SYS_RESOURCE, which a node inside a
    # container or VM sandbox may lack: then scores are capped at containerd's own
    restrict_oom_score_adj: bool = False


def containerd_binary() -> str | None:
    return shutil.which("containerd")


def _q(s: str | Path) -> str:
    return json.dumps(str(s))


def render_config(cfg: ContainerdConfig, registries: RegistriesConfig) -> str:
    p = cfg.paths
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    text = f"""# written by pyk3s at every agent start: edit registries.yaml or the agent flags instead
version = 2
root = {_q(p.root)}
state = {_q(p.state)}
disabled_plugins = {json.dumps(list(_DISABLED_PLUGINS))}

[grpc]
  address = {_q(p.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = {_q(p.root / "opt")}

[{cri}]
  stream_server_address = "127.0.0.1"
  stream_server_port = "{cfg.stream_port}"
  enable_selinux = false
  disable_apparmor = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  sandbox_image = {_q(cfg.pause_image)}
  max_container_log_line_size = 16384
  restrict_oom_score_adj = {str(cfg.restrict_oom_score_adj).lower()}

[{cri}.containerd]
  snapshotter = {_q(cfg.snapshotter)}
  default_runtime_name = "runc"
  disable_snapshot_annotations = true

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = {_q(p.cni_bin)}
  conf_dir = {_q(p.cni_conf)}
  max_conf_num = 1

[{cri}.registry]
  config_path = {_q(p.certs_d)}
"""
    auth = auth_toml(registries)
    return text + ("\n" + auth if auth else "")


def write_registry_hosts(paths: ContainerdPaths, registries: RegistriesConfig, disable_default: bool) -> None:
    """Replace ``certs.d`` with one ``hosts.toml`` per configured registry."""
    want = hosts_files(registries, disable_default)
    paths.certs_d.mkdir(parents=True, exist_ok=True)
    for d in paths.certs_d.iterdir():
        if d.name not in want and d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
    for name, text in want.items():
        (paths.certs_d / name).mkdir(parents=True, exist_ok=True)
        (paths.certs_d / name / "hosts.toml").write_text(text)


def can_lower_oom_score() -> bool:
    """Whether a child of this process may lower its OOM score (tried in a throw-away child)."""
    res = subprocess.run(["sh", "-c", "echo -998 > /proc/self/oom_score_adj"], capture_output=True, timeout=10)
    return res.returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ContainerdProcess:
    """Runs ``containerd --config …`` and starts it again when it dies. Its log is
    ``<data-dir>/agent/containerd/containerd.log``."""

    def __init__(self, cfg: ContainerdConfig, binary: str) -> None:
        self.cfg, self.binary = cfg, binary
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self._stopping = False

    def argv(self) -> list[str]:
        p = self.cfg.paths
        # --address/--state on the command line too: `pyk3s killall` finds this containerd by them
        return [self.binary, "--config", str(p.config), "--address", str(p.socket), "--state", str(p.state),
                "--root", str(p.root)]

    async def start(self, timeout: float = 30.0) -> None:
        p = self.cfg.paths
        for d in (p.root, p.state):
            d.mkdir(parents=True, exist_ok=True)
        p.socket.unlink(missing_ok=True)
        logf = open(p.log, "ab")  # noqa: ASYNC230, SIM115 - handed to the child
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
        finally:
            logf.close()
        (p.state / "containerd.pid").write_text(str(self.proc.pid))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.returncode is not None:
                raise RuntimeError(f"containerd exited with {self.proc.returncode} at start; see {p.log}")
            if p.socket.exists():
                self.ready.set()
                log.info("containerd: running (pid %d), socket %s", self.proc.pid, p.socket)
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"containerd did not open {p.socket} in {timeout:.0f}s; see {p.log}")

    async def supervise(self) -> None:
        """Start containerd again whenever it exits (1 s, doubling to 30 s while it keeps failing)."""
        delay = 1.0
        while not self._stopping:
            assert self.proc is not None
            rc = await self.proc.wait()
            if self._stopping:
                return
            self.ready.clear()
            log.warning("containerd: exited with %s; starting it again in %.0fs (log: %s)", rc, delay,
                        self.cfg.paths.log)
            await asyncio.sleep(delay)
            try:
                await self.start()
                delay = 1.0
            except RuntimeError as exc:
                log.warning("containerd: %s", exc)
                delay = min(delay * 2, 30.0)

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        (self.cfg.paths.state / "containerd.pid").unlink(missing_ok=True)
