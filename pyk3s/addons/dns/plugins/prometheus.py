"""prometheus [ADDRESS] — /metrics with CoreDNS's metric names (O6); default localhost:9153."""

from __future__ import annotations

from ..corefile import Directive
from ..httpd import split_hostport
from ..plugin import BlockContext, Host, Plugin, Wants

__all__ = ["PrometheusPlugin"]


class PrometheusPlugin(Plugin):
    name = "prometheus"
    in_chain = False

    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> PrometheusPlugin:
        if len(d.args) > 1 or d.block:
            raise d.error("prometheus takes at most one address", cls.name)
        host, port = split_hostport(d.args[0] if d.args else "localhost:9153", 9153)
        return cls((host, port))

    def wants(self) -> Wants:
        return Wants(metrics=True)

    async def start(self, host: Host) -> None:
        metrics = host.metrics
        host.http_route(self.addr, "/metrics",
                        lambda: (200, "text/plain; version=0.0.4; charset=utf-8", metrics.render()))
