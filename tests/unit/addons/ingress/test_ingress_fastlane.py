"""The proxy's fast lane: which requests take it, and that they reach the backend exactly as through the
general path (byte-identical upstream heads), including stale pooled connections and table swaps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ingress_support import service_yaml

from pyk3s.addons.ingress.proxy.client import ClientConnection
from pyk3s.addons.ingress.proxy.fastlane import FastExchange
from pyk3s.addons.ingress.proxy.heads import upstream_head
from pyk3s.addons.ingress.proxy.upstream import UpstreamConnection

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def _route(match: str, svc: str = "one", name: str = "r", priority: int = 0, mws: str = "") -> str:
    prio = f"\n    priority: {priority}" if priority else ""
    return f"""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}, namespace: default}}
spec:
  routes:
  - match: {match}
    kind: Rule{prio}
    services: [{{name: {svc}, port: 80}}]
    {mws}
---
"""


AUTH_MW = """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: default}
spec: {stripPrefix: {prefixes: [/api]}}
---
"""


class Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("10.0.0.7", 41000), "sockname": ("127.0.0.1", 80)}.get(name, default)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _wired(make_proxy: Any, docs: str) -> tuple[ClientConnection, Sink, Sink, Any]:
    """A client connection and one pooled upstream connection, both on in-memory transports."""
    proxy = await make_proxy()
    proxy.load(docs)
    state = proxy.state
    client = ClientConnection(state, "web", False, None)
    client_t = Sink()
    client.connection_made(client_t)
    svc = next(s for s in state.compiled.services.values() if getattr(s, "active", None))
    pool = state.pool(svc.active[0])
    up = UpstreamConnection(pool)
    up_t = Sink()
    up.connection_made(up_t)
    pool.put(up)
    return client, client_t, up_t, svc.active[0]


def _general_head(client: ClientConnection, raw: bytes, target: Any) -> bytes:
    """What the general path sends for this request head."""
    seen: dict[str, Any] = {}

    class Collect:
        def on_url(self, url: bytes) -> None:
            seen["url"] = seen.get("url", b"") + url

        def on_header(self, k: bytes, v: bytes) -> None:
            seen.setdefault("headers", []).append((k, v))

    import httptools
    p = httptools.HttpRequestParser(Collect())
    p.feed_data(raw)
    ex = client.general_exchange(p.get_method(), seen["url"], seen.get("headers", []))
    ex.req.upgrade = p.should_upgrade()
    return upstream_head(ex.req, target, client.trusted, ex.req.body_mode)


FAST = [
    b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /x/y?q=1&z=%20 HTTP/1.1\r\nHost: A.Example:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
    b"GET /p HTTP/1.1\r\nhost: a.example\r\nConnection: keep-alive\r\nCookie: a=b\r\nX-Other: 1\r\n\r\n",
    b"GET /~user HTTP/1.1\r\nHost: a.example.\r\nAuthorization: Basic dGVzdDp0ZXN0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
]
GENERAL = [
    b"POST / HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi",
    b"HEAD / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a.example\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\n\r\n",
    b"GET /?a;b HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /? HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nTE: trailers\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    # paths Traefik's entry point sanitizes before routing (escapes normalized, dot segments removed)
    b"GET /%7Euser HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET /a/../b HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"GET //b HTTP/1.1\r\nHost: a.example\r\n\r\n",
]


@pytest.mark.parametrize("raw", FAST)
async def test_fast_lane_head_equals_general_path(make_proxy, raw):
    client, client_t, up_t, target = await _wired(make_proxy, service_yaml("one", 9) + _route("Host(`a.example`)"))
    client.data_received(raw)
    assert len(client.queue) == 1 and isinstance(client.queue[0], FastExchange)
    assert b"".join(up_t.data) == _general_head(client, raw, target)


@pytest.mark.parametrize("raw", GENERAL)
async def test_other_requests_take_the_general_path(make_proxy, raw):
    client, client_t, up_t, target = await _wired(make_proxy, service_yaml("one", 9) + _route("Host(`a.example`)"))
    client.data_received(raw)
    assert not any(isinstance(ex, FastExchange) for ex in client.queue)


@pytest.mark.parametrize("docs", [
    # a header-dependent router above the Host-only one decides for some requests
    _route("Host(`a.example`)") + _route("Host(`a.example`) && Header(`X-A`, `1`)", name="p", priority=100),
    # a route with a middleware
    AUTH_MW + _route("Host(`a.example`)", mws="middlewares: [{name: strip}]"),
    # a rule reading the method
    _route("Method(`GET`)"),
])
async def test_routes_that_need_more_than_the_host_stay_general(make_proxy, docs):
    client, client_t, up_t, target = await _wired(make_proxy, service_yaml("one", 9) + docs)
    client.data_received(FAST[0])
    assert not any(isinstance(ex, FastExchange) for ex in client.queue)


async def test_host_only_rules_above_take_the_fast_lane(make_proxy):
    docs = (service_yaml("one", 9) + _route("Host(`a.example`) || HostRegexp(`^b\\.`)") +
            _route("Host(`other.example`) && PathPrefix(`/x`)", name="o", priority=1000))
    client, client_t, up_t, target = await _wired(make_proxy, docs)
    client.data_received(FAST[0])
    assert isinstance(client.queue[0], FastExchange)


async def test_response_relayed_raw_and_connection_kept(make_proxy):
    client, client_t, up_t, target = await _wired(make_proxy, service_yaml("one", 9) + _route("Host(`a.example`)"))
    for _ in range(3):
        client.data_received(FAST[0])
        ex = client.queue[0]
        assert isinstance(ex, FastExchange)
        ex.up.data_received(OK)
        assert not client.queue and not client_t.closed
    assert b"".join(client_t.data) == OK * 3
    client.data_received(FAST[4])  # Connection: close
    client.queue[0].up.data_received(OK)
    assert client_t.closed


async def _read_response(reader: asyncio.StreamReader) -> Any:
    from ingress_support import parse_response

    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    return parse_response(head + await reader.readexactly(length))


async def test_fast_lane_with_real_backend_keepalive(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("one", backend.port) + _route("Host(`a`)"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    for i in range(5):
        writer.write(b"GET /%d HTTP/1.1\r\nHost: a\r\nX-Keep: 1\r\n\r\n" % i)
        r = await _read_response(reader)
        seen = {k.lower(): v for k, v in r.json()["headers"]}
        assert (r.status, r.json()["url"]) == (200, f"/{i}")
        assert seen["x-keep"] == "1" and seen["x-forwarded-for"] == "127.0.0.1" and seen["host"] == "a"
    assert backend.connections == 1
    writer.close()


async def test_stale_pooled_connection_is_retried_on_a_fresh_one(make_proxy):
    """The backend answers the first request of each connection and closes on the second, as a server
    whose keep-alive timeout races the proxy's reuse: the fast-lane request is retried, not failed."""
    served: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        served.append(1)
        body = b'{"name": "b%d", "url": "/", "headers": []}' % len(served)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy = await make_proxy()
        proxy.load(service_yaml("one", port) + _route("Host(`a`)"))
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        names = []
        for _ in range(3):
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            names.append((await _read_response(reader)).json()["name"])
        assert names == ["b1", "b2", "b3"]
        writer.close()
    finally:
        server.close()


async def test_table_swap_and_path_router_apply_on_an_open_connection(make_proxy, backend, backend2):
    proxy = await make_proxy()
    proxy.load(service_yaml("one", backend.port) + _route("Host(`a`)"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

    async def name(path: str) -> str:
        writer.write(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
        return (await _read_response(reader)).json()["name"]

    assert [await name("/x") for _ in range(3)] == ["b1"] * 3
    proxy.load(service_yaml("one", backend.port) + service_yaml("two", backend2.port) + _route("Host(`a`)") +
               _route("Host(`a`) && PathPrefix(`/p`)", svc="two", name="p", priority=100))
    assert await name("/x") == "b1"
    assert await name("/p/1") == "b2"
    assert await name("/x") == "b1"
    writer.close()


async def test_verdict_follows_the_headers_of_each_request(make_proxy):
    docs = service_yaml("one", 9) + _route("Host(`a.example`)")
    client, client_t, up_t, target = await _wired(make_proxy, docs)
    kinds = []
    for raw in (FAST[0], FAST[0], GENERAL[7], FAST[1], b"GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n", FAST[0]):
        up_t.data.clear()
        client.data_received(raw)
        ex = client.queue[0] if client.queue else None
        kinds.append(type(ex).__name__ if ex is not None else "answered")
        if isinstance(ex, FastExchange):
            assert b"".join(up_t.data) == _general_head(client, raw, target)
            ex.up.data_received(OK)
        elif ex is not None and ex.up is not None:
            ex.up.data_received(OK)
    assert kinds == ["FastExchange", "FastExchange", "Exchange", "FastExchange", "answered", "FastExchange"]


async def test_pass_host_header_false_stays_general(make_proxy):
    docs = service_yaml("one", 9) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
  - match: Host(`a.example`)
    kind: Rule
    services: [{name: one, port: 80, passHostHeader: false}]
---
"""
    client, client_t, up_t, target = await _wired(make_proxy, docs)
    client.data_received(FAST[0])
    assert not any(isinstance(ex, FastExchange) for ex in client.queue)
    assert b"Host: 127.0.0.1:9\r\n" in b"".join(up_t.data)


async def test_host_and_path_rules_pick_per_request(make_proxy, backend, backend2):
    """Rules as Ingress objects produce them: Host && PathPrefix, chosen per path on one connection."""
    proxy = await make_proxy()
    ingress = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  rules:
  - host: a
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: one, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: two, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: two, port: {number: 80}}}}
---
"""
    proxy.load(service_yaml("one", backend.port) + service_yaml("two", backend2.port) + ingress)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    client = next(iter(proxy.state.connections))
    from pyk3s.addons.ingress.http.request import HttpRequest

    table = proxy.state.compiled.table.tables[("web", False)]
    paths = ["/", "/api/x", "/x", "/api", "/exact", "/exact/no", "/api%2Fx", "/x?y=1", "/api/x?y=1", "/apix"]
    for path in paths:
        writer.write(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
        r = await _read_response(reader)
        assert r.json()["url"] == path
        # the general path's routing decision for the same request
        want = table.lookup(HttpRequest("GET", path, [("Host", "a")], "127.0.0.1")).service.name
        assert r.json()["name"] == {"default-one-80": "b1", "default-two-80": "b2"}[want.split("@")[0]], path
    assert [(await _name(writer, reader, p)) for p in ("/", "/api/x")] == ["b1", "b2"]
    writer.close()
    from pyk3s.addons.ingress.routing.table import PathChoice
    assert isinstance(client.fast_route, PathChoice)


async def _name(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, path: str) -> str:
    writer.write(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
    return (await _read_response(reader)).json()["name"]


async def test_round_robin_over_two_servers_on_fresh_connections(make_proxy, backend, backend_lo2):
    from ingress_support import http

    proxy = await make_proxy()
    two = f"""
apiVersion: v1
kind: Service
metadata: {{name: one, namespace: default}}
spec:
  ports: [{{name: http, port: 80}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: one-a, namespace: default, labels: {{kubernetes.io/service-name: one}}}}
addressType: IPv4
ports: [{{name: http, port: {backend.port}, protocol: TCP}}]
endpoints: [{{addresses: ["127.0.0.1"]}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: one-b, namespace: default, labels: {{kubernetes.io/service-name: one}}}}
addressType: IPv4
ports: [{{name: http, port: {backend_lo2.port}, protocol: TCP}}]
endpoints: [{{addresses: ["127.0.0.2"]}}]
---
"""
    proxy.load(two + _route("Host(`a`)"))
    names = [(await http(proxy.port, "/", host="a")).json()["name"] for _ in range(6)]
    assert sorted(names) == ["b1"] * 3 + ["b2"] * 3, names


WRR = """
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: wrr, namespace: default}
spec:
  weighted:
    services: [{name: one, port: 80, weight: 1}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {name: copy, namespace: default}
spec:
  mirroring: {name: one, port: 80, mirrors: [{name: one, port: 80, percent: 0}]}
---
"""


@pytest.mark.parametrize("svc", ["wrr", "copy"])
async def test_weighted_and_mirroring_services_take_the_general_path(make_proxy, backend, svc):
    from ingress_support import http

    proxy = await make_proxy()
    route = _route("Host(`a`)", svc=svc).replace(f"name: {svc}, port: 80", f"name: {svc}, kind: TraefikService")
    proxy.load(service_yaml("one", backend.port) + WRR + route)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /k HTTP/1.1\r\nHost: a\r\n\r\n")
    r = await _read_response(reader)
    assert (r.status, r.json()["url"]) == (200, "/k")
    writer.close()
    assert (await http(proxy.port, "/c", host="a")).json()["url"] == "/c"
