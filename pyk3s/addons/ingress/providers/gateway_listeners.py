"""Gateway API listeners: a Gateway's listeners checked and tied to entry points, as Traefik's kubernetesGateway
provider does it (loadGatewayListeners), plus what routes need of them (parent matching, hostnames,
ReferenceGrants).

A listener is tied to the first entry point whose address ends in ``:<port>`` (an HTTP listener skips
entry points with HTTP TLS); one that finds none is not accepted (``PortUnavailable``). HTTP and HTTPS
serve HTTPRoute and GRPCRoute; TCP and TLS need the experimental channel. An HTTPS listener needs one
certificateRef to a core Secret (another namespace needs a ReferenceGrant); its certificate joins the
default store. Every refusal is a listener condition with Traefik's reason and message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config.dynamic import Certificate
from ..config.static import GatewayOptions
from .common import KubeObject, ObjectIndex, ServiceLookupError, certificate_from_secret

__all__ = [
    "GatewayListener", "GROUP", "CONTROLLER", "load_listeners", "condition", "reference_granted", "matching_hostnames",
    "route_listeners", "match_listener", "allow_route",
]

GROUP = "gateway.networking.k8s.io"
CONTROLLER = "traefik.io/gateway-controller"


def condition(type_: str, ok: bool, generation: int, reason: str, message: str = "") -> dict[str, Any]:
    """A metav1.Condition without its lastTransitionTime (the status writer keeps or sets it)."""
    return {"type": type_, "status": "True" if ok else "False", "observedGeneration": generation,
            "reason": reason, "message": message}


@dataclass(slots=True)
class GatewayListener:
    name: str
    gw_name: str
    gw_namespace: str
    gw_generation: int
    port: int
    protocol: str
    tls: dict[str, Any] | None
    hostname: str | None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    supported_kinds: list[dict[str, Any]] = field(default_factory=list)
    allowed_namespaces: list[str] = field(default_factory=list)  # "" stands for every namespace
    allowed_kinds: list[str] = field(default_factory=list)
    attached: bool = False
    attached_routes: int = 0
    ep_name: str = ""

    def refuse(self, type_: str, reason: str, message: str, ok: bool = False, generation: bool = True) -> None:
        self.conditions.append(condition(type_, ok, self.gw_generation if generation else 0, reason, message))


def _entry_point(opts: GatewayOptions, port: int, protocol: str) -> str:
    for name, address, has_tls in opts.entry_points:
        if address.endswith(f":{port}"):
            if protocol == "HTTP" and has_tls:
                continue
            return name
    raise ValueError(f'no matching entryPoint for port {port} and protocol "{protocol}"')


def _allowed_namespaces(idx: ObjectIndex, gw_ns: str, namespaces: dict[str, Any] | None) -> list[str]:
    frm = (namespaces or {}).get("from")
    if frm is None or frm == "Same":
        return [gw_ns]
    if frm == "All":
        return [""]
    if frm == "Selector":
        sel = (namespaces or {}).get("selector") or {}
        return [(n.get("metadata") or {}).get("name", "") for n in idx.all("Namespace")
                if _selected(sel, (n.get("metadata") or {}).get("labels") or {})]
    raise ValueError(f'unsupported RouteSelectType: "{frm}"')


def _selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """metav1.LabelSelector semantics; an unknown operator is a malformed selector."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or ():
        op, key, values = e.get("operator"), e.get("key", ""), e.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f'malformed selector: "{op}" is not a valid label selector operator')
        if not ok:
            return False
    return True


def _supported_kinds(listener: GatewayListener, experimental: bool) -> list[dict[str, Any]] | None:
    proto = listener.protocol
    if proto in ("HTTP", "HTTPS"):
        return [{"group": GROUP, "kind": "HTTPRoute"}, {"group": GROUP, "kind": "GRPCRoute"}]
    if proto in ("TCP", "TLS") and experimental:
        # Traefik serves TCPRoute/TLSRoute here; pyk3s does not yet, and says so rather than accept them
        listener.refuse("Accepted", "UnsupportedProtocol", f'Protocol "{proto}" (TCPRoute, TLSRoute) is not '
                        "served by pyk3s's kubernetesGateway provider")
        return None
    if proto in ("TCP", "TLS"):
        reason = "ProtocolConflict" if proto == "TCP" else "InvalidRouteKinds"
        listener.refuse("Conflicted", reason, f'Protocol "{proto}" requires the experimental channel support to be '
                        "enabled, please use the `experimentalChannel` option", ok=True, generation=False)
        return None
    listener.refuse("Conflicted", "UnsupportedProtocol", f'Unsupported listener protocol "{proto}"', ok=True,
                    generation=False)
    return None


def _allowed_kinds(listener: GatewayListener, spec: dict[str, Any], supported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = ((spec.get("allowedRoutes") or {}).get("kinds")) or []
    if not wanted:
        return supported
    kinds: list[dict[str, Any]] = []
    for rk in wanted:
        group = rk.get("group", GROUP)  # the CRD defaults the group
        if not any(rk.get("kind") == k["kind"] and group == k["group"] for k in supported):
            listener.refuse("ResolvedRefs", "InvalidRouteKinds",
                            f'Listener protocol "{listener.protocol}" does not support RouteGroupKind '
                            f"{'<nil>' if group is None else group}/{rk.get('kind')}")
            continue
        if all(k["kind"] != rk.get("kind") for k in kinds):
            kinds.append({"group": group, "kind": rk.get("kind")})
    return kinds


def reference_granted(idx: ObjectIndex, from_kind: str, from_ns: str, to_group: str, to_kind: str, to_name: str,
                      to_ns: str) -> str:
    """"" when a reference from ``from_kind`` in ``from_ns`` to the object may be followed, else why not."""
    if to_ns == from_ns:
        return ""
    for grant in idx.all("ReferenceGrant"):
        if (grant.get("metadata") or {}).get("namespace") != to_ns:
            continue
        spec = grant.get("spec") or {}
        if not any(f.get("namespace") == from_ns and f.get("kind") == from_kind and (f.get("group") or "core") == GROUP
                   for f in spec.get("from") or ()):
            continue
        if any(t.get("kind") == to_kind and (t.get("group") or "core") == to_group
               and (t.get("name") in (None, to_name)) for t in spec.get("to") or ()):
            return ""
    return "missing ReferenceGrant"


def _listener_tls(idx: ObjectIndex, gw: KubeObject, listener: GatewayListener, certs: dict[str, Certificate]) -> bool:
    """Check the TLS section of an HTTPS/TLS listener and load its certificate; False when refused."""
    tls = listener.tls
    mode = (tls or {}).get("mode")
    refs = (tls or {}).get("certificateRefs") or []
    if tls is None or (not refs and mode is not None and mode != "Passthrough"):
        listener.refuse("Accepted", "InvalidTLSConfiguration", f"No TLS configuration for Gateway GatewayListener "
                        f'{listener.name}:{listener.port} and protocol "{listener.protocol}"')
        return False
    passthrough = mode == "Passthrough"
    if listener.protocol == "HTTPS" and passthrough:
        listener.refuse("Accepted", "UnsupportedProtocol", "HTTPS protocol is not supported with TLS mode Passthrough")
        return False
    if passthrough:
        return True
    if not refs:
        listener.refuse("ResolvedRefs", "InvalidCertificateRef", "One TLS CertificateRef is required in Terminate mode")
        return False
    ref = refs[0]
    group, kind = ref.get("group", ""), ref.get("kind", "Secret")  # the CRD defaults group "" and kind Secret
    if kind != "Secret" or group not in ("", "core"):
        listener.refuse("ResolvedRefs", "InvalidCertificateRef",
                        f"Unsupported TLS CertificateRef group/kind: {group}/{kind}")
        return False
    gw_ns = (gw.get("metadata") or {}).get("namespace", "")
    ns = ref.get("namespace") or gw_ns
    why = reference_granted(idx, "Gateway", gw_ns, "core", "Secret", ref.get("name", ""), ns)
    if why:
        listener.refuse("ResolvedRefs", "RefNotPermitted", f"Cannot load CertificateRef {ns}/{ref.get('name')}: {why}")
        return False
    key = f"{ns}/{ref.get('name')}"
    if key not in certs:
        try:
            certs[key] = certificate_from_secret(idx, ns, ref.get("name", ""))
        except ServiceLookupError as err:
            listener.refuse("ResolvedRefs", "InvalidCertificateRef", f"Error while retrieving certificate: {err}")
            listener.refuse("Programmed", "Invalid", f"Error while retrieving certificate: {err}")
            return False
    return True


def load_listeners(idx: ObjectIndex, gw: KubeObject, opts: GatewayOptions,
                   certs: dict[str, Certificate]) -> list[GatewayListener]:
    """The listeners of one Gateway, each attached or with the conditions that say why not."""
    md = gw.get("metadata") or {}
    generation = int(md.get("generation") or 0)
    out: list[GatewayListener] = []
    allocated: set[str] = set()
    for spec in (gw.get("spec") or {}).get("listeners") or ():
        listener = GatewayListener(name=spec.get("name", ""), gw_name=md.get("name", ""), gw_namespace=md.get("namespace", ""),
                            gw_generation=generation, port=int(spec.get("port") or 0),
                            protocol=spec.get("protocol", ""), tls=spec.get("tls"), hostname=spec.get("hostname"))
        out.append(listener)
        try:
            listener.ep_name = _entry_point(opts, listener.port, listener.protocol)
        except ValueError as err:
            listener.refuse("Accepted", "PortUnavailable", f"Cannot find entryPoint for Gateway: {err}")
            continue
        try:
            listener.allowed_namespaces = _allowed_namespaces(idx, listener.gw_namespace,
                                                              (spec.get("allowedRoutes") or {}).get("namespaces"))
        except ValueError as err:
            listener.refuse("ResolvedRefs", "InvalidRouteNamespacesSelector", f"Invalid route namespaces selector: {err}")
            continue
        supported = _supported_kinds(listener, opts.experimental_channel)
        if supported is None:
            continue
        before = len(listener.conditions)
        kinds = _allowed_kinds(listener, spec, supported)
        listener.allowed_kinds = [k["kind"] for k in kinds]
        listener.supported_kinds = kinds
        if len(listener.conditions) > before:
            continue
        key = f"{listener.protocol}|{listener.hostname or ''}|{listener.port}"
        if key in allocated:
            listener.refuse("Conflicted", "DuplicateListener",
                            "A listener with same protocol, port and hostname already exists", ok=True)
            continue
        allocated.add(key)
        if listener.protocol in ("HTTP", "TCP") and listener.tls is not None:
            listener.refuse("Accepted", "InvalidTLSConfiguration",
                            "TLS configuration must no be defined when using HTTP or TCP protocol")
            continue
        if listener.protocol in ("HTTPS", "TLS") and not _listener_tls(idx, gw, listener, certs):
            continue
        listener.attached = True
    return out


def route_listeners(listeners: list[GatewayListener], route_ns: str, parent_refs: list[dict[str, Any]]) -> list[GatewayListener]:
    """Traefik matchingGatewayListeners: every listener of a Gateway a parentRef names (once per parentRef)."""
    out = []
    for listener in listeners:
        for ref in parent_refs:
            if ref.get("group", GROUP) != GROUP or ref.get("kind", "Gateway") != "Gateway":
                continue
            if listener.gw_namespace != (ref.get("namespace") or route_ns) or ref.get("name") != listener.gw_name:
                continue
            out.append(listener)
    return out


def match_listener(listener: GatewayListener, ref: dict[str, Any]) -> bool:
    section = ref.get("sectionName") or ""
    if section and section != listener.name:
        return False
    return ref.get("port") is None or int(ref["port"]) == listener.port


def allow_route(listener: GatewayListener, route_ns: str, kind: str) -> bool:
    if kind not in listener.allowed_kinds:
        return False
    return any(ns in ("", route_ns) for ns in listener.allowed_namespaces)


def _matching_hostname(h1: str, h2: str) -> str:
    if h1 == h2:
        return h1
    if not h1.startswith("*."):
        return ""
    suffix = h1[1:]
    if suffix == h2 or not h2.endswith(suffix):
        return ""
    return h2 if h1.count("*") > h2.count("*") else h1


def matching_hostnames(listener_host: str | None, route_hosts: list[str]) -> tuple[list[str], bool]:
    """The route's hostnames narrowed to the listener's (Traefik findMatchingHostnames)."""
    if listener_host is None:
        return list(route_hosts), True
    if not route_hosts:
        return [listener_host], True
    out = []
    for host in route_hosts:
        match = _matching_hostname(listener_host, host) or _matching_hostname(host, listener_host)
        if match:
            out.append(match)
    return out, bool(out)
