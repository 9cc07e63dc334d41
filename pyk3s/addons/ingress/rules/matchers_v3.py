"""v3 matchers (spec §1.3): each builder validates its arguments once and returns a closure.

    Host(`h`) HostRegexp(`re`) Path(`/p`) PathPrefix(`/p`) PathRegexp(`re`) Method(`GET`)
    Header(`k`,`v`) HeaderRegexp(`k`,`re`) Query(`k`[,`v`]) QueryRegexp(`k`[,`re`]) ClientIP(`ip|cidr`)

Every v3 matcher takes a fixed number of arguments (Query/QueryRegexp: 1 or 2).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from ..config.errors import RuleError
from .parser import spellings

__all__ = ["V3_MATCHERS", "Matcher", "compile_regexp", "ip_matcher", "peer_address"]

Matcher = Callable[[object], bool]


def compile_regexp(pattern: str, where: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern with Python's engine (named groups spelled (?P<n>) in both)."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise RuleError(f"{where}: invalid regexp {pattern!r}: {err}") from None


def _count(name: str, args: tuple[str, ...], *allowed: int) -> None:
    if len(args) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise RuleError(f"unexpected number of parameters; got {len(args)}, expected {want} (matcher {name})")


def _ascii(name: str, value: str) -> None:
    if not value.isascii():
        raise RuleError(f"{name}: non-ASCII characters are not allowed in {value!r} (use punycode)")


def peer_address(peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def ip_matcher(value: str, where: str) -> Callable[[str], bool]:
    """ClientIP / ipAllowList entry: an address or a CIDR; IPv4-mapped IPv6 compares as IPv4."""
    v = value.strip()
    if re.search(r"(^|\.)0\d", v.split("/")[0]) and ":" not in v:
        raise RuleError(f"{where}: invalid IP or CIDR {value!r}")
    try:
        net = ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise RuleError(f"{where}: invalid IP or CIDR {value!r}") from None
    if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None and net.prefixlen >= 96:
        net = ipaddress.ip_network(f"{net.network_address.ipv4_mapped}/{net.prefixlen - 96}")

    def contains(peer: str) -> bool:
        addr = peer_address(peer)
        return addr is not None and addr.version == net.version and addr in net

    return contains


def host(args: tuple[str, ...]) -> Matcher:
    _count("Host", args, 1)
    _ascii("Host", args[0])
    want = args[0].lower().rstrip(".")
    if want == "*":
        return lambda r: True
    if want.startswith("*."):
        suffix = want[1:]

        def wildcard(r: object) -> bool:
            h: str = r.host.rstrip(".")  # type: ignore[attr-defined]
            return h.endswith(suffix) and len(h) > len(suffix) and "." not in h[: -len(suffix)]

        return wildcard

    def exact(r: object) -> bool:
        h: str = r.host  # type: ignore[attr-defined]
        return h == want or (h.endswith(".") and h.rstrip(".") == want)

    return exact


def host_regexp(args: tuple[str, ...]) -> Matcher:
    _count("HostRegexp", args, 1)
    _ascii("HostRegexp", args[0])
    search = compile_regexp(args[0], "HostRegexp").search
    return lambda r: search(r.host) is not None  # type: ignore[attr-defined]


def _leading_slash(name: str, value: str) -> None:
    if not value.startswith("/"):
        raise RuleError(f"{name}: path {value!r} does not start with a '/'")


def path(args: tuple[str, ...]) -> Matcher:
    _count("Path", args, 1)
    _leading_slash("Path", args[0])
    want = args[0]
    return lambda r: r.path == want  # type: ignore[attr-defined]


def path_prefix(args: tuple[str, ...]) -> Matcher:
    _count("PathPrefix", args, 1)
    _leading_slash("PathPrefix", args[0])
    want = args[0]
    return lambda r: r.path.startswith(want)  # type: ignore[attr-defined]


def path_regexp(args: tuple[str, ...]) -> Matcher:
    _count("PathRegexp", args, 1)
    search = compile_regexp(args[0], "PathRegexp").search
    return lambda r: search(r.path) is not None  # type: ignore[attr-defined]


def method(args: tuple[str, ...]) -> Matcher:
    _count("Method", args, 1)
    want = args[0].upper()
    return lambda r: r.method == want  # type: ignore[attr-defined]


def header(args: tuple[str, ...]) -> Matcher:
    _count("Header", args, 2)
    key, want = args[0].lower(), args[1]
    return lambda r: want in r.header_values(key)  # type: ignore[attr-defined]


def header_regexp(args: tuple[str, ...]) -> Matcher:
    _count("HeaderRegexp", args, 2)
    key, search = args[0].lower(), compile_regexp(args[1], "HeaderRegexp").search
    return lambda r: any(search(v) for v in r.header_values(key))  # type: ignore[attr-defined]


def query(args: tuple[str, ...]) -> Matcher:
    _count("Query", args, 1, 2)
    key = args[0]
    want = args[1] if len(args) == 2 else ""
    return lambda r: want in r.query_map().get(key, ())  # type: ignore[attr-defined]


def query_regexp(args: tuple[str, ...]) -> Matcher:
    _count("QueryRegexp", args, 1, 2)
    if len(args) == 1:
        return query(args)
    key, search = args[0], compile_regexp(args[1], "QueryRegexp").search
    return lambda r: any(search(v) for v in r.query_map().get(key, ()))  # type: ignore[attr-defined]


def client_ip(args: tuple[str, ...]) -> Matcher:
    _count("ClientIP", args, 1)
    contains = ip_matcher(args[0], "ClientIP")
    return lambda r: contains(r.peer)  # type: ignore[attr-defined]


_CANONICAL: dict[str, Callable[[tuple[str, ...]], Matcher]] = {
    "Host": host, "HostRegexp": host_regexp, "Path": path, "PathPrefix": path_prefix,
    "PathRegexp": path_regexp, "Method": method, "Header": header, "HeaderRegexp": header_regexp,
    "Query": query, "QueryRegexp": query_regexp, "ClientIP": client_ip,
}

# name as written -> (canonical name, builder)
V3_MATCHERS: dict[str, tuple[str, Callable[[tuple[str, ...]], Matcher]]] = {
    spelling: (canon, build) for canon, build in _CANONICAL.items() for spelling in spellings(canon)
}
