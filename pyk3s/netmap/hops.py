"""The pieces of a trace: a hop with its status and reasons, and the hops every path shares (a
Service and its endpoints). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Hop", "endpoint_hops", "find_service", "overall", "service_hop", "services_flat"]

OK, WARN, ERROR, INFO = "ok", "warn", "error", "info"
RANK = {INFO: 0, OK: 0, WARN: 1, ERROR: 2}


@dataclass(frozen=True, slots=True)
class Hop:
    layer: str                  # client, dns, loadbalancer, entrypoint, router, middleware, service, endpoint, policy
    title: str
    status: str = INFO          # ok, warn, error, info
    why: tuple[str, ...] = ()
    ref: str = ""               # what the page links to: "service:ns/name", "router:name", "node:name", ...

    def json(self) -> dict[str, Any]:
        out = asdict(self)
        out["why"] = list(self.why)
        return out


def overall(hops: Iterable[Hop]) -> str:
    worst = OK
    for h in hops:
        if RANK[h.status] > RANK[worst]:
            worst = h.status
    return worst


def services_flat(view: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for ns in view["namespaces"] for s in ns["services"]]


def find_service(view: Mapping[str, Any], *, ip: str = "", key: str = "") -> dict[str, Any] | None:
    for s in services_flat(view):
        if (key and s["key"] == key) or (ip and ip in s["clusterIPs"]):
            return s
    return None


def _port_text(p: Mapping[str, Any]) -> str:
    return f"{p['port']}/{p['protocol']}"


def service_hop(svc: Mapping[str, Any], port: int | None, protocol: str = "TCP") -> tuple[Hop, Mapping[str, Any] | None]:
    """The Service hop for a connection to ``port`` (None: any), and the Service port it lands on."""
    ports = list(svc["ports"])
    chosen = next((p for p in ports if p["port"] == port and p["protocol"] == protocol), None) \
        if port is not None else (ports[0] if ports else None)
    addr = ", ".join(svc["clusterIPs"]) or ("headless" if svc["headless"] else "no cluster IP")
    why = [f"{svc['type']} {addr}" + (f", ports {', '.join(_port_text(p) for p in ports)}" if ports else "")]
    if svc["type"] == "ExternalName":
        return Hop("service", f"Service {svc['key']}", INFO,
                   (f"ExternalName: a CNAME to {svc['externalName']}; no cluster address, no endpoints",),
                   f"service:{svc['key']}"), None
    if port is not None and chosen is None:
        why.append(f"no port {port}/{protocol}: the connection is refused")
        return Hop("service", f"Service {svc['key']}", "error", tuple(why), f"service:{svc['key']}"), None
    if chosen is not None:
        why.append(f"port {_port_text(chosen)} -> targetPort {chosen['targetPort']}")
    why += svc["problems"]
    status = OK if svc["ready"] else "error"
    if status == OK and svc["problems"]:
        status = WARN
    if not svc["ready"] and not svc["problems"]:
        why.append("no ready endpoint: the connection is refused (no backend)")
    return Hop("service", f"Service {svc['key']}", status, tuple(why), f"service:{svc['key']}"), chosen


def endpoint_hops(svc: Mapping[str, Any], limit: int = 6) -> list[Hop]:
    """One hop per endpoint (ready ones first), each with its pod and node."""
    out = []
    eps = svc["endpoints"]
    for ep in eps[:limit]:
        where = ", ".join(ep["addresses"]) + (f" on node {ep['node']}" if ep["node"] else "")
        why = [where, "ports " + (", ".join(ep["ports"]) or "-")]
        if not ep["pod"]:
            why.append("no pod: an address given by hand")
        if not ep["ready"]:
            why.append("not ready: " + (ep["problem"] or "readiness") + " (receives no new connections)")
        out.append(Hop("endpoint", ep["pod"] or ", ".join(ep["addresses"]), OK if ep["ready"] else WARN, tuple(why),
                       f"pod:{ep['pod']}" if ep["pod"] else ""))
    if len(eps) > limit:
        out.append(Hop("endpoint", f"... and {len(eps) - limit} more", INFO))
    return out
