"""v2 matchers (spec §1.4), used by Traefik v2 and by v3 routers with ``ruleSyntax: v2``.

    Host(`a`,`b`) HostHeader(...) HostRegexp(`{sub:[a-z]+}.example.com`,...) Path(`/a`,`/b/{id}`)
    PathPrefix(...) Method(`GET`,`POST`) Headers(`k`,`v`) HeadersRegexp(`k`,`re`) Query(`k=v`,...)
    ClientIP(`ip`,`cidr`,...)

Multi-argument forms are an OR of the arguments, except Query (AND). Path, PathPrefix, HostRegexp and
Query values are gorilla/mux templates: literal text is escaped, ``{name}`` / ``{name:re}`` are regexps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import unquote_plus

from ..config.errors import RuleError
from .matchers_v3 import Matcher, compile_regexp, ip_matcher
from .parser import spellings

__all__ = ["V2_MATCHERS", "template_regexp"]


def _brace_indices(tpl: str) -> list[int]:
    level, idx, out = 0, 0, []
    for i, c in enumerate(tpl):
        if c == "{":
            level += 1
            if level == 1:
                idx = i
        elif c == "}":
            level -= 1
            if level == 0:
                out += [idx, i + 1]
            elif level < 0:
                raise RuleError(f"mux: unbalanced braces in {tpl!r}")
    if level != 0:
        raise RuleError(f"mux: unbalanced braces in {tpl!r}")
    return out


def template_regexp(tpl: str, kind: str) -> re.Pattern[str]:
    """gorilla/mux template -> anchored regexp; kind is "host", "path", "prefix" or "query"."""
    default = {"host": "[^.]+", "query": ".*"}.get(kind, "[^/]+")
    idxs = _brace_indices(tpl)
    parts = ["^"]
    end = 0
    for i in range(0, len(idxs), 2):
        parts.append(re.escape(tpl[end : idxs[i]]))
        end = idxs[i + 1]
        name, _, patt = tpl[idxs[i] + 1 : end - 1].partition(":")
        if not name or (":" in tpl[idxs[i] + 1 : end - 1] and not patt):
            raise RuleError(f"mux: missing name or pattern in {tpl[idxs[i]:end]!r}")
        parts.append("(" + (patt or default) + ")")
    parts.append(re.escape(tpl[end:]))
    if kind == "query" and tpl.endswith("=") and not idxs:
        parts.append(default)
    if kind != "prefix":
        parts.append("$")
    flags = re.IGNORECASE if kind == "host" else 0
    try:
        return re.compile("".join(parts), flags)
    except re.error as err:
        raise RuleError(f"mux: invalid pattern in {tpl!r}: {err}") from None


def _any(fns: list[Matcher]) -> Matcher:
    if len(fns) == 1:
        return fns[0]
    return lambda r: any(f(r) for f in fns)


def _ascii_only(args: tuple[str, ...], matcher: str) -> None:
    """Traefik refuses non-ASCII hosts in v2 rules too (punycode must be used); its messages."""
    for a in args:
        if not a.isascii():
            raise RuleError(f"invalid value {json.dumps(a, ensure_ascii=False)} for {matcher} matcher, "
                            "non-ASCII characters are not allowed")


def host(args: tuple[str, ...]) -> Matcher:
    _ascii_only(args, '"Host"')
    wants = frozenset(a.lower().rstrip(".") for a in args)
    return lambda r: r.host.rstrip(".") in wants  # type: ignore[attr-defined]


def host_regexp(args: tuple[str, ...]) -> Matcher:
    _ascii_only(args, "HostRegexp")
    rxs = [template_regexp(a, "host").match for a in args]
    return lambda r: any(m(r.host) for m in rxs)  # type: ignore[attr-defined]


def _template_path(match: Callable[[str], object]) -> Matcher:
    return lambda r: match(r.path) is not None  # type: ignore[attr-defined]


def _path(kind: str) -> Callable[[tuple[str, ...]], Matcher]:
    def build(args: tuple[str, ...]) -> Matcher:
        fns: list[Matcher] = []
        for a in args:
            if not a.startswith("/"):
                raise RuleError(f"{'PathPrefix' if kind == 'prefix' else 'Path'}: path {a!r} does not start with a '/'")
            if "{" not in a and "}" not in a:
                fns.append((lambda w: lambda r: r.path == w)(a) if kind == "path"
                           else (lambda w: lambda r: r.path.startswith(w))(a))
            else:
                fns.append(_template_path(template_regexp(a, kind).match))
        return _any(fns)

    return build


def method(args: tuple[str, ...]) -> Matcher:
    wants = frozenset(a.upper() for a in args)
    return lambda r: r.method in wants  # type: ignore[attr-defined]


def headers(args: tuple[str, ...]) -> Matcher:
    if len(args) != 2:
        raise RuleError(f"Headers: unexpected number of parameters; got {len(args)}, expected 2")
    key, want = args[0].lower(), args[1]
    return lambda r: want in r.header_values(key)  # type: ignore[attr-defined]


def headers_regexp(args: tuple[str, ...]) -> Matcher:
    if len(args) != 2:
        raise RuleError(f"HeadersRegexp: unexpected number of parameters; got {len(args)}, expected 2")
    key, search = args[0].lower(), compile_regexp(args[1], "HeadersRegexp").search
    return lambda r: any(search(v) for v in r.header_values(key))  # type: ignore[attr-defined]


def _first_query_value(query: str, key: str) -> str | None:
    for part in query.split("&"):
        k, sep, v = part.partition("=")
        try:
            if unquote_plus(k) == key:
                return unquote_plus(v)
        except Exception:  # noqa: BLE001 - undecodable pair is skipped
            continue
    return None


def query(args: tuple[str, ...]) -> Matcher:
    checks: list[tuple[str, Callable[[str], object]]] = []
    for a in args:
        if "=" not in a:
            raise RuleError(f"Query: {a!r} must be key=value")
        key = a.split("=", 1)[0]
        checks.append((key, template_regexp(a, "query").match))

    def match(r: object) -> bool:
        q: str = r.query  # type: ignore[attr-defined]
        for key, m in checks:
            v = _first_query_value(q, key)
            if v is None or not m(key + "=" + v):
                return False
        return True

    return match


def client_ip(args: tuple[str, ...]) -> Matcher:
    checks = [ip_matcher(a, "ClientIP") for a in args]
    return lambda r: any(c(r.peer) for c in checks)  # type: ignore[attr-defined]


_CANONICAL: dict[str, Callable[[tuple[str, ...]], Matcher]] = {
    "Host": host, "HostHeader": host, "HostRegexp": host_regexp, "Path": _path("path"),
    "PathPrefix": _path("prefix"), "Method": method, "Headers": headers, "HeadersRegexp": headers_regexp,
    "Query": query, "ClientIP": client_ip,
}

V2_MATCHERS: dict[str, tuple[str, Callable[[tuple[str, ...]], Matcher]]] = {
    spelling: (canon, build) for canon, build in _CANONICAL.items() for spelling in spellings(canon)
}
