"""Kernel relay for routed TCP connections: bytes go socket -> pipe -> socket with ``os.splice`` and never
into Python (TLS passthrough and plain TCP routes).

Each direction owns a pipe (reused from a per-process pool once empty) and is driven by readiness
callbacks: read (splice in) while the pipe can be emptied into the other socket, stop reading and wait
for writability when it cannot. End of a connection, as Traefik's proxy does it: when one side sends
FIN, the relay shuts the other side's write half (after flushing the pipe) and, unless the termination
delay is negative, closes both sockets that delay later if the other direction has not ended by then.
A reset or any other error closes both at once.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Final

__all__ = ["SpliceRelay", "PipePool", "PIPES"]

_F_SETPIPE_SZ: Final = 1031
_PIPE_SIZE: Final = 1 << 20
_CHUNK: Final = 1 << 20
_FLAGS: Final = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_MAX_IDLE_PIPES: Final = 512


class PipePool:
    """Empty pipes kept for reuse: creating and resizing one costs four system calls."""

    __slots__ = ("idle",)

    def __init__(self) -> None:
        self.idle: list[tuple[int, int]] = []

    def get(self) -> tuple[int, int]:
        if self.idle:
            return self.idle.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:
            pass  # /proc/sys/fs/pipe-max-size lower than 1 MiB: keep the default size
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool) -> None:
        if empty and len(self.idle) < _MAX_IDLE_PIPES:
            self.idle.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])

    def close(self) -> None:
        for r, w in self.idle:
            os.close(r)
            os.close(w)
        self.idle.clear()


PIPES = PipePool()


class _Direction:
    __slots__ = ("relay", "src", "dst", "dst_sock", "pipe", "inpipe", "eof", "reading", "writing", "moved",
                 "on_readable", "on_writable")

    def __init__(self, relay: SpliceRelay, src: socket.socket, dst: socket.socket) -> None:
        self.relay = relay
        self.src, self.dst, self.dst_sock = src.fileno(), dst.fileno(), dst
        self.pipe = PIPES.get()
        self.inpipe = 0
        self.eof = False
        self.reading = False
        self.writing = False
        self.moved = 0
        self.on_readable = self._readable  # bound once: the loop keeps calling the same object
        self.on_writable = self._writable

    def start(self) -> None:
        self.reading = True
        self.relay.loop.add_reader(self.src, self.on_readable)

    def _drain(self) -> bool:
        """pipe -> dst; True once the pipe is empty."""
        pipe_r = self.pipe[0]
        while self.inpipe:
            try:
                n = os.splice(pipe_r, self.dst, self.inpipe, flags=_FLAGS)
            except BlockingIOError:
                return False
            self.inpipe -= n
        return True

    def _readable(self) -> None:
        relay = self.relay
        if relay.closed:
            return
        try:
            pipe_w = self.pipe[1]
            while True:
                try:
                    n = os.splice(self.src, pipe_w, _CHUNK, flags=_FLAGS)
                except BlockingIOError:
                    return
                if n == 0:
                    self._stop_reading()
                    self._finish()
                    return
                self.inpipe += n
                self.moved += n
                if not self._drain():
                    self._stop_reading()
                    self.writing = True
                    relay.loop.add_writer(self.dst, self.on_writable)
                    return
        except OSError as err:
            relay.fail(err)

    def _writable(self) -> None:
        relay = self.relay
        if relay.closed:
            return
        try:
            if not self._drain():
                return
        except OSError as err:
            relay.fail(err)
            return
        self.writing = False
        relay.loop.remove_writer(self.dst)
        if self.eof:
            self._finish()
        else:
            self.reading = True
            relay.loop.add_reader(self.src, self.on_readable)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.relay.loop.remove_reader(self.src)

    def _finish(self) -> None:
        """The source sent FIN: flush what is left, then pass the FIN on."""
        self.eof = True
        if self.inpipe:
            if not self.writing:
                self.writing = True
                self.relay.loop.add_writer(self.dst, self.on_writable)
            return
        try:
            self.dst_sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the other side is already gone
        self.relay.half_closed()

    def release(self) -> None:
        loop = self.relay.loop
        if self.reading:
            loop.remove_reader(self.src)
            self.reading = False
        if self.writing:
            loop.remove_writer(self.dst)
            self.writing = False
        PIPES.put(self.pipe, self.inpipe == 0)


class SpliceRelay:
    """Relay between ``client`` and ``backend`` (connected, non-blocking sockets) until both ends are done."""

    __slots__ = ("loop", "client", "backend", "up", "down", "halves", "closed", "delay", "timer", "on_close")

    def __init__(self, loop: asyncio.AbstractEventLoop, client: socket.socket, backend: socket.socket,
                 termination_delay: float, on_close: Callable[[SpliceRelay, OSError | None], None]) -> None:
        self.loop = loop
        self.client, self.backend = client, backend
        self.up = _Direction(self, client, backend)
        self.down = _Direction(self, backend, client)
        self.halves = 0
        self.closed = False
        self.delay = termination_delay
        self.timer: asyncio.TimerHandle | None = None
        self.on_close = on_close
        self.up.start()
        self.down.start()

    @property
    def bytes_up(self) -> int:
        return self.up.moved

    @property
    def bytes_down(self) -> int:
        return self.down.moved

    def half_closed(self) -> None:
        self.halves += 1
        if self.halves >= 2:
            self.close()
        elif self.delay >= 0 and self.timer is None:
            self.timer = self.loop.call_later(self.delay, self.close)

    def fail(self, err: OSError) -> None:
        if err.errno in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN):
            self.close()
        else:
            self.close(err)

    def close(self, err: OSError | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.up.release()
        self.down.release()
        self.client.close()
        self.backend.close()
        self.on_close(self, err)
