"""End-to-end: `pyk3s traefik` (2 worker processes) against a real pyk3s API server via kubeconfig, driven
with real kubectl: the packaged CRDs, then the K3s guide's dashboard example (Secret + IngressRoute +
Middleware), then real HTTP: 401 without credentials, the dashboard and /api/overview with test:test."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import yaml

pytestmark = pytest.mark.e2e

GUIDE = """apiVersion: v1
kind: Secret
metadata:
  name: pk-authsecret
  namespace: default
data:
  users: |2
    dGVzdDokYXByMSRINnVza2trVyRJZ1hMUDZld1RyU3VCa1RycUU4d2ovCnRlc3QyOiRhcHIxJGQ5aHI5SEJCJDRIeHdnVWlyM0hQNEVzZ2dQL1FObzAK
---
apiVersion: traefik.containo.us/v1alpha1
kind: IngressRoute
metadata:
  name: pk-traefik-dashboard
spec:
  routes:
  - match: Host(`traefik.example.com`) && (PathPrefix(`/api`) || PathPrefix(`/dashboard`))
    kind: Rule
    services:
    - name: api@internal
      kind: TraefikService
    middlewares:
      - name: pk-auth
---
apiVersion: traefik.containo.us/v1alpha1
kind: Middleware
metadata:
  name: pk-auth
spec:
  basicAuth:
    secret: pk-authsecret
"""


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _get(port: int, path: str, auth: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "traefik.example.com"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_guide_dashboard_through_standalone_traefik(api_server, tmp_path) -> None:  # noqa: ANN001
    # the packaged CRDs and IngressClass, as the helm controller renders traefik.yaml's charts
    from pyk3s.controllers.helm.chart import Release
    from pyk3s.controllers.helm.charts import CHARTS

    crds = [m.obj for chart in CHARTS for m in chart.render({}, Release(chart.name, "kube-system")).objects
            if m.obj["kind"] in ("CustomResourceDefinition", "IngressClass")]
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump_all(crds))
    api_server.kubectl("apply", "-f", str(tmp_path / "crds.yaml"))
    api_server.wait_for(lambda: api_server.kubectl("get", "ingressroutes.traefik.containo.us", check=False).rc == 0,
                        what="CRDs served")
    api_server.kubectl("apply", "-f", "-", input=GUIDE)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "traefik", "--kubeconfig", str(api_server.kubeconfig),
                             f"--entryPoints.web.address=127.0.0.1:{port}", "--providers.kubernetescrd",
                             "--api.dashboard=true", "--workers=2", "--log.level=INFO"])
    try:
        deadline = time.time() + 30
        status = 0
        while time.time() < deadline:
            try:
                status, _ = _get(port, "/dashboard/")
                if status == 401:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        assert status == 401
        for _ in range(6):  # several connections land on both workers
            code, body = _get(port, "/dashboard/", "test:test")
            assert code == 200 and b"<title>" in body
        code, body = _get(port, "/api/overview", "test2:test2")
        assert code == 200 and json.loads(body)["http"]["routers"]["total"] == 1
        assert _get(port, "/dashboard/", "test:nope")[0] == 401
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        api_server.kubectl("delete", "-f", "-", input=GUIDE, check=False)


HEALTH = """apiVersion: v1
kind: Service
metadata: {{name: pk-hc-ext, namespace: default}}
spec: {{type: ExternalName, externalName: 127.0.0.1, ports: [{{name: http, port: {port}}}]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: pk-hc, namespace: default}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`hc.example.com`)
    kind: Rule
    services:
    - name: pk-hc-ext
      port: {port}
      healthCheck: {{path: /health, interval: 200ms, timeout: 1s}}
"""


def test_health_check_through_standalone_traefik(api_server, tmp_path) -> None:  # noqa: ANN001
    """An ExternalName service with a healthCheck: the backend's /health going 500 takes it out of rotation
    in every worker (503, serverStatus DOWN in the API) and its recovery brings it back."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from pyk3s.controllers.helm.chart import Release
    from pyk3s.controllers.helm.charts import CHARTS

    health = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            code = health["status"] if self.path == "/health" else 200
            body = b"pk-hc-backend"
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    backend = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    crds = [m.obj for chart in CHARTS for m in chart.render({}, Release(chart.name, "kube-system")).objects
            if m.obj["kind"] in ("CustomResourceDefinition", "IngressClass")]
    (tmp_path / "crds.yaml").write_text(yaml.safe_dump_all(crds))
    api_server.kubectl("apply", "-f", str(tmp_path / "crds.yaml"))
    api_server.wait_for(lambda: api_server.kubectl("get", "ingressroutes.traefik.io", check=False).rc == 0,
                        what="CRDs served")
    docs = HEALTH.format(port=backend.server_address[1])
    api_server.kubectl("apply", "-f", "-", input=docs)
    port, api = _free_port(), _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pyk3s", "traefik", "--kubeconfig", str(api_server.kubeconfig),
                             f"--entryPoints.web.address=127.0.0.1:{port}",
                             f"--entryPoints.traefik.address=127.0.0.1:{api}", "--api.insecure",
                             "--providers.kubernetescrd", "--providers.kubernetescrd.allowExternalNameServices=true",
                             "--workers=2", "--log.level=INFO"])

    def hc(path: str = "/") -> int:
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "hc.example.com"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            return 0

    def statuses() -> set[str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/api/http/services", timeout=5) as resp:
            services = json.loads(resp.read())
        return {s for svc in services for s in (svc.get("serverStatus") or {}).values()}

    def settle(code: int, server: str) -> bool:
        """Every worker answers ``code`` and the supervisor's API shows the server ``server``."""
        deadline = time.time() + 20
        while time.time() < deadline:
            # several connections land on both workers
            if all(hc() == code for _ in range(6)) and statuses() == {server}:
                return True
            time.sleep(0.2)
        return False

    try:
        assert settle(200, "UP")
        health["status"] = 500
        assert settle(503, "DOWN")
        health["status"] = 200
        assert settle(200, "UP")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        backend.shutdown()
        backend.server_close()
        api_server.kubectl("delete", "-f", "-", input=docs, check=False)
