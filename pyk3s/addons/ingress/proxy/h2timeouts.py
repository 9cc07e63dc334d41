"""An entry point's ``transport.respondingTimeouts`` on HTTP/2 client connections, per stream, as Go's
http2 server applies ``http.Server``'s timeouts (which Traefik sets from them):

- ``readTimeout`` (60s): a request's body must have ended that long after its HEADERS came. When it
  has not, the request fails as a timed-out read does behind Traefik: the upstream is dropped and the
  client gets 504 (gRPC: ``DEADLINE_EXCEEDED``) or, once the answer's head went out, a reset stream
  (``INTERNAL_ERROR``). The rest of the body is acknowledged and dropped.
- ``writeTimeout`` (none): the answer must have been written that long after the request's HEADERS,
  DATA still waiting for the client's flow-control window included; else the stream is reset
  (``INTERNAL_ERROR``, Go's onWriteTimeout) and its upstream dropped.
- ``idleTimeout`` (180s): counted from when the last stream closed (or the connection opened); PINGs
  and other frames are no activity. Then a graceful GOAWAY (``H2ClientConnection.idle``).

The sweeper checks these once a second, as it does HTTP/1.1 connections' timeouts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from .h2server import H2ClientConnection

__all__ = ["enforce_stream_timeouts"]


def enforce_stream_timeouts(conn: H2ClientConnection, now: float, read: float, write: float) -> None:
    """End the streams of ``conn`` past the entry point's read or write timeout (0: none)."""
    if conn.closed:
        return
    if conn.streams:
        for ex in list(conn.streams.values()):
            age = now - ex.opened
            if write and age > write:
                ex.timed_out(False)
            elif read and not ex.req_done and age > read:
                ex.timed_out(True)
    if write and conn.answered:
        # answers complete on our side whose DATA still waits for the client's window
        for sid, opened in list(conn.answered.items()):
            if sid not in conn.outbox.queued:
                del conn.answered[sid]
            elif now - opened > write:
                del conn.answered[sid]
                conn.reset(sid, ErrorCodes.INTERNAL_ERROR)
                conn.exchange_gone()
