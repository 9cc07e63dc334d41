"""The forward plugin: asks the upstreams, on the chain (`serve`) and at the end of the forward lane.

Transport follows the client's unless force_tcp/prefer_udp; with prefer_udp a truncated UDP reply is
asked again over TCP (CoreDNS). A tls:// upstream is always asked over its TLS connections, health checks
included; a forward with one stays off the forward lane (the lane only speaks UDP). Upstreams are tried in the policy's order, each once, while the request's
5 s last; each try waits READ_TIMEOUT. An upstream that failed more than max_fails times is probed with
`. IN NS` every health_check interval until it answers; if every upstream is down a random one is tried.
A reply whose question is not the one asked is FORMERR; an rcode in `failover` asks the next upstream
(the last reply stands when none is left); an rcode in `next` hands the question to the next plugin when
that one is a forward too. Over max_concurrent the answer is REFUSED. An offline request (`dns explain`
without --query-upstream) only notes which upstreams it would ask.

On the lane (lane.py) the same happens without dnspython or a task: the client's bytes go out with an
ID of the upstream's channel, and the reply comes back as a WireReply.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from ...corefile import Directive
from ...metrics import DnsMetrics
from ...options import zone_test
from ...plugin import BlockContext, ChainInfo, DnsRequest, Handler, Host, NotFast, Plugin, WireSender
from ...wire import MISMATCH, WireQuery, WireReply
from .config import ForwardOptions, parse_options, tls_context
from .upstream import Upstream

__all__ = ["READ_TIMEOUT", "REQUEST_TIMEOUT", "ForwardPlugin"]

log = logging.getLogger("pyk3s.dns.forward")
READ_TIMEOUT = 2.0
REQUEST_TIMEOUT = 5.0
_REFUSED = int(dns.rcode.REFUSED)
_FORMERR = int(dns.rcode.FORMERR)
_ERRORS = (OSError, TimeoutError, dns.exception.DNSException, EOFError)


class ForwardPlugin(Plugin):
    name = "forward"
    once_per_block = False
    read_timeout = READ_TIMEOUT         # per try (CoreDNS's read timeout)

    def __init__(self, opts: ForwardOptions) -> None:
        self.opts = opts
        ctx = tls_context(opts.tls) if any(t.tls for t in opts.to) else None
        self.upstreams = [Upstream(t.host, t.port, timeout=self.read_timeout, expire=opts.expire,
                                   lane_reply=self._lane_reply, lane_error=self._lane_error,
                                   tls=ctx if t.tls else None, server_name=opts.tls_servername or t.server_name)
                          for t in opts.to]
        self._lane_ok = ctx is None
        self._rr = itertools.count()
        self.inflight = 0
        self.metrics: DnsMetrics | None = None
        self._health: dict[Upstream, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_is_forward = False
        self._excepted = zone_test(opts.excepts)

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ForwardPlugin:
        return cls(parse_options(d, ctx))

    def chained(self, chain: ChainInfo) -> None:
        after = list(chain.plugins[chain.plugins.index(self) + 1:]) if self in chain.plugins else []
        nxt = next((p for p in after if p.in_chain), None)
        self._next_is_forward = isinstance(nxt, ForwardPlugin)

    async def start(self, host: Host) -> None:
        self.metrics = host.metrics

    async def stop(self) -> None:
        for t in [*self._health.values(), *self._tasks]:
            t.cancel()
        for u in self.upstreams:
            u.close()

    def matches(self, name: str) -> bool:
        f = self.opts.frm
        if not (f == "." or name == f or name.endswith("." + f)):
            return False
        return not self.opts.excepts or not self._excepted(name)

    def _order(self) -> list[Upstream]:
        ups = self.upstreams
        if len(ups) == 1:
            return ups
        ups = list(ups)
        if self.opts.policy == "random":
            random.shuffle(ups)
        elif self.opts.policy == "round_robin":
            k = next(self._rr) % len(ups)
            ups = ups[k:] + ups[:k]
        healthy = [u for u in ups if u.fails <= self.opts.max_fails or not self.opts.max_fails]
        return healthy or [random.choice(ups)]

    def _observe(self, up: Upstream, seconds: float, rcode: int) -> None:
        if self.metrics is None:
            return
        h = up.hists.get(rcode)
        if h is None:
            h = up.hists[rcode] = self.metrics.histogram(
                "coredns_proxy_request_duration_seconds", proxy_name="forward", to=up.addr,
                rcode=dns.rcode.to_text(dns.rcode.Rcode.make(rcode)))
        h.observe(seconds)

    def _refuse(self) -> bool:
        """Over max_concurrent: count the reject."""
        if self.opts.max_concurrent and self.inflight >= self.opts.max_concurrent:
            if self.metrics is not None:
                self.metrics.inc("coredns_forward_max_concurrent_rejects_total")
            return True
        return False

    # -- the chain -----------------------------------------------------------------------------
    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if not self.matches(req.name):
            return await next_(req)
        if req.precompute:
            raise NotFast("forward")
        if req.offline:
            upstreams = ", ".join(("tls://" if u.tls else "") + u.addr for u in self.upstreams) or "no upstream"
            req.note(f"forward: would ask {upstreams} (not sent; --query-upstream sends it)")
            return req.reply(dns.rcode.SERVFAIL)
        if self._refuse():
            req.note("forward: max_concurrent reached: REFUSED")
            return req.reply(dns.rcode.REFUSED)
        tcp = self.opts.force_tcp or (req.proto == "tcp" and not self.opts.prefer_udp)
        wire = req.query.to_wire()
        self.inflight += 1
        try:
            reply, up = await self._ask(req, wire, tcp)
        finally:
            self.inflight -= 1
        if reply is None:
            req.note(f"forward: no upstream answered ({up})")
            raise RuntimeError(f"plugin/forward: no healthy upstream answered {req.name} "
                               f"{dns.rdatatype.to_text(req.qtype)}: {up}")
        assert isinstance(up, Upstream)
        if not _same_question(req, reply):
            req.note(f"forward: upstream {up.addr} answered another question: FORMERR")
            return req.reply(dns.rcode.FORMERR)
        if self._next_is_forward and reply.rcode() in self.opts.next:
            req.note(f"forward: {dns.rcode.to_text(reply.rcode())} from {up.addr}: next plugin")
            return await next_(req)
        reply.id = req.query.id
        req.note(f"forward: answered by upstream {up.addr} ({dns.rcode.to_text(reply.rcode())})")
        return reply

    async def _ask(self, req: DnsRequest, wire: bytes, tcp: bool
                   ) -> tuple[dns.message.Message | None, Upstream | Exception | None]:
        """(reply, upstream that gave it), or (None, the last error)."""
        deadline = time.monotonic() + REQUEST_TIMEOUT
        last: Exception | None = None
        held: tuple[dns.message.Message, Upstream] | None = None
        ups = self._order()
        for i, up in enumerate(ups):
            if time.monotonic() >= deadline:
                break
            start = time.perf_counter()
            try:
                data = await up.exchange(wire, tcp)
                if not (tcp or up.tls) and self.opts.prefer_udp and len(data) > 2 and data[2] & 0x02:
                    data = await up.exchange(wire, True)        # truncated: again over TCP
                reply = dns.message.from_wire(data, ignore_trailing=True)
            except _ERRORS as err:
                last = err
                self._failed(up)
                continue
            up.fails = 0
            self._observe(up, time.perf_counter() - start, reply.rcode())
            if reply.rcode() in self.opts.failover and i + 1 < len(ups):
                req.note(f"forward: {dns.rcode.to_text(reply.rcode())} from {up.addr}: failover to the next upstream")
                held = (reply, up)
                continue
            return reply, up
        if held is not None:
            return held
        return None, last

    # -- the forward lane ----------------------------------------------------------------------
    def wire_sender(self) -> WireSender:
        return self

    def claims(self, q: WireQuery) -> bool:
        if self.opts.force_tcp or not self._lane_ok or (self._next_is_forward and self.opts.next):
            return False
        return self.matches(q.name)

    def send(self, q: WireQuery) -> None:
        if self._refuse():
            q.lane.rcode(q, _REFUSED)
            return
        self.inflight += 1
        q.sender = self
        q.ups = self._order()
        q.tried = 0
        q.held = None
        q.deadline = time.monotonic() + REQUEST_TIMEOUT
        self._lane_next(q, None)

    def _lane_next(self, q: WireQuery, err: Exception | None) -> None:
        """Send `q` to the next upstream of its order; when none is left, its outcome."""
        now = time.monotonic()
        ups = q.ups
        while q.tried < len(ups) and now < q.deadline:
            up = ups[q.tried]
            q.tried += 1
            try:
                up.udp.send(q, q.data, now)
            except OSError as e:
                err = e
                self._failed(up)
                continue
            q.up = up
            return
        self.inflight -= 1
        if q.held is not None:
            q.lane.answered(q, q.held)
            return
        q.lane.failed(q, RuntimeError(f"plugin/forward: no healthy upstream answered {q.name} "
                                      f"{dns.rdatatype.to_text(dns.rdatatype.RdataType.make(q.qtype))}: {err}"))

    def _lane_error(self, q: WireQuery, err: Exception) -> None:
        self._failed(q.up)
        self._lane_next(q, err)

    def _lane_reply(self, q: WireQuery, data: bytes, tcp: bool = False) -> None:
        up: Upstream = q.up
        try:
            r = WireReply.read(data, q)
        except dns.exception.DNSException as err:
            self._lane_error(q, err)
            return
        if r is None:
            self._lane_error(q, dns.exception.FormError(f"malformed reply from {up.addr}"))
            return
        up.fails = 0
        if r is MISMATCH:
            self._observe(up, time.monotonic() - q.sent, data[3] & 0x0F)
            self.inflight -= 1
            q.lane.rcode(q, _FORMERR)
            return
        if not tcp and self.opts.prefer_udp and r.flags & 0x0200:
            t = asyncio.get_running_loop().create_task(self._lane_tcp(q, up))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
            return
        rcode = r.rcode
        self._observe(up, time.monotonic() - q.sent, rcode)
        if rcode in self.opts.failover and q.tried < len(q.ups):
            q.held = r
            self._lane_next(q, None)
            return
        self.inflight -= 1
        q.lane.answered(q, r)

    async def _lane_tcp(self, q: WireQuery, up: Upstream) -> None:
        """A truncated reply under prefer_udp: the same question over TCP."""
        q.sent = time.monotonic()
        try:
            data = await up.exchange(q.data, True)
        except _ERRORS as err:
            self._lane_error(q, err)
            return
        self._lane_reply(q, q.data[:2] + data[2:], tcp=True)

    # -- health --------------------------------------------------------------------------------
    def _failed(self, up: Upstream) -> None:
        up.fails += 1
        if up.fails > self.opts.max_fails and self.opts.max_fails and up not in self._health:
            self._health[up] = asyncio.get_running_loop().create_task(self._probe(up))

    async def _probe(self, up: Upstream) -> None:
        try:
            q = dns.message.make_query(self.opts.health_domain, dns.rdatatype.NS)
            if not self.opts.health_rd:
                q.flags &= ~dns.flags.RD
            while True:
                try:
                    await up.exchange(q.to_wire(), self.opts.force_tcp)
                    up.fails = 0
                    return
                except _ERRORS:
                    if self.metrics is not None:
                        self.metrics.inc("coredns_forward_healthcheck_broken_total")
                await asyncio.sleep(self.opts.health_check)
        finally:
            self._health.pop(up, None)


def _same_question(req: DnsRequest, reply: dns.message.Message) -> bool:
    """CoreDNS's check of an upstream reply: one question, the name (any case) and type asked."""
    if len(reply.question) != 1 or not reply.flags & dns.flags.QR:
        return False
    rq = reply.question[0]
    return rq.name.to_text().lower() == req.name and rq.rdtype == req.qtype
