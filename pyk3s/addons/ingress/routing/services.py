"""Compiled services: load balancing over servers and services (spec 3.5-3.8, 6.3-6.5).

- :class:`Balancer` (loadBalancer): round robin over non-fenced servers, sticky cookie optional.
- :class:`WeightedBalancer` (weighted TraefikService): smooth weighted round robin over child services
  (earliest deadline first: each pick advances the child by 1/weight), sticky cookie optional.
- :class:`MirrorService` (mirroring): the main service answers; each mirror gets a copy of ``percent``
  of the requests, its response discarded.
- :class:`HrwBalancer` (highestRandomWeight TraefikService): the child with the highest score
  ``weight / -ln(fnv64a(client IP + child name) / 2**64)`` (Traefik hrw.go), so a client keeps its child.
- :class:`FailoverService` (failover TraefikService): the main service answers while it is up; with no
  health check (pyk3s has none) it is always up, as in Traefik.
- :class:`InternalService`: ``api@internal``, ``dashboard@internal``, ``ping@internal``,
  ``prometheus@internal``, ``noop@internal`` (answered inside the proxy).

``pick(req)`` returns ``(Target | None, set_cookie | None)``; ``None`` target means 503 no available server.
"""

from __future__ import annotations

import hashlib
import math
import ssl
from collections.abc import Sequence
from urllib.parse import urlsplit

from ..config.dynamic import LoadBalancer, StickyCookie
from ..http.request import HttpRequest
from .transports import ServersTransportRuntime

__all__ = [
    "Target", "Balancer", "WeightedBalancer", "MirrorService", "InternalService", "INTERNAL_SERVICES",
    "HrwBalancer", "FailoverService", "cookie_name", "CompiledService",
]

INTERNAL_SERVICES = ("api@internal", "dashboard@internal", "ping@internal", "prometheus@internal", "noop@internal",
                     "rest@internal")


class Target:
    """One backend server: where to connect and how to address it."""

    __slots__ = ("url", "scheme", "host", "port", "authority", "pass_host_header", "key", "fenced", "cookie_value",
                 "transport", "addr")

    def __init__(self, url: str, pass_host_header: bool = True, fenced: bool = False,
                 transport: ServersTransportRuntime | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme or "http"
        self.host = parts.hostname or ""
        default = 443 if self.scheme == "https" else 80
        self.port = parts.port or default
        self.authority = parts.netloc
        self.pass_host_header = pass_host_header
        # pools are per server and transport: a reload that keeps both keeps the idle connections
        self.key = (self.scheme, self.host, self.port, transport.ident if transport is not None else 0)
        self.transport = transport
        self.addr = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        self.fenced = fenced
        self.cookie_value = hashlib.sha256(url.encode()).hexdigest()[:16]


    def tls(self) -> tuple[ssl.SSLContext | None, str | None]:
        """(TLS context, server name) to reach this server: its ServersTransport's, verified by default."""
        if self.scheme != "https":
            return None, None
        transport = self.transport
        if transport is None:
            return ssl.create_default_context(), self.host
        return transport.ssl_context, transport.server_name or self.host


def cookie_name(sticky: StickyCookie, service: str) -> str:
    if sticky.name:
        return sticky.name
    return "_" + hashlib.sha1(("_TRAEFIK_BACKEND_" + service).encode()).hexdigest()[:5]


def _cookie_header(sticky: StickyCookie, name: str, value: str) -> str:
    parts = [f"{name}={value}", f"Path={sticky.path or '/'}"]
    if sticky.domain:
        parts.append(f"Domain={sticky.domain}")
    if sticky.max_age:
        parts.append(f"Max-Age={sticky.max_age}")
    if sticky.http_only:
        parts.append("HttpOnly")
    if sticky.secure:
        parts.append("Secure")
    if sticky.same_site:
        parts.append("SameSite=" + {"none": "None", "lax": "Lax", "strict": "Strict"}.get(sticky.same_site.lower(), sticky.same_site))
    return "; ".join(parts)


def _request_cookie(req: HttpRequest, name: str) -> str | None:
    for raw in req.header_values("cookie"):
        for part in raw.split(";"):
            k, sep, v = part.strip().partition("=")
            if sep and k == name:
                return v
    return None


class Balancer:
    __slots__ = ("name", "targets", "active", "index", "sticky", "cookie", "by_cookie", "internal", "mirrors")

    def __init__(self, name: str, lb: LoadBalancer, transport: ServersTransportRuntime | None = None) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.targets = tuple(Target(s.url, lb.pass_host_header, s.fenced, transport) for s in lb.servers)
        self.active = tuple(t for t in self.targets if not t.fenced)
        self.index = 0
        self.sticky = lb.sticky
        self.cookie = cookie_name(lb.sticky, name) if lb.sticky else ""
        self.by_cookie = {t.cookie_value: t for t in self.targets} | {t.url: t for t in self.targets}

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        """The next server by round robin, or the one the sticky cookie names (``req`` None: no cookie)."""
        active = self.active
        if self.sticky is not None and req is not None:
            value = _request_cookie(req, self.cookie)
            if value is not None and (t := self.by_cookie.get(value)) is not None and not t.fenced:
                return t, None
        if not active:
            return None, None
        i = self.index
        self.index = i + 1 if i + 1 < len(active) else 0
        t = active[i % len(active)]
        if self.sticky is not None:
            return t, _cookie_header(self.sticky, self.cookie, t.cookie_value)
        return t, None


class WeightedBalancer:
    __slots__ = ("name", "children", "deadlines", "sticky", "cookie", "internal", "mirrors")

    def __init__(self, name: str, children: Sequence[tuple[str, CompiledService, int]],
                 sticky: StickyCookie | None) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.children = [(n, svc, max(w, 0)) for n, svc, w in children if w > 0]
        self.deadlines = [1.0 / w for _, _, w in self.children]
        self.sticky = sticky
        self.cookie = cookie_name(sticky, name) if sticky else ""

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        if not self.children:
            return None, None
        if self.sticky is not None and req is not None:
            value = _request_cookie(req, self.cookie)
            for n, svc, _ in self.children:
                if value == hashlib.sha256(n.encode()).hexdigest()[:16]:
                    target, cookie = svc.pick(req)
                    if target is not None:
                        return target, cookie
        dl = self.deadlines
        i = min(range(len(dl)), key=dl.__getitem__)
        n, svc, w = self.children[i]
        dl[i] += 1.0 / w
        target, cookie = svc.pick(req)
        if self.sticky is not None and target is not None:
            mine = _cookie_header(self.sticky, self.cookie, hashlib.sha256(n.encode()).hexdigest()[:16])
            cookie = mine if cookie is None else cookie  # one Set-Cookie per hop is enough for affinity
        return target, cookie


class MirrorService:
    __slots__ = ("name", "main", "mirrors", "mirror_body", "max_body_size", "counters", "internal")

    def __init__(self, name: str, main: CompiledService, mirrors: Sequence[tuple[CompiledService, int]],
                 mirror_body: bool, max_body_size: int) -> None:
        self.name = name
        self.internal = ""
        self.main = main
        self.mirrors: Mirrors = tuple(mirrors)
        self.mirror_body = mirror_body
        self.max_body_size = max_body_size
        self.counters = [0] * len(self.mirrors)

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return self.main.pick(req)

    def mirror_targets(self, req: HttpRequest) -> list[Target]:
        """Mirrors chosen for this request: each gets ``percent`` of requests, spread evenly."""
        out = []
        for i, (svc, percent) in enumerate(self.mirrors):
            self.counters[i] = (self.counters[i] + 1) % 100
            if self.counters[i] < percent or percent >= 100:
                t, _ = svc.pick(req)
                if t is not None:
                    out.append(t)
        return out


def _fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class HrwBalancer:
    __slots__ = ("name", "children", "internal", "mirrors")

    def __init__(self, name: str, children: Sequence[tuple[str, CompiledService, int]]) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.children = [(n, svc, float(w)) for n, svc, w in children if w > 0]

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        src = req.peer if req is not None else ""
        best: CompiledService | None = None
        best_score = -1.0
        for n, svc, weight in self.children:
            score = _fnv1a64((src + n).encode()) / 2.0**64
            value = (1.0 / -math.log(score) if 0.0 < score < 1.0 else 0.0) * weight
            if value > best_score:
                best, best_score = svc, value
        return best.pick(req) if best is not None else (None, None)


class FailoverService:
    __slots__ = ("name", "main", "fallback", "internal", "mirrors")

    def __init__(self, name: str, main: CompiledService, fallback: CompiledService) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.main = main
        self.fallback = fallback

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return self.main.pick(req)


class InternalService:
    __slots__ = ("name", "internal", "mirrors")

    def __init__(self, name: str) -> None:
        self.name = name
        self.internal = name.split("@", 1)[0]
        self.mirrors: Mirrors = ()

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return None, None


CompiledService = (Balancer | WeightedBalancer | MirrorService | InternalService | HrwBalancer
                   | FailoverService)
Mirrors = tuple[tuple[CompiledService, int], ...]  # (service, percent); only mirroring services have any
