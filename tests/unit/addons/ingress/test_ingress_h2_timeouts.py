"""An entry point's ``transport.respondingTimeouts`` on HTTP/2 client connections, as Go's http2 server
applies them: readTimeout bounds a request's body, writeTimeout its answer, idleTimeout counts from the
last stream (PINGs are no activity). The sweeper is driven here with the loop's clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2_support import H2Client, RawH2
from hyperframe.frame import GoAwayFrame, HeadersFrame, RstStreamFrame
from ingress_support import EchoBackend, service_yaml

from pyk3s.addons.ingress.proxy.h2server import H2ClientConnection

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes: [{match: Host(`a`), kind: Rule, services: [{name: b, port: 80}]}]
---
"""


async def _proxy(make_proxy, backend_port: int, *timeouts: str):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                             *(f"--entrypoints.web.transport.respondingTimeouts.{t}" for t in timeouts))
    proxy.load(service_yaml("b", backend_port) + ROUTE)
    return proxy


async def _sweep_until(proxy, done: Callable[[], bool], seconds: float) -> bool:
    """Run the proxy's sweeper (as its once-a-second task would, more often) until ``done`` or ``seconds``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        proxy.state.sweep(loop.time())
        if done():
            return True
        await asyncio.sleep(0.1)
    return done()


def _conn(proxy) -> H2ClientConnection:
    conns = list(proxy.state.h2_clients)
    assert len(conns) == 1
    return conns[0]


async def test_read_timeout_bounds_a_request_body_that_does_not_end(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend.port, "readTimeout=1s")
    c = await H2Client.connect(proxy.port)
    try:
        sid = c.start("/upload", "a", "POST", body=b"part", end=False)  # the body never ends
        done = c.done[sid]
        assert await _sweep_until(proxy, done.is_set, 5.0)
        r = c.responses[sid]
        assert r.status == 504 and r.reset is None
        assert not c.closed.is_set()  # only the stream failed: the connection serves on
        assert (await c.request("/after", "a")).status == 200
    finally:
        c.close()


@pytest.mark.timing_sensitive
async def test_read_timeout_leaves_a_complete_request_waiting_for_its_answer(make_proxy):
    silent = await EchoBackend("silent", silent=True).start()
    try:
        proxy = await _proxy(make_proxy, silent.port, "readTimeout=1s")
        c = await H2Client.connect(proxy.port)
        sid = c.start("/", "a", "POST", body=b"whole", end=True)
        assert not await _sweep_until(proxy, c.done[sid].is_set, 1.8)
        assert sid in _conn(proxy).streams
        c.close()
    finally:
        silent.close()


async def test_write_timeout_resets_a_stream_not_answered_in_time(make_proxy):
    silent = await EchoBackend("silent", silent=True).start()
    try:
        proxy = await _proxy(make_proxy, silent.port, "writeTimeout=1s")
        c = await H2Client.connect(proxy.port)
        sid = c.start("/", "a")
        assert await _sweep_until(proxy, c.done[sid].is_set, 5.0)
        assert c.responses[sid].reset == 2  # INTERNAL_ERROR, as Go's http2 server
        assert not _conn(proxy).streams
        c.close()
    finally:
        silent.close()


async def test_write_timeout_covers_an_answer_waiting_for_the_client_window(make_proxy, backend):
    """The backend answered whole, but the client grants no window: the queued rest is reset in time."""
    proxy = await _proxy(make_proxy, backend.port, "writeTimeout=1s")
    raw = await RawH2.connect(proxy.port)
    cc = H2Connection(H2Configuration(client_side=True))
    cc.initiate_connection()
    cc.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/big")],
                    end_stream=True)
    raw.send(cc.data_to_send())  # and never a WINDOW_UPDATE: 64 KiB of the 200 KB can go out
    try:
        first = await raw.frames(timeout=1.0, until_goaway=False)
        assert any(isinstance(f, HeadersFrame) and f.stream_id == 1 for f in first)
        conn = _conn(proxy)
        assert not conn.streams and 1 in conn.outbox.queued  # the exchange is over, its DATA is not
        assert await _sweep_until(proxy, lambda: not conn.outbox.queued, 5.0)
        frames = await raw.frames(timeout=1.0, until_goaway=False)
        assert any(isinstance(f, RstStreamFrame) and f.stream_id == 1 and f.error_code == 2 for f in frames)
    finally:
        raw.close()


@pytest.mark.timing_sensitive
async def test_pings_do_not_keep_an_idle_connection_open(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend.port, "idleTimeout=1s")
    c = await H2Client.connect(proxy.port)
    try:
        assert (await c.request("/", "a")).status == 200

        async def ping() -> None:
            for i in range(30):
                c.conn.ping(b"%08d" % i)
                c.writer.write(c.conn.data_to_send())
                await asyncio.sleep(0.1)

        pinger = asyncio.get_running_loop().create_task(ping())
        assert await _sweep_until(proxy, c.closed.is_set, 4.0)
        pinger.cancel()
        assert c.goaway is not None and c.goaway.error_code == 0
    finally:
        c.close()


@pytest.mark.timing_sensitive
async def test_an_open_stream_keeps_the_connection_past_the_idle_timeout(make_proxy):
    silent = await EchoBackend("silent", silent=True).start()
    try:
        proxy = await _proxy(make_proxy, silent.port, "idleTimeout=1s", "readTimeout=0")
        raw = await RawH2.connect(proxy.port)
        cc = H2Connection(H2Configuration(client_side=True))
        cc.initiate_connection()
        cc.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/")],
                        end_stream=True)
        raw.send(cc.data_to_send())
        await asyncio.sleep(0.1)
        conn = _conn(proxy)
        assert not await _sweep_until(proxy, lambda: conn.goaway_at > 0, 1.8)
        frames = await raw.frames(timeout=0.2, until_goaway=False)
        assert not any(isinstance(f, GoAwayFrame) for f in frames)
        raw.close()
    finally:
        silent.close()
