"""forwardAuth: ask another HTTP service whether a request may pass (spec 5.12, Traefik 3.7).

    forwardAuth: {address: http://auth.example/check, trustForwardHeader: false,
                  authResponseHeaders: [X-User], authResponseHeadersRegex: "^X-", authRequestHeaders: [Cookie],
                  addAuthCookiesToResponse: [session], headerField: X-User, forwardBody: true,
                  maxBodySize: 1048576, maxResponseBodySize: 65536, preserveLocationHeader: false,
                  preserveRequestMethod: false, authSigninURL: https://login.example/,
                  tls: {ca: PEM, cert: PEM, key: PEM, insecureSkipVerify: false}}

A 2xx from the auth server lets the request through (authResponseHeaders and the headers matching
authResponseHeadersRegex are replaced by the auth answer's, all values); any other answer goes back to the client with the auth
server's headers and body, its Location resolved against ``address`` unless preserveLocationHeader,
and a 401 becomes a 302 to ``authSigninURL`` when that is set. The auth request is a GET (the
client's method with preserveRequestMethod) and carries the body with forwardBody: the whole body is
read first, and one longer than maxBodySize is refused with 401, as is an auth answer whose body is
longer than maxResponseBodySize (both default to -1, no limit). ``headerField`` names the auth
answer's header that holds the user for the access log (ClientUsername). ``addAuthCookiesToResponse``:
the auth answer's cookies of those names are set on the upstream's answer, replacing the upstream's
own cookies of the same names. An https address is verified (``tls.ca``, else the system CAs) unless
``tls.insecureSkipVerify``; ``tls.cert``/``tls.key`` are presented to it.
"""

from __future__ import annotations

import html
import os
import posixpath
import ssl
import tempfile
from urllib.parse import urljoin, urlsplit

from ..config.errors import ConfigError
from ..config.goregexp import GoRegexpError, compile_go
from ..http.fetch import BodyTooLarge, fetch
from ..http.reply import Reply, text_error
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler, need

__all__ = ["ForwardAuth", "canonical_key"]

_SKIP = frozenset(("connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"))
_UNAUTHORIZED = Reply(401, [], b"")  # Traefik writes the bare status when a body limit is passed
_FAILED = Reply(500, [], b"")


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


def _flag(config: Config, key: str) -> bool:
    value = config.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"forwardAuth: {key} must be true or false, not {value!r}")


def _size(config: Config, key: str) -> int:
    """maxBodySize / maxResponseBodySize: bytes, a negative value (the default) for no limit."""
    value = config.get(key)
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"forwardAuth: {key} must be a number of bytes, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"forwardAuth: {key} must be a number of bytes, not {value!r}") from None


def _text(config: Config, key: str) -> str:
    value = config.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"forwardAuth: {key} must be a string, not {value!r}")
    return value.strip() if key == "headerField" else value


def _names(config: Config, key: str) -> tuple[str, ...]:
    value = config.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"forwardAuth: {key} must be a list of names, not {value!r}")
    return tuple(value)


def canonical_key(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `x-auth-user` -> `X-Auth-User` (names with a space or other
    non-token byte are left as they are)."""
    if not name.isascii() or any(not (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name):
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _cookie_name(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[0].strip()


def signin_location(path: str, target: str) -> str:
    """Where Go's http.Redirect sends the client: ``target`` as is when it has a scheme or starts with
    ``//``, else resolved against the request path (trailing slash kept, ``.``/``..`` cleaned)."""
    parts = urlsplit(target)
    if parts.scheme or target.startswith("//"):
        return target
    rest, sep, query = target.partition("?")
    if not rest.startswith("/"):
        rest = posixpath.dirname(path or "/") + "/" + rest
    trailing = rest.endswith("/")
    cleaned = posixpath.normpath(rest).replace("//", "/")
    if trailing and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned + sep + query


class ForwardAuth(MiddlewareHandler):
    __slots__ = ("address", "trust", "resp_headers", "resp_rx", "req_headers", "ssl_context", "warnings",
                 "auth_cookies", "header_field", "forward_body", "max_body", "max_response", "preserve_location",
                 "preserve_method", "signin_url", "needs_body", "needs_response", "needs_done", "granted")
    is_async = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.address = str(need(config, "address", "forwardAuth"))
        self.ssl_context = _client_context(config["tls"]) if config.get("tls") is not None else None
        self.warnings: tuple[str, ...] = ()
        self.trust = _flag(config, "trustForwardHeader")
        self.resp_headers = [str(h) for h in config.get("authResponseHeaders") or ()]
        try:
            # Go regexp on the response's canonical header names (X-Auth-User), as Traefik matches them
            self.resp_rx = compile_go(config["authResponseHeadersRegex"]) if config.get("authResponseHeadersRegex") else None
        except GoRegexpError as err:
            raise ConfigError(f"forwardAuth: invalid authResponseHeadersRegex: {err}") from None
        self.req_headers = {h.lower() for h in config.get("authRequestHeaders") or ()}
        self.auth_cookies = frozenset(_names(config, "addAuthCookiesToResponse"))
        self.header_field = _text(config, "headerField")
        self.forward_body = _flag(config, "forwardBody")
        self.max_body = _size(config, "maxBodySize")
        self.max_response = _size(config, "maxResponseBodySize")
        self.preserve_location = _flag(config, "preserveLocationHeader")
        self.preserve_method = _flag(config, "preserveRequestMethod")
        self.signin_url = _text(config, "authSigninURL")
        # the proxy reads the whole body while this middleware runs (HTTP/2 flow control included)
        self.needs_body = self.forward_body
        # the auth answer's cookies wait, by request, for the upstream's answer (dropped once it is over)
        self.needs_response = self.needs_done = bool(self.auth_cookies)
        self.granted: dict[int, list[str]] = {}

    def _auth_headers(self, req: HttpRequest) -> list[tuple[str, str]]:
        headers = [(k, v) for k, v in req.headers
                   if k.lower() not in _SKIP and (not self.req_headers or k.lower() in self.req_headers)
                   and (self.trust or not k.lower().startswith("x-forwarded-"))]
        xff = req.header("x-forwarded-for") if self.trust else ""
        headers += [("X-Forwarded-Method", req.method), ("X-Forwarded-Proto", "https" if req.tls else "http"),
                    ("X-Forwarded-Host", req.authority), ("X-Forwarded-Uri", req.request_uri),
                    ("X-Forwarded-For", f"{xff}, {req.peer}" if xff else req.peer)]
        return headers

    async def _request_body(self, req: HttpRequest) -> bytes | None:
        """The body to send to the auth server (b"" for none); None when it is over maxBodySize."""
        # a CONNECT without a length carries tunnel bytes, not a body
        if not self.forward_body or not req.body_mode or (req.method == "CONNECT" and req.body_mode != "length"):
            return b""
        if req.body_mode == "length" and 0 <= self.max_body < req.content_length:
            return None
        ex = req.exchange
        return b"" if ex is None else await ex.whole_request_body(self.max_body)

    async def on_request_async(self, req: HttpRequest) -> Reply | None:
        body = await self._request_body(req)
        if body is None:
            return _UNAUTHORIZED
        method = req.method if self.preserve_method else "GET"
        try:
            res = await fetch(self.address, method, self._auth_headers(req), body, timeout=30.0,
                              ssl_context=self.ssl_context, max_body=self.max_response)
        except BodyTooLarge:
            return _UNAUTHORIZED
        except (OSError, TimeoutError):
            return text_error(500)
        if self.header_field:
            user = next((v for k, v in res.headers if k.lower() == self.header_field.lower()), None)
            if user is not None:
                req.user = user
        if self.signin_url and res.status == 401:
            return self._signin(req)
        if not 200 <= res.status < 300:
            return self._denied(res.status, res.headers, bytes(res.body))
        self._grant(req, res.headers)
        return None

    def _signin(self, req: HttpRequest) -> Reply:
        location = signin_location(req.path, self.signin_url)
        if req.method not in ("GET", "HEAD"):
            return Reply(302, [("Location", location)], b"")
        body = f'<a href="{html.escape(location)}">Found</a>.\n\n'.encode() if req.method == "GET" else b""
        return Reply(302, [("Location", location), ("Content-Type", "text/html; charset=utf-8")], body)

    def _denied(self, status: int, headers: list[tuple[str, str]], body: bytes) -> Reply:
        out = [(k, v) for k, v in headers if k.lower() not in _SKIP and k.lower() != "date"]
        location = next((v for k, v in out if k.lower() == "location"), "")
        if location and not self.preserve_location:
            try:
                resolved = urljoin(self.address, location)
            except ValueError:
                return _FAILED
            out = [(k, resolved if k.lower() == "location" else v) for k, v in out]
        return Reply(status, out, body)

    def _grant(self, req: HttpRequest, headers: list[tuple[str, str]]) -> None:
        for name in self.resp_headers:
            req.del_header(name)
            for k, v in headers:
                if k.lower() == name.lower():
                    req.add_header(name, v)
        rx = self.resp_rx
        if rx is not None:
            # the client's own headers of those names go first, so only the auth server's reach upstream
            for k in {k for k, _ in req.headers if rx.search(canonical_key(k))}:
                req.del_header(k)
            for k, v in headers:
                if rx.search(canonical_key(k)):
                    req.add_header(k, v)
        if self.auth_cookies:
            cookies = [v for k, v in headers if k.lower() == "set-cookie"]
            if cookies:
                self.granted[id(req)] = cookies

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        cookies = self.granted.pop(id(req), None)
        if cookies is None:
            return status
        kept = [v for k, v in headers if k.lower() == "set-cookie" and _cookie_name(v) not in self.auth_cookies]
        headers[:] = [(k, v) for k, v in headers if k.lower() != "set-cookie"]
        headers.extend(("Set-Cookie", v) for v in kept)
        headers.extend(("Set-Cookie", v) for v in cookies if _cookie_name(v) in self.auth_cookies)
        return status

    def on_done(self, req: HttpRequest) -> None:
        self.granted.pop(id(req), None)
