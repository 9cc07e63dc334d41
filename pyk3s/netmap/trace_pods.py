"""The ``pod -> pod:port`` part of a trace: where each end runs, how the packet gets from one node to
the other (the pod network's backend), and whether NetworkPolicy lets the connection through,
answered by ``pyk3s netpol explain``'s evaluator on the objects the map watches.

A destination may also be a Service (``svc/ns/name:port``): its endpoints are judged one by one, after
the Service's translation, as the kernel sees the packet."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from .hops import ERROR, INFO, OK, WARN, Hop, find_service, service_hop
from .objects import Obj, is_ready, pod_problem
from .policies import policy_verdict
from .state import MapState

__all__ = ["parse_pair", "pod_trace"]

PAIR = re.compile(r"^\s*(?P<src>\S+)\s*->\s*(?P<dst>\S+?)(?::(?P<port>\d+|icmp)(?:/(?P<proto>[A-Za-z]+))?)?\s*$")


def parse_pair(text: str) -> tuple[str, str, str, int]:
    """``a -> b:80/TCP`` -> (a, b, protocol, port); ``icmp`` as the port probes ICMP; 80/TCP by default."""
    m = PAIR.match(text)
    if m is None:
        raise ValueError(f"{text!r}: expected `ns/pod -> ns/pod:port[/TCP|UDP|SCTP]`")
    port_text = (m.group("port") or "80").lower()
    if port_text == "icmp":
        return m.group("src"), m.group("dst"), "ICMP", 0
    proto = (m.group("proto") or "TCP").upper()
    port = int(port_text)
    if proto not in ("TCP", "UDP", "SCTP") or not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port {port}/{proto}: expected 1-65535 and TCP, UDP or SCTP")
    return m.group("src"), m.group("dst"), proto, port


def _pod(state: MapState, ref: str) -> Obj | None:
    """``ns/name``, ``name`` (namespace default) or a pod's address."""
    try:
        ip = str(ipaddress.ip_address(ref))
    except ValueError:
        ip = ""
    ns, _, name = ref.rpartition("/")
    ns = ns or "default"
    for p in state.objects("pods"):
        m = p["metadata"]
        if ip and ip in _ips(p) and not (p.get("spec") or {}).get("hostNetwork"):
            return p
        if not ip and m.get("name") == name and m.get("namespace") == ns:
            return p
    return None


def _key(pod: Obj) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata'].get('name')}"


def _ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    return [a["ip"] for a in status.get("podIPs") or [] if a.get("ip")] or (
        [status["podIP"]] if status.get("podIP") else [])


def _pod_hop(pod: Obj, role: str, port: int = 0, protocol: str = "TCP") -> Hop:
    m, spec = pod["metadata"], pod.get("spec") or {}
    ref = f"{m.get('namespace')}/{m.get('name')}"
    why = [f"{', '.join(_ips(pod)) or 'no address yet'} on node {spec.get('nodeName') or '(not scheduled)'}"]
    status = OK
    if not is_ready(pod):
        why.append("not Ready: " + (pod_problem(pod) or "readiness"))
        status = WARN
    if port and role == "destination":
        declared = [cp for c in spec.get("containers") or [] for cp in c.get("ports") or []
                    if cp.get("containerPort") == port and (cp.get("protocol") or "TCP") == protocol]
        if not declared:
            why.append(f"no container declares {port}/{protocol} (the process may still listen on it)")
    if spec.get("hostNetwork"):
        why.append("hostNetwork: uses the node's address; NetworkPolicy does not select it")
    return Hop(role, ref, status, tuple(why), f"pod:{ref}")


def _route_hop(state: MapState, src: Obj, dst: Obj) -> Hop:
    a = (src.get("spec") or {}).get("nodeName", "")
    b = (dst.get("spec") or {}).get("nodeName", "")
    if not a or not b:
        return Hop("route", "no route yet", WARN, ("a pod that is not scheduled has no network",))
    if a == b:
        return Hop("route", f"node {a}", OK, ("both pods run on this node: routed between their veths",), f"node:{a}")
    nodes: dict[str, Mapping[str, Any]] = {n["name"]: n for n in state.nodes()["nodes"]}
    target = nodes.get(b, {})
    backend = (target.get("backend") or {}).get("type", "?")
    cidrs = ", ".join(target.get("podCIDRs") or []) or "no pod CIDR"
    addr = next((x["address"] for x in target.get("addresses") or [] if x["type"] == "InternalIP"), "?")
    why = [f"{backend}: node {a} sends pod CIDR {cidrs} to node {b} at {addr}"]
    status = OK
    if not target.get("ready", False):
        why.append(f"node {b} is not Ready: {target.get('readyReason', '')}")
        status = WARN
    return Hop("route", f"node {a} -> node {b}", status, tuple(why), f"node:{b}")


def pod_trace(state: MapState, query: str) -> tuple[list[Hop], dict[str, Any]]:
    try:
        src_ref, dst_ref, proto, port = parse_pair(query)
    except ValueError as err:
        return [Hop("client", "cannot read the pair", ERROR, (str(err),))], {}
    src = _pod(state, src_ref)
    if src is None:
        return [Hop("source", src_ref, ERROR, ("no such pod",))], {}
    hops = [_pod_hop(src, "source")]
    targets: list[Obj] = []
    if dst_ref.startswith("svc/"):
        key = dst_ref[4:] if "/" in dst_ref[4:] else f"default/{dst_ref[4:]}"
        svc = find_service(state.services(), key=key)
        if svc is None:
            return [*hops, Hop("service", f"Service {key}", ERROR, ("no such Service",))], {}
        shop, chosen = service_hop(svc, port, proto)
        hops.append(shop)
        if chosen is None:
            return hops, {}
        target_port = chosen["targetPort"]
        for ep in svc["endpoints"]:
            pod = _pod(state, ep["pod"]) if ep["pod"] and ep["ready"] else None
            if pod is not None:
                targets.append(pod)
        if isinstance(target_port, int):
            port = target_port
        elif targets:
            port = next((cp.get("containerPort") for c in (targets[0].get("spec") or {}).get("containers") or []
                         for cp in c.get("ports") or [] if cp.get("name") == target_port), port)
        if not targets:
            return hops, {}
    else:
        dst = _pod(state, dst_ref)
        if dst is None:
            return [*hops, Hop("destination", dst_ref, ERROR, ("no such pod",))], {}
        targets = [dst]
    verdicts = []
    commands = []
    what = "icmp" if proto == "ICMP" else f"{port}/{proto}"
    for dst in targets[:4]:
        hops.append(_route_hop(state, src, dst))
        hop, verdict = policy_verdict(state, src, dst, proto, port)
        hops.append(hop)
        if verdict is not None:
            verdicts.append(verdict)
            commands.append(f"pyk3s netpol explain --json {_key(src)} {_key(dst)} {what}")
        hops.append(_pod_hop(dst, "destination", port, proto))
    engine: dict[str, Any] = {}
    if verdicts:
        engine["netpol"] = verdicts[0] if len(verdicts) == 1 else {"verdicts": verdicts}
        engine["commands"] = {"netpol": "; ".join(commands)}
    if len(targets) > 4:
        hops.append(Hop("destination", f"... and {len(targets) - 4} more endpoints", INFO))
    return hops, engine
