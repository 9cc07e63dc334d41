"""Whether Go's ``url.Parse`` accepts a URL, and its error when not.

redirectRegex builds its target with a regexp and Traefik parses the result with Go's ``url.Parse``; a
target Go refuses is answered 502 (the error handler maps ``*url.Error``, a ``net.Error``, to Bad
Gateway). This module repeats the checks ``url.Parse`` makes (net/url/url.go: parse, getScheme,
parseAuthority, parseHost, validOptionalPort, unescape, shouldEscape), with Go's messages.
"""

from __future__ import annotations

__all__ = ["go_url_error"]

_HEX = "0123456789abcdefABCDEF"
_ALNUM = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# characters a host may hold unescaped (shouldEscape in encodeHost mode returns false for these)
_HOST_OK = _ALNUM | set("-_.~!$&'()*+,;=:[]<>\"")
_USERINFO_OK = _ALNUM | set("-._:~!$&'()*+,;=%@")


def go_url_error(raw: str) -> str | None:
    """None when Go's url.Parse accepts ``raw``, else its error text."""
    why = _parse(raw)
    return None if why is None else f'parse "{raw}": {why}'


def _parse(raw: str) -> str | None:
    rest, _, frag = raw.partition("#")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return "net/url: invalid control character in URL"
    if rest == "*":
        return None
    scheme = ""
    for i, c in enumerate(rest):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                break
            continue
        if c == ":":
            if i == 0:
                return "missing protocol scheme"
            scheme, rest = rest[:i], rest[i + 1:]
        break
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return _unescape(frag, "fragment")          # opaque: not checked further
        first = rest.partition("/")[0]
        if ":" in first:
            return "first path segment in URL cannot contain colon"
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        why = _authority(authority)
        if why:
            return why
    return _unescape(rest, "path") or _unescape(frag, "fragment")


def _authority(authority: str) -> str | None:
    at = authority.rfind("@")
    host = authority[at + 1:]
    why = _host(host)
    if why:
        return why
    if at >= 0:
        userinfo = authority[:at]
        if any(c not in _USERINFO_OK for c in userinfo if c.isascii()):
            return "net/url: invalid userinfo"
        return _unescape(userinfo, "userinfo")
    return None


def _valid_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and port[1:].isascii() and (port[1:] == "" or port[1:].isdigit()))


def _host(host: str) -> str | None:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            return "missing ']' in host"
        port = host[i + 1:]
        if not _valid_port(port):
            return f'invalid port "{port}" after host'
        return _unescape(host[:i + 1], "host")
    i = host.rfind(":")
    if i >= 0:
        port = host[i:]
        if not _valid_port(port):
            return f'invalid port "{port}" after host'
    return _unescape(host, "host")


def _unescape(s: str, mode: str) -> str | None:
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            esc = s[i:i + 3]
            if len(esc) < 3 or esc[1] not in _HEX or esc[2] not in _HEX:
                return f'invalid URL escape "{esc}"'
            # in a host, %-encoding is only for non-ASCII bytes (RFC 3986 3.2.2); %25 is the exception
            if mode == "host" and int(esc[1], 16) < 8 and esc != "%25":
                return f'invalid URL escape "{esc}"'
            i += 3
            continue
        if mode == "host" and c.isascii() and c not in _HOST_OK:
            return f'invalid character "{c}" in host name'
        i += 1
    return None
