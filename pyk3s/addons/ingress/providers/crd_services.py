"""Services of the kubernetesCRD provider (Traefik's configBuilder, crd/kubernetes_http.go): a route's
Kubernetes Services become load balancers named ``<ns>-<svc>-<port>`` (spec 3.5-3.7), TraefikServices
``<ns>-<name>`` (weighted, mirroring, highestRandomWeight, failover; 3.8). Errors are
:class:`ServiceLookupError` with Traefik's messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config.durations import duration_seconds, go_duration
from ..config.dynamic import (
    Failover,
    HighestRandomWeight,
    LoadBalancer,
    Mirror,
    Mirroring,
    Server,
    Service,
    StickyCookie,
    Weighted,
    WeightedRef,
)
from ..config.errors import ConfigError
from ..config.static import ProviderOptions
from .common import (
    KubeObject,
    ObjectIndex,
    ServiceLookupError,
    endpoint_servers,
    join_host_port,
    native_servers,
    node_port_servers,
    normalize,
)
from .crd_scope import PROVIDER, middleware_keys

__all__ = ["ServiceBuilder", "sticky_cookie"]

_HEALTH_DEFAULTS = {"followRedirects": True, "interval": "30s", "timeout": "5s"}


def sticky_cookie(spec: Mapping[str, Any] | None) -> StickyCookie | None:
    cookie = (spec or {}).get("cookie")
    if cookie is None:
        return None
    path = cookie.get("path")
    return StickyCookie(name=cookie.get("name", ""), secure=bool(cookie.get("secure")),
                        http_only=bool(cookie.get("httpOnly")), same_site=cookie.get("sameSite", ""),
                        max_age=int(cookie.get("maxAge", 0) or 0), path="/" if path is None else str(path),
                        domain=cookie.get("domain", ""))


def _duration(value: Any, default: float, where: str) -> float:
    try:
        return duration_seconds(value, default, where)
    except ConfigError as err:
        raise ServiceLookupError(str(err).removeprefix("ingress: ")) from None


def _health_check(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A servers load balancer's healthCheck with Traefik's defaults (its JSON spelling)."""
    out: dict[str, Any] = dict(_HEALTH_DEFAULTS)
    for key in ("scheme", "path", "method", "status", "port", "hostname", "headers", "followRedirects"):
        if spec.get(key) not in (None, ""):
            out[key] = spec[key]
    if spec.get("mode") not in (None, "http"):
        out["mode"] = spec["mode"]
    for key in ("interval", "timeout"):
        if spec.get(key) is not None:
            out[key] = go_duration(_duration(spec[key], 0.0, f"healthCheck.{key}"))
    out["unhealthyInterval"] = (go_duration(_duration(spec["unhealthyInterval"], 0.0, "healthCheck.unhealthyInterval"))
                                if spec.get("unhealthyInterval") is not None else out["interval"])
    return out


def _port_text(port: Any) -> str:
    return "" if port in (None, 0, "") else str(port)


@dataclass(slots=True)
class ServiceBuilder:
    """Traefik's configBuilder: Kubernetes Services and TraefikServices -> dynamic services."""

    idx: ObjectIndex
    opts: ProviderOptions
    services: dict[str, Service]

    def full_name(self, ns: str, name: str, port: Any) -> str:
        """Traefik fullServiceName."""
        if _port_text(port):
            return normalize(f"{ns}-{name}-{port}")
        if "@" not in name:
            return normalize(f"{ns}-{name}")
        base, _, provider = name.rpartition("@")
        if provider == PROVIDER:
            return normalize(f"{ns}-{base}")
        return normalize(base) + "@" + provider

    def name_and_service(self, parent_ns: str, ref: Mapping[str, Any]) -> tuple[str, Service | None]:
        """Traefik nameAndService: the name to refer to, and the load balancer of a Kubernetes Service."""
        name = str(ref.get("name", ""))
        ns = str(ref.get("namespace") or "")
        if "@" not in name:
            ns = ns or parent_ns
            if not self.opts.allow_cross_namespace and ns != parent_ns:
                raise ServiceLookupError(f"service {ns}/{name} not in the parent resource namespace {parent_ns}")
        elif self.opts.cross_provider_namespaces is not None and parent_ns not in self.opts.cross_provider_namespaces:
            raise ServiceLookupError(f"service {name!r} reference is not allowed: namespace {parent_ns!r} is not in "
                                     "crossProviderNamespaces")
        kind = ref.get("kind") or "Service"
        if kind == "Service":
            svc = self.servers_lb(ns, ref)
            return self.full_name(ns, name, ref.get("port")), svc
        if kind == "TraefikService":
            return self.full_name(ns, name, 0), None
        raise ServiceLookupError(f"unsupported service kind {kind}")

    def servers_lb(self, ns: str, ref: Mapping[str, Any]) -> Service:
        """Traefik buildServersLB."""
        strategy = str(ref.get("strategy") or "wrr")
        if strategy == "RoundRobin":
            strategy = "wrr"
        if strategy not in ("wrr", "p2c", "hrw", "leasttime"):
            raise ServiceLookupError(f"load-balancer strategy {strategy} is not supported")
        servers = self.load_servers(ns, ref)
        flush = (ref.get("responseForwarding") or {}).get("flushInterval")
        transport = ""
        if ref.get("serversTransport"):
            transport = self.transport_key(ns, str(ref["serversTransport"]))
        lb = LoadBalancer(
            servers=tuple(servers), pass_host_header=ref.get("passHostHeader") is not False,
            sticky=sticky_cookie(ref.get("sticky")), servers_transport=transport, strategy=strategy,
            flush_interval=_duration(flush, 0.1, "responseForwarding.flushInterval") if flush else 0.1,
            health_check=_health_check(ref["healthCheck"]) if ref.get("healthCheck") is not None else None,
            passive_health_check=self._passive(ref.get("passiveHealthCheck")))
        middlewares = middleware_keys(ns, ref.get("middlewares") or (), self.opts) if ref.get("middlewares") else ()
        return Service(load_balancer=lb, middlewares=middlewares)

    @staticmethod
    def _passive(spec: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if spec is None:
            return None
        window = _duration(spec.get("failureWindow"), 10.0, "passiveHealthCheck.failureWindow")
        return {"failureWindow": go_duration(window), "maxFailedAttempts": int(spec.get("maxFailedAttempts") or 1)}

    def transport_key(self, ns: str, name: str) -> str:
        """Traefik makeServersTransportKey."""
        if "@" in name:
            if not self.opts.allow_cross_namespace and name.endswith("@" + PROVIDER):
                raise ServiceLookupError(f"invalid reference to serversTransport {name}: namespace-name@kubernetescrd "
                                         "format is not allowed when crossnamespace is disallowed")
            if self.opts.cross_provider_namespaces is not None and ns not in self.opts.cross_provider_namespaces:
                raise ServiceLookupError(f"serversTransport {name!r} reference is not allowed: namespace {ns!r} is not in "
                                         "crossProviderNamespaces")
            return name
        return normalize(f"{ns}-{name}")

    def load_servers(self, ns: str, ref: Mapping[str, Any]) -> list[Server]:
        """Traefik loadServers."""
        name = str(ref.get("name", ""))
        svc = self.idx.get("Service", ns, name)
        if svc is None:
            raise ServiceLookupError(f"kubernetes service not found: {ns}/{name}")
        spec = svc.get("spec") or {}
        external = spec.get("type") == "ExternalName"
        port = self._service_port(svc, ref.get("port"), external)
        if not external and ref.get("healthCheck") is not None:
            raise ServiceLookupError(f"healthCheck allowed only for ExternalName services: {ns}/{name}")
        scheme = self._scheme(str(ref.get("scheme") or ""), str(port.get("name") or ""), int(port.get("port") or 0))
        if external:
            if not self.opts.allow_external_name_services:
                raise ServiceLookupError(f"externalName services not allowed: {ns}/{name}")
            return [Server(f"{scheme}://{join_host_port(spec.get('externalName', ''), int(port.get('port') or 0))}")]
        native = self.opts.native_lb_by_default if ref.get("nativeLB") is None else bool(ref.get("nativeLB"))
        if native:
            return native_servers(svc, int(port.get("port") or 0), scheme)
        if spec.get("type") == "NodePort" and ref.get("nodePortLB"):
            if self.opts.disable_cluster_scope_resources:
                raise ServiceLookupError("nodes lookup is disabled")
            if not self.idx.all("Node"):
                raise ServiceLookupError(f"nodes not found for NodePort service {ns}/{name}")
            servers = node_port_servers(self.idx, int(port.get("nodePort") or 0), scheme)
            if not servers:
                raise ServiceLookupError(f"no servers were generated for service {name} in namespace")
            return servers
        servers = endpoint_servers(self.idx, ns, name, str(port.get("name") or ""), scheme)
        if not servers and not self.opts.allow_empty_services:
            raise ServiceLookupError(f"no servers found for {ns}/{name}")
        return servers

    @staticmethod
    def _service_port(svc: KubeObject, port: Any, external: bool) -> dict[str, Any]:
        """Traefik getServicePort."""
        if port in (None, "", 0):
            raise ServiceLookupError("ingressRoute service port not defined")
        numeric = isinstance(port, int)
        for p in (svc.get("spec") or {}).get("ports") or ():
            if (numeric and p.get("port") == port) or (not numeric and p.get("name") == port):
                return dict(p)
        if not external or not numeric:
            raise ServiceLookupError(f"service port not found: {port}")
        return {"port": port}

    @staticmethod
    def _scheme(scheme: str, port_name: str, port: int) -> str:
        """Traefik parseServiceProtocol."""
        if scheme in ("http", "https", "h2c"):
            return scheme
        if scheme:
            raise ServiceLookupError(f"invalid scheme {scheme!r} specified")
        return "https" if port == 443 or port_name.startswith("https") else "http"

    def weighted(self, ns: str, refs: Iterable[Mapping[str, Any]], sticky: StickyCookie | None) -> Service:
        children = []
        for ref in refs:
            full, svc = self.name_and_service(ns, ref)
            if svc is not None:
                self.services[full] = svc
            weight = ref.get("weight")
            children.append(WeightedRef(full, 1 if weight is None else int(weight)))
        return Service(weighted=Weighted(services=tuple(children), sticky=sticky))

    def traefik_service(self, obj: KubeObject) -> Service:
        md = obj.get("metadata") or {}
        ns = md.get("namespace", "default")
        spec = obj.get("spec") or {}
        if spec.get("weighted") is not None:
            w = spec["weighted"]
            return self.weighted(ns, w.get("services") or (), sticky_cookie(w.get("sticky")))
        if spec.get("mirroring") is not None:
            m = spec["mirroring"]
            main, svc = self.name_and_service(ns, m)
            if svc is not None:
                self.services[main] = svc
            mirrors = []
            for ref in m.get("mirrors") or ():
                full, msvc = self.name_and_service(ns, ref)
                if msvc is not None:
                    self.services[full] = msvc
                mirrors.append(Mirror(full, int(ref.get("percent", 0) or 0)))
            body = m.get("mirrorBody")
            size = m.get("maxBodySize")
            return Service(mirroring=Mirroring(service=main, mirrors=tuple(mirrors),
                                               mirror_body=None if body is None else bool(body),
                                               max_body_size=None if size is None else int(size)))
        if spec.get("highestRandomWeight") is not None:
            children = []
            for ref in spec["highestRandomWeight"].get("services") or ():
                full, svc = self.name_and_service(ns, ref)
                if svc is not None:
                    self.services[full] = svc
                weight = ref.get("weight")
                children.append(WeightedRef(full, 1 if weight is None else int(weight)))
            return Service(highest_random_weight=HighestRandomWeight(services=tuple(children)))
        if spec.get("failover") is not None:
            f = spec["failover"]
            try:
                main, svc = self.name_and_service(ns, f.get("service") or {})
            except ServiceLookupError as err:
                raise ServiceLookupError(f"getting service: {err}") from None
            try:
                fallback, fsvc = self.name_and_service(ns, f.get("fallback") or {})
            except ServiceLookupError as err:
                raise ServiceLookupError(f"getting fallback service: {err}") from None
            errors = f.get("errors") or {}
            if svc is not None:
                self.services[main] = svc
            if fsvc is not None:
                self.services[fallback] = fsvc
            body = errors.get("maxRequestBodyBytes")
            return Service(failover=Failover(service=main, fallback=fallback,
                                             errors_status=tuple(str(s) for s in errors.get("status") or ()),
                                             errors_max_request_body_bytes=None if body is None else int(body)))
        raise ServiceLookupError("unspecified service type")
