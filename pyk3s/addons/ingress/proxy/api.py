"""api@internal: Traefik's JSON API and the dashboard page (spec §7).

    GET /api/overview  /api/rawdata (Traefik's shape: tables by qualified name, empty ones left out)
        /api/entrypoints[/{name}]  /api/version
        /api/http/routers|services|middlewares[/{name}]  (search, status, page, per_page, sortBy, direction)
        /api/tcp/routers|services|middlewares[/{name}]  /api/udp/routers|services[/{name}]
        /api/explain?url=...&header=K:V, ?url=tcp://host:port&sni=..&alpn=..  (pyk3s: which router, why)
    GET /dashboard/ (and its static files); GET / -> 302 /dashboard/

Lists are sorted by name, paginated (``X-Next-Page``, 1 when there is none; a page past the end is 400);
an unknown name is 404 ``{"message":"router not found: <name>"}``.
"""

from __future__ import annotations

import json
import mimetypes
import time
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import unquote

from ..config.static import EntryPoint
from ..http.reply import Reply
from ..http.request import HttpRequest
from ..routing.compile import Compiled, runtime_counts
from ..routing.tcp_compile import format_duration

__all__ = ["ApiHandler", "Explain", "VERSION", "CODENAME", "rawdata", "RAWDATA_TABLES"]

VERSION = "3.5.1"
CODENAME = "chabichou"
_CSP = "frame-src 'self' https://traefik.io https://*.traefik.io;"
_JSON = [("Content-Type", "application/json")]

Explain = Callable[[Compiled, HttpRequest], dict[str, Any]]
"""Answers ``/api/explain`` from the compiled configuration and the API request (``explain.explain_api``)."""


def _json(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, list(_JSON) + (headers or []), json.dumps(body).encode())


def _dashboard_file(name: str) -> bytes | None:
    try:
        return (resources.files("pyk3s.addons.ingress") / "dashboard" / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, OSError):
        return None


# /api/rawdata: Traefik's RunTimeRepresentation key -> the runtime table that holds it
RAWDATA_TABLES: tuple[tuple[str, Callable[[Compiled], dict[str, dict[str, Any]]]], ...] = (
    ("routers", lambda c: c.runtime.routers), ("middlewares", lambda c: c.runtime.middlewares),
    ("services", lambda c: c.runtime.services), ("tcpRouters", lambda c: c.tcp.routers),
    ("tcpMiddlewares", lambda c: c.tcp.middlewares), ("tcpServices", lambda c: c.tcp.services),
    ("udpRouters", lambda c: c.tcp.udp_routers), ("udpServices", lambda c: c.tcp.udp_services))
# what the list endpoints add to an item (handler_http.go's representations), not part of rawdata
_LISTING_ONLY = frozenset(("name", "provider", "type", "priorityStr"))


def rawdata(c: Compiled) -> dict[str, Any]:
    """Traefik's /api/rawdata: each runtime table keyed by qualified name, empty tables left out."""
    out: dict[str, Any] = {}
    for key, table_of in RAWDATA_TABLES:
        table = table_of(c)
        if table:
            out[key] = {name: {k: v for k, v in item.items() if k not in _LISTING_ONLY} for name, item in table.items()}
    return out


class ApiHandler:
    """Answers api@internal requests from the current compiled configuration."""

    def __init__(self, get_compiled: Callable[[], Compiled], explain: Explain | None = None,
                 started: float | None = None) -> None:
        self.get_compiled = get_compiled
        self.explain = explain
        self.start_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started or time.time()))

    def handle(self, req: HttpRequest) -> Reply:
        if req.method not in ("GET", "HEAD"):
            return Reply(405, [("Content-Type", "text/plain; charset=utf-8")], b"405 method not allowed\n")
        path = req.path
        compiled: Compiled = self.get_compiled()
        if path.startswith("/api"):
            return self.api(path[4:], req, compiled)
        if path in ("", "/"):
            prefix = req.header("x-forwarded-prefix")
            return Reply(302, [("Location", prefix + "/dashboard/")], b"")
        if path.startswith("/dashboard/"):
            return self.dashboard(path[len("/dashboard/"):])
        return Reply(404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n")

    def dashboard(self, rest: str) -> Reply:
        name = rest or "index.html"
        if "/" in name or name.startswith("."):
            return Reply(404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n")
        data = _dashboard_file(name)
        if data is None:
            return Reply(404, [("Content-Type", "text/plain; charset=utf-8")], b"404 page not found\n")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype == "application/javascript":
            ctype += "; charset=utf-8"
        return Reply(200, [("Content-Type", ctype), ("Content-Security-Policy", _CSP)], data)

    def api(self, path: str, req: HttpRequest, c: Compiled) -> Reply:
        parts = [unquote(p) for p in path.strip("/").split("/", 2)] if path.strip("/") else []
        if not parts:
            return _json(404, {"message": "not found"})
        head = parts[0]
        if head == "overview" and len(parts) == 1:
            return _json(200, self.overview(c))
        if head == "rawdata" and len(parts) == 1:
            return _json(200, rawdata(c))
        if head == "version" and len(parts) == 1:
            return _json(200, {"Version": VERSION, "Codename": CODENAME, "startDate": self.start_date,
                               "disableDashboardAd": True})
        if head == "entrypoints":
            eps = [self.entrypoint(ep) for ep in c.static.entrypoints.values()]
            if len(parts) == 1:
                return self.listing(sorted(eps, key=lambda e: e["name"]), req)
            found = next((e for e in eps if e["name"] == parts[1]), None)
            return _json(200, found) if found else _json(404, {"message": f"entry point not found: {parts[1]}"})
        if head == "explain" and self.explain is not None:
            return _json(200, self.explain(c, req))
        if head in ("http", "tcp", "udp") and len(parts) >= 2:
            kind = parts[1]
            table = self.tables(c, head).get(kind)
            if table is None:
                return _json(404, {"message": "not found"})
            if len(parts) == 2:
                return self.listing(self.filtered(list(table.values()), req), req)
            item = table.get(parts[2])
            if item is None:
                return _json(404, {"message": f"{kind[:-1]} not found: {parts[2]}"})
            return _json(200, item)
        return _json(404, {"message": "not found"})

    @staticmethod
    def tables(c: Compiled, protocol: str) -> dict[str, dict[str, dict[str, Any]]]:
        """The API's runtime views of one protocol: routers, services (and middlewares)."""
        rt, tcp = c.runtime, c.tcp
        if protocol == "tcp":
            return {"routers": tcp.routers, "services": tcp.services, "middlewares": tcp.middlewares}
        if protocol == "udp":
            return {"routers": tcp.udp_routers, "services": tcp.udp_services}
        return {"routers": rt.routers, "services": rt.services, "middlewares": rt.middlewares}

    @staticmethod
    def entrypoint(ep: EntryPoint) -> dict[str, Any]:
        timeouts: dict[str, Any] = {"readTimeout": format_duration(ep.read_timeout),
                                    "idleTimeout": format_duration(ep.idle_timeout)}
        if ep.write_timeout:
            timeouts["writeTimeout"] = format_duration(ep.write_timeout)
        out: dict[str, Any] = {"address": ep.address, "transport": {
            "lifeCycle": {"graceTimeOut": "10s"}, "respondingTimeouts": timeouts},
            "forwardedHeaders": {"insecure": ep.forwarded_insecure} if ep.forwarded_insecure else {},
            "http": {}, "name": ep.name}
        if ep.proxy_protocol:
            out["proxyProtocol"] = ({"insecure": True} if ep.proxy_protocol_insecure
                                    else {"trustedIPs": list(ep.proxy_protocol_trusted_ips)})
        if ep.protocol == "udp":
            out["udp"] = {"timeout": format_duration(ep.udp_timeout)}
        if ep.forwarded_insecure is False and ep.trusted_ips:
            out["forwardedHeaders"] = {"trustedIPs": list(ep.trusted_ips)}
        if ep.redirect_to:
            out["http"]["redirections"] = {"entryPoint": {"to": ep.redirect_to, "scheme": ep.redirect_scheme,
                                                          "permanent": ep.redirect_permanent,
                                                          "priority": ep.redirect_priority}}
        if ep.tls:
            out["http"]["tls"] = {"options": ep.tls_options} if ep.tls_options else {}
        return out

    @staticmethod
    def filtered(items: list[dict[str, Any]], req: HttpRequest) -> list[dict[str, Any]]:
        q = req.query_map()
        search = (q.get("search") or [""])[0]
        status = (q.get("status") or [""])[0]
        svc = (q.get("serviceName") or [""])[0]
        mwn = (q.get("middlewareName") or [""])[0]
        out = []
        for it in items:
            if search and search not in it.get("name", "") and search not in it.get("rule", ""):
                continue
            if status and it.get("status") != status:
                continue
            if svc and it.get("service") != svc and it.get("service", "") + "@" + it.get("provider", "") != svc:
                continue
            if mwn and mwn not in (it.get("middlewares") or ()):
                continue
            out.append(it)
        sort_by = (q.get("sortBy") or ["name"])[0]
        desc = (q.get("direction") or ["asc"])[0] == "desc"
        key = sort_by if sort_by in ("name", "provider", "priority", "status", "rule", "service", "type") else "name"
        out.sort(key=lambda it: (str(it.get(key, "")) if key != "priority" else int(it.get(key) or 0), it.get("name", "")),
                 reverse=desc)
        return out

    @staticmethod
    def listing(items: list[dict[str, Any]], req: HttpRequest) -> Reply:
        q = req.query_map()
        try:
            page = int((q.get("page") or ["1"])[0])
            per_page = int((q.get("per_page") or ["100"])[0])
        except ValueError:
            return _json(400, {"message": "invalid request: pagination"})
        start = (page - 1) * per_page
        if page < 1 or per_page < 1 or (start >= len(items) and not (page == 1 and not items)):
            return _json(400, {"message": f"invalid request: page: {page}, per_page: {per_page}"})
        end = start + per_page
        nxt = str(page + 1) if end < len(items) else "1"
        return _json(200, items[start:end], [("X-Next-Page", nxt)])

    @staticmethod
    def overview(c: Compiled) -> dict[str, Any]:
        rt = c.runtime
        providers = []
        if c.static.crd is not None:
            providers.append("KubernetesCRD")
        if c.static.ingress is not None:
            providers.append("KubernetesIngress")
        if c.static.gateway is not None:
            providers.append("KubernetesGateway")
        return {
            "http": {"routers": runtime_counts(rt.routers), "services": runtime_counts(rt.services),
                     "middlewares": runtime_counts(rt.middlewares)},
            "tcp": {"routers": runtime_counts(c.tcp.routers), "services": runtime_counts(c.tcp.services),
                    "middlewares": runtime_counts(c.tcp.middlewares)},
            "udp": {"routers": runtime_counts(c.tcp.udp_routers), "services": runtime_counts(c.tcp.udp_services)},
            "features": {"tracing": "", "metrics": "Prometheus" if c.static.prometheus else "",
                         "accessLog": c.static.access_log is not None},
            "providers": providers,
        }
