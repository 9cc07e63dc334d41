"""DnsCore: bytes in, bytes out, no sockets (spec dns.md O14).

`fast_answer` tries the precompiled table (fast.py); `slow_answer` parses with dnspython, routes to the
server block with the longest matching zone, runs its plugin chain and writes the reply with EDNS and
truncation. Malformed input gets FORMERR (or is dropped when not even a header is there), never an
exception: the listeners rely on that.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from .lane import Lanes
from .plugin import DnsRequest, Handler, NoReply, Plugin, Variants, WireVariants
from .wire import render_message

if TYPE_CHECKING:
    from .fast import FastTable
    from .metrics import DnsMetrics

__all__ = ["Block", "DnsCore", "Routing", "error_reply"]

log = logging.getLogger("pyk3s.dns")
_HDR = struct.Struct(">HHHHHH")


@dataclass(frozen=True, slots=True, eq=False)
class Block:
    """One server block: its zones, where it listens, its chain, and what its plugins asked of it."""

    zones: tuple[str, ...]
    port: int
    binds: tuple[str, ...]                  # listen addresses ("": all)
    server: str                             # "dns://:53"
    plugins: tuple[Plugin, ...]             # in ORDER
    handler: Handler                        # the chain
    metrics: bool = False                   # count requests in the metrics
    refuse_all: bool = False                # no plugin answers: REFUSED
    fast_ok: bool = True                    # every plugin lets the fast path skip it
    variants: Variants | None = None        # how the chain changes replies per query
    wire_variants: WireVariants | None = None   # the same on bytes
    workers: int = 0                        # processes asked for (0: not asked)
    reload: tuple[float, float] | None = None   # Corefile check interval and jitter asked for
    classes: frozenset[int] = frozenset()   # query classes besides IN that reach the chain (chaos: CH)


@dataclass(frozen=True, slots=True)
class Routing:
    """A listener's zone table (longest first), its fast table and its forward lanes; swapped whole."""

    routes: tuple[tuple[str, Block], ...]
    metrics: DnsMetrics | None = None
    fast: FastTable | None = None
    lanes: Lanes | None = None

    @classmethod
    def of(cls, blocks: Iterable[Block], metrics: DnsMetrics | None = None, lanes: bool = False) -> Routing:
        """`lanes`: give the blocks whose plugins allow it a forward lane (serving only: their plugins
        have started)."""
        routes = sorted(((z, b) for b in blocks for z in b.zones), key=lambda zb: -len(zb[0]))
        return cls(tuple(routes), metrics, lanes=Lanes.of(routes, metrics) if lanes else None)

    def route(self, name: str) -> tuple[str, Block] | None:
        for zone, block in self.routes:
            if zone == "." or name == zone or name.endswith("." + zone):
                return zone, block
        return None


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A header-only reply (question echoed when it can be found) for input we will not parse."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack_from(">HH", data)
    out_flags = 0x8000 | (flags & 0x7900) | (rcode & 0xF)   # QR, opcode, RD kept
    return _HDR.pack(qid, out_flags, 0, 0, 0, 0)


class DnsCore:
    def __init__(self, routing: Routing, metrics: DnsMetrics | None = None) -> None:
        self.routing = routing
        self.metrics = metrics

    def fast_answer(self, data: bytes) -> bytes | None:
        fast = self.routing.fast
        return fast.answer(data) if fast is not None else None

    async def slow_answer(self, data: bytes, proto: str = "udp", addr: object = None,
                          trace: list[str] | None = None, offline: bool = False) -> bytes | None:
        """The reply to `data`; `trace` collects each plugin's notes and `offline` keeps the plugins from
        asking other servers (`dns explain`). None: input it will not answer (TCP closes the connection);
        empty: a plugin dropped the query (nothing is sent, the connection stays)."""
        start = time.perf_counter()
        if len(data) < 12 or data[2] & 0x80:
            return None                      # no header, or a response: drop
        if (data[2] >> 3) & 0xF != dns.opcode.QUERY:
            return error_reply(data, dns.rcode.NOTIMP)
        try:
            q = dns.message.from_wire(data, continue_on_error=False)
        except dns.message.ShortHeader:
            return None
        except (dns.exception.DNSException, ValueError, IndexError, struct.error, UnicodeError):
            return error_reply(data, dns.rcode.FORMERR)
        except Exception:  # any parser surprise is the client's malformed packet
            log.debug("unexpected parse failure", exc_info=True)
            return error_reply(data, dns.rcode.FORMERR)
        if q.opcode() != dns.opcode.QUERY:
            return self._bare(q, dns.rcode.NOTIMP, proto)
        if len(q.question) == 0:
            return self._bare(q, dns.rcode.SERVFAIL, proto)
        if len(q.question) > 1 or len(q.answer) > 1 or len(q.authority) > 1:
            return error_reply(data, dns.rcode.FORMERR)
        if q.edns > 0:
            r = self._empty(q, dns.rcode.BADVERS)
            return self._wire(q, r, proto)
        question = q.question[0]
        name = question.name.to_text().lower()
        routing = self.routing
        hit = routing.route(name)
        if hit is None or hit[1].refuse_all or \
                question.rdclass != dns.rdataclass.IN and question.rdclass not in hit[1].classes:
            return self._bare(q, dns.rcode.REFUSED, proto)
        zone, block = hit
        req = DnsRequest(q, question.name, name, question.rdtype, proto, addr, zone, block.server,
                      trace=trace, root=block.handler, offline=offline)
        try:
            reply = await block.handler(req)
        except Exception as err:  # a plugin failed without the errors plugin: SERVFAIL, keep serving
            log.error("[ERROR] %s %s: %s", name, dns.rdatatype.to_text(question.rdtype), err)
            reply = req.reply(dns.rcode.SERVFAIL)
        if isinstance(reply, NoReply):
            return b""
        wire = self._wire(q, reply, proto)
        if block.metrics and self.metrics is not None:
            self.metrics.request(block.server, zone, proto, "1" if not isinstance(addr, tuple) or
                                 ":" not in str(addr[0]) else "2", dns.rdatatype.to_text(question.rdtype),
                                 dns.rcode.to_text(reply.rcode()), "", time.perf_counter() - start,
                                 len(data), len(wire or b""), bool(q.ednsflags & dns.flags.DO))
        return wire

    @staticmethod
    def _empty(q: dns.message.Message, rcode: dns.rcode.Rcode) -> dns.message.Message:
        m = dns.message.Message(q.id)
        m.flags = dns.flags.QR | (q.flags & (dns.flags.RD | dns.flags.CD))
        m.set_opcode(q.opcode())
        m.set_rcode(rcode)
        m.question = list(q.question)
        return m

    def _bare(self, q: dns.message.Message, rcode: dns.rcode.Rcode, proto: str) -> bytes | None:
        return self._wire(q, self._empty(q, rcode), proto)

    @staticmethod
    def _wire(q: dns.message.Message, reply: dns.message.Message, proto: str) -> bytes | None:
        return render_message(q, reply, proto)
