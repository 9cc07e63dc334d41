"""End-to-end: HTTPS backends, access logs and metrics of the packaged ingress in a real cluster.

One module-scoped cluster (`pyk3s server` with its agent and the packaged traefik.yaml), tests in order:

1. an HTTPS backend (whoami with a self-signed certificate from a Secret) is refused by default (502:
   the ingress verifies servers' certificates, as Traefik does) and answers once a ServersTransport
   trusts that certificate (rootCAs from a Secret, serverName), or skips verification;
2. a HelmChartConfig switches access logs on (JSON, a status-code filter) and router metrics: the
   Deployment rolls, ``kubectl logs`` shows Traefik's JSON records for the kept statuses only, and the
   metrics entry point serves the router, service and entry point series with Traefik's labels;
3. the same in the common format.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyk3s_server import ServerProcess

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("curl"),
                                 reason="needs root, nft and curl")]

HOST = "secure.pk.example"
SERVER_NAME = "backend.pk.internal"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _self_signed(tmp: Path) -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def _backend(crt: bytes, key: bytes) -> str:
    return f"""
apiVersion: v1
kind: Secret
metadata: {{name: pk-backend-tls}}
type: kubernetes.io/tls
data: {{tls.crt: {_b64(crt)}, tls.key: {_b64(key)}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: pk-backend-ca}}
data: {{ca.crt: {_b64(crt)}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: pk-secure}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: pk-secure}}}}
  template:
    metadata: {{labels: {{app: pk-secure}}}}
    spec:
      containers:
      - name: whoami
        image: traefik/whoami
        args: [--port, "8443", --cert, /certs/tls.crt, --key, /certs/tls.key]
        ports: [{{containerPort: 8443}}]
        volumeMounts: [{{name: certs, mountPath: /certs, readOnly: true}}]
      volumes: [{{name: certs, secret: {{secretName: pk-backend-tls}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: pk-secure}}
spec:
  selector: {{app: pk-secure}}
  ports: [{{name: https, port: 443, targetPort: 8443}}]
"""


def _route(transport: str = "") -> str:
    ref = f", serversTransport: {transport}" if transport else ""
    return f"""
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: pk-secure}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`{HOST}`)
    kind: Rule
    services: [{{name: pk-secure, port: 443{ref}}}]
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: pk-trust}}
spec:
  serverName: {SERVER_NAME}
  rootCAs: [{{secret: pk-backend-ca}}]
---
apiVersion: traefik.io/v1alpha1
kind: ServersTransport
metadata: {{name: pk-skip}}
spec: {{insecureSkipVerify: true}}
"""


def _chart_config(fmt: str) -> str:
    return f"""
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {{name: traefik, namespace: kube-system}}
spec:
  valuesContent: |-
    logs:
      access:
        enabled: true
        format: {fmt}
        filters:
          statuscodes: "200-299,404"
    metrics:
      prometheus:
        addRoutersLabels: true
"""


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True,
                          timeout=timeout + 5)


def is_ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])


def cmdline(p: dict) -> list[str]:
    pid = int(p["status"]["containerStatuses"][0]["containerID"].removeprefix("pyk3s://"))
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def traefik_pods(srv: ServerProcess) -> list[dict]:
    items = srv.kubectl("get", "pods", "-n", "kube-system", "-l", "app.kubernetes.io/name=traefik",
                        "-o", "json").json()["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def status_of(node_ip: str, host: str, path: str = "/") -> tuple[int, str]:
    r = curl("-i", "-H", f"Host: {host}", f"http://{node_ip}{path}")
    first = r.stdout.split("\n", 1)[0]
    return (int(first.split()[1]) if first.startswith("HTTP/") else 0), r.stdout


@pytest.fixture(scope="module")
def srv(kubectl_bin: str) -> Iterator[ServerProcess]:
    server = ServerProcess(agent=True)
    try:
        server.start(timeout=60)
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def node_ip(srv: ServerProcess) -> str:
    assert srv.node is not None
    srv.wait_for(lambda: any(is_ready(p) for p in traefik_pods(srv)), timeout=90, what="a Ready traefik pod")
    srv.wait_for(lambda: curl(f"http://{srv.node.ip}/").stdout == "404 page not found\n", timeout=60,
                 what="port 80 answering")
    return srv.node.ip


def rolled_with(srv: ServerProcess, flag: str) -> dict:
    def ready() -> dict | None:
        pods = traefik_pods(srv)
        good = [p for p in pods if is_ready(p) and flag in cmdline(p)]
        return good[0] if len(pods) == 1 and good else None
    return srv.wait_for(ready, timeout=120, interval=1, what=f"traefik rolled with {flag}")


def test_https_backend_refused_by_default_then_trusted(srv: ServerProcess, node_ip: str, tmp_path: Path) -> None:
    crt, key = _self_signed(tmp_path)
    srv.kubectl("apply", "-f", "-", input=_backend(crt, key))
    srv.wait_for(lambda: any(is_ready(p) for p in srv.kubectl("get", "pods", "-l", "app=pk-secure", "-o", "json")
                             .json()["items"]), timeout=60, what="the HTTPS backend Ready")
    srv.kubectl("apply", "-f", "-", input=_route())
    # the certificate is self-signed: refused, the request never reaches whoami
    code = srv.wait_for(lambda: (c := status_of(node_ip, HOST)[0]) in (502,) and c, timeout=30,
                        what="the route in place (502 from the unverified backend)")
    assert code == 502
    srv.kubectl("apply", "-f", "-", input=_route("pk-trust"))
    body = srv.wait_for(lambda: (s := status_of(node_ip, HOST, "/trusted"))[0] == 200 and s[1], timeout=30,
                        what="200 through the ServersTransport that trusts the certificate")
    assert "Hostname: pk-secure-" in body and "GET /trusted HTTP/1.1" in body
    assert f"Host: {HOST}" in body and "X-Forwarded-Proto: http" in body
    srv.kubectl("apply", "-f", "-", input=_route("pk-skip"))
    srv.wait_for(lambda: status_of(node_ip, HOST, "/skip")[0] == 200, timeout=30, what="insecureSkipVerify")


def _records(srv: ServerProcess, pod: dict) -> list[str]:
    return srv.kubectl("logs", "-n", "kube-system", pod["metadata"]["name"], check=False).out.splitlines()


def test_access_logs_json_with_filter_and_router_metrics(srv: ServerProcess, node_ip: str) -> None:
    srv.kubectl("apply", "-f", "-", input=_chart_config("json"))
    pod = rolled_with(srv, "--accesslog.format=json")
    srv.kubectl("apply", "-f", "-", input=_route("pk-trust"))
    srv.wait_for(lambda: status_of(node_ip, HOST, "/logged?x=1")[0] == 200, timeout=30, what="route served")
    assert status_of(node_ip, "nobody.pk.example", "/missing")[0] == 404
    srv.kubectl("apply", "-f", "-", input=_route())  # no transport: 502, filtered out (200-299,404 kept)
    srv.wait_for(lambda: status_of(node_ip, HOST, "/refused")[0] == 502, timeout=30, what="502 again")

    def records() -> list[dict] | None:
        out = []
        for line in _records(srv, pod):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "DownstreamStatus" in rec:
                out.append(rec)
        return out if any(r.get("RequestPath") == "/missing" for r in out) else None

    recs = srv.wait_for(records, timeout=30, what="access-log records in kubectl logs")
    ok = next(r for r in recs if r.get("RequestPath") == "/logged?x=1")
    assert ok["DownstreamStatus"] == 200 and ok["OriginStatus"] == 200 and ok["RequestHost"] == HOST
    assert ok["RouterName"].startswith("default-pk-secure-") and ok["RouterName"].endswith("@kubernetescrd")
    assert ok["ServiceURL"].startswith("https://") and ok["entryPointName"] == "web"
    assert ok["RequestMethod"] == "GET" and ok["RequestProtocol"] == "HTTP/1.1" and ok["Duration"] > 0
    assert ok["ClientHost"] and ok["RequestCount"] >= 1 and ok["level"] == "info"
    missing = next(r for r in recs if r.get("RequestPath") == "/missing")
    assert missing["DownstreamStatus"] == 404 and "RouterName" not in missing
    # 502 is outside the filter (the /refused requests answered 200 before the reload are kept)
    assert not any(r["DownstreamStatus"] == 502 for r in recs)

    ip = pod["status"]["podIP"]
    router = ok["RouterName"]
    wanted = [rf'traefik_router_requests_total\{{code="200",method="GET",protocol="http",'
              rf'router="{re.escape(router)}",service="[^"]+"\}} \d+',
              r'traefik_service_requests_total\{code="502",method="GET",protocol="http",service="[^"]+"\} \d+',
              r'traefik_entrypoint_requests_total\{code="404",entrypoint="web",method="GET",protocol="http"\} \d+']

    def scraped() -> str | None:
        # workers send their counters to the supervisor once a second
        r = curl(f"http://{ip}:9100/metrics")
        return r.stdout if r.returncode == 0 and all(re.search(w, r.stdout) for w in wanted) else None

    metrics = srv.wait_for(scraped, timeout=30, what="router, service and entry point series")
    assert "traefik_router_request_duration_seconds_bucket" in metrics
    assert "traefik_service_server_up{" in metrics and "traefik_config_reloads_total" in metrics


def test_access_logs_common_format(srv: ServerProcess, node_ip: str) -> None:
    srv.kubectl("apply", "-f", "-", input=_chart_config("common"))
    pod = rolled_with(srv, "--accesslog.format=common")
    srv.kubectl("apply", "-f", "-", input=_route("pk-trust"))
    srv.wait_for(lambda: status_of(node_ip, HOST, "/clf")[0] == 200, timeout=30, what="route served")

    def line() -> str | None:
        return next((x for x in _records(srv, pod) if '"GET /clf HTTP/1.1" 200 ' in x), None)

    found = srv.wait_for(line, timeout=30, what="a common-format record")
    # headers are dropped by default (the chart's fields.headers.defaultmode), so Referer and User-Agent are "-"
    assert re.match(r'^\S+ - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /clf HTTP/1.1" 200 \d+ "-" "-" \d+'
                    r' "default-pk-secure-\w+@kubernetescrd" "https://[^"]+" \d+ms$', found), found
