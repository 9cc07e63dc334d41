"""gRPC through the proxy: grpcio clients and a grpcio server (scheme h2c) behind an IngressRoute and behind
an Ingress with the serversscheme annotation; trailers, deadlines, the proxy's own gRPC statuses, grpcWeb."""

from __future__ import annotations

import asyncio
import base64
import time

import grpc
import pytest
from h2_support import GrpcBackend, H2Client, grpc_call, grpc_frame, in_thread
from ingress_support import http, service_yaml

from pyk3s.addons.ingress.middlewares.grpcweb import GrpcWeb, _Base64Stream, trailer_frame
from pyk3s.addons.ingress.proxy.grpc import grpc_timeout, percent_encode

INGRESSROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: grpc, namespace: default}
spec:
  routes:
  - match: Host(`g.example.com`)
    kind: Rule
    services: [{name: g, port: 80, scheme: h2c}]
  - match: Host(`down.example.com`)
    kind: Rule
    services: [{name: down, port: 80, scheme: h2c}]
---
"""

INGRESS = """
apiVersion: v1
kind: Service
metadata:
  name: gi
  namespace: default
  annotations: {traefik.ingress.kubernetes.io/service.serversscheme: h2c}
spec:
  ports: [{name: grpc, port: 50051}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: gi-1, namespace: default, labels: {kubernetes.io/service-name: gi}}
addressType: IPv4
ports: [{name: grpc, port: PORT}]
endpoints: [{addresses: [127.0.0.1]}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: gi, namespace: default}
spec:
  rules:
  - host: i.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: gi, port: {number: 50051}}}}
---
"""


@pytest.fixture
def grpc_backend():
    b = GrpcBackend().start()
    yield b
    b.stop()


def _dead_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _proxy(make_proxy, backend: GrpcBackend):
    proxy = await make_proxy()
    proxy.load(service_yaml("g", backend.port) + service_yaml("down", _dead_port()) + INGRESSROUTE
               + INGRESS.replace("PORT", str(backend.port)))
    return proxy


@pytest.mark.parametrize("authority", ["g.example.com", "i.example.com"], ids=["ingressroute", "ingress-annotation"])
async def test_unary_and_streaming_calls_with_trailers(make_proxy, grpc_backend, authority):
    proxy = await _proxy(make_proxy, grpc_backend)
    resp, call = await in_thread(grpc_call, proxy.port, authority, "Unary", b"hi")
    assert resp == b"echo:hi" and ("x-trail", "t1") in [tuple(m) for m in call.trailing_metadata()]
    assert call.code() == grpc.StatusCode.OK
    assert await in_thread(grpc_call, proxy.port, authority, "Server", b"3", "server") == [b"item0", b"item1", b"item2"]
    assert await in_thread(grpc_call, proxy.port, authority, "Client", [b"a", b"b", b"c"], "client") == b"a,b,c"
    assert await in_thread(grpc_call, proxy.port, authority, "Bidi", [b"x", b"y", b"z"], "bidi") == [b"X", b"Y", b"Z"]
    with pytest.raises(grpc.RpcError) as err:
        await in_thread(grpc_call, proxy.port, authority, "Unary", b"fail")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details() == "bad thing \u00fc"


async def test_backend_errors_stay_trailers_only(make_proxy, grpc_backend):
    proxy = await _proxy(make_proxy, grpc_backend)
    c = await H2Client.connect(proxy.port)
    r = await c.request("/pk.Echo/Nope", "g.example.com", "POST",
                        [("content-type", "application/grpc"), ("te", "trailers")], grpc_frame(b"x"))
    c.close()
    assert r.ended_with_headers and r.frames_of_head == 1  # one HEADERS frame, as the backend sent it
    assert r.headers["grpc-status"] == "12"


async def test_deadline_expires(make_proxy, grpc_backend):
    proxy = await _proxy(make_proxy, grpc_backend)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        await in_thread(grpc_call, proxy.port, "g.example.com", "Unary", b"sleep3", timeout=0.5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 < 2.5


async def test_the_proxy_enforces_grpc_timeout_itself(make_proxy, grpc_backend):
    """A client that does not watch its own deadline still gets DEADLINE_EXCEEDED when grpc-timeout runs
    out, and the backend's call is cancelled."""
    proxy = await _proxy(make_proxy, grpc_backend)
    c = await H2Client.connect(proxy.port)
    t0 = time.monotonic()
    r = await c.request("/pk.Echo/Unary", "g.example.com", "POST",
                        [("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "300m")],
                        grpc_frame(b"sleep3"))
    took = time.monotonic() - t0
    c.close()
    assert 0.25 < took < 2.0
    assert r.status == 200 and r.ended_with_headers and r.headers["grpc-status"] == "4"
    assert r.headers["grpc-message"] == "Deadline Exceeded"
    for _ in range(50):
        if grpc_backend.cancelled:
            break
        await asyncio.sleep(0.05)
    assert grpc_backend.cancelled == ["unary"]


async def test_the_proxys_own_errors_are_grpc_statuses(make_proxy, grpc_backend):
    proxy = await _proxy(make_proxy, grpc_backend)
    with pytest.raises(grpc.RpcError) as err:
        await in_thread(grpc_call, proxy.port, "nothing.example.com", "Unary", b"x")
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED and err.value.details() == "404 page not found"
    with pytest.raises(grpc.RpcError) as err:
        await in_thread(grpc_call, proxy.port, "down.example.com", "Unary", b"x")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and err.value.details() == "Bad Gateway"
    # not gRPC: the usual HTTP answer
    c = await H2Client.connect(proxy.port)
    r = await c.request("/", "nothing.example.com")
    c.close()
    assert (r.status, r.body) == (404, b"404 page not found\n")


# ------------------------------------------------------------------------------------------- grpcWeb
GRPCWEB = """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: gw, namespace: default}
spec:
  grpcWeb: {allowOrigins: ["https://app.example"]}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: web, namespace: default}
spec:
  routes:
  - match: Host(`web.example.com`)
    kind: Rule
    middlewares: [{name: gw}]
    services: [{name: g, port: 80, scheme: h2c}]
---
"""


async def test_grpcweb_from_a_plain_http11_client(make_proxy, grpc_backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("g", grpc_backend.port) + GRPCWEB)
    msg = grpc_frame(b"hello")
    r = await http(proxy.port, "/pk.Echo/Unary", host="web.example.com", method="POST",
                   headers={"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1",
                            "Origin": "https://app.example"}, body=msg)
    assert r.status == 200 and r.headers["content-type"] == "application/grpc-web"
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert "grpc-status" in r.headers["access-control-expose-headers"]
    assert r.body.startswith(grpc_frame(b"echo:hello"))
    tail = r.body[len(grpc_frame(b"echo:hello")):]
    assert tail[:1] == b"\x80" and int.from_bytes(tail[1:5], "big") == len(tail) - 5
    assert b"grpc-status: 0\r\n" in tail and b"x-trail: t1\r\n" in tail

    r = await http(proxy.port, "/pk.Echo/Unary", host="web.example.com", method="POST",
                   headers={"Content-Type": "application/grpc-web-text", "Origin": "https://evil.example"},
                   body=base64.b64encode(msg))
    assert r.status == 200 and r.headers["content-type"] == "application/grpc-web-text"
    assert "access-control-allow-origin" not in r.headers
    decoded = b"".join(base64.b64decode(part + b"=" * (-len(part) % 4)) for part in r.body.split(b"=") if part)
    assert decoded.startswith(grpc_frame(b"echo:hello")) and b"grpc-status: 0" in decoded

    r = await http(proxy.port, "/pk.Echo/Unary", host="web.example.com", method="OPTIONS",
                   headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                            "Access-Control-Request-Headers": "content-type,x-grpc-web"})
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-headers"] == "content-type,x-grpc-web"
    assert r.headers["access-control-max-age"] == "600"

    r = await http(proxy.port, "/plain", host="web.example.com")  # not gRPC-Web: passed through untouched
    assert r.status in (200, 404, 415, 502) and "access-control-expose-headers" not in r.headers


def test_grpcweb_pieces():
    assert trailer_frame([("Grpc-Status", "0"), ("grpc-message", "ok"), ("content-type", "x")], {"content-type"}) == (
        b"\x80\x00\x00\x00\x22grpc-message: ok\r\ngrpc-status: 0\r\n")
    dec = _Base64Stream()
    parts = [base64.b64encode(b"ab"), base64.b64encode(b"cdefg")]  # two padded parts, split oddly
    joined = b"".join(parts)
    assert dec(joined[:3]) + dec(joined[3:7]) + dec(joined[7:]) == b"abcdefg"
    mw = GrpcWeb({"allowOrigins": ["*"]})
    assert mw.allowed("https://x") and not mw.allowed("")


@pytest.mark.parametrize("value,seconds", [("1S", 1.0), ("250m", 0.25), ("2M", 120.0), ("1H", 3600.0),
                                           ("100u", 1e-4), ("5n", 5e-9), ("123456789S", None), ("1x", None),
                                           ("", None), ("S", None)])
def test_grpc_timeout_values(value, seconds):
    assert grpc_timeout(value) == (pytest.approx(seconds) if seconds is not None else None)


def test_grpc_message_percent_encoding():
    assert percent_encode("bad thing \u00fc 100%") == "bad thing %C3%BC 100%25"
