"""multisocket [NUM] — serve each listen address from NUM worker processes (SO_REUSEPORT).

CoreDNS opens NUM sockets on one port inside one process (default GOMAXPROCS); here each socket belongs
to its own worker process with its own event loop, index and cache (see workers.py). NUM defaults to
the number of CPUs this process may run on; 1..1024. The count is fixed at start-up: a reload that
changes it only logs.
"""

from __future__ import annotations

import os

from ..corefile import Directive
from ..plugin import BlockContext, Plugin, int_arg

__all__ = ["MAX_WORKERS", "MultisocketPlugin", "cpu_count"]

MAX_WORKERS = 1024


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
