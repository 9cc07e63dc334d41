"""any — answers every ANY question with one HINFO record (RFC 8482), as CoreDNS's plugin/any.

The reply keeps the question as sent, RD and CD, and is not authoritative; its only record is
`<qname> 8482 IN HINFO "ANY obsoleted" "See RFC 8482"`. Other questions go on down the chain untouched,
so the fast table and the forward lane keep them (the lane's hop lets every non-ANY query through).
"""

from __future__ import annotations

import dns.message
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.HINFO import HINFO

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Plugin, WireHop
from ..wire import WireQuery

__all__ = ["AnyPlugin"]

HINFO_TTL = 8482
_ANY = int(T.ANY)


def _not_any(q: WireQuery) -> bool:
    return q.qtype != _ANY


class AnyPlugin(Plugin):
    name = "any"

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> AnyPlugin:
        if d.args:
            raise d.error("Wrong argument count or unexpected line ending after 'any'", cls.name)
        if d.block:
            raise d.error(f"unknown property '{d.block[0].name}'", cls.name)
        return cls()

    def wire_hop(self) -> WireHop:
        return WireHop(admit=_not_any)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if req.qtype != T.ANY:
            return await next_(req)
        req.note("any: HINFO reply to an ANY question (RFC 8482)")
        m = req.reply()
        rr = dns.rrset.RRset(req.qname, dns.rdataclass.IN, T.HINFO)
        rr.add(HINFO(dns.rdataclass.IN, T.HINFO, b"ANY obsoleted", b"See RFC 8482"), HINFO_TTL)
        m.answer.append(rr)
        return m
