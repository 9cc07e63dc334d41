"""log [NAMES...] [FORMAT] — one line per query in CoreDNS's common log format."""

from __future__ import annotations

import logging
import time

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin

__all__ = ["LogPlugin"]

log = logging.getLogger("pyk3s.dns.log")


class LogPlugin(Plugin):
    name = "log"
    fast_safe = False

    def __init__(self, names: tuple[str, ...] = ()) -> None:
        self.names = names

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> LogPlugin:
        for sub in d.block:
            if sub.name != "class":
                raise sub.error(f"unknown property '{sub.name}'", cls.name)
        names = tuple(a.lower() if a.endswith(".") else a.lower() + "." for a in d.args if "{" not in a)
        return cls(names)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        start = time.perf_counter()
        reply = await next_(req)
        if req.precompute or (self.names and not any(
                req.name == n or req.name.endswith("." + n) or n == "." for n in self.names)):
            return reply
        addr = req.addr if isinstance(req.addr, tuple) else ("-", 0)
        flags = dns.flags.to_text(reply.flags).lower().replace(" ", ",")
        log.info('[INFO] %s:%s - %d "%s IN %s %s %d %s %d" %s %s %d %.9fs', addr[0], addr[1], req.query.id,
                 dns.rdatatype.to_text(req.qtype), req.qname.to_text(), req.proto, 0,
                 "true" if req.query.ednsflags & dns.flags.DO else "false", req.query.payload,
                 dns.rcode.to_text(reply.rcode()), flags, 0, time.perf_counter() - start)
        return reply
