"""Requests the entry point refuses or rewrites before routing, as Traefik (Go's http.Server and its
entry-point handlers) does: two Host headers are a 400, dot segments and repeated slashes are removed
from the path (sanitizePath) and unreserved escapes normalized, on the fast lane and the general path."""

from __future__ import annotations

import asyncio

import pytest
from ingress_support import http, service_yaml

ROUTES = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: split, namespace: default}
spec:
  routes:
  - {match: "Host(`a`) && PathPrefix(`/public`)", kind: Rule, services: [{name: pub, port: 80}]}
  - {match: "Host(`a`)", kind: Rule, services: [{name: whoami, port: 80}]}
"""


async def raw_exchange(port: int, data: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    out = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return out.split(b"\r\n", 1)[0], out


@pytest.mark.parametrize("path", ["/", "/x"], ids=["fast-lane", "general"])
async def test_two_host_headers_are_400_as_go_answers(make_proxy, backend, path):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + ROUTES)
    status, whole = await raw_exchange(
        proxy.port, f"GET {path} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".encode())
    assert status == b"HTTP/1.1 400 Bad Request: too many Host headers"
    assert whole.endswith(b"\r\n\r\n400 Bad Request: too many Host headers")
    assert not backend.requests
    assert (await http(proxy.port, path, host="a")).status == 200          # one Host: served


@pytest.mark.parametrize(("sent", "routed", "upstream"), [
    ("/public/../admin", "b1", "/admin"),                # not the /public router: sanitized first
    ("/public/%2e%2e/admin", "b1", "/admin"),
    ("/public//x/./y", "b2", "/public/x/y"),
    ("/public/a/..", "b2", "/public"),
    ("/%7Epublic", "b1", "/~public"),
], ids=["dot-dot", "escaped-dot-dot", "slashes-and-dot", "trailing-dot-dot", "unreserved-escape"])
async def test_paths_are_sanitized_before_routing(make_proxy, backend, backend2, sent, routed, upstream):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + service_yaml("pub", backend2.port) + ROUTES)
    r = await http(proxy.port, sent, host="a")
    assert r.status == 200
    assert (r.json()["name"], r.json()["url"]) == (routed, upstream)

