"""HTTP/2 health checks to servers (ServersTransport ``forwardingTimeouts.readIdleTimeout``/``pingTimeout``,
Go's http2 Transport ReadIdleTimeout/PingTimeout): a stand-in h2 server on loopback (the h2 library) that
answers PINGs, then hangs."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path

import pytest
from h2_support import H2Backend, self_signed
from ingress_support import http

from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.proxy.h2upstream import H2Pool
from pyk3s.addons.ingress.routing.transports import build_transport
from pyk3s.images.traefik_flags import unhonoured


def _objects(port: int, scheme: str, timeouts: str) -> str:
    skip = "insecureSkipVerify: true, " if scheme == "https" else ""
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: b, namespace: default}}
spec: {{ports: [{{name: web, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: b-a, namespace: default, labels: {{kubernetes.io/service-name: b}}}}
addressType: IPv4
ports: [{{name: web, port: {port}}}]
endpoints: [{{addresses: ["127.0.0.1"], conditions: {{ready: true, serving: true}}}}]
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: pinged, namespace: default}}
spec: {{{skip}forwardingTimeouts: {{{timeouts}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  routes: [{{match: Host(`a`), kind: Rule,
             services: [{{name: b, port: 80, scheme: {scheme}, serversTransport: pinged}}]}}]
---
"""


def _server_tls() -> ssl.SSLContext:
    crt, key = self_signed("backend.internal")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="pk-test-") as tmp:
        path = Path(tmp) / "cert.pem"
        path.write_bytes(crt + key)
        ctx.load_cert_chain(str(path))
    ctx.set_alpn_protocols(["h2"])
    return ctx


def _pool(proxy, port: int) -> H2Pool:
    pools = [p for p in proxy.state.h2_pools.values() if p.target.port == port]
    assert len(pools) == 1
    return pools[0]


@pytest.mark.timing_sensitive
@pytest.mark.parametrize("scheme", ["h2c", "https"])
async def test_server_that_stops_answering_pings_is_dropped(make_proxy, scheme):
    backend = await H2Backend(body=b"ok", tls=_server_tls() if scheme == "https" else None).start()
    try:
        proxy = await make_proxy()
        proxy.load(_objects(backend.port, scheme, "readIdleTimeout: 200ms, pingTimeout: 300ms"))
        r = await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)
        assert r.status == 200 and r.body == b"ok"
        pool = _pool(proxy, backend.port)
        assert pool.read_idle == 0.2 and pool.ping_timeout == 0.3
        # idle with no stream open: pinged, answered, kept
        await asyncio.sleep(0.9)
        assert backend.pings >= 1 and backend.conns == 1 and len(pool.conns) == 1

        # the server hangs with a request on the connection: PING, no ACK, the stream fails as 502
        backend.mute = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        r = await asyncio.wait_for(http(proxy.port, "/", host="a"), 10)
        assert r.status == 502
        assert loop.time() - started < 3.0  # readIdleTimeout + pingTimeout, not an endless wait
        assert pool.conns == []

        # the next request dials a new connection
        backend.mute = False
        r = await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)
        assert r.status == 200 and backend.conns == 2
    finally:
        backend.close()


@pytest.mark.timing_sensitive
async def test_idle_connection_to_a_hung_server_is_closed_before_the_next_request(make_proxy):
    backend = await H2Backend(body=b"ok").start()
    try:
        proxy = await make_proxy()
        proxy.load(_objects(backend.port, "h2c", "readIdleTimeout: 100ms, pingTimeout: 200ms"))
        assert (await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)).status == 200
        pool = _pool(proxy, backend.port)
        backend.mute = True
        await asyncio.sleep(0.8)
        assert pool.conns == []  # the health check found it dead while nothing was using it
        backend.mute = False
        r = await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)
        assert r.status == 200 and r.body == b"ok" and backend.conns == 2
    finally:
        backend.close()


async def test_without_read_idle_timeout_no_ping_is_sent(make_proxy):
    backend = await H2Backend(body=b"ok").start()
    try:
        proxy = await make_proxy()
        proxy.load(_objects(backend.port, "h2c", "pingTimeout: 100ms"))
        assert (await asyncio.wait_for(http(proxy.port, "/", host="a"), 5)).status == 200
        await asyncio.sleep(0.4)
        assert backend.pings == 0 and len(_pool(proxy, backend.port).conns) == 1
    finally:
        backend.close()


def test_read_idle_and_ping_timeouts_from_static_flags_and_crd_without_warning():
    assert unhonoured(["--serversTransport.forwardingTimeouts.readIdleTimeout=5s",
                       "--serversTransport.forwardingTimeouts.pingTimeout=2s"]) == []
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0",
                                "--serversTransport.forwardingTimeouts.readIdleTimeout=5s"]).servers_transport
    t, warnings = build_transport("default@internal", static, 200)
    assert (t.read_idle_timeout, t.ping_timeout) == (5.0, 15.0) and warnings == []
    static = static_from_flags(["--entrypoints.web.address=127.0.0.1:0",
                                "--serverstransport.forwardingtimeouts.readidletimeout=1m",
                                "--serverstransport.forwardingtimeouts.pingtimeout=2s"]).servers_transport
    t, warnings = build_transport("default@internal", static, 200)
    assert (t.read_idle_timeout, t.ping_timeout) == (60.0, 2.0) and warnings == []
    t, _ = build_transport("default@internal", static_from_flags([]).servers_transport, 200)
    assert (t.read_idle_timeout, t.ping_timeout) == (0.0, 15.0)
