"""WebSocket through the proxy to pyk3s whoami's /echo, and the client address a dual-stack listener reports
(Traefik, in Go, gives IPv4 clients as plain IPv4 in X-Forwarded-For / X-Real-Ip)."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from ingress_support import http, service_yaml

from pyk3s.images.whoami import serve

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: ws, namespace: default}
spec:
  routes:
  - match: Host(`ws.example.com`)
    kind: Rule
    services: [{name: whoami, port: 80}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_websocket_echo_through_the_proxy(make_proxy):
    port = _free_port()
    whoami = asyncio.create_task(serve(port, host="127.0.0.1"))
    try:
        proxy = await make_proxy()
        proxy.load(service_yaml("whoami", port) + ROUTE)
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"http://127.0.0.1:{proxy.port}/health",
                                           headers={"Host": "ws.example.com"}) as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.02)
            async with session.ws_connect(f"http://127.0.0.1:{proxy.port}/echo",
                                          headers={"Host": "ws.example.com"}) as ws:
                await ws.send_str("hello")
                assert (await ws.receive(timeout=5)).data == "hello"
                await ws.send_bytes(bytes(range(256)) * 300)  # > 64 KiB: the 8-byte length form
                assert (await ws.receive(timeout=5)).data == bytes(range(256)) * 300
                await ws.ping(b"p")
                await ws.send_str("after ping")
                assert (await ws.receive(timeout=5)).data == "after ping"
            # an upgrade anywhere but /echo is refused, like gorilla/websocket in traefik/whoami
            try:
                async with session.ws_connect(f"http://127.0.0.1:{proxy.port}/other",
                                              headers={"Host": "ws.example.com"}):
                    raise AssertionError("upgrade on /other accepted")
            except aiohttp.WSServerHandshakeError as err:
                assert err.status == 400
    finally:
        whoami.cancel()
        await asyncio.gather(whoami, return_exceptions=True)


async def test_dual_stack_listener_reports_ipv4_clients_as_ipv4(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=:0", "--providers.kubernetescrd")
    proxy.load(service_yaml("whoami", backend.port) + ROUTE)
    r = await http(proxy.port, "/", host="ws.example.com")
    assert r.status == 200
    h = {k.lower(): v for k, v in r.json()["headers"]}
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-real-ip"] == "127.0.0.1"
