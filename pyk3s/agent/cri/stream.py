"""exec and attach of CRI containers: the kubelet asks the runtime for a streaming URL (CRI ``Exec`` /
``Attach``) and relays the caller's WebSocket to the runtime's streaming server, frame by frame.

The runtime speaks ``v4.channel.k8s.io``; a caller on ``v5`` sends the same frames plus "close stream"
(channel 255) messages, which v4 cannot carry: a closed stdin reaches the container when the session
ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import WSMsgType, web

from pyk3s.agent.kubelet.streams import status_message

__all__ = ["relay_stream"]

log = logging.getLogger("pyk3s.agent.kubelet")

UPSTREAM_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")
CLOSE_CHANNEL = 255


async def relay_stream(ws: web.WebSocketResponse, url: str) -> None:
    """Relay ``ws`` (already prepared) to the runtime's streaming ``url`` until either side ends."""
    try:
        async with aiohttp.ClientSession() as session, \
                session.ws_connect(url, protocols=UPSTREAM_PROTOCOLS, max_msg_size=0, autoping=True) as up:
            async def to_runtime() -> None:
                async for msg in ws:
                    if msg.type != WSMsgType.BINARY:
                        break
                    if msg.data[:1] == bytes([CLOSE_CHANNEL]):
                        continue
                    await up.send_bytes(msg.data)

            async def to_caller() -> None:
                async for msg in up:
                    if msg.type == WSMsgType.BINARY:
                        await ws.send_bytes(msg.data)
                    elif msg.type == WSMsgType.TEXT:
                        await ws.send_str(msg.data)
                    else:
                        break

            tasks = [asyncio.create_task(to_caller()), asyncio.create_task(to_runtime())]
            try:
                # the runtime's side ending (command done, status sent) ends the session
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in tasks:
                    t.cancel()
                for t in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await t
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("kubelet: streaming session %s failed: %s", url, exc)
        with contextlib.suppress(Exception):
            await ws.send_bytes(status_message(None, f"error talking to the container runtime: {exc}"))
    finally:
        await ws.close()
