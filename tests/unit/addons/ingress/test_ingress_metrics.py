"""Prometheus series with Traefik's names and labels (pkg/observability/metrics/prometheus.go): entry
points, routers (addRoutersLabels) and services, request and response sizes, TLS, retries, server_up."""

from __future__ import annotations

import re

from ingress_support import http, service_yaml

from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.proxy.metrics import ProxyMetrics, render

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: retry, namespace: default}
spec: {retry: {attempts: 2}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: app, namespace: default}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`a`)
    kind: Rule
    services: [{name: whoami, port: 80}]
  - match: Host(`dead`)
    kind: Rule
    middlewares: [{name: retry}]
    services: [{name: dead, port: 80}]
"""


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[len(name):line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} {labels} in\n{text}")


async def test_router_service_entrypoint_series(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.traefik.address=127.0.0.1:0",
                             "--providers.kubernetescrd", "--metrics.prometheus", "--metrics.prometheus.addRoutersLabels",
                             "--metrics.prometheus.buckets=0.5,0.1")
    proxy.load(service_yaml("whoami", backend.port) + service_yaml("dead", 1, ip="127.0.0.1") + ROUTE)
    router = next(n for n, r in proxy.state.compiled.runtime.routers.items() if r["rule"] == "Host(`a`)")
    service = proxy.state.compiled.runtime.routers[router]["service"]
    dead = next(r["service"] for r in proxy.state.compiled.runtime.routers.values() if r["rule"] == "Host(`dead`)")
    sizes = []
    for _ in range(2):  # the fast lane
        sizes.append(len((await http(proxy.port, "/", host="a")).body))
    post = await http(proxy.port, "/p", host="a", method="POST", body=b"12345")  # the general path
    assert post.status == 200
    assert (await http(proxy.port, "/", host="dead")).status == 502
    text = (await http(proxy.ports["traefik"], "/metrics", host="x")).body.decode()
    get = {"code": "200", "method": "GET", "protocol": "http"}
    assert _value(text, "traefik_router_requests_total", router=router, service=service, **get) == 2
    assert _value(text, "traefik_router_responses_bytes_total", router=router, service=service, **get) == sum(sizes)
    assert _value(text, "traefik_service_requests_total", service=service, **get) == 2
    assert _value(text, "traefik_entrypoint_requests_total", entrypoint="web", **get) == 2
    assert _value(text, "traefik_router_requests_bytes_total", router=router, service=service, code="200",
                  method="POST", protocol="http") == 5
    assert _value(text, "traefik_router_request_duration_seconds_bucket", router=router, le="+Inf", **get) == 2
    assert 'le="0.1"' in text and 'le="0.5"' in text and 'le="1.2"' not in text
    assert _value(text, "traefik_service_retries_total", service=dead) == 1
    assert _value(text, "traefik_service_server_up", service=service, url=f"http://127.0.0.1:{backend.port}") == 1
    assert _value(text, "traefik_config_reloads_total") >= 1
    assert "# TYPE traefik_router_request_duration_seconds histogram" in text


def test_families_follow_the_label_switches():
    opts = static_from_flags(["--metrics.prometheus", "--metrics.prometheus.addServicesLabels=false"]).prometheus_options
    m = ProxyMetrics(True, opts)
    m.observe("web", "svc@x", "GET", 200, True, 0.01, "r@x", 0, 10, ("1.3", "TLS_AES_128_GCM_SHA256"))
    text = render([m.snapshot()]).decode()
    assert "traefik_service_" not in text and "traefik_router_" not in text
    assert 'traefik_entrypoint_requests_tls_total{entrypoint="web",tls_cipher="TLS_AES_128_GCM_SHA256",tls_version="1.3"} 1' in text


async def test_router_observability_and_cert_resolver(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--entrypoints.traefik.address=127.0.0.1:0",
                             "--providers.kubernetescrd", "--metrics.prometheus", "--metrics.prometheus.addRoutersLabels")
    compiled = proxy.load(service_yaml("whoami", backend.port) + """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: quiet, namespace: default}
spec:
  routes:
  - {match: Host(`q`), kind: Rule, services: [{name: whoami, port: 80}], observability: {metrics: false}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: acme, namespace: default}
spec:
  tls: {certResolver: letsencrypt}
  routes: [{match: Host(`s`), kind: Rule, services: [{name: whoami, port: 80}]}]
""")
    assert (await http(proxy.port, "/", host="q")).status == 200
    text = (await http(proxy.ports["traefik"], "/metrics", host="x")).body.decode()
    assert not any("default-quiet-" in line for line in text.splitlines() if "_requests_total" in line)
    acme = next(v for k, v in compiled.runtime.routers.items() if k.startswith("default-acme-"))
    assert acme["status"] == "warning" and "certificate resolver 'letsencrypt' does not exist" in acme["error"][0]
