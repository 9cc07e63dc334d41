"""The ingress view: the ingress's own compile step on the cluster's objects, with the static
configuration of the Traefik Deployment; routers in error, their origin, servers mapped to pods."""

from __future__ import annotations

from netmap_kit import demo

from pyk3s.netmap.ingress import build_model, ingress_view


def _view() -> dict:
    objs = demo()
    deployments = [o for o in objs if o["kind"] == "Deployment"]
    ingress = [o for o in objs if o["kind"] not in ("Deployment", "CustomResourceDefinition", "Node")]
    model = build_model(deployments, ingress)
    slices = [o for o in objs if o["kind"] == "EndpointSlice"]
    pods = [o for o in objs if o["kind"] == "Pod"]
    return ingress_view(model, ingress, slices, pods, [])


def test_routers_with_origin_status_errors_and_entry_points() -> None:
    view = _view()
    assert view["source"] == "kube-system/traefik" and view["publishedService"] == "kube-system/traefik"
    routers = {r["from"]: r for r in view["routers"] if r["from"]}
    admin = routers["IngressRoute demo/admin"]
    assert admin["status"] == "disabled"
    assert admin["errors"] == ['middleware "demo-admin-auth@kubernetescrd" does not exist']
    assert admin["entryPoints"] == ["web"]
    api = routers["IngressRoute demo/api"]
    assert api["status"] == "enabled" and api["middlewares"] == ["demo-strip@kubernetescrd"]
    assert routers["Ingress demo/web"]["status"] == "enabled"
    assert view["counts"]["errors"] == 1
    web = next(e for e in view["entrypoints"] if e["name"] == "web")
    assert web["published"] == [80] and admin["name"] in web["routers"]


def test_services_servers_map_to_pods_nodes_and_kubernetes_services() -> None:
    view = _view()
    api = next(r for r in view["routers"] if r["from"] == "IngressRoute demo/api")
    servers = view["services"][api["service"]]["servers"]
    assert {(s["pod"], s["node"], s["service"], s["ready"]) for s in servers} == {
        ("demo/web-1", "n0", "demo/web", True), ("demo/web-2", "n1", "demo/web", True)}
    assert view["middlewares"]["demo-strip@kubernetescrd"]["type"] == "stripprefix"
