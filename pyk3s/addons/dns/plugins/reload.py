"""reload [INTERVAL] [JITTER] — re-read the Corefile (imports expanded) and swap if it changed (O11).

Defaults 30s and 15s; interval >= 2s, jitter >= 1s and at most half the interval. A Corefile that no
longer parses is logged, counted in coredns_reload_failed_total, and the running config keeps serving.
"""

from __future__ import annotations

from ..corefile import Directive
from ..options import parse_duration
from ..plugin import BlockContext, Plugin, Wants

__all__ = ["ReloadPlugin"]


class ReloadPlugin(Plugin):
    name = "reload"
    in_chain = False

    def __init__(self, interval: float = 30.0, jitter: float = 15.0) -> None:
        self.interval, self.jitter = interval, jitter

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ReloadPlugin:
        if len(d.args) > 2 or d.block:
            raise d.error("reload takes [INTERVAL] [JITTER]", cls.name)
        interval = parse_duration(d.args[0], d, cls.name) if d.args else 30.0
        jitter = parse_duration(d.args[1], d, cls.name) if len(d.args) > 1 else 15.0
        if interval < 2:
            raise d.error("interval value must be greater or equal to 2s", cls.name)
        if jitter < 1:
            raise d.error("jitter value must be greater or equal to 1s", cls.name)
        return cls(interval, min(jitter, interval / 2))

    def wants(self) -> Wants:
        return Wants(reload=(self.interval, self.jitter))
