"""The HTTP/2 health check of a connection to a server: ServersTransport ``forwardingTimeouts.readIdleTimeout``
and ``pingTimeout`` (Go's http2 Transport ReadIdleTimeout/PingTimeout, which Traefik sets).

When nothing has been read from the server for ``readIdleTimeout`` (with or without streams open), a PING
with fresh opaque data goes out; when its ACK has not come back within ``pingTimeout`` the connection is
lost (``on_lost``). Any input in between does not count: only the ACK does, as in Go. After an ACK the
next PING is due ``readIdleTimeout`` after the last read.

One timer per connection: reading only stores the time, and the timer, when it fires early, moves itself
to the new due time, so a busy connection costs no timer work per read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

__all__ = ["ReadIdleCheck"]


class ReadIdleCheck:
    __slots__ = ("loop", "read_idle", "ping_timeout", "send_ping", "on_lost", "last_read", "timer", "sent")

    def __init__(self, loop: asyncio.AbstractEventLoop, read_idle: float, ping_timeout: float,
                 send_ping: Callable[[bytes], None], on_lost: Callable[[], None]) -> None:
        self.loop = loop
        self.read_idle = read_idle
        self.ping_timeout = ping_timeout
        self.send_ping = send_ping
        self.on_lost = on_lost
        self.last_read = loop.time()
        self.timer: asyncio.TimerHandle | None = loop.call_at(self.last_read + read_idle, self._due)
        self.sent: bytes | None = None  # the opaque data of the PING waiting for its ACK

    def ack(self, data: bytes) -> None:
        """A PING ACK came: the one we wait for ends the wait (a stale or foreign one changes nothing)."""
        if self.sent is None or data != self.sent:
            return
        self.sent = None
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(self.last_read + self.read_idle, self._due)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.sent = None

    def _due(self) -> None:
        due = self.last_read + self.read_idle
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self._due)
            return
        self.sent = os.urandom(8)
        self.timer = self.loop.call_later(self.ping_timeout, self._no_ack)
        self.send_ping(self.sent)

    def _no_ack(self) -> None:
        self.timer = None
        self.sent = None
        self.on_lost()
