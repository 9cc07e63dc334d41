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
