"""Run short helper commands (``ip``, ``nft``) and start long-lived children without holding up the
event loop.

uvloop's subprocess start blocks the loop until the child has called ``exec`` (it forks, then waits on
a pipe): tens of milliseconds per child in a server process of a hundred megabytes on a busy machine,
during which no request, watch event or pod is served. ``subprocess`` forks with ``vfork`` and, run in
one of a few threads, waits with the GIL released, so a pod's network setup no longer stalls everything
else in the process.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["CommandTimeout", "popen", "run_command", "wait_pid"]

# enough for the pods starting at once on a node; each thread mostly waits for its child
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pyk3s-spawn")


class CommandTimeout(RuntimeError):
    pass


async def run_command(argv: Sequence[str], *, input: bytes | None = None,  # noqa: A002 - subprocess's name
                      timeout: float = 15.0, merge_stderr: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion (stdout and stderr captured; ``merge_stderr``: both in stdout); a child
    still running after ``timeout`` seconds is killed and :class:`CommandTimeout` raised."""
    def call() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(list(argv), input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    try:
        return await asyncio.get_running_loop().run_in_executor(_POOL, call)
    except subprocess.TimeoutExpired:
        raise CommandTimeout(f"{' '.join(argv)} timed out after {timeout:.0f}s") from None


async def popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a long-lived child (``subprocess.Popen`` arguments, bytes streams); wait for it with
    :func:`wait_pid`."""
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(list(argv), **kwargs)

    return await asyncio.get_running_loop().run_in_executor(_POOL, start)


async def wait_pid(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a child from :func:`popen` without a thread: its pidfd becomes readable when it exits."""
    if proc.returncode is not None:
        return proc.returncode
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return await asyncio.get_running_loop().run_in_executor(_POOL, proc.wait)
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(fd, readable)
    try:
        if proc.poll() is None:
            await exited
        return proc.wait()
    finally:
        loop.remove_reader(fd)
        os.close(fd)
