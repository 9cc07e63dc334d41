"""A LoadBalancer Service's addresses, or why it is Pending: read from what ServiceLB wrote (its
``pyk3s.io/LoadBalancerReady`` condition, one reason per node, and its events). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyk3s.controllers.servicelb import CONDITION, pending_reasons

from .objects import Obj, condition, meta

__all__ = ["lb_status", "service_events"]

MAX_EVENTS = 8


def service_events(svc: Obj, events: Iterable[Obj]) -> list[dict[str, Any]]:
    """The Service's events, newest first (this incarnation's: same uid when the event has one)."""
    m = meta(svc)
    out = []
    for e in events:
        inv = e.get("involvedObject") or {}
        if inv.get("kind") != "Service" or inv.get("name") != m.get("name") \
                or (inv.get("namespace") or "default") != m.get("namespace", "default"):
            continue
        if inv.get("uid") and m.get("uid") and inv["uid"] != m["uid"]:
            continue
        last = e.get("lastTimestamp") or e.get("eventTime") or meta(e).get("creationTimestamp") or ""
        out.append({"type": e.get("type", "Normal"), "reason": e.get("reason", ""), "message": e.get("message", ""),
                    "count": e.get("count") or 1, "last": last,
                    "source": (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""})
    out.sort(key=lambda e: e["last"], reverse=True)
    return out[:MAX_EVENTS]


def lb_status(svc: Obj, events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """None for a Service that is not a LoadBalancer; else its addresses and, while it has none, why."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return None
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    cond = condition(svc, CONDITION)
    out: dict[str, Any] = {"addresses": addresses, "state": "ready" if addresses else "pending", "nodes": {},
                           "reason": "", "condition": dict(cond) if cond else None, "controller": "servicelb"}
    if spec.get("loadBalancerClass"):
        out["controller"] = spec["loadBalancerClass"]
        if not addresses:
            out["reason"] = (f"loadBalancerClass {spec['loadBalancerClass']}: ServiceLB leaves this Service to "
                             "that controller, and it has published no address")
        return out
    if cond is not None and cond.get("status") == "False":
        out["reason"] = cond.get("message") or cond.get("reason") or ""
        out["nodes"] = pending_reasons(cond.get("message") or "")
        if cond.get("reason") == "InvalidService":
            out["state"] = "invalid" if not addresses else "ready"
    elif not addresses:
        warning = next((e for e in events if e["type"] == "Warning"), None)
        if warning is not None:
            out["reason"] = f"{warning['reason']}: {warning['message']}"
        elif cond is None:
            out["reason"] = ("no load balancer controller has reported on this Service yet "
                             "(ServiceLB disabled with --disable servicelb, or still starting)")
        else:
            out["reason"] = "waiting for the svclb pods to become Ready"
    return out
