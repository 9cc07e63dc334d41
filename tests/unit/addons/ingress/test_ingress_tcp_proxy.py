"""TCP and UDP routers on real loopback sockets: the proxy's accept path, the kernel relay, TLS passthrough
and termination, PROXY protocol, TCP middlewares, HTTP and TCP routers on one entry point, UDP sessions.
Backends are stand-ins (tcp_support.py); everything of pyk3s is the real thing."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from typing import Any

import pytest
from ingress_support import http, service_yaml
from tcp_support import TCPEcho, UDPEcho, client_context, exchange, make_cert, route_tcp, server_context

from pyk3s.addons.ingress.proxy.clienthello import POSTGRES_SSL_REQUEST
from pyk3s.addons.ingress.proxy.proxyprotocol import build_header

TIMING = pytest.mark.timing_sensitive  # time windows: run once more on a loaded machine

FLAGS = ["--entrypoints.web.address=127.0.0.1:0", "--entrypoints.websecure.address=127.0.0.1:0",
         "--entrypoints.websecure.http.tls=true", "--providers.kubernetescrd", "--providers.kubernetesingress"]


def tls_secret(name: str, cert: str, key: str) -> str:
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n"
            f"data: {{tls.crt: {base64.b64encode(cert.encode()).decode()}, "
            f"tls.key: {base64.b64encode(key.encode()).decode()}}}\n---\n")


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """The proxy closed the connection (a reset when it closed with bytes unread)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


async def settle() -> None:
    """Let an entry point switch how it accepts (a task started by the configuration)."""
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.fixture
async def echo() -> Any:
    e = await TCPEcho("e1").start()
    yield e
    e.close()


async def test_catch_all_plain_tcp_server_speaks_first(make_proxy: Any) -> None:
    banner = await TCPEcho("smtp", banner=b"220 ready\r\n").start()
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("smtp", "HostSNI(`*`)", "smtp", banner.port))
    await settle()
    out = await exchange(p.ports["web"], b"EHLO x\r\n", read_first=11, until=24)
    assert out == b"220 ready\r\nsmtp:EHLO x\r\n"
    assert [r["status"] for r in p.state.compiled.tcp.routers.values()] == ["enabled"]
    banner.close()


async def test_passthrough_client_sees_backend_certificate_and_two_names(make_proxy: Any) -> None:
    a_cert, a_key, *_ = make_cert("a.example.com")
    b_cert, b_key, *_ = make_cert("b.example.com")
    a = await TCPEcho("A", tls=server_context(a_cert, a_key)).start()
    b = await TCPEcho("B", tls=server_context(b_cert, b_key)).start()
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("a", "HostSNI(`a.example.com`)", "a", a.port, "websecure", "tls: {passthrough: true}")
           + route_tcp("b", "HostSNI(`b.example.com`)", "b", b.port, "websecure", "tls: {passthrough: true}"))
    await settle()
    # the client verifies the backend's own certificate: only the backend has its key
    assert await exchange(p.ports["websecure"], b"hello", client_context(a_cert), "a.example.com", until=7) == b"A:hello"
    assert await exchange(p.ports["websecure"], b"hello", client_context(b_cert), "b.example.com", until=7) == b"B:hello"
    with pytest.raises(ssl.SSLCertVerificationError):
        await exchange(p.ports["websecure"], b"x", client_context(a_cert), "b.example.com")
    a.close()
    b.close()


async def test_termination_with_certificate_from_secret_and_tls_option(make_proxy: Any, echo: TCPEcho) -> None:
    cert, key, *_ = make_cert("db.example.com")
    p = await make_proxy(*FLAGS, tls=True)
    p.load(tls_secret("db-cert", cert, key) + route_tcp(
        "db", "HostSNI(`db.example.com`)", "db", echo.port, "websecure", "tls: {secretName: db-cert, options: {name: modern}}")
        + "apiVersion: traefik.io/v1alpha1\nkind: TLSOption\nmetadata: {name: modern, namespace: default}\n"
          "spec: {minVersion: VersionTLS13, alpnProtocols: [mqtt]}\n")
    await settle()
    ctx = client_context(cert)
    ctx.set_alpn_protocols(["mqtt"])
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["websecure"], ssl=ctx,
                                                   server_hostname="db.example.com")
    sslobj = writer.get_extra_info("ssl_object")
    assert sslobj.version() == "TLSv1.3" and sslobj.selected_alpn_protocol() == "mqtt"
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(7), 5) == b"e1:ping"
    writer.close()
    assert echo.received == [b"ping"]  # the backend got plain bytes
    old = client_context(cert)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError)):  # minVersion TLS 1.3
        await exchange(p.ports["websecure"], b"x", old, "db.example.com")


async def test_unknown_tls_option_closes_the_routers_connections(make_proxy: Any, echo: TCPEcho) -> None:
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("db", "HostSNI(`db.example.com`)", "db", echo.port, "websecure", "tls: {options: {name: nope}}"))
    await settle()
    (info,) = p.state.compiled.tcp.routers.values()
    assert info["status"] == "disabled" and info["error"] == ["unknown TLS options: default-nope@kubernetescrd"]
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await exchange(p.ports["websecure"], b"x", client_context(), "db.example.com")
    assert echo.connections == 0


async def test_http_and_tcp_routers_on_one_entry_point(make_proxy: Any, backend: Any, echo: TCPEcho) -> None:
    cert, key, *_ = make_cert("tcp.example.com")
    p = await make_proxy(*FLAGS, tls=True)
    p.load(service_yaml("web", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: site, namespace: default}
spec:
  entryPoints: [websecure]
  tls: {}
  routes:
  - match: Host(`www.example.com`)
    kind: Rule
    services: [{name: web, port: 80}]
---
""" + route_tcp("t", "HostSNI(`tcp.example.com`)", "t", echo.port, "websecure", "tls: {passthrough: true}")
        + route_tcp("plain", "HostSNI(`*`)", "t", echo.port, "web"))
    await settle()
    got = await http(p.ports["websecure"], "/x", host="www.example.com", ssl=client_context(), server_hostname="www.example.com")
    assert got.status == 200 and got.json()["name"] == "b1"
    # SNI of no router: the HTTPS routers answer 404
    got = await http(p.ports["websecure"], "/", host="other", ssl=client_context(), server_hostname="other.example.com")
    assert got.status == 404
    # passthrough: the TLS bytes go to the echo untouched (it does not speak TLS and echoes the ClientHello)
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["websecure"])
    from pyk3s.addons.ingress.proxy.clienthello import read_client_hello
    hello = _hello_bytes("tcp.example.com")
    writer.write(hello)
    assert await asyncio.wait_for(reader.readexactly(3 + len(hello)), 5) == b"e1:" + hello
    assert read_client_hello(hello).server_name == "tcp.example.com"  # type: ignore[union-attr]
    writer.close()
    # plain HTTP on web: the TCP catch-all takes every connection (no TLS router there), as in Traefik
    assert await exchange(p.ports["web"], b"GET / HTTP/1.1\r\n\r\n", until=21) == b"e1:GET / HTTP/1.1\r\n\r\n"


def _hello_bytes(name: str) -> bytes:
    ctx = client_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


async def test_tcp_router_with_client_ip_falls_back_to_http(make_proxy: Any, backend: Any, echo: TCPEcho) -> None:
    p = await make_proxy(*FLAGS, tls=True)
    p.load(service_yaml("web", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: site, namespace: default}
spec:
  entryPoints: [web]
  routes:
  - match: PathPrefix(`/`)
    kind: Rule
    services: [{name: web, port: 80}]
---
""" + route_tcp("t", "ClientIP(`10.9.9.9`)", "t", echo.port, "web"))
    await settle()
    got = await http(p.ports["web"], "/fallback")
    assert got.status == 200 and got.json()["url"] == "/fallback"


@pytest.mark.parametrize("version", [1, 2])
async def test_proxy_protocol_from_trusted_peer(make_proxy: Any, backend: Any, version: int) -> None:
    p = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.web.proxyProtocol.trustedIPs=127.0.0.0/8",
                         "--providers.kubernetescrd", "--providers.kubernetesingress")
    p.load(service_yaml("web", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: site, namespace: default}
spec:
  routes:
  - match: PathPrefix(`/`)
    kind: Rule
    services: [{name: web, port: 80}]
""")
    await settle()
    header = build_header(version, ("203.0.113.7", 41000), ("198.51.100.1", 80))
    got = await http(p.ports["web"], raw=header + b"GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.status == 200
    sent = dict((k.lower(), v) for k, v in backend.requests[-1]["headers"])
    assert sent["x-forwarded-for"] == "203.0.113.7" and sent["x-real-ip"] == "203.0.113.7"


async def test_proxy_protocol_from_untrusted_peer_is_dropped(make_proxy: Any, backend: Any) -> None:
    p = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.web.proxyProtocol.trustedIPs=10.0.0.0/8",
                         "--providers.kubernetescrd")
    p.load(service_yaml("web", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: site, namespace: default}
spec:
  routes:
  - match: PathPrefix(`/`)
    kind: Rule
    services: [{name: web, port: 80}]
""")
    await settle()
    header = build_header(1, ("203.0.113.7", 41000), ("198.51.100.1", 80))
    got = await http(p.ports["web"], raw=header + b"GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert got.status == 200
    sent = dict((k.lower(), v) for k, v in backend.requests[-1]["headers"])
    assert sent["x-forwarded-for"] == "127.0.0.1"


@pytest.mark.parametrize("garbage", [b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", b"PROXY TCP9 x\r\n",
                                     b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + bytes(12)])
async def test_malformed_proxy_header_closes_the_connection(make_proxy: Any, backend: Any, garbage: bytes) -> None:
    p = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.web.proxyProtocol.insecure",
                         "--providers.kubernetescrd")
    p.load(service_yaml("web", backend.port))
    await settle()
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["web"])
    writer.write(garbage + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await closed_by_peer(reader)
    writer.close()
    assert backend.requests == []


@TIMING
async def test_client_hello_that_never_completes_is_closed(make_proxy: Any, echo: TCPEcho) -> None:
    p = await make_proxy("--entrypoints.websecure.address=127.0.0.1:0",
                         "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=1s", "--providers.kubernetescrd")
    p.load(route_tcp("t", "HostSNI(`a.example.com`)", "t", echo.port, "websecure", "tls: {passthrough: true}"))
    await settle()
    hello = _hello_bytes("a.example.com")
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["websecure"])
    writer.write(hello[:20])  # a record header announcing more than ever comes
    start = time.monotonic()
    assert await closed_by_peer(reader)
    assert 0.8 < time.monotonic() - start < 3
    writer.close()
    # meanwhile and afterwards the router works
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["websecure"])
    writer.write(hello[:30])
    await asyncio.sleep(0.1)
    writer.write(hello[30:])  # a hello in two segments is read whole
    assert await asyncio.wait_for(reader.readexactly(3 + len(hello)), 5) == b"e1:" + hello
    writer.close()


async def test_middlewares_ip_allow_list_and_in_flight_conn(make_proxy: Any, echo: TCPEcho) -> None:
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("deny", "HostSNI(`*`)", "t", echo.port, "web", mws="middlewares: [{name: office}]") + """
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: office, namespace: default}
spec: {ipAllowList: {sourceRange: [10.0.0.0/8]}}
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: one, namespace: default}
spec: {inFlightConn: {amount: 1}}
---
""" + route_tcp("one", "HostSNI(`*`)", "t2", echo.port, "websecure", mws="middlewares: [{name: one}]"))
    await settle()
    assert await exchange(p.ports["web"], b"x", timeout=2) == b""
    assert echo.connections == 0
    r1, w1 = await asyncio.open_connection("127.0.0.1", p.ports["websecure"])
    w1.write(b"first")
    assert await asyncio.wait_for(r1.readexactly(8), 5) == b"e1:first"
    assert await exchange(p.ports["websecure"], b"second", timeout=2) == b""  # one at a time per client IP
    w1.close()
    await asyncio.sleep(0.2)
    assert await exchange(p.ports["websecure"], b"third", until=8) == b"e1:third"


@pytest.mark.parametrize("version", [1, 2])
async def test_proxy_protocol_to_the_backend(make_proxy: Any, version: int) -> None:
    seen = await TCPEcho("pp").start()
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("t", "HostSNI(`*`)", "t", seen.port, "web", extra=f", proxyProtocol: {{version: {version}}}"))
    await settle()
    out = await exchange(p.ports["web"], b"data", timeout=1)
    want = b"PROXY TCP4 127.0.0.1 127.0.0.1 " if version == 1 else b"\r\n\r\n\x00\r\nQUIT\n\x21\x11"
    assert out.startswith(b"pp:" + want) and out.endswith(b"data")
    seen.close()


async def test_weighted_services_and_no_endpoints(make_proxy: Any) -> None:
    a, b = await TCPEcho("A").start(), await TCPEcho("B").start()
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("w", "HostSNI(`*`)", "a", a.port, "web").replace(
        "services: [{name: a, port: 9000 }]", "services: [{name: a, port: 9000, weight: 3}, {name: b, port: 9000, weight: 1}]")
        + route_tcp("unused", "HostSNI(`nothing`)", "b", b.port, "websecure", "tls: {}"))
    await settle()
    answers = [await exchange(p.ports["web"], b"x", until=3) for _ in range(8)]
    assert sorted(answers) == [b"A:x"] * 6 + [b"B:x"] * 2
    a.close()
    b.close()


@TIMING
async def test_half_close_and_termination_delay(make_proxy: Any) -> None:
    slow = await TCPEcho("S", reply_after_eof=0.3).start()
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("t", "HostSNI(`*`)", "t", slow.port, "web", extra=", serversTransport: long")
           + "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: long, namespace: default}\n"
             "spec: {terminationDelay: 2s}\n---\n"
           + route_tcp("short", "HostSNI(`*`)", "t", slow.port, "websecure"))
    await settle()
    # the client sends FIN; the server answers after 300 ms, within the 2 s termination delay
    assert await exchange(p.ports["web"], b"question", half_close=True) == b"S:questionlate reply"
    # default transport: 100 ms after the FIN the relay closes both sides, the late reply is lost
    assert await exchange(p.ports["websecure"], b"question", half_close=True) == b"S:question"
    slow.close()


async def test_postgres_starttls_passthrough(make_proxy: Any) -> None:
    cert, key, *_ = make_cert("pg.example.com")
    ctx = server_context(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.readexactly(8) == POSTGRES_SSL_REQUEST
        writer.write(b"S")
        await writer.drain()
        await writer.start_tls(ctx)
        data = await reader.read(100)
        writer.write(b"pg:" + data)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    p = await make_proxy(*FLAGS, tls=True)
    p.load(route_tcp("pg", "HostSNI(`pg.example.com`)", "pg", port, "websecure", "tls: {passthrough: true}"))
    await settle()
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["websecure"])
    writer.write(POSTGRES_SSL_REQUEST)
    assert await asyncio.wait_for(reader.readexactly(1), 5) == b"S"
    await writer.start_tls(client_context(cert), server_hostname="pg.example.com")
    writer.write(b"SELECT 1")
    assert await asyncio.wait_for(reader.read(100), 5) == b"pg:SELECT 1"
    writer.close()
    server.close()


async def test_servers_dialed_with_tls(make_proxy: Any) -> None:
    ca_cert, ca_key, ca, ca_k = make_cert("test ca")
    cert, key, *_ = make_cert("backend.internal", issuer=(ca, ca_k))
    secure = await TCPEcho("T", tls=server_context(cert, key)).start()
    p = await make_proxy(*FLAGS, tls=True)
    ca_secret = (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: ca, namespace: default}}\n"
                 f"data: {{ca.crt: {base64.b64encode(ca_cert.encode()).decode()}}}\n---\n")
    p.load(ca_secret + route_tcp("ok", "HostSNI(`*`)", "s", secure.port, "web", extra=", tls: true, serversTransport: st")
           + "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: st, namespace: default}\n"
             "spec: {tls: {serverName: backend.internal, rootCAs: [{secret: ca}]}}\n---\n"
           + route_tcp("bad", "HostSNI(`*`)", "s2", secure.port, "websecure", extra=", tls: true, serversTransport: wrong")
           + "apiVersion: traefik.io/v1alpha1\nkind: ServersTransportTCP\nmetadata: {name: wrong, namespace: default}\n"
             "spec: {tls: {serverName: other.internal, rootCAs: [{secret: ca}]}}\n---\n")
    await settle()
    assert await exchange(p.ports["web"], b"over tls", until=10) == b"T:over tls"
    assert await exchange(p.ports["websecure"], b"x", timeout=3) == b""  # certificate name mismatch: refused
    secure.close()


@TIMING
async def test_udp_sessions(make_proxy: Any) -> None:
    a, b = await UDPEcho("A").start(), await UDPEcho("B").start()
    p = await make_proxy("--entrypoints.dns.address=127.0.0.1:0/udp", "--entrypoints.dns.udp.timeout=500ms",
                         "--providers.kubernetescrd")
    p.load(f"""
apiVersion: v1
kind: Service
metadata: {{name: a, namespace: default}}
spec: {{ports: [{{name: dns, port: 53, protocol: UDP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: a-x, namespace: default, labels: {{kubernetes.io/service-name: a}}}}
addressType: IPv4
ports: [{{name: dns, port: {a.port}, protocol: UDP}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: b, namespace: default}}
spec: {{ports: [{{name: dns, port: 53, protocol: UDP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: b-x, namespace: default, labels: {{kubernetes.io/service-name: b}}}}
addressType: IPv4
ports: [{{name: dns, port: {b.port}, protocol: UDP}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {{name: dns, namespace: default}}
spec:
  entryPoints: [dns]
  routes:
  - services: [{{name: a, port: 53, weight: 1}}, {{name: b, port: 53, weight: 1}}]
""")
    port = p.ports["dns"]
    loop = asyncio.get_running_loop()
    socks = []
    answers = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        socks.append(s)
        for i in range(3):  # one session per client address: every datagram goes to the same server
            s.send(b"q%d" % i)
            answers.append(await asyncio.wait_for(loop.sock_recv(s, 100), 5))
    assert sorted(x[:2] for x in answers) == [b"A:"] * 3 + [b"B:"] * 3
    assert answers[0][:2] == answers[1][:2] == answers[2][:2]
    assert p.state.udp_open["dns"] == 2
    await asyncio.sleep(1.0)  # idle longer than udp.timeout: sessions closed
    assert p.state.udp_open["dns"] == 0
    for s in socks:
        s.close()
    a.close()
    b.close()


@TIMING
async def test_responding_timeouts_close_slow_requests(make_proxy: Any, backend: Any) -> None:
    p = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                         "--entrypoints.web.transport.respondingTimeouts.readTimeout=2s",
                         "--entrypoints.web.transport.respondingTimeouts.idleTimeout=2s")
    p.load(service_yaml("web", backend.port))
    p.state.spawn(p.state.sweeper())
    slow_r, slow_w = await asyncio.open_connection("127.0.0.1", p.ports["web"])
    slow_w.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
    idle_r, idle_w = await asyncio.open_connection("127.0.0.1", p.ports["web"])
    start = time.monotonic()
    assert await closed_by_peer(slow_r) and await closed_by_peer(idle_r)
    # the sweeper ticks once a second and connections are stamped with its last tick: within (0, 1] early
    assert 0.5 < time.monotonic() - start < 3.5
    slow_w.close()
    idle_w.close()


async def test_open_connections_metric(make_proxy: Any, echo: TCPEcho) -> None:
    p = await make_proxy(*FLAGS, "--metrics.prometheus", tls=True)
    p.load(route_tcp("t", "HostSNI(`*`)", "t", echo.port, "web"))
    await settle()
    reader, writer = await asyncio.open_connection("127.0.0.1", p.ports["web"])
    writer.write(b"hold")
    await reader.readexactly(7)
    from pyk3s.addons.ingress.proxy.metrics import render
    text = render([p.state.metrics.snapshot()]).decode()
    assert 'traefik_open_connections{entrypoint="web",protocol="TCP"} 1' in text
    writer.close()
    await asyncio.sleep(0.2)
    text = render([p.state.metrics.snapshot()]).decode()
    assert 'traefik_open_connections{entrypoint="web",protocol="TCP"} 0' in text
