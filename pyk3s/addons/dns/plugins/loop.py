"""loop — detect forwarding loops at start-up (spec dns.md O10).

Sends `<random>.<random>.<zone>` HINFO queries to its own listener; seeing the same probe more than
twice means queries come back to us: log `Loop ... detected` and stop the process. A probe that gets
no answer in time (an upstream that is slow or down, a server still loading) starts the count again
before the next try, as CoreDNS does since 1.2.6: only a probe coming back to us counts. With several
worker processes on one port (multisocket) a probe may land on a worker that did not send it and so
never sees that reset: a sighting more than one probe timeout after the previous one starts the count
again too (a looping probe comes back within milliseconds; retried probes are seconds apart).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype as T

from ..corefile import Directive
from ..plugin import BlockContext, DnsRequest, Handler, Host, Plugin, WireHop
from ..workers import ENV_LOOP_SEED

__all__ = ["LoopPlugin"]

log = logging.getLogger("pyk3s.dns.loop")


class LoopPlugin(Plugin):
    name = "loop"
    probe_timeout = 2.0       # seconds to wait for a probe's answer
    probe_pause = 1.0         # before the next try

    def __init__(self, zone: str) -> None:
        zone_part = "" if zone == "." else zone
        seed = os.environ.get(ENV_LOOP_SEED)   # shared by multisocket workers (workers.py)
        rng = random.Random(f"{seed}/{zone}") if seed else random.Random()
        self.probe = f"{rng.randrange(1 << 62)}.{rng.randrange(1 << 62)}.{zone_part}".lower()
        if not self.probe.endswith("."):
            self.probe += "."
        self.seen = 0
        self.last_seen = 0.0
        self.host: Host | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> LoopPlugin:
        if d.args or d.block:
            raise d.error("loop takes no arguments", cls.name)
        return cls(ctx.zones[0])

    def wire_hop(self) -> WireHop:
        # every query but its own probe goes on untouched
        return WireHop(admit=lambda q: q.qtype != T.HINFO or q.name != self.probe)

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if req.qtype == T.HINFO and req.name == self.probe and not req.precompute:
            if self.sighting(time.monotonic()) > 2:
                log.error('[FATAL] plugin/loop: Loop (%s -> %s) detected for zone "%s", see '
                          'https://coredns.io/plugins/loop#troubleshooting. Query: "HINFO %s"',
                          req.addr, req.server, req.zone, self.probe)
                if self.host is not None:
                    self.host.fatal("plugin/loop: forwarding loop detected")
                return req.reply(dns.rcode.SERVFAIL)
        return await next_(req)

    def sighting(self, now: float) -> int:
        """Count one arrival of the probe; returns how many arrivals belong to the same probe."""
        if now - self.last_seen > self.probe_timeout:
            self.seen = 0
        self.last_seen = now
        self.seen += 1
        return self.seen

    async def start(self, host: Host) -> None:
        self.host = host

    def listening(self, addr: tuple[str, int]) -> None:
        """Probe our own listener once it is up (the primary process only: one set of probes per server)."""
        if self.host is not None and self.host.primary:
            self._task = asyncio.get_running_loop().create_task(self._probe((addr[0] or "127.0.0.1", addr[1])))

    async def _probe(self, addr: tuple[str, int]) -> None:
        import dns.asyncquery
        q = dns.message.make_query(self.probe, T.HINFO)
        for _ in range(15):       # until one probe got any answer (CoreDNS tries up to 30s)
            try:
                await dns.asyncquery.udp(q, addr[0], timeout=self.probe_timeout, port=addr[1])
                return
            except (OSError, TimeoutError, dns.exception.DNSException):
                self.seen = 0
                await asyncio.sleep(self.probe_pause)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
