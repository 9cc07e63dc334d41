"""retry, chain, buffering (spec 5.12).

    retry:     {attempts: 3, initialInterval: 100ms}   retries network errors before any response byte
    chain:     {middlewares: [a, b]}                    applied in order
    buffering: {maxRequestBodyBytes: 1048576}           413 when the request body is larger
"""

from __future__ import annotations

from ..config.durations import duration_seconds
from ..config.errors import ConfigError
from ..http.reply import Reply, text_error
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["Retry", "Chain", "Buffering"]


class Retry(MiddlewareHandler):
    __slots__ = ("attempts", "interval")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.attempts = int(config.get("attempts") or 0)
        if self.attempts <= 0:
            raise ConfigError("retry: incorrect (or empty) value for attempt")
        self.interval = duration_seconds(config.get("initialInterval"), 0.0, "retry.initialInterval")

    def on_request(self, req: HttpRequest) -> None:
        req.retry = (self.attempts - 1, self.interval)


class Chain(MiddlewareHandler):
    """Runs its members in order; the proxy sees the flags of any member."""

    __slots__ = ("members", "is_async", "needs_response", "needs_done", "needs_body")

    def __init__(self, config: Config, ctx: BuildContext) -> None:
        self.members = tuple(ctx.middleware(n) for n in config.get("middlewares") or ())
        self.is_async = any(m.is_async for m in self.members)
        self.needs_response = any(m.needs_response for m in self.members)
        self.needs_done = any(m.needs_done for m in self.members)
        self.needs_body = any(m.needs_body for m in self.members)

    def on_request(self, req: HttpRequest) -> Reply | None:
        for m in self.members:
            r = m.on_request(req)
            if r is not None:
                return r
        return None

    async def on_request_async(self, req: HttpRequest) -> Reply | None:
        for m in self.members:
            r = await m.on_request_async(req) if m.is_async else m.on_request(req)
            if r is not None:
                return r
        return None

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        for m in reversed(self.members):
            if m.needs_response:
                status = m.on_response(req, status, headers)
        return status

    def on_done(self, req: HttpRequest) -> None:
        for m in self.members:
            if m.needs_done:
                m.on_done(req)


class Buffering(MiddlewareHandler):
    __slots__ = ("max_request",)
    needs_body = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.max_request = int(config.get("maxRequestBodyBytes") or 0)

    def on_request(self, req: HttpRequest) -> Reply | None:
        if self.max_request > 0 and req.body_mode == "length" and req.content_length > self.max_request:
            return text_error(413, "Request Entity Too Large")
        return None
