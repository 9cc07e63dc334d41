"""Worker processes: N copies of the server sharing each listen port through SO_REUSEPORT.

Rules:
- The count comes from the Corefile's `multisocket [NUM]` (largest over all blocks); without it from
  $PYK3S_DNS_WORKERS (a number, or `auto` = the CPUs this process may use); otherwise 1. A config
  with a port-0 listener runs one worker (the workers could not agree on the port).
- The first process is the primary: it serves DNS like the others and alone runs the HTTP endpoints
  (health, ready, metrics), the loop probes and the Warning events. It starts the others as
  `pyk3s coredns <same args> --worker-index I` after its own listeners are bound.
- Every worker builds its own index from its own watches and its own fast table and cache, so an
  update reaches each worker as fast as it reaches one process; nothing is shared but the ports.
- /ready on the primary stays 503 until every worker has reported that its plugins are ready (through
  an inherited pipe). A worker that exits with status 1 (a fatal error such as a detected loop) stops
  the whole server; one that dies otherwise is started again after a second. A worker exits when the
  primary dies (PR_SET_PDEATHSIG).
- Loop probes carry a name derived from $PYK3S_DNS_LOOP_SEED, shared by every worker, so a probe that
  comes back to any worker is recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .core import Block

__all__ = ["ENV_LOOP_SEED", "ENV_WORKERS", "MAX_WORKERS", "Primary", "Workers", "cpu_count", "die_with_parent",
           "report_ready", "worker_count"]

log = logging.getLogger("pyk3s.dns.workers")
ENV_WORKERS = "PYK3S_DNS_WORKERS"
ENV_LOOP_SEED = "PYK3S_DNS_LOOP_SEED"
RESPAWN_DELAY = 1.0
STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1
MAX_WORKERS = 1024


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Primary(Protocol):
    """What the worker supervisor needs of the primary's runtime."""

    waiting_workers: set[str]

    def fatal(self, message: str) -> None: ...


def worker_count(blocks: Sequence[Block], env: Mapping[str, str] = os.environ) -> int:
    nums = [b.workers for b in blocks if b.workers]
    if nums:
        n = max(nums)
    else:
        raw = env.get(ENV_WORKERS, "").strip().lower()
        if raw in ("", "0"):
            n = 1
        elif raw == "auto":
            n = cpu_count()
        elif raw.isdigit():
            n = min(int(raw), MAX_WORKERS)
        else:
            log.warning("[WARNING] %s=%r is neither a number nor 'auto': one worker", ENV_WORKERS, raw)
            n = 1
    if n > 1 and any(b.port == 0 for b in blocks):
        log.warning("[WARNING] multisocket: a listener on port 0 cannot be shared: one worker")
        n = 1
    return max(n, 1)


def ensure_loop_seed() -> None:
    os.environ.setdefault(ENV_LOOP_SEED, secrets.token_hex(8))


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the primary dies; exit now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit(0)


async def report_ready(ready: Callable[[], bool], fd: int) -> None:
    """Worker side: write one byte to `fd` once `ready()` (every plugin is ready)."""
    try:
        while True:
            if ready():
                break
            await asyncio.sleep(0.05)
        os.write(fd, b"1")
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


class Workers:
    """Primary side: start, watch and stop workers 1..count-1."""

    def __init__(self, runtime: Primary, argv: Sequence[str], count: int) -> None:
        self.runtime, self.argv, self.count = runtime, list(argv), count
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        for i in range(1, self.count):
            await self._spawn(i)

    async def _spawn(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        name = f"worker-{index}"
        self.runtime.waiting_workers.add(name)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pyk3s", "coredns", *self.argv, "--worker-index", str(index),
                "--ready-fd", str(w), "--parent-pid", str(os.getpid()), pass_fds=(w,))
        finally:
            os.close(w)
        self.procs[index] = proc

        def readable() -> None:
            try:
                data = os.read(r, 16)
            except OSError:
                data = b""
            if data:
                self.runtime.waiting_workers.discard(name)
                return
            loop.remove_reader(r)
            os.close(r)
        loop.add_reader(r, readable)
        t = loop.create_task(self._watch(index, proc, name))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _watch(self, index: int, proc: asyncio.subprocess.Process, name: str) -> None:
        code = await proc.wait()
        if self.stopping:
            return
        if code == 1:
            log.error("[ERROR] %s exited with a fatal error: stopping", name)
            self.runtime.fatal(f"{name} failed")
            return
        log.error("[ERROR] %s exited (%s): starting it again", name, code)
        self.runtime.waiting_workers.add(name)
        await asyncio.sleep(RESPAWN_DELAY)
        if not self.stopping:
            await self._spawn(index)

    def signal(self, sig: int) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def stop(self) -> None:
        self.stopping = True
        for t in list(self._tasks):
            t.cancel()
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
