"""rateLimit and inFlightReq (spec 5.11, 5.12).

    rateLimit:   {average: 100, period: 1s, burst: 50, sourceCriterion: {ipStrategy: {...} | requestHeaderName: X | requestHost: true}}
    inFlightReq: {amount: 10, sourceCriterion: {...}}

rateLimit is a token bucket per source; a request that would have to wait longer than ``MAX_DELAY`` gets
429 with ``Retry-After`` and ``X-Retry-In``; a shorter wait delays it. inFlightReq answers 429 once a
source has ``amount`` requests in flight.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from ..config.durations import duration_seconds
from ..config.errors import ConfigError
from ..http.reply import Reply
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler
from .ipallowlist import client_ip_strategy

__all__ = ["RateLimit", "InFlightReq", "source_criterion"]

MAX_DELAY = 0.5
_MAX_SOURCES = 65536


def source_criterion(config: Config | None, kind: str) -> Callable[[HttpRequest], str]:
    config = config or {}
    chosen = [k for k in ("ipStrategy", "requestHeaderName", "requestHost") if config.get(k)]
    if len(chosen) > 1:
        raise ConfigError(f"{kind}: sourceCriterion: only one of ipStrategy, requestHeaderName, requestHost may be set")
    if config.get("requestHeaderName"):
        name = str(config["requestHeaderName"])
        return lambda req: req.header(name)
    if config.get("requestHost"):
        return lambda req: req.host
    return client_ip_strategy(config.get("ipStrategy"))


class RateLimit(MiddlewareHandler):
    __slots__ = ("rate", "burst", "source", "buckets", "warnings")
    is_async = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        # a Redis store shares the buckets between proxies; pyk3s keeps them per worker
        self.warnings = ("rateLimit.redis is not supported by pyk3s: each worker limits on its own",) \
            if config.get("redis") else ()
        average = float(config.get("average") or 0)
        period = duration_seconds(config.get("period"), 1.0, "rateLimit.period")
        if period <= 0:
            raise ConfigError("rateLimit: period must be greater than zero")
        self.rate = average / period if average > 0 else math.inf
        self.burst = max(int(config.get("burst") or 1), 1)
        self.source = source_criterion(config.get("sourceCriterion"), "rateLimit")
        self.buckets: dict[str, list[float]] = {}

    async def on_request_async(self, req: HttpRequest) -> Reply | None:
        if self.rate == math.inf:
            return None
        key = self.source(req)
        now = time.monotonic()
        b = self.buckets.get(key)
        if b is None:
            if len(self.buckets) > _MAX_SOURCES:
                self.buckets.clear()
            b = self.buckets[key] = [float(self.burst), now]
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens >= 1:
            b[0] = tokens - 1
            return None
        wait = (1 - tokens) / self.rate
        if wait > MAX_DELAY:
            b[0] = tokens
            return Reply(429, [("Retry-After", str(math.ceil(wait))), ("X-Retry-In", f"{wait:.3f}s"),
                               ("Content-Type", "text/plain; charset=utf-8")], b"Too Many Requests")
        b[0] = tokens - 1
        await asyncio.sleep(wait)
        return None


class InFlightReq(MiddlewareHandler):
    __slots__ = ("amount", "source", "counts")
    needs_done = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.amount = int(config.get("amount") or 0)
        if self.amount <= 0:
            raise ConfigError("inFlightReq: amount must be greater than zero")
        self.source = source_criterion(config.get("sourceCriterion"), "inFlightReq")
        self.counts: dict[str, int] = {}

    def on_request(self, req: HttpRequest) -> Reply | None:
        key = self.source(req)
        n = self.counts.get(key, 0)
        if n >= self.amount:
            return Reply(429, [("Content-Type", "text/plain; charset=utf-8")],
                         f"max concurrent requests reached for {key}".encode())
        self.counts[key] = n + 1
        _mark(req, self)
        return None

    def on_done(self, req: HttpRequest) -> None:
        if _unmark(req, self):
            key = self.source(req)
            n = self.counts.get(key, 0) - 1
            if n <= 0:
                self.counts.pop(key, None)
            else:
                self.counts[key] = n


def _mark(req: HttpRequest, mw: MiddlewareHandler) -> None:
    if req.marks is None:
        req.marks = set()
    req.marks.add(id(mw))


def _unmark(req: HttpRequest, mw: MiddlewareHandler) -> bool:
    if not req.marks or id(mw) not in req.marks:
        return False
    req.marks.discard(id(mw))
    return True
