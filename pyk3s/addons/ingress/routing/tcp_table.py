"""Which handler takes a connection on an entry point that has TCP routers (Traefik
pkg/server/router/tcp/router.go, ServeTCP), as a pure decision on what the connection showed so far.

1. Only non-TLS TCP routers and no TLS routers (TCP or HTTPS): the connection is matched at once, with
   no server name, before the client sends anything (server-first protocols such as SMTP or MySQL
   work). If no router matches, go on as below.
2. Otherwise the first bytes decide. Not TLS (no ClientHello): a non-TLS TCP router, else the HTTP
   routers. A Postgres STARTTLS request is answered and its ClientHello read; only TLS TCP routers
   take it.
3. TLS: an HTTPS router whose Host matches the server name; else the first TLS TCP router (passthrough
   or terminating) whose rule matches, unless it is a catch-all (``HostSNI(`*`)``); else an HTTPS
   router without a Host rule; else that catch-all; else the HTTPS routers (which answer 404).

Routes are tried in priority order (explicit, else the rule length, ``HostSNI(`*`)`` -1), then name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..middlewares.tcp import TCPMiddlewareHandler
from ..rules.tcp import CompiledTCPRule, ConnInfo
from .tcp_services import TCPServiceHandler, UDPServiceHandler

__all__ = ["TCPRoute", "TCPEntryTable", "HttpsHosts", "UDPEntry", "Verdict"]

Verdict = Literal["http", "https", "close"]


@dataclass(frozen=True, slots=True)
class TCPRoute:
    name: str
    rule: CompiledTCPRule
    priority: int
    middlewares: tuple[TCPMiddlewareHandler, ...]
    service: TCPServiceHandler | None  # None: the route's TLS cannot be set up, its connections are closed
    tls: Literal["", "passthrough", "terminate"] = ""
    tls_options: str = "default"  # TLSOption of a terminating route


class HttpsHosts:
    """The server names of the HTTPS routers of an entry point (Traefik's muxerHTTPS)."""

    __slots__ = ("exact", "wildcards", "catch_all", "any")

    def __init__(self, domains: Iterable[str], catch_all: bool) -> None:
        exact: set[str] = set()
        wild: set[str] = set()
        for d in domains:
            d = d.strip().lower().removesuffix(".")
            if d == "*":
                catch_all = True
            elif d.startswith("*."):
                wild.add(d[1:])
            elif d:
                exact.add(d)
        self.exact, self.wildcards, self.catch_all = frozenset(exact), frozenset(wild), catch_all
        self.any = bool(exact or wild or catch_all)

    def specific(self, server_name: str) -> bool:
        """An HTTPS router names this server (a HostSNI route other than the catch-all matches)."""
        if not server_name:
            return False
        if server_name in self.exact:
            return True
        first, dot, _ = server_name.partition(".")
        return bool(dot) and server_name[len(first):] in self.wildcards


def _ordered(routes: Iterable[TCPRoute]) -> tuple[TCPRoute, ...]:
    return tuple(sorted(routes, key=lambda r: (-r.priority, r.name)))


class TCPEntryTable:
    """The TCP routers of one entry point and what its HTTP side offers."""

    __slots__ = ("plain", "tls", "https", "everyone")

    def __init__(self, plain: Sequence[TCPRoute], tls: Sequence[TCPRoute], https: HttpsHosts) -> None:
        self.plain = _ordered(plain)
        self.tls = _ordered(tls)
        self.https = https
        self.everyone = self._same_for_everyone()

    def _same_for_everyone(self) -> TCPRoute | None:
        """The route step 1 gives every connection whatever its peer (decided once, not per connection):
        the first route that matches with no server name, when no route before it asks for ClientIP."""
        blank = ConnInfo("", "", ())
        for r in self.plain:
            if any(text.lower().startswith("clientip(") for text, _ in r.rule.leaves):
                return None
            if r.rule.match(blank):
                return r
        return None

    @property
    def empty(self) -> bool:
        return not self.plain and not self.tls

    @property
    def early(self) -> bool:
        """Step 1 applies: match before reading anything."""
        return bool(self.plain) and not self.tls and not self.https.any

    @staticmethod
    def _first(routes: tuple[TCPRoute, ...], info: ConnInfo) -> TCPRoute | None:
        for r in routes:
            if r.rule.match(info):
                return r
        return None

    def match_early(self, peer: str) -> TCPRoute | None:
        if self.everyone is not None:
            return self.everyone
        return self._first(self.plain, ConnInfo("", peer, ()))

    def route_plain(self, info: ConnInfo) -> TCPRoute | Verdict:
        return self._first(self.plain, info) or "http"

    def route_tls(self, info: ConnInfo) -> TCPRoute | Verdict:
        if self.https.specific(info.server_name):
            return "https"
        route = self._first(self.tls, info)
        if route is not None and not route.rule.catch_all:
            return route
        if self.https.catch_all:
            return "https"
        return route if route is not None else "https"

    def route_postgres(self, info: ConnInfo) -> TCPRoute | Verdict:
        return self._first(self.tls, info) or "close"


@dataclass(frozen=True, slots=True)
class UDPEntry:
    """The one UDP router an entry point serves and its service."""

    router: str
    service: UDPServiceHandler
