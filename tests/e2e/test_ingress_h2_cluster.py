"""End-to-end: HTTP/2 and gRPC through the packaged ingress of a real `pyk3s server` with its agent.

One module-scoped cluster (traefik and servicelb on); real packets to the node address on a link of our
own, in file order:

1. HTTP/2 to clients: ``curl --http2`` and ``httpx`` (HTTP/2) through websecure (port 443, ALPN h2) get
   HTTP/2 answers from whoami; ``curl --http2-prior-knowledge`` (h2c) on web (port 80) too; HTTP/1.1 and
   the routing decisions are unchanged.
2. gRPC: a grpcio server in a pod behind an IngressRoute with ``scheme: h2c`` and behind an Ingress whose
   Service carries ``traefik.ingress.kubernetes.io/service.serversscheme: h2c``; a grpcio client
   through port 80 makes unary, server-, client- and bidi-streaming calls, gets trailers (status,
   message, trailing metadata) and a deadline that expires; no router is UNIMPLEMENTED.
3. grpcWeb from a plain HTTP/1.1 client (curl --http1.1) to the same gRPC server.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

PY = sys.executable

GRPC_SERVER = """
import time
from concurrent import futures
import grpc

def unary(req, ctx):
    ctx.set_trailing_metadata((("x-served-by", "grpc-pod"),))
    if req == b"fail":
        ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused on purpose")
    if req.startswith(b"sleep"):
        time.sleep(float(req[5:]))
    return b"echo:" + req

handler = grpc.method_handlers_generic_handler("pk.Echo", {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "Server": grpc.unary_stream_rpc_method_handler(lambda req, ctx: (b"item%d" % i for i in range(int(req)))),
    "Client": grpc.stream_unary_rpc_method_handler(lambda it, ctx: b",".join(it)),
    "Bidi": grpc.stream_stream_rpc_method_handler(lambda it, ctx: (m.upper() for m in it)),
})
server = grpc.server(futures.ThreadPoolExecutor(8))
server.add_generic_rpc_handlers((handler,))
server.add_insecure_port("0.0.0.0:50051")
server.start()
server.wait_for_termination()
"""

APPS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: whoami}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: whoami}}}}
  template:
    metadata: {{labels: {{app: whoami}}}}
    spec:
      containers:
      - name: whoami
        image: pyk3s/whoami
        args: ["--port", "8080"]
        ports: [{{containerPort: 8080, name: web}}]
        readinessProbe: {{httpGet: {{path: /health, port: web}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: whoami}}
spec:
  selector: {{app: whoami}}
  ports: [{{name: http, port: 80, targetPort: web}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: grpc}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: grpc}}}}
  template:
    metadata: {{labels: {{app: grpc}}}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: grpc
        image: pyk3s/whoami
        command: {json.dumps([PY, "-c", GRPC_SERVER])}
        ports: [{{containerPort: 50051, name: grpc}}]
        readinessProbe: {{tcpSocket: {{port: grpc}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: grpc}}
spec:
  selector: {{app: grpc}}
  ports: [{{name: grpc, port: 50051, targetPort: grpc}}]
---
apiVersion: v1
kind: Service
metadata:
  name: grpc-ing
  annotations: {{traefik.ingress.kubernetes.io/service.serversscheme: h2c}}
spec:
  selector: {{app: grpc}}
  ports: [{{name: grpc, port: 50051, targetPort: grpc}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: h2}}
spec:
  entryPoints: [web, websecure]
  routes:
  - match: Host(`h2.example.com`)
    kind: Rule
    services: [{{name: whoami, port: 80}}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: h2-secure}}
spec:
  entryPoints: [websecure]
  tls: {{}}
  routes:
  - match: Host(`h2.example.com`)
    kind: Rule
    services: [{{name: whoami, port: 80}}]
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: grpcweb}}
spec:
  grpcWeb: {{allowOrigins: ["*"]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: grpc}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`grpc.example.com`)
    kind: Rule
    services: [{{name: grpc, port: 50051, scheme: h2c}}]
  - match: Host(`grpcweb.example.com`)
    kind: Rule
    middlewares: [{{name: grpcweb}}]
    services: [{{name: grpc, port: 50051, scheme: h2c}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: grpc-ing}}
spec:
  rules:
  - host: grpc-ing.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: grpc-ing, port: {{number: 50051}}}}}}}}
"""


def curl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5)


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True)
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert server.ident not in links and server.nft_table not in tables, "cluster left links or nft tables"


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    ip = srv.node.ip
    srv.kubectl("apply", "-f", "-", input=APPS)
    for app in ("whoami", "grpc"):
        srv.wait_for(lambda app=app: any(is_ready(p) for p in srv.kubectl(
            "get", "pods", "-l", f"app={app}", "-o", "json").json()["items"]), timeout=120, what=f"{app} Ready")
    srv.wait_for(lambda: curl("-H", "Host: h2.example.com", f"http://{ip}/").stdout.startswith("Hostname: whoami-"),
                 timeout=120, what="the ingress routing to whoami on port 80")
    return ip


# -- 1. HTTP/2 to clients --------------------------------------------------------------------------------

def test_curl_and_httpx_get_http2_through_websecure(srv: ServerProcess, node_ip: str) -> None:
    resolve = ("--resolve", f"h2.example.com:443:{node_ip}")
    res = srv.wait_for(lambda: (r := curl("-k", "--http2", "-i", *resolve, "https://h2.example.com/tls")).returncode == 0
                       and r.stdout.startswith("HTTP/2 200") and r, timeout=30, what="HTTP/2 over TLS")
    body = res.stdout.split("\n\n", 1)[1] if "\n\n" in res.stdout else res.stdout.split("\r\n\r\n", 1)[1]
    assert body.startswith("Hostname: whoami-") and "X-Forwarded-Proto: https" in body
    assert "GET /tls HTTP/1.1" in body  # whoami is spoken to over HTTP/1.1

    import httpx
    with httpx.Client(http2=True, verify=False, timeout=10) as client:
        r = client.get(f"https://{node_ip}/x", headers={"host": "h2.example.com"},
                       extensions={"sni_hostname": "h2.example.com"})
    assert r.http_version == "HTTP/2" and r.status_code == 200 and r.text.startswith("Hostname: whoami-")
    # no route: the same 404 as over HTTP/1.1
    res = curl("-k", "--http2", "-i", "--resolve", f"none.example.com:443:{node_ip}", "https://none.example.com/")
    assert res.stdout.startswith("HTTP/2 404") and res.stdout.endswith("404 page not found\n")


def test_h2c_prior_knowledge_on_web(srv: ServerProcess, node_ip: str) -> None:
    res = curl("--http2-prior-knowledge", "-i", "-H", "Host: h2.example.com", f"http://{node_ip}/plain?q=1")
    assert res.stdout.startswith("HTTP/2 200"), res.stdout[:200] + res.stderr
    assert "GET /plain?q=1 HTTP/1.1" in res.stdout and "X-Forwarded-Proto: http\r" not in res.stdout
    res = curl("-i", "-H", "Host: h2.example.com", f"http://{node_ip}/plain")
    assert res.stdout.startswith("HTTP/1.1 200")


# -- 2. gRPC ---------------------------------------------------------------------------------------------

def _channel(node_ip: str, authority: str):  # noqa: ANN202 - grpc has no type information
    import grpc
    return grpc.insecure_channel(f"{node_ip}:80", options=[("grpc.default_authority", authority)])


@pytest.mark.parametrize("authority", ["grpc.example.com", "grpc-ing.example.com"],
                         ids=["ingressroute-scheme-h2c", "ingress-serversscheme-annotation"])
def test_grpc_unary_and_streaming_calls(srv: ServerProcess, node_ip: str, authority: str) -> None:
    import grpc

    def unary() -> tuple[bytes, object]:
        with _channel(node_ip, authority) as ch:
            return ch.unary_unary("/pk.Echo/Unary").with_call(b"hello", timeout=10)

    reply, call = srv.wait_for(lambda: _try(unary), timeout=60, what=f"a gRPC answer through {authority}")
    assert reply == b"echo:hello" and call.code() == grpc.StatusCode.OK
    assert ("x-served-by", "grpc-pod") in [tuple(m) for m in call.trailing_metadata()]
    with _channel(node_ip, authority) as ch:
        assert list(ch.unary_stream("/pk.Echo/Server")(b"4", timeout=10)) == [b"item0", b"item1", b"item2", b"item3"]
        assert ch.stream_unary("/pk.Echo/Client")(iter([b"a", b"b"]), timeout=10) == b"a,b"
        assert list(ch.stream_stream("/pk.Echo/Bidi")(iter([b"x", b"y", b"z"]), timeout=10)) == [b"X", b"Y", b"Z"]
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary("/pk.Echo/Unary")(b"fail", timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and err.value.details() == "refused on purpose"
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            ch.unary_unary("/pk.Echo/Unary")(b"sleep5", timeout=1.0)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - t0 < 4


def test_grpc_without_a_router_is_unimplemented(srv: ServerProcess, node_ip: str) -> None:
    import grpc
    with _channel(node_ip, "nothing.example.com") as ch, pytest.raises(grpc.RpcError) as err:
        ch.unary_unary("/pk.Echo/Unary")(b"x", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


# -- 3. grpcWeb ------------------------------------------------------------------------------------------

def test_grpcweb_from_a_plain_http11_client(srv: ServerProcess, node_ip: str, tmp_path) -> None:  # noqa: ANN001
    msg = b"web"
    body = tmp_path / "req.bin"
    body.write_bytes(b"\x00" + len(msg).to_bytes(4, "big") + msg)
    out = tmp_path / "resp.bin"
    res = curl("--http1.1", "-D", "-", "-o", str(out), "-H", "Host: grpcweb.example.com", "-H",
               "Content-Type: application/grpc-web+proto", "-H", "X-Grpc-Web: 1", "-H", "Origin: https://app.example",
               "--data-binary", f"@{body}", f"http://{node_ip}/pk.Echo/Unary")
    head = res.stdout
    assert head.startswith("HTTP/1.1 200"), head + res.stderr
    assert "Content-Type: application/grpc-web\n" in head  # the backend's application/grpc, renamed
    assert "Access-Control-Allow-Origin: https://app.example" in head
    data = out.read_bytes()
    expect = b"echo:web"
    assert data[:5 + len(expect)] == b"\x00" + len(expect).to_bytes(4, "big") + expect
    trailer = data[5 + len(expect):]
    assert trailer[:1] == b"\x80" and b"grpc-status: 0\r\n" in trailer and b"x-served-by: grpc-pod\r\n" in trailer
    # the text mode
    res = curl("--http1.1", "-H", "Host: grpcweb.example.com", "-H", "Content-Type: application/grpc-web-text",
               "--data-binary", base64.b64encode(body.read_bytes()).decode(), f"http://{node_ip}/pk.Echo/Unary")
    decoded = b"".join(base64.b64decode(p + "=" * (-len(p) % 4)) for p in res.stdout.split("=") if p)
    assert decoded.startswith(b"\x00\x00\x00\x00\x08echo:web") and b"grpc-status: 0" in decoded


def _try(fn):  # noqa: ANN001, ANN202 - a value, or None while the route is not there yet
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None
