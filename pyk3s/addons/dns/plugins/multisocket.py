"""multisocket [NUM] — serve each listen address from NUM worker processes (SO_REUSEPORT).

CoreDNS opens NUM sockets on one port inside one process (default GOMAXPROCS); here each socket belongs
to its own worker process with its own event loop, index and cache (see workers.py). NUM defaults to
the number of CPUs this process may run on; 1..1024. The count is fixed at start-up: a reload that
changes it only logs.
"""

from __future__ import annotations

from ..corefile import Directive
from ..options import int_arg
from ..plugin import BlockContext, Plugin, Wants
from ..workers import MAX_WORKERS, cpu_count

__all__ = ["MultisocketPlugin"]


class MultisocketPlugin(Plugin):
    name = "multisocket"
    in_chain = False

    def __init__(self, num: int) -> None:
        self.num = num

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> MultisocketPlugin:
        if len(d.args) > 1 or d.block:
            raise d.error("multisocket takes at most one argument", cls.name)
        num = int_arg(d, cls.name, 1, MAX_WORKERS) if d.args else cpu_count()
        return cls(num)

    def wants(self) -> Wants:
        return Wants(workers=self.num)
