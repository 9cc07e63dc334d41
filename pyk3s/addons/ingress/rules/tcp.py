"""TCP router rules (Traefik pkg/muxer/tcp): what a connection is matched on before a byte is relayed.

    v3: HostSNI(`example.com`) HostSNI(`*.example.com`) HostSNI(`*`) HostSNIRegexp(`^.+\\.example\\.com$`)
        ClientIP(`10.0.0.0/8`) ALPN(`h2`)               -- exactly one argument each
    v2: HostSNI(`a`, `b`) HostSNIRegexp(`{sub:[a-z]+}.example.com`) ClientIP(`ip`, `cidr`) ALPN(`h2`, `mqtt`)

Rules combine with ``&&``, ``||``, ``!`` and parentheses (the grammar of ``parser.py``). A connection
is described by :class:`ConnInfo`: the ClientHello's server name (lower-cased, "" without TLS or SNI),
the client address and the ALPN protocols offered.

- ``HostSNI(`*`)`` matches every connection, with or without TLS; a rule that is exactly that is the
  *catch-all*: its default priority is -1 (below every other rule) and an HTTPS router for a
  specific host still wins over it. Otherwise the default priority is the rule's length in bytes.
- v3 ``HostSNI`` compares case-insensitively, ignores a trailing dot in the rule, and accepts one
  leading ``*.`` label (exactly one label: ``*.example.com`` matches ``a.example.com`` only);
  a connection without a server name never matches it. v3 ``HostSNIRegexp`` is an unanchored Go
  regexp on the server name; v2's is a gorilla/mux host template, anchored and case-insensitive.
- ``ALPN(`acme-tls/1`)`` is refused (it would take over ACME TLS challenges).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..config.errors import RuleError
from .matchers_v2 import template_regexp
from .matchers_v3 import compile_regexp, ip_matcher
from .parser import And, Call, Node, Not, parse_expression, spellings

__all__ = ["ConnInfo", "CompiledTCPRule", "TCPMatcher", "conn_info", "parse_tcp_rule", "tcp_rule_priority",
           "host_sni_domains", "http_rule_domains", "ACME_TLS"]

ACME_TLS = "acme-tls/1"


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """What TCP rules look at: server name (canonical), client address, ALPN protocols offered."""

    server_name: str = ""
    peer: str = ""
    alpn: tuple[str, ...] = ()


def conn_info(server_name: str, peer: str, alpn: tuple[str, ...] = ()) -> ConnInfo:
    """A :class:`ConnInfo` with the server name made canonical (lower case, spaces trimmed), as Traefik's
    NewConnData does; RFC 6066 already forbids a trailing dot in SNI, so none is removed."""
    return ConnInfo(server_name.strip().lower(), peer, alpn)


TCPMatcher = Callable[[ConnInfo], bool]


@dataclass(frozen=True, slots=True)
class CompiledTCPRule:
    rule: str
    syntax: str
    match: TCPMatcher
    catch_all: bool  # the rule is exactly HostSNI(`*`)
    leaves: tuple[tuple[str, TCPMatcher], ...]

    def explain(self, info: ConnInfo) -> list[tuple[str, bool]]:
        return [(text, bool(fn(info))) for text, fn in self.leaves]


_HOST_OR_IP_V3 = re.compile(r"^(\*\.)?[0-9A-Za-z_.\-:]+$")
_HOST_OR_IP_V2 = re.compile(r"^[0-9A-Za-z_.\-:]+$")


def _one(name: str, args: tuple[str, ...]) -> str:
    if len(args) != 1:
        raise RuleError(f"unexpected number of parameters; got {len(args)}, expected 1 (matcher {name})")
    return args[0]


# ------------------------------------------------------------------------------------------------ v3
def _host_sni(args: tuple[str, ...]) -> TCPMatcher:
    expr = _one("HostSNI", args)
    if expr == "*":
        return lambda c: True
    if not _HOST_OR_IP_V3.match(expr):
        raise RuleError(f"invalid value for HostSNI matcher, {expr!r} is not a valid hostname")
    want = expr.removesuffix(".").lower()
    if want.startswith("*."):
        suffix = want[1:]

        def wildcard(c: ConnInfo) -> bool:
            name = c.server_name
            first, dot, _ = name.partition(".")
            return bool(name) and bool(dot) and name[len(first):] == suffix

        return wildcard
    return lambda c: c.server_name != "" and c.server_name == want


def _host_sni_regexp(args: tuple[str, ...]) -> TCPMatcher:
    pattern = _one("HostSNIRegexp", args)
    if not pattern.isascii():
        raise RuleError(f"invalid value for HostSNIRegexp matcher, {pattern!r} is not a valid hostname")
    search = compile_regexp(pattern, "HostSNIRegexp").search
    return lambda c: search(c.server_name) is not None


def _client_ip(args: tuple[str, ...]) -> TCPMatcher:
    contains = ip_matcher(_one("ClientIP", args), "ClientIP")
    return lambda c: contains(c.peer)


def _no_acme(protos: tuple[str, ...]) -> None:
    for proto in protos:
        if proto == ACME_TLS:
            raise RuleError(f"invalid protocol value for ALPN matcher, {proto!r} is not allowed")


def _alpn(args: tuple[str, ...]) -> TCPMatcher:
    proto = _one("ALPN", args)
    _no_acme(args)
    return lambda c: proto in c.alpn


# ------------------------------------------------------------------------------------------------ v2
def _host_sni_v2(args: tuple[str, ...]) -> TCPMatcher:
    hosts: list[str] = []
    for host in args:
        if host != "*" and not _HOST_OR_IP_V2.match(host):
            raise RuleError(f'invalid value for "HostSNI" matcher, {host!r} is not a valid hostname or IP')
        hosts.append(host.lower())
    if hosts[0] == "*":
        return lambda c: True
    wanted = frozenset(hosts) | frozenset(h.removesuffix(".") for h in hosts)
    anything = "*" in wanted
    return lambda c: c.server_name != "" and (anything or c.server_name in wanted)


def _host_sni_regexp_v2(args: tuple[str, ...]) -> TCPMatcher:
    matchers = [template_regexp(a, "host").match for a in args]
    return lambda c: any(m(c.server_name) for m in matchers)


def _client_ip_v2(args: tuple[str, ...]) -> TCPMatcher:
    checks = [ip_matcher(a, "ClientIP") for a in args]
    return lambda c: c.peer != "" and any(check(c.peer) for check in checks)


def _alpn_v2(args: tuple[str, ...]) -> TCPMatcher:
    _no_acme(args)
    protos = frozenset(args)
    return lambda c: any(p in protos for p in c.alpn)


Builder = Callable[[tuple[str, ...]], TCPMatcher]
_V3: dict[str, Builder] = {"HostSNI": _host_sni, "HostSNIRegexp": _host_sni_regexp, "ClientIP": _client_ip,
                           "ALPN": _alpn}
_V2: dict[str, Builder] = {"HostSNI": _host_sni_v2, "HostSNIRegexp": _host_sni_regexp_v2,
                           "ClientIP": _client_ip_v2, "ALPN": _alpn_v2}


def _table(builders: dict[str, Builder]) -> dict[str, tuple[str, Builder]]:
    return {s: (canon, fn) for canon, fn in builders.items() for s in spellings(canon)}


V3_TCP_MATCHERS = _table(_V3)
V2_TCP_MATCHERS = _table(_V2)


def _build(node: Node, table: dict[str, tuple[str, Builder]], leaves: list[tuple[str, TCPMatcher]]) -> TCPMatcher:
    if isinstance(node, Call):
        entry = table.get(node.name)
        if entry is None:
            raise RuleError(f"unsupported function: {node.name}")
        fn = entry[1](node.args)
        leaves.append((f"{node.name}(" + ", ".join(f"`{a}`" for a in node.args) + ")", fn))
        return fn
    if isinstance(node, Not):
        inner = _build(node.inner, table, leaves)
        return lambda c: not inner(c)
    left = _build(node.left, table, leaves)
    right = _build(node.right, table, leaves)
    if isinstance(node, And):
        return lambda c: left(c) and right(c)
    return lambda c: left(c) or right(c)


def _is_catch_all(node: Node) -> bool:
    """Exactly one HostSNI(`*`) leaf (a ``!`` in front still counts, as in Traefik's tree)."""
    while isinstance(node, Not):
        node = node.inner
    return isinstance(node, Call) and node.name.lower() == "hostsni" and node.args == ("*",)


def parse_tcp_rule(rule: str, syntax: str = "v3") -> CompiledTCPRule:
    """Parse and compile a TCP rule; :class:`RuleError` names the problem."""
    table = V2_TCP_MATCHERS if syntax == "v2" else V3_TCP_MATCHERS
    tree = parse_expression(rule)
    leaves: list[tuple[str, TCPMatcher]] = []
    match = _build(tree, table, leaves)
    return CompiledTCPRule(rule, "v2" if syntax == "v2" else "v3", match, _is_catch_all(tree), tuple(leaves))


def tcp_rule_priority(rule: str) -> int:
    """Traefik's default priority of a TCP rule: -1 for exactly HostSNI(`*`), else the length in bytes."""
    try:
        tree = parse_expression(rule, lenient=True)
    except RuleError:
        return len(rule.encode())
    if isinstance(tree, Call) and tree.name in spellings("HostSNI") and tree.args == ("*",):
        return -1
    return len(rule.encode())


def _values(node: Node, names: frozenset[str], known: frozenset[str]) -> list[str]:
    if isinstance(node, Call):
        if node.name not in known:
            raise RuleError(f"unsupported function: {node.name}")
        return [a.lower() for a in node.args] if node.name in names else []
    if isinstance(node, Not):
        return _values(node.inner, names, known)
    return _values(node.left, names, known) + _values(node.right, names, known)


_TCP_NAMES = frozenset(V3_TCP_MATCHERS) | frozenset(V2_TCP_MATCHERS)


def host_sni_domains(rule: str) -> list[str]:
    """The HostSNI values of a rule, lower-cased, in order (Traefik's ParseHostSNI): used to refuse
    HostSNI on a router without TLS."""
    return _values(parse_expression(rule, lenient=True), frozenset(spellings("HostSNI")), _TCP_NAMES)


def http_rule_domains(rule: str, http_names: frozenset[str]) -> list[str]:
    """The Host values of an HTTP rule (Traefik's ParseDomains): an HTTPS router for one of these server
    names takes a TLS connection before a TCP router does. ``http_names`` are the HTTP matcher spellings."""
    return _values(parse_expression(rule, lenient=True), frozenset(spellings("Host")), http_names)
