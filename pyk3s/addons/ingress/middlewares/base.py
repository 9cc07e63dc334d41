"""What a middleware is to the proxy.

A middleware (a :class:`MiddlewareHandler`; its configuration is ``dynamic.Middleware``) is built once
from its dynamic configuration (``__init__(config, ctx)`` validates and raises ``ConfigError``) and
then called per request:

- ``on_request(req) -> Reply | None``: may rewrite ``req``; a Reply answers the client directly and
  the upstream is never called. When ``is_async`` is set, ``on_request_async(req)`` is awaited instead.
- ``on_response(req, status, headers) -> int``: only when ``needs_response``; edits the upstream
  response header list in place and returns the (possibly changed) status. ``req.exchange`` lets it
  encode the body or replace the response (:class:`~..http.request.ExchangeHooks`).
- ``on_done(req)``: only when ``needs_done``; called once the exchange is over (success or not).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..config.errors import ConfigError
from ..http.reply import Reply
from ..http.request import HttpRequest

__all__ = ["MiddlewareHandler", "BuildContext", "Config", "Backend", "BackendServer", "need"]

Config = Mapping[str, Any]
"""A middleware's dynamic configuration: Traefik's field names, values as decoded from YAML or JSON."""


class BackendServer(Protocol):
    """One server of a service, as a middleware addresses it."""

    @property
    def scheme(self) -> str: ...

    @property
    def authority(self) -> str: ...

    @property
    def pass_host_header(self) -> bool: ...

    def tls(self) -> tuple[ssl.SSLContext | None, str | None]:
        """The TLS context and server name to reach this server with (its ServersTransport)."""


class Backend(Protocol):
    """A compiled service (routing/services.py) as a middleware calls it: the server for a request."""

    def pick(self, req: HttpRequest | None) -> tuple[BackendServer | None, str | None]: ...


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a middleware may look up while it is built (by qualified name)."""

    name: str
    service: Callable[[str], Backend]  # for errors
    middleware: Callable[[str], MiddlewareHandler]  # for chain


class MiddlewareHandler:
    __slots__ = ()
    warnings: tuple[str, ...] = ()  # options given that this handler does not honour (shown in the API)
    is_async = False
    needs_response = False
    needs_done = False
    needs_body = False  # buffering: the whole request body must be read before upstream

    def on_request(self, req: HttpRequest) -> Reply | None:
        return None

    async def on_request_async(self, req: HttpRequest) -> Reply | None:
        return self.on_request(req)

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        return status

    def on_done(self, req: HttpRequest) -> None:
        return None


def need(config: Config, key: str, kind: str) -> Any:
    """A required field's value (decoded YAML or JSON: its type is checked by the caller)."""
    value = config.get(key)
    if value in (None, "", [], ()):
        raise ConfigError(f"ingress: middleware {kind}: field {key} is required")
    return value
