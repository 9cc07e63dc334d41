"""One upstream server: its UDP channel, its kept TCP connections, its failure count. A DNS-over-TLS
upstream has only its kept TLS connections: every query and health check goes over them."""

from __future__ import annotations

import asyncio
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

from ...wire import WireQuery
from .transport import IDS, TcpPool, UdpChannel

__all__ = ["Upstream"]

_U16 = struct.Struct(">H")


class _Exchange:
    """A query of the plugin's own (the dnspython path, health checks) waiting on the UDP channel."""

    __slots__ = ("fut", "qid", "sent")

    def __init__(self, fut: asyncio.Future[bytes]) -> None:
        self.fut = fut
        self.qid = 0
        self.sent = 0.0


class Upstream:
    """`exchange` asks it and waits; the forward lane sends through `udp` and hears back through the
    callbacks given here."""

    def __init__(self, host: str, port: int, *, timeout: float = 2.0, expire: float = 10.0,
                 lane_reply: Callable[[WireQuery, bytes], None] | None = None,
                 lane_error: Callable[[WireQuery, Exception], None] | None = None,
                 tls: ssl.SSLContext | None = None, server_name: str = "") -> None:
        self.host, self.port = host, port
        self.tls = tls is not None
        self.fails = 0
        self.timeout = timeout
        self._lane_reply = lane_reply
        self._lane_error = lane_error
        self.udp = UdpChannel(host, port, timeout, expire, self._reply, self._error)
        self.tcp = TcpPool(host, port, expire, tls, server_name)
        self.hists: dict[int, Any] = {}     # rcode -> the request duration histogram to this upstream

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    def _reply(self, w: Any, data: bytes) -> None:
        if type(w) is _Exchange:
            if not w.fut.done():
                w.fut.set_result(data)
        elif self._lane_reply is not None:
            self._lane_reply(w, data)

    def _error(self, w: Any, err: Exception) -> None:
        if type(w) is _Exchange:
            if not w.fut.done():
                w.fut.set_exception(err)
        elif self._lane_error is not None:
            self._lane_error(w, err)

    async def exchange(self, wire: bytes, tcp: bool) -> bytes:
        """The upstream's reply to `wire` (sent with an ID of its own, which the reply carries)."""
        if tcp or self.tls:
            qid = IDS.draw()
            async with asyncio.timeout(self.timeout):
                return await self.tcp.exchange(_U16.pack(qid) + wire[2:])
        w = _Exchange(asyncio.get_running_loop().create_future())
        self.udp.send(w, wire, time.monotonic())
        return await w.fut

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()
