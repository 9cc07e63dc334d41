"""chaos [VERSION] [AUTHORS...] — TXT answers in class CH about the server, as CoreDNS's plugin/chaos.

`version.bind` and `version.server` give VERSION (default `pyk3s-<version>`), `authors.bind` one record
per author in a random order (default: `pyk3s`; given authors are deduplicated), `hostname.bind` and
`id.server` the host's name. Each string is cut to 255 bytes; records have TTL 0, the reply is not
authoritative.

pyk3s answers class IN only: a CH question reaches the chain of a block only when that block has
`chaos` (Plugin.query_classes), and a CH question `chaos` does not answer (another name, another type)
is REFUSED here, where CoreDNS would hand it to the next plugin — the plugins after this one answer
class IN only. Every other class stays REFUSED before the chain. Answers are fixed per process, but
CH questions never take the fast table or the forward lane (class IN only), so nothing else changes for
the block: class IN questions pass straight on.
"""

from __future__ import annotations

import random
import socket
from typing import ClassVar

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype as T
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

from pyk3s.k3s.version import PYK3S_VERSION

from ..corefile import Directive
from ..plugin import PASS, BlockContext, DnsRequest, Handler, Plugin, WireHop

__all__ = ["ChaosPlugin"]

CH = dns.rdataclass.CH
DEFAULT_VERSION = f"pyk3s-{PYK3S_VERSION}"
DEFAULT_AUTHORS = ("pyk3s",)
VERSION_NAMES = frozenset({"version.bind.", "version.server."})
HOST_NAMES = frozenset({"hostname.bind.", "id.server."})
AUTHOR_NAMES = frozenset({"authors.bind."})


def _cut(text: str) -> bytes:
    return text.encode()[:255]


class ChaosPlugin(Plugin):
    name = "chaos"
    query_classes: ClassVar[frozenset[int]] = frozenset({int(CH)})

    def __init__(self, version: str, authors: tuple[str, ...]) -> None:
        self.version = version
        self.authors = authors

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ChaosPlugin:
        if d.block:
            raise d.error(f"unknown property '{d.block[0].name}'", cls.name)
        if not d.args:
            return cls(DEFAULT_VERSION, DEFAULT_AUTHORS)
        return cls(d.args[0], tuple(sorted(set(d.args[1:]))) or DEFAULT_AUTHORS)

    def wire_hop(self) -> WireHop:
        return PASS             # the lane takes class IN queries only, which this plugin passes on

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if req.query.question[0].rdclass != CH:
            return await next_(req)
        if req.qtype != T.TXT or req.name not in VERSION_NAMES | HOST_NAMES | AUTHOR_NAMES:
            req.note("chaos: a CH question it does not answer: REFUSED")
            return req.reply(dns.rcode.REFUSED)
        if req.name in VERSION_NAMES:
            texts = [self.version]
        elif req.name in HOST_NAMES:
            texts = [socket.gethostname() or "localhost"]
        else:
            texts = random.sample(self.authors, len(self.authors))
        m = req.reply()
        rr = dns.rrset.RRset(req.qname, CH, T.TXT)
        for text in texts:
            rr.add(TXT(CH, T.TXT, [_cut(text)]), 0)
        m.answer.append(rr)
        req.note(f"chaos: {req.name} CH TXT")
        return m
