"""``pyk3s ingress explain tcp://HOST:PORT [--sni NAME] [--alpn P]... [--peer IP]``: which TCP router takes a
connection on the entry point of PORT and why (``udp://HOST:PORT`` names the UDP router of the entry point).

The report follows the entry point's decision (``routing/tcp_table.py``): whether the connection is
matched before it sends anything, whether it opens with a ClientHello (given ``--sni``/``--alpn`` or
``--tls``), every TCP router tried in order with each matcher's outcome, the HTTPS routers' server names
that come first, and the result: the router, its TLS mode, service and servers, or the HTTP/HTTPS
handlers. Disabled TCP routers are listed with their errors. The API serves the same report at
``/api/explain?url=tcp://...&sni=...&alpn=...`` (``explain.py`` dispatches here).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .routing.compile import Compiled
from .routing.tcp_services import TCPBalancer, TCPServiceHandler, UDPBalancer, UDPServiceHandler
from .routing.tcp_table import TCPEntryTable, TCPRoute
from .rules.tcp import ConnInfo, conn_info

__all__ = ["explain_tcp", "tcp_text"]


def _servers(svc: TCPServiceHandler | UDPServiceHandler | None) -> list[str]:
    if isinstance(svc, TCPBalancer):
        return [t.address for t in svc.targets]
    if isinstance(svc, UDPBalancer):
        return [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in svc.targets]
    if svc is None:
        return []
    return [s for child, _ in svc.children for s in _servers(child)]


def _tried(table: tuple[TCPRoute, ...], info: ConnInfo) -> tuple[list[dict[str, Any]], TCPRoute | None]:
    checked, first = [], None
    for route in table:
        matched = route.rule.match(info)
        checked.append({"router": route.name, "priority": route.priority, "rule": route.rule.rule,
                        "tls": route.tls or "none", "matched": matched, "catchAll": route.rule.catch_all,
                        "matchers": [{"matcher": t, "result": ok} for t, ok in route.rule.explain(info)]})
        if matched and first is None:
            first = route
    return checked, first


def _decide(table: TCPEntryTable, info: ConnInfo, tls: bool, out: dict[str, Any]) -> TCPRoute | str:
    steps: list[str] = out["steps"]
    if table.early and not tls:
        steps.append("only non-TLS TCP routers on this entry point: the connection is matched as soon as it is "
                     "accepted, before the client sends anything")
    if not tls:
        out["checked"], route = _tried(table.plain, ConnInfo("", info.peer, ()))
        if route is not None:
            return route
        steps.append("no non-TLS TCP router matches: the HTTP routers take the connection")
        return "http"
    out["checked"], route = _tried(table.tls, info)
    if table.https.specific(info.server_name):
        steps.append(f"an HTTPS router names the server {info.server_name!r}: it comes before TCP routers")
        return "https"
    if route is not None and not route.rule.catch_all:
        return route
    if table.https.catch_all:
        steps.append("an HTTPS router without a Host rule comes before a TCP catch-all (HostSNI(`*`))")
        return "https"
    if route is not None:
        return route
    steps.append("no TLS TCP router matches: the HTTPS routers take the connection (404 for unknown hosts)")
    return "https"


def explain_tcp(c: Compiled, url: str, sni: str = "", alpn: tuple[str, ...] = (), tls: bool = False,
                peer: str = "127.0.0.1", entrypoint: str = "") -> dict[str, Any]:
    parts = urlsplit(url)
    udp = parts.scheme == "udp"
    tls = tls or bool(sni) or bool(alpn)
    port = parts.port or 0
    protocol = "udp" if udp else "tcp"
    if not entrypoint:
        entrypoint = next((n for n, ep in c.static.entrypoints.items() if ep.port == port and ep.protocol == protocol), "")
    out: dict[str, Any] = {"entrypoint": entrypoint, "protocol": protocol, "tls": tls, "sni": sni, "alpn": list(alpn),
                           "peer": peer, "steps": [], "checked": [], "match": None}
    if not entrypoint:
        out["result"] = f"no {protocol.upper()} entry point listens on port {port}"
        return out
    if udp:
        entry = c.tcp.udp.get(entrypoint)
        if entry is not None:
            out["match"] = {"router": entry.router, "service": entry.service.name, "servers": _servers(entry.service)}
        else:
            out["result"] = "no UDP router serves this entry point: datagrams are dropped"
    else:
        table = c.tcp.tables.get(entrypoint)
        if table is None:
            out["result"] = "no TCP router on this entry point: " + ("the HTTPS routers" if tls else "the HTTP routers") + \
                            " take the connection"
        else:
            verdict = _decide(table, conn_info(sni, peer, alpn), tls, out)
            if isinstance(verdict, TCPRoute):
                mode = {"": "plain TCP", "passthrough": "TLS passthrough (the server terminates TLS)",
                        "terminate": f"TLS terminated here with the TLS options {verdict.tls_options}"}[verdict.tls]
                out["match"] = {"router": verdict.name, "tls": mode,
                                "middlewares": [m.name for m in verdict.middlewares],
                                "service": verdict.service.name if verdict.service is not None else "",
                                "servers": _servers(verdict.service)}
                if verdict.service is None:
                    out["result"] = "the router's TLS options cannot be set up: the connection is closed"
            else:
                out["result"] = {"http": "the HTTP routers", "https": "the HTTPS routers"}.get(verdict, verdict)
    routers = c.tcp.udp_routers if udp else c.tcp.routers
    out["disabled"] = [{"router": n, "error": r.get("error", [])} for n, r in routers.items()
                       if r.get("status") == "disabled"]
    return out


def tcp_text(report: dict[str, Any]) -> str:
    hello = f", ClientHello SNI {report['sni']!r} ALPN {report['alpn']}" if report["tls"] else ", no TLS"
    lines = [f"entrypoint {report['entrypoint'] or '?'} ({report['protocol']}), client {report['peer']}"
             + (hello if report["protocol"] == "tcp" else "")]
    lines += [f"  {s}" for s in report["steps"]]
    for item in report["checked"]:
        mark = "MATCH" if item["matched"] else "no   "
        lines.append(f"  {mark} {item['router']} (priority {item['priority']}, tls {item['tls']}): {item['rule']}")
        if not item["matched"]:
            lines += [f"          {leaf['matcher']} -> {str(leaf['result']).lower()}" for leaf in item["matchers"]]
    m = report["match"]
    if m is not None:
        lines.append(f"router:      {m['router']}")
        if "tls" in m:
            lines.append(f"tls:         {m['tls']}")
        if m.get("middlewares"):
            lines.append(f"middlewares: {', '.join(m['middlewares'])}")
        lines.append(f"service:     {m['service']} -> {', '.join(m['servers']) or 'no server: the connection is closed'}")
    if report.get("result"):
        lines.append(f"result:      {report['result']}")
    for d in report["disabled"]:
        lines.append(f"disabled:    {d['router']}: {'; '.join(d['error'])}")
    return "\n".join(lines)
