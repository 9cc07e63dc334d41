"""TCP and UDP routers in the ingress view, from the compiled configuration's TCP part (the ingress's
IngressRouteTCP/IngressRouteUDP support)."""

from __future__ import annotations

import pytest
from netmap_kit import demo

from pyk3s.netmap.ingress import build_model, ingress_view

pytest.importorskip("pyk3s.addons.ingress.routing.tcp_compile", reason="the ingress has no TCP/UDP routers yet")

ROUTES = [
    {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRouteTCP", "metadata": {"name": "echo", "namespace": "demo"},
     "spec": {"entryPoints": ["websecure"], "tls": {"passthrough": True},
              "routes": [{"match": "HostSNI(`echo.example`)", "services": [{"name": "web", "port": 80}]}]}},
    {"apiVersion": "traefik.io/v1alpha1", "kind": "IngressRouteUDP", "metadata": {"name": "dns", "namespace": "demo"},
     "spec": {"entryPoints": ["web"], "routes": [{"services": [{"name": "web", "port": 80}]}]}},
]


def test_tcp_and_udp_routers_with_their_errors_services_and_pods() -> None:
    objs = demo() + ROUTES
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    ingress = [o for o in objs if o["kind"] not in ("Deployment", "CustomResourceDefinition", "Node")]
    view = ingress_view(build_model(deployments, ingress), ingress, [o for o in objs if o["kind"] == "EndpointSlice"],
                        [o for o in objs if o["kind"] == "Pod"], [])
    tcp = next(r for r in view["routers"] if r["protocol"] == "tcp")
    assert tcp["from"] == "IngressRouteTCP demo/echo" and tcp["status"] == "enabled" and tcp["passthrough"]
    assert tcp["entryPoints"] == ["websecure"] and tcp["rule"] == "HostSNI(`echo.example`)"
    servers = view["tcpServices"][tcp["service"]]["servers"]
    assert {(s["pod"], s["service"], s["port"]) for s in servers} == {("demo/web-1", "demo/web", 80),
                                                                     ("demo/web-2", "demo/web", 80)}
    udp = next(r for r in view["routers"] if r["protocol"] == "udp")
    assert udp["from"] == "IngressRouteUDP demo/dns" and udp["status"] == "disabled"
    assert any("doesn't exist" in e for e in udp["errors"])
    assert tcp["name"] in next(e for e in view["entrypoints"] if e["name"] == "websecure")["routers"]
