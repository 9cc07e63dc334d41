"""``pyk3s ingress explain <url> [-H 'Name: value']...``: which router takes a request and why
(``tcp://HOST:PORT [--sni NAME] [--alpn P] [--peer IP]`` and ``udp://HOST:PORT``: see ``explain_tcp.py``).

For the entrypoint and transport of the URL (``https`` -> TLS routers), every router is listed in
priority order with each matcher's outcome until the first match; the winner's middlewares and
service (with its servers) follow, and the middlewares of child services below it, which run when a
request goes to that child. Disabled routers are listed with their errors. The same report is
served by the API at ``/api/explain?url=...&header=Name:%20value`` and shown on the dashboard
(``pyk3s traefik`` hands :func:`explain_api` to the runner). The command lists the objects once through
the runner and builds the configuration from the providers, as the running proxy does, with the static
configuration of the cluster's Traefik Deployment (``deployed.py``; ``--flag`` overrides it) and the
entry point behind the published Service's port when the URL's port is not an entry point's own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any
from urllib.parse import urlsplit

from .deployed import Deployed, load
from .explain_tcp import explain_tcp, tcp_text
from .http.request import HttpRequest
from .providers import build_config
from .routing.compile import Compiled, compile_config
from .routing.services import Balancer, CompiledService, children_of
from .runner import list_objects

__all__ = ["explain", "explain_api", "main"]


def explain(c: Compiled, url: str, headers: list[tuple[str, str]], entrypoint: str = "", method: str = "GET",
            peer: str = "127.0.0.1") -> dict[str, Any]:
    parts = urlsplit(url if "://" in url else "http://" + url)
    tls = parts.scheme == "https"
    if not entrypoint:
        port = parts.port or (443 if tls else 80)
        entrypoint = next((n for n, ep in c.static.entrypoints.items() if ep.port == port), "") or next(
            (n for n, ep in c.static.entrypoints.items() if ep.tls == tls and n != "traefik"), "")
    hdrs = list(headers)
    if not any(k.lower() == "host" for k, _ in hdrs):
        hdrs.append(("Host", parts.netloc))
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    req = HttpRequest(method, target, hdrs, peer, tls, "1.1", entrypoint)
    out: dict[str, Any] = {"entrypoint": entrypoint, "tls": tls, "host": req.host, "path": req.path,
                           "checked": [], "match": None}
    table = c.table.tables.get((entrypoint, tls))
    for route in table.routes if table is not None else ():
        leaves = [{"matcher": text, "result": ok} for text, ok in route.rule.explain(req)]
        matched = route.rule.match(req)
        out["checked"].append({"router": route.name, "priority": route.priority, "rule": route.rule.rule,
                               "matched": matched, "matchers": leaves})
        if matched:
            # child routers (parentRefs): matched here on the request as sent; the parent's middlewares
            # may change it before the proxy matches them
            while route.children:
                out.setdefault("children", []).extend(
                    {"router": k.name, "rule": k.rule.rule, "matched": k.rule.match(req)} for k in route.children)
                child = next((k for k in route.children if k.rule.match(req)), None)
                if child is None:
                    break
                route = child
            svc = route.service
            info: dict[str, Any] = {"router": route.name, "middlewares": list(route.middleware_names),
                                    "service": svc.name}
            if isinstance(svc, Balancer):
                info["servers"] = [t.url for t in svc.active]
            if svc.layered:
                info["childMiddlewares"] = _child_middlewares(svc)
            out["match"] = info
            break
    out["disabled"] = [{"router": n, "error": r.get("error", [])} for n, r in c.runtime.routers.items()
                       if r.get("status") == "disabled"]
    if out["match"] is None:
        out["result"] = "404 page not found"
    return out


def _child_middlewares(svc: CompiledService) -> dict[str, list[str]]:
    """The services below ``svc`` that have middlewares of their own, with them."""
    out: dict[str, list[str]] = {}
    todo = list(children_of(svc))
    while todo:
        child = todo.pop(0)
        if child.name in out:
            continue
        if child.middleware_names:
            out[child.name] = list(child.middleware_names)
        todo += children_of(child)
    return out


def explain_api(c: Compiled, req: HttpRequest) -> dict[str, Any]:
    q = req.query_map()
    url = (q.get("url") or ["/"])[0]
    if url.startswith(("tcp://", "udp://")):
        alpn = tuple(p for a in q.get("alpn", []) for p in a.split(",") if p)
        return explain_tcp(c, url, (q.get("sni") or [""])[0], alpn, (q.get("tls") or [""])[0] in ("1", "true"),
                           (q.get("peer") or ["127.0.0.1"])[0], (q.get("entrypoint") or [""])[0])
    headers = []
    for h in q.get("header", []):
        k, _, v = h.partition(":")
        headers.append((k.strip(), v.strip()))
    return explain(c, (q.get("url") or ["/"])[0], headers, (q.get("entrypoint") or [""])[0],
                   (q.get("method") or ["GET"])[0])


def _text(report: dict[str, Any]) -> str:
    lines = [f"entrypoint {report['entrypoint'] or '?'} ({'https' if report['tls'] else 'http'}), "
             f"host {report['host']!r}, path {report['path']!r}"]
    for item in report["checked"]:
        mark = "MATCH" if item["matched"] else "no   "
        lines.append(f"  {mark} {item['router']} (priority {item['priority']}): {item['rule']}")
        if not item["matched"]:
            for leaf in item["matchers"]:
                lines.append(f"          {leaf['matcher']} -> {str(leaf['result']).lower()}")
    m = report["match"]
    if m is None:
        lines.append("result: 404 page not found (no router matched)")
    else:
        lines.append(f"router:      {m['router']}")
        lines.append(f"middlewares: {', '.join(m['middlewares']) or '(none)'}")
        lines.append(f"service:     {m['service']}" + (f" -> {', '.join(m['servers']) or 'no available server (503)'}"
                                                     if "servers" in m else ""))
        for name, mws in m.get("childMiddlewares", {}).items():
            lines.append(f"  child {name}: middlewares {', '.join(mws)}")
    for d in report["disabled"]:
        lines.append(f"disabled:    {d['router']}: {'; '.join(d['error'])}")
    return "\n".join(lines)


async def _load(args: argparse.Namespace) -> tuple[Compiled, Deployed]:
    from pyk3s.client import Client

    async with Client.from_env(args.kubeconfig) as client:
        dep = await load(client, args.flag)
        objs = await list_objects(client, dep.static)
    return compile_config(build_config(dep.static, objs), dep.static), dep


def main(argv: list[str]) -> int:
    if argv and argv[0] == "explain":  # reached as `pyk3s ingress explain ...`
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="pyk3s ingress explain", description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("-H", "--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("-X", "--method", default="GET")
    ap.add_argument("--kubeconfig", default=None)
    ap.add_argument("--entrypoint", default="")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sni", default="", help="tcp://: the server name of the ClientHello")
    ap.add_argument("--alpn", action="append", default=[], help="tcp://: an ALPN protocol offered (repeatable)")
    ap.add_argument("--tls", action="store_true", help="tcp://: the connection opens with a ClientHello")
    ap.add_argument("--peer", default="127.0.0.1", help="the client address (ClientIP rules)")
    ap.add_argument("--flag", action="append",
                    help="Traefik static flag (repeatable); default: the arguments of the cluster's Traefik Deployment")
    args = ap.parse_args(argv)
    headers = [(h.split(":", 1)[0].strip(), h.split(":", 1)[1].strip() if ":" in h else "") for h in args.header]
    try:
        compiled, dep = asyncio.run(_load(args))
    except Exception as err:  # noqa: BLE001 - reported to the user
        print(f"ingress explain: {err}", file=sys.stderr)
        return 1
    if dep.problem:
        print(f"ingress explain: {dep.problem}", file=sys.stderr)
    entrypoint = args.entrypoint or dep.entrypoint_for(args.url)
    if args.url.startswith(("tcp://", "udp://")):
        alpn = tuple(p for a in args.alpn for p in a.split(",") if p)
        report = explain_tcp(compiled, args.url, args.sni, alpn, args.tls, args.peer, entrypoint)
        print(json.dumps(report, indent=2) if args.json else tcp_text(report))
        return 0 if report["match"] else 2
    report = explain(compiled, args.url, headers, entrypoint, args.method.upper(), args.peer)
    print(json.dumps(report, indent=2) if args.json else _text(report))
    return 0 if report["match"] else 2
