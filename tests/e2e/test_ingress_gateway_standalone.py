"""End-to-end: `pyk3s traefik --objects FILE --providers.kubernetesgateway` as a process (2 workers): a
GatewayClass, a Gateway whose listener port is the web entry point's, an HTTPRoute with a path match, a
header match, a request header filter, a redirect and a missing backend; real HTTP to loopback
backends. A listener on a port no entry point has is refused and said in the log."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Echo(http.server.BaseHTTPRequestHandler):
    name = ""

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"name": self.name, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backends() -> Iterator[dict[str, int]]:
    servers = {}
    for name in ("one", "two"):
        handler = type(f"Echo_{name}", (_Echo,), {"name": name})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[name] = srv
    yield {n: s.server_address[1] for n, s in servers.items()}
    for s in servers.values():
        s.shutdown()
        s.server_close()


def _service(name: str, port: int) -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  clusterIP: 10.43.0.10
  ports: [{{name: http, port: 80, protocol: TCP, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-x, namespace: default, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}, protocol: TCP}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
"""


def _objects(web: int, backends: dict[str, int]) -> str:
    return _service("one", backends["one"]) + _service("two", backends["two"]) + f"""
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: traefik}}
spec: {{controllerName: traefik.io/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: traefik
  listeners:
  - {{name: web, protocol: HTTP, port: {web}}}
  - {{name: nowhere, protocol: HTTP, port: 1, hostname: nowhere.example.com}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: web}}]
  hostnames: [app.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /api}}}}]
    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{add: [{{name: X-Gateway, value: pyk3s}}]}}}}]
    backendRefs: [{{name: one, port: 80}}]
  - matches: [{{headers: [{{name: X-Canary, value: "on"}}]}}]
    backendRefs: [{{name: two, port: 80}}]
  - matches: [{{path: {{type: Exact, value: /old}}}}]
    filters: [{{type: RequestRedirect, requestRedirect: {{path: {{type: ReplaceFullPath, replaceFullPath: /new}}}}}}]
  - matches: [{{path: {{type: PathPrefix, value: /gone}}}}]
    backendRefs: [{{name: missing, port: 80}}]
"""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "app.example.com", **(headers or {})})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_httproute_through_standalone_traefik(tmp_path, backends) -> None:  # noqa: ANN001
    web = _free_port()
    objects = tmp_path / "gateway.yaml"
    objects.write_text(_objects(web, backends))
    log = tmp_path / "traefik.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "traefik", f"--objects={objects}",
                                 f"--entrypoints.web.address=127.0.0.1:{web}", "--providers.kubernetesgateway",
                                 "--workers=2", "--log.level=WARN"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            try:
                status, _, _ = _get(web, "/api/x")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 200, log.read_text()
        code, _, body = _get(web, "/api/x")
        seen = json.loads(body)
        assert code == 200 and seen["name"] == "one" and seen["headers"]["x-gateway"] == "pyk3s"
        code, _, body = _get(web, "/other", {"X-Canary": "on"})
        assert code == 200 and json.loads(body)["name"] == "two"
        code, headers, _ = _get(web, "/old")
        assert code == 302 and headers["Location"] == "http://app.example.com/new"
        code, _, body = _get(web, "/gone")
        assert code == 500 and body == b""
        code, _, _ = _get(web, "/other")
        assert code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    text = log.read_text()
    assert "listener nowhere: PortUnavailable" in text
