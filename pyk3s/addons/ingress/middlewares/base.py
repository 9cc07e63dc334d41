"""What a middleware is to the proxy.

A middleware is built once from its dynamic configuration (``__init__`` validates and raises
``ConfigError``) and then called per request:

- ``on_request(req) -> Reply | None``: may rewrite ``req``; a Reply answers the client directly and
  the upstream is never called. When ``is_async`` is set, ``on_request`` is a coroutine.
- ``on_response(req, status, headers) -> int``: only when ``needs_response``; edits the upstream
  response header list in place and returns the (possibly changed) status.
- ``on_done(req)``: only when ``needs_done``; called once the exchange is over (success or not).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["Middleware", "BuildContext", "need"]


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a middleware may look up while it is built (by qualified name)."""

    name: str
    service: Callable[[str], Any]  # -> compiled service (for errors, mirroring)
    middleware: Callable[[str], Any]  # -> compiled middleware (for chain)


class Middleware:
    __slots__ = ()
    is_async = False
    needs_response = False
    needs_done = False
    needs_body = False  # buffering: the whole request body must be read before upstream

    def on_request(self, req: Any) -> Any:
        return None

    def on_response(self, req: Any, status: int, headers: list[tuple[str, str]]) -> int:
        return status

    def on_done(self, req: Any) -> None:
        return None


def need(config: Mapping[str, Any], key: str, kind: str) -> Any:
    value = config.get(key)
    if value in (None, "", [], ()):
        raise ConfigError(f"ingress: middleware {kind}: field {key} is required")
    return value
