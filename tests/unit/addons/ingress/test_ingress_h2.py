"""HTTP/2 through the proxy: h2c and ALPN h2 from clients, h2c and https (ALPN) to backends, routing,
middlewares, bodies and flow control, trailers, GOAWAY, settings; real clients (httpx, curl) and the h2
library for exact frames."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess

import httpx
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2_support import (
    PREFACE,
    GrpcBackend,
    H2Backend,
    H2Client,
    RawH2,
    Threaded,
    client_tls,
    goaway_of,
    grpc_call,
    grpc_frame,
    self_signed,
    with_tls,
)
from hyperframe.frame import GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame
from ingress_support import http, service_yaml

from pyk3s.addons.ingress.explain import explain_api
from pyk3s.addons.ingress.proxy.h2server import H2ClientConnection
from pyk3s.addons.ingress.proxy.metrics import render

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: {name}, namespace: default}}
spec:
  {extra}
  routes:
  - match: {match}
    kind: Rule
    services: [{{name: {svc}, port: 80{scheme}}}]
    {mws}
---
"""


def route(match: str, svc: str = "whoami", name: str = "r", scheme: str = "", extra: str = "", mws: str = "") -> str:
    return ROUTE.format(name=name, match=match, svc=svc, scheme=f", scheme: {scheme}" if scheme else "",
                        extra=extra, mws=mws)


def secret(name: str, crt: bytes, key: bytes) -> str:
    return (f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\n"
            f"data: {{tls.crt: {base64.b64encode(crt).decode()}, tls.key: {base64.b64encode(key).decode()}}}\n---\n")


@pytest.fixture
def grpc_backend():
    b = GrpcBackend().start()
    yield b
    b.stop()


async def tls_proxy(make_proxy, *flags: str):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.websecure.address=127.0.0.1:0",
                             "--entrypoints.websecure.http.tls=true", "--providers.kubernetescrd",
                             "--providers.kubernetesingress", *flags)
    await with_tls(proxy, ["web", "websecure"])
    return proxy


# ------------------------------------------------------------------------------------------- clients
async def test_h2c_prior_knowledge_routes_like_http11(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a.example.com`)"))
    async with httpx.AsyncClient(http1=False, http2=True) as c:
        r = await c.get(f"http://127.0.0.1:{proxy.port}/x/y?q=1;b=2", headers={"host": "a.example.com",
                        "x-forwarded-for": "6.6.6.6", "cookie": "a=1"})
        assert r.http_version == "HTTP/2" and r.status_code == 200
        seen = r.json()
        assert seen["url"] == "/x/y?q=1&b=2"
        h = {k.lower(): v for k, v in seen["headers"]}
        assert h["host"] == "a.example.com" and h["x-forwarded-for"] == "127.0.0.1"
        assert h["x-forwarded-proto"] == "http" and h["x-forwarded-port"] == "80"
        r = await c.get(f"http://127.0.0.1:{proxy.port}/", headers={"host": "b.example.com"})
        assert (r.status_code, r.text, r.headers["content-type"]) == (404, "404 page not found\n",
                                                                      "text/plain; charset=utf-8")
    # HTTP/1.1 on the same entry point is untouched
    r1 = await http(proxy.port, "/h1", host="a.example.com")
    assert r1.status == 200 and r1.json()["url"] == "/h1"


async def test_cookie_fields_are_joined_for_http11_backends(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a`)"))
    c = await H2Client.connect(proxy.port)
    r = await c.request("/", "a", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    c.close()
    h = dict((k.lower(), v) for k, v in json.loads(r.body)["headers"])
    assert h["cookie"] == "a=1; b=2"


async def test_alpn_h2_on_websecure_and_tls_options_decide(make_proxy, backend):
    crt, key = self_signed("s.example.com")
    proxy = await tls_proxy(make_proxy)
    proxy.load(service_yaml("whoami", backend.port) + secret("s", crt, key) + route(
        "Host(`s.example.com`)", extra="entryPoints: [websecure]\n  tls: {secretName: s}") + route(
        "Host(`old.example.com`)", name="old", extra="entryPoints: [websecure]\n  tls: {secretName: s, options: {name: h1only}}")
        + """
apiVersion: traefik.io/v1alpha1
kind: TLSOption
metadata: {name: h1only, namespace: default}
spec: {alpnProtocols: [http/1.1]}
---
""")
    port = proxy.ports["websecure"]
    ctx = client_tls()
    async with httpx.AsyncClient(http2=True, verify=ctx) as c:
        r = await c.get(f"https://127.0.0.1:{port}/p", headers={"host": "s.example.com"},
                        extensions={"sni_hostname": "s.example.com"})
        assert r.http_version == "HTTP/2" and r.status_code == 200
        h = {k.lower(): v for k, v in r.json()["headers"]}
        assert h["x-forwarded-proto"] == "https" and h["x-forwarded-port"] == "443"
    async with httpx.AsyncClient(http2=True, verify=ctx) as c:  # a new connection: the name decides the options
        r = await c.get(f"https://127.0.0.1:{port}/p", headers={"host": "old.example.com"},
                        extensions={"sni_hostname": "old.example.com"})
        assert r.http_version == "HTTP/1.1" and r.status_code == 200
    if shutil.which("curl"):
        out = await asyncio.to_thread(subprocess.run, [
            "curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--resolve",
            f"s.example.com:{port}:127.0.0.1", f"https://s.example.com:{port}/"], capture_output=True, text=True,
            timeout=20)
        assert out.stdout == "2 200"


async def test_middlewares_metrics_and_the_api_over_h2(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd",
                             "--api.insecure", "--metrics.prometheus", "--entrypoints.traefik.address=127.0.0.1:0")
    proxy.load(service_yaml("whoami", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: hdr, namespace: default}
spec: {headers: {customResponseHeaders: {X-Mw: "yes"}, customRequestHeaders: {X-In: "added"}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: auth, namespace: default}
spec: {basicAuth: {secret: users}}
---
apiVersion: v1
kind: Secret
metadata: {name: users, namespace: default}
type: kubernetes.io/basic-auth
data: {username: dGVzdA==, password: dGVzdA==}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: strip, namespace: default}
spec: {stripPrefix: {prefixes: [/api]}}
---
""" + route("Host(`m`)", mws="middlewares: [{name: hdr}, {name: strip}]") + route(
        "Host(`auth`)", name="a", mws="middlewares: [{name: auth}]"))
    c = await H2Client.connect(proxy.ports["web"])
    r = await c.request("/api/v1", "m")
    assert r.status == 200 and r.headers["x-mw"] == "yes"
    seen = json.loads(r.body)
    assert seen["url"] == "/v1" and ["X-In", "added"] in seen["headers"]
    r = await c.request("/", "auth")
    assert r.status == 401 and "www-authenticate" in r.headers
    r = await c.request("/", "auth", headers=[("authorization", "Basic dGVzdDp0ZXN0")])
    assert r.status == 200
    c.close()
    c = await H2Client.connect(proxy.ports["traefik"])
    r = await c.request("/metrics", "x")
    assert b'traefik_entrypoint_requests_total{code="401",entrypoint="web",method="GET"' in r.body
    r = await c.request("/api/http/routers", "x")
    assert r.status == 200 and b'"name": "default-r-' in r.body.replace(b'":"', b'": "')
    proxy.state.api.explain = explain_api  # what the runner installs
    r = await c.request("/api/explain?url=http://m/api/v1", "x")  # explain answers over HTTP/2 as well
    match = json.loads(r.body)["match"]
    assert match["router"].startswith("default-r-") and match["servers"] == [f"http://127.0.0.1:{backend.port}"]
    c.close()


async def test_access_logs_and_tls_metrics_over_h2(make_proxy, backend, grpc_backend, tmp_path):
    """HTTP/2 requests get the same access-log records and metric families as HTTP/1.1 ones."""
    crt, key = self_signed("s.example.com")
    path = tmp_path / "access.json"
    proxy = await tls_proxy(make_proxy, "--accesslog.format=json", f"--accesslog.filepath={path}",
                            "--metrics.prometheus", "--entrypoints.traefik.address=127.0.0.1:0")
    proxy.load(service_yaml("whoami", backend.port) + service_yaml("g", grpc_backend.port) + secret("s", crt, key)
               + route("Host(`s.example.com`)", extra="entryPoints: [websecure]\n  tls: {secretName: s}")
               + route("Host(`g`)", svc="g", name="g", scheme="h2c", extra="entryPoints: [web]"))
    async with httpx.AsyncClient(http2=True, verify=client_tls()) as c:
        r = await c.post(f"https://127.0.0.1:{proxy.ports['websecure']}/up?x=1", content=b"abc",
                         headers={"host": "s.example.com"}, extensions={"sni_hostname": "s.example.com"})
        assert r.http_version == "HTTP/2" and r.status_code == 200
    c2 = await H2Client.connect(proxy.ports["web"])
    g = await c2.request("/pk.Echo/Unary", "g", "POST", [("content-type", "application/grpc"), ("te", "trailers")],
                         grpc_frame(b"log"))
    assert g.trailers["grpc-status"] == "0"
    missing = await c2.request("/", "nobody")
    assert missing.status == 404
    c2.close()
    await asyncio.sleep(0)
    proxy.state.access_log.flush()
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(recs) == 3, recs
    tls_rec, grpc_rec, missing_rec = recs
    assert tls_rec["RequestProtocol"] == "HTTP/2.0" and tls_rec["RequestScheme"] == "https"
    assert tls_rec["RequestPath"] == "/up?x=1" and tls_rec["RequestContentSize"] == 3
    assert tls_rec["DownstreamStatus"] == tls_rec["OriginStatus"] == 200
    assert tls_rec["DownstreamContentSize"] == len(r.content) and tls_rec["TLSVersion"] in ("1.2", "1.3")
    assert tls_rec["ServiceURL"] == f"http://127.0.0.1:{backend.port}" and tls_rec["entryPointName"] == "websecure"
    assert grpc_rec["ServiceURL"] == f"h2c://127.0.0.1:{grpc_backend.port}" and grpc_rec["OriginStatus"] == 200
    assert grpc_rec["RequestProtocol"] == "HTTP/2.0" and grpc_rec["DownstreamContentSize"] == len(g.body)
    assert grpc_rec["OriginDuration"] > 0
    assert missing_rec["DownstreamStatus"] == 404 and missing_rec["OriginStatus"] == 0
    metrics = proxy.state.metrics.snapshot()
    text = render([metrics]).decode()
    assert any(line.startswith("traefik_entrypoint_requests_tls_total{") and 'entrypoint="websecure"' in line
               for line in text.splitlines()), text
    assert 'traefik_open_connections{entrypoint="web",protocol="TCP"}' in text


async def test_bodies_both_ways_with_flow_control(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a`)"))
    body = bytes(range(256)) * 12_000  # 3 MB, several client windows
    async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as c:
        r = await c.post(f"http://127.0.0.1:{proxy.port}/up", headers={"host": "a"}, content=body)
        assert r.status_code == 200 and len(r.json()["body"].encode("latin-1")) == len(body)
        chunks = [body[i:i + 100_000] for i in range(0, len(body), 100_000)]

        async def gen():
            for ch in chunks:
                yield ch
        r = await c.post(f"http://127.0.0.1:{proxy.port}/chunked", headers={"host": "a"}, content=gen())
        assert r.status_code == 200 and r.json()["body"].encode("latin-1") == body
        r = await c.get(f"http://127.0.0.1:{proxy.port}/big", headers={"host": "a"})
        assert r.status_code == 200 and r.content == b"x" * 200_000
        r = await c.get(f"http://127.0.0.1:{proxy.port}/stream", headers={"host": "a"})
        assert r.content == b"chunk0chunk1chunk2"
        r = await c.head(f"http://127.0.0.1:{proxy.port}/", headers={"host": "a"})
        assert r.status_code == 200 and r.content == b""


async def test_many_streams_on_one_connection(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a`)"))
    c = await H2Client.connect(proxy.port)
    sids = [c.start(f"/n{i}", "a") for i in range(100)]
    results = [await c.finish(s) for s in sids]
    assert [json.loads(r.body)["url"] for r in results] == [f"/n{i}" for i in range(100)]
    c.close()


async def test_max_concurrent_streams_flag_in_settings(make_proxy):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entryPoints.web.http2.maxConcurrentStreams=7")
    raw = await RawH2.connect(proxy.port)
    raw.send(PREFACE, SettingsFrame(0).serialize())
    frames = await raw.frames(timeout=1.0, until_goaway=False)
    settings = next(f for f in frames if isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    assert settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 7
    assert settings.settings[SettingsFrame.MAX_HEADER_LIST_SIZE] == 1 << 20
    raw.close()


def test_http2_flags_are_validated():
    from pyk3s.addons.ingress.config.errors import ConfigError
    from pyk3s.addons.ingress.config.static import static_from_flags
    ep = static_from_flags(["--entrypoints.web.address=:80", "--entrypoints.web.http2.maxconcurrentstreams=0"]).entrypoints["web"]
    assert ep.h2_max_streams == 250  # 0 is Go's default
    with pytest.raises(ConfigError, match="max concurrent streams value must be greater than or equal to zero"):
        static_from_flags(["--entrypoints.web.address=:80", "--entrypoints.web.http2.maxConcurrentStreams=-1"])
    ep = static_from_flags(["--entrypoints.web.address=:80", "--entrypoints.web.transport.lifeCycle.graceTimeOut=3s"]).entrypoints["web"]
    assert ep.grace_timeout == 3.0


# ------------------------------------------------------------------------------------------- upstreams
async def test_h2c_backend_multiplexes_one_connection(make_proxy, grpc_backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("g", grpc_backend.port) + route("Host(`g`)", svc="g", scheme="h2c"))
    c = await H2Client.connect(proxy.port)
    hdrs = [("content-type", "application/grpc"), ("te", "trailers")]
    sids = [c.start("/pk.Echo/Unary", "g", "POST", hdrs, grpc_frame(b"m%d" % i)) for i in range(40)]
    results = [await c.finish(s) for s in sids]
    assert all(r.status == 200 and r.trailers.get("grpc-status") == "0" for r in results)
    assert results[7].body == grpc_frame(b"echo:m7")
    c.close()
    pools = list(proxy.state.h2_pools.values())
    assert len(pools) == 1 and len(pools[0].conns) == 1
    assert len(grpc_backend.peers) == 1  # one TCP connection carried every call


async def test_http11_client_to_h2c_backend_gets_chunked_trailers(make_proxy, grpc_backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("g", grpc_backend.port) + route("Host(`g`)", svc="g", scheme="h2c"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    msg = grpc_frame(b"hi")
    writer.write(b"POST /pk.Echo/Unary HTTP/1.1\r\nHost: g\r\nContent-Type: application/grpc\r\nTE: trailers\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(msg), msg))
    data = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Transfer-Encoding: chunked" in head
    assert rest.endswith(b"0\r\nGrpc-Status: 0\r\nGrpc-Message: \r\nX-Trail: t1\r\n\r\n"), rest[-80:]
    assert b"\r\nContent-Type: application/grpc\r\n" in head  # an HTTP/2 backend's names, as Go writes them


async def test_https_backend_alpn_h2_and_http11_fallback(make_proxy, backend):
    crt, key = self_signed("localhost")
    tls_grpc = GrpcBackend(tls=(crt, key)).start()
    # an HTTP/1.1-only TLS backend: the echo backend behind TLS
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    import tempfile
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as f:
        f.write(crt + key)
        f.flush()
        server_ctx.load_cert_chain(f.name)
    from ingress_support import _BackendConn
    loop = asyncio.get_running_loop()
    h1 = await loop.create_server(lambda: _BackendConn(backend), "127.0.0.1", 0, ssl=server_ctx)
    h1_port = h1.sockets[0].getsockname()[1]
    grpc_head = [("content-type", "application/grpc"), ("te", "trailers")]

    def transport(name: str, spec: str) -> str:
        return (f"apiVersion: traefik.io/v1alpha1\nkind: ServersTransport\nmetadata: {{name: {name}, namespace: default}}\n"
                f"spec: {spec}\n---\n")

    def routes(transport_name: str) -> str:
        st = f", serversTransport: {transport_name}"
        return (service_yaml("g", tls_grpc.port) + service_yaml("w", h1_port) + transport("skip", "{insecureSkipVerify: true}")
                + transport("h1", "{insecureSkipVerify: true, disableHTTP2: true}")
                + route("Host(`g`)", svc="g", scheme="https" + st) + route("Host(`w`)", svc="w", name="w", scheme="https" + st))
    try:
        proxy = await make_proxy()
        # servers' certificates are verified as for HTTP/1.1: a self-signed one is refused (UNAVAILABLE)
        proxy.load(routes("skip").replace(", serversTransport: skip", ""))
        c = await H2Client.connect(proxy.port)
        r = await c.request("/pk.Echo/Unary", "g", "POST", grpc_head, grpc_frame(b"tls"))
        assert r.status == 200 and r.headers["grpc-status"] == "14" and not tls_grpc.peers
        # disableHTTP2: ALPN offers http/1.1 only, and a gRPC server refuses that
        proxy.load(routes("h1"))
        r = await c.request("/pk.Echo/Unary", "g", "POST", grpc_head, grpc_frame(b"tls"))
        assert r.headers.get("grpc-status") == "14" and not tls_grpc.peers
        names = {p.target.transport.name: p.h1_only for p in proxy.state.h2_pools.values()}
        assert names == {"default@internal": False, "default-h1@kubernetescrd": True}, names
        proxy.load(routes("skip"))
        r = await c.request("/pk.Echo/Unary", "g", "POST", grpc_head, grpc_frame(b"tls"))
        assert r.status == 200 and r.body == grpc_frame(b"echo:tls") and r.trailers["grpc-status"] == "0"
        for i in range(3):
            r = await c.request(f"/h1/{i}", "w")
            assert r.status == 200 and json.loads(r.body)["url"] == f"/h1/{i}"
        c.close()
        r1 = await http(proxy.port, "/via-h1-client", host="w")
        assert r1.status == 200
        pools = {k[2]: p for k, p in proxy.state.h2_pools.items() if p.target.transport.name.startswith("default-skip")}
        assert not pools[tls_grpc.port].h1_only and pools[h1_port].h1_only
    finally:
        h1.close()
        tls_grpc.stop()


async def test_websocket_stays_on_http11_to_an_h2c_service(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`ws`)", scheme="h2c"))
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101")
    writer.write(b"ping")
    assert await asyncio.wait_for(reader.readexactly(9), 5) == b"echo:ping"
    writer.close()


# ------------------------------------------------------------------------------------------- GOAWAY
async def test_graceful_goaway_on_drain_lets_open_streams_finish(make_proxy, grpc_backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("g", grpc_backend.port) + route("Host(`g`)", svc="g", scheme="h2c"))
    raw = await RawH2.connect(proxy.port)
    cc = H2Connection(H2Configuration(client_side=True))
    cc.initiate_connection()
    cc.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":authority", "g"), (":path", "/pk.Echo/Unary"),
                        ("content-type", "application/grpc"), ("te", "trailers")])
    cc.send_data(1, grpc_frame(b"sleep0.5"), end_stream=True)
    raw.send(cc.data_to_send())
    # and a real gRPC client with a call in flight on its own connection
    call = Threaded(lambda: grpc_call(proxy.port, "g", "Unary", b"sleep0.6"))
    await asyncio.sleep(0.3)
    for s in proxy.servers:
        s.close()
    drain = asyncio.get_running_loop().create_task(proxy.state.drain(5.0))
    frames = await raw.frames(timeout=5.0, until_goaway=False)
    goaway = goaway_of(frames)
    assert goaway is not None and goaway.error_code == 0 and goaway.last_stream_id == 1
    after = frames[frames.index(goaway) + 1:]
    assert any(isinstance(f, HeadersFrame) and f.stream_id == 1 for f in after)  # the answer came after
    assert any(f.stream_id == 1 and "END_STREAM" in f.flags for f in after)
    assert await raw.closed(5.0)
    await asyncio.wait_for(drain, 5)
    call.thread.join(5)
    assert call.error is None and call.result[0] == b"echo:sleep0.6"
    assert not proxy.state.h2_clients


async def test_goaway_when_the_tls_configuration_of_a_connection_changes(make_proxy, backend):
    crt, key = self_signed("s.example.com")
    crt2, key2 = self_signed("s.example.com")
    proxy = await tls_proxy(make_proxy)
    base = service_yaml("whoami", backend.port) + route("Host(`s.example.com`)", extra="entryPoints: [websecure]\n  tls: {secretName: s}")
    proxy.load(base + secret("s", crt, key))
    c = await H2Client.connect(proxy.ports["websecure"], client_tls(), "s.example.com")
    assert (await c.request("/", "s.example.com")).status == 200
    proxy.load(base + secret("s", crt, key) + route("Host(`other`)", name="o"))  # routing change only
    await asyncio.sleep(0.1)
    assert c.goaway is None
    proxy.load(base + secret("s", crt2, key2))  # the certificate was renewed
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.goaway is not None and c.goaway.error_code == 0
    c2 = await H2Client.connect(proxy.ports["websecure"], client_tls(), "s.example.com")
    assert (await c2.request("/", "s.example.com")).status == 200
    c2.close()


async def test_idle_h2_connection_gets_goaway(make_proxy, backend):
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a`)"))
    c = await H2Client.connect(proxy.port)
    assert (await c.request("/", "a")).status == 200
    conn = next(iter(proxy.state.h2_clients))
    assert isinstance(conn, H2ClientConnection)
    assert conn.idle(conn.last_active + 1000, 180.0)
    await asyncio.wait_for(c.closed.wait(), 5)
    assert c.goaway is not None and c.goaway.error_code == 0


async def test_refused_after_goaway(make_proxy, backend):
    """Streams the client opens after our GOAWAY are refused (REFUSED_STREAM: safe to retry)."""
    proxy = await make_proxy()
    proxy.load(service_yaml("whoami", backend.port) + route("Host(`a`)"))
    raw = await RawH2.connect(proxy.port)
    cc = H2Connection(H2Configuration(client_side=True))
    cc.initiate_connection()
    cc.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/stream")])
    raw.send(cc.data_to_send())
    await asyncio.sleep(0.05)
    conn = next(iter(proxy.state.h2_clients))
    conn.goaway()
    cc.send_headers(3, [(":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/late")],
                    end_stream=True)
    raw.send(cc.data_to_send())
    frames = await raw.frames(timeout=2.0, until_goaway=False)
    assert any(isinstance(f, GoAwayFrame) and f.last_stream_id == 1 for f in frames)
    assert any(isinstance(f, RstStreamFrame) and f.stream_id == 3 and f.error_code == 7 for f in frames)
    raw.close()



async def test_h2_upstream_answer_with_length_and_trailers(make_proxy):
    """A length on an HTTP/2 upstream's answer does not end the client's stream: trailers may follow."""
    b = await H2Backend(headers=[("content-type", "application/grpc"), ("content-length", "7")], body=b"\0\0\0\0\2hi",
                        trailers=[("grpc-status", "0"), ("x-t", "1")]).start()
    try:
        proxy = await make_proxy()
        proxy.load(service_yaml("b", b.port) + route("Host(`b`)", svc="b", scheme="h2c"))
        c = await H2Client.connect(proxy.port)
        r = await c.request("/", "b", "POST", [("content-type", "application/grpc")], b"\0\0\0\0\0")
        c.close()
        assert r.body == b"\0\0\0\0\2hi" and r.trailers == {"grpc-status": "0", "x-t": "1"}
        r1 = await http(proxy.port, "/", host="b", method="POST", body=b"\0\0\0\0\0")
        assert r1.status == 200 and r1.headers.get("content-length") == "7" and r1.body == b"\0\0\0\0\2hi"
    finally:
        b.close()


def test_field_cache_encoder_decodes_like_hpack():
    from hpack import Decoder

    from pyk3s.addons.ingress.proxy.h2conn import FieldCacheEncoder
    enc, dec = FieldCacheEncoder(), Decoder()
    blocks = [[(b":status", b"200"), (b"content-type", b"text/plain"), (b"x-n", b"%d" % i),
               (b"set-cookie", b"s=%d" % i), (b"x-long", b"v" * 1000)] for i in range(3)]
    for block in blocks:
        assert dec.decode(enc.encode(block), raw=True) == block
    assert len(dec.header_table.dynamic_entries) == 0  # nothing indexed: every block stands alone
