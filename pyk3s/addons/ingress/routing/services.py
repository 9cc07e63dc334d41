"""Compiled services: load balancing over servers and services (spec 3.5-3.8, 6.3-6.6).

- :class:`Balancer` (loadBalancer): smooth weighted round robin over the servers that are up and not
  fenced (earliest deadline first: each pick advances the server by 1/weight, as Traefik's wrr),
  power of two choices (``strategy: p2c``: of two random servers, the one with fewer requests in
  flight), highest random weight (``strategy: hrw``: the client IP's highest-scoring server, below) or
  least time (``strategy: leasttime``: response time and requests in flight, routing/leasttime.py);
  sticky cookie optional. A health check (routing/health.py) or passive health check
  (routing/passive.py) marks servers down and up with ``set_status``.
- :class:`WeightedBalancer` (weighted TraefikService): the same over child services, sticky cookie optional.
- :class:`MirrorService` (mirroring): the main service answers; each mirror gets a copy of ``percent``
  of the requests, its response discarded.
- :class:`HrwBalancer` (highestRandomWeight TraefikService): the child with the highest score
  ``weight / -ln(fnv64a(client IP + child name) / 2**64)`` (Traefik hrw.go), so a client keeps its child.
- :class:`FailoverService` (failover TraefikService): the main service answers while it is up, else the
  fallback while that is up, else 503. With ``errors.status``, a main answer of one of those statuses is
  dropped and the request (its body kept whole, up to ``errors.maxRequestBodyBytes``) goes to the
  fallback; the exchange learns of it from ``req.failover``, set when the main service is picked.
- :class:`InternalService`: ``api@internal``, ``dashboard@internal``, ``ping@internal``,
  ``prometheus@internal``, ``noop@internal`` (answered inside the proxy).

Health propagates as in Traefik: a service whose ``healthCheck`` section is set (``{}`` for the
parents) accepts status updaters (``register``); it calls them when it goes from some child up to none
(or back). A parent with ``healthCheck`` registers on each child and leaves the down ones out.

``pick(req)`` returns ``(Target | None, set_cookie | None)``; ``None`` target means 503 no available server.

Service middlewares (Traefik 3.x ``middlewares`` of a service): a top service's run with the router's
(compile.py adds them to the route). Each service also holds its own as ``middlewares``, for when it is
the child of another, and ``layered`` tells whether some service below it has any. ``pick`` ignores
them and walks the whole tree at once, which is all a request needs while ``layered`` is False; for a
layered service the exchange walks instead: ``step(req)`` picks one child (and this level's sticky
cookie) without going further, the exchange runs that child's middlewares, then steps or picks again
from the child (proxy/exchange.py ``walk``). Mirrors' copies are sent with ``pick`` (their middlewares
do not run: child_middlewares.py says so in a warning).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..config.dynamic import LoadBalancer, StickyCookie
from ..config.errors import ConfigError
from ..http.reply import Reply
from ..http.request import HttpRequest
from ..middlewares.base import MiddlewareHandler
from .leasttime import LeastTime
from .target import Target
from .transports import ServersTransportRuntime

if TYPE_CHECKING:
    from .passive import PassiveHealth

__all__ = [
    "Target", "Balancer", "WeightedBalancer", "StatusService", "MirrorService", "InternalService", "INTERNAL_SERVICES",
    "HrwBalancer", "FailoverService", "cookie_name", "CompiledService", "Updater", "buffers_body",
    "Step", "Parent", "children_of",
]

INTERNAL_SERVICES = ("api@internal", "dashboard@internal", "ping@internal", "prometheus@internal", "noop@internal",
                     "rest@internal")

Updater = Callable[[bool], None]
"""A parent's hook: called with the new status when a child service goes down (False) or up (True)."""


class _Updaters:
    """Traefik's StatusUpdater side: who to tell when this service's overall status changes."""

    __slots__ = ()
    kind = "WRR"
    wants_health: bool
    updaters: list[Updater]

    def register(self, fn: Updater) -> None:
        if not self.wants_health:
            raise ConfigError(f"healthCheck not enabled in config for this {self.kind} service")
        self.updaters.append(fn)

    def _changed(self, before: bool, after: bool) -> None:
        if before != after:
            for fn in self.updaters:
                fn(after)


class _ChildStatus(_Updaters):
    """A service of child services: it is up while one child is (the weighted and HRW balancers)."""

    __slots__ = ()
    children: Sequence[tuple[str, CompiledService, float]]
    down: set[str]

    def set_status(self, child: str, up: bool) -> None:
        if all(n != child for n, _, _ in self.children):
            return
        before = len(self.down) < len(self.children)
        if up:
            self.down.discard(child)
        else:
            self.down.add(child)
        self._changed(before, len(self.down) < len(self.children))


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


class Balancer(_Updaters):
    __slots__ = ("name", "targets", "rotation", "active", "index", "sticky", "cookie", "by_cookie", "internal",
                 "mirrors", "uniform", "deadlines", "p2c", "rng", "wants_health", "updaters", "server_status",
                 "passive", "kind", "strategy", "least_time", "middlewares", "middleware_names", "layered")

    def __init__(self, name: str, lb: LoadBalancer, transport: ServersTransportRuntime | None = None) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.targets = tuple(Target(s.url, lb.pass_host_header, s.fenced, transport, 1 if s.weight is None else s.weight)
                             for s in lb.servers)
        # a server of weight 0 (or less) never takes requests, as in Traefik
        self.rotation = tuple(t for t in self.targets if t.weight > 0)
        self.uniform = len({t.weight for t in self.rotation}) <= 1
        # earliest deadline first: (deadline, position); ties go to the earlier server
        self.deadlines = [(1.0 / t.weight, i) for i, t in enumerate(self.rotation)]
        self.strategy = lb.strategy if lb.strategy in ("p2c", "hrw", "leasttime") else "wrr"
        self.p2c = self.strategy == "p2c"
        self.kind = "LeastTime" if self.strategy == "leasttime" else self.strategy.upper()
        self.least_time = LeastTime(self.rotation) if self.strategy == "leasttime" else None
        self.rng = random.Random()
        self.index = 0
        self.active: tuple[Target, ...] = ()
        self._refresh()
        self.sticky = lb.sticky if self.strategy != "hrw" else None  # Traefik's hrw has no sticky sessions
        self.cookie = cookie_name(lb.sticky, name) if lb.sticky else ""
        self.by_cookie = {t.cookie_value: t for t in self.targets} | {t.url: t for t in self.targets}
        self.wants_health = lb.health_check is not None
        self.updaters: list[Updater] = []
        self.server_status = {t.url: "UP" for t in self.targets}  # the API's serverStatus, kept live
        self.passive: PassiveHealth | None = None
        self.middlewares: tuple[MiddlewareHandler, ...] = ()  # its own, run when it is a child (compile.py)
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False  # never: it has no child services

    def _refresh(self) -> None:
        self.active = tuple(t for t in self.rotation if t.up and not t.fenced)

    def set_status(self, target: Target, up: bool) -> None:
        """A health check's verdict on one server: in or out of rotation; parents hear when the service
        as a whole goes down or comes back."""
        self.server_status[target.url] = "UP" if up else "DOWN"
        if target.up == up:
            return
        before = any(t.up for t in self.rotation)
        target.up = up
        self._refresh()
        self._changed(before, any(t.up for t in self.rotation))

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        """The next server (by the strategy), or the one the sticky cookie names while it is up (``req``
        None: no cookie)."""
        active = self.active
        if self.sticky is not None and req is not None:
            value = _request_cookie(req, self.cookie)
            if value is not None and (t := self.by_cookie.get(value)) is not None and t.up and not t.fenced:
                return t, None
        if not active:
            return None, None
        if self.p2c:
            t = self._two_choices(active)
        elif self.least_time is not None:
            t = self.least_time.pick(active)
        elif self.strategy == "hrw":
            src = req.peer if req is not None else ""
            t = max(active, key=lambda t: _hrw_score(src + t.url, t.weight))  # the first of equal scores
        elif self.uniform:
            i = self.index
            self.index = i + 1 if i + 1 < len(active) else 0
            t = active[i % len(active)]
        else:
            t = self._earliest()
        if self.sticky is not None:
            return t, _cookie_header(self.sticky, self.cookie, t.cookie_value)
        return t, None

    def _earliest(self) -> Target:
        """Traefik wrr: take the server with the earliest deadline and push its deadline by 1/weight; a
        server that is down or fenced keeps its place in the schedule and is passed over (one is usable:
        ``active`` is not empty, and every server comes round)."""
        heap, rotation = self.deadlines, self.rotation
        while True:
            deadline, i = heap[0]
            t = rotation[i]
            heapq.heapreplace(heap, (deadline + 1.0 / t.weight, i))
            if t.up and not t.fenced:
                return t

    def _two_choices(self, active: tuple[Target, ...]) -> Target:
        """Traefik p2c: of two different random servers, the one with fewer requests in flight (the first
        on a tie)."""
        if len(active) == 1:
            return active[0]
        n1 = self.rng.randrange(len(active))
        n2 = self.rng.randrange(len(active))
        if n2 == n1:
            n2 = (n2 + 1) % len(active)
        first, second = active[n1], active[n2]
        return second if second.inflight < first.inflight else first


class WeightedBalancer(_ChildStatus):
    __slots__ = ("name", "children", "deadlines", "sticky", "cookie", "internal", "mirrors", "down",
                 "wants_health", "updaters", "middlewares", "middleware_names", "layered")

    def __init__(self, name: str, children: Sequence[tuple[str, CompiledService, int]],
                 sticky: StickyCookie | None, wants_health: bool = False) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.children = [(n, svc, max(w, 0)) for n, svc, w in children if w > 0]
        self.deadlines = [1.0 / w for _, _, w in self.children]
        self.sticky = sticky
        self.cookie = cookie_name(sticky, name) if sticky else ""
        self.down: set[str] = set()  # children a health check reported down
        self.wants_health = wants_health
        self.updaters: list[Updater] = []
        self.middlewares: tuple[MiddlewareHandler, ...] = ()
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        down = self.down
        if len(down) >= len(self.children):
            return None, None
        if self.sticky is not None and req is not None:
            value = _request_cookie(req, self.cookie)
            for n, svc, _ in self.children:
                if n not in down and value == hashlib.sha256(n.encode()).hexdigest()[:16]:
                    target, cookie = svc.pick(req)
                    if target is not None:
                        return target, cookie
        i = self._scheduled()
        n, svc, _ = self.children[i]
        target, cookie = svc.pick(req)
        if self.sticky is not None and target is not None:
            mine = _cookie_header(self.sticky, self.cookie, hashlib.sha256(n.encode()).hexdigest()[:16])
            cookie = mine if cookie is None else cookie  # one Set-Cookie per hop is enough for affinity
        return target, cookie

    def _scheduled(self) -> int:
        """The position of the next child by weight; one is up (the callers checked)."""
        dl, down = self.deadlines, self.down
        while True:  # a child that is down keeps its place in the schedule and is passed over
            i = min(range(len(dl)), key=dl.__getitem__)
            n, _, w = self.children[i]
            dl[i] += 1.0 / w
            if n not in down:
                return i

    def step(self, req: HttpRequest) -> Step:
        """The child ``pick`` would go to (the one the sticky cookie names while it is up), unpicked."""
        down = self.down
        if len(down) >= len(self.children):
            return None, 0, None
        if self.sticky is not None:
            value = _request_cookie(req, self.cookie)
            for i, (n, svc, _) in enumerate(self.children):
                if n not in down and value == hashlib.sha256(n.encode()).hexdigest()[:16]:
                    return svc, i, None
        i = self._scheduled()
        n, svc, _ = self.children[i]
        if self.sticky is None:
            return svc, i, None
        return svc, i, _cookie_header(self.sticky, self.cookie, hashlib.sha256(n.encode()).hexdigest()[:16])


class MirrorService:
    __slots__ = ("name", "main", "mirrors", "mirror_body", "max_body_size", "counters", "internal", "wants_health",
                 "middlewares", "middleware_names", "layered")

    def __init__(self, name: str, main: CompiledService, mirrors: Sequence[tuple[CompiledService, int]],
                 mirror_body: bool, max_body_size: int, wants_health: bool = False) -> None:
        self.name = name
        self.wants_health = wants_health
        self.internal = ""
        self.main = main
        self.mirrors: Mirrors = tuple(mirrors)
        self.mirror_body = mirror_body
        self.max_body_size = max_body_size
        self.counters = [0] * len(self.mirrors)
        self.middlewares: tuple[MiddlewareHandler, ...] = ()
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False

    def register(self, fn: Updater) -> None:
        """The main service's status is the mirroring's (Traefik asks for healthCheck here all the same)."""
        if not self.wants_health:
            raise ConfigError("healthCheck not enabled in config for this mirroring service")
        self.main.register(fn)

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return self.main.pick(req)

    def step(self, req: HttpRequest) -> Step:
        return self.main, 0, None

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


def _hrw_score(key: str, weight: float) -> float:
    """Traefik hrw getNodeScore: ``weight / -ln(fnv64a(client IP + name) / 2**64)``."""
    score = _fnv1a64(key.encode()) / 2.0**64
    return (1.0 / -math.log(score) if 0.0 < score < 1.0 else 0.0) * weight


class HrwBalancer(_ChildStatus):
    __slots__ = ("name", "children", "internal", "mirrors", "down", "wants_health", "updaters", "middlewares",
                 "middleware_names", "layered")
    kind = "HRW"

    def __init__(self, name: str, children: Sequence[tuple[str, CompiledService, int]],
                 wants_health: bool = False) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.children = [(n, svc, float(w)) for n, svc, w in children if w > 0]
        self.down: set[str] = set()
        self.wants_health = wants_health
        self.updaters: list[Updater] = []
        self.middlewares: tuple[MiddlewareHandler, ...] = ()
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        best = self._best(req.peer if req is not None else "")
        return self.children[best][1].pick(req) if best >= 0 else (None, None)

    def _best(self, src: str) -> int:
        """The position of the up child with the highest score for client address ``src`` (-1: none)."""
        best, best_score = -1, -1.0
        for i, (n, _, weight) in enumerate(self.children):
            if n in self.down:
                continue
            value = _hrw_score(src + n, weight)
            if value > best_score:
                best, best_score = i, value
        return best

    def step(self, req: HttpRequest) -> Step:
        best = self._best(req.peer)
        return (self.children[best][1], best, None) if best >= 0 else (None, 0, None)


class FailoverService(_Updaters):
    __slots__ = ("name", "main", "fallback", "internal", "mirrors", "main_up", "fallback_up", "wants_health",
                 "updaters", "error_codes", "max_body", "middlewares", "middleware_names", "layered")
    kind = "failover"

    def __init__(self, name: str, main: CompiledService, fallback: CompiledService,
                 wants_health: bool = False, error_codes: tuple[tuple[int, int], ...] = (),
                 max_body: int = -1) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.main = main
        self.fallback = fallback
        self.main_up = self.fallback_up = True
        self.wants_health = wants_health
        self.updaters: list[Updater] = []
        self.error_codes = error_codes  # errors.status: main answers that send the request to the fallback
        self.max_body = max_body        # errors.maxRequestBodyBytes (-1: no limit)
        self.middlewares: tuple[MiddlewareHandler, ...] = ()
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False

    def set_main_status(self, up: bool) -> None:
        before = self.main_up or self.fallback_up
        self.main_up = up
        self._changed(before, up or self.fallback_up)

    def set_fallback_status(self, up: bool) -> None:
        before = self.main_up or self.fallback_up
        self.fallback_up = up
        self._changed(before, self.main_up or up)

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        if self.main_up:
            if not self.error_codes or req is None:
                return self.main.pick(req)
            picked = self.main.pick(req)
            if picked[0] is not None:
                req.failover = self
                return picked
            if not self.wants_fallback(503):  # the main service's own "no available server"
                return picked
        if self.fallback_up:
            return self.fallback.pick(req)
        return None, None

    def step(self, req: HttpRequest) -> Step:
        """The main service while it is up (the request marked when ``errors`` may send it on: the
        exchange then takes the fallback itself, also when the main service has no server), else the
        fallback while that is up."""
        if self.main_up:
            if self.error_codes:
                req.failover = self
            return self.main, 0, None
        if self.fallback_up:
            return self.fallback, 1, None
        return None, 0, None

    def wants_fallback(self, status: int) -> bool:
        return any(low <= status <= high for low, high in self.error_codes)


def buffers_body(svc: CompiledService) -> bool:
    """Whether a request to ``svc`` may be sent twice (a failover with ``errors``), so its body is kept."""
    if isinstance(svc, FailoverService):
        return bool(svc.error_codes) or buffers_body(svc.main) or buffers_body(svc.fallback)
    if isinstance(svc, (WeightedBalancer, HrwBalancer)):
        return any(buffers_body(child) for _, child, _ in svc.children)
    if isinstance(svc, MirrorService):
        return buffers_body(svc.main)
    return False


class InternalService:
    __slots__ = ("name", "internal", "mirrors", "middlewares", "middleware_names", "layered")

    def __init__(self, name: str) -> None:
        self.name = name
        self.internal = name.split("@", 1)[0]
        self.mirrors: Mirrors = ()
        self.middlewares: tuple[MiddlewareHandler, ...] = ()
        self.middleware_names: tuple[str, ...] = ()
        self.layered = False

    def register(self, fn: Updater) -> None:
        raise ConfigError(f"{self.name} is not a service with a health status")

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return None, None


class _AnswerStatus(MiddlewareHandler):
    __slots__ = ("status",)

    def __init__(self, status: int) -> None:
        self.status = status

    def on_request(self, req: HttpRequest) -> Reply | None:
        return Reply(self.status, [("Content-Length", "0")], b"")


class StatusService:
    """A weighted child that answers a fixed status with an empty body (Traefik's WRRService.status: the
    Gateway API's 500 for a backend that could not be loaded). Its answer is a middleware, so the parent
    is walked (``layered``) and the child answers when picked."""

    __slots__ = ("name", "internal", "mirrors", "middlewares", "middleware_names", "layered")

    def __init__(self, name: str, status: int) -> None:
        self.name = name
        self.internal = ""
        self.mirrors: Mirrors = ()
        self.middlewares: tuple[MiddlewareHandler, ...] = (_AnswerStatus(status),)
        self.middleware_names: tuple[str, ...] = (f"status-{status}",)
        self.layered = False

    def register(self, fn: Updater) -> None:
        raise ConfigError(f"{self.name} is not a service with a health status")

    def pick(self, req: HttpRequest | None) -> tuple[Target | None, str | None]:
        return None, None


CompiledService = (Balancer | WeightedBalancer | MirrorService | InternalService | HrwBalancer
                   | FailoverService | StatusService)
Parent = WeightedBalancer | MirrorService | HrwBalancer | FailoverService
"""A service of services: it has ``step``."""
Step = tuple[CompiledService | None, int, str | None]
"""What ``step`` chose: the child (None: no child is available, 503), its position in ``children_of``
and the Set-Cookie value of this level's sticky cookie."""


def children_of(svc: CompiledService) -> tuple[CompiledService, ...]:
    """The services a request to ``svc`` may go on to, by the positions ``step`` gives (mirrors, which get
    copies, are not among them)."""
    if isinstance(svc, (WeightedBalancer, HrwBalancer)):
        return tuple(child for _, child, _ in svc.children)
    if isinstance(svc, MirrorService):
        return (svc.main,)
    if isinstance(svc, FailoverService):
        return (svc.main, svc.fallback)
    return ()
Mirrors = tuple[tuple[CompiledService, int], ...]  # (service, percent); only mirroring services have any
