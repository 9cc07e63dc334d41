"""TCP middlewares (Traefik pkg/middlewares/tcp): they see a connection once, before its first byte is
relayed (and before a TLS handshake the router terminates), and either let it through or close it.

    inFlightConn: {amount: N}          at most N open connections per client IP (counted per worker process)
    ipAllowList:  {sourceRange: [...]} only clients in these IPs / CIDRs (ipWhiteList: the old name)

``build_tcp_middleware(kind, config, name)`` validates once (empty or invalid ``sourceRange`` is an
error, as in Traefik) and returns a :class:`TCPMiddlewareHandler`; TCP_MIDDLEWARES is the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..config.errors import ConfigError, RuleError
from ..rules.matchers_v3 import ip_matcher

__all__ = ["TCPMiddlewareHandler", "InFlightConn", "IPAllowListTCP", "TCP_MIDDLEWARES", "build_tcp_middleware"]


class TCPMiddlewareHandler:
    """``admit(peer)`` says whether a new connection from ``peer`` goes on; ``release(peer)`` is called
    once for every admitted connection when it ends."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def admit(self, peer: str) -> bool:
        raise NotImplementedError

    def release(self, peer: str) -> None:
        return None


class InFlightConn(TCPMiddlewareHandler):
    __slots__ = ("amount", "open")

    def __init__(self, name: str, amount: int) -> None:
        super().__init__(name)
        self.amount = amount
        self.open: dict[str, int] = {}

    def admit(self, peer: str) -> bool:
        count = self.open.get(peer, 0)
        if count >= self.amount:
            return False
        self.open[peer] = count + 1
        return True

    def release(self, peer: str) -> None:
        count = self.open.get(peer, 0)
        if count <= 1:
            self.open.pop(peer, None)
        else:
            self.open[peer] = count - 1


class IPAllowListTCP(TCPMiddlewareHandler):
    __slots__ = ("checks",)

    def __init__(self, name: str, checks: list[Callable[[str], bool]]) -> None:
        super().__init__(name)
        self.checks = checks

    def admit(self, peer: str) -> bool:
        return any(check(peer) for check in self.checks)


def _only(name: str, kind: str, config: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigError(f"ingress: middleware {name}: {kind}: unknown field(s) {', '.join(unknown)}")


def _in_flight(name: str, config: Mapping[str, Any]) -> TCPMiddlewareHandler:
    _only(name, "inFlightConn", config, {"amount"})
    amount = config.get("amount", 0)
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ConfigError(f"ingress: middleware {name}: inFlightConn.amount must be a non-negative integer, got {amount!r}")
    return InFlightConn(name, amount)


def _allow_list(kind: str, label: str) -> Callable[[str, Mapping[str, Any]], TCPMiddlewareHandler]:
    def build(name: str, config: Mapping[str, Any]) -> TCPMiddlewareHandler:
        _only(name, kind, config, {"sourceRange"})
        ranges = list(config.get("sourceRange") or ())
        if not ranges:
            raise ConfigError(f"ingress: middleware {name}: sourceRange is empty, {label} not created")
        try:
            checks = [ip_matcher(str(r), f"middleware {name}") for r in ranges]
        except RuleError as err:
            raise ConfigError(f"ingress: middleware {name}: cannot parse CIDRs {ranges}: {err}") from None
        return IPAllowListTCP(name, checks)

    return build


TCP_MIDDLEWARES: dict[str, Callable[[str, Mapping[str, Any]], TCPMiddlewareHandler]] = {
    "inFlightConn": _in_flight,
    "ipAllowList": _allow_list("ipAllowList", "IPAllowLister"),
    "ipWhiteList": _allow_list("ipWhiteList", "IPWhiteLister"),
}


def build_tcp_middleware(kind: str, config: Mapping[str, Any], name: str) -> TCPMiddlewareHandler:
    builder = TCP_MIDDLEWARES.get(kind)
    if builder is None:
        raise ConfigError(f"ingress: middleware {name}: invalid middleware {name!r} configuration: invalid middleware "
                          "type or middleware does not exist")
    return builder(name, config)
