"""Fire-and-forget copies of a request for mirroring services (spec 3.8); responses are discarded.

Mirrors always get HTTP/1.1, whatever the scheme of their servers. A copy is the request as it is when
the mirroring service takes it (its head is built at once): what middlewares of the main service change
afterwards is not in it, as Traefik clones the request for each mirror."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Coroutine

from ..http.request import HttpRequest
from ..routing.services import Target
from .heads import upstream_head

__all__ = ["send_mirror", "MIRROR_TIMEOUT"]

MIRROR_TIMEOUT = 10.0


def send_mirror(target: Target, req: HttpRequest, body: list[bytes] | None) -> Coroutine[object, object, None]:
    """The copy of ``req`` (with ``body``, None: without one) for ``target``, to be run as a task."""
    keep = req.keep_alive
    req.keep_alive = False
    head = upstream_head(req, target, False, req.body_mode if body is not None else "")
    req.keep_alive = keep
    head = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    chunked = body is not None and req.body_mode == "chunked"
    data = b"".join([b"%x\r\n%s\r\n" % (len(d), d) for d in body or ()] if chunked else body or ())
    return _send(target, head + data + (b"0\r\n\r\n" if chunked else b""))


async def _send(target: Target, data: bytes) -> None:
    ctx: ssl.SSLContext | None = None
    hostname = None
    if target.scheme == "https":  # the mirror's ServersTransport, as for any request to that server
        transport = target.transport
        ctx = transport.ssl_context if transport is not None else ssl.create_default_context()
        hostname = (transport.server_name if transport is not None else "") or target.host
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port, ssl=ctx,
                                                                        server_hostname=hostname), MIRROR_TIMEOUT)
    except (OSError, TimeoutError):
        return
    try:
        writer.write(data)
        await asyncio.wait_for(reader.read(-1), MIRROR_TIMEOUT)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
