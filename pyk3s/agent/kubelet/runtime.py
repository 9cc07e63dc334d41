"""Container processes: start through the launcher, wait, signal, re-adopt after an agent restart.

Per container run ``<pod dir>/<container>/<restart>.*``: ``.json`` launcher spec, ``.launcher`` the
launcher pid, ``.pid`` the container pid (``containerID pyk3s://<pid>``), ``.exit`` exit status JSON,
``.log`` CRI-format log.

A container with ``stdin: true`` gets a pipe as stdin (``tty: true``: a pty) whose writing end the
kubelet keeps for ``attach``; it is not recoverable after an agent restart (an adopted container has no
stdin any more), as with a runtime whose shim died.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pyk3s.agent.spawn import popen, wait_pid

__all__ = ["ContainerProcess", "ExitStatus", "pid_alive"]

# The launcher needs only the standard library and this package: without ``site`` (``-S``: no .pth files,
# no site-packages scan) it starts in a fraction of the time, with the package found through PYTHONPATH.
# The container itself gets only its own environment (the launcher execs it with the pod's env).
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])


def launcher_env() -> dict[str, str]:
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)}


@dataclass(frozen=True, slots=True)
class ExitStatus:
    exit_code: int
    signal: int
    finished_at: str
    reason: str = ""
    message: str = ""


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class ContainerProcess:
    def __init__(self, ctr_dir: Path, restart: int) -> None:
        self.dir = ctr_dir
        self.restart = restart
        self.base = ctr_dir / str(restart)
        self.proc: subprocess.Popen[bytes] | None = None
        self.launcher_pid = 0
        self.pid = 0
        self.stdin_fd: int | None = None  # the container's stdin: pipe writing end or pty master
        self.tty_fd: int | None = None    # the pty master (window size) when the container has a tty

    def path(self, suffix: str) -> Path:
        return Path(f"{self.base}.{suffix}")

    @property
    def log_path(self) -> Path:
        return self.path("log")

    async def start(self, argv: list[str], env: dict[str, str], cwd: str | None, netns: str | None,
                    mounts: list[dict], timeout: float = 30.0, *, hostname: str | None = None,
                    stdin: bool = False, tty: bool = False) -> None:
        """``hostname``: run in a UTS namespace of its own with that name (None: the node's)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("pid", "exit"):
            self.path(suffix).unlink(missing_ok=True)
        child_stdin: int = subprocess.DEVNULL
        if tty:
            self.tty_fd, child_stdin = os.openpty()
            self.stdin_fd = self.tty_fd
        elif stdin:
            child_stdin, self.stdin_fd = os.pipe()
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        spec = {"argv": argv, "env": env, "cwd": cwd, "netns": netns, "mounts": mounts,
                "log": str(self.log_path), "pid_file": str(self.path("pid")), "exit_file": str(self.path("exit")),
                "hostname": hostname, "stdin": stdin or tty, "tty_fd": self.tty_fd}
        self.path("json").write_text(json.dumps(spec))
        err = open(self.path("launch.err"), "wb")  # noqa: ASYNC230, SIM115 - handed to the child
        unshare = ["unshare", "--mount", *(["--uts"] if hostname else []), "--propagation", "private", "--"]
        try:
            # started off the event loop (see pyk3s.agent.spawn)
            self.proc = await popen(
                [*unshare, sys.executable, "-S", "-m", "pyk3s.agent.kubelet.launch", str(self.path("json"))],
                env=launcher_env(), stdin=child_stdin, stdout=err, stderr=err, start_new_session=True,
                pass_fds=() if self.tty_fd is None else (self.tty_fd,))
        except BaseException:
            self.close_stdin()
            raise
        finally:
            err.close()
            if child_stdin != subprocess.DEVNULL:
                os.close(child_stdin)
        self.launcher_pid = self.proc.pid
        self.path("launcher").write_text(str(self.launcher_pid))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.path("pid").exists():
                self.pid = int(self.path("pid").read_text())
                return
            if self.path("exit").exists() or self.proc.poll() is not None:
                return
            await asyncio.sleep(0.01)

    @classmethod
    def adopt(cls, ctr_dir: Path, restart: int) -> ContainerProcess | None:
        """A still-running container from an earlier agent run, or None."""
        cp = cls(ctr_dir, restart)
        try:
            cp.launcher_pid = int(cp.path("launcher").read_text())
            cp.pid = int(cp.path("pid").read_text())
        except (OSError, ValueError):
            return None
        if cp.path("exit").exists() or not pid_alive(cp.launcher_pid):
            return None
        try:
            cmdline = Path(f"/proc/{cp.launcher_pid}/cmdline").read_bytes()
        except OSError:
            return None
        return cp if b"pyk3s.agent.kubelet.launch" in cmdline else None

    def close_stdin(self) -> None:
        """The container reads end-of-file (stdinOnce after its attach); a tty keeps the terminal."""
        fd, self.stdin_fd = self.stdin_fd, None
        if fd is not None and fd != self.tty_fd:
            os.close(fd)

    def _release_fds(self) -> None:
        self.close_stdin()
        fd, self.tty_fd = self.tty_fd, None
        if fd is not None:
            os.close(fd)

    def exit_status(self) -> ExitStatus | None:
        try:
            doc = json.loads(self.path("exit").read_text())
        except (OSError, ValueError):
            return None
        return ExitStatus(int(doc.get("exitCode", 0)), int(doc.get("signal", 0)), doc.get("finishedAt", ""),
                          doc.get("reason", ""), doc.get("message", ""))

    async def wait(self) -> ExitStatus:
        if self.proc is not None:
            await wait_pid(self.proc)
        else:
            while pid_alive(self.launcher_pid) and not self.path("exit").exists():  # noqa: ASYNC110 - small local file / adopted pid poll
                await asyncio.sleep(0.5)
        self._release_fds()
        for _ in range(20):
            st = self.exit_status()
            if st is not None:
                return st
            await asyncio.sleep(0.05)
        from pyk3s.agent.kubelet.launch import rfc3339nano

        err = ""
        try:
            err = self.path("launch.err").read_text()[-500:]
        except OSError:
            pass
        return ExitStatus(128, 0, rfc3339nano(), "StartError", err.strip() or "launcher exited without status")

    def signal(self, sig: int) -> None:
        """Signal the container's process group (its session), falling back to the pid."""
        if not self.pid:
            if self.launcher_pid and pid_alive(self.launcher_pid):
                os.kill(self.launcher_pid, signal.SIGKILL)
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, grace: float) -> None:
        """SIGTERM, wait up to ``grace`` seconds, SIGKILL; always reaps the launcher."""
        if self.exit_status() is not None and (self.proc is None or self.proc.poll() is not None):
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.wait(), max(grace, 0.1))
        except TimeoutError:
            self.signal(signal.SIGKILL)
            try:
                await asyncio.wait_for(self.wait(), 5)
            except TimeoutError:
                if self.launcher_pid and pid_alive(self.launcher_pid):
                    os.kill(self.launcher_pid, signal.SIGKILL)
