"""Fire-and-forget copies of a request for mirroring services (spec 3.8); responses are discarded."""

from __future__ import annotations

import asyncio
import ssl

from ..http.request import HttpRequest
from ..routing.services import Target
from .heads import upstream_head

__all__ = ["send_mirror", "MIRROR_TIMEOUT"]

MIRROR_TIMEOUT = 10.0


async def send_mirror(target: Target, req: HttpRequest, body: list[bytes] | None, loop: asyncio.AbstractEventLoop) -> None:
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
        keep = req.keep_alive
        req.keep_alive = False
        head = upstream_head(req, target, False, req.body_mode if body is not None else "")
        req.keep_alive = keep
        head = head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        writer.write(head + (b"".join(body) if body else b"") + (b"0\r\n\r\n" if body is not None and req.body_mode == "chunked" else b""))
        await asyncio.wait_for(reader.read(-1), MIRROR_TIMEOUT)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()
