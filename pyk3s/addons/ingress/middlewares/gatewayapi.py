"""The Gateway API filters as middlewares (what the kubernetesGateway provider emits for HTTPRoute filters).

    requestHeaderModifier:  {set: {Name: value}, add: {Name: value}, remove: [Name]}
    responseHeaderModifier: {set: ..., add: ..., remove: ...}      on the upstream response
    requestRedirect:        {scheme, hostname, port, path, pathPrefix, statusCode}   (301 or 302, 302 by default)
    urlRewrite:             {hostname, path, pathPrefix}

``path`` with ``pathPrefix`` replaces the matched prefix (Gateway API ReplacePrefixMatch): the new path is
``path.Join(path, rest)`` keeping a trailing slash; ``path`` alone replaces the whole path. A redirect
keeps the request's scheme, host and port unless given; a scheme given without a port drops the port.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ..config.errors import ConfigError
from ..http.reply import Reply, status_text
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "go_path_join"]

_SAFE_PATH = "/:@!$&'()*+,;=-._~%"


def _pairs(value: Any, field: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field} must be a map of header names to values")
    return tuple((str(k), str(v)) for k, v in value.items())


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _optional(config: Config, key: str) -> str | None:
    value = config.get(key)
    return None if value is None else str(value)


def go_path_join(*elems: str) -> str:
    """Go's path.Join: the non-empty elements joined by '/', then cleaned ("" when all are empty)."""
    joined = "/".join(e for e in elems if e)
    if not joined:
        return ""
    rooted = joined.startswith("/")
    out: list[str] = []
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    text = "/".join(out)
    return ("/" + text) if rooted else (text or ".")


def _replaced_path(current: str, path: str | None, prefix: str | None) -> str:
    if path is None:
        return current
    if prefix is None:
        return path
    new = go_path_join(path, current.removeprefix(prefix))
    if current.endswith("/") and not new.endswith("/"):
        new += "/"
    return new


class _HeaderModifier(MiddlewareHandler):
    __slots__ = ("set", "add", "remove")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.set = _pairs(config.get("set"), "set")
        self.add = _pairs(config.get("add"), "add")
        self.remove = _names(config.get("remove"))


class RequestHeaderModifier(_HeaderModifier):
    __slots__ = ()

    def on_request(self, req: HttpRequest) -> Reply | None:
        for name, value in self.set:
            if name.lower() == "host":
                req.authority = value
            req.set_header(name, value)
        for name, value in self.add:
            req.add_header(name, value)
        for name in self.remove:
            req.del_header(name)
        return None


class ResponseHeaderModifier(_HeaderModifier):
    __slots__ = ()
    needs_response = True

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        for name, value in self.set:
            low = name.lower()
            headers[:] = [(k, v) for k, v in headers if k.lower() != low]
            headers.append((name, value))
        for name, value in self.add:
            headers.append((name, value))
        for name in self.remove:
            low = name.lower()
            headers[:] = [(k, v) for k, v in headers if k.lower() != low]
        return status


def _split_authority(authority: str) -> tuple[str, str]:
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[1:end], authority[end + 1:]
        return host, rest[1:] if rest.startswith(":") else ""
    if authority.count(":") == 1:
        host, port = authority.split(":", 1)
        return host, port
    return authority, ""


class RequestRedirect(MiddlewareHandler):
    __slots__ = ("scheme", "hostname", "port", "path", "path_prefix", "status")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.scheme = _optional(config, "scheme")
        self.hostname = _optional(config, "hostname")
        self.port = _optional(config, "port")
        self.path = _optional(config, "path")
        self.path_prefix = _optional(config, "pathPrefix")
        self.status = int(config.get("statusCode") or 302)
        if self.status not in (301, 302):
            raise ConfigError(f"unsupported status code: {self.status}")

    def on_request(self, req: HttpRequest) -> Reply | None:
        host, port = _split_authority(req.authority)
        if self.hostname is not None:
            host = self.hostname
        if self.port is not None:
            port = self.port
        hostport = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if port else host
        path = _replaced_path(req.path, self.path, self.path_prefix)
        raw = req.raw_path if path == req.path else quote(path, safe=_SAFE_PATH)
        location = f"{self.scheme or req.scheme}://{hostport}{raw}" + (f"?{req.query}" if req.query else "")
        return Reply(self.status, [("Location", location), ("Content-Type", "text/plain; charset=utf-8")],
                     status_text(self.status).encode())


class URLRewrite(MiddlewareHandler):
    __slots__ = ("hostname", "path", "path_prefix")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.hostname = _optional(config, "hostname")
        self.path = _optional(config, "path")
        self.path_prefix = _optional(config, "pathPrefix")

    def on_request(self, req: HttpRequest) -> Reply | None:
        path = _replaced_path(req.path, self.path, self.path_prefix)
        if path != req.path:
            req.set_path(quote(path, safe=_SAFE_PATH))
        if self.hostname is not None:
            req.authority = self.hostname
            req.set_header("Host", self.hostname)
        return None
