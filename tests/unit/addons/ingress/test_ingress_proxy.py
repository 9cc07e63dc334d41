"""Proxy core through real HTTP: routing, forwarded headers, bodies, keep-alive, upgrades, bad input."""

from __future__ import annotations

import asyncio

from ingress_support import http, parse_response, service_yaml


def _route(match: str, svc: str = "whoami", name: str = "r", extra: str = "", mws: str = "") -> str:
    return f"""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}, namespace: default}}
spec:
  {extra}
  routes:
  - match: {match}
    kind: Rule
    services: [{{name: {svc}, port: 80}}]
    {mws}
---
"""


async def test_routes_to_backend_with_forwarded_headers(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("Host(`a.example.com`)"))
    r = await http(proxy.port, "/x/y?q=1;b=2", host="a.example.com:8000",
                   headers={"X-Forwarded-For": "6.6.6.6", "X-Real-Ip": "6.6.6.6", "Connection": "close, X-Custom",
                            "X-Custom": "dropme", "X-Keep": "yes"})
    assert r.status == 200
    seen = r.json()
    assert seen["url"] == "/x/y?q=1&b=2"
    h = {k.lower(): v for k, v in seen["headers"]}
    assert h["host"] == "a.example.com:8000"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-real-ip"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "a.example.com:8000"
    assert h["x-forwarded-port"] == "8000"
    assert "x-forwarded-server" in h
    assert "x-custom" not in h and h["x-keep"] == "yes"
    r = await http(proxy.port, "/", host="b.example.com")
    assert (r.status, r.body) == (404, b"404 page not found\n")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_no_available_server_503(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd.allowEmptyServices=true")
    proxy.load(service_yaml("whoami", backend.port, ready=False) + _route("Host(`a`)"))
    r = await http(proxy.port, "/", host="a")
    assert (r.status, r.body) == (503, b"no available server\n")


async def test_backend_down_is_502(make_proxy):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", port) + _route("Host(`a`)"))
    r = await http(proxy.port, "/", host="a")
    assert (r.status, r.body) == (502, b"Bad Gateway\n")


async def test_keepalive_pipelining_and_pooling(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("Host(`a`)"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    req = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    writer.write(req)
    data = await asyncio.wait_for(reader.read(-1), 5)
    writer.close()
    assert data.count(b"HTTP/1.1 200") == 3
    assert data.index(b'"/1"') < data.index(b'"/2"') < data.index(b'"/3"')
    assert backend.connections == 1  # one pooled upstream connection served all three


async def test_post_bodies_length_and_chunked(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("Host(`a`)"))
    r = await http(proxy.port, "/p", host="a", method="POST", body=b"hello world")
    assert r.json()["body"] == "hello world"
    raw = (b"POST /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    r = await http(proxy.port, raw=raw)
    seen = r.json()
    assert seen["body"] == "hello world"
    assert ("Transfer-Encoding", "chunked") in [tuple(x) for x in seen["headers"]]


async def test_streamed_chunked_response_and_head(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("Host(`a`)"))
    r = await http(proxy.port, "/stream", host="a")
    assert r.body == b"chunk0chunk1chunk2"
    r = await http(proxy.port, "/big", host="a")
    assert len(r.body) == 200_000
    r = await http(proxy.port, "/h", host="a", method="HEAD")
    assert r.status == 200 and r.body == b""


async def test_websocket_upgrade_tunnels_bytes(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("Host(`a`)"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                 b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(9), 5) == b"echo:ping"
    writer.close()
    h = {k.lower(): v for k, v in backend.requests[-1]["headers"]}
    assert h["upgrade"] == "websocket" and h["x-forwarded-proto"] == "ws"


async def test_malformed_requests_get_400_and_never_reach_backend(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + _route("PathPrefix(`/`)"))
    bad = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",
        b"GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n",
    ]
    for raw in bad:
        r = await http(proxy.port, raw=raw)
        assert r.status == 400, raw[:60]
    assert backend.requests == []
    r = await http(proxy.port, "/fine", host="a")
    assert r.status == 200


async def test_priority_and_tls_split(make_proxy, backend, backend2):
    proxy = await make_proxy()
    docs = (service_yaml("one", backend.port) + service_yaml("two", backend2.port)
            + _route("Host(`a`) && PathPrefix(`/api`)", "one", "long")
            + _route("Host(`a`)", "two", "short")
            + _route("PathPrefix(`/`)", "one", "secure", extra="tls: {}"))
    proxy.load(docs)
    assert (await http(proxy.port, "/api/x", host="a")).json()["name"] == "b1"
    assert (await http(proxy.port, "/other", host="a")).json()["name"] == "b2"
    # the TLS-only catch-all never serves plain HTTP
    assert (await http(proxy.port, "/", host="zzz")).status == 404


async def test_table_swap_keeps_serving(make_proxy, backend, backend2):
    proxy = await make_proxy()
    proxy.load(service_yaml("one", backend.port) + _route("Host(`a`)", "one"))
    assert (await http(proxy.port, "/", host="a")).json()["name"] == "b1"
    proxy.load(service_yaml("one", backend2.port) + _route("Host(`a`)", "one") + _route("Host(`b`) && Bad(`x`)", "one", "bad"))
    assert (await http(proxy.port, "/", host="a")).json()["name"] == "b2"
    rt = proxy.state.compiled.runtime.routers
    bad = next(v for k, v in rt.items() if k.startswith("default-bad-"))
    assert bad["status"] == "disabled" and "unsupported function: Bad" in bad["error"][0]


def test_parse_response_helper():
    assert parse_response(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody").body == b"body"


async def test_a_pool_unused_for_the_idle_timeout_is_dropped(make_proxy, backend):  # noqa: ANN001
    """One pool per backend address ever seen would grow with every pod that came and went: a pool with
    no idle connection for IDLE_TIMEOUT is retired and dropped, and a connection finishing on it closes."""
    from pyk3s.addons.ingress.proxy.upstream import IDLE_TIMEOUT

    proxy = await make_proxy()
    proxy.load(service_yaml("b", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes: [{match: "Host(`a`)", kind: Rule, services: [{name: b, port: 80}]}]
""")
    assert (await http(proxy.port, "/", host="a")).status == 200
    state = proxy.state
    (key, pool), = state.pools.items()
    (up,) = pool.idle
    now = state.loop.time()
    state.sweep(now)                                     # stamps the idle connection
    state.sweep(now + IDLE_TIMEOUT + 1)                   # it timed out and is closed: the pool is empty
    assert up.closed and key in state.pools and not pool.retired
    state.sweep(now + 2 * IDLE_TIMEOUT + 3)               # empty for IDLE_TIMEOUT: retired, dropped
    assert pool.retired and key not in state.pools
    assert (await http(proxy.port, "/", host="a")).status == 200     # a new pool for the same address
    new = state.pools[key]
    assert new is not pool and not new.retired and len(new.idle) == 1
    late = new.idle.pop()
    pool.put(late)                                       # finishing on a retired pool: closed, not kept
    assert late.closed and not pool.idle
