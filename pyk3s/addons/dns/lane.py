"""The forward lane: plain UDP queries the fast table cannot answer, sent upstream as bytes.

Rules:
- A block has a lane when every plugin of its chain before the first one that sends upstream (forward)
  offers a `WireHop`, and that one offers a `WireSender` (plugin.py). The lane runs what those plugins
  would do for a question they do not answer, in chain order: every hop's `admit` (all must pass, or the
  query goes to the chain as before), the sender's `claims`, then every `enter`, then the send.
- No task and no dnspython per query: the sender calls back `answered` (a `WireReply`), `rcode` or
  `failed`; the hops' `leave` run innermost first (cache keeps it, loadbalance rotates it), then the
  reply is written from the upstream's bytes (wire.py) and sent from the listener's socket. A plugin that
  needs dnspython for one reply turns it into a message (`WireReply.to_message`); from there on it is
  the slow path's message, rendered and truncated as the slow path does.
- A failure (no upstream answered, a hop raised) is SERVFAIL, logged by the hops that say so (errors)
  or else as the core logs it; nothing is cached. Request metrics are the slow path's, for blocks with
  prometheus.
- At most MAX_INFLIGHT queries per lane are upstream at once; more are dropped, as a loaded UDP server
  drops (clients retry).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import dns.rcode
import dns.rdatatype

from .plugin import WireSender
from .wire import WireQuery, WireReply, rcode_reply, render_message

if TYPE_CHECKING:
    from .core import Block
    from .metrics import DnsMetrics

__all__ = ["Lane", "Lanes", "ReplySink"]

log = logging.getLogger("pyk3s.dns")
MAX_INFLIGHT = 8192
_SERVFAIL = int(dns.rcode.SERVFAIL)
_TYPE_TEXT: dict[int, str] = {}
_RCODE_TEXT: dict[int, str] = {}


class ReplySink(Protocol):
    """The listener a query came in on: where its reply goes."""

    def reply(self, data: bytes, addr: tuple[str | int, ...]) -> None: ...


def type_text(qtype: int) -> str:
    t = _TYPE_TEXT.get(qtype)
    if t is None:
        t = _TYPE_TEXT[qtype] = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
    return t


def rcode_text(rcode: int) -> str:
    t = _RCODE_TEXT.get(rcode)
    if t is None:
        t = _RCODE_TEXT[rcode] = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    return t


class Lane:
    """The forward lane of one server block."""

    __slots__ = ("server", "admits", "enters", "leaves", "faileds", "sender", "metrics", "inflight")

    def __init__(self, server: str, admits: list[Callable[[WireQuery], bool]],
                 enters: list[Callable[[WireQuery], None]], leaves: list[Callable[[WireQuery, WireReply], None]],
                 faileds: list[Callable[[WireQuery, Exception], None]], sender: WireSender,
                 metrics: DnsMetrics | None) -> None:
        self.server = server
        self.admits = admits
        self.enters = enters
        self.leaves = leaves            # innermost first
        self.faileds = faileds          # innermost first
        self.sender = sender
        self.metrics = metrics          # None: the block does not count requests
        self.inflight = 0

    @classmethod
    def of(cls, block: Block, metrics: DnsMetrics | None) -> Lane | None:
        hops = []
        sender = None
        for p in block.plugins:
            if not p.in_chain:
                continue
            sender = p.wire_sender()
            if sender is not None:
                break
            hop = p.wire_hop()
            if hop is None:
                return None
            hops.append(hop)
        if sender is None:
            return None
        inner_first = list(reversed(hops))
        return cls(block.server, [h.admit for h in hops if h.admit is not None],
                   [h.enter for h in hops if h.enter is not None],
                   [h.leave for h in inner_first if h.leave is not None],
                   [h.failed for h in inner_first if h.failed is not None], sender,
                   metrics if block.metrics else None)

    # -- outcomes, called by the sender --------------------------------------------------------
    def answered(self, q: WireQuery, r: WireReply) -> None:
        try:
            for leave in self.leaves:
                leave(q, r)
            out = r.render() if r.msg is None else None
            if out is None:
                out = render_message(q.message(), r.to_message(), "udp")
                if out is None:
                    raise ValueError("reply could not be written")
        except Exception as err:  # a plugin failed on the reply: SERVFAIL as on the chain
            self.failed(q, err)
            return
        self._send(q, out, r.rcode)

    def rcode(self, q: WireQuery, rcode: int) -> None:
        self._send(q, rcode_reply(q, rcode), rcode)

    def failed(self, q: WireQuery, err: Exception) -> None:
        if self.faileds:
            for f in self.faileds:
                f(q, err)
        else:
            log.error("[ERROR] %s %s: %s", q.name, type_text(q.qtype), err)
        self._send(q, rcode_reply(q, _SERVFAIL), _SERVFAIL)

    def _send(self, q: WireQuery, out: bytes, rcode: int) -> None:
        self.inflight -= 1
        q.sink.reply(out, q.addr)
        m = self.metrics
        if m is not None:
            addr = q.addr
            m.request(self.server, q.zone, "udp", "2" if isinstance(addr, tuple) and ":" in str(addr[0]) else "1",
                      type_text(q.qtype), rcode_text(rcode), "", time.perf_counter() - q.start, len(q.data),
                      len(out), q.do)


class Lanes:
    """A listener's lanes by zone, longest first (its Routing's zone table)."""

    __slots__ = ("routes", "root")

    def __init__(self, routes: list[tuple[str, Lane | None]]) -> None:
        self.routes = tuple(routes)
        # the common layout: one catch-all block
        self.root = routes[0][1] if len(routes) == 1 and routes[0][0] == "." else None

    @classmethod
    def of(cls, routes: Iterable[tuple[str, Block]], metrics: DnsMetrics | None) -> Lanes | None:
        built: dict[int, Lane | None] = {}
        out: list[tuple[str, Lane | None]] = []
        for zone, block in routes:
            if id(block) not in built:
                built[id(block)] = None if block.refuse_all else Lane.of(block, metrics)
            out.append((zone, built[id(block)]))
        if not any(lane is not None for _, lane in out):
            return None
        return cls(out)

    def take(self, data: bytes, addr: tuple[str | int, ...], sink: ReplySink) -> bool:
        """Send the query upstream on its block's lane; False: it is not for the lane (the chain takes it)."""
        q = WireQuery.parse(data)
        if q is None:
            return False
        lane = self.root
        zone = "."
        if lane is None:
            hit = self._route(q.name)
            if hit is None:
                return False
            zone, lane = hit
        for admit in lane.admits:
            if not admit(q):
                return False
        sender = lane.sender
        if not sender.claims(q):
            return False
        if lane.inflight >= MAX_INFLIGHT:
            return True                 # dropped
        lane.inflight += 1
        q.addr, q.sink, q.lane, q.zone, q.start = addr, sink, lane, zone, time.perf_counter()
        for enter in lane.enters:
            enter(q)
        sender.send(q)
        return True

    def _route(self, name: str) -> tuple[str, Lane] | None:
        for zone, lane in self.routes:
            if zone == "." or name == zone or name.endswith("." + zone):
                return None if lane is None else (zone, lane)
        return None
