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
    ctx = None
    if target.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(target.host, target.port, ssl=ctx), MIRROR_TIMEOUT)
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
