"""Middlewares that call another HTTP service: forwardAuth, errors (spec 5.12).

    forwardAuth: {address: http://auth.example/check, trustForwardHeader: false,
                  authResponseHeaders: [X-User], authResponseHeadersRegex: "^X-", authRequestHeaders: [Cookie],
                  tls: {ca: PEM, cert: PEM, key: PEM, insecureSkipVerify: false}}
    errors:      {status: ["500-599", "404"], service: error-pages, query: "/{status}.html"}

forwardAuth: a 2xx from the auth server lets the request through (copying authResponseHeaders);
any other answer goes back to the client as is. An https address is verified (``tls.ca``, else the
system CAs) unless ``tls.insecureSkipVerify``; ``tls.cert``/``tls.key`` are presented to it.
addAuthCookiesToResponse, headerField, forwardBody, preserveLocationHeader, preserveRequestMethod and
authSigninURL are not supported: set, they are warnings on the middleware. errors: a response with a listed status is replaced by
the page the error service returns for ``query``, keeping the original status.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Iterable

from ..config.codes import status_ranges
from ..config.errors import ConfigError
from ..config.goregexp import GoRegexpError, compile_go
from ..http.fetch import fetch
from ..http.reply import Reply, text_error
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler, need

__all__ = ["ForwardAuth", "ErrorPages"]

_SKIP = frozenset(("connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"))


_FORWARD_AUTH_UNSUPPORTED = ("addAuthCookiesToResponse", "headerField", "forwardBody", "preserveLocationHeader",
                             "preserveRequestMethod", "authSigninURL")


def _client_context(tls: Config) -> ssl.SSLContext:
    """forwardAuth.tls: the context to reach the auth server with."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.get("ca"):
            ctx.load_verify_locations(cadata=str(tls["ca"]))
        else:
            ctx.load_default_certs()
        if tls.get("insecureSkipVerify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.get("cert") and tls.get("key"):
            with tempfile.TemporaryDirectory(prefix="pk-fa-") as tmp:
                path = os.path.join(tmp, "client.pem")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(str(tls["cert"]).strip() + "\n" + str(tls["key"]).strip() + "\n")
                ctx.load_cert_chain(path)
    except (ssl.SSLError, ValueError, OSError) as err:
        raise ConfigError(f"forwardAuth: invalid tls configuration: {err}") from None
    return ctx


class ForwardAuth(MiddlewareHandler):
    __slots__ = ("address", "trust", "resp_headers", "resp_rx", "req_headers", "ssl_context", "warnings")
    is_async = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.address = str(need(config, "address", "forwardAuth"))
        self.ssl_context = _client_context(config["tls"]) if config.get("tls") is not None else None
        self.warnings = tuple(f"forwardAuth.{key} is not supported by pyk3s" for key in _FORWARD_AUTH_UNSUPPORTED
                              if config.get(key))
        self.trust = bool(config.get("trustForwardHeader"))
        self.resp_headers = [str(h) for h in config.get("authResponseHeaders") or ()]
        try:
            # Go regexp on the response's canonical header names (X-Auth-User), as Traefik matches them
            self.resp_rx = compile_go(config["authResponseHeadersRegex"]) if config.get("authResponseHeadersRegex") else None
        except GoRegexpError as err:
            raise ConfigError(f"forwardAuth: invalid authResponseHeadersRegex: {err}") from None
        self.req_headers = {h.lower() for h in config.get("authRequestHeaders") or ()}

    async def on_request_async(self, req: HttpRequest) -> Reply | None:
        headers = [(k, v) for k, v in req.headers
                   if k.lower() not in _SKIP and (not self.req_headers or k.lower() in self.req_headers)
                   and (self.trust or not k.lower().startswith("x-forwarded-"))]
        xff = req.header("x-forwarded-for") if self.trust else ""
        headers += [("X-Forwarded-Method", req.method), ("X-Forwarded-Proto", "https" if req.tls else "http"),
                    ("X-Forwarded-Host", req.authority), ("X-Forwarded-Uri", req.request_uri),
                    ("X-Forwarded-For", f"{xff}, {req.peer}" if xff else req.peer)]
        try:
            res = await fetch(self.address, "GET", headers, timeout=30.0, ssl_context=self.ssl_context)
        except (OSError, TimeoutError):
            return text_error(500)
        if 200 <= res.status < 300:
            for name in self.resp_headers:
                value = next((v for k, v in res.headers if k.lower() == name.lower()), None)
                if value is not None:
                    req.set_header(name, value)
                else:
                    req.del_header(name)
            if self.resp_rx is not None:
                for k, v in res.headers:
                    if self.resp_rx.search(canonical_key(k)):
                        req.set_header(k, v)
            return None
        return Reply(res.status, [(k, v) for k, v in res.headers if k.lower() not in _SKIP and k.lower() != "date"],
                     bytes(res.body))


def canonical_key(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `x-auth-user` -> `X-Auth-User` (names with a space or other
    non-token byte are left as they are)."""
    if not name.isascii() or any(not (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _ranges(items: Iterable[object] | None) -> list[tuple[int, int]]:
    try:
        return list(status_ranges(items or ()))
    except ValueError as err:
        raise ConfigError(f"errors: {err}") from None


class ErrorPages(MiddlewareHandler):
    __slots__ = ("ranges", "service", "query", "warnings")
    needs_response = True

    def __init__(self, config: Config, ctx: BuildContext) -> None:
        self.warnings = tuple(f"errors.{key} is not supported by pyk3s" for key in ("statusRewrites", "errorRequestHeaders")
                              if config.get(key))
        self.ranges = _ranges(need(config, "status", "errors"))
        self.service = ctx.service(str(need(config, "service", "errors")))
        self.query = str(config.get("query") or "/")

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        ex = req.exchange
        if ex is None or ex.intercept is not None or not any(lo <= status <= hi for lo, hi in self.ranges):
            return status
        query = self.query.replace("{status}", str(status)).replace("{url}", req.request_uri)

        async def replace() -> None:
            target, _ = self.service.pick(req)
            reply: Reply
            if target is None:
                reply = text_error(status)
            else:
                try:
                    context, server_name = target.tls()
                    res = await fetch(f"{target.scheme}://{target.authority}{query}", "GET", timeout=30.0,
                                      host_header=req.authority if target.pass_host_header else None,
                                      ssl_context=context, server_hostname=server_name)
                    reply = Reply(status, [(k, v) for k, v in res.headers if k.lower() not in _SKIP
                                           and k.lower() != "date"], bytes(res.body))
                except (OSError, TimeoutError):
                    reply = text_error(status)
            ex.replace_reply(reply, self)

        ex.intercept = replace
        return status
