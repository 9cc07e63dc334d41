"""bind ADDRESS... [{ except ADDRESS... }] — the addresses this server block listens on."""

from __future__ import annotations

import ipaddress

from ..corefile import Directive
from ..plugin import BlockContext, Plugin, Wants

__all__ = ["BindPlugin"]


class BindPlugin(Plugin):
    name = "bind"
    in_chain = False
    once_per_block = False

    def __init__(self, addrs: tuple[str, ...], excluded: tuple[str, ...] = ()) -> None:
        self.addrs, self.excluded = addrs, excluded

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> BindPlugin:
        if not d.args:
            raise d.error("bind needs at least one address", cls.name)
        for a in d.args:
            try:
                ipaddress.ip_address(a)
            except ValueError as err:
                raise d.error(f"not a valid IP address: {a!r} (interface names are not supported)",
                              cls.name) from err
        excluded: list[str] = []
        for sub in d.block:
            if sub.name != "except":
                raise sub.error(f"unknown property '{sub.name}'", cls.name)
            excluded.extend(sub.args)
        return cls(tuple(a for a in d.args if a not in excluded), tuple(excluded))

    def wants(self) -> Wants:
        return Wants(listen=self.addrs)
