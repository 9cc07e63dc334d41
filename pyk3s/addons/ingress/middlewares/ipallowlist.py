"""ipAllowList (v3) / ipWhiteList (v2) (spec 5.10).

    ipAllowList: {sourceRange: ["127.0.0.1/32", "192.168.1.7"], ipStrategy: {depth: 2, excludedIPs: [...]},
                  rejectStatusCode: 403}

Client IP: TCP peer, or the depth-th X-Forwarded-For entry from the right, or the right-most entry not
excluded. Rejection: 403 ``Forbidden``.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from ..config.errors import ConfigError
from ..http.reply import Reply
from ..http.request import HttpRequest
from ..rules.matchers_v3 import ip_matcher
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["IPAllowList", "client_ip_strategy"]


def client_ip_strategy(strategy: Config | None) -> Callable[[HttpRequest], str]:
    strategy = strategy or {}
    depth = int(strategy.get("depth") or 0)
    excluded = [ip_matcher(x, "ipStrategy.excludedIPs") for x in strategy.get("excludedIPs") or ()]
    if depth > 0:
        def by_depth(req: HttpRequest) -> str:
            xff = [x.strip() for v in req.header_values("x-forwarded-for") for x in v.split(",")]
            return xff[-depth] if len(xff) >= depth else ""
        return by_depth
    if excluded:
        def by_exclusion(req: HttpRequest) -> str:
            xff = [x.strip() for v in req.header_values("x-forwarded-for") for x in v.split(",")]
            for ip in reversed(xff):
                if not any(e(ip) for e in excluded):
                    return ip
            return ""
        return by_exclusion
    return lambda req: req.peer


class IPAllowList(MiddlewareHandler):
    __slots__ = ("checks", "client_ip", "reject")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        ranges = config.get("sourceRange") or ()
        if not ranges:
            raise ConfigError("ipAllowList: sourceRange is empty, IPAllowLister not created")
        self.checks = [ip_matcher(str(r), "ipAllowList.sourceRange") for r in ranges]
        self.client_ip = client_ip_strategy(config.get("ipStrategy"))
        code = int(config.get("rejectStatusCode") or 403)
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            raise ConfigError(f"ipAllowList: invalid rejectStatusCode {code}") from None
        self.reject = (code, phrase.encode())

    def on_request(self, req: HttpRequest) -> Reply | None:
        ip = self.client_ip(req)
        if ip and any(c(ip) for c in self.checks):
            return None
        return Reply(self.reject[0], [("Content-Type", "text/plain; charset=utf-8")], self.reject[1])
