"""health [ADDRESS] { lameduck DURATION } — GET /health answers 200 OK while the process runs (O2)."""

from __future__ import annotations

import asyncio

from ..corefile import Directive
from ..httpd import split_hostport
from ..options import parse_duration
from ..plugin import BlockContext, Host, Plugin

__all__ = ["HealthPlugin"]


class HealthPlugin(Plugin):
    name = "health"
    in_chain = False

    def __init__(self, addr: tuple[str, int], lameduck: float) -> None:
        self.addr, self.lameduck = addr, lameduck

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> HealthPlugin:
        if len(d.args) > 1:
            raise d.error("health takes at most one address", cls.name)
        lameduck = 0.0
        for sub in d.block:
            if sub.name != "lameduck" or len(sub.args) != 1:
                raise sub.error(f"unknown property '{sub.name}'", cls.name)
            lameduck = parse_duration(sub.args[0], sub, cls.name)
        try:
            addr = split_hostport(d.args[0] if d.args else "", 8080)
        except ValueError as err:
            raise d.error(f"invalid address {d.args[0]!r}", cls.name) from err
        return cls(addr, lameduck)

    async def start(self, host: Host) -> None:
        host.http_route(self.addr, "/health", lambda: (200, "text/plain; charset=utf-8", "OK"))

    async def stop(self) -> None:
        if self.lameduck:
            await asyncio.sleep(self.lameduck)
