"""The middlewares of a service that is the child of another (weighted, highestRandomWeight, failover, a
mirroring's main service) run whenever a request goes to that child, as in Traefik (each service's
handler is its middleware chain around its load balancer): inside the router's middlewares, so the
router's request side runs first and its response side last; a child middleware that answers (401,
redirect) ends the exchange. Mirrors' copies do not run them: a warning says so.

The proxy, providers, compile step and middlewares are the real ones; the backends are the loopback
echo servers of ingress_support.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

from h2_support import H2Client
from ingress_support import EchoBackend, http, service_yaml

from pyk3s.addons.ingress.config.dynamic import (
    DynamicConfig,
    Failover,
    HighestRandomWeight,
    LoadBalancer,
    Middleware,
    Router,
    Server,
    Service,
    Weighted,
    WeightedRef,
)
from pyk3s.addons.ingress.routing.table import fast_route

FLAGS = ("--entrypoints.web.address=127.0.0.1:0",)
SHA_USER = "u:{SHA}" + base64.b64encode(hashlib.sha1(b"p").digest()).decode()
CREDENTIALS = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


def _lb(b: EchoBackend, *middlewares: str) -> Service:
    return Service(load_balancer=LoadBalancer(servers=(Server(f"http://127.0.0.1:{b.port}"),)), middlewares=middlewares)


def _headers(request: dict[str, str] | None = None, response: dict[str, str] | None = None) -> Middleware:
    config: dict[str, Any] = {}
    if request:
        config["customRequestHeaders"] = request
    if response:
        config["customResponseHeaders"] = response
    return Middleware("headers", config)


def _seen(r: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in r.json()["headers"]}


def _weighted_config(a: EchoBackend, b: EchoBackend, **extra_mws: Middleware) -> DynamicConfig:
    return DynamicConfig(
        routers={"r": Router("Host(`a.example`)", "w", entry_points=("web",), middlewares=("outer",))},
        services={"w": Service(weighted=Weighted(services=(WeightedRef("a", 1), WeightedRef("b", 1)))),
                  "a": _lb(a, "mark-a"), "b": _lb(b, "mark-b")},
        middlewares={
            "outer": _headers({"X-Order": "router", "X-Router": "yes"}, {"X-Order": "router", "X-Seen": "router"}),
            "mark-a": _headers({"X-Order": "a", "X-Child": "a"}, {"X-Order": "a", "X-Child": "a"}),
            "mark-b": _headers({"X-Order": "b", "X-Child": "b"}, {"X-Child": "b"}),
            **extra_mws})


async def test_weighted_children_each_run_their_own_middlewares_inside_the_routers(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    proxy.load([], extra={"file": _weighted_config(backend, backend2)})
    runtime = proxy.state.compiled.runtime
    assert runtime.services["w@file"]["status"] == "enabled" and "error" not in runtime.services["w@file"]
    assert runtime.routers["r@file"]["status"] == "enabled"
    table = proxy.state.compiled.table.tables[("web", False)]
    assert fast_route(table, "a.example") is None  # a layered service never takes the fast lane
    seen: dict[str, int] = {}
    for _ in range(4):
        r = await http(proxy.port, "/x", host="a.example")
        assert r.status == 200
        name = r.json()["name"]
        seen[name] = seen.get(name, 0) + 1
        child = "a" if name == backend.name else "b"
        h = _seen(r)
        # the router's request side first, the child's after it
        assert (h["x-router"], h["x-child"], h["x-order"]) == ("yes", child, child)
        assert r.headers["x-child"] == child
        # the child's response side first, the router's last (for a, both set X-Order)
        assert r.headers["x-order"] == "router" and r.headers["x-seen"] == "router"
    assert seen == {backend.name: 2, backend2.name: 2}


async def test_a_child_basic_auth_answers_401_through_the_routers_response_side(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    cfg = _weighted_config(backend, backend2, auth=Middleware("basicAuth", {"users": [SHA_USER]}))
    services = dict(cfg.services)
    services["a@file"] = _lb(backend, "auth", "mark-a")
    proxy.load([], extra={"file": DynamicConfig(routers=cfg.routers, services={k.removesuffix("@file"): v for k, v
                                                                              in services.items()},
                                                middlewares=cfg.middlewares)})
    statuses = []
    for _ in range(4):
        r = await http(proxy.port, "/", host="a.example")
        statuses.append(r.status)
        assert r.headers["x-seen"] == "router"  # the router's response side sees the child's answer too
        if r.status == 401:
            assert r.headers["www-authenticate"].startswith("Basic realm=")
            assert "x-child" not in r.headers  # mark-a comes after auth: its response side never ran
    assert sorted(statuses) == [200, 200, 401, 401]
    assert len(backend.requests) == 0 and len(backend2.requests) == 2
    for _ in range(2):
        r = await http(proxy.port, "/", host="a.example", headers=CREDENTIALS)
        assert r.status == 200
    assert len(backend.requests) == 1 and _seen_request(backend)["x-child"] == "a"


def _seen_request(b: EchoBackend) -> dict[str, str]:
    return {k.lower(): v for k, v in b.requests[-1]["headers"]}


async def test_an_async_child_middleware_and_highest_random_weight(make_proxy, backend, backend2):
    auth = await EchoBackend("auth").start()
    try:
        proxy = await make_proxy(*FLAGS)
        proxy.load([], extra={"file": DynamicConfig(
            routers={"r": Router("Host(`a.example`)", "h", entry_points=("web",))},
            services={"h": Service(highest_random_weight=HighestRandomWeight(services=(WeightedRef("a", 1),))),
                      "a": _lb(backend, "fa", "mark")},
            middlewares={"fa": Middleware("forwardAuth", {"address": f"http://127.0.0.1:{auth.port}/check",
                                                          "authResponseHeaders": ["X-Auth"]}),
                         "mark": _headers({"X-Child": "a"})})})
        auth.response_headers = [("X-Auth", "granted")]
        r = await http(proxy.port, "/p", host="a.example")
        assert r.status == 200 and r.json()["name"] == backend.name
        assert _seen(r)["x-auth"] == "granted" and _seen(r)["x-child"] == "a"
        assert auth.requests[-1]["url"] == "/check"
        auth.status = 403
        r = await http(proxy.port, "/p", host="a.example")
        assert r.status == 403 and len(backend.requests) == 1
    finally:
        auth.close()


def _failover_config(main: Service, fallback: Service, **errors: Any) -> DynamicConfig:
    return DynamicConfig(
        routers={"r": Router("Host(`a.example`)", "fo", entry_points=("web",), middlewares=("outer",))},
        services={"fo": Service(failover=Failover("main", "fallback", **errors)), "main": main, "fallback": fallback},
        middlewares={"outer": _headers({"X-Router": "yes"}, {"X-Seen": "router"}),
                     "mark-main": _headers({"X-Main": "yes", "X-Path": "main"}, {"X-From": "main"}),
                     "mark-fallback": _headers({"X-Fallback": "yes", "X-Path": "fallback"}, {"X-From": "fallback"}),
                     "strip": Middleware("stripPrefix", {"prefixes": ["/api"]})})


async def test_a_failovers_fallback_runs_its_middlewares_on_the_request_as_it_came(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    proxy.load([], extra={"file": _failover_config(_lb(backend, "mark-main", "strip"),
                                                   _lb(backend2, "mark-fallback"), errors_status=("500-504",))})
    assert proxy.state.compiled.runtime.services["fo@file"]["status"] == "enabled"
    r = await http(proxy.port, "/api/x", host="a.example")
    assert r.status == 200 and r.json()["name"] == backend.name and r.json()["url"] == "/x"
    assert _seen(r)["x-main"] == "yes" and r.headers["x-from"] == "main" and r.headers["x-seen"] == "router"
    backend.status = 502
    body = b"payload" * 100
    r = await http(proxy.port, "/api/x", host="a.example", method="POST", body=body)
    assert r.status == 200 and r.json()["name"] == backend2.name
    h = _seen(r)
    # the fallback gets the request as the failover got it: the main's header and strip undone
    assert "x-main" not in h and (h["x-fallback"], h["x-path"], h["x-router"]) == ("yes", "fallback", "yes")
    assert r.json()["url"] == "/api/x" and backend2.requests[-1]["body"] == body
    assert r.headers["x-from"] == "fallback" and r.headers["x-seen"] == "router"
    # a main service without servers: 503 is one of the errors, the fallback answers through its middlewares
    proxy.load([], extra={"file": _failover_config(Service(load_balancer=LoadBalancer(), middlewares=("mark-main",)),
                                                   _lb(backend2, "mark-fallback"), errors_status=("503",))})
    r = await http(proxy.port, "/", host="a.example")
    assert r.status == 200 and r.json()["name"] == backend2.name
    assert "x-main" not in _seen(r) and _seen(r)["x-fallback"] == "yes"


async def test_a_failover_whose_main_is_down_goes_to_the_fallback_through_its_middlewares(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    checked = LoadBalancer(servers=(Server(f"http://127.0.0.1:{backend.port}"),),
                           health_check={"path": "/health", "interval": "1h"})
    proxy.load([], extra={"file": _failover_config(Service(load_balancer=checked, middlewares=("mark-main",)),
                                                   _lb(backend2, "mark-fallback"))})
    failover = proxy.state.compiled.services["fo@file"]
    assert failover.layered
    failover.set_main_status(False)  # what a health check of the main service reports
    r = await http(proxy.port, "/", host="a.example")
    assert r.status == 200 and r.json()["name"] == backend2.name and r.headers["x-from"] == "fallback"
    assert "x-main" not in _seen(r) and _seen(r)["x-fallback"] == "yes"


async def test_an_http2_client(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    cfg = _weighted_config(backend, backend2, auth=Middleware("basicAuth", {"users": [SHA_USER]}))
    proxy.load([], extra={"file": DynamicConfig(
        routers=cfg.routers, middlewares=cfg.middlewares,
        services={"w": cfg.services["w"], "a": _lb(backend, "auth", "mark-a"), "b": cfg.services["b"]})})
    client = await H2Client.connect(proxy.port)
    try:
        statuses = []
        for _ in range(4):
            r = await client.request("/h2", "a.example", method="POST", body=b"hello")
            statuses.append(r.status)
            assert r.headers["x-seen"] == "router"
            if r.status == 200:
                assert r.headers["x-child"] == "b" and b'"body": "hello"' in r.body
        assert sorted(statuses) == [200, 200, 401, 401]
        r = await client.request("/h2", "a.example", headers=[(k.lower(), v) for k, v in CREDENTIALS.items()])
        r2 = await client.request("/h2", "a.example", headers=[(k.lower(), v) for k, v in CREDENTIALS.items()])
        assert {r.status, r2.status} == {200} and {r.headers["x-child"], r2.headers["x-child"]} == {"a", "b"}
    finally:
        client.close()


def _crd(backend: EchoBackend, backend2: EchoBackend) -> str:
    users = base64.b64encode(SHA_USER.encode()).decode()
    return service_yaml("one", backend.port) + service_yaml("two", backend2.port) + service_yaml("three", backend.port) + f"""
apiVersion: v1
kind: Secret
metadata: {{name: users, namespace: default}}
data: {{users: {users}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: auth, namespace: default}}
spec: {{basicAuth: {{secret: users}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: strip, namespace: default}}
spec: {{stripPrefix: {{prefixes: [/tobestripped]}}}}
---
apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {{name: mark, namespace: default}}
spec: {{headers: {{customRequestHeaders: {{X-Child: two}}, customResponseHeaders: {{X-Child: two}}}}}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: wrr, namespace: default}}
spec:
  weighted:
    services:
    - {{name: one, port: 80, weight: 1, middlewares: [{{name: auth}}, {{name: strip}}]}}
    - {{name: two, port: 80, weight: 1, middlewares: [{{name: mark}}]}}
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: copy, namespace: default}}
spec:
  mirroring:
    name: wrr
    kind: TraefikService
    mirrors: [{{name: three, port: 80, percent: 100, middlewares: [{{name: mark}}]}}]
---
apiVersion: traefik.io/v1alpha1
kind: TraefikService
metadata: {{name: fo, namespace: default}}
spec:
  failover:
    service: {{name: two, port: 80, middlewares: [{{name: mark}}]}}
    fallback: {{name: one, port: 80, middlewares: [{{name: auth}}, {{name: strip}}]}}
    errors: {{status: ["500-599"]}}
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {{name: r, namespace: default}}
spec:
  entryPoints: [web]
  routes:
  - match: Host(`w.example`)
    kind: Rule
    services: [{{name: wrr, kind: TraefikService}}]
  - match: Host(`m.example`)
    kind: Rule
    services: [{{name: copy, kind: TraefikService}}]
  - match: Host(`f.example`)
    kind: Rule
    services: [{{name: fo, kind: TraefikService}}]
  - match: Host(`g.example`)
    kind: Rule
    services:
    - {{name: one, port: 80, middlewares: [{{name: auth}}, {{name: strip}}]}}
    - {{name: two, port: 80, middlewares: [{{name: mark}}]}}
---
"""


async def test_ingressroute_and_traefikservice_objects(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS, "--providers.kubernetescrd", "--api.insecure",
                             "--entrypoints.traefik.address=127.0.0.1:0")
    proxy.load(_crd(backend, backend2))
    wrr = (await http(proxy.ports["traefik"], "/api/http/services/default-wrr@kubernetescrd", host="x")).json()
    assert wrr["status"] == "enabled" and "error" not in wrr
    one = (await http(proxy.ports["traefik"], "/api/http/services/default-one-80@kubernetescrd", host="x")).json()
    assert one["status"] == "enabled" and one["middlewares"] == ["default-auth@kubernetescrd",
                                                                 "default-strip@kubernetescrd"]
    statuses = sorted([(await http(proxy.port, "/tobestripped/x", host="w.example")).status for _ in range(4)])
    assert statuses == [200, 200, 401, 401] and len(backend.requests) == 0
    assert _seen_request(backend2)["x-child"] == "two" and backend2.requests[-1]["url"] == "/tobestripped/x"
    for _ in range(2):
        r = await http(proxy.port, "/tobestripped/x", host="w.example", headers=CREDENTIALS)
        assert r.status == 200
    assert backend.requests[-1]["url"] == "/x"  # the child's stripPrefix ran, after its basicAuth
    assert "x-child" not in _seen_request(backend)
    # the mirroring's main service (wrr) walks as above; the mirror's own middlewares are not run: a warning
    copy = (await http(proxy.ports["traefik"], "/api/http/services/default-copy@kubernetescrd", host="x")).json()
    assert copy["status"] == "warning"
    assert copy["error"] == ["the middlewares of service default-three-80@kubernetescrd are not applied by pyk3s to "
                             "the copies it gets as a mirror"]
    for _ in range(2):  # once to each child of wrr; each time a copy to one, as the request came
        before = len(backend.requests)
        r = await http(proxy.port, "/tobestripped/m", host="m.example", headers=CREDENTIALS)
        assert r.status == 200
        expected = before + 1 + (r.json()["name"] == backend.name)  # the copy, and the answer if one answered
        await _wait_for(lambda: len(backend.requests) >= expected)  # noqa: B023 - awaited in this iteration
        copies = [q for q in backend.requests[before:] if q["url"] == "/tobestripped/m"]
        assert len(copies) == 1 and "x-child" not in {k.lower() for k, _ in copies[0]["headers"]}
        if r.json()["name"] == backend2.name:
            assert _seen(r)["x-child"] == "two" and r.json()["url"] == "/tobestripped/m"
        else:
            assert r.json()["url"] == "/m"


async def _wait_for(ok: Any) -> None:
    for _ in range(200):
        if ok():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the mirror's copy did not come")


async def test_a_missing_child_middleware_fails_the_parent(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    cfg = _weighted_config(backend, backend2)
    proxy.load([], extra={"file": DynamicConfig(
        routers=cfg.routers, middlewares=cfg.middlewares,
        services={"w": cfg.services["w"], "a": _lb(backend, "nope"), "b": cfg.services["b"]})})
    runtime = proxy.state.compiled.runtime
    assert runtime.services["w@file"]["status"] == "disabled"
    assert runtime.services["w@file"]["error"] == ['service a@file: middleware "nope@file" does not exist']
    assert runtime.routers["r@file"]["status"] == "disabled"
    assert runtime.services["a@file"]["status"] == "enabled"
    assert (await http(proxy.port, "/", host="a.example")).status == 404


async def test_the_main_services_middlewares_are_done_with_when_the_fallback_takes_over(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    cfg = _failover_config(_lb(backend, "one-at-a-time"), _lb(backend2), errors_status=("502",))
    proxy.load([], extra={"file": DynamicConfig(
        routers=cfg.routers, services=cfg.services,
        middlewares={**cfg.middlewares, "one-at-a-time": Middleware("inFlightReq", {"amount": 1})})})
    backend.status = 502
    for _ in range(3):  # the main's inFlightReq let each request go once it went on to the fallback
        r = await http(proxy.port, "/", host="a.example")
        assert r.status == 200 and r.json()["name"] == backend2.name
    assert len(backend.requests) == 3


async def test_sticky_weighted_children_nested_parents_and_a_buffering_child(make_proxy, backend, backend2):
    from pyk3s.addons.ingress.config.dynamic import StickyCookie

    proxy = await make_proxy(*FLAGS)
    cfg = _weighted_config(backend, backend2, small=Middleware("buffering", {"maxRequestBodyBytes": 10}))
    services = {"w": Service(weighted=Weighted(services=(WeightedRef("a", 1), WeightedRef("b", 1)),
                                               sticky=StickyCookie(name="pick"))),
                "a": cfg.services["a"], "b": _lb(backend2, "small", "mark-b"),
                "top": Service(weighted=Weighted(services=(WeightedRef("mid", 1),))),
                "mid": Service(weighted=Weighted(services=(WeightedRef("a", 1),)))}
    routers = {"r": cfg.routers["r"], "n": Router("Host(`n.example`)", "top", entry_points=("web",))}
    proxy.load([], extra={"file": DynamicConfig(routers=routers, services=services, middlewares=cfg.middlewares)})
    compiled = proxy.state.compiled.services
    assert compiled["top@file"].layered and compiled["mid@file"].layered and not compiled["a@file"].layered
    r = await http(proxy.port, "/", host="a.example")
    cookie = r.headers["set-cookie"].split(";")[0]
    child = r.headers["x-child"]
    for _ in range(3):  # the sticky cookie keeps the child, whose middlewares run each time
        r = await http(proxy.port, "/", host="a.example", headers={"Cookie": cookie})
        assert r.status == 200 and r.headers["x-child"] == child and _seen(r)["x-child"] == child
    # b buffers with a limit of 10 bytes: over it, b's buffering answers 413
    b_cookie = cookie if child == "b" else None
    if b_cookie is None:
        for _ in range(4):
            r = await http(proxy.port, "/", host="a.example")
            if r.headers["x-child"] == "b":
                b_cookie = r.headers["set-cookie"].split(";")[0]
                break
    assert b_cookie is not None
    r = await http(proxy.port, "/", host="a.example", method="POST", body=b"x" * 50, headers={"Cookie": b_cookie})
    assert r.status == 413 and r.headers["x-seen"] == "router"
    r = await http(proxy.port, "/", host="a.example", method="POST", body=b"short", headers={"Cookie": b_cookie})
    assert r.status == 200 and r.json()["body"] == "short"
    # top -> mid -> a: the walk passes mid (no middlewares of its own) and runs a's
    r = await http(proxy.port, "/", host="n.example")
    assert r.status == 200 and r.json()["name"] == backend.name and _seen(r)["x-child"] == "a"


async def test_explain_names_the_child_services_middlewares(make_proxy, backend, backend2):
    from pyk3s.addons.ingress.explain import _text, explain

    proxy = await make_proxy(*FLAGS)
    proxy.load([], extra={"file": _weighted_config(backend, backend2)})
    report = explain(proxy.state.compiled, "http://a.example/", [], "web")
    assert report["match"]["middlewares"] == ["outer@file"]
    assert report["match"]["childMiddlewares"] == {"a@file": ["mark-a@file"], "b@file": ["mark-b@file"]}
    assert "  child a@file: middlewares mark-a@file" in _text(report).splitlines()


async def test_an_errors_middlewares_service_with_middlewares_is_a_warning(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS)
    cfg = _weighted_config(backend, backend2, pages=Middleware("errors", {"status": ["500-599"], "service": "w@file",
                                                                           "query": "/{status}"}))
    routers = {"r": Router("Host(`a.example`)", "a", entry_points=("web",), middlewares=("pages",))}
    proxy.load([], extra={"file": DynamicConfig(routers=routers, services=cfg.services, middlewares=cfg.middlewares)})
    pages = proxy.state.compiled.runtime.middlewares["pages@file"]
    assert pages["status"] == "warning"
    assert pages["error"] == ["the middlewares of service w@file (or of its child services) are not applied by pyk3s "
                              "to the error page requests of this middleware"]
    assert proxy.state.compiled.runtime.middlewares["outer@file"]["status"] == "enabled"


async def test_a_failover_traefikservice(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS, "--providers.kubernetescrd")
    proxy.load(_crd(backend, backend2))
    assert proxy.state.compiled.runtime.services["default-fo@kubernetescrd"]["status"] == "enabled"
    r = await http(proxy.port, "/tobestripped/f", host="f.example")
    assert r.status == 200 and r.json()["name"] == backend2.name and r.headers["x-child"] == "two"
    backend2.status = 500  # the main's answer is dropped; the fallback asks for credentials, then strips
    r = await http(proxy.port, "/tobestripped/f", host="f.example")
    assert r.status == 401 and "x-child" not in r.headers and len(backend.requests) == 0
    r = await http(proxy.port, "/tobestripped/f", host="f.example", headers=CREDENTIALS)
    assert r.status == 200 and r.json()["name"] == backend.name and r.json()["url"] == "/f"
    assert "x-child" not in _seen(r) and "x-child" not in r.headers


async def test_an_ingressroute_route_with_several_services(make_proxy, backend, backend2):
    proxy = await make_proxy(*FLAGS, "--providers.kubernetescrd")
    proxy.load(_crd(backend, backend2))
    router = next(r for r in proxy.state.compiled.runtime.routers.values() if r["rule"] == "Host(`g.example`)")
    assert router["status"] == "enabled"
    assert proxy.state.compiled.runtime.services[router["service"]]["status"] == "enabled"
    statuses = sorted([(await http(proxy.port, "/tobestripped/g", host="g.example")).status for _ in range(4)])
    assert statuses == [200, 200, 401, 401] and len(backend.requests) == 0
    assert _seen_request(backend2)["x-child"] == "two"
