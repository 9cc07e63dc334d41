"""whoami: answers with the client's address and port (the default Corefile, spec dns.md C10)."""

from __future__ import annotations

import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA
from dns.rdtypes.IN.SRV import SRV

from ..plugin import DnsRequest, Handler, Plugin

__all__ = ["WhoamiPlugin"]


class WhoamiPlugin(Plugin):
    name = "whoami"
    fast_safe = False

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        ip, port = (req.addr[0], req.addr[1]) if isinstance(req.addr, tuple) else ("127.0.0.1", 0)
        m = req.reply(aa=True)
        six = ":" in ip
        rr = dns.rrset.RRset(req.qname, dns.rdataclass.IN, T.AAAA if six else T.A)
        rr.add(AAAA(dns.rdataclass.IN, T.AAAA, ip) if six else A(dns.rdataclass.IN, T.A, ip), 0)
        m.additional.append(rr)
        srv = dns.rrset.RRset(dns.name.from_text("_" + req.proto + "." + req.name), dns.rdataclass.IN, T.SRV)
        srv.add(SRV(dns.rdataclass.IN, T.SRV, 0, 0, port, req.qname), 0)
        m.additional.append(srv)
        return m
