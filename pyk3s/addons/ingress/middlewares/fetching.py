"""errors: answers with a listed status are replaced by a page from another service (spec 5.12).

    errors: {status: ["500-599", "404"], service: error-pages, query: "/{status}.html",
             statusRewrites: {"418": 404, "502-504": 500}, errorRequestHeaders: [X-Request-Id]}

As in Traefik 3.7: the page is asked for with GET ``query`` (``{status}`` the status the client gets,
``{originalStatus}`` the upstream's, ``{url}`` the query-escaped request URL) and the client gets it
with the upstream's status, or the one ``statusRewrites`` maps it to (first matching entry). The page
request carries the client's request headers, or only those named by ``errorRequestHeaders`` (an
empty list: none). forwardAuth lives in forward_auth.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote_plus

from ..config.codes import status_ranges
from ..config.errors import ConfigError
from ..http.fetch import fetch
from ..http.reply import Reply, text_error
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler, need

__all__ = ["ErrorPages"]

_SKIP = frozenset(("connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer",
                   "proxy-connection", "host"))


def _ranges(items: Iterable[object] | None, what: str = "status") -> list[tuple[int, int]]:
    # Traefik also takes comma-separated lists inside one entry ("500,502")
    specs = [part for item in items or () for part in str(item).split(",") if part.strip()]
    try:
        return list(status_ranges(specs))
    except ValueError as err:
        raise ConfigError(f"errors: {what}: {err}") from None


def _rewrites(value: object) -> list[tuple[list[tuple[int, int]], int]]:
    """statusRewrites: {"418": 404, "502-504": 500} -> [(ranges, new status)], in the order given."""
    if value is None:
        return []
    if not isinstance(value, Mapping):
        raise ConfigError(f"errors: statusRewrites must map statuses to a status, not {value!r}")
    out = []
    for key, code in value.items():
        if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).strip().isdigit() \
                or not 100 <= int(code) <= 599:
            raise ConfigError(f"errors: statusRewrites.{key}: {code!r} is not an HTTP status (100-599)")
        out.append((_ranges([key], f"statusRewrites.{key}"), int(code)))
    return out


def _header_names(value: object) -> frozenset[str] | None:
    """errorRequestHeaders: None (not set) forwards every request header; a list only those."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"errors: errorRequestHeaders must be a list of header names, not {value!r}")
    return frozenset(v.strip().lower() for v in value)


class ErrorPages(MiddlewareHandler):
    __slots__ = ("ranges", "service", "query", "rewrites", "request_headers")
    needs_response = True

    def __init__(self, config: Config, ctx: BuildContext) -> None:
        self.ranges = _ranges(need(config, "status", "errors"))
        self.rewrites = _rewrites(config.get("statusRewrites"))
        self.request_headers = _header_names(config.get("errorRequestHeaders"))
        self.service = ctx.service(str(need(config, "service", "errors")))
        self.query = "/" + str(config.get("query") or "").removeprefix("/")

    def _status_for(self, status: int) -> int:
        for ranges, code in self.rewrites:
            if any(lo <= status <= hi for lo, hi in ranges):
                return code
        return status

    def _page_headers(self, req: HttpRequest) -> list[tuple[str, str]]:
        names = self.request_headers
        return [(k, v) for k, v in req.headers if k.lower() not in _SKIP and (names is None or k.lower() in names)]

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        ex = req.exchange
        if ex is None or ex.intercept is not None or not any(lo <= status <= hi for lo, hi in self.ranges):
            return status
        code = self._status_for(status)
        url = quote_plus(f"{req.scheme}://{req.authority}{req.request_uri}", safe="")
        query = self.query.replace("{status}", str(code)).replace("{originalStatus}", str(status)) \
            .replace("{url}", url)
        page_headers = self._page_headers(req)

        async def replace() -> None:
            target, _ = self.service.pick(req)
            reply: Reply
            if target is None:
                reply = text_error(code)
            else:
                try:
                    context, server_name = target.tls()
                    res = await fetch(f"{target.scheme}://{target.authority}{query}", "GET", page_headers,
                                      timeout=30.0, host_header=req.authority if target.pass_host_header else None,
                                      ssl_context=context, server_hostname=server_name)
                    reply = Reply(code, [(k, v) for k, v in res.headers if k.lower() not in _SKIP
                                         and k.lower() != "date"], bytes(res.body))
                except (OSError, TimeoutError):
                    reply = text_error(code)
            ex.replace_reply(reply, self)

        ex.intercept = replace
        return status
