"""gRPC over HTTP/2 as the proxy sees it (github.com/grpc/grpc doc/PROTOCOL-HTTP2.md).

The proxy forwards gRPC like any HTTP/2 exchange (trailers included); it speaks gRPC itself only when
it answers on its own:

- no router matches: ``UNIMPLEMENTED`` (12); no server, the backend down or failing: ``UNAVAILABLE``
  (14); an internal failure: ``INTERNAL`` (13). The answer is "Trailers-Only": one HEADERS frame
  ending the stream with ``:status 200``, ``content-type: application/grpc``, ``grpc-status`` and a
  percent-encoded ``grpc-message``, so clients see a gRPC status rather than an HTTP error page.
- ``grpc-timeout`` (``1*8DIGIT`` then one of ``H M S m u n``) is the call's deadline: once it passes,
  the upstream stream is cancelled and the client gets ``DEADLINE_EXCEEDED`` (4), in trailers when
  response headers went out already.
"""

from __future__ import annotations

from ..http.reply import Reply

__all__ = ["DEADLINE_EXCEEDED", "UNIMPLEMENTED", "UNAVAILABLE", "INTERNAL", "grpc_timeout", "grpc_reply",
           "grpc_code_for", "grpc_trailers", "percent_encode"]

DEADLINE_EXCEEDED = 4
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14

_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# the proxy's own HTTP errors as gRPC statuses, with Traefik's error texts as messages
_CODES = {404: (UNIMPLEMENTED, "404 page not found"), 503: (UNAVAILABLE, "no available server"),
          502: (UNAVAILABLE, "Bad Gateway"), 504: (UNAVAILABLE, "Gateway Timeout"),
          500: (INTERNAL, "Internal Server Error")}


def grpc_timeout(value: str) -> float | None:
    """Seconds of a ``grpc-timeout`` value, None when it is not one."""
    value = value.strip()
    if not 2 <= len(value) <= 9 or not value[:-1].isdigit() or value[-1] not in _UNITS:
        return None
    return int(value[:-1]) * _UNITS[value[-1]]


def percent_encode(message: str) -> str:
    """grpc-message encoding: bytes outside printable ASCII (and ``%``) as ``%XX`` of their UTF-8."""
    out = []
    for b in message.encode("utf-8"):
        out.append(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}")
    return "".join(out)


def grpc_trailers(code: int, message: str) -> list[tuple[str, str]]:
    return [("grpc-status", str(code)), ("grpc-message", percent_encode(message))]


def grpc_code_for(status: int) -> tuple[int, str]:
    """The gRPC status and message for one of the proxy's own HTTP errors."""
    return _CODES.get(status, (UNAVAILABLE if status >= 500 else INTERNAL, str(status)))


def grpc_reply(code: int, message: str) -> Reply:
    """A Trailers-Only answer (the HTTP/2 writer sends it as one HEADERS frame ending the stream)."""
    return Reply(200, [("content-type", "application/grpc"), *grpc_trailers(code, message)])
