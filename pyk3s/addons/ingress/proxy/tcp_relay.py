"""Kernel relay for routed TCP connections: bytes go socket -> pipe -> socket with ``os.splice`` and never
into Python (TLS passthrough and plain TCP routes).

Each direction owns a pipe (reused from a per-process pool once empty: no system call per connection
once the pool is warm). The two sockets sit in the worker's epoll set (``poller.py``): a socket is
watched for reading while its direction's pipe can be emptied, and for writing only while the other
direction waits for room. One splice per readiness event (level-triggered: the kernel reports again while
bytes are left).

End of a connection, as Traefik's proxy does it: when one side sends FIN, the relay shuts the other
side's write half (after flushing the pipe) and, unless the termination delay is negative, closes both
sockets that delay later if the other direction has not ended by then. A reset or any other error
closes both at once. The FIN is seen without a splice of its own when epoll reports it
(``EPOLLRDHUP``) with the data before it and the splice that took that data cannot have stopped short:
it moved fewer bytes than the pipe has slots (each slot holds at least one byte), so it stopped at the
FIN.

The relay may start while the connection to the server is still being made: bytes from the client (and
a PROXY header put first into the pipe) wait in the pipe until the server socket becomes writable; a
refused connection shows up as an error on the server socket; a connection not made within the dial
timeout is closed.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Final

from .poller import ERR, HUP, IN, OUT, RDHUP, Poller, poller_for

__all__ = ["SpliceRelay", "PipePool", "PIPES"]

_F_SETPIPE_SZ: Final = 1031
_F_GETPIPE_SZ: Final = 1032
_PIPE_SIZE: Final = 1 << 20
_CHUNK: Final = 1 << 20
_FLAGS: Final = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
_MAX_IDLE_PIPES: Final = 512
_READ: Final = IN | RDHUP
_QUIET = (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN)
_PAGE: Final = os.sysconf("SC_PAGESIZE")


class PipePool:
    """Empty pipes kept for reuse: creating and resizing one costs four system calls. ``slots``: the
    fewest buffers (pages) any pipe it handed out holds."""

    __slots__ = ("idle", "slots")

    def __init__(self) -> None:
        self.idle: list[tuple[int, int]] = []
        self.slots = _PIPE_SIZE // _PAGE

    def get(self) -> tuple[int, int]:
        if self.idle:
            return self.idle.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            size = fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:  # /proc/sys/fs/pipe-max-size lower than 1 MiB: keep the size the kernel gave
            size = fcntl.fcntl(w, _F_GETPIPE_SZ)
        self.slots = min(self.slots, max(1, size // _PAGE))
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool) -> None:
        if empty and len(self.idle) < _MAX_IDLE_PIPES:
            self.idle.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])


PIPES = PipePool()


class _Direction:
    """src -> pipe -> dst. ``reading``: src is watched for data; ``blocked``: dst is watched for room."""

    __slots__ = ("src", "dst", "dst_sock", "pipe", "inpipe", "eof", "done", "reading", "blocked", "moved", "other")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst, self.dst_sock = src.fileno(), dst.fileno(), dst
        self.pipe = PIPES.get()
        self.inpipe = 0
        self.eof = False  # src sent FIN
        self.done = False  # the FIN was passed on
        self.reading = True
        self.blocked = False
        self.moved = 0
        self.other: _Direction | None = None  # cleared when the relay closes: no cycle outlives it

    def drain(self) -> bool:
        """pipe -> dst; True once the pipe is empty."""
        pipe_r, dst = self.pipe[0], self.dst
        while self.inpipe:
            try:
                n = os.splice(pipe_r, dst, self.inpipe, flags=_FLAGS)
            except BlockingIOError:
                return False
            self.inpipe -= n
        return True

    def read(self, hup: int = 0) -> None:
        """One splice from src (``hup``: epoll saw the peer's FIN before it); raises OSError for the relay."""
        try:
            n = os.splice(self.src, self.pipe[1], _CHUNK, flags=_FLAGS)
        except BlockingIOError:
            return
        if n == 0:
            self.eof = True
        else:
            self.inpipe += n
            self.moved += n
            if hup and n < PIPES.slots:
                self.eof = True  # the pipe had room left: this splice stopped at the FIN
            if not self.drain():
                self.reading = False
                self.blocked = True
                return
        if self.eof:
            self.reading = False
            self.finish()

    def write(self) -> None:
        if not self.drain():
            return
        self.blocked = False
        if self.eof:
            self.finish()
        else:
            self.reading = True

    def finish(self) -> None:
        if not self.done:
            self.done = True
            other = self.other
            if other is not None and other.done:
                return  # both ends are done: closing the sockets sends this FIN
            try:
                self.dst_sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the other side is already gone


class SpliceRelay:
    """Relay between ``client`` and ``backend`` (non-blocking sockets) until both ends are done."""

    __slots__ = ("loop", "poller", "client", "backend", "cfd", "bfd", "up", "down", "cmask", "bmask", "closed",
                 "delay", "dialing", "terminating", "on_close")

    def __init__(self, loop: asyncio.AbstractEventLoop, client: socket.socket, backend: socket.socket,
                 termination_delay: float, on_close: Callable[[SpliceRelay, OSError | None], None],
                 header: bytes = b"", dial_timeout: float = 0.0) -> None:
        self.loop = loop
        self.poller: Poller = poller_for(loop)
        self.client, self.backend = client, backend
        self.cfd, self.bfd = client.fileno(), backend.fileno()
        self.up = _Direction(client, backend)
        self.down = _Direction(backend, client)
        self.up.other, self.down.other = self.down, self.up
        self.closed = False
        self.delay = termination_delay
        self.terminating = False
        self.on_close = on_close
        self.dialing = dial_timeout > 0
        if self.dialing:
            self.poller.deadline(self, loop.time() + dial_timeout)
        up = self.up
        failed: OSError | None = None
        if header:  # a PROXY header goes before anything from the client
            os.write(up.pipe[1], header)  # pyk3s's own bytes, not the client's
            up.inpipe = len(header)
            up.reading, up.blocked = False, True
        else:
            try:  # the client's first bytes are usually there already: one wake-up less
                up.read()
            except OSError as err:
                failed = err
        self.cmask = (_READ if up.reading else 0) | (OUT if self.down.blocked else 0)
        self.bmask = _READ | (OUT if up.blocked else 0)
        self.poller.watch(self.cfd, self.cmask, self._client_ready)  # the poller's handlers keep the relay
        self.poller.watch(self.bfd, self.bmask, self._backend_ready)
        if failed is not None:
            self._fail(failed)

    @property
    def bytes_up(self) -> int:
        return self.up.moved

    @property
    def bytes_down(self) -> int:
        return self.down.moved

    # -- events: a socket is the source of one direction and the destination of the other
    def _client_ready(self, events: int) -> None:
        self._ready(events, self.up, self.down, self.client)

    def _backend_ready(self, events: int) -> None:
        self._ready(events, self.down, self.up, self.backend)

    def _ready(self, events: int, source_of: _Direction, dest_of: _Direction, sock: socket.socket) -> None:
        try:
            if events & (IN | ERR):
                if source_of.reading:
                    source_of.read(events & RDHUP)
                elif events & ERR:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    if events & HUP:  # both halves shut and nothing left to do on this socket
                        self.close()
                        return
            if events & OUT and dest_of.blocked:
                dest_of.write()
        except OSError as err:
            self._fail(err)
            return
        self._update()

    def _update(self) -> None:
        if self.closed:
            return
        up, down = self.up, self.down
        if up.done and down.done:
            self.close()
            return
        cmask = (_READ if up.reading else 0) | (OUT if down.blocked else 0)
        bmask = (_READ if down.reading else 0) | (OUT if up.blocked else 0)
        if cmask != self.cmask:
            self.cmask = cmask
            self.poller.change(self.cfd, cmask)
        if bmask != self.bmask:
            self.bmask = bmask
            self.poller.change(self.bfd, bmask)
        if (up.done or down.done) and not self.terminating and self.delay >= 0:
            self.terminating = True
            self.poller.deadline(self, self.loop.time() + self.delay)  # replaces a pending dial deadline

    def expired(self) -> None:
        """A deadline passed: the termination delay (close both), else the dial timeout (close unless
        the server socket is connected by now)."""
        if self.terminating:
            self.close()
            return
        self.dialing = False
        try:
            self.backend.getpeername()
        except OSError:
            self.close(TimeoutError(errno.ETIMEDOUT, "dial tcp: i/o timeout"))

    def _fail(self, err: OSError) -> None:
        self.close(None if err.errno in _QUIET else err)

    def close(self, err: OSError | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        poller = self.poller
        if self.dialing or self.terminating:
            poller.cancel(self)
        poller.drop(self.cfd)
        poller.drop(self.bfd)
        self.client.close()
        self.backend.close()
        for direction in (self.up, self.down):
            direction.other = None
            PIPES.put(direction.pipe, direction.inpipe == 0)
        self.on_close(self, err)
