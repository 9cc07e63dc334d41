"""exec and attach of CRI containers: the kubelet asks the runtime for a streaming URL (CRI ``Exec`` /
``Attach``) and bridges the caller's WebSocket (``v5``/``v4.channel.k8s.io``) to the runtime's
streaming server over SPDY/3.1 (``v4.channel.k8s.io`` streams), which every CRI runtime serves.

SPDY carries what the v4 WebSocket protocol cannot: closing stdin alone. Channel 0 goes to the
``stdin`` stream and a v5 "close stdin" message ends it; channel 4 goes to ``resize``; the ``stdout``
and ``stderr`` streams come back as channels 1 and 2, and the ``error`` stream's status document (the
exit code) as the channel-3 message that ends the session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from pyk3s.agent.cri.client import CriError
from pyk3s.agent.kubelet.server import PROTOCOLS, status_response
from pyk3s.agent.kubelet.streams import StreamOptions, status_message
from pyk3s.api.spdy import DataReceived, SpdyConnection, StreamReset
from pyk3s.api.tasks import until_first_ends

__all__ = ["relay_stream", "serve_stream"]

log = logging.getLogger("pyk3s.agent.kubelet")

PROTOCOL = "v4.channel.k8s.io"
CLOSE_CHANNEL = 255
HANDSHAKE_TIMEOUT = 10.0


class StreamError(Exception):
    pass


async def _upgrade(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    u = urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port or 80), HANDSHAKE_TIMEOUT)
    path = u.path + (f"?{u.query}" if u.query else "")
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                 f"X-Stream-Protocol-Version: {PROTOCOL}\r\nContent-Length: 0\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANDSHAKE_TIMEOUT)
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 101 " not in status + " ":
        writer.close()
        raise StreamError(f"the runtime's streaming server answered {status!r}")
    return reader, writer


async def relay_stream(ws: web.WebSocketResponse, url: str, opts: StreamOptions) -> None:
    """Bridge ``ws`` (already prepared) to the runtime's streaming ``url`` until the command ends."""
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await _upgrade(url)
        conn = SpdyConnection(client=True)
        error_id = conn.open_stream({"streamtype": "error"})
        ids: dict[str, int] = {}
        for name, wanted in (("stdin", opts.stdin), ("stdout", opts.stdout), ("stderr", opts.stderr and not opts.tty),
                             ("resize", opts.tty)):
            if wanted:
                ids[name] = conn.open_stream({"streamtype": name})
        writer.write(conn.data_to_send())
        channel_of = {ids.get("stdout"): 1, ids.get("stderr"): 2}
        status = bytearray()
        w = writer

        async def to_runtime() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    break
                channel, payload = msg.data[0], msg.data[1:]
                if channel == 0 and "stdin" in ids and conn.can_send(ids["stdin"]):
                    conn.send_data(ids["stdin"], payload)
                elif channel == CLOSE_CHANNEL and payload[:1] == b"\x00" and "stdin" in ids \
                        and conn.can_send(ids["stdin"]):
                    conn.send_data(ids["stdin"], b"", fin=True)
                elif channel == 4 and "resize" in ids:
                    conn.send_data(ids["resize"], payload)
                w.write(conn.data_to_send())
                await w.drain()

        async def to_caller() -> None:
            while chunk := await reader.read(65536):
                for ev in conn.receive_data(chunk):
                    if isinstance(ev, DataReceived):
                        if ev.stream_id == error_id:
                            status.extend(ev.data)
                        elif ev.data and ev.stream_id in channel_of:
                            await ws.send_bytes(bytes([channel_of[ev.stream_id]]) + ev.data)
                    elif isinstance(ev, StreamReset) and ev.stream_id == error_id:
                        return
                pending = conn.data_to_send()
                if pending:
                    w.write(pending)

        # the runtime ends the session (status on the error stream, then the connection closes), or the
        # caller goes away
        await until_first_ends(asyncio.create_task(to_caller()), asyncio.create_task(to_runtime()))
        if not ws.closed:
            await ws.send_bytes(b"\x03" + bytes(status) if status else status_message(0))
    except (OSError, StreamError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        log.warning("kubelet: streaming session %s failed: %s", url, exc)
        with contextlib.suppress(Exception):
            await ws.send_bytes(status_message(None, f"error talking to the container runtime: {exc}"))
    finally:
        if writer is not None:
            writer.close()
        await ws.close()


async def serve_stream(req: web.Request, client: Any, container_id: str, running: bool,
                       command: list[str] | None) -> web.StreamResponse:
    """The kubelet API's exec (``command``) or attach (None) of a CRI container."""
    if not running:
        return status_response(400, f"container {req.match_info['container']} is not running")
    if command is not None and not command:
        return status_response(400, "you must specify at least 1 command")
    o = StreamOptions.from_query(req.query)
    try:
        if command is not None:
            url = await client.exec_url(container_id, command, tty=o.tty, stdin=o.stdin, stdout=o.stdout,
                                        stderr=o.stderr)
        else:
            url = await client.attach_url(container_id, tty=o.tty, stdin=o.stdin, stdout=o.stdout, stderr=o.stderr)
    except CriError as exc:
        return status_response(400 if exc.code in ("NOT_FOUND", "FAILED_PRECONDITION") else 500, str(exc))
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
    await ws.prepare(req)
    await relay_stream(ws, url, o)
    return ws
