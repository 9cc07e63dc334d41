"""The trace box: a URL (``tcp://`` and ``udp://`` ones too), a DNS name or ``pod -> pod:port``, followed hop by hop with each decision and
why. Every decision comes from the engine of the matching ``explain`` command, called as a library:
``pyk3s ingress explain`` (the router, from the same compiled configuration), ``pyk3s dns explain``
(the plugin chain of the cluster's Corefile) and, for pod pairs, ``pyk3s netpol explain``. Each trace
carries that engine's own answer beside the hops, so the two can be compared word for word.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pyk3s.addons.ingress.explain import explain as ingress_explain

from .hops import ERROR, INFO, OK, WARN, Hop, endpoint_hops, find_service, overall, service_hop
from .state import MapState
from .trace_dns import dns_hops, dns_trace

__all__ = ["classify", "trace"]

MAX_LISTED = 6


def classify(query: str) -> str:
    """``pods`` for ``a -> b:port``, ``url`` for anything with a scheme or a path, else ``dns``."""
    q = query.strip()
    if "->" in q:
        return "pods"
    if "://" in q:
        return "url"
    head = q.split()[0] if q.split() else ""
    if "/" in head and "." in head.split("/", 1)[0]:
        return "url"
    return "dns"


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return ""


def _node_of_address(state: MapState, ip: str) -> str:
    for n in state.nodes()["nodes"]:
        if any(a["address"] == ip for a in n["addresses"]):
            return str(n["name"])
    return ""


def _lb_hop(state: MapState, ip: str) -> Hop:
    model = state.ingress_model()
    dep = model.deployed
    if not dep.service:
        return Hop("loadbalancer", "no published Service", WARN, (
            f"the ingress configuration comes from {dep.source}; no Service publishes it, so a client reaches "
            "it only on the ports the proxy itself listens on",))
    svc = find_service(state.services(), key=dep.service)
    lb = (svc or {}).get("lb")
    ports = ", ".join(f"{p} -> {e}" for p, e in sorted(dep.ports.items()))
    ref = f"service:{dep.service}"
    if lb is None:
        return Hop("loadbalancer", f"Service {dep.service}", INFO, (f"published ports {ports or '-'}",), ref)
    why = [f"published ports {ports or '-'}"]
    if lb["state"] != "ready":
        why.insert(0, "Pending: no address. " + (lb["reason"] or ""))
        why += [f"node {n}: {r}" for n, r in sorted(lb["nodes"].items())]
        return Hop("loadbalancer", f"LoadBalancer {dep.service}", ERROR, tuple(why), ref)
    why.insert(0, "addresses " + ", ".join(lb["addresses"]))
    status = OK
    if ip and ip not in lb["addresses"]:
        node = _node_of_address(state, ip)
        why.append(f"{ip} is not one of its addresses" + (
            f" (it is node {node}'s: ServiceLB does not serve the ingress there)" if node else ""))
        status = WARN
    return Hop("loadbalancer", f"LoadBalancer {dep.service}", status, tuple(why), ref)


def _router_hops(state: MapState, report: Mapping[str, Any], host: str) -> list[Hop]:
    view = state.ingress()
    hops: list[Hop] = []
    misses = [c for c in report["checked"] if not c["matched"]]
    skipped = [f"{c['router']}: " + ", ".join(f"{m['matcher']} -> {str(m['result']).lower()}"
                                               for m in c["matchers"] if not m["result"])
               for c in misses[:MAX_LISTED]]
    rules = {r["name"]: r["rule"] for r in view["routers"]}
    # routers in error that name this host come first: they are the likely intended ones
    disabled = sorted(report["disabled"], key=lambda d: host not in rules.get(d["router"], ""))
    broken = [f"{d['router']} is disabled: {'; '.join(d['error'])}" for d in disabled[:MAX_LISTED]]
    near = [b for d, b in zip(disabled, broken, strict=False) if host and host in rules.get(d["router"], "")]
    match = report["match"]
    if match is None:
        if near:  # the router meant for this host is in error: that is the reason, say it first
            d = disabled[0]
            origin = next((r["from"] for r in view["routers"] if r["name"] == d["router"]), "")
            why = [f"disabled: {'; '.join(d['error'])}", *([f"from {origin}"] if origin else []),
                   "so no router takes the request: 404 page not found", *(f"no: {s}" for s in skipped),
                   *broken[1:]]
            return [Hop("router", d["router"], ERROR, tuple(why), f"router:{d['router']}")]
        why = ["404 page not found: no router matched", *(f"no: {s}" for s in skipped), *broken]
        return [Hop("router", "no router", ERROR, tuple(why))]
    info: dict[str, Any] = next((r for r in view["routers"] if r["name"] == match["router"]), {})
    why = [f"rule {info.get('rule', '')} (priority {info.get('priority', '')})"]
    if info.get("from"):
        why.append(f"from {info['from']}")
    why += [f"checked first, no: {s}" for s in skipped]
    why += [f"also for this host: {b}" for b in near]
    hops.append(Hop("router", match["router"], OK, tuple(why), f"router:{match['router']}"))
    for name in match["middlewares"]:
        mw = view["middlewares"].get(name, {})
        status = OK if mw.get("status") == "enabled" else ERROR
        hops.append(Hop("middleware", name, status, (mw.get("type") or "unknown type", *mw.get("errors", [])),
                        f"middleware:{name}"))
    svc = view["services"].get(match["service"], {})
    servers = svc.get("servers") or []
    why = [svc.get("type") or "service", *svc.get("errors", [])]
    status = OK
    if "servers" in match and not match["servers"]:
        why.append("no available server: 503 Service Unavailable")
        status = ERROR
    backends = sorted({s["service"] for s in servers if s["service"]})
    if backends:
        why.append("Kubernetes Service " + ", ".join(backends))
    hops.append(Hop("ingress-service", match["service"], status, tuple(why), f"iservice:{match['service']}"))
    for s in servers[:MAX_LISTED]:
        where = f"{s['url']}" + (f" on node {s['node']}" if s["node"] else "")
        why = [where] + ([] if s["pod"] else ["not a pod of this cluster"]) + ([] if s["ready"] else ["not ready"])
        hops.append(Hop("endpoint", s["pod"] or s["url"], OK if s["ready"] else WARN, tuple(why),
                        f"pod:{s['pod']}" if s["pod"] else ""))
    return hops


def _entrypoint_hop(state: MapState, report: Mapping[str, Any], port: int, via_service: bool) -> Hop:
    static = state.ingress_model().compiled.static
    name = report["entrypoint"]
    ep = static.entrypoints.get(name)
    if ep is None:
        return Hop("entrypoint", "no entry point", ERROR, (f"no entry point listens for port {port}",))
    why = [f"address {ep.address}" + (", TLS" if ep.tls else "")]
    if via_service:
        why.append(f"port {port} of the published Service targets this entry point")
    elif ep.port == port:
        why.append(f"port {port} is the entry point's own")
    else:
        why.append(f"no entry point is published on port {port}: explain judges it on {name}")
    if ep.redirect_to:
        why.append(f"redirects to {ep.redirect_to} ({ep.redirect_scheme})")
    return Hop("entrypoint", name, OK, tuple(why), f"entrypoint:{name}")


def _ingress_path(state: MapState, url: str, headers: Sequence[tuple[str, str]], method: str, ip: str,
                  port: int) -> tuple[list[Hop], dict[str, Any]]:
    model = state.ingress_model()
    chosen = model.deployed.entrypoint_for(url)
    report = ingress_explain(model.compiled, url, list(headers), chosen, method)
    host = str(report["host"]).split(":")[0]
    hops = [_lb_hop(state, ip), _entrypoint_hop(state, report, port, bool(chosen))]
    hops += _router_hops(state, report, host)
    return hops, report


async def _url_trace(state: MapState, url: str, headers: Sequence[tuple[str, str]], method: str) -> dict[str, Any]:
    full = url if "://" in url else "http://" + url
    parts = urlsplit(full)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return _result("url", url, [Hop("client", url, ERROR, ("the URL's port is not a number",))])
    hops = [Hop("client", f"{method} {full}", INFO, (f"host {host}, port {port}, path {parts.path or '/'}",))]
    out: dict[str, Any] = {}
    ip = _ip(host)
    domain = state.domain()
    if not ip and (host == domain or host.endswith("." + domain)):
        text, reply, dhops = await dns_hops(state, host, "A")
        hops += dhops
        out["dns"] = {"text": text, **reply}
        answers = [a for a in reply["addresses"]]
        if not answers:
            return _result("url", url, hops, **out)
        ip = answers[0]
    svc = find_service(state.services(), ip=ip) if ip else None
    if svc is not None:
        shop, chosen = service_hop(svc, port)
        hops.append(shop)
        if chosen is not None:
            hops += endpoint_hops(svc)
        return _result("url", url, hops, **out)
    pods = state.objects("pods")
    pod = next((p for p in pods if ip and ip in [a.get("ip") for a in (p.get("status") or {}).get("podIPs") or []]),
               None)
    if pod is not None:
        m = pod["metadata"]
        hops.append(Hop("endpoint", ip, OK, (f"pod {m.get('namespace')}/{m.get('name')} on node "
                                             f"{(pod.get('spec') or {}).get('nodeName', '?')}: straight to the pod, "
                                             "no Service, no ingress",), f"pod:{m.get('namespace')}/{m.get('name')}"))
        return _result("url", url, hops, **out)
    if not ip:
        hops.append(Hop("dns", host, INFO, (
            f"not a name under {domain}: the client's own resolver must send it to an address the ingress is "
            "published on",)))
    ingress_hops, report = _ingress_path(state, full, headers, method, ip, port)
    hops += ingress_hops
    return _result("url", url, hops, ingress=report, **out)


def _tcp_args(words: Sequence[str]) -> argparse.Namespace:
    """The flags of ``pyk3s ingress explain tcp://...`` after the URL (--sni, --alpn, --tls, --peer)."""
    ap = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    ap.add_argument("--sni", default="")
    ap.add_argument("--alpn", action="append", default=[])
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--peer", default="127.0.0.1")
    args, rest = ap.parse_known_args(list(words))
    if rest:
        raise ValueError(f"unknown words {' '.join(rest)!r}: expected --sni NAME, --alpn P, --tls, --peer IP")
    return args


def _explain_tcp() -> Callable[..., dict[str, Any]] | None:
    """The ingress's TCP/UDP explain engine, when this build's ingress routes TCP and UDP."""
    try:
        module = importlib.import_module("pyk3s.addons.ingress.explain_tcp")
    except ModuleNotFoundError:
        return None
    engine: Callable[..., dict[str, Any]] | None = getattr(module, "explain_tcp", None)
    return engine


async def _tcp_trace(state: MapState, query: str) -> dict[str, Any]:
    words = query.split()
    url = words[0]
    parts = urlsplit(url)
    protocol = parts.scheme
    try:
        args = _tcp_args(words[1:])
        port = parts.port or 0
    except ValueError as err:
        return _result("tcp", query, [Hop("client", url, ERROR, (str(err),))])
    hello = (f"ClientHello SNI {args.sni!r}" + (f", ALPN {', '.join(args.alpn)}" if args.alpn else "")) \
        if (args.sni or args.alpn or args.tls) else "no TLS"
    hops = [Hop("client", f"{protocol.upper()} {parts.hostname}:{port}", INFO,
                ((f"{hello}, " if protocol == "tcp" else "") + f"from {args.peer}",))]
    engine = _explain_tcp()
    if engine is None:
        hops.append(Hop("router", "no TCP routing", WARN, (
            "this build's ingress has no TCP and UDP routers: IngressRouteTCP and IngressRouteUDP are not served",)))
        return _result("tcp", query, hops)
    model = state.ingress_model()
    dep = model.deployed
    chosen = (dep.udp_ports.get(port, "") if protocol == "udp" else dep.entrypoint_for(url))
    alpn = tuple(p for a in args.alpn for p in a.split(",") if p)
    report = engine(model.compiled, url, args.sni, alpn, args.tls, args.peer, chosen)
    hops.append(_lb_hop(state, _ip(parts.hostname or "")))
    ep = model.compiled.static.entrypoints.get(report["entrypoint"])
    if ep is None:
        hops.append(Hop("entrypoint", "no entry point", ERROR, (report.get("result") or f"nothing on port {port}",)))
        return _result("tcp", query, hops, ingress=report)
    hops.append(Hop("entrypoint", report["entrypoint"], OK, (
        f"address {ep.address}", f"port {port} of the published Service targets this entry point" if chosen
        else f"port {port} is the entry point's own"), f"entrypoint:{report['entrypoint']}"))
    view = state.ingress()
    match = report.get("match")
    steps = list(report.get("steps") or [])
    broken = [f"{d['router']} is disabled: {'; '.join(d['error'])}" for d in report.get("disabled") or []]
    if match is None:
        hops.append(Hop("router", "no TCP router", ERROR if protocol == "udp" else INFO,
                        (str(report.get("result") or ""), *steps, *broken)))
        return _result("tcp", query, hops, ingress=report)
    if not isinstance(match, dict) or "router" not in match:
        return _result("tcp", query, hops, ingress=report)
    tried = [f"checked first, no: {c['router']}: " + ", ".join(
        f"{m['matcher']} -> {str(m['result']).lower()}" for m in c["matchers"] if not m["result"])
        for c in report.get("checked") or [] if not c["matched"]][:MAX_LISTED]
    info: dict[str, Any] = next((r for r in view["routers"] if r["name"] == match["router"]), {})
    hops.append(Hop("router", match["router"], OK, (
        *([f"rule {info['rule']}"] if info.get("rule") else []), *([match["tls"]] if match.get("tls") else []),
        *([f"from {info['from']}"] if info.get("from") else []), *steps, *tried), f"router:{match['router']}"))
    for name in match.get("middlewares") or []:
        mw = view.get("tcpMiddlewares", {}).get(name, {})
        hops.append(Hop("middleware", name, OK if mw.get("status", "enabled") == "enabled" else ERROR,
                        (mw.get("type") or "TCP middleware", *mw.get("errors", []))))
    services = view.get("udpServices" if protocol == "udp" else "tcpServices", {})
    svc = services.get(match["service"], {})
    servers = svc.get("servers") or []
    status = OK if match.get("servers") else ERROR
    backends = sorted({s["service"] for s in servers if s["service"]})
    hops.append(Hop("ingress-service", match["service"] or "no service", status, (
        svc.get("type") or "service", *(["Kubernetes Service " + ", ".join(backends)] if backends else []),
        *([] if match.get("servers") else [str(report.get("result") or "no server: the connection is closed")]))))
    for s in servers[:MAX_LISTED]:
        hops.append(Hop("endpoint", s["pod"] or f"{s['address']}:{s['port']}", OK if s["ready"] else WARN,
                        (f"{s['address']}:{s['port']}" + (f" on node {s['node']}" if s["node"] else ""),),
                        f"pod:{s['pod']}" if s["pod"] else ""))
    return _result("tcp", query, hops, ingress=report)


def _result(kind: str, query: str, hops: list[Hop], **engines: Any) -> dict[str, Any]:
    status = overall(hops)
    last = next((h for h in reversed(hops) if h.status == status), hops[-1] if hops else None)
    summary = {OK: "reaches its destination", WARN: "reaches it, with warnings", ERROR: "does not get through",
               INFO: ""}[status]
    if status == ERROR and last is not None:
        summary += f": {last.title}" + (f": {last.why[0]}" if last.why else "")
    given = engines.pop("commands", {})
    return {"kind": kind, "query": query, "status": status, "summary": summary,
            "hops": [h.json() for h in hops], **engines, "commands": {**_commands(kind, query, engines), **given}}


def _commands(kind: str, query: str, engines: Mapping[str, Any]) -> dict[str, str]:
    """The explain command line that gives each engine's answer."""
    out: dict[str, str] = {}
    if "ingress" in engines:
        out["ingress"] = "pyk3s ingress explain --json " + query
    if "dns" in engines:
        name = query.split()[0] if kind == "dns" else (urlsplit(query if "://" in query else "http://" + query).hostname or "")
        qtype = query.split()[1].upper() if kind == "dns" and len(query.split()) > 1 else "A"
        out["dns"] = f"pyk3s dns explain {name} {qtype}"
    return out


def _headers(raw: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for h in raw:
        k, _, v = h.partition(":")
        if k.strip():
            out.append((k.strip(), v.strip()))
    return out


async def trace(state: MapState, query: str, headers: Sequence[str] = (), method: str = "GET") -> dict[str, Any]:
    """Trace one query; ``kind`` says how it was read."""
    q = query.strip()
    if not q:
        return _result("none", q, [Hop("client", "nothing to trace", ERROR, (
            "enter a URL (http://host/path), a DNS name (name.namespace.svc.cluster.local [TYPE]) or "
            "`ns/pod -> ns/pod:port[/PROTO]`",))])
    kind = classify(q)
    if kind == "url" and q.startswith(("tcp://", "udp://")):
        return await _tcp_trace(state, q)
    if kind == "url":
        return await _url_trace(state, q, _headers(headers), method.upper() or "GET")
    if kind == "dns":
        words = q.split()
        qtype = words[1].upper() if len(words) > 1 else "A"
        hops, engine = await dns_trace(state, words[0], qtype)
        return _result("dns", q, hops, dns=engine)
    from .trace_pods import pod_trace

    hops, engine = pod_trace(state, q)
    return _result("pods", q, hops, **engine)

