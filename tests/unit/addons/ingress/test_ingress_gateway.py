"""kubernetesGateway provider: flags, statuses and conditions, and requests routed by HTTPRoutes through the
real proxy (loopback echo backends)."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import pytest
import yaml
from h2_support import self_signed
from ingress_support import http, service_yaml

from pyk3s.addons.ingress.config.static import GatewayOptions, static_from_flags
from pyk3s.addons.ingress.providers import watched_kinds
from pyk3s.addons.ingress.providers.gateway import StatusWrite, load_gateways
from pyk3s.addons.ingress.providers.gateway_status import desired_status
from pyk3s.images.traefik_flags import unhonoured

OPTS = GatewayOptions(entry_points=(("web", ":8000", False), ("websecure", ":8443", True)))

CLASS_AND_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: traefik, generation: 1}
spec: {controllerName: traefik.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default, generation: 2}
spec:
  gatewayClassName: traefik
  listeners:
  - {name: web, protocol: HTTP, port: 8000, allowedRoutes: {namespaces: {from: All}}}
---
"""


def _objs(*docs: str) -> list[dict[str, Any]]:
    return [o for d in docs for o in yaml.safe_load_all(d) if o]


def _route(name: str, spec: str, ns: str = "default") -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}, generation: 3}}
spec:
  parentRefs: [{{name: gw, namespace: default}}]
{spec}
---
"""


def _status(result: Any, kind: str, name: str) -> dict[str, Any]:
    return next(dict(s.status) for s in result.statuses if s.kind == kind and s.name == name)


def _conds(conds: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conds}


# ---------------------------------------------------------------------------------------------- flags
def test_flags_switch_on_the_provider_with_traefiks_options() -> None:
    static = static_from_flags([
        "--entrypoints.web.address=:8000/tcp", "--entrypoints.websecure.address=:8443",
        "--entrypoints.websecure.http.tls=true", "--entrypoints.dns.address=:8000/udp", "--providers.kubernetesgateway",
        "--providers.kubernetesgateway.namespaces=a,b", "--providers.kubernetesgateway.labelselector=app=x",
        "--providers.kubernetesgateway.statusaddress.service.name=traefik",
        "--providers.kubernetesgateway.statusaddress.service.namespace=kube-system",
        "--providers.kubernetesgateway.experimentalchannel=true", "--providers.kubernetesgateway.nativelbbydefault",
        "--providers.kubernetesgateway.throttleduration=2s"])
    gw = static.gateway
    assert gw is not None
    assert gw.namespaces == ("a", "b") and gw.label_selector == "app=x"
    assert gw.status_service == "kube-system/traefik" and gw.experimental_channel and gw.native_lb_by_default
    assert gw.throttle_duration == 2.0
    # as the chart writes them (":8000/tcp"), without the protocol part; a UDP entry point serves no listener
    assert gw.entry_points == (("web", ":8000", False), ("websecure", ":8443", True))
    assert gw.crd_namespaces is None
    kinds = {w.kind for w in watched_kinds(static)}
    assert {"GatewayClass", "Gateway", "HTTPRoute", "GRPCRoute", "ReferenceGrant", "Namespace", "Service",
            "EndpointSlice", "Secret"} <= kinds
    assert static_from_flags(["--providers.kubernetesgateway=false"]).gateway is None
    args = ["--providers.kubernetesgateway", "--providers.kubernetesgateway.statusaddress.ip=10.0.0.1"]
    assert unhonoured(args) == []


# ---------------------------------------------------------------------------------------------- statuses
def test_class_gateway_and_route_statuses() -> None:
    objs = _objs(CLASS_AND_GATEWAY, service_yaml("whoami", 9999), _route("r", """
  hostnames: [a.example.com]
  rules:
  - backendRefs: [{name: whoami, port: 80}]
"""))
    result = load_gateways(objs, GatewayOptions(entry_points=OPTS.entry_points, status_ip="10.1.2.3",
                                                status_address_set=True))
    gc = _status(result, "GatewayClass", "traefik")
    assert _conds(gc["conditions"]) == {"Accepted": ("True", "Handled")}
    gw = _status(result, "Gateway", "gw")
    assert gw["addresses"] == [{"type": "IPAddress", "value": "10.1.2.3"}]
    assert _conds(gw["conditions"]) == {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}
    assert gw["conditions"][0]["observedGeneration"] == 2
    (listener,) = gw["listeners"]
    assert listener["attachedRoutes"] == 1
    assert [k["kind"] for k in listener["supportedKinds"]] == ["HTTPRoute", "GRPCRoute"]
    route = _status(result, "HTTPRoute", "r")
    (parent,) = route["parents"]
    assert parent["controllerName"] == "traefik.io/gateway-controller"
    assert _conds(parent["conditions"]) == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    assert result.problems == []


def test_listener_without_entry_point_is_not_accepted() -> None:
    objs = _objs(CLASS_AND_GATEWAY.replace("port: 8000", "port: 9000"))
    result = load_gateways(objs, OPTS)
    gw = _status(result, "Gateway", "gw")
    assert _conds(gw["conditions"]) == {"Accepted": ("False", "ListenersNotValid")}
    cond = gw["listeners"][0]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Accepted", "False", "PortUnavailable")
    assert cond["message"] == ('Cannot find entryPoint for Gateway: no matching entryPoint for port 9000 and '
                               'protocol "HTTP"')
    assert any("PortUnavailable" in p for p in result.problems)


def test_route_refusals_have_traefiks_reasons() -> None:
    gateway = CLASS_AND_GATEWAY.replace("{from: All}", "{from: Same}").replace(
        "port: 8000,", "port: 8000, hostname: a.example.com,")
    objs = _objs(gateway, service_yaml("whoami", 9999), """
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
""", _route("elsewhere", "  rules: [{backendRefs: [{name: whoami, port: 80}]}]", ns="other"),
        _route("otherhost", "  hostnames: [b.example.com]\n  rules: [{backendRefs: [{name: whoami, port: 80}]}]"),
        _route("missing", "  rules: [{backendRefs: [{name: nope, port: 80}]}]"),
        _route("crossns", "  rules: [{backendRefs: [{name: whoami, namespace: other, port: 80}]}]"))
    result = load_gateways(objs, OPTS)

    def parent(name: str) -> dict[str, tuple[str, str]]:
        return _conds(_status(result, "HTTPRoute", name)["parents"][0]["conditions"])

    assert parent("elsewhere")["Accepted"] == ("False", "NotAllowedByListeners")
    assert parent("otherhost")["Accepted"] == ("False", "NoMatchingListenerHostname")
    assert parent("missing") == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", "BackendNotFound")}
    assert parent("crossns") == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", "RefNotPermitted")}
    missing = _status(result, "HTTPRoute", "missing")["parents"][0]["conditions"][1]["message"]
    assert missing == "Cannot load HTTPBackendRef default/nope: service not found"
    # the missing backend answers 500 (a weighted child with status 500), the route stays served
    wrr = [s for n, s in result.config.services.items() if n.startswith("httproute-default-missing")]
    assert wrr[0].weighted is not None and wrr[0].weighted.services[0].status == 500
    assert _status(result, "Gateway", "gw")["listeners"][0]["attachedRoutes"] == 2  # missing, crossns


def test_grpcroute_and_tcp_listener_are_refused_with_conditions() -> None:
    gateway = CLASS_AND_GATEWAY + """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tcp, namespace: default}
spec:
  gatewayClassName: traefik
  listeners: [{name: tcp, protocol: TCP, port: 8000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: default}
spec:
  parentRefs: [{name: gw}]
---
"""
    result = load_gateways(_objs(gateway), OPTS)
    conds = _status(result, "GRPCRoute", "g")["parents"][0]["conditions"]
    assert _conds(conds) == {"Accepted": ("False", "UnsupportedValue")}
    listener = _status(result, "Gateway", "tcp")["listeners"][0]
    assert _conds(listener["conditions"]) == {"Conflicted": ("True", "ProtocolConflict")}
    experimental = load_gateways(_objs(gateway), GatewayOptions(entry_points=OPTS.entry_points,
                                                                experimental_channel=True))
    listener = _status(experimental, "Gateway", "tcp")["listeners"][0]
    assert _conds(listener["conditions"]) == {"Accepted": ("False", "UnsupportedProtocol")}


def test_https_listener_certificate_and_reference_grant() -> None:
    cert, key = self_signed("secure.example.com")
    secret = f"""
apiVersion: v1
kind: Secret
metadata: {{name: cert, namespace: certs}}
data: {{tls.crt: {base64.b64encode(cert).decode()}, tls.key: {base64.b64encode(key).decode()}}}
---
"""
    gateway = CLASS_AND_GATEWAY.replace(
        "- {name: web, protocol: HTTP, port: 8000, allowedRoutes: {namespaces: {from: All}}}",
        "- {name: secure, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{name: cert, namespace: certs}]}}")
    refused = load_gateways(_objs(gateway, secret), OPTS)
    cond = _status(refused, "Gateway", "gw")["listeners"][0]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("ResolvedRefs", "RefNotPermitted")
    assert refused.config.certificates == ()
    grant = """
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: g, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: default}]
  to: [{group: "", kind: Secret}]
---
"""
    granted = load_gateways(_objs(gateway, secret, grant), OPTS)
    assert [c.source for c in granted.config.certificates] == ["certs/cert"]
    assert _conds(_status(granted, "Gateway", "gw")["conditions"])["Accepted"] == ("True", "Accepted")


def test_extension_ref_needs_the_crd_provider() -> None:
    route = _route("ext", """
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: traefik.io, kind: Middleware, name: auth}}]
    backendRefs: [{name: whoami, port: 80}]
""")
    objs = _objs(CLASS_AND_GATEWAY, service_yaml("whoami", 9999), route)
    without = load_gateways(objs, OPTS)
    (router,) = without.config.routers.values()
    assert router.service.endswith("-err-wrr")
    assert any("unsupported filter extension ref traefik.io/Middleware/auth" in p for p in without.problems)
    with_crd = load_gateways(objs, GatewayOptions(entry_points=OPTS.entry_points, crd_namespaces=()))
    (router,) = with_crd.config.routers.values()
    assert router.middlewares == ("default-auth@kubernetescrd",)


def test_status_keeps_transition_times_and_other_controllers_parents() -> None:
    write = StatusWrite("HTTPRoute", "default", "r", {"parents": [
        {"parentRef": {"name": "gw"}, "controllerName": "traefik.io/gateway-controller",
         "conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 1, "reason": "Accepted",
                         "message": ""}]}]})
    current = {"status": {"parents": [
        {"parentRef": {"name": "gw"}, "controllerName": "traefik.io/gateway-controller",
         "conditions": [{"type": "Accepted", "status": "True", "observedGeneration": 1, "reason": "Accepted",
                         "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        {"parentRef": {"name": "other"}, "controllerName": "example.com/other", "conditions": []}]}}
    status = desired_status(write, current, now="2025-01-01T00:00:00Z")
    assert [p["controllerName"] for p in status["parents"]] == ["example.com/other", "traefik.io/gateway-controller"]
    assert status["parents"][1]["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"


# ---------------------------------------------------------------------------------------------- through the proxy
async def _proxy_with(make_proxy: Any, docs: list[str], tls: bool = False) -> Any:
    from pyk3s.addons.ingress.providers.common import ObjectIndex
    from pyk3s.addons.ingress.providers.gateway import build_gateway_config

    flags = ["--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetesgateway"]
    proxy = await make_proxy(*flags, tls=tls)
    objs = _objs(*docs)
    proxy.load(objs, extra={"kubernetesgateway": build_gateway_config(ObjectIndex.build(objs), OPTS)})
    return proxy


async def test_httproute_routes_requests(make_proxy: Any, backend: Any, backend2: Any) -> None:
    route = _route("app", """
  hostnames: [app.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Env, value: prod}], remove: [X-Drop]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: X-Served-By, value: gateway}]}}
    backendRefs: [{name: one, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /}, headers: [{name: X-Canary, value: "yes"}]}]
    backendRefs: [{name: two, port: 80}]
  - matches: [{path: {type: Exact, value: /old}}]
    filters:
    - {type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    filters:
    - {type: URLRewrite, urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
    backendRefs: [{name: one, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /broken}}]
    backendRefs: [{name: missing, port: 80}]
""")
    proxy = await _proxy_with(make_proxy, [CLASS_AND_GATEWAY, service_yaml("one", backend.port),
                                           service_yaml("two", backend2.port), route])
    r = await http(proxy.port, "/api/x", host="app.example.com", headers={"X-Drop": "1"})
    assert r.status == 200 and r.json()["name"] == "b1"
    seen = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert seen["x-env"] == "prod" and "x-drop" not in seen
    assert r.headers.get("x-served-by") == "gateway"
    r = await http(proxy.port, "/anything", host="app.example.com", headers={"X-Canary": "yes"})
    assert r.json()["name"] == "b2"
    r = await http(proxy.port, "/old?q=1", host="app.example.com:8000")
    assert r.status == 301 and r.headers["location"] == "https://app.example.com/old?q=1"
    r = await http(proxy.port, "/v1/items/", host="app.example.com")
    assert r.json()["url"] == "/v2/items/"
    assert dict((k.lower(), v) for k, v in r.json()["headers"])["host"] == "internal.example.com"
    r = await http(proxy.port, "/broken", host="app.example.com")
    assert r.status == 500 and r.body == b""
    r = await http(proxy.port, "/api/x", host="other.example.com")
    assert r.status == 404


async def test_weighted_backends_share_requests(make_proxy: Any, backend: Any, backend2: Any) -> None:
    route = _route("split", """
  rules:
  - backendRefs: [{name: one, port: 80, weight: 3}, {name: two, port: 80, weight: 1}]
""")
    proxy = await _proxy_with(make_proxy, [CLASS_AND_GATEWAY, service_yaml("one", backend.port),
                                           service_yaml("two", backend2.port), route])
    names = [(await http(proxy.port, "/", host="any.example.com")).json()["name"] for _ in range(8)]
    assert names.count("b1") == 6 and names.count("b2") == 2


async def test_https_listener_serves_its_certificate(make_proxy: Any, backend: Any) -> None:
    cert, key = self_signed("secure.example.com")
    secret = f"""
apiVersion: v1
kind: Secret
metadata: {{name: cert, namespace: default}}
data: {{tls.crt: {base64.b64encode(cert).decode()}, tls.key: {base64.b64encode(key).decode()}}}
---
"""
    gateway = CLASS_AND_GATEWAY.replace(
        "- {name: web, protocol: HTTP, port: 8000, allowedRoutes: {namespaces: {from: All}}}",
        "- {name: secure, protocol: HTTPS, port: 8443, tls: {certificateRefs: [{name: cert}]}}")
    route = _route("secure", "  hostnames: [secure.example.com]\n  rules: [{backendRefs: [{name: one, port: 80}]}]")
    from pyk3s.addons.ingress.providers.common import ObjectIndex
    from pyk3s.addons.ingress.providers.gateway import build_gateway_config

    proxy = await make_proxy("--entrypoints.websecure.address=127.0.0.1:0", "--entrypoints.websecure.http.tls=true",
                             "--providers.kubernetesgateway", tls=True)
    objs = _objs(gateway, secret, service_yaml("one", backend.port), route)
    proxy.load(objs, extra={"kubernetesgateway": build_gateway_config(ObjectIndex.build(objs), OPTS)})
    ctx = ssl.create_default_context(cadata=cert.decode())
    r = await http(proxy.ports["websecure"], "/", host="secure.example.com", ssl=ctx,
                   server_hostname="secure.example.com")
    assert r.status == 200 and r.json()["name"] == "b1"


@pytest.mark.parametrize(("path", "prefix", "current", "want"), [
    ("/v2", "/v1", "/v1/items", "/v2/items"),
    ("/", "/v1", "/v1/items/", "/items/"),
    ("/v2", "/v1", "/v1", "/v2"),
    ("/full", None, "/anything", "/full"),
])
def test_prefix_replacement(path: str, prefix: str | None, current: str, want: str) -> None:
    from pyk3s.addons.ingress.middlewares.gatewayapi import _replaced_path

    assert _replaced_path(current, path, prefix) == want
