"""Printers of the service-networking kinds: Service, Endpoints, EndpointSlice, Ingress, IngressClass."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from .base import AGE, NAME, NONE, Column, Printer, age, format_labels, format_selector, meta

__all__ = ["ENDPOINTS", "ENDPOINTSLICE", "INGRESS", "INGRESSCLASS", "NETWORKPOLICY", "SERVICE", "service_external_ip",
           "service_ports"]


def _lb_ingress(status: dict | None) -> str:
    ing = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return ",".join(i.get("ip") or i.get("hostname") or "" for i in ing if i.get("ip") or i.get("hostname"))


def service_external_ip(svc: dict) -> str:
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    external = list(spec.get("externalIPs") or ())
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        lb = _lb_ingress(svc.get("status"))  # the server renders with Wide: true, no truncation
        results = [*external, lb] if lb else external
        return ",".join(results) if results else "<pending>"
    if kind == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def service_ports(svc: dict) -> str:
    out = []
    for p in (svc.get("spec") or {}).get("ports") or ():
        proto = p.get("protocol") or "TCP"
        if p.get("nodePort"):
            out.append(f"{p.get('port')}:{p['nodePort']}/{proto}")
        else:
            out.append(f"{p.get('port')}/{proto}")
    return ",".join(out) if out else NONE


SERVICE = Printer((
    NAME,
    Column("Type", description="The type of the service."),
    Column("Cluster-IP", description="The IP address of the service."),
    Column("External-IP", description="The external IP address of the service."),
    Column("Port(s)", description="The port(s) of the service."),
    AGE,
    Column("Selector", priority=1, description="Route service traffic to pods with label keys and values matching "
                                               "this selector."),
), lambda s, now: [
    meta(s).get("name", ""), (s.get("spec") or {}).get("type") or "ClusterIP",
    (s.get("spec") or {}).get("clusterIP") or NONE, service_external_ip(s), service_ports(s), age(s, now),
    format_labels((s.get("spec") or {}).get("selector")),
])


def _format_endpoints(subsets: Sequence[dict] | None) -> str:
    items: list[str] = []
    count = 0
    for ss in subsets or ():
        ports = ss.get("ports") or [{}]
        for addr in ss.get("addresses") or ():
            for p in ports:
                count += 1
                if len(items) < 3:
                    items.append(f"{addr.get('ip')}:{p['port']}" if p.get("port") else str(addr.get("ip")))
    if not items:
        return NONE
    text = ",".join(items)
    return text + f" + {count - 3} more..." if count > 3 else text


ENDPOINTS = Printer((NAME, Column("Endpoints", description="Endpoints of the service."), AGE),
                    lambda e, now: [meta(e).get("name", ""), _format_endpoints(e.get("subsets")), age(e, now)])


def _slice_ports(s: dict) -> str:
    ports = s.get("ports")
    if not ports:
        return "<unset>"
    return ",".join(str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports)


def _slice_endpoints(s: dict) -> str:
    addrs = [a for ep in s.get("endpoints") or () for a in ep.get("addresses") or ()]
    if not addrs:
        return "<unset>"
    text = ",".join(addrs[:3])
    return text + f" + {len(addrs) - 3} more..." if len(addrs) > 3 else text


ENDPOINTSLICE = Printer((
    NAME, Column("AddressType", description="Type of address carried by this EndpointSlice."),
    Column("Ports", description="Ports allowed by this EndpointSlice"),
    Column("Endpoints", description="Endpoints in this EndpointSlice"), AGE,
), lambda s, now: [meta(s).get("name", ""), s.get("addressType", ""), _slice_ports(s), _slice_endpoints(s),
                   age(s, now)])


def _ingress_cells(ing: dict, now: dt.datetime) -> list[Any]:
    spec = ing.get("spec") or {}
    hosts = [r["host"] for r in spec.get("rules") or () if r.get("host")]
    return [meta(ing).get("name", ""), spec.get("ingressClassName") or NONE, ",".join(hosts) or "*",
            _lb_ingress(ing.get("status")), "80, 443" if spec.get("tls") else "80", age(ing, now)]


INGRESS = Printer((
    NAME, Column("Class", description="The name of the IngressClass resource that should be used."),
    Column("Hosts", description="Hosts that incoming requests are matched against."),
    Column("Address", description="Address is a list containing ingress points for the load-balancer."),
    Column("Ports", description="Ports of TLS configurations that open"), AGE,
), _ingress_cells)


INGRESSCLASS = Printer((
    NAME, Column("Controller", description="Controller that is responsible for handling this class"),
    Column("Parameters", description="A reference to a resource with additional parameters"), AGE,
), lambda c, now: [meta(c).get("name", ""), (c.get("spec") or {}).get("controller", ""),
                   _params((c.get("spec") or {}).get("parameters")), age(c, now)])


def _params(p: dict | None) -> str:
    if not p:
        return NONE
    group = p.get("apiGroup") or ""
    kind = f"{p.get('kind', '')}.{group}" if group else p.get("kind", "")
    return f"{kind}/{p.get('name', '')}"


NETWORKPOLICY = Printer((
    NAME, Column("Pod-Selector", description="podSelector selects the pods to which this NetworkPolicy object "
                 "applies. The array of rules is applied to any pods selected by this field. An empty selector "
                 "matches all pods in the policy's namespace. Multiple network policies can select the same set "
                 "of pods. In this case, the ingress rules for each are combined additively. This field is "
                 "optional. If it is not specified, it defaults to an empty selector."), AGE,
), lambda p, now: [meta(p).get("name", ""), format_selector((p.get("spec") or {}).get("podSelector")), age(p, now)])
