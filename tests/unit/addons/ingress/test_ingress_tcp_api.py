"""api@internal for TCP and UDP (Traefik pkg/api handler_tcp.go, handler_udp.go, handler_overview.go) and
``pyk3s ingress explain tcp://...``: routers, services and middlewares with status and errors."""

from __future__ import annotations

import json
from typing import Any

import yaml

from pyk3s.addons.ingress.config.static import static_from_flags
from pyk3s.addons.ingress.explain import explain_api
from pyk3s.addons.ingress.explain_tcp import explain_tcp, tcp_text
from pyk3s.addons.ingress.http.request import HttpRequest
from pyk3s.addons.ingress.providers import build_config
from pyk3s.addons.ingress.proxy.api import ApiHandler
from pyk3s.addons.ingress.routing.compile import compile_config

STATIC = static_from_flags([
    "--entrypoints.web.address=:80", "--entrypoints.websecure.address=:443", "--entrypoints.websecure.http.tls=true",
    "--entrypoints.postgres.address=:5432", "--entrypoints.dns.address=:53/udp", "--entrypoints.dns.udp.timeout=10s",
    "--entrypoints.web.proxyProtocol.trustedIPs=10.0.0.0/8", "--providers.kubernetescrd"])

OBJECTS = """
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec: {ports: [{name: pg, port: 5432}, {name: dns, port: 53, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-1, namespace: default, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: pg, port: 5432}, {name: dns, port: 53}]
endpoints: [{addresses: [10.42.0.7], conditions: {ready: true}}]
---
apiVersion: traefik.io/v1alpha1
kind: MiddlewareTCP
metadata: {name: office, namespace: default}
spec: {ipAllowList: {sourceRange: [10.0.0.0/8]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: pg, namespace: default}
spec:
  entryPoints: [postgres]
  routes:
  - match: HostSNI(`*`)
    middlewares: [{name: office}]
    services: [{name: db, port: pg}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: secure, namespace: default}
spec:
  entryPoints: [websecure]
  tls: {passthrough: true}
  routes:
  - match: HostSNI(`db.example.com`) && ALPN(`postgresql`)
    services: [{name: db, port: 5432}]
  - match: HostSNI(`broken`)
    services: [{name: db, port: 5432}]
    syntax: v2
  - match: HostSNI(`nope`)
    services: [{name: missing, port: 5432}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: dns, namespace: default}
spec:
  entryPoints: [dns]
  routes:
  - services: [{name: db, port: dns}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRouteUDP
metadata: {name: wrong, namespace: default}
spec:
  entryPoints: [web]
  routes:
  - services: [{name: db, port: dns}]
"""


def compiled() -> Any:
    return compile_config(build_config(STATIC, [o for o in yaml.safe_load_all(OBJECTS) if o]), STATIC)


def get(path: str) -> tuple[int, Any]:
    c = compiled()
    reply = ApiHandler(lambda: c, explain_api).handle(HttpRequest("GET", path, [("Host", "x")], "127.0.0.1"))
    return reply.status, json.loads(reply.body)


def test_tcp_lists_and_items() -> None:
    status, routers = get("/api/tcp/routers")
    assert status == 200
    names = [r["name"] for r in routers]
    assert names == sorted(names) and len(names) == 4
    pg = next(r for r in routers if r["service"].startswith("default-pg-"))
    assert pg["status"] == "enabled" and pg["middlewares"] == ["default-office@kubernetescrd"]
    missing = next(r for r in routers if "HostSNI(`nope`)" == r["rule"])
    assert missing["status"] == "disabled"
    assert missing["error"] == [f'the service "{missing["service"]}" does not exist'] or "cannot create service" in \
        missing["error"][0]
    status, item = get("/api/tcp/routers/" + pg["name"])
    assert status == 200 and item == pg
    status, body = get("/api/tcp/routers/nope@kubernetescrd")
    assert (status, body) == (404, {"message": "router not found: nope@kubernetescrd"})
    status, mws = get("/api/tcp/middlewares")
    assert mws == [{"ipAllowList": {"sourceRange": ["10.0.0.0/8"]}, "name": "default-office@kubernetescrd",
                    "provider": "kubernetescrd", "usedBy": [pg["name"]], "type": "ipallowlist", "status": "enabled"}]
    status, services = get("/api/tcp/services?search=pg")
    assert [s["serverStatus"] for s in services] == [{"10.42.0.7:5432": "UP"}]
    status, disabled = get("/api/tcp/routers?status=disabled")
    assert [r["rule"] for r in disabled] == ["HostSNI(`nope`)"]


def test_udp_lists() -> None:
    status, routers = get("/api/udp/routers")
    by_name = {r["name"]: r for r in routers}
    assert by_name["default-dns-0@kubernetescrd"]["status"] == "enabled"
    assert by_name["default-wrong-0@kubernetescrd"]["error"] == [
        'entryPoint "web" doesn\'t exist for UDP routers (it is not declared /udp)', "no valid entryPoint for this router"]
    status, services = get("/api/udp/services")
    assert services[0]["loadBalancer"] == {"servers": [{"address": "10.42.0.7:53"}]}


def test_rawdata_overview_entrypoints() -> None:
    _, raw = get("/api/rawdata")
    assert set(raw) >= {"tcpRouters", "tcpServices", "tcpMiddlewares", "udpRouters", "udpServices"}
    assert len(raw["tcpRouters"]) == 4 and len(raw["udpRouters"]) == 2
    _, overview = get("/api/overview")
    assert overview["tcp"]["routers"] == {"total": 4, "warnings": 0, "errors": 1}
    assert overview["udp"]["routers"] == {"total": 2, "warnings": 0, "errors": 1}
    _, eps = get("/api/entrypoints")
    by_name = {e["name"]: e for e in eps}
    assert by_name["dns"]["address"] == ":53/udp" and by_name["dns"]["udp"] == {"timeout": "10s"}
    assert by_name["web"]["proxyProtocol"] == {"trustedIPs": ["10.0.0.0/8"]}
    assert by_name["web"]["transport"]["respondingTimeouts"] == {"readTimeout": "1m0s", "idleTimeout": "3m0s"}


def test_explain_tcp() -> None:
    c = compiled()
    report = explain_tcp(c, "tcp://node:443", sni="db.example.com", alpn=("postgresql",))
    assert report["entrypoint"] == "websecure" and report["match"]["servers"] == ["10.42.0.7:5432"]
    assert report["match"]["tls"] == "TLS passthrough (the server terminates TLS)"
    text = tcp_text(report)
    assert "MATCH" in text and "disabled:" in text
    other = explain_tcp(c, "tcp://node:443", sni="db.example.com", alpn=("h2",))
    assert other["match"] is None and other["result"] == "the HTTPS routers"
    assert any(leaf == {"matcher": "ALPN(`postgresql`)", "result": False}
               for item in other["checked"] for leaf in item["matchers"])
    pg = explain_tcp(c, "tcp://node:5432", peer="10.1.2.3")
    assert pg["match"]["middlewares"] == ["default-office@kubernetescrd"]
    assert "matched as soon as it is accepted" in pg["steps"][0]
    udp = explain_tcp(c, "udp://node:53")
    assert udp["match"] == {"router": "default-dns-0@kubernetescrd", "service": "default-dns-0@kubernetescrd",
                            "servers": ["10.42.0.7:53"]}
    assert explain_tcp(c, "tcp://node:9")["result"] == "no TCP entry point listens on port 9"
    _, api = get("/api/explain?url=tcp://node:443&sni=db.example.com&alpn=postgresql")
    assert api["match"]["router"] == report["match"]["router"]
