"""ready [ADDRESS] — GET /ready is 200 OK once every plugin that reports readiness is ready (O3)."""

from __future__ import annotations

from ..corefile import Directive
from ..httpd import split_hostport
from ..plugin import BlockContext, Host, Plugin

__all__ = ["ReadyPlugin"]


class ReadyPlugin(Plugin):
    name = "ready"
    in_chain = False

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.was_ready = False

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ReadyPlugin:
        if len(d.args) > 1 or d.block:
            raise d.error("ready takes at most one address", cls.name)
        return cls(split_hostport(d.args[0] if d.args else "", 8181))

    async def start(self, host: Host) -> None:
        def route() -> tuple[int, str, str]:
            if host.lameduck:
                return 503, "text/plain", "lameduck"
            waiting = sorted(host.not_ready())
            if waiting and not self.was_ready:
                return 503, "text/plain", ",".join(waiting)
            self.was_ready = True
            return 200, "text/plain; charset=utf-8", "OK"
        host.http_route(self.addr, "/ready", route)
