"""forward FROM TO... { except ZONES...  policy random|round_robin|sequential  max_concurrent N
                        max_fails N  health_check DUR [no_rec] [domain NAME]  force_tcp  prefer_udp  expire DUR }

Spec dns.md O7. TO is `IP[:PORT]`, `dns://IP[:PORT]` or a resolv.conf-style file whose `nameserver`
lines are used (at most 15). Transport follows the client's unless force_tcp/prefer_udp. An upstream
that failed more than max_fails times is probed with `. IN NS` every health_check interval until it
answers; if every upstream is down a random one is tried. Over max_concurrent the answer is REFUSED.
An offline request (`dns explain` without --query-upstream) only notes which upstreams it would ask.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import os
import random
import struct
import time
from dataclasses import dataclass, replace

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from ..corefile import Directive
from ..metrics import DnsMetrics
from ..options import int_arg, parse_duration
from ..plugin import BlockContext, DnsRequest, Handler, Host, NotFast, Plugin

__all__ = ["ForwardOptions", "ForwardPlugin", "Upstream"]

log = logging.getLogger("pyk3s.dns.forward")
READ_TIMEOUT = 2.0
REQUEST_TIMEOUT = 5.0
MAX_UPSTREAMS = 15


@dataclass(frozen=True, slots=True)
class ForwardOptions:
    frm: str = "."
    to: tuple[tuple[str, int], ...] = ()
    excepts: tuple[str, ...] = ()
    policy: str = "random"
    max_concurrent: int = 0
    max_fails: int = 2
    health_check: float = 0.5
    health_rd: bool = True
    health_domain: str = "."
    force_tcp: bool = False
    prefer_udp: bool = False


def _hostport(text: str, d: Directive) -> tuple[str, int]:
    t = text[len("dns://"):] if text.startswith("dns://") else text
    if "://" in t:
        raise d.error(f"only plain DNS upstreams are supported, not {text!r}", "forward")
    host, port = t, 53
    if t.startswith("["):
        host, _, rest = t[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif t.count(":") == 1:
        host, p = t.split(":")
        port = int(p)
    try:
        ipaddress.ip_address(host)
    except ValueError as err:
        raise d.error(f"not an IP address or file: {text!r}", "forward") from err
    return host, port


def read_resolv_conf(path: str) -> list[str]:
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split("#", 1)[0].split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(parts[1].split("%", 1)[0])
    return out


class Upstream:
    """One upstream server: a connected UDP socket multiplexing queries by ID, TCP per query."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.fails = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"

    async def _udp_transport(self) -> asyncio.DatagramTransport:
        if self._udp is None or self._udp.is_closing():
            loop = asyncio.get_running_loop()
            up = self

            class Proto(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: object) -> None:
                    if len(data) >= 2:
                        fut = up._pending.pop(struct.unpack_from(">H", data)[0], None)
                        if fut is not None and not fut.done():
                            fut.set_result(data)

                def error_received(self, exc: Exception) -> None:
                    for fut in up._pending.values():
                        if not fut.done():
                            fut.set_exception(exc)
                    up._pending.clear()

            self._udp, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(self.host, self.port))
        return self._udp

    async def exchange(self, wire: bytes, tcp: bool, timeout: float = READ_TIMEOUT) -> bytes:
        qid = random.randrange(1 << 16)
        while qid in self._pending:
            qid = random.randrange(1 << 16)
        data = struct.pack(">H", qid) + wire[2:]
        if tcp:
            return await asyncio.wait_for(self._tcp(data), timeout)
        tr = await self._udp_transport()
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[qid] = fut
        try:
            tr.sendto(data)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(qid, None)

    async def _tcp(self, data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(struct.pack(">H", len(data)) + data)
            await writer.drain()
            n = struct.unpack(">H", await reader.readexactly(2))[0]
            return await reader.readexactly(n)
        finally:
            writer.close()

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()


class ForwardPlugin(Plugin):
    name = "forward"
    once_per_block = False

    def __init__(self, opts: ForwardOptions) -> None:
        self.opts = opts
        self.upstreams = [Upstream(h, p) for h, p in opts.to]
        self._rr = itertools.count()
        self.inflight = 0
        self.metrics: DnsMetrics | None = None
        self._health: dict[Upstream, asyncio.Task[None]] = {}

    @classmethod
    def setup(cls, d: Directive, ctx: BlockContext) -> ForwardPlugin:
        if len(d.args) < 2:
            raise d.error("forward needs FROM and at least one TO", cls.name)
        frm = d.args[0].lower().rstrip(".") + "." if d.args[0] != "." else "."
        to: list[tuple[str, int]] = []
        for t in d.args[1:]:
            path = t if os.path.isabs(t) else ""
            if path and os.path.exists(path):
                try:
                    servers = read_resolv_conf(path)
                except OSError as err:
                    raise d.error(f"cannot read {path}: {err.strerror}", cls.name) from err
                to.extend(_hostport(s, d) for s in servers)
            elif "/" in t and not t.startswith("dns://"):
                raise d.error(f"file {t} not found", cls.name)
            else:
                to.append(_hostport(t, d))
        if not to:
            raise d.error("no nameservers found", cls.name)
        if len(to) > MAX_UPSTREAMS:
            raise d.error(f"more than {MAX_UPSTREAMS} TOs configured: {len(to)}", cls.name)
        opts = ForwardOptions(frm=frm, to=tuple(to))
        for sub in d.block:
            a = sub.args
            match sub.name:
                case "except":
                    opts = replace(opts, excepts=tuple(x.lower().rstrip(".") + "." for x in a))
                case "policy":
                    if a not in (("random",), ("round_robin",), ("sequential",)):
                        raise sub.error(f"unknown policy {' '.join(a)!r}", cls.name)
                    opts = replace(opts, policy=a[0])
                case "max_concurrent":
                    opts = replace(opts, max_concurrent=int_arg(sub, cls.name, 0, 2**31))
                case "max_fails":
                    opts = replace(opts, max_fails=int_arg(sub, cls.name, 0, 2**31))
                case "health_check":
                    if not a:
                        raise sub.error("health_check needs a duration", cls.name)
                    hc = parse_duration(a[0], sub, cls.name)
                    rd, dom = True, "."
                    rest = list(a[1:])
                    while rest:
                        x = rest.pop(0)
                        if x == "no_rec":
                            rd = False
                        elif x == "domain" and rest:
                            dom = rest.pop(0)
                        else:
                            raise sub.error(f"health_check: unknown option {x!r}", cls.name)
                    opts = replace(opts, health_check=hc, health_rd=rd, health_domain=dom)
                case "force_tcp":
                    opts = replace(opts, force_tcp=True)
                case "prefer_udp":
                    opts = replace(opts, prefer_udp=True)
                case "expire" | "next" | "failover":
                    pass
                case "tls" | "tls_servername":
                    raise sub.error("DNS-over-TLS upstreams are not supported", cls.name)
                case _:
                    raise sub.error(f"unknown property '{sub.name}'", cls.name)
        if opts.force_tcp and opts.prefer_udp:
            raise d.error("force_tcp and prefer_udp cannot both be set", cls.name)
        return cls(opts)

    async def start(self, host: Host) -> None:
        self.metrics = host.metrics

    async def stop(self) -> None:
        for t in self._health.values():
            t.cancel()
        for u in self.upstreams:
            u.close()

    def matches(self, name: str) -> bool:
        f = self.opts.frm
        if not (f == "." or name == f or name.endswith("." + f)):
            return False
        return not any(name == z or name.endswith("." + z) for z in self.opts.excepts)

    def _order(self) -> list[Upstream]:
        ups = list(self.upstreams)
        if self.opts.policy == "random":
            random.shuffle(ups)
        elif self.opts.policy == "round_robin":
            k = next(self._rr) % len(ups)
            ups = ups[k:] + ups[:k]
        healthy = [u for u in ups if u.fails <= self.opts.max_fails or not self.opts.max_fails]
        return healthy or [random.choice(ups)]

    async def serve(self, req: DnsRequest, next_: Handler) -> dns.message.Message:
        if not self.matches(req.name):
            return await next_(req)
        if req.precompute:
            raise NotFast("forward")
        if req.offline:
            upstreams = ", ".join(f"{u.host}:{u.port}" for u in self.upstreams) or "no upstream"
            req.note(f"forward: would ask {upstreams} (not sent; --query-upstream sends it)")
            return req.reply(dns.rcode.SERVFAIL)
        if self.opts.max_concurrent and self.inflight >= self.opts.max_concurrent:
            if self.metrics is not None:
                self.metrics.inc("coredns_forward_max_concurrent_rejects_total")
            req.note("forward: max_concurrent reached: REFUSED")
            return req.reply(dns.rcode.REFUSED)
        tcp = self.opts.force_tcp or (req.proto == "tcp" and not self.opts.prefer_udp)
        wire = req.query.to_wire()
        self.inflight += 1
        deadline = time.monotonic() + REQUEST_TIMEOUT
        last: Exception | None = None
        try:
            for up in self._order():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                start = time.perf_counter()
                try:
                    data = await up.exchange(wire, tcp, min(READ_TIMEOUT, left))
                    reply = dns.message.from_wire(data, ignore_trailing=True)
                except (OSError, TimeoutError, dns.exception.DNSException, EOFError,
                        asyncio.IncompleteReadError) as err:
                    last = err
                    self._failed(up)
                    continue
                up.fails = 0
                if self.metrics is not None:
                    self.metrics.observe("coredns_proxy_request_duration_seconds", time.perf_counter() - start,
                                         proxy_name="forward", to=up.addr, rcode=dns.rcode.to_text(reply.rcode()))
                reply.id = req.query.id
                req.note(f"forward: answered by upstream {up.addr} ({dns.rcode.to_text(reply.rcode())})")
                return reply
        finally:
            self.inflight -= 1
        req.note(f"forward: no upstream answered ({last})")
        raise RuntimeError(f"plugin/forward: no healthy upstream answered {req.name} "
                           f"{dns.rdatatype.to_text(req.qtype)}: {last}")

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
                    await up.exchange(q.to_wire(), self.opts.force_tcp, READ_TIMEOUT)
                    up.fails = 0
                    return
                except (OSError, TimeoutError):
                    if self.metrics is not None:
                        self.metrics.inc("coredns_forward_healthcheck_broken_total")
                await asyncio.sleep(self.opts.health_check)
        finally:
            self._health.pop(up, None)
