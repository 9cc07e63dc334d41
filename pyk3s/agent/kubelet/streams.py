"""The kubelet's exec and attach sessions over the ``v5``/``v4.channel.k8s.io`` WebSocket protocol.

Channel bytes: 0 stdin, 1 stdout, 2 stderr, 3 status (JSON, last message), 4 resize
(``{"Width": w, "Height": h}``), 255 close (v5 only: the client closed the stream given as payload).

exec: the command runs as a session leader (``setsid``); with ``tty`` it gets a pty as controlling
terminal, stdin, stdout and stderr (the output goes to channel 1 only, as with Kubernetes) and resize
messages set the pty's window size. When the client goes away first, the whole session is ended:
SIGHUP and SIGTERM, then SIGKILL after :data:`KILL_GRACE` seconds, so nothing is left behind.

attach: the container's stdin (a pipe or a pty the kubelet kept, see
:class:`~pyk3s.agent.kubelet.runtime.ContainerProcess`) receives channel 0; the container's output is
read from its log as it is written, from the moment of the attach, until the container ends.
``stdinOnce`` closes the container's stdin when the first attach ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from pyk3s.agent.kubelet.logs import parse_line, read_new_lines
from pyk3s.agent.kubelet.runtime import ContainerProcess
from pyk3s.api.tasks import stop_tasks

__all__ = ["KILL_GRACE", "StreamOptions", "kill_session", "read_fd", "serve_attach", "serve_exec",
           "session_members", "set_window_size", "status_message", "write_fd"]

KILL_GRACE = 1.0       # seconds between SIGHUP/SIGTERM and SIGKILL for an abandoned exec
DRAIN_GRACE = 2.0      # seconds to collect output still buffered after the exec'd command ended
ATTACH_POLL = 0.05     # seconds between looks at the log of an attached container


@dataclass(frozen=True, slots=True)
class StreamOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> StreamOptions:
        def flag(name: str) -> bool:
            return query.get(name) in ("true", "1")
        return cls(flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"))


def status_message(rc: int | None, error: str = "") -> bytes:
    """The channel-3 message ending a session: success, the exit code, or an error."""
    if error:
        doc = {"metadata": {}, "status": "Failure", "message": error, "reason": "InternalError"}
    elif not rc:
        doc = {"metadata": {}, "status": "Success"}
    else:
        doc = {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {rc}",
               "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(rc)}]}}
    return b"\x03" + json.dumps(doc).encode()


# -- file descriptors -------------------------------------------------------------------------------------

async def _fd_ready(fd: int, write: bool) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, wake)
    try:
        await ready
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def read_fd(fd: int) -> AsyncIterator[bytes]:
    """Chunks read from a non-blocking pipe or pty master until end of file (EIO on a hung-up pty)."""
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            await _fd_ready(fd, write=False)
            continue
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if not data:
            return
        yield data


async def write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            await _fd_ready(fd, write=True)
            continue
        view = view[n:]


def set_window_size(fd: int, message: bytes) -> None:
    """Apply a resize message to a pty (the kernel signals SIGWINCH to its foreground process group)."""
    try:
        size = json.loads(message)
        width, height = int(size.get("Width") or 0), int(size.get("Height") or 0)
    except (ValueError, TypeError, AttributeError):
        return
    if 0 < width < 65536 and 0 < height < 65536:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


# -- process sessions -------------------------------------------------------------------------------------

def session_members(sid: int) -> list[int]:
    """Pids of the live processes of session ``sid`` (the exec'd command and whatever it started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 3 and fields[3] == str(sid) and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def _signal_session(sid: int, sig: int) -> None:
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


async def kill_session(child: asyncio.subprocess.Process, grace: float = KILL_GRACE) -> None:
    """End the session ``child`` leads: SIGHUP + SIGTERM, SIGKILL after ``grace``; reaps ``child``."""
    sid = child.pid
    if child.returncode is None:
        _signal_session(sid, signal.SIGHUP)
        _signal_session(sid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), grace)
    _signal_session(sid, signal.SIGKILL)
    await child.wait()


# -- the client side --------------------------------------------------------------------------------------

async def _client_input(ws: web.WebSocketResponse, stdin: Callable[[bytes], Awaitable[None]] | None,
                        close_stdin: Callable[[], None] | None, resize: Callable[[bytes], None] | None) -> None:
    """Read the client's messages until it closes the WebSocket."""
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data:
            continue
        channel, data = msg.data[0], msg.data[1:]
        if channel == 0 and stdin is not None:
            try:
                await stdin(data)
            except OSError:  # the process closed its stdin: drop further input
                stdin = None
        elif channel == 4 and resize is not None:
            resize(data)
        elif channel == 255 and v5 and data[:1] == b"\x00" and close_stdin is not None:
            close_stdin()
            stdin = close_stdin = None


async def _finish(ws: web.WebSocketResponse, message: bytes) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(message)
        await ws.close()


async def serve_exec(ws: web.WebSocketResponse, argv: list[str], env: dict[str, str] | None,
                     opts: StreamOptions) -> None:
    """Run ``argv`` for an upgraded exec WebSocket, to the status message (or the client's going)."""
    master = slave = None
    try:
        if opts.tty:
            master, slave = os.openpty()
            child = await asyncio.create_subprocess_exec(
                "setsid", "--ctty", *argv, env=env, stdin=slave, stdout=slave, stderr=slave)
        else:
            child = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.PIPE if opts.stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
        await _finish(ws, status_message(None, f"pyk3s kubelet: exec {argv[-1:]}: {exc}"))
        return
    finally:
        if slave is not None:
            os.close(slave)  # the pty hangs up once the session's last holder of it is gone

    async def send(channel: int, chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            if not ws.closed:
                await ws.send_bytes(bytes([channel]) + chunk)

    async def stream_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while chunk := await reader.read(65536):
            yield chunk

    tasks: list[asyncio.Future] = []
    try:
        if master is not None:
            os.set_blocking(master, False)
            pumps = [send(1, read_fd(master))]
            feeder = _client_input(ws, (lambda data: write_fd(master, data)) if opts.stdin else None, None,
                                   lambda data: set_window_size(master, data))
        else:
            pumps = [send(1, stream_chunks(child.stdout)), send(2, stream_chunks(child.stderr))]  # type: ignore[arg-type]

            async def to_stdin(data: bytes) -> None:
                child.stdin.write(data)  # type: ignore[union-attr]
                await child.stdin.drain()  # type: ignore[union-attr]

            feeder = _client_input(ws, to_stdin if child.stdin else None,
                                   child.stdin.close if child.stdin else None, None)
        input_task = asyncio.ensure_future(feeder)
        output_task = asyncio.gather(*pumps)
        exit_task = asyncio.ensure_future(child.wait())
        tasks = [input_task, output_task, exit_task]
        await asyncio.wait({input_task, exit_task}, return_when=asyncio.FIRST_COMPLETED)
        if not exit_task.done():
            await kill_session(child)
            return
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(output_task), DRAIN_GRACE)
        rc = exit_task.result()
        await _finish(ws, status_message(128 - rc if rc < 0 else rc))
    finally:
        await stop_tasks(*tasks)
        if child.returncode is None:
            await kill_session(child)
        if master is not None:
            os.close(master)


def _log_end(path: Path) -> int:
    """Offset just after the last complete line of a container log."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - 65536))
            tail = fh.read()
    except FileNotFoundError:
        return 0
    return size - len(tail) + tail.rfind(b"\n") + 1


async def _follow_output(ws: web.WebSocketResponse, log_path: Path, offset: int, opts: StreamOptions,
                         running: Callable[[], bool]) -> None:
    while True:
        lines, offset = read_new_lines(log_path, offset)
        if lines:
            for line in lines.splitlines():
                entry = parse_line(line)
                if entry is None:
                    continue
                _ts, stream, full, content = entry
                channel = 2 if stream == b"stderr" and not opts.tty else 1
                if (opts.stdout if channel == 1 else opts.stderr) and not ws.closed:
                    await ws.send_bytes(bytes([channel]) + content + (b"\n" if full else b""))
            continue
        if not running():
            return
        await asyncio.sleep(ATTACH_POLL)


async def serve_attach(ws: web.WebSocketResponse, proc: ContainerProcess, opts: StreamOptions,
                       running: Callable[[], bool], stdin_once: bool) -> None:
    """Connect an upgraded attach WebSocket to a running container until it ends or the client goes."""
    offset = _log_end(proc.log_path)

    async def to_stdin(data: bytes) -> None:
        if proc.stdin_fd is not None:
            await write_fd(proc.stdin_fd, data)

    def close_stdin() -> None:
        if stdin_once:
            proc.close_stdin()

    def resize(data: bytes) -> None:
        if proc.tty_fd is not None:
            set_window_size(proc.tty_fd, data)

    input_task = asyncio.create_task(_client_input(ws, to_stdin if opts.stdin else None,
                                                   close_stdin if opts.stdin else None, resize))
    output_task = asyncio.create_task(_follow_output(ws, proc.log_path, offset, opts, running))
    try:
        await asyncio.wait({input_task, output_task}, return_when=asyncio.FIRST_COMPLETED)
        if output_task.done():
            await _finish(ws, status_message(0))
    finally:
        await stop_tasks(input_task, output_task)
        if opts.stdin:
            close_stdin()
