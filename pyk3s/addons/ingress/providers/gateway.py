"""kubernetesGateway provider: Gateway API objects -> dynamic configuration and their statuses (Traefik's
pkg/provider/kubernetes/gateway, v3.5).

- GatewayClasses whose ``controllerName`` is ``traefik.io/gateway-controller`` (and that match
  ``labelSelector``) are accepted ("Handled"); the Gateways of those classes are served.
- Listeners (``gateway_listeners.py``) are tied to entry points by port; HTTPRoutes (``gateway_http.py``)
  attach to them through their parentRefs.
- :func:`load_gateways` is a pure function of the objects: the configuration, the status every
  GatewayClass, Gateway and route should have (``StatusWrite``) and the problems to log. The runner
  writes the statuses through the API (``gateway_status.py``); with ``--objects`` they are only logged.
- Not served by pyk3s yet, and said so rather than accepted and ignored: GRPCRoute (its parents get
  Accepted False, reason UnsupportedValue), TCPRoute and TLSRoute (a TCP or TLS listener is refused with
  a condition), BackendTLSPolicy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import Certificate, DynamicConfig
from ..config.static import GatewayOptions
from .common import BACKEND_KINDS, KubeObject, ObjectIndex, Watched
from .gateway_http import load_http_routes
from .gateway_listeners import CONTROLLER, GatewayListener, condition, load_listeners, route_listeners

__all__ = ["WATCHES", "StatusWrite", "GatewayResult", "load_gateways", "build_gateway_config", "gateway_addresses"]

_V1 = "gateway.networking.k8s.io/v1"
WATCHES = BACKEND_KINDS + (
    Watched(_V1, "gatewayclasses", "GatewayClass"),
    Watched(_V1, "gateways", "Gateway"),
    Watched(_V1, "httproutes", "HTTPRoute"),
    Watched(_V1, "grpcroutes", "GRPCRoute"),
    Watched("gateway.networking.k8s.io/v1beta1", "referencegrants", "ReferenceGrant"),
    Watched("v1", "namespaces", "Namespace"),
)
_PLURALS = {w.kind: (w.api_version, w.plural) for w in WATCHES}


@dataclass(frozen=True, slots=True)
class StatusWrite:
    """The status an object should have (conditions without lastTransitionTime)."""

    kind: str
    namespace: str
    name: str
    status: Mapping[str, Any]

    @property
    def api_version(self) -> str:
        return _PLURALS[self.kind][0]

    @property
    def plural(self) -> str:
        return _PLURALS[self.kind][1]


@dataclass(slots=True)
class GatewayResult:
    config: DynamicConfig
    statuses: list[StatusWrite] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def gateway_addresses(idx: ObjectIndex, opts: GatewayOptions) -> list[dict[str, str]]:
    """Traefik gatewayAddresses: the statusAddress IP, else hostname, else the Service's load balancer
    addresses; ValueError when the section is given but names nothing usable."""
    if not opts.status_address_set:
        return []
    if opts.status_ip:
        return [{"type": "IPAddress", "value": opts.status_ip}]
    if opts.status_hostname:
        return [{"type": "Hostname", "value": opts.status_hostname}]
    if opts.status_service:
        ns, _, name = opts.status_service.partition("/")
        svc = idx.get("Service", ns, name)
        if svc is None:
            raise ValueError(f"could not find a service with name {name} in namespace {ns}")
        out = []
        for addr in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or ():
            if addr.get("ip"):
                out.append({"type": "IPAddress", "value": addr["ip"]})
            elif addr.get("hostname"):
                out.append({"type": "Hostname", "value": addr["hostname"]})
        return out
    raise ValueError("empty Gateway status address configuration")


def _class_selected(gc: KubeObject, selector: str) -> bool:
    if not selector:
        return True
    from pyk3s.api.selectors import parse_label_selector

    try:
        return parse_label_selector(selector).matches((gc.get("metadata") or {}).get("labels") or {})
    except Exception:  # noqa: BLE001 - a malformed selector selects nothing (reported by load_gateways)
        return False


def _listener_status(listener: GatewayListener) -> dict[str, Any]:
    conds = listener.conditions
    if not conds:
        g = listener.gw_generation
        conds = [condition("Accepted", True, g, "Accepted", "No error found"),
                 condition("ResolvedRefs", True, g, "ResolvedRefs", "No error found"),
                 condition("Programmed", True, g, "Programmed", "No error found")]
    return {"name": listener.name, "supportedKinds": listener.supported_kinds,
            "attachedRoutes": listener.attached_routes, "conditions": conds}


def _gateway_status(gw: KubeObject, listeners: list[GatewayListener], addresses: list[dict[str, str]]) -> dict[str, Any]:
    generation = int((gw.get("metadata") or {}).get("generation") or 0)
    status: dict[str, Any] = {"addresses": addresses, "listeners": [_listener_status(x) for x in listeners]}
    if any(x.conditions for x in listeners):
        status["conditions"] = [condition("Accepted", False, generation, "ListenersNotValid",
                                          "All Listeners must be valid")]
    else:
        status["conditions"] = [condition("Accepted", True, generation, "Accepted", "Gateway successfully scheduled"),
                                condition("Programmed", True, generation, "Programmed",
                                          "Gateway successfully scheduled")]
    return status


def _not_served(route: KubeObject, listeners: list[GatewayListener]) -> dict[str, Any] | None:
    """The status of a route kind pyk3s does not serve yet, for each parentRef on one of our Gateways."""
    md = route.get("metadata") or {}
    refs = (route.get("spec") or {}).get("parentRefs") or []
    if not route_listeners(listeners, md.get("namespace", ""), refs):
        return None
    generation = int(md.get("generation") or 0)
    message = f"{route.get('kind', 'route')} is not served by pyk3s's kubernetesGateway provider"
    return {"parents": [{"parentRef": ref, "controllerName": CONTROLLER,
                         "conditions": [condition("Accepted", False, generation, "UnsupportedValue", message)]}
                        for ref in refs]}


def _name(obj: KubeObject) -> tuple[str, str]:
    md = obj.get("metadata") or {}
    return md.get("namespace", ""), md.get("name", "")


def load_gateways(objects: Mapping[str, Iterable[KubeObject]] | Iterable[KubeObject] | ObjectIndex,
                  opts: GatewayOptions) -> GatewayResult:
    """The kubernetesGateway provider as a pure function of the objects it watches."""
    idx = objects if isinstance(objects, ObjectIndex) else ObjectIndex.build(objects)
    idx = idx.within(opts.namespaces)
    result = GatewayResult(DynamicConfig())
    try:
        addresses = gateway_addresses(idx, opts)
    except ValueError as err:
        result.problems.append(f"gateway status addresses: {err}")
        addresses = []
    if opts.label_selector:
        from pyk3s.api.selectors import parse_label_selector

        try:
            parse_label_selector(opts.label_selector)
        except Exception as err:  # noqa: BLE001 - the parser reports as an API error
            result.problems.append(f"labelSelector {opts.label_selector!r}: {err}")
    classes: set[str] = set()
    for gc in idx.all("GatewayClass"):
        if (gc.get("spec") or {}).get("controllerName") != CONTROLLER or not _class_selected(gc, opts.label_selector):
            continue
        _, name = _name(gc)
        classes.add(name)
        generation = int((gc.get("metadata") or {}).get("generation") or 0)
        others = [c for c in (gc.get("status") or {}).get("conditions") or () if c.get("type") != "Accepted"]
        accepted = condition("Accepted", True, generation, "Handled", "Handled by Traefik controller")
        result.statuses.append(StatusWrite("GatewayClass", "", name, {"conditions": others + [accepted]}))
    gateways = [gw for gw in idx.all("Gateway") if (gw.get("spec") or {}).get("gatewayClassName") in classes]
    certs: dict[str, Certificate] = {}
    per_gateway: list[tuple[KubeObject, list[GatewayListener]]] = []
    listeners: list[GatewayListener] = []
    for gw in gateways:
        mine = load_listeners(idx, gw, opts, certs)
        per_gateway.append((gw, mine))
        listeners += mine
    http, route_statuses, problems = load_http_routes(idx, opts, listeners, "HTTPRoute")
    result.problems += problems
    for route, status in route_statuses:
        result.statuses.append(StatusWrite("HTTPRoute", *_name(route), status))
    for route in idx.all("GRPCRoute"):
        refused = _not_served(route, listeners)
        if refused is not None:
            result.statuses.append(StatusWrite("GRPCRoute", *_name(route), refused))
            result.problems.append(f"GRPCRoute {'/'.join(_name(route))}: not served by pyk3s")
    for gw, mine in per_gateway:
        status = _gateway_status(gw, mine, addresses)
        result.statuses.append(StatusWrite("Gateway", *_name(gw), status))
        for x in mine:
            for c in x.conditions:
                result.problems.append(f"gateway {x.gw_namespace}/{x.gw_name} listener {x.name}: {c['reason']}: "
                                       f"{c['message']}")
    result.config = DynamicConfig(routers=http.routers, services=http.services, middlewares=http.middlewares,
                                  certificates=tuple(certs[k] for k in sorted(certs)))
    return result


def build_gateway_config(index: ObjectIndex, opts: GatewayOptions) -> DynamicConfig:
    return load_gateways(index, opts).config
