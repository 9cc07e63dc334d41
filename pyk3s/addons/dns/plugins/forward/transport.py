"""Connections to one upstream: one UDP socket shared by every query, TCP connections kept for reuse.

Rules:
- UDP: one connected, non-blocking socket per upstream, read from `loop.add_reader`. Every query goes
  out with an ID of its own, drawn at random among those not in flight (the pending map ID -> waiter);
  a reply whose ID is not in flight (late after its timeout, or not ours) is dropped. A waiter not
  answered within `timeout` fails with TimeoutError: the pending map keeps send order and every query
  waits the same time, so one timer on the loop, re-armed at most every TICK, ends the oldest ones.
- A socket idle for `expire` is closed, and the next query opens a fresh one (a new source port), as
  CoreDNS expires its cached connections. An ICMP error (nothing listens there) fails every query in
  flight on the socket, as a connection error does in CoreDNS.
- `close` lets the queries in flight finish (a reload keeps their answers) and then closes.
- TCP: connections kept per upstream and used by one query at a time (CoreDNS's persistent
  connections); one idle for `expire` is closed; a kept connection the upstream closed meanwhile is
  replaced once.
- TLS (DNS-over-TLS, RFC 7858): the same pool, each connection opened with the forward's client context
  and checked against the upstream's server name (or its IP address): the same reuse and expiry, so a
  kept connection saves the handshake. A certificate that does not verify fails the query like a
  connection error (the next upstream is asked; none left: SERVFAIL).
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["TcpPool", "UdpChannel", "Waiter"]

log = logging.getLogger("pyk3s.dns.forward")
TICK = 0.05                 # how late a timeout may end, at most
DRAIN = 64                  # datagrams per readable event before the loop gets a turn
RECV_SIZE = 65535
SOCK_BUFFER = 4 << 20
_U16 = struct.Struct(">H")


class Waiter(Protocol):
    """A query in flight on a UdpChannel (the channel sets both)."""

    qid: int
    sent: float             # time.monotonic() when it went out


class _Ids:
    """Random 16-bit query IDs, drawn from the kernel's random bytes a few thousand at a time."""

    __slots__ = ("_ids", "_next")

    def __init__(self) -> None:
        self._ids = array.array("H")
        self._next = 0

    def draw(self) -> int:
        if self._next >= len(self._ids):
            self._ids = array.array("H", os.urandom(8192))
            self._next = 0
        qid = self._ids[self._next]
        self._next += 1
        return qid


IDS = _Ids()


class UdpChannel:
    __slots__ = ("host", "port", "timeout", "expire", "on_reply", "on_error", "sock", "pending", "last",
                 "closing", "_timer", "_due", "_buf", "_view", "_loop")

    def __init__(self, host: str, port: int, timeout: float, expire: float,
                 on_reply: Callable[[Any, bytes], None], on_error: Callable[[Any, Exception], None]) -> None:
        self.host, self.port = host, port
        self.timeout = timeout
        self.expire = expire
        self.on_reply = on_reply        # (waiter, reply) for the waiter whose ID came back
        self.on_error = on_error        # (waiter, error) for one that timed out or whose socket failed
        self.sock: socket.socket | None = None
        self.pending: dict[int, Any] = {}
        self.last = 0.0                 # when the socket last sent a query
        self.closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0                 # when the timer fires
        self._buf = bytearray()         # RECV_SIZE bytes once a socket is open
        self._view = memoryview(self._buf)
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> socket.socket:
        self._shut()
        if not self._buf:
            self._buf = bytearray(RECV_SIZE)
            self._view = memoryview(self._buf)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCK_BUFFER)
                except OSError:
                    pass
            sock.connect((self.host, self.port))
            loop = self._loop = asyncio.get_running_loop()
            loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return sock

    def _shut(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()

    def send(self, w: Any, wire: bytes, now: float) -> None:
        """Send `wire` (its ID replaced by one of its own) for the waiter `w`; raises OSError."""
        if self.closing:
            raise ConnectionError("upstream connection closed")
        sock = self.sock
        if sock is None or (now - self.last > self.expire and not self.pending):
            sock = self._open()
        pending = self.pending
        qid = IDS.draw()
        while qid in pending:
            qid = IDS.draw()
        sock.send(_U16.pack(qid) + wire[2:])
        w.qid = qid
        w.sent = now
        pending[qid] = w
        self.last = now
        timer = self._timer
        if timer is None or self._due > now + self.timeout:     # none, or only the idle one
            if timer is not None:
                timer.cancel()
            self._arm(now)

    def _arm(self, now: float) -> None:
        """The timer, for the oldest query's timeout or the socket's expiry, whichever comes first."""
        loop = self._loop
        if loop is None or self.sock is None:
            return
        due = self.last + self.expire
        if self.pending:
            due = min(due, next(iter(self.pending.values())).sent + self.timeout)
        delay = max(due - now, TICK)
        self._due = now + delay
        self._timer = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        now = time.monotonic()
        pending = self.pending
        expired = []
        limit = now - self.timeout
        for qid, w in pending.items():
            if w.sent > limit:
                break
            expired.append(qid)
        for qid in expired:
            w = pending.pop(qid)
            try:
                self.on_error(w, TimeoutError(f"no answer from {self.host}:{self.port} in {self.timeout:g}s"))
            except Exception:  # the others still time out
                log.exception("[ERROR] plugin/forward: handling a timeout of %s:%d", self.host, self.port)
        if not self.pending and (self.closing or now - self.last >= self.expire):
            self._shut()
            return
        if self._timer is None:
            self._arm(now)

    def _readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        pending, buf, view, on_reply = self.pending, self._buf, self._view, self.on_reply
        for _ in range(DRAIN):
            try:
                n = sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:      # ICMP unreachable and friends: every query on it failed
                failed = list(pending.values())
                pending.clear()
                for w in failed:
                    try:
                        self.on_error(w, err)
                    except Exception:
                        log.exception("[ERROR] plugin/forward: handling an error of %s:%d", self.host, self.port)
                break
            if n < 2:
                continue
            w = pending.pop(buf[0] << 8 | buf[1], None)
            if w is None:
                continue                # late, or not ours
            try:
                on_reply(w, view[:n].tobytes())
            except Exception:  # one query's failure must not leave the others of the batch unread
                log.exception("[ERROR] plugin/forward: handling a reply from %s:%d", self.host, self.port)
            if self.sock is not sock:
                return
        if self.closing and not pending:
            self._shut()

    def close(self) -> None:
        """Stop taking queries; close once the ones in flight are done."""
        self.closing = True
        if not self.pending:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._shut()


class TcpPool:
    """Kept TCP connections to one upstream; with `tls`, TLS connections verified against `server_name`."""

    __slots__ = ("host", "port", "expire", "idle", "closed", "tls", "server_name", "opened")

    def __init__(self, host: str, port: int, expire: float, tls: ssl.SSLContext | None = None,
                 server_name: str = "") -> None:
        self.host, self.port, self.expire = host, port, expire
        self.tls = tls
        self.server_name = server_name or host
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.closed = False
        self.opened = 0             # connections opened so far (a kept one reused is not counted)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.opened += 1
        if self.tls is None:
            return await asyncio.open_connection(self.host, self.port)
        return await asyncio.open_connection(self.host, self.port, ssl=self.tls,
                                             server_hostname=self.server_name)

    def _take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        now = time.monotonic()
        while self.idle:
            reader, writer, used = self.idle.pop(0)
            if now - used > self.expire or writer.is_closing() or reader.at_eof():
                writer.close()
                continue
            return reader, writer
        return None

    async def exchange(self, wire: bytes) -> bytes:
        """The reply to `wire` (whose ID it must carry); the caller bounds the time."""
        for attempt in (0, 1):
            conn = self._take()
            reused = conn is not None
            if conn is None:
                conn = await self._connect()
            reader, writer = conn
            try:
                writer.write(_U16.pack(len(wire)) + wire)
                while True:
                    n = _U16.unpack(await reader.readexactly(2))[0]
                    data = await reader.readexactly(n)
                    if data[:2] == wire[:2]:
                        break
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as err:
                writer.close()
                if reused and attempt == 0:
                    continue            # the upstream closed a kept connection: once more on a new one
                if self.tls is not None:    # a TLS server refusing our certificate (or none) ends here
                    raise ConnectionError(f"tls://{self.host}:{self.port} closed the connection without an "
                                          f"answer ({type(err).__name__}: {err})") from err
                raise
            except BaseException:
                writer.close()
                raise
            if self.closed:
                writer.close()
            else:
                self.idle.append((reader, writer, time.monotonic()))
            return data
        raise ConnectionError("unreachable")

    def close(self) -> None:
        self.closed = True
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()
