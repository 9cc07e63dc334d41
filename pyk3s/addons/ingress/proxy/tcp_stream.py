"""Relay through Python for routed TCP connections with a TLS end pyk3s itself speaks: a route that
terminates TLS (the client side), or servers dialed with ``tls: true`` (the server side).

Two asyncio protocols pass bytes to each other with flow control (a peer that cannot keep up pauses
the other's reading). The server side is set up first (its TLS handshake included, and the transport's
``peerCertURI``/``peerCertSANs`` checked), then the client side, as Traefik's proxy dials before its
first read starts the client handshake. Data that arrives before the other side is ready waits.
End of a connection: a FIN is passed on (``write_eof``) where the other side is plain TCP; a TLS side
is closed instead (close_notify). After the first end the termination delay applies, as in
``tcp_relay.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import cast

from ..config.dynamic_tcp import TLSClientConfig
from .tcp_dial import check_peer

__all__ = ["StreamRelay"]

HANDSHAKE_TIMEOUT = 10.0


class _Side(asyncio.Protocol):
    __slots__ = ("relay", "transport", "peer", "pending", "eof", "moved")

    def __init__(self, relay: StreamRelay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.pending: list[bytes] = []
        self.eof = False
        self.moved = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)

    def flush_pending(self) -> None:
        """The peer is ready: send what arrived meanwhile (and a FIN that came with it)."""
        peer = self.peer
        if peer is None or peer.transport is None:
            return
        for data in self.pending:
            peer.transport.write(data)
        self.pending.clear()
        if self.eof:
            self.relay.pass_eof(self, peer)

    def data_received(self, data: bytes) -> None:
        self.moved += len(data)
        peer = self.peer
        if peer is None or peer.transport is None:
            self.pending.append(data)
        else:
            peer.transport.write(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return True  # passed on by flush_pending
        return self.relay.pass_eof(self, peer)

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close()


class StreamRelay:
    """Relay a client socket and a connected server socket, either or both with TLS."""

    __slots__ = ("loop", "client", "server", "closed", "delay", "timer", "on_close", "task", "ends", "error")

    def __init__(self, loop: asyncio.AbstractEventLoop, termination_delay: float,
                 on_close: Callable[[StreamRelay, str], None]) -> None:
        self.loop = loop
        self.client = _Side(self)
        self.server = _Side(self)
        self.client.peer, self.server.peer = self.server, self.client
        self.closed = False
        self.delay = termination_delay
        self.timer: asyncio.TimerHandle | None = None
        self.on_close = on_close
        self.task: asyncio.Task[None] | None = None
        self.ends = 0
        self.error = ""

    @property
    def bytes_up(self) -> int:
        return self.client.moved

    @property
    def bytes_down(self) -> int:
        return self.server.moved

    def start(self, client_sock: socket.socket, client_tls: ssl.SSLContext | None, server_sock: socket.socket,
              server_tls: TLSClientConfig | None, server_ctx: ssl.SSLContext | None) -> None:
        self.task = self.loop.create_task(self._setup(client_sock, client_tls, server_sock, server_tls, server_ctx))

    async def _setup(self, client_sock: socket.socket, client_tls: ssl.SSLContext | None, server_sock: socket.socket,
                     server_tls: TLSClientConfig | None, server_ctx: ssl.SSLContext | None) -> None:
        loop = self.loop
        try:
            if server_ctx is not None and server_tls is not None:
                await loop.create_connection(lambda: self.server, sock=server_sock, ssl=server_ctx,
                                             server_hostname=server_tls.server_name or None,
                                             ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
                transport = self.server.transport
                sslobj = transport.get_extra_info("ssl_object") if transport is not None else None
                problem = check_peer(server_tls, sslobj.getpeercert(binary_form=True) if sslobj is not None else None)
                if problem:
                    raise ssl.SSLError(f"server certificate refused: {problem}")
            else:
                await loop.create_connection(lambda: self.server, sock=server_sock)
            if self.closed:
                client_sock.close()
                return
            await loop.connect_accepted_socket(lambda: self.client, client_sock, ssl=client_tls,
                                               ssl_handshake_timeout=HANDSHAKE_TIMEOUT if client_tls else None)
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as err:
            self.error = str(err) or type(err).__name__
            if self.client.transport is None:
                client_sock.close()
            if self.server.transport is None:
                server_sock.close()
            self.close()
            return
        self.server.flush_pending()
        self.client.flush_pending()

    def pass_eof(self, src: _Side, dst: _Side) -> bool:
        """``src`` sent FIN: pass it to ``dst`` and start the termination delay. Returns what
        eof_received should (True keeps the transport open for the other direction)."""
        transport = dst.transport
        self.ends += 1
        if self.ends >= 2 or transport is None or transport.is_closing() or dst.eof:
            self.close()
            return False
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()  # TLS: close_notify, then the connection closes
        if self.delay >= 0 and self.timer is None:
            self.timer = self.loop.call_later(self.delay, self.close)
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.close()
        self.on_close(self, self.error)
