"""redirectScheme and redirectRegex (spec 5.7, 5.8).

    redirectScheme: {scheme: https, port: "443", permanent: true}
    redirectRegex:  {regex: "^http://localhost/(.*)", replacement: "http://mydomain/${1}", permanent: false}

302/307 (temporary, GET/other) or 301/308 (permanent); body is the status text. A target equal to the
current URL passes the request through. redirectRegex's regexp is Go's (goregexp.py), and a target that
Go's url.Parse refuses is answered 502 Bad Gateway, as Traefik's error handler does.
"""

from __future__ import annotations

from ..config.errors import ConfigError
from ..config.goregexp import GoRegexpError, compile_go
from ..http.gourl import go_url_error
from ..http.reply import Reply, status_text
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler, need

__all__ = ["RedirectScheme", "RedirectRegex"]


def _redirect(req: HttpRequest, location: str, permanent: bool) -> Reply:
    if permanent:
        status = 301 if req.method == "GET" else 308
    else:
        status = 302 if req.method == "GET" else 307
    return Reply(status, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                 status_text(status).encode())


def _host_only(authority: str) -> str:
    if authority.startswith("["):
        return authority[: authority.find("]") + 1]
    return authority.split(":", 1)[0] if authority.count(":") == 1 else authority


class RedirectScheme(MiddlewareHandler):
    __slots__ = ("scheme", "port", "permanent")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.scheme = str(need(config, "scheme", "redirectScheme"))
        self.port = str(config.get("port") or "")
        self.permanent = bool(config.get("permanent"))
        if (self.port == "80" and self.scheme == "http") or (self.port == "443" and self.scheme == "https"):
            self.port = ""

    def on_request(self, req: HttpRequest) -> Reply | None:
        scheme = "https" if req.tls else "http"
        xfp = req.header("x-forwarded-proto").lower()
        if xfp in ("http", "ws"):
            scheme = "http"
        elif xfp in ("https", "wss"):
            scheme = "https"
        current = f"{scheme}://{req.authority}{req.request_uri}"
        host = _host_only(req.authority)
        target = f"{self.scheme}://{host}{':' + self.port if self.port else ''}{req.request_uri}"
        if target == current:
            return None
        return _redirect(req, target, self.permanent)


class RedirectRegex(MiddlewareHandler):
    __slots__ = ("regex", "replacement", "permanent")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        try:
            self.regex = compile_go(str(config.get("regex", "")))
        except GoRegexpError as err:
            raise ConfigError(f"redirectRegex: invalid regexp {config.get('regex')!r}: {err}") from None
        self.replacement = str(config.get("replacement", ""))
        self.permanent = bool(config.get("permanent"))

    def on_request(self, req: HttpRequest) -> Reply | None:
        current = f"{'https' if req.tls else 'http'}://{req.authority}{req.request_uri}"
        if self.regex.search(current) is None:
            return None
        target = self.regex.replace_all(current, self.replacement)
        if go_url_error(target) is not None:
            return Reply(502, [("Content-Type", "text/plain; charset=utf-8")], status_text(502).encode())
        if target == current:
            return None
        return _redirect(req, target, self.permanent)
