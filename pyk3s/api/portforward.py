"""``pods/portforward``: kubectl's SPDY/3.1 and the Python clients' channel WebSocket (spec 8.6, 8.7).

Three ways in, one way out. kubectl 1.32 first sends a WebSocket upgrade with the subprotocol
``SPDY/3.1+portforward.k8s.io`` (SPDY frames inside binary messages) and otherwise falls back to
``POST`` with ``Upgrade: SPDY/3.1`` (SPDY on the raw socket). Per local connection it opens an ``error``
and a ``data`` stream carrying ``streamtype``, ``port`` and ``requestid`` headers. The Python client
sends ``GET ?ports=80,443`` as a ``v4``/``v5.channel.k8s.io`` WebSocket: for port i, channel 2i is data
and 2i+1 is errors, and each channel first carries its port (16 bits, little-endian).

Each data connection becomes one kubelet ``/portForward?port=N`` WebSocket
(:meth:`KubeletProxy.open_port`), so the pod can live on any node. A failure (connection refused)
goes back on the error stream as ``error forwarding port N to pod NAME_NS, uid UID: ...``, the
kubelet's wording, which kubectl prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from pyk3s.api.proxy import KubeletProxy, ProxyError, status_body
from pyk3s.api.spdy import (
    DataReceived,
    GoAwayStatus,
    SpdyConnection,
    SpdyProtocolError,
    StreamOpened,
    StreamReset,
)
from pyk3s.api.tasks import stop_tasks, until_first_ends

__all__ = ["CHANNEL_PROTOCOLS", "SPDY_TUNNEL_PROTOCOL", "SpdyPortForward", "serve_portforward"]

log = logging.getLogger("pyk3s.api.portforward")
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
INBOUND_CHUNKS = 64  # queued client->pod chunks per connection before the session stops reading
PAUSE_BYTES, RESUME_BYTES = 1 << 20, 256 << 10


def _json(status: dict) -> web.Response:
    return web.Response(status=status["code"], body=json.dumps(status).encode(), content_type="application/json")


def _forward_error(pod: dict, port: int | str, message: str) -> str:
    meta = pod.get("metadata") or {}
    full_name = f"{meta.get('name', '')}_{meta.get('namespace', '')}"
    return f"error forwarding port {port} to pod {full_name}, uid {meta.get('uid', '')}: {message}"


async def serve_portforward(request: web.Request, proxy: KubeletProxy, namespace: str,
                            name: str) -> web.StreamResponse:
    """Answer an authorized ``pods/portforward`` request in whichever protocol the client asked for."""
    upgrade = request.headers.get("Upgrade", "").strip().lower()
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    stream_versions = [p.strip() for v in request.headers.getall("X-Stream-Protocol-Version", ())
                       for p in v.split(",")]
    channel = next((p for p in offered if p in CHANNEL_PROTOCOLS), None)
    if upgrade == "websocket" and SPDY_TUNNEL_PROTOCOL in offered:
        mode = "tunnel"
    elif upgrade == "spdy/3.1":
        if PORTFORWARD_PROTOCOL not in stream_versions:
            return _json(status_body(400, "BadRequest", (
                f"pyk3s: port-forward: unable to negotiate protocol: server supports {PORTFORWARD_PROTOCOL}, "
                f"client offered {', '.join(stream_versions) or 'none'}")))
        mode = "spdy"
    elif upgrade == "websocket" and channel:
        mode = "channel"
    else:
        return _json(status_body(400, "BadRequest", (
            f"pyk3s: port-forward needs a connection upgrade: SPDY/3.1 ({PORTFORWARD_PROTOCOL}), WebSocket "
            f"{SPDY_TUNNEL_PROTOCOL}, or WebSocket {' or '.join(CHANNEL_PROTOCOLS)} with ?ports=")))
    ports: list[int] = []
    if mode == "channel":
        try:
            ports = [int(p) for v in request.query.getall("ports", ()) for p in v.split(",") if p.strip()]
            if not ports or not all(0 < p < 65536 for p in ports):
                raise ValueError
        except ValueError:
            return _json(status_body(400, "BadRequest", "pyk3s: port-forward: query parameter ports must "
                                     "list ports 1-65535 (ports=80,443)"))
    try:
        pod = await proxy.pod(namespace, name)
        await proxy.kubelet_base(pod)  # fail before the upgrade if the pod has no reachable node
    except ProxyError as err:
        return _json(status_body(err.code, err.reason, err.message))
    if mode == "channel":
        return await _serve_channels(request, proxy, pod, ports, channel or CHANNEL_PROTOCOLS[1])
    if mode == "tunnel":
        return await _serve_spdy_tunnel(request, proxy, pod)
    return await _serve_spdy_upgrade(request, proxy, pod)


# -- SPDY ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pair:
    """One forwarded connection: kubectl's error stream and data stream with the same request id."""

    request_id: str
    port_text: str = ""
    error_id: int = 0
    data_id: int = 0
    inbound: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(INBOUND_CHUNKS))
    task: asyncio.Task | None = None
    finished: bool = False


class SpdyPortForward:
    """One kubectl port-forward session over any byte transport: ``await feed(bytes)`` what arrives,
    frames go out through ``write``; ``close()`` ends every forwarded connection."""

    def __init__(self, proxy: KubeletProxy, pod: dict, write: Callable[[bytes], Awaitable[None]]) -> None:
        self.proxy = proxy
        self.pod = pod
        self.conn = SpdyConnection(client=False)
        self._write = write
        self._lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self._tasks: set[asyncio.Task] = set()

    async def flush(self) -> None:
        async with self._lock:
            out = self.conn.data_to_send()
            if out:
                await self._write(out)

    async def feed(self, data: bytes) -> bool:
        """Handle bytes from kubectl; False once the session cannot go on."""
        try:
            events = self.conn.receive_data(data)
        except SpdyProtocolError as err:
            log.warning("api/portforward: %s", err)
            self.conn.goaway(GoAwayStatus.PROTOCOL_ERROR)
            await self.flush()
            return False
        for ev in events:
            if isinstance(ev, StreamOpened):
                self._opened(ev)
            elif isinstance(ev, DataReceived):
                pair = self._by_stream.get(ev.stream_id)
                if pair is not None and ev.stream_id == pair.data_id and not pair.finished:
                    if ev.data:
                        await pair.inbound.put(ev.data)
                    if ev.fin:
                        await pair.inbound.put(None)
            elif isinstance(ev, StreamReset):
                pair = self._by_stream.pop(ev.stream_id, None)
                if pair is not None and ev.stream_id == pair.data_id and pair.task is not None:
                    pair.task.cancel()
        await self.flush()
        return True

    def _opened(self, ev: StreamOpened) -> None:
        kind = ev.header("streamtype")
        self.conn.reply(ev.stream_id)
        if kind not in ("error", "data"):
            log.warning("api/portforward: stream %d has invalid streamType %r", ev.stream_id, kind)
            self.conn.reset_stream(ev.stream_id)
            return
        # clients older than requestID pair a data stream with the error stream opened just before it
        request_id = ev.header("requestid") or str(ev.stream_id if kind == "error" else ev.stream_id - 2)
        pair = self._pairs.setdefault(request_id, _Pair(request_id))
        pair.port_text = ev.header("port") or pair.port_text
        if kind == "error":
            pair.error_id = ev.stream_id
        else:
            pair.data_id = ev.stream_id
        self._by_stream[ev.stream_id] = pair
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair))
            self._tasks.add(pair.task)
            pair.task.add_done_callback(self._tasks.discard)

    async def _forward(self, pair: _Pair) -> None:
        error: str | None = None
        backend: aiohttp.ClientWebSocketResponse | None = None
        try:
            try:
                port = int(pair.port_text)
                if not 0 < port < 65536:
                    raise ValueError
            except ValueError:
                error = f'pyk3s: port-forward: invalid port header "{pair.port_text}"'
            else:
                try:
                    backend = await self.proxy.open_port(self.pod, port)
                except ProxyError as err:
                    error = _forward_error(self.pod, port, err.message)
                else:
                    kubelet_error = await self._pump(pair, backend)
                    if kubelet_error:
                        error = _forward_error(self.pod, port, kubelet_error)
        finally:
            pair.finished = True
            while not pair.inbound.empty():  # wakes a feed() blocked on a full queue
                pair.inbound.get_nowait()
            self._pairs.pop(pair.request_id, None)
            self._by_stream.pop(pair.error_id, None)
            self._by_stream.pop(pair.data_id, None)
            if backend is not None:
                await backend.close()
            with contextlib.suppress(Exception):
                if error and self.conn.can_send(pair.error_id):
                    self.conn.send_data(pair.error_id, error.encode())
                for sid in (pair.data_id, pair.error_id):
                    if self.conn.can_send(sid):
                        self.conn.send_data(sid, b"", fin=True)
                await self.flush()

    async def _pump(self, pair: _Pair, backend: aiohttp.ClientWebSocketResponse) -> str | None:
        """Copy both ways until the pod's side ends; the kubelet's error text if it reported one."""

        async def to_pod() -> None:
            while (chunk := await pair.inbound.get()) is not None:
                await backend.send_bytes(chunk)
            await backend.send_bytes(b"")

        up = asyncio.create_task(to_pod())
        try:
            async for msg in backend:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    return msg.data
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    break
                if not self.conn.can_send(pair.data_id):
                    break
                self.conn.send_data(pair.data_id, msg.data)
                await self.flush()
            return None
        finally:
            await stop_tasks(up)

    async def run(self, incoming: AsyncIterator[bytes]) -> None:
        try:
            async for data in incoming:
                if not await self.feed(data):
                    break
        finally:
            await self.close()

    async def close(self) -> None:
        await stop_tasks(*self._tasks)


async def _serve_spdy_tunnel(request: web.Request, proxy: KubeletProxy, pod: dict) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(SPDY_TUNNEL_PROTOCOL,), max_msg_size=0, compress=False, autoping=True)
    await ws.prepare(request)

    async def incoming() -> AsyncIterator[bytes]:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            yield msg.data

    session = SpdyPortForward(proxy, pod, ws.send_bytes)
    with contextlib.suppress(ConnectionError):
        await session.run(incoming())
    await ws.close()
    return ws


class _RawUpgradeReader:
    """Takes the place of aiohttp's payload parser after a ``101``: bytes go to a queue, and reading
    pauses while too much waits in it."""

    def __init__(self, protocol: web.RequestHandler) -> None:
        self._protocol = protocol
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending = 0
        self._paused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._queue.put_nowait(bytes(data))
        self._pending += len(data)
        if self._pending > PAUSE_BYTES and not self._paused:
            self._paused = True
            self._protocol.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self._queue.put_nowait(None)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (data := await self._queue.get()) is not None:
            self._pending -= len(data)
            if self._paused and self._pending < RESUME_BYTES:
                self._paused = False
                self._protocol.resume_reading()
            yield data


async def _serve_spdy_upgrade(request: web.Request, proxy: KubeletProxy, pod: dict) -> web.StreamResponse:
    resp = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": PORTFORWARD_PROTOCOL})
    resp.force_close()
    await resp.prepare(request)
    protocol = request.protocol
    transport = request.transport
    if transport is None:
        return resp
    reader = _RawUpgradeReader(protocol)
    protocol.set_parser(reader)  # type: ignore[arg-type]
    protocol.keep_alive(False)

    async def write(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("pyk3s: port-forward: client connection closed")
        transport.write(data)
        if transport.get_write_buffer_size() > PAUSE_BYTES:
            await protocol._drain_helper()  # noqa: SLF001 - the raw socket's own flow control

    session = SpdyPortForward(proxy, pod, write)
    with contextlib.suppress(ConnectionError):
        await session.run(reader.chunks())
    return resp


# -- channel WebSocket (Python clients) -----------------------------------------------------------


async def _serve_channels(request: web.Request, proxy: KubeletProxy, pod: dict, ports: list[int],
                          protocol: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(protocol,), max_msg_size=0, compress=False, autoping=True)
    await ws.prepare(request)
    queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(INBOUND_CHUNKS) for _ in ports]
    ended = [False] * len(ports)
    for i, port in enumerate(ports):
        head = port.to_bytes(2, "little")
        await ws.send_bytes(bytes([2 * i]) + head)
        await ws.send_bytes(bytes([2 * i + 1]) + head)

    async def one_port(i: int, port: int) -> None:
        backend = None
        error = None
        try:
            backend = await proxy.open_port(pod, port)
        except ProxyError as err:
            error = _forward_error(pod, port, err.message)
        if backend is not None:

            async def to_pod() -> None:
                while (chunk := await queues[i].get()) is not None:
                    await backend.send_bytes(chunk)

            up = asyncio.create_task(to_pod())
            try:
                async for msg in backend:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        error = _forward_error(pod, port, msg.data)
                        break
                    if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                        break
                    await ws.send_bytes(bytes([2 * i]) + msg.data)
            finally:
                await stop_tasks(up)
                await backend.close()
        ended[i] = True
        if error:
            await ws.send_bytes(bytes([2 * i + 1]) + error.encode())

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            ch = msg.data[0] if msg.data else 255
            if ch % 2 == 0 and ch // 2 < len(ports) and len(msg.data) > 1 and not ended[ch // 2]:
                await queues[ch // 2].put(msg.data[1:])

    reader = asyncio.create_task(from_client())
    forwards = asyncio.gather(*(one_port(i, p) for i, p in enumerate(ports)), return_exceptions=True)
    try:
        # the client learns that the pod closed its side only when the WebSocket closes
        await until_first_ends(reader, forwards)
    finally:
        await ws.close()
    return ws
