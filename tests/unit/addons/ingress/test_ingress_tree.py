"""Multi-layer routing (IngressRoute parentRefs): a parent's middlewares run before its children's
rules are matched (Traefik docs routing/multi-layer-routing.md, pkg/server/router/router.go)."""

from __future__ import annotations

from ingress_support import http, service_yaml

from pyk3s.addons.ingress.config.dynamic import Router
from pyk3s.addons.ingress.routing.tree import router_tree

TREE = """
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: role, namespace: default}
spec: {headers: {customRequestHeaders: {X-Role: admin}}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: parent, namespace: default}
spec:
  routes: [{match: Host(`a`), kind: Rule, middlewares: [{name: role}]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: admin, namespace: default}
spec:
  parentRefs: [{name: parent}]
  routes: [{match: "Header(`X-Role`, `admin`)", kind: Rule, services: [{name: one, port: 80}]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: user, namespace: default}
spec:
  parentRefs: [{name: parent}]
  routes: [{match: "Header(`X-Role`, `user`)", kind: Rule, services: [{name: two, port: 80}]}]
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: stray, namespace: default}
spec:
  entryPoints: [web]
  parentRefs: [{name: parent}]
  routes: [{match: PathPrefix(`/`), kind: Rule, services: [{name: two, port: 80}]}]
"""


async def test_children_match_after_the_parents_middlewares(make_proxy, backend, backend_lo2):
    proxy = await make_proxy()
    compiled = proxy.load(service_yaml("one", backend.port) + service_yaml("two", backend_lo2.port, ip="127.0.0.2")
                          + TREE)
    r = await http(proxy.port, "/x", host="a")
    assert r.status == 200 and r.json()["name"] == "b1"  # the parent's header picked the admin child
    assert ["X-Role", "admin"] in r.json()["headers"]
    assert (await http(proxy.port, "/x", host="b")).status == 404
    routers = compiled.runtime.routers
    stray = next(v for k, v in routers.items() if k.startswith("default-stray-"))
    assert stray["status"] == "disabled" and stray["error"] == ["non-root router cannot have Entrypoints configuration"]
    parent = next(v for k, v in routers.items() if k.startswith("default-parent-"))
    assert parent["status"] == "enabled" and parent["using"] == ["web"]
    child = next(v for k, v in routers.items() if k.startswith("default-admin-"))
    assert child["status"] == "enabled" and "using" not in child and child["parentRefs"] == [parent["name"]]


def test_tree_checks():
    routers = {
        "p@x": Router(rule="Host(`a`)"), "c@x": Router(rule="Path(`/`)", service="s", parent_refs=("p@x",)),
        "lone@x": Router(rule="Host(`b`)"), "both@x": Router(rule="Host(`c`)", service="s"),
        "kid@x": Router(rule="Path(`/`)", service="s", parent_refs=("both@x",)),
        "orphan@x": Router(rule="Path(`/`)", service="s", parent_refs=("nope@x",)),
        "a@x": Router(rule="Path(`/a`)", parent_refs=("b@x",)), "b@x": Router(rule="Path(`/b`)", parent_refs=("a@x",)),
    }
    tree = router_tree(routers)
    assert tree.children["p@x"] == ["c@x"]
    assert tree.errors["lone@x"] == ["router has no service and no child routers"]
    assert tree.errors["both@x"] == ["router has both a service and is referenced as a parent by other routers"]
    assert tree.errors["orphan@x"][0] == 'parent router "nope@x" does not exist'
    assert tree.errors["a@x"] == ["router is not reachable"] and "b@x" in tree.disabled
    assert not {"p@x", "c@x"} & tree.disabled
