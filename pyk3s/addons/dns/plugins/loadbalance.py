"""loadbalance [round_robin] — rotates A, AAAA and MX records of NOERROR replies (spec dns.md O12).

CNAMEs stay first, other types keep their place.
"""

from __future__ import annotations

import itertools

import dns.message
import dns.rcode
import dns.rdatatype as T
import dns.rrset

from ..corefile import Directive
from ..plugin import BlockContext, Handler, Plugin, Request

__all__ = ["LoadbalancePlugin", "rotate"]

SHUFFLED = (T.A, T.AAAA, T.MX)


def rotate(rrsets: list[dns.rrset.RRset], shift: int) -> list[dns.rrset.RRset]:
    out = []
    for rr in rrsets:
        if rr.rdtype in SHUFFLED and len(rr) > 1:
            items = list(rr)
            k = shift % len(items)
            new = dns.rrset.RRset(rr.name, rr.rdclass, rr.rdtype)
            for rd in items[k:] + items[:k]:
                new.add(rd, rr.ttl)
            out.append(new)
        else:
            out.append(rr)
    return out


class LoadbalancePlugin(Plugin):
    name = "loadbalance"

    def __init__(self) -> None:
        self.counter = itertools.count()

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> LoadbalancePlugin:
        if d.args not in ((), ("round_robin",)) or d.block:
            raise d.error("unknown policy; only round_robin is supported", cls.name)
        return cls()

    async def serve(self, req: Request, next_: Handler) -> dns.message.Message:
        reply = await next_(req)
        if req.precompute or reply.rcode() != dns.rcode.NOERROR or req.qtype in (T.AXFR, T.IXFR):
            return reply
        shift = next(self.counter)
        reply.answer = rotate(reply.answer, shift)
        reply.additional = rotate(reply.additional, shift)
        return reply
