"""Path rewriting middlewares (spec 5.3-5.6).

    stripPrefix:      {prefixes: ["/api"], forceSlash: false}   first matching prefix removed, X-Forwarded-Prefix added
    stripPrefixRegex: {regex: ["/api/[a-z]+"]}                  first regexp matching at the start removed
    addPrefix:        {prefix: "/v1"}
    replacePath:      {path: "/new"}                            original path in X-Replaced-Path
    replacePathRegex: {regex: "^/old/(.*)", replacement: "/new/$1"}

A stripped path that normalises to something else (dot segments) is answered 400 (5.3.3). Regexps are
Go's (RE2 syntax, Go's replacement expansion: goregexp.py); Traefik trims spaces around regex and
replacement, so an all-blank replacement is an empty one (the path becomes `/`).
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from ..config.errors import ConfigError
from ..config.goregexp import GoRegexpError, compile_go
from ..http.reply import Reply, text_error
from ..http.request import HttpRequest, routing_path
from .base import BuildContext, Config, MiddlewareHandler, need

__all__ = ["StripPrefix", "StripPrefixRegex", "AddPrefix", "ReplacePath", "ReplacePathRegex"]


def _raw_strip(raw: str, count: int) -> str:
    """Remove the first ``count`` decoded characters from an escaped path."""
    i = 0
    while count > 0 and i < len(raw):
        i += 3 if raw[i] == "%" else 1
        count -= 1
    return raw[i:]


def _finish_strip(req: HttpRequest, prefix: str, rest_path: str, rest_raw: str) -> Reply | None:
    path = rest_path if rest_path.startswith("/") else "/" + rest_path
    raw = rest_raw if rest_raw.startswith("/") else "/" + rest_raw
    if path != "/" and posixpath.normpath(path) + ("/" if path.endswith("/") else "") != path:
        return text_error(400)
    req.add_header("X-Forwarded-Prefix", prefix)
    req.raw_path = raw
    req.path = path
    return None


class StripPrefix(MiddlewareHandler):
    __slots__ = ("prefixes",)

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.prefixes = [str(p).strip() for p in config.get("prefixes") or ()]

    def on_request(self, req: HttpRequest) -> Reply | None:
        for prefix in self.prefixes:
            if prefix and req.path.startswith(prefix):
                return _finish_strip(req, prefix, req.path[len(prefix):], _raw_strip(req.raw_path, len(prefix)))
        return None


class StripPrefixRegex(MiddlewareHandler):
    __slots__ = ("regexps",)

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        try:
            self.regexps = [compile_go(str(r).strip()) for r in config.get("regex") or ()]
        except GoRegexpError as err:
            raise ConfigError(f"stripPrefixRegex: invalid regexp: {err}") from None

    def on_request(self, req: HttpRequest) -> Reply | None:
        for rx in self.regexps:
            prefix = rx.prefix(req.path)
            if prefix is not None:
                return _finish_strip(req, prefix, req.path[len(prefix):], _raw_strip(req.raw_path, len(prefix)))
        return None


class AddPrefix(MiddlewareHandler):
    __slots__ = ("prefix",)

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        prefix = str(need(config, "prefix", "addPrefix"))
        self.prefix = prefix if prefix.startswith("/") else "/" + prefix

    def on_request(self, req: HttpRequest) -> None:
        req.path = self.prefix + req.path
        req.raw_path = self.prefix + req.raw_path


class ReplacePath(MiddlewareHandler):
    __slots__ = ("path",)

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        self.path = str(config.get("path", ""))

    def on_request(self, req: HttpRequest) -> None:
        req.add_header("X-Replaced-Path", req.raw_path)
        req.path = self.path
        req.raw_path = quote(self.path, safe="/:@!$&'()*+,;=-._~%")


class ReplacePathRegex(MiddlewareHandler):
    __slots__ = ("regex", "replacement")

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        try:
            self.regex = compile_go(str(config.get("regex", "")).strip())
        except GoRegexpError as err:
            raise ConfigError(f"replacePathRegex: invalid regexp {config.get('regex')!r}: {err}") from None
        self.replacement = str(config.get("replacement", "")).strip()

    def on_request(self, req: HttpRequest) -> Reply | None:
        if self.regex.search(req.path) is None:
            return None
        new = self.regex.replace_all(req.path, self.replacement) or "/"   # an empty path goes out as /
        req.add_header("X-Replaced-Path", req.raw_path)
        if "%" in new:
            try:
                routing_path(new)
            except ValueError:
                return text_error(400)
        req.path = new
        req.raw_path = quote(new, safe="/:@!$&'()*+,;=-._~%")
        return None
